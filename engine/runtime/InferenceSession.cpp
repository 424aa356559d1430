#include "engine/runtime/InferenceSession.h"

#include "engine/capture/CaptureHook.h"
#include "engine/core/SageError.h"
#include "engine/cpu/Kernels.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/model/Model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace sage {

namespace {

inline float sigmoid(float x)
{
    return 1.0f / (1.0f + std::exp(-x));
}

// Softmax of s[0..n) in place, in f32 with max subtraction.
// p = softmax(s) over n entries; p may alias s.
inline void softmaxTo(const float* s, float* p, int64_t n)
{
    // The vectorised exponential (cpu::expShifted, relative error below 2e-7): std::exp per key was 5% of a
    // decode step at 1k context.
    const float mx = cpu::maxValue(s, n);
    const float inv = float(1.0 / cpu::expShifted(s, n, mx, p));
    for (int64_t j = 0; j < n; ++j) p[j] *= inv;
}

// Tells the hook that a forward call failed when it leaves by an exception (success is reported explicitly,
// outside a destructor, so that the hook's own errors propagate).
struct HookCallGuard {
    CaptureHook* hook;
    ~HookCallGuard()
    {
        if (hook) hook->endForward(false);
    }
};

} // namespace

InferenceSession::InferenceSession(const Model& model, cpu::ThreadPool& pool, SessionOptions options)
    : m_model(model), m_pool(pool), m_rope(model.config())
{
    const ModelConfig& c = model.config();
    m_maxContext =
        options.maxContext > 0 ? std::min(options.maxContext, c.maxPositionEmbeddings) : c.maxPositionEmbeddings;
    m_loops = options.maxLoops > 0 ? std::min(options.maxLoops, c.loopNum) : c.loopNum;
    m_window = c.loopWindowSize;
    m_cache.resize(size_t(c.numHiddenLayers));
    const size_t kvRow = size_t(c.numKeyValueHeads * c.headDim);
    for (LayerCache& lc : m_cache) {
        lc.kRing.assign(size_t(m_loops - 1), std::vector<float>(size_t(m_window) * kvRow));
        lc.vRing.assign(size_t(m_loops - 1), std::vector<float>(size_t(m_window) * kvRow));
    }
    m_pendingK.resize(size_t((m_loops - 1) * c.numHiddenLayers));
    m_pendingV.resize(m_pendingK.size());
}

InferenceSession::~InferenceSession() = default;

InferenceSession::InferenceSession(const InferenceSession& o)
    : m_model(o.m_model), m_pool(o.m_pool), m_rope(o.m_rope), m_maxContext(o.m_maxContext), m_loops(o.m_loops),
      m_window(o.m_window), m_pos(o.m_pos), m_capacity(o.m_capacity), m_tokens(o.m_tokens), m_cache(o.m_cache),
      m_pendingK(o.m_pendingK.size()), m_pendingV(o.m_pendingV.size())
{
}

void InferenceSession::reset()
{
    m_pos = 0;
    m_tokens.clear();
}

uint64_t InferenceSession::cacheBytes() const
{
    uint64_t b = 0;
    for (const LayerCache& lc : m_cache) {
        b += (lc.k1.capacity() + lc.v1.capacity()) * sizeof(float);
        for (const auto& r : lc.kRing) b += r.capacity() * sizeof(float) * 2;
    }
    return b;
}

void InferenceSession::ensureCapacity(int64_t positions)
{
    if (positions <= m_capacity) return;
    // Geometric growth keeps decode amortised O(1) without reserving the whole context up front
    // (131072 positions of a 40B model would be tens of GB).
    int64_t cap = std::max<int64_t>(64, m_capacity);
    while (cap < positions) cap *= 2;
    cap = std::min(cap, std::max(positions, m_maxContext));
    const ModelConfig& c = m_model.config();
    const size_t kvRow = size_t(c.numKeyValueHeads * c.headDim);
    for (LayerCache& lc : m_cache) {
        lc.k1.resize(size_t(cap) * kvRow);
        lc.v1.resize(size_t(cap) * kvRow);
    }
    m_capacity = cap;
}

