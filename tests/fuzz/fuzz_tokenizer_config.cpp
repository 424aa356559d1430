// Fuzzes the Hugging Face tokenizer files next to a valid tokenizer.model: the first input byte picks the
// file (tokenizer_config.json, special_tokens_map.json or added_tokens.json), the rest is its content.
// TokenizerConfig::load and the whole Tokenizer::load (which builds per-id tables from the added tokens)
// must give a tokenizer or a SageError; a loaded tokenizer then encodes and decodes a fixed text.
#include "FuzzSupport.h"

#include "engine/core/SageError.h"
#include "engine/tokenizer/Tokenizer.h"
#include "engine/tokenizer/TokenizerConfig.h"

using namespace sage;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static const std::filesystem::path dir = [] {
        const std::filesystem::path d = fuzz::scratchDir("tokenizer_config");
        std::filesystem::copy_file(std::filesystem::path(SAGE_TEST_DATA_DIR) / "tokenizer" / "tokenizer.model",
                                   d / "tokenizer.model", std::filesystem::copy_options::overwrite_existing);
        return d;
    }();
    static const char* const files[] = {"tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"};
    if (size == 0) return 0;
    const size_t pick = data[0] % 3;
    for (size_t i = 0; i < 3; ++i) {
        std::error_code ec;
        if (i == pick)
            fuzz::writeFile(dir / files[i], data + 1, size - 1);
        else
            std::filesystem::remove(dir / files[i], ec);
    }
    try {
        const TokenizerConfig config = TokenizerConfig::load(dir);
        uint64_t sum = config.addedTokens.size() + config.additionalSpecialTokens.size();
        const auto tok = Tokenizer::load(dir);
        if (tok) {
            const std::vector<int32_t> ids = tok->encode("def f(x):\n    return x <|im_start|> <s> \xE2\x96\x81 end");
            sum += ids.size() + tok->decode(ids).size();
            for (int32_t id = 0; id < tok->vocabSize() && id < 512; ++id) sum += tok->pieceText(id).size();
        }
        fuzz::consume(sum);
    } catch (const SageError&) {
    }
    return 0;
}
