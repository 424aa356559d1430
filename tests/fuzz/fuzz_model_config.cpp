// Fuzzes config.json (ModelConfig::load) and what Model::load computes from it before touching weights:
// the implied tensor list and parameter count. Any input must give a config or a SageError, quickly.
#include "FuzzSupport.h"

#include "engine/core/SageError.h"
#include "engine/model/ModelConfig.h"

using namespace sage;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static const std::filesystem::path dir = fuzz::scratchDir("model_config");
    fuzz::writeFile(dir / "config.json", data, size);
    try {
        const ModelConfig c = ModelConfig::load(dir);
        uint64_t sum = uint64_t(c.parameterCount()) + c.architectureName().size() + uint64_t(c.queryGroupSize());
        for (const TensorSpec& spec : c.tensorSpecs()) sum += spec.name.size() + spec.shape.size();
        for (int64_t L = 0; L < c.numHiddenLayers; ++L) sum += c.isMoeLayer(L);
        fuzz::consume(sum);
    } catch (const SageError&) {
    }
    return 0;
}
