#include "engine/tokenizer/Tokenizer.h"

#include "engine/core/SageError.h"
#include "engine/tokenizer/SentencePieceProto.h"
#include "engine/tokenizer/StreamDecoder.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace sage {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81"; // U+2581 "▁"

std::string replaceSpaceSymbol(std::string_view piece)
{
    std::string out;
    out.reserve(piece.size());
    for (size_t i = 0; i < piece.size();) {
        if (piece.substr(i, kSpaceSymbol.size()) == kSpaceSymbol) {
            out.push_back(' ');
            i += kSpaceSymbol.size();
        } else {
            out.push_back(piece[i++]);
        }
    }
    return out;
}

// "<0x0A>" -> 0x0A; -1 when the piece is not in that form.
int parseBytePiece(std::string_view piece)
{
    if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
    int value = 0;
    for (char c : piece.substr(3, 2)) {
        value <<= 4;
        if (c >= '0' && c <= '9')
            value |= c - '0';
        else if (c >= 'A' && c <= 'F')
            value |= c - 'A' + 10;
        else if (c >= 'a' && c <= 'f')
            value |= c - 'a' + 10;
        else
            return -1;
    }
    return value;
}

std::string escapeControls(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '\n')
            out += "\\n";
        else if (c == '\t')
            out += "\\t";
        else if (c == '\r')
            out += "\\r";
        else
            out.push_back(c);
    }
    return out;
}

