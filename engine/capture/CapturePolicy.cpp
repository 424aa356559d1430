#include "engine/capture/CapturePolicy.h"

#include "engine/capture/TraceStep.h"
#include "engine/core/SageError.h"
#include "engine/model/ModelConfig.h"

#include <algorithm>

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

} // namespace sage