void InferenceSession::forward(std::span<const int32_t> tokens, bool allPositions, std::vector<float>& logits,
                               const std::atomic<bool>* cancel)
{
    const ModelConfig& c = m_model.config();
    const int64_t n = int64_t(tokens.size());
    if (n == 0) throw SageError("no tokens to process: the prompt is empty; give at least one token");
    for (int32_t t : tokens)
        if (t < 0 || t >= c.vocabSize)
            throw SageError("token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                            std::to_string(c.vocabSize) + ")");
    if (m_pos + n > m_maxContext)
        throw SageError("sequence of " + std::to_string(m_pos + n) + " tokens exceeds the context of " +
                        std::to_string(m_maxContext) + " tokens; shorten the prompt or lower --max-tokens");

    const int64_t D = c.hiddenSize, H = c.numAttentionHeads, KV = c.numKeyValueHeads, hd = c.headDim;
    const int64_t N = c.numHiddenLayers;
    const int64_t p0 = m_pos;
    ensureCapacity(p0 + n);

    m_h.resize(size_t(n * D));
    m_x.resize(size_t(n * D));
    m_q.resize(size_t(n * H * hd));
    m_k.resize(size_t(n * KV * hd));
    m_v.resize(size_t(n * KV * hd));
    m_attn.resize(size_t(n * H * hd));
    m_proj.resize(size_t(n * D));
    m_gate.resize(size_t(n * H));
    for (int64_t i = 0; i < n; ++i) cpu::convertRow(m_model.embedTokens(), tokens[size_t(i)], m_h.data() + i * D);

    uint32_t forwardKinds = 0;
    HookCallGuard guard{m_hook};
    if (m_hook) {
        forwardKinds = m_hook->beginForward(p0, tokens, m_loops);
        m_lensHidden.clear();
    }
    // A logit lens is wanted of the residual stream now in m_h: the hook computes it itself (LensInput), or the
    // session does at the end of the call, sharing the head's weight pass when it can.
    bool lensGiven = false;
    const auto lensOf = [&](int64_t loop, int64_t L) {
        if (forwardKinds & CaptureKind::LensInput) {
            m_hook->observeLensInput(loop, L, m_h.data());
            lensGiven = true;
        } else {
            m_lensHidden.push_back({loop, L, m_h});
        }
    };

    for (int64_t loop = 1; loop <= m_loops; ++loop) {
        for (int64_t L = 0; L < N; ++L) {
            if (cancel && cancel->load(std::memory_order_relaxed)) throw CancelledError();
            const LayerWeights& w = m_model.layer(L);
            const uint32_t want = m_hook ? m_hook->askLayer(loop, L) : 0;
            attention(loop, L, w, n, p0, want);
            feedForward(w, n, loop, L, want);
            if (want & CaptureKind::Residual) m_hook->observeResidual(loop, L, m_h.data());
            if (want & CaptureKind::LensLayer) lensOf(loop, L);
        }
        if ((forwardKinds & CaptureKind::LogitLens) && loop < m_loops) lensOf(loop, -1);
    }

    // Final norm once, after the last loop; the head only for the rows asked for.
    const int64_t rows = allPositions ? n : 1;
    const int64_t V = c.vocabSize;
    const float* hLast = m_h.data() + (n - rows) * D;
    cpu::rmsnorm(hLast, rows, D, m_model.finalNorm(), float(c.rmsNormEps), m_x.data());
    logits.resize(size_t(rows * V));
    const bool capturing = forwardKinds != 0 || lensGiven || !m_lensHidden.empty();
    const bool wantLogits = (forwardKinds & (CaptureKind::Logits | CaptureKind::LensInput)) != 0;
    const int64_t lensRows = int64_t(m_lensHidden.size()) * n;
    if (capturing && rows == n && lensRows > 0 && n + lensRows <= cpu::kMatvecMaxTokens) {
        // Decode with a logit lens: the lens rows share the head's weight pass with the final rows. Rows of a
        // matrix-vector product are bit-identical to the same rows alone (cpu::kMatvecMaxTokens), so the
        // returned logits are unchanged and the lens costs a few dot products instead of a second lm_head read.
        m_lensX.resize(size_t((n + lensRows) * D)); // [final rows; lens rows of each saved stream] x D
        std::memcpy(m_lensX.data(), m_x.data(), size_t(n * D) * sizeof(float));
        for (size_t s = 0; s < m_lensHidden.size(); ++s)
            cpu::rmsnorm(m_lensHidden[s].h.data(), n, D, m_model.finalNorm(), float(c.rmsNormEps),
                         m_lensX.data() + (int64_t(s) + 1) * n * D);
        m_lensLogits.resize(size_t((n + lensRows) * V));
        cpu::matmul(m_pool, m_lensX.data(), n + lensRows, m_model.lmHead(), m_lensLogits.data());
        std::memcpy(logits.data(), m_lensLogits.data(), size_t(n * V) * sizeof(float));
        const float* final = m_lensLogits.data();
        if (wantLogits) m_hook->observeLogits(final);
        for (size_t s = 0; s < m_lensHidden.size(); ++s)
            m_hook->observeLens(m_lensHidden[s].loop, m_lensHidden[s].layer, 0, n, final + (int64_t(s) + 1) * n * V,
                                final);
        if ((forwardKinds & CaptureKind::LogitLens) && !(forwardKinds & CaptureKind::LensInput))
            m_hook->observeLens(m_loops, -1, 0, n, final, final);
    } else {
        cpu::matmul(m_pool, m_x.data(), rows, m_model.lmHead(), logits.data());
        // Capture: the final logits of every row (computed apart from the caller's rows above, so that capture
        // never changes the returned numbers), then the logit lens of the kept residual streams against them.
        if (capturing) {
            const float* final = logits.data();
            if (rows != n) {
                m_captureLogits.resize(size_t(n * V));
                cpu::rmsnorm(m_h.data(), n, D, m_model.finalNorm(), float(c.rmsNormEps), m_x.data());
                cpu::matmul(m_pool, m_x.data(), n, m_model.lmHead(), m_captureLogits.data());
                final = m_captureLogits.data();
            }
            if (wantLogits) m_hook->observeLogits(final);
            for (const SavedHidden& s : m_lensHidden) deliverLens(s.loop, s.layer, s.h.data(), n, final);
            if ((forwardKinds & CaptureKind::LogitLens) && !(forwardKinds & CaptureKind::LensInput))
                m_hook->observeLens(m_loops, -1, 0, n, final, final);
        }
    }
    m_lensHidden.clear();

    // Commit: the call succeeded, so the new positions become part of the state.
    const size_t kvRow = size_t(KV * hd);
    for (int64_t loop = 2; loop <= m_loops; ++loop) {
        for (int64_t L = 0; L < N; ++L) {
            const auto& pk = m_pendingK[size_t((loop - 2) * N + L)];
            const auto& pv = m_pendingV[size_t((loop - 2) * N + L)];
            LayerCache& lc = m_cache[size_t(L)];
            for (int64_t i = std::max<int64_t>(0, n - m_window); i < n; ++i) {
                const size_t slot = size_t((p0 + i) % m_window);
                std::memcpy(lc.kRing[size_t(loop - 2)].data() + slot * kvRow, pk.data() + size_t(i) * kvRow,
                            kvRow * sizeof(float));
                std::memcpy(lc.vRing[size_t(loop - 2)].data() + slot * kvRow, pv.data() + size_t(i) * kvRow,
                            kvRow * sizeof(float));
            }
        }
    }
    m_pos += n;
    m_tokens.insert(m_tokens.end(), tokens.begin(), tokens.end());
    // The positions are committed: if the hook fails now, its error reaches the caller but the state stays.
    guard.hook = nullptr;
    if (m_hook) m_hook->endForward(true);
}

