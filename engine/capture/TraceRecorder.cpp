#include "engine/capture/TraceRecorder.h"

#include "engine/cpu/Kernels.h"
#include "engine/model/Model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace sage {

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// The k largest of p[0, n) as (index, value), most probable first, ties to the lower index.
void topK(const float* p, int64_t n, int k, int32_t* idx, float* val)
{
    int have = 0;
    for (int64_t j = 0; j < n; ++j) {
        const float v = p[j];
        if (have == k && !(v > val[k - 1])) continue;
        int pos = have < k ? have++ : k - 1;
        while (pos > 0 && v > val[pos - 1]) {
            val[pos] = val[pos - 1];
            idx[pos] = idx[pos - 1];
            --pos;
        }
        val[pos] = v;
        idx[pos] = int32_t(j);
    }
    for (int r = have; r < k; ++r) {
        idx[r] = -1;
        val[r] = 0.0f;
    }
}

} // namespace

TraceRecorder::TraceRecorder(const Model& model, CapturePolicy policy, Trace& trace)
    : m_model(model), m_policy(std::move(policy)), m_trace(trace)
{
    const ModelConfig& c = model.config();
    TraceInfo info;
    info.layers = c.numHiddenLayers;
    info.heads = c.numAttentionHeads;
    info.kvHeads = c.numKeyValueHeads;
    info.headDim = c.headDim;
    info.hiddenSize = c.hiddenSize;
    info.vocabSize = c.vocabSize;
    info.loops = c.loopNum;
    info.window = c.loopWindowSize;
    info.experts = c.numExperts;
    info.expertsPerTok = c.numExpertsPerTok;
    info.policy = m_policy.name();
    info.attentionTopK = m_policy.attentionTopK();
    info.lensTopK = m_policy.lensTopK();
    m_trace.setInfo(info);
    m_gram.resize(size_t(c.numHiddenLayers));
}

TraceRecorder::~TraceRecorder() = default;

uint32_t TraceRecorder::beginForward(int64_t p0, std::span<const int32_t> tokens, int64_t /*loops*/)
{
    m_p0 = p0;
    m_pending.clear();
    m_pending.reserve(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
        auto s = std::make_shared<StepRecord>();
        s->position = p0 + int64_t(i);
        s->token = tokens[i];
        if (i == 0 && m_nextChoice && m_nextChoice->token == tokens[0]) {
            s->generated = true;
            s->choice = *m_nextChoice;
        }
        m_pending.push_back(std::move(s));
    }
    m_nextChoice.reset();
    m_finalFor = nullptr; // the final-softmax cache belongs to one forward call
    return m_policy.kinds() & CaptureKind::ForwardMask;
}

void TraceRecorder::endForward(bool ok)
{
    if (ok) {
        // Full rows over the policy's key limit were not filled (observeAttention): drop their slots.
        if (m_policy.fullRowMaxKeys() > 0)
            for (auto& step : m_pending)
                for (LayerRecord& r : step->layers)
                    std::erase_if(r.fullRows, [](const FullAttentionRow& f) { return f.probs.empty(); });
        std::vector<Trace::StepPtr> steps(m_pending.begin(), m_pending.end());
        m_trace.append(std::move(steps));
    }
    m_pending.clear();
}

uint32_t TraceRecorder::askLayer(int64_t loop, int64_t layer)
{
    const ModelConfig& c = m_model.config();
    m_layerKinds = m_policy.layerKinds(c, loop, layer);
    if (m_layerKinds == 0) return 0;
    using namespace CaptureKind;
    const int64_t H = c.numAttentionHeads, E = c.numExperts, K = c.numExpertsPerTok;
    const int64_t S = loop == 1 ? 1 : 2, k = m_policy.attentionTopK();
    // Rows of the heads that keep full rows, with their shape known now (query position, stream).
    m_fullIndex.assign(size_t(H * S), -1);
    std::vector<std::pair<int16_t, uint8_t>> full;
    if (m_layerKinds & Attention)
        for (int64_t h = 0; h < H; ++h) {
            const uint32_t bits = m_policy.headStreams(loop, layer, h);
            if (!m_policy.fullRows(layer, h)) continue;
            for (int64_t s = 0; s < S; ++s)
                if (bits & (1u << s)) {
                    m_fullIndex[size_t(h * S + s)] = int32_t(full.size());
                    full.push_back({int16_t(h), uint8_t(s)});
                }
        }
    if (m_layerKinds & StreamStats) gram(layer);
    for (auto& step : m_pending) {
        LayerRecord& r = step->layers.emplace_back();
        r.loop = int16_t(loop);
        r.layer = int16_t(layer);
        if (m_layerKinds & Gates) r.gate.assign(size_t(H), kNaN);
        if (m_layerKinds & StreamStats) {
            r.normGlobal.assign(size_t(H), kNaN);
            r.normLocal.assign(size_t(H), kNaN);
            r.divergence.assign(size_t(H), kNaN);
        }
        if (m_layerKinds & RouterProbs) r.routerProbs.assign(size_t(E), 0.0f);
        if (m_layerKinds & RouterChoice) {
            r.experts.assign(size_t(K), -1);
            r.expertWeights.assign(size_t(K), 0.0f);
        }
        if (m_layerKinds & Attention) {
            r.streams = int16_t(S);
            r.topK = int16_t(k);
            r.topKeys.assign(size_t(H * S * k), -1);
            r.topProbs.assign(size_t(H * S * k), 0.0f);
            r.restMass.assign(size_t(H * S), kNaN);
            r.entropy.assign(size_t(H * S), kNaN);
            r.fullRows.resize(full.size());
            for (size_t f = 0; f < full.size(); ++f) {
                r.fullRows[f].head = full[f].first;
                r.fullRows[f].stream = full[f].second;
            }
        }
    }
    m_layerIndex = m_pending.empty() ? 0 : m_pending[0]->layers.size() - 1;
    return m_layerKinds;
}

