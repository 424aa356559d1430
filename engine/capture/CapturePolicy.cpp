#include "engine/capture/CapturePolicy.h"

#include "engine/capture/TraceStep.h"
#include "engine/core/SageError.h"
#include "engine/model/ModelConfig.h"

#include <algorithm>

namespace sage {

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
    // Mean row lengths over positions 0..T-1: global p+1, local min(p+1, W).
    const double meanGlobal = double(T + 1) / 2.0;
    double sumLocal = 0;
    for (int64_t p = 0; p < std::min(T, W); ++p) sumLocal += double(p + 1);
    sumLocal += double(std::max<int64_t>(0, T - W)) * double(W);
    const double meanLocal = sumLocal / double(T);

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
                    if (s & StreamBits::Global) perToken += meanGlobal * 4 + double(sizeof(FullAttentionRow));
                    if (s & StreamBits::Local) perToken += meanLocal * 4 + double(sizeof(FullAttentionRow));
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