void InferenceSession::deliverLens(int64_t loop, int64_t L, const float* hidden, int64_t n, const float* finalLogits)
{
    // Chunks of rows bound the scratch to [chunk, V] whatever the prompt length.
    const int64_t V = m_model.config().vocabSize;
    const int64_t chunk = 32;
    m_lensLogits.resize(size_t(std::min(chunk, n) * V));
    for (int64_t i0 = 0; i0 < n; i0 += chunk) {
        const int64_t r = std::min(chunk, n - i0);
        lensLogits(m_model, m_pool, hidden + i0 * m_model.config().hiddenSize, r, m_lensX, m_lensLogits.data());
        m_hook->observeLens(loop, L, i0, r, m_lensLogits.data(), finalLogits + i0 * V);
    }
}

void InferenceSession::attention(int64_t loop, int64_t L, const LayerWeights& w, int64_t n, int64_t p0, uint32_t want)
{
    const ModelConfig& c = m_model.config();
    const int64_t D = c.hiddenSize, H = c.numAttentionHeads, KV = c.numKeyValueHeads, hd = c.headDim;
    const int64_t group = H / KV;
    const int64_t kvRow = KV * hd;
    const float scale = 1.0f / std::sqrt(float(hd));

    cpu::rmsnorm(m_h.data(), n, D, w.inputNorm, float(c.rmsNormEps), m_x.data());
    cpu::matmul(m_pool, m_x.data(), n, w.q, m_q.data()); // [n, H*hd]
    cpu::matmul(m_pool, m_x.data(), n, w.k, m_k.data()); // [n, KV*hd]
    cpu::matmul(m_pool, m_x.data(), n, w.v, m_v.data()); // [n, KV*hd]
    for (int64_t i = 0; i < n; ++i) {
        m_rope.apply(m_q.data() + i * H * hd, H, p0 + i);
        m_rope.apply(m_k.data() + i * kvRow, KV, p0 + i);
    }

    LayerCache& lc = m_cache[size_t(L)];
    const float* k1 = lc.k1.data();
    const float* v1 = lc.v1.data();
    const float* pendK = nullptr;
    const float* pendV = nullptr;
    const float* ringK = nullptr;
    const float* ringV = nullptr;
    if (loop == 1) {
        // Rows p0.. of the loop-1 cache are written now and become visible to later loops of this call;
        // they count as committed only when forward() succeeds (m_pos).
        std::memcpy(lc.k1.data() + p0 * kvRow, m_k.data(), size_t(n * kvRow) * sizeof(float));
        std::memcpy(lc.v1.data() + p0 * kvRow, m_v.data(), size_t(n * kvRow) * sizeof(float));
    } else {
        const size_t idx = size_t((loop - 2) * c.numHiddenLayers + L);
        m_pendingK[idx].assign(m_k.begin(), m_k.end());
        m_pendingV[idx].assign(m_v.begin(), m_v.end());
        pendK = m_pendingK[idx].data();
        pendV = m_pendingV[idx].data();
        ringK = lc.kRing[size_t(loop - 2)].data();
        ringV = lc.vRing[size_t(loop - 2)].data();
        // Loop gate from the post-RoPE query, before the attention scale.
        m_gateW.resize(size_t(H * hd));
        for (int64_t h = 0; h < H; ++h) cpu::convertRow(w.loopGate, h, m_gateW.data() + h * hd);
        for (int64_t i = 0; i < n; ++i)
            for (int64_t h = 0; h < H; ++h)
                m_gate[size_t(i * H + h)] = sigmoid(
                    cpu::dot(m_q.data() + (i * H + h) * hd, m_gateW.data() + h * hd, hd) + w.loopGateBias.at(0, h));
        if (want & CaptureKind::Gates) m_hook->observeGates(loop, L, m_gate.data());
    }

    // Ask once per layer which heads' rows are wanted; the workers below only test these bytes.
    const bool wantAttn = (want & CaptureKind::Attention) != 0;
    const bool wantStreams = (want & CaptureKind::StreamStats) != 0 && loop > 1;
    if (wantAttn) {
        m_headStreams.assign(size_t(H), 0);
        for (int64_t h = 0; h < H; ++h)
            m_headStreams[size_t(h)] =
                uint8_t(m_hook->askHead(loop, L, h) & (loop == 1 ? StreamBits::Global : StreamBits::Both));
    }
    CaptureHook* hook = m_hook;

    const int64_t W = m_window;
    m_pool.parallelFor(n * H, [&](int64_t begin, int64_t end) {
        thread_local std::vector<float> scores;
        thread_local std::vector<float> local;
        thread_local std::vector<float> kept; // [keys] probabilities of a captured row (the scores stay in `scores`)
        // Row buffers only grow: a global row of p + 1 keys follows a local row of W keys, and resizing back
        // up would zero the whole row each time.
        const auto atLeast = [](std::vector<float>& v, int64_t n) {
            if (int64_t(v.size()) < n) v.resize(size_t(n));
        };
        const cpu::DotFn dot = cpu::dotKernel(); // local stream: once per block of rows, not once per key
        const cpu::AxpyFn axpy = cpu::axpyKernel();
        for (int64_t item = begin; item < end; ++item) {
            const int64_t i = item / H, h = item % H, kvh = h / group;
            const int64_t p = p0 + i;
            const float* q = m_q.data() + (i * H + h) * hd;
            float* out = m_attn.data() + (i * H + h) * hd;

            // Global stream (loop 1: the only stream): causal over loop-1 keys 0..p.
            atLeast(scores, p + 1);
            cpu::dotRows(q, k1 + kvh * hd, kvRow, p + 1, hd, scores.data());
            for (int64_t j = 0; j <= p; ++j) scores[size_t(j)] *= scale;
            const bool keepGlobal = wantAttn && (m_headStreams[size_t(h)] & StreamBits::Global);
            const float* probs = scores.data();
            if (keepGlobal) {
                atLeast(kept, p + 1);
                softmaxTo(scores.data(), kept.data(), p + 1);
                probs = kept.data();
                hook->observeAttention(loop, L, h, AttentionStream::Global, i, probs, scores.data(), 0, p + 1);
            } else {
                softmaxTo(scores.data(), scores.data(), p + 1);
            }
            std::fill(out, out + hd, 0.0f);
            cpu::axpyRows(probs, v1 + kvh * hd, kvRow, p + 1, hd, out);
            if (loop == 1) continue;

            // Local stream: this loop's keys at positions p-W+1..p; older ones from the ring, new ones pending.
            const int64_t first = std::max<int64_t>(0, p - W + 1);
            const int64_t cnt = p - first + 1;
            auto keyAt = [&](int64_t j, const float* pend, const float* ring) {
                return j >= p0 ? pend + (j - p0) * kvRow + kvh * hd : ring + (j % W) * kvRow + kvh * hd;
            };
            atLeast(scores, cnt);
            for (int64_t j = first; j <= p; ++j) scores[size_t(j - first)] = dot(q, keyAt(j, pendK, ringK), hd) * scale;
            const bool keepLocal = wantAttn && (m_headStreams[size_t(h)] & StreamBits::Local);
            const float* lprobs = scores.data();
            if (keepLocal) {
                atLeast(kept, cnt);
                softmaxTo(scores.data(), kept.data(), cnt);
                lprobs = kept.data();
                hook->observeAttention(loop, L, h, AttentionStream::Local, i, lprobs, scores.data(), first, cnt);
            } else {
                softmaxTo(scores.data(), scores.data(), cnt);
            }
            local.assign(size_t(hd), 0.0f);
            for (int64_t j = first; j <= p; ++j) axpy(lprobs[j - first], keyAt(j, pendV, ringV), local.data(), hd);
            const float g = m_gate[size_t(i * H + h)];
            if (wantStreams) hook->observeStreams(loop, L, h, i, out, local.data(), g);
            for (int64_t d = 0; d < hd; ++d) out[d] = g * out[d] + (1.0f - g) * local[size_t(d)];
        }
    });

    cpu::matmul(m_pool, m_attn.data(), n, w.o, m_proj.data()); // [n, D]
    for (int64_t t = 0; t < n * D; ++t) m_h[size_t(t)] += m_proj[size_t(t)];
}