uint32_t TraceRecorder::askHead(int64_t loop, int64_t layer, int64_t head)
{
    return m_policy.headStreams(loop, layer, head);
}

void TraceRecorder::observeAttention(int64_t /*loop*/, int64_t /*layer*/, int64_t head, AttentionStream stream,
                                     int64_t i, const float* probs, const float* scores, int64_t firstKey,
                                     int64_t count)
{
    LayerRecord& r = current(i);
    const int64_t slot = head * r.streams + int64_t(stream);
    const int32_t f = m_fullIndex[size_t(slot)];
    if (f >= 0 && m_policy.keepsFullRow(count)) {
        FullAttentionRow& row = r.fullRows[size_t(f)];
        row.firstKey = int32_t(firstKey);
        row.probs.assign(probs, probs + count);
    }
    // H = -sum p log p = log Z - sum p s with log Z = s_k - log p_k for the most probable key k: one
    // logarithm per row instead of one per key (which would cost more than the attention itself). sum p s is
    // the engine's vectorised dot product; the most probable key is the top-k list's first entry.
    const int k = r.topK;
    int64_t best = 0;
    if (k > 0) {
        int32_t* keys = r.topKeys.data() + slot * k;
        float* vals = r.topProbs.data() + slot * k;
        topK(probs, count, k, keys, vals);
        if (keys[0] >= 0) best = keys[0];
        double kept = 0;
        for (int e = 0; e < k; ++e)
            if (keys[e] >= 0) {
                keys[e] += int32_t(firstKey);
                kept += vals[e];
            }
        r.restMass[size_t(slot)] = float(std::max(0.0, 1.0 - kept));
    } else {
        best = std::max_element(probs, probs + count) - probs;
        r.restMass[size_t(slot)] = 0.0f;
    }
    const double ps = double(cpu::dot(probs, scores, count));
    const double logZ = double(scores[best]) - std::log(double(probs[best]));
    r.entropy[size_t(slot)] = float(std::max(0.0, logZ - ps));
}

const std::vector<float>& TraceRecorder::gram(int64_t layer)
{
    std::vector<float>& g = m_gram[size_t(layer)];
    if (!g.empty()) return g;
    const ModelConfig& c = m_model.config();
    const int64_t D = c.hiddenSize, H = c.numAttentionHeads, hd = c.headDim;
    const WeightView& o = m_model.layer(layer).o; // [D, H*hd]
    std::vector<double> acc(size_t(H * hd * hd), 0.0);
    std::vector<float> row(size_t(H * hd));
    for (int64_t d = 0; d < D; ++d) {
        cpu::convertRow(o, d, row.data());
        for (int64_t h = 0; h < H; ++h) {
            const float* w = row.data() + h * hd;
            double* a = acc.data() + h * hd * hd;
            for (int64_t x = 0; x < hd; ++x)
                for (int64_t y = 0; y < hd; ++y) a[x * hd + y] += double(w[x]) * double(w[y]);
        }
    }
    g.assign(acc.begin(), acc.end());
    return g;
}

void TraceRecorder::observeStreams(int64_t /*loop*/, int64_t layer, int64_t head, int64_t i, const float* a,
                                   const float* b, float g)
{
    // ||o_proj_h x||^2 = x^T G x with the head's Gram matrix G = W_h^T W_h ([hd, hd], precomputed): hd^2 work
    // instead of D * hd. Float rows (the engine's vectorised dot) with double accumulation of the hd row results.
    const int64_t hd = m_model.config().headDim;
    const float* G = m_gram[size_t(layer)].data() + head * hd * hd;
    double qa = 0, qb = 0, ab = 0, aa = 0, bb = 0;
    for (int64_t x = 0; x < hd; ++x) {
        const float* gx = G + x * hd;
        const float ga = cpu::dot(gx, a, hd), gb = cpu::dot(gx, b, hd);
        qa += double(a[x]) * ga;
        qb += double(b[x]) * gb;
        ab += double(a[x]) * b[x];
        aa += double(a[x]) * a[x];
        bb += double(b[x]) * b[x];
    }
    LayerRecord& r = current(i);
    r.normGlobal[size_t(head)] = float(double(g) * std::sqrt(std::max(qa, 0.0)));
    r.normLocal[size_t(head)] = float((1.0 - double(g)) * std::sqrt(std::max(qb, 0.0)));
    const double den = std::sqrt(aa * bb);
    r.divergence[size_t(head)] = den > 0 ? float(1.0 - ab / den) : 0.0f;
}

