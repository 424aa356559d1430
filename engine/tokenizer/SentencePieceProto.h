#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace sage
{

// The few facts about a SentencePiece model (sentencepiece_model.proto) that the public
// SentencePieceProcessor API does not expose: which pieces are user-defined symbols, and the
// normaliser flags that decide where the "▁" dummy prefix goes. Read straight from the protobuf
// wire format, because Debian ships neither the generated C++ classes nor python3-protobuf.
class SentencePieceProto
{
public:
    // ModelProto.SentencePiece.Type
    enum PieceType : uint8_t {
        Normal = 1,
        Unknown = 2,
        Control = 3,
        UserDefined = 4,
        Unused = 5,
        Byte = 6,
    };

    // Throws SageError naming `file` when the bytes are not a well-formed protobuf message.
    static SentencePieceProto parse(std::string_view serialized, const std::filesystem::path& file);

    // The same model with normalizer_spec.add_dummy_prefix = false (and without self-test samples,
    // which would no longer match): it encodes a text segment that continues earlier text.
    // Relies on protobuf's rule that the last occurrence of a scalar field wins.
    static std::string withoutDummyPrefix(std::string_view serialized, const std::filesystem::path& file);

    std::vector<PieceType> pieceTypes; // [pieces], indexed by id
    bool addDummyPrefix = true;        // NormalizerSpec defaults
    bool removeExtraWhitespaces = true;
};

} // namespace sage
