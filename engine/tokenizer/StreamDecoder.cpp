#include "engine/tokenizer/StreamDecoder.h"

#include "engine/tokenizer/Tokenizer.h"

#include <string_view>

namespace sage
{

namespace
{

constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD"; // U+FFFD

// Length of the valid UTF-8 character at the start of `bytes`, 0 when there is none. The same rules as
// sentencepiece's DecodeUTF8: no overlong forms, no surrogates, nothing above U+10FFFF.
size_t validCharLength(std::string_view bytes)
{
    const auto lead = static_cast<uint8_t>(bytes[0]);
    if (lead < 0x80) return 1;
    size_t length = 0;
    uint32_t cp = 0;
    if ((lead & 0xE0) == 0xC0) {
        length = 2;
        cp = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
        length = 3;
        cp = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
        length = 4;
        cp = lead & 0x07;
    } else {
        return 0;
    }
    if (bytes.size() < length) return 0;
    for (size_t k = 1; k < length; ++k) {
        const auto b = static_cast<uint8_t>(bytes[k]);
        if ((b & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr uint32_t kMinimum[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinimum[length] || (cp >= 0xD800 && cp < 0xE000) || cp > 0x10FFFF) return 0;
    return length;
}

// Whether `bytes` (shorter than the character its lead byte announces) can still become a valid
// character when more bytes arrive (Unicode Table 3-7: the second byte's range depends on the lead).
bool couldComplete(std::string_view bytes)
{
    const auto lead = static_cast<uint8_t>(bytes[0]);
    size_t length = 0;
    if (lead >= 0xC2 && lead <= 0xDF)
        length = 2;
    else if (lead >= 0xE0 && lead <= 0xEF)
        length = 3;
    else if (lead >= 0xF0 && lead <= 0xF4)
        length = 4;
    else
        return false;
    if (bytes.size() >= length) return false;
    for (size_t k = 1; k < bytes.size(); ++k) {
        const auto b = static_cast<uint8_t>(bytes[k]);
        uint8_t low = 0x80, high = 0xBF;
        if (k == 1) {
            if (lead == 0xE0)
                low = 0xA0;
            else if (lead == 0xED)
                high = 0x9F;
            else if (lead == 0xF0)
                low = 0x90;
            else if (lead == 0xF4)
                high = 0x8F;
        }
        if (b < low || b > high) return false;
    }
    return true;
}

} // namespace

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skipSpecial)
    : m_tokenizer(tokenizer), m_skipSpecial(skipSpecial)
{
}

std::string StreamDecoder::push(int32_t id)
{
    using Kind = Tokenizer::PieceKind;
    const Tokenizer& tok = m_tokenizer;
    const Kind kind = tok.pieceKind(id);
    // Skipped specials and unknown ids are treated as absent: they do not even end a run of bytes.
    if (kind == Kind::Invalid || (m_skipSpecial && tok.m_special[id])) return {};

    std::string out;
    if (kind == Kind::Byte) {
        m_pendingBytes.push_back(static_cast<char>(tok.m_byte[id]));
        drainBytes(out, false);
        return out;
    }
    drainBytes(out, true);

    // sentencepiece's Decode: the first "▁" is the dummy prefix unless text was output before it.
    if (m_bosWsSeen || m_started) m_bosWs = false;
    m_bosWsSeen = false;
    switch (kind) {
    case Kind::Control:
        // Shown, but invisible to the leading-space rule as in sentencepiece (which prints nothing).
        out += tok.m_text[id];
        break;
    case Kind::Normal:
    case Kind::Unused: {
        std::string_view text = tok.m_text[id];
        if (m_bosWs && tok.m_stripLeadingSpace && tok.m_leadingSpace[id]) {
            text.remove_prefix(1);
            m_bosWsSeen = !tok.m_stripAllLeadingSpace;
        }
        m_started = m_started || !text.empty();
        out += text;
        break;
    }
    default: // Unknown, UserDefined, Added: text
        m_started = m_started || !tok.m_text[id].empty();
        out += tok.m_text[id];
        break;
    }
    return out;
}

std::string StreamDecoder::flush()
{
    std::string out;
    drainBytes(out, true);
    return out;
}

void StreamDecoder::reset()
{
    m_pendingBytes.clear();
    m_bosWs = true;
    m_bosWsSeen = false;
    m_started = false;
}

void StreamDecoder::drainBytes(std::string& out, bool final)
{
    const std::string_view bytes = m_pendingBytes;
    size_t pos = 0;
    while (pos < bytes.size()) {
        const std::string_view rest = bytes.substr(pos);
        if (const size_t length = validCharLength(rest)) {
            out.append(rest.substr(0, length));
            pos += length;
        } else if (!final && couldComplete(rest)) {
            break; // wait for the rest of the character
        } else {
            out.append(kReplacementCharacter);
            ++pos;
        }
        m_started = true;
    }
    m_pendingBytes.erase(0, pos);
}

} // namespace sage