void InferenceSession::swiGlu(const SwiGluWeights& w, const float* x, int64_t m, float* out)
{
    const int64_t F = w.gate.rows;
    m_ffnA.resize(size_t(m * F));
    m_ffnB.resize(size_t(m * F));
    cpu::matmul(m_pool, x, m, w.gate, m_ffnA.data()); // [m, F]
    cpu::matmul(m_pool, x, m, w.up, m_ffnB.data());   // [m, F]
    for (int64_t t = 0; t < m * F; ++t) {
        const float g = m_ffnA[size_t(t)];
        m_ffnA[size_t(t)] = g / (1.0f + std::exp(-g)) * m_ffnB[size_t(t)];
    }
    cpu::matmul(m_pool, m_ffnA.data(), m, w.down, out); // [m, D]
}

void InferenceSession::feedForward(const LayerWeights& w, int64_t n, int64_t loop, int64_t L, uint32_t want)
{
    const ModelConfig& c = m_model.config();
    const int64_t D = c.hiddenSize;
    cpu::rmsnorm(m_h.data(), n, D, w.postNorm, float(c.rmsNormEps), m_x.data()); // [n, D]

    if (!w.moe) {
        swiGlu(w.mlp, m_x.data(), n, m_proj.data());
        for (int64_t t = 0; t < n * D; ++t) m_h[size_t(t)] += m_proj[size_t(t)];
        return;
    }

    // Mixture of experts (Qwen2-MoE convention): softmax over all experts, top-k, optional renormalisation.
    const int64_t E = c.numExperts, K = c.numExpertsPerTok;
    m_router.resize(size_t(n * E));
    cpu::matmul(m_pool, m_x.data(), n, w.router, m_router.data()); // [n, E]
    std::vector<int32_t> chosen(size_t(n * K));                    // [n, K] expert ids, most probable first
    std::vector<float> weight(size_t(n * K));                      // [n, K]
    std::vector<int32_t> order(static_cast<size_t>(E));
    for (int64_t i = 0; i < n; ++i) {
        float* p = m_router.data() + i * E;
        softmaxTo(p, p, E);
        for (int64_t e = 0; e < E; ++e) order[size_t(e)] = int32_t(e);
        std::partial_sort(order.begin(), order.begin() + K, order.end(),
                          [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
        float sum = 0.0f;
        for (int64_t k = 0; k < K; ++k) sum += p[order[size_t(k)]];
        for (int64_t k = 0; k < K; ++k) {
            chosen[size_t(i * K + k)] = order[size_t(k)];
            weight[size_t(i * K + k)] = c.normTopkProb ? p[order[size_t(k)]] / sum : p[order[size_t(k)]];
        }
    }

    if (want & (CaptureKind::RouterProbs | CaptureKind::RouterChoice))
        m_hook->observeRouter(loop, L, m_router.data(), chosen.data(), weight.data());

    std::vector<float> acc(size_t(n * D), 0.0f); // [n, D] sum over chosen experts
    std::vector<int64_t> rows;
    std::vector<float> rowWeight;
    for (int64_t e = 0; e < E; ++e) {
        rows.clear();
        rowWeight.clear();
        for (int64_t i = 0; i < n; ++i)
            for (int64_t k = 0; k < K; ++k)
                if (chosen[size_t(i * K + k)] == e) {
                    rows.push_back(i);
                    rowWeight.push_back(weight[size_t(i * K + k)]);
                }
        if (rows.empty()) continue;
        const int64_t m = int64_t(rows.size());
        m_ffnIn.resize(size_t(m * D));
        m_ffnOut.resize(size_t(m * D));
        for (int64_t r = 0; r < m; ++r)
            std::memcpy(m_ffnIn.data() + r * D, m_x.data() + rows[size_t(r)] * D, size_t(D) * sizeof(float));
        swiGlu(w.experts[size_t(e)], m_ffnIn.data(), m, m_ffnOut.data());
        for (int64_t r = 0; r < m; ++r)
            cpu::axpy(rowWeight[size_t(r)], m_ffnOut.data() + r * D, acc.data() + rows[size_t(r)] * D, D);
    }
    if (w.hasSharedExpert) {
        m_ffnOut.resize(size_t(n * D));
        swiGlu(w.sharedExpert, m_x.data(), n, m_ffnOut.data());
        std::vector<float> gw(static_cast<size_t>(D));
        cpu::convertRow(w.sharedExpertGate, 0, gw.data());
        for (int64_t i = 0; i < n; ++i) {
            const float s = sigmoid(cpu::dot(m_x.data() + i * D, gw.data(), D));
            cpu::axpy(s, m_ffnOut.data() + i * D, acc.data() + i * D, D);
        }
    }
    for (int64_t t = 0; t < n * D; ++t) m_h[size_t(t)] += acc[size_t(t)];
}

} // namespace sage
