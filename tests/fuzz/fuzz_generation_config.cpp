// Fuzzes generation_config.json (GenerationConfig::load): a config or a SageError, never a crash.
#include "FuzzSupport.h"

#include "engine/core/SageError.h"
#include "engine/model/ModelConfig.h"

using namespace sage;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static const std::filesystem::path dir = fuzz::scratchDir("generation_config");
    fuzz::writeFile(dir / "generation_config.json", data, size);
    try {
        const GenerationConfig g = GenerationConfig::load(dir);
        fuzz::consume(g.eosTokenIds.size() + uint64_t(g.bosTokenId.value_or(0)) + uint64_t(g.topK.value_or(0)));
    } catch (const SageError&) {
    }
    return 0;
}