std::string readFile(const fs::path& file)
{
    std::ifstream in(file, std::ios::binary);
    if (!in) throw SageError(file.string() + ": cannot be opened for reading. Check the file's permissions.");
    std::ostringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
}

} // namespace

Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::load(const std::filesystem::path& modelDir)
{
    const fs::path modelFile = modelDir / "tokenizer.model";
    std::error_code ec;
    if (!fs::exists(modelFile, ec)) return nullptr;
    if (!fs::is_regular_file(modelFile, ec))
        throw SageError(modelFile.string() + ": is not a regular file. Replace it with the tokenizer.model of the "
                                             "checkpoint.");

    std::unique_ptr<Tokenizer> tok(new Tokenizer);
    tok->m_modelFile = modelFile;
    tok->m_config = TokenizerConfig::load(modelDir);
    const TokenizerConfig& config = tok->m_config;
    const fs::path configFile = modelDir / "tokenizer_config.json";

    const std::string serialized = readFile(modelFile);
    tok->m_sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
    // sentencepiece reports most damage as a status, but its trie builder throws (a piece containing a NUL
    // byte, for one): both become the same message.
    const auto loadModel = [&modelFile](sentencepiece::SentencePieceProcessor& sp, std::string_view bytes,
                                        const char* what) {
        std::string problem;
        try {
            if (const auto status = sp.LoadFromSerializedProto(bytes); !status.ok()) problem = status.ToString();
        } catch (const std::exception& e) {
            problem = e.what();
        }
        if (!problem.empty())
            throw SageError(modelFile.string() + what + " (sentencepiece: " + problem +
                            "). Replace it with the tokenizer.model of the checkpoint.");
    };
    loadModel(*tok->m_sp, serialized, ": not a valid SentencePiece model");
    const SentencePieceProto proto = SentencePieceProto::parse(serialized, modelFile);
    const int32_t spSize = tok->m_sp->GetPieceSize();
    if (static_cast<int32_t>(proto.pieceTypes.size()) != spSize)
        throw SageError(modelFile.string() + ": lists " + std::to_string(proto.pieceTypes.size()) +
                        " pieces but sentencepiece reports " + std::to_string(spSize) +
                        ". Replace it with the tokenizer.model of the checkpoint.");

    if (proto.addDummyPrefix) {
        tok->m_spContinue = std::make_unique<sentencepiece::SentencePieceProcessor>();
        loadModel(*tok->m_spContinue, SentencePieceProto::withoutDummyPrefix(serialized, modelFile),
                  ": cannot be reloaded without its dummy prefix");
    }

    // Where the dummy prefix goes: see the class comment.
    if (config.legacy.value_or(false)) {
        tok->m_firstSegment = tok->m_laterSegment = SegmentMode::AsStored;
        tok->m_stripLeadingSpace = proto.addDummyPrefix || proto.removeExtraWhitespaces;
    } else {
        const bool prefixFirst = config.addPrefixSpace.value_or(proto.addDummyPrefix);
        tok->m_laterSegment = proto.addDummyPrefix ? SegmentMode::Continue : SegmentMode::AsStored;
        if (!prefixFirst)
            tok->m_firstSegment = tok->m_laterSegment;
        else
            tok->m_firstSegment = proto.addDummyPrefix ? SegmentMode::AsStored : SegmentMode::ContinueWithSpace;
        tok->m_stripLeadingSpace = prefixFirst || proto.removeExtraWhitespaces;
    }
    tok->m_stripAllLeadingSpace = proto.removeExtraWhitespaces;

    // Per-id decode tables.
    // Added tokens extend the vocabulary past SentencePiece's pieces; the per-id tables below are sized by
    // the largest id, so an id far beyond the pieces is refused rather than allocated for.
    constexpr int32_t kMaxAddedBeyond = 1 << 20;
    int32_t vocab = spSize;
    for (const auto& added : config.addedTokens) {
        if (added.id >= spSize && added.id - spSize >= kMaxAddedBeyond)
            throw SageError(configFile.string() + ": added token \"" + added.content + "\" has id " +
                            std::to_string(added.id) + ", more than " + std::to_string(kMaxAddedBeyond) + " past the " +
                            std::to_string(spSize) + " pieces of " + modelFile.filename().string() +
                            ". Fix the id in added_tokens_decoder or added_tokens.json.");
        vocab = std::max(vocab, added.id + 1);
    }
    tok->m_kinds.assign(vocab, PieceKind::Invalid);
    tok->m_special.assign(vocab, 0);
    tok->m_text.assign(vocab, std::string());
    tok->m_leadingSpace.assign(vocab, 0);
    tok->m_byte.assign(vocab, 0);
    for (int32_t id = 0; id < spSize; ++id) {
        const std::string& piece = tok->m_sp->IdToPiece(id);
        switch (proto.pieceTypes[id]) {
        case SentencePieceProto::Byte: {
            const int value = parseBytePiece(piece);
            if (value < 0)
                throw SageError(modelFile.string() + ": byte piece " + std::to_string(id) + " is \"" + piece +
                                "\", expected the form <0xNN>. Replace it with the tokenizer.model of the checkpoint.");
            tok->m_kinds[id] = PieceKind::Byte;
            tok->m_byte[id] = static_cast<uint8_t>(value);
            break;
        }
        case SentencePieceProto::Control:
        case SentencePieceProto::Unknown:
        case SentencePieceProto::UserDefined:
            tok->m_kinds[id] = proto.pieceTypes[id] == SentencePieceProto::Control   ? PieceKind::Control
                               : proto.pieceTypes[id] == SentencePieceProto::Unknown ? PieceKind::Unknown
                                                                                     : PieceKind::UserDefined;
            tok->m_special[id] = 1;
            tok->m_text[id] = piece;
            break;
        default:
            tok->m_kinds[id] =
                proto.pieceTypes[id] == SentencePieceProto::Unused ? PieceKind::Unused : PieceKind::Normal;
            tok->m_text[id] = replaceSpaceSymbol(piece);
            tok->m_leadingSpace[id] = std::string_view(piece).substr(0, kSpaceSymbol.size()) == kSpaceSymbol;
            break;
        }
    }
    for (const auto& added : config.addedTokens) {
        const PieceKind kind = tok->m_kinds[added.id];
        const bool spSpecial =
            kind == PieceKind::Control || kind == PieceKind::Unknown || kind == PieceKind::UserDefined;
        if (!spSpecial) {
            tok->m_kinds[added.id] = PieceKind::Added;
            tok->m_leadingSpace[added.id] = 0;
        }
        tok->m_text[added.id] = added.content;
        tok->m_special[added.id] = spSpecial || added.special;
    }

    // The strings split out before SentencePiece sees a text: every special-like id, added tokens first
    // so that they win a content clash.
    auto addSpecial = [&tok](const std::string& content, int32_t id) {
        if (content.empty() || tok->m_specialIds.count(content)) return;
        tok->m_specialIds.emplace(content, id);
        tok->m_specials.push_back(Special{content, id});
    };
    for (const auto& added : config.addedTokens) addSpecial(added.content, added.id);
    for (int32_t id = 0; id < spSize; ++id)
        if (tok->m_special[id]) addSpecial(tok->m_text[id], id);

    // Token names of the config must exist; they join the specials (transformers splits on them too).
    auto resolveNamed = [&](const std::string& content, const std::string& key) -> std::optional<int32_t> {
        const auto id = tok->pieceToId(content);
        if (id) {
            tok->m_special[*id] = 1;
            addSpecial(content, *id);
            return id;
        }
        if (key == "pad_token") return std::nullopt; // often names a token the vocabulary lacks; unused here
        throw SageError(configFile.string() + ": field '" + key + "' is \"" + content +
                        "\", which is neither a piece of tokenizer.model nor an added token. Fix the name or add "
                        "the token to added_tokens_decoder.");
    };
    if (config.bosToken)
        tok->m_bos = resolveNamed(*config.bosToken, "bos_token");
    else if (tok->m_sp->bos_id() >= 0)
        tok->m_bos = tok->m_sp->bos_id();
    if (config.eosToken) tok->m_eos.push_back(*resolveNamed(*config.eosToken, "eos_token"));
    if (const int eos = tok->m_sp->eos_id(); eos >= 0 && (tok->m_eos.empty() || tok->m_eos.front() != eos))
        tok->m_eos.push_back(eos);
    if (config.unkToken) resolveNamed(*config.unkToken, "unk_token");
    if (config.padToken) resolveNamed(*config.padToken, "pad_token");
    for (const auto& extra : config.additionalSpecialTokens) resolveNamed(extra, "additional_special_tokens");

    if (config.addBosToken && !tok->m_bos)
        throw SageError(configFile.string() + ": field 'add_bos_token' is true but no BOS token is defined (no "
                                              "bos_token, and tokenizer.model has no <s>). Set bos_token or set "
                                              "add_bos_token to false.");
    if (config.addEosToken && tok->m_eos.empty())
        throw SageError(configFile.string() + ": field 'add_eos_token' is true but no EOS token is defined (no "
                                              "eos_token, and tokenizer.model has no </s>). Set eos_token or set "
                                              "add_eos_token to false.");

    for (uint32_t i = 0; i < tok->m_specials.size(); ++i)
        tok->m_specialsByFirstByte[static_cast<uint8_t>(tok->m_specials[i].content[0])].push_back(i);
    for (auto& bucket : tok->m_specialsByFirstByte)
        std::stable_sort(bucket.begin(), bucket.end(), [&tok](uint32_t a, uint32_t b) {
            return tok->m_specials[a].content.size() > tok->m_specials[b].content.size();
        });
    return tok;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const
{
    std::vector<int32_t> ids;
    if (m_config.addBosToken) ids.push_back(*m_bos);
    appendSegments(text, ids);
    if (m_config.addEosToken) ids.push_back(m_eos.front());
    return ids;
}

std::vector<int32_t> Tokenizer::encodePlain(std::string_view text, bool addBos) const
{
    std::vector<int32_t> ids;
    if (addBos) {
        if (!m_bos)
            throw SageError(m_modelFile.string() + ": a BOS token was requested but the tokenizer has none. "
                                                   "Set bos_token in tokenizer_config.json.");
        ids.push_back(*m_bos);
    }
    appendSegments(text, ids);
    return ids;
}

void Tokenizer::appendSegments(std::string_view text, std::vector<int32_t>& ids) const
{
    size_t plainStart = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        const Special* match = nullptr;
        for (uint32_t index : m_specialsByFirstByte[static_cast<uint8_t>(text[pos])]) {
            if (text.substr(pos).starts_with(m_specials[index].content)) {
                match = &m_specials[index]; // buckets are sorted longest first
                break;
            }
        }
        if (!match) {
            ++pos;
            continue;
        }
        if (pos > plainStart) encodeSegment(text.substr(plainStart, pos - plainStart), plainStart == 0, ids);
        ids.push_back(match->id);
        pos += match->content.size();
        plainStart = pos;
    }
    if (plainStart < text.size()) encodeSegment(text.substr(plainStart), plainStart == 0, ids);
}

