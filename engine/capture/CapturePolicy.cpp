#include "engine/capture/CapturePolicy.h"

#include "engine/capture/TraceStep.h"
#include "engine/core/SageError.h"
#include "engine/model/ModelConfig.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace sage {

namespace {
// Full rows of the standard preset's designated heads are kept up to this many keys: every row of a short run,
// and at 4k context about 0.25 KB per token on average for the bundled model's four designated heads.
constexpr int64_t kStandardFullRowMaxKeys = 256;
} // namespace

CapturePolicy CapturePolicy::preset(CapturePreset preset, const ModelConfig& config)
{
    using namespace CaptureKind;
    CapturePolicy p;
    std::set<std::pair<int64_t, int64_t>> mch(config.mchHeads.begin(), config.mchHeads.end());
    switch (preset) {
    case CapturePreset::Summary:
        p.m_name = "summary";
        p.m_kinds = Gates | StreamStats | RouterChoice | Residual | LogitLens;
        p.m_attnTopK = 0;
        break;
    case CapturePreset::Standard:
        p.m_name = "standard";
        p.m_kinds = Attention | Gates | StreamStats | RouterProbs | RouterChoice | Residual | LogitLens;
        p.m_fullHeads = mch;
        p.m_fullRowMaxKeys = kStandardFullRowMaxKeys;
        p.m_attnTopK = 4;
        break;
    case CapturePreset::Full:
        p.m_name = "full";
        p.m_kinds = Attention | Gates | StreamStats | RouterProbs | RouterChoice | Residual | LogitLens | Logits;
        p.m_fullAll = true;
        p.m_attnTopK = 4;
        break;
    }
    return p;
}

CapturePolicy CapturePolicy::fromName(const std::string& name, const ModelConfig& config)
{
    if (name == "summary") return preset(CapturePreset::Summary, config);
    if (name == "standard") return preset(CapturePreset::Standard, config);
    if (name == "full") return preset(CapturePreset::Full, config);
    throw SageError("unknown capture policy '" + name + "'; use summary, standard or full");
}

uint32_t CapturePolicy::layerKinds(const ModelConfig& config, int64_t loop, int64_t layer) const
{
    using namespace CaptureKind;
    if (!loopSelected(loop) || !layerSelected(layer)) return 0;
    uint32_t k = m_kinds & LayerMask;
    if (loop == 1) k &= ~(Gates | StreamStats);
    if (!config.isMoeLayer(layer)) k &= ~(RouterProbs | RouterChoice);
    if (k & Attention) {
        // Keep the bit only if some head of this layer keeps rows.
        bool any = false;
        for (int64_t h = 0; h < config.numAttentionHeads && !any; ++h) any = headStreams(loop, layer, h) != 0;
        if (!any) k &= ~Attention;
    }
    return k;
}

uint32_t CapturePolicy::headStreams(int64_t loop, int64_t layer, int64_t head) const
{
    if (!(m_kinds & CaptureKind::Attention) || !headSelected(head)) return 0;
    if (!fullRows(layer, head) && m_attnTopK <= 0) return 0;
    return (loop == 1 ? StreamBits::Global : StreamBits::Both) & m_streams;
}

CaptureEstimate CapturePolicy::estimate(const ModelConfig& c, int64_t tokens) const
{
    using namespace CaptureKind;
    const int64_t T = std::max<int64_t>(tokens, 1);
    const int64_t H = c.numAttentionHeads, W = c.loopWindowSize;
    // Mean kept full-row lengths and fractions of positions with a kept full row, over positions 0..T-1:
    // global rows have p+1 keys, local rows min(p+1, W); rows over the key limit are not kept.
    double sumGlobal = 0, sumLocal = 0, nGlobal = 0, nLocal = 0;
    for (int64_t p = 0; p < T; ++p) {
        const int64_t g = p + 1, l = std::min<int64_t>(p + 1, W);
        if (keepsFullRow(g)) sumGlobal += double(g), nGlobal += 1;
        if (keepsFullRow(l)) sumLocal += double(l), nLocal += 1;
    }
    const double meanGlobal = sumGlobal / double(T), meanLocal = sumLocal / double(T);
    const double fracGlobal = nGlobal / double(T), fracLocal = nLocal / double(T);

    double perToken = double(sizeof(StepRecord)) + 64.0; // step header, choice, alternatives
    for (int64_t loop = 1; loop <= c.loopNum; ++loop) {
        for (int64_t L = 0; L < c.numHiddenLayers; ++L) {
            const uint32_t k = layerKinds(c, loop, L);
            if (k == 0) continue;
            perToken += double(sizeof(LayerRecord));
            if (k & Gates) perToken += double(H) * 4;
            if (k & StreamStats) perToken += double(H) * 12;
            if (k & RouterProbs) perToken += double(c.numExperts) * 4;
            if (k & RouterChoice) perToken += double(c.numExpertsPerTok) * 8;
            if (k & Attention) {
                const int64_t S = loop == 1 ? 1 : 2;
                perToken += double(H * S) * (8.0 * m_attnTopK + 8.0); // top-k (key, p), rest mass, entropy
                for (int64_t h = 0; h < H; ++h) {
                    const uint32_t s = headStreams(loop, L, h);
                    if (!fullRows(L, h)) continue;
                    if (s & StreamBits::Global)
                        perToken += meanGlobal * 4 + fracGlobal * double(sizeof(FullAttentionRow));
                    if (s & StreamBits::Local) perToken += meanLocal * 4 + fracLocal * double(sizeof(FullAttentionRow));
                }
            }
        }
        if ((m_kinds & LogitLens) && loopSelected(loop)) perToken += double(sizeof(LensRecord)) + 8.0 * m_lensTopK;
    }
    if (m_kinds & Logits) perToken += double(c.vocabSize) * 4;

    CaptureEstimate e;
    e.bytesPerToken = uint64_t(perToken);
    e.totalBytes = uint64_t(perToken * double(T));
    const uint64_t kvRow = uint64_t(c.numKeyValueHeads * c.headDim) * 4;
    e.kvCacheBytes = uint64_t(c.numHiddenLayers) * 2 * kvRow * uint64_t(T) +
                     uint64_t(c.loopNum - 1) * uint64_t(c.numHiddenLayers) * 2 * kvRow * uint64_t(W);
    return e;
}

