#include "engine/tokenizer/SentencePieceProto.h"

#include "engine/core/SageError.h"

namespace sage
{

namespace
{

// Field numbers from sentencepiece_model.proto.
constexpr uint32_t kModelPieces = 1;
constexpr uint32_t kModelNormalizerSpec = 3;
constexpr uint32_t kModelSelfTestData = 4;
constexpr uint32_t kPieceType = 3;
constexpr uint32_t kNormalizerAddDummyPrefix = 3;
constexpr uint32_t kNormalizerRemoveExtraWhitespaces = 4;

enum WireType : uint32_t { Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5 };

struct Field {
    uint32_t number = 0;
    uint32_t wireType = 0;
    uint64_t varint = 0;    // for Varint
    std::string_view bytes; // payload for LengthDelimited
    std::string_view raw;   // the whole field, key included
};

class WireReader
{
public:
    WireReader(std::string_view data, const std::filesystem::path& file) : m_data(data), m_file(file) {}

    bool atEnd() const { return m_pos >= m_data.size(); }

    Field next()
    {
        const size_t start = m_pos;
        Field f;
        const uint64_t key = varint();
        f.number = static_cast<uint32_t>(key >> 3);
        f.wireType = static_cast<uint32_t>(key & 7);
        switch (f.wireType) {
        case Varint:
            f.varint = varint();
            break;
        case Fixed64:
            skip(8);
            break;
        case Fixed32:
            skip(4);
            break;
        case LengthDelimited: {
            const uint64_t length = varint();
            if (length > m_data.size() - m_pos) fail("a field runs past the end of the data");
            f.bytes = m_data.substr(m_pos, length);
            m_pos += length;
            break;
        }
        default:
            fail("unsupported protobuf wire type " + std::to_string(f.wireType));
        }
        f.raw = m_data.substr(start, m_pos - start);
        return f;
    }

private:
    uint64_t varint()
    {
        uint64_t value = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (m_pos >= m_data.size()) fail("a number runs past the end of the data");
            const auto b = static_cast<uint8_t>(m_data[m_pos++]);
            value |= static_cast<uint64_t>(b & 0x7F) << shift;
            if (!(b & 0x80)) return value;
        }
        fail("a number is longer than 10 bytes");
    }

    void skip(size_t n)
    {
        if (n > m_data.size() - m_pos) fail("a field runs past the end of the data");
        m_pos += n;
    }

    [[noreturn]] void fail(const std::string& what) const
    {
        throw SageError(m_file.string() + ": not a valid SentencePiece model: " + what + " (at byte " +
                        std::to_string(m_pos) +
                        "). Replace the file with the tokenizer.model of the checkpoint.");
    }

    std::string_view m_data;
    const std::filesystem::path& m_file;
    size_t m_pos = 0;
};

void appendVarint(std::string& out, uint64_t value)
{
    do {
        uint8_t b = value & 0x7F;
        value >>= 7;
        if (value) b |= 0x80;
        out.push_back(static_cast<char>(b));
    } while (value);
}

} // namespace

SentencePieceProto SentencePieceProto::parse(std::string_view serialized, const std::filesystem::path& file)
{
    SentencePieceProto proto;
    WireReader model(serialized, file);
    while (!model.atEnd()) {
        const Field f = model.next();
        if (f.number == kModelPieces && f.wireType == LengthDelimited) {
            PieceType type = Normal; // proto default
            WireReader piece(f.bytes, file);
            while (!piece.atEnd()) {
                const Field pf = piece.next();
                if (pf.number == kPieceType && pf.wireType == Varint)
                    type = static_cast<PieceType>(pf.varint);
            }
            proto.pieceTypes.push_back(type);
        } else if (f.number == kModelNormalizerSpec && f.wireType == LengthDelimited) {
            WireReader spec(f.bytes, file);
            while (!spec.atEnd()) {
                const Field sf = spec.next();
                if (sf.wireType != Varint) continue;
                if (sf.number == kNormalizerAddDummyPrefix) proto.addDummyPrefix = sf.varint != 0;
                if (sf.number == kNormalizerRemoveExtraWhitespaces)
                    proto.removeExtraWhitespaces = sf.varint != 0;
            }
        }
    }
    return proto;
}

std::string SentencePieceProto::withoutDummyPrefix(std::string_view serialized,
                                                   const std::filesystem::path& file)
{
    // NormalizerSpec field 3 (add_dummy_prefix), varint 0.
    static constexpr char kNoDummyPrefix[] = {0x18, 0x00};
    std::string out;
    out.reserve(serialized.size() + 8);
    bool sawSpec = false;
    WireReader model(serialized, file);
    while (!model.atEnd()) {
        const Field f = model.next();
        if (f.number == kModelSelfTestData) continue;
        if (f.number == kModelNormalizerSpec && f.wireType == LengthDelimited) {
            sawSpec = true;
            appendVarint(out, (kModelNormalizerSpec << 3) | LengthDelimited);
            appendVarint(out, f.bytes.size() + sizeof(kNoDummyPrefix));
            out.append(f.bytes);
            out.append(kNoDummyPrefix, sizeof(kNoDummyPrefix));
        } else {
            out.append(f.raw);
        }
    }
    if (!sawSpec) {
        appendVarint(out, (kModelNormalizerSpec << 3) | LengthDelimited);
        appendVarint(out, sizeof(kNoDummyPrefix));
        out.append(kNoDummyPrefix, sizeof(kNoDummyPrefix));
    }
    return out;
}

} // namespace sage