void Tokenizer::encodeSegment(std::string_view segment, bool atTextStart, std::vector<int32_t>& ids) const
{
    const SegmentMode mode = atTextStart ? m_firstSegment : m_laterSegment;
    const sentencepiece::SentencePieceProcessor& sp =
        mode == SegmentMode::AsStored || !m_spContinue ? *m_sp : *m_spContinue;
    std::string spaced;
    if (mode == SegmentMode::ContinueWithSpace) {
        spaced.reserve(segment.size() + 1);
        spaced.push_back(' ');
        spaced.append(segment);
        segment = spaced;
    }
    std::vector<int> pieces;
    if (const auto status = sp.Encode(segment, &pieces); !status.ok())
        throw SageError(m_modelFile.string() + ": sentencepiece could not encode the text (" + status.ToString() +
                        ").");
    ids.insert(ids.end(), pieces.begin(), pieces.end());
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skipSpecial) const
{
    StreamDecoder decoder(*this, skipSpecial);
    std::string text;
    for (int32_t id : ids) text += decoder.push(id);
    text += decoder.flush();
    return text;
}

std::string Tokenizer::pieceText(int32_t id) const
{
    switch (pieceKind(id)) {
    case PieceKind::Invalid: return "<id " + std::to_string(id) + ">";
    case PieceKind::Byte: {
        const uint8_t b = m_byte[id];
        if (b == '\n' || b == '\t' || b == '\r') return escapeControls(std::string(1, static_cast<char>(b)));
        if (b >= 0x20 && b < 0x7F) return std::string(1, static_cast<char>(b));
        return m_sp->IdToPiece(id);
    }
    default: return escapeControls(m_text[id]);
    }
}

bool Tokenizer::isSpecial(int32_t id) const
{
    return id >= 0 && id < vocabSize() && m_special[id];
}

Tokenizer::PieceKind Tokenizer::pieceKind(int32_t id) const
{
    return id >= 0 && id < vocabSize() ? m_kinds[id] : PieceKind::Invalid;
}

int32_t Tokenizer::vocabSize() const
{
    return static_cast<int32_t>(m_kinds.size());
}

std::optional<int32_t> Tokenizer::bosId() const
{
    return m_bos;
}

std::vector<int32_t> Tokenizer::eosIds() const
{
    return m_eos;
}

std::optional<int32_t> Tokenizer::pieceToId(std::string_view piece) const
{
    if (const auto it = m_specialIds.find(std::string(piece)); it != m_specialIds.end()) return it->second;
    const int id = m_sp->PieceToId(piece);
    if (id >= 0 && id < m_sp->GetPieceSize() && m_sp->IdToPiece(id) == piece) return id;
    return std::nullopt;
}

} // namespace sage
