// Fuzzes tokenizer.model: the engine's own protobuf reader (SentencePieceProto) on the raw bytes, and the
// whole Tokenizer::load (sentencepiece's loader plus the engine's checks). Either a tokenizer or a SageError.
#include "FuzzSupport.h"

#include "engine/core/SageError.h"
#include "engine/tokenizer/SentencePieceProto.h"
#include "engine/tokenizer/Tokenizer.h"

using namespace sage;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static const std::filesystem::path dir = fuzz::scratchDir("sentencepiece");
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    uint64_t sum = 0;
    try {
        const SentencePieceProto proto = SentencePieceProto::parse(bytes, dir / "tokenizer.model");
        sum += proto.pieceTypes.size();
        sum += SentencePieceProto::withoutDummyPrefix(bytes, dir / "tokenizer.model").size();
    } catch (const SageError&) {
    }
    fuzz::writeFile(dir / "tokenizer.model", bytes);
    try {
        const auto tok = Tokenizer::load(dir);
        if (tok) {
            const std::vector<int32_t> ids = tok->encode("hello world <s>\n\t x");
            sum += ids.size() + tok->decode(ids).size();
            for (int32_t id = 0; id < tok->vocabSize() && id < 256; ++id) sum += tok->pieceText(id).size();
        }
    } catch (const SageError&) {
    }
    fuzz::consume(sum);
    return 0;
}