void CapturePolicy::checkBudget(const ModelConfig& config, int64_t tokens) const
{
    if (m_budget == 0) return;
    const CaptureEstimate e = estimate(config, tokens);
    if (e.totalBytes > m_budget)
        throw SageError("capture policy '" + m_name + "' needs about " + std::to_string(e.totalBytes) + " bytes for " +
                        std::to_string(tokens) + " tokens (" + std::to_string(e.bytesPerToken) +
                        " per token), over the memory budget of " + std::to_string(m_budget) +
                        " bytes; choose a smaller preset, select fewer layers, heads or loops, or raise the budget");
}

namespace {

std::string trimmed(const std::string& text)
{
    std::string t;
    for (char c : text)
        if (!std::isspace(static_cast<unsigned char>(c))) t += c;
    return t;
}

std::vector<std::string> splitCommas(const std::string& text)
{
    std::vector<std::string> parts;
    size_t at = 0;
    for (;;) {
        const size_t comma = text.find(',', at);
        parts.push_back(text.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
        if (comma == std::string::npos) return parts;
        at = comma + 1;
    }
}

bool toInt(const std::string& text, int64_t& value)
{
    if (text.empty()) return false;
    const char* end = text.data() + text.size();
    const auto r = std::from_chars(text.data(), end, value);
    return r.ec == std::errc() && r.ptr == end;
}

std::string rangeText(int64_t lo, int64_t hi)
{
    return lo == hi ? std::to_string(lo) : std::to_string(lo) + "-" + std::to_string(hi);
}

} // namespace

std::set<int64_t> parseIndexList(const std::string& text, int64_t lo, int64_t hi, const std::string& field,
                                 const std::string& what)
{
    const std::string t = trimmed(text);
    std::set<int64_t> out;
    if (t.empty() || t == "all") return out;
    const std::string valid = " (this model has " + what + "s " + rangeText(lo, hi) + ")";
    for (const std::string& part : splitCommas(t)) {
        if (part.empty())
            throw SageError(field + ": an empty entry in '" + text + "'; separate numbers and ranges by single commas");
        const size_t dash = part.find('-', 1);
        int64_t a = 0, b = 0;
        const bool ok = dash == std::string::npos ? toInt(part, a) && toInt(part, b)
                                                  : toInt(part.substr(0, dash), a) && toInt(part.substr(dash + 1), b);
        if (!ok)
            throw SageError(field + ": '" + part + "' is not a " + what + " number or a range such as " +
                            rangeText(lo, std::min(hi, lo + 1)));
        for (int64_t v : {a, b})
            if (v < lo || v > hi) throw SageError(field + ": " + std::to_string(v) + " is not a " + what + valid);
        if (a > b)
            throw SageError(field + ": the range " + part + " runs backwards; write " + std::to_string(b) + "-" +
                            std::to_string(a));
        for (int64_t v = a; v <= b; ++v) out.insert(v);
    }
    return out;
}

std::string formatIndexList(const std::set<int64_t>& indices)
{
    std::string out;
    for (auto it = indices.begin(); it != indices.end();) {
        const int64_t a = *it;
        int64_t b = a;
        for (++it; it != indices.end() && *it == b + 1; ++it) b = *it;
        if (!out.empty()) out += ',';
        out += rangeText(a, b);
    }
    return out;
}

bool CaptureSelection::empty() const
{
    return trimmed(loops).empty() && trimmed(layers).empty() && trimmed(heads).empty() && trimmed(streams).empty() &&
           trimmed(fullHeads).empty() && attentionTopK < 0 && fullRowMaxKeys < 0;
}

void applySelection(CapturePolicy& policy, const CaptureSelection& s, const ModelConfig& config)
{
    if (s.empty()) return;
    const int64_t layers = config.numHiddenLayers, heads = config.numAttentionHeads;
    std::vector<std::string> parts; // what the name will say
    const std::set<int64_t> loops = parseIndexList(s.loops, 1, config.loopNum, "loops", "loop");
    const std::set<int64_t> layerSet = parseIndexList(s.layers, 0, layers - 1, "layers", "layer");
    const std::set<int64_t> headSet = parseIndexList(s.heads, 0, heads - 1, "heads", "head");
    if (!loops.empty()) parts.push_back("loops " + formatIndexList(loops));
    if (!layerSet.empty()) parts.push_back("layers " + formatIndexList(layerSet));
    if (!headSet.empty()) parts.push_back("heads " + formatIndexList(headSet));
    policy.selectLoops(loops);
    policy.selectLayers(layerSet);
    policy.selectHeads(headSet);

    const std::string streams = trimmed(s.streams);
    if (!streams.empty()) {
        uint32_t bits = 0;
        if (streams == "global")
            bits = StreamBits::Global;
        else if (streams == "local")
            bits = StreamBits::Local;
        else if (streams == "both")
            bits = StreamBits::Both;
        else
            throw SageError("streams: '" + s.streams + "' is not a stream; use global, local or both");
        if (bits == StreamBits::Local && !loops.empty() && *loops.rbegin() < 2)
            throw SageError("streams: loop 1 has only the global stream, so 'local' with loops " +
                            formatIndexList(loops) +
                            " keeps no attention; select a loop from 2 on, or streams global or both");
        if (bits == StreamBits::Local && config.loopNum < 2)
            throw SageError("streams: this model has one loop, which has only the global stream; use global");
        policy.selectStreams(bits);
        if (bits != StreamBits::Both) parts.push_back("streams " + streams);
    }

    const std::string full = trimmed(s.fullHeads);
    if (!full.empty()) {
        if (full == "none") {
            policy.setFullRowsForAllHeads(false);
            policy.setFullHeads({});
            parts.push_back("no full rows");
        } else if (full == "all") {
            policy.setFullRowsForAllHeads(true);
            parts.push_back("full rows of every head");
        } else {
            std::set<std::pair<int64_t, int64_t>> pairs;
            for (const std::string& part : splitCommas(full)) {
                const size_t colon = part.find(':');
                int64_t L = 0, h = 0;
                if (colon == std::string::npos || !toInt(part.substr(0, colon), L) || !toInt(part.substr(colon + 1), h))
                    throw SageError(
                        "full heads: '" + part +
                        "' is not a layer:head pair such as 0:3; use none, all or pairs separated by commas");
                if (L < 0 || L >= layers)
                    throw SageError("full heads: layer " + std::to_string(L) + " of " + part +
                                    " is not a layer of this model (0-" + std::to_string(layers - 1) + ")");
                if (h < 0 || h >= heads)
                    throw SageError("full heads: head " + std::to_string(h) + " of " + part +
                                    " is not a head of this model (0-" + std::to_string(heads - 1) + ")");
                if (!headSet.empty() && !headSet.count(h))
                    throw SageError("full heads: head " + std::to_string(h) + " of " + part +
                                    " is not among the selected heads (" + formatIndexList(headSet) + ")");
                if (!layerSet.empty() && !layerSet.count(L))
                    throw SageError("full heads: layer " + std::to_string(L) + " of " + part +
                                    " is not among the selected layers (" + formatIndexList(layerSet) + ")");
                pairs.insert({L, h});
            }
            std::string named;
            for (const auto& [L, h] : pairs) {
                if (!named.empty()) named += ',';
                named += std::to_string(L);
                named += ':';
                named += std::to_string(h);
            }
            policy.setFullRowsForAllHeads(false);
            policy.setFullHeads(std::move(pairs));
            parts.push_back("full rows " + named);
        }
        if (!(policy.kinds() & CaptureKind::Attention) && full != "none")
            policy.setKinds(policy.kinds() | CaptureKind::Attention); // full rows are attention rows
    }
    if (s.attentionTopK >= 0) {
        if (s.attentionTopK > kMaxAttentionTopK)
            throw SageError("attention top-k: " + std::to_string(s.attentionTopK) + " is more than " +
                            std::to_string(kMaxAttentionTopK) +
                            " entries per row; keep full rows of the heads instead (full heads)");
        policy.setAttentionTopK(s.attentionTopK);
        if (s.attentionTopK > 0) policy.setKinds(policy.kinds() | CaptureKind::Attention);
        parts.push_back("top-" + std::to_string(s.attentionTopK));
    }
    if (s.fullRowMaxKeys >= 0) {
        policy.setFullRowMaxKeys(s.fullRowMaxKeys);
        parts.push_back(s.fullRowMaxKeys == 0 ? "full rows of any length"
                                              : "full rows up to " + std::to_string(s.fullRowMaxKeys) + " keys");
    }
    if (parts.empty()) return;
    std::string name = policy.name();
    name += " (";
    for (size_t i = 0; i < parts.size(); ++i) {
        if (i) name += "; ";
        name += parts[i];
    }
    name += ')';
    policy.setName(name);
}

} // namespace sage
