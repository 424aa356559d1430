#pragma once

#include "engine/tokenizer/TokenizerConfig.h"

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sentencepiece
{
class SentencePieceProcessor;
}

namespace sage
{

class StreamDecoder;

// A SentencePiece tokenizer (tokenizer.model) plus the Hugging Face settings next to it
// (TokenizerConfig). Immutable after load; every const method may be called from any thread.
//
// Special tokens are the model's control pieces (<s>, </s>), its <unk>, its user-defined symbols
// (<|im_start|>, <|im_end|>), every added_tokens_decoder / added_tokens.json entry and the token names
// of the config. Where one of their strings occurs literally in a text it encodes to its own id.
//
// Where the "▁" dummy prefix goes (the leading-space rule). SentencePiece prepends "▁" to the text it
// encodes. After splitting on specials, only a plain segment that starts the text gets that prefix; a
// segment that follows a special token is encoded as the continuation it is, with no prefix:
//     "<|im_start|>user\nhi"  ->  <|im_start|> "user" "\n" "hi"        (not "▁user")
//     "say <|im_start|>user"  ->  "▁say" "▁" <|im_start|> "user"
// This is transformers' LlamaTokenizer with legacy=false and tokenizers' Metaspace with
// prepend_scheme="first"; it is also exactly what sentencepiece itself produces when the specials are
// its user-defined symbols, except that a text opening with a special gets no lone "▁" token in front
// of it. A text without specials encodes exactly like SentencePieceProcessor::Encode. The legacy=true
// behaviour (a "▁" on every segment) is used when tokenizer_config.json says "legacy": true, and
// "add_prefix_space": false removes the prefix from the first segment as well.
//
// Decoding mirrors SentencePieceProcessor::Decode (byte pieces are joined into UTF-8 characters; a byte
// that cannot start or continue a valid character becomes U+FFFD, one per byte; the first "▁" of the
// text is dropped) except that special tokens decode to their own text: control tokens render as "<s>"
// or "</s>" but, as in sentencepiece, do not count as text for the leading-space rule, so
// decode(encode(s)) == "<s>" + s when add_bos_token is set. Ids outside the vocabulary decode to
// nothing (a model's embedding table is often padded beyond the tokenizer's vocabulary).
class Tokenizer
{
public:
    enum class PieceKind : uint8_t {
        Normal,      // a SentencePiece text piece ("▁the")
        Byte,        // a byte-fallback piece ("<0x0A>")
        Control,     // <s>, </s>: special, invisible to the leading-space rule
        Unknown,     // <unk>: special
        UserDefined, // a SentencePiece user-defined symbol: special
        Added,       // listed only by the Hugging Face files (special or not, see isSpecial)
        Unused,      // an unused SentencePiece piece: decodes as text
        Invalid,     // not in the vocabulary
    };

    // Returns nullptr when modelDir has no tokenizer.model (the caller reports that the tokenizer is
    // missing). Throws SageError naming the file when tokenizer.model cannot be loaded or a JSON file is
    // malformed or names a token the vocabulary lacks.
    static std::unique_ptr<Tokenizer> load(const std::filesystem::path& modelDir);

    ~Tokenizer();
    Tokenizer(const Tokenizer&) = delete;
    Tokenizer& operator=(const Tokenizer&) = delete;

    // Splits on specials, adds BOS/EOS as tokenizer_config.json says.
    std::vector<int32_t> encode(std::string_view text) const;
    // Splits on specials, adds BOS only when addBos, never EOS.
    std::vector<int32_t> encodePlain(std::string_view text, bool addBos) const;

    // skipSpecial: decode as if the special ids were not in the list.
    std::string decode(std::span<const int32_t> ids, bool skipSpecial = false) const;

    // One token's text for token-by-token views: "▁" shows as a space; newline, tab and carriage return
    // (in any piece) as the escapes "\n", "\t", "\r"; a byte piece of a printable ASCII byte as that
    // character and of any other byte as the piece itself ("<0xE6>": half a character has no glyph);
    // a special token as its content; an id outside the vocabulary as "<id N>".
    std::string pieceText(int32_t id) const;

    bool isSpecial(int32_t id) const;
    PieceKind pieceKind(int32_t id) const;
    // SentencePiece pieces plus added tokens beyond them: one more than the largest valid id.
    int32_t vocabSize() const;
    std::optional<int32_t> bosId() const;
    // The config's eos_token first, then SentencePiece's </s> when it differs. The generation layer
    // adds config.json / generation_config.json eos ids to this set.
    std::vector<int32_t> eosIds() const;
    // A special token's content or a SentencePiece piece ("▁the", "<0x0A>"); nullopt when unknown.
    std::optional<int32_t> pieceToId(std::string_view piece) const;

    const TokenizerConfig& config() const { return m_config; }
    const std::filesystem::path& modelFile() const { return m_modelFile; }

private:
    friend class StreamDecoder;

    struct Special {
        std::string content;
        int32_t id = 0;
    };

    // How a plain segment reaches SentencePiece.
    enum class SegmentMode : uint8_t {
        AsStored,         // the model's own normaliser (its dummy prefix, if any)
        Continue,         // no dummy prefix
        ContinueWithSpace // no dummy prefix, a space in front (add_prefix_space on a prefix-less model)
    };

    Tokenizer() = default;
    void appendSegments(std::string_view text, std::vector<int32_t>& ids) const;
    void encodeSegment(std::string_view segment, bool atTextStart, std::vector<int32_t>& ids) const;

    std::filesystem::path m_modelFile;
    TokenizerConfig m_config;

    std::unique_ptr<sentencepiece::SentencePieceProcessor> m_sp;         // the model as stored
    std::unique_ptr<sentencepiece::SentencePieceProcessor> m_spContinue; // dummy prefix off; null when
                                                                         // the model has none anyway
    SegmentMode m_firstSegment = SegmentMode::AsStored; // a plain segment at the start of the text
    SegmentMode m_laterSegment = SegmentMode::Continue; // a plain segment after a special
    bool m_stripLeadingSpace = true;     // decode drops the first "▁" (sentencepiece's bos whitespace)
    bool m_stripAllLeadingSpace = false; // ... and every "▁" until text appears (remove_extra_whitespaces)

    // Per id, [vocabSize]: what decode needs without touching sentencepiece.
    std::vector<PieceKind> m_kinds;
    std::vector<uint8_t> m_special;      // 1 when isSpecial
    std::vector<std::string> m_text;     // Normal/Unused: piece with "▁" -> " "; specials: content
    std::vector<uint8_t> m_leadingSpace; // Normal/Unused: the piece starts with "▁"
    std::vector<uint8_t> m_byte;         // Byte: the byte value

    // Strings split out before SentencePiece sees the text, bucketed by first byte, longest first.
    std::vector<Special> m_specials;
    std::array<std::vector<uint32_t>, 256> m_specialsByFirstByte; // indices into m_specials
    std::unordered_map<std::string, int32_t> m_specialIds;        // content -> id

    std::optional<int32_t> m_bos;
    std::vector<int32_t> m_eos;
};

} // namespace sage