void TraceRecorder::observeGates(int64_t /*loop*/, int64_t /*layer*/, const float* gates)
{
    const int64_t H = m_model.config().numAttentionHeads;
    for (size_t i = 0; i < m_pending.size(); ++i) {
        LayerRecord& r = current(int64_t(i));
        if (!r.gate.empty()) std::memcpy(r.gate.data(), gates + int64_t(i) * H, size_t(H) * sizeof(float));
    }
}

void TraceRecorder::observeRouter(int64_t /*loop*/, int64_t /*layer*/, const float* probs, const int32_t* experts,
                                  const float* weights)
{
    const int64_t E = m_model.config().numExperts, K = m_model.config().numExpertsPerTok;
    for (size_t i = 0; i < m_pending.size(); ++i) {
        LayerRecord& r = current(int64_t(i));
        if (!r.routerProbs.empty())
            std::memcpy(r.routerProbs.data(), probs + int64_t(i) * E, size_t(E) * sizeof(float));
        if (!r.experts.empty()) {
            std::memcpy(r.experts.data(), experts + int64_t(i) * K, size_t(K) * sizeof(int32_t));
            std::memcpy(r.expertWeights.data(), weights + int64_t(i) * K, size_t(K) * sizeof(float));
        }
    }
}

void TraceRecorder::observeResidual(int64_t /*loop*/, int64_t /*layer*/, const float* hidden)
{
    const int64_t D = m_model.config().hiddenSize;
    for (size_t i = 0; i < m_pending.size(); ++i) {
        double s = 0;
        const float* h = hidden + int64_t(i) * D;
        for (int64_t d = 0; d < D; ++d) s += double(h[d]) * h[d];
        current(int64_t(i)).residualNorm = float(std::sqrt(s));
    }
}

void TraceRecorder::observeLens(int64_t loop, int64_t layer, int64_t i0, int64_t rows, const float* lens,
                                const float* final)
{
    const int64_t V = m_model.config().vocabSize;
    const int k = std::max(0, m_policy.lensTopK());
    // The final rows' softmax, once per forward call: `final` points at row i0 of that call's [n, V] logits.
    const float* base = final - i0 * V;
    const int64_t total = int64_t(m_pending.size());
    if (m_finalFor != base || int64_t(m_finalSum.size()) != total) {
        m_finalFor = base;
        m_finalExp.resize(size_t(total * V));
        m_finalSum.assign(size_t(total), -1.0); // computed lazily per row
        m_finalMax.resize(size_t(total));
    }
    std::vector<float> tmp(static_cast<size_t>(V)); // [V]
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t row = i0 + r;
        const float* l = lens + r * V;
        const float* f = base + row * V;
        float* pf = m_finalExp.data() + row * V;
        if (m_finalSum[size_t(row)] < 0) {
            const float mf = *std::max_element(f, f + V);
            m_finalMax[size_t(row)] = mf;
            m_finalSum[size_t(row)] = cpu::expShifted(f, V, mf, pf);
        }
        const float mf = m_finalMax[size_t(row)];
        const double sf = m_finalSum[size_t(row)];
        const bool same = l == f; // the last loop: the lens is the output itself, KL 0
        // KL(final || lens) = sum pf * (log pf - log pl) with log pf - log pl = (f - l) - (log Zf - log Zl), so
        // no logarithm per entry. The top-k of the lens are those of its logits (exp is monotonic).
        float ml = mf;
        double sl = sf, kl = 0;
        if (!same) {
            ml = *std::max_element(l, l + V);
            sl = cpu::expShifted(l, V, ml, tmp.data());
            const float dz = float((double(mf) + std::log(sf)) - (double(ml) + std::log(sl)));
            for (int64_t v = 0; v < V; ++v) tmp[size_t(v)] = (f[v] - l[v]) - dz;
            kl = double(cpu::dot(pf, tmp.data(), V)) / sf;
        }
        LensRecord rec;
        rec.loop = int16_t(loop);
        rec.layer = int16_t(layer);
        rec.kl = float(std::max(0.0, kl));
        rec.tokens.resize(size_t(k));
        rec.probs.resize(size_t(k));
        if (k > 0) {
            topK(l, V, k, rec.tokens.data(), rec.probs.data());
            for (int e = 0; e < k; ++e)
                rec.probs[size_t(e)] =
                    rec.tokens[size_t(e)] < 0 ? 0.0f : float(std::exp(double(rec.probs[size_t(e)] - ml)) / sl);
        }
        m_pending[size_t(row)]->lens.push_back(std::move(rec));
    }
}

void TraceRecorder::observeLogits(const float* logits)
{
    const int64_t V = m_model.config().vocabSize;
    for (size_t i = 0; i < m_pending.size(); ++i)
        m_pending[i]->logits.assign(logits + int64_t(i) * V, logits + int64_t(i + 1) * V);
}

} // namespace sage
