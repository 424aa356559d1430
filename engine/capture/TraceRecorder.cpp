#include "engine/capture/TraceRecorder.h"

#include "engine/cpu/Kernels.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/model/Model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace sage {

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

} // namespace

TraceRecorder::TraceRecorder(const Model& model, CapturePolicy policy, Trace& trace, cpu::ThreadPool* pool)
    : m_model(model), m_policy(std::move(policy)), m_trace(trace), m_pool(pool),
      m_serial(std::make_unique<cpu::ThreadPool>(1))
{
    if (!m_pool) m_pool = m_serial.get();
    setLensBatching(m_batching);
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
    m_gram.assign(size_t(c.numHiddenLayers), nullptr);
}

TraceRecorder::~TraceRecorder()
{
    // Steps of completed calls are kept if at all possible (a generation that failed later still has them).
    try {
        flush();
    } catch (...) {
    }
}

void TraceRecorder::setLensBatching(const LensBatching& batching)
{
    flush(); // steps held under the old settings
    m_batching = batching;
    using Mode = LensBatching::Mode;
    m_batched = batching.mode == Mode::Batched ||
                (batching.mode == Mode::Auto && m_model.weightBytes() <= kBatchedLensMaxWeightBytes &&
                 1 + lensRowsPerStep() > cpu::kMatvecMaxTokens);
}

int64_t TraceRecorder::lensRowsPerStep() const
{
    using namespace CaptureKind;
    const ModelConfig& c = m_model.config();
    int64_t rows = (m_policy.kinds() & LogitLens) ? c.loopNum - 1 : 0; // after every loop but the last
    if (m_policy.kinds() & LensLayer)
        for (int64_t loop = 1; loop <= c.loopNum; ++loop)
            for (int64_t L = 0; L < c.numHiddenLayers; ++L)
                if (m_policy.layerKinds(c, loop, L) & LensLayer) ++rows;
    return rows;
}

bool TraceRecorder::lensWanted() const
{
    return (m_policy.kinds() & (CaptureKind::LogitLens | CaptureKind::LensLayer)) != 0;
}

uint32_t TraceRecorder::beginForward(int64_t p0, std::span<const int32_t> tokens, int64_t loops)
{
    m_callStart = Clock::now();
    m_callJobs = m_jobs.size();
    if (loops != m_loops) {
        m_loops = loops;
        m_layersPerStep = 0;
        for (int64_t l = 1; l <= loops; ++l)
            for (int64_t L = 0; L < m_model.config().numHiddenLayers; ++L)
                if (m_policy.layerKinds(m_model.config(), l, L) != 0) ++m_layersPerStep;
    }
    m_p0 = p0;
    m_pending.clear();
    m_pending.reserve(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
        auto s = std::make_shared<StepRecord>();
        s->position = p0 + int64_t(i);
        s->token = tokens[i];
        s->layers.reserve(m_layersPerStep); // records are not moved as they come, nor over-allocated
        if (i == 0 && m_nextChoice && m_nextChoice->token == tokens[0]) {
            s->generated = true;
            s->choice = *m_nextChoice;
        }
        m_pending.push_back(std::move(s));
    }
    m_nextChoice.reset();
    m_finalFor = nullptr; // the WithHead softmax slots belong to one forward call
    // Batched lens: decode steps only. A prompt's rows are many at once already: the session computes their
    // lens (observeLens, with the blocked kernel unless the prompt is short enough to share the head's pass),
    // without copying the prompt's logits here.
    const bool inputs = m_batched && lensWanted() && tokens.size() == 1;
    return (m_policy.kinds() & CaptureKind::ForwardMask) | (inputs ? CaptureKind::LensInput : 0);
}

void TraceRecorder::endForward(bool ok)
{
    const int64_t D = m_model.config().hiddenSize, V = m_model.config().vocabSize;
    if (!ok) {
        // Forget the failed call; what is held belongs to earlier calls that completed.
        m_jobs.resize(m_callJobs);
        m_jobHidden.resize(m_callJobs * size_t(D));
        m_final.resize(m_held.size() * size_t(V));
        m_finalLoops.resize(m_held.size());
        m_pending.clear();
        return;
    }
    // Full rows over the policy's key limit were not filled (observeAttention): drop their slots.
    if (m_policy.fullRowMaxKeys() > 0)
        for (auto& step : m_pending)
            for (LayerRecord& r : step->layers)
                std::erase_if(r.fullRows, [](const FullAttentionRow& f) { return f.probs.empty(); });
    const auto now = Clock::now();
    const bool single = m_pending.size() == 1;
    if (m_held.empty()) m_heldSince = m_callStart;
    m_held.insert(m_held.end(), m_pending.begin(), m_pending.end());
    m_pending.clear();
    const bool hold = m_batched && lensWanted() && single && int64_t(m_held.size()) < m_batching.maxSteps &&
                      now - m_callStart < m_batching.slowCall && now - m_heldSince < m_batching.maxHold;
    if (!hold) flush();
}

void TraceRecorder::flush()
{
    if (m_held.empty()) return;
    const ModelConfig& c = m_model.config();
    const int64_t D = c.hiddenSize, V = c.vocabSize;
    std::vector<std::pair<StepRecord*, LensRecord>> records;
    // The first S held steps came from decode calls that gave lens inputs (a prompt's steps, which may follow
    // them, got their lens from the session).
    const size_t S = m_finalLoops.size();
    if (S > 0) {
        // The final distribution of each of those steps, once; then the lens rows in chunks.
        m_finalExp.resize(S * size_t(V));
        m_finalMax.resize(S);
        m_finalSum.resize(S);
        for (size_t s = 0; s < S; ++s) finalSoftmax(m_final.data() + s * size_t(V), s);
        records.reserve(m_jobs.size() + S);
        constexpr int64_t kChunk = 32; // lens rows per product: bounds the scratch to [32, V]
        for (size_t j0 = 0; j0 < m_jobs.size(); j0 += size_t(kChunk)) {
            const int64_t rows = std::min<int64_t>(kChunk, int64_t(m_jobs.size() - j0));
            m_lensLogits.resize(size_t(rows * V));
            if (!m_packTried) {
                m_packTried = true;
                if (uint64_t(V) * uint64_t(D) * sizeof(float) <= kPackedHeadMaxBytes)
                    m_packedHead = std::make_unique<cpu::PackedWeight>(m_model.lmHead());
            }
            lensLogits(m_model, *m_pool, m_jobHidden.data() + j0 * size_t(D), rows, m_normed, m_lensLogits.data(),
                       m_packedHead.get());
            for (int64_t r = 0; r < rows; ++r) {
                const LensJob& job = m_jobs[j0 + size_t(r)];
                records.emplace_back(m_held[job.held].get(),
                                     lensRecord(job.loop, job.layer, m_lensLogits.data() + r * V,
                                                m_final.data() + job.held * size_t(V), job.held));
            }
        }
        if (m_policy.kinds() & CaptureKind::LogitLens)
            for (size_t s = 0; s < S; ++s)
                records.emplace_back(m_held[s].get(), lensRecord(m_finalLoops[s], -1, m_final.data() + s * size_t(V),
                                                                 m_final.data() + s * size_t(V), s));
    }
    for (auto& [step, rec] : records) step->lens.push_back(std::move(rec));
    std::vector<Trace::StepPtr> steps(m_held.begin(), m_held.end());
    m_held.clear();
    m_jobs.clear();
    m_jobHidden.clear();
    m_final.clear();
    m_finalLoops.clear();
    m_trace.append(std::move(steps));
}

const TraceRecorder::LayerPlan& TraceRecorder::plan(int64_t loop, int64_t layer)
{
    const ModelConfig& c = m_model.config();
    const size_t at = size_t((loop - 1) * c.numHiddenLayers + layer);
    if (m_plans.size() <= at) m_plans.resize(at + 1);
    LayerPlan& p = m_plans[at];
    if (p.known) return p;
    p.known = true;
    p.kinds = m_policy.layerKinds(c, loop, layer);
    const int64_t H = c.numAttentionHeads, S = loop == 1 ? 1 : 2;
    p.headBits.assign(size_t(H), 0);
    // Rows of the heads that keep full rows, with their shape known now (query position, stream).
    p.fullIndex.assign(size_t(H * S), -1);
    for (int64_t h = 0; h < H; ++h) {
        const uint32_t bits = m_policy.headStreams(loop, layer, h);
        p.headBits[size_t(h)] = bits;
        if (!(p.kinds & CaptureKind::Attention) || !m_policy.fullRows(layer, h)) continue;
        for (int64_t s = 0; s < S; ++s)
            if (bits & (1u << s)) {
                p.fullIndex[size_t(h * S + s)] = int32_t(p.full.size());
                p.full.push_back({int16_t(h), uint8_t(s)});
            }
    }
    return p;
}

uint32_t TraceRecorder::askLayer(int64_t loop, int64_t layer)
{
    const ModelConfig& c = m_model.config();
    m_plan = &plan(loop, layer);
    m_planLoop = loop;
    m_planLayer = layer;
    const uint32_t kinds = m_plan->kinds;
    if (kinds == 0) return 0;
    using namespace CaptureKind;
    const int64_t H = c.numAttentionHeads, E = c.numExperts, K = c.numExpertsPerTok;
    const int64_t S = loop == 1 ? 1 : 2, k = m_policy.attentionTopK();
    const auto& full = m_plan->full;
    if ((kinds & StreamStats) && loop > 1) { // the streams exist from loop 2 on
        // Here, before the attention workers read m_gram. The layer's Gram matrices ([H, hd, hd]) have usually
        // left the caches since the last token (the model's weights stream through them): ask for them now, so
        // that they arrive while the layer's attention runs instead of stalling observeStreams. Only while they
        // are small next to a core's cache (32 KiB on the bundled model, 4 MiB on the 40B shape).
        constexpr int64_t kPrefetchMaxFloats = 64 * 1024;
        const float* g = gram(layer);
        const int64_t floats = H * c.headDim * c.headDim;
        if (floats <= kPrefetchMaxFloats)
            for (int64_t f = 0; f < floats; f += 16) __builtin_prefetch(g + f, 0, 2); // one 64-byte line each
    }
    for (auto& step : m_pending) {
        LayerRecord& r = step->layers.emplace_back();
        r.loop = int16_t(loop);
        r.layer = int16_t(layer);
        if (kinds & Gates) r.gate.assign(size_t(H), kNaN);
        if (kinds & StreamStats) {
            r.normGlobal.assign(size_t(H), kNaN);
            r.normLocal.assign(size_t(H), kNaN);
            r.divergence.assign(size_t(H), kNaN);
        }
        if (kinds & RouterProbs) r.routerProbs.assign(size_t(E), 0.0f);
        if (kinds & RouterChoice) {
            r.experts.assign(size_t(K), -1);
            r.expertWeights.assign(size_t(K), 0.0f);
        }
        if (kinds & Attention) {
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
    return kinds;
}

uint32_t TraceRecorder::askHead(int64_t loop, int64_t layer, int64_t head)
{
    if (m_plan && loop == m_planLoop && layer == m_planLayer) return m_plan->headBits[size_t(head)];
    return m_policy.headStreams(loop, layer, head);
}

void TraceRecorder::observeAttention(int64_t /*loop*/, int64_t /*layer*/, int64_t head, AttentionStream stream,
                                     int64_t i, const float* probs, const float* scores, int64_t firstKey,
                                     int64_t count)
{
    LayerRecord& r = current(i);
    const int64_t slot = head * r.streams + int64_t(stream);
    const int32_t f = m_plan->fullIndex[size_t(slot)];
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
        cpu::topK(probs, count, k, keys, vals);
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

const float* TraceRecorder::gram(int64_t layer)
{
    const float*& g = m_gram[size_t(layer)];
    if (!g) g = m_model.headOutputGram(layer, *m_pool).data();
    return g;
}

void TraceRecorder::observeStreams(int64_t /*loop*/, int64_t layer, int64_t head, int64_t i, const float* a,
                                   const float* b, float g)
{
    // ||o_proj_h x||^2 = x^T G x with the head's Gram matrix G = W_h^T W_h ([hd, hd], precomputed): hd^2 work
    // instead of D * hd. G a and G b in one pass over G (symmetric), on this worker thread alone.
    const int64_t hd = m_model.config().headDim;
    thread_local std::vector<float> gab;
    gab.resize(size_t(2 * hd)); // [G a; G b]
    cpu::symmetricProducts(m_gram[size_t(layer)] + head * hd * hd, hd, a, b, gab.data(), gab.data() + hd);
    const double qa = cpu::dot(a, gab.data(), hd), qb = cpu::dot(b, gab.data() + hd, hd);
    const double ab = cpu::dot(a, b, hd), aa = cpu::dot(a, a, hd), bb = cpu::dot(b, b, hd);
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
        const float* h = hidden + int64_t(i) * D;
        current(int64_t(i)).residualNorm = std::sqrt(std::max(0.0f, cpu::dot(h, h, D)));
    }
}

void TraceRecorder::observeLensInput(int64_t loop, int64_t layer, const float* hidden)
{
    const int64_t D = m_model.config().hiddenSize;
    const size_t n = m_pending.size();
    m_jobHidden.insert(m_jobHidden.end(), hidden, hidden + n * size_t(D));
    for (size_t i = 0; i < n; ++i) m_jobs.push_back({m_held.size() + i, int16_t(loop), int16_t(layer)});
}

void TraceRecorder::observeLogits(const float* logits)
{
    const int64_t V = m_model.config().vocabSize;
    const size_t n = m_pending.size();
    if (m_policy.kinds() & CaptureKind::Logits)
        for (size_t i = 0; i < n; ++i)
            m_pending[i]->logits.assign(logits + i * size_t(V), logits + (i + 1) * size_t(V));
    if (m_batched && lensWanted() && n == 1) {
        m_final.insert(m_final.end(), logits, logits + n * size_t(V));
        m_finalLoops.insert(m_finalLoops.end(), n, int16_t(m_loops));
    }
}

void TraceRecorder::observeLens(int64_t loop, int64_t layer, int64_t i0, int64_t rows, const float* lens,
                                const float* final)
{
    // WithHead: the session computed the lens rows; `final` points at row i0 of the call's [n, V] logits.
    const int64_t V = m_model.config().vocabSize;
    const float* base = final - i0 * V;
    const size_t n = m_pending.size();
    if (m_finalFor != base) {
        m_finalFor = base;
        m_finalExp.resize(n * size_t(V));
        m_finalMax.resize(n);
        m_finalSum.assign(n, -1.0); // filled per row on first use
    }
    for (int64_t r = 0; r < rows; ++r) {
        const size_t row = size_t(i0 + r);
        const float* f = base + row * size_t(V);
        if (m_finalSum[row] < 0) finalSoftmax(f, row);
        m_pending[row]->lens.push_back(lensRecord(loop, layer, lens + r * V, f, row));
    }
}

void TraceRecorder::finalSoftmax(const float* f, size_t s)
{
    const int64_t V = m_model.config().vocabSize;
    m_finalMax[s] = cpu::maxValue(f, V);
    m_finalSum[s] = cpu::expShifted(f, V, m_finalMax[s], m_finalExp.data() + s * size_t(V));
}

LensRecord TraceRecorder::lensRecord(int64_t loop, int64_t layer, const float* l, const float* f, size_t s)
{
    const int64_t V = m_model.config().vocabSize;
    const int k = std::max(0, m_policy.lensTopK());
    const float* pf = m_finalExp.data() + s * size_t(V);
    const float mf = m_finalMax[s];
    const double sf = m_finalSum[s];
    const bool same = l == f; // the last loop: the lens is the output itself, KL 0
    // KL(final || lens) = sum pf * (log pf - log pl) with log pf - log pl = (f - l) - (log Zf - log Zl), so
    // no logarithm per entry. The top-k of the lens are those of its logits (exp is monotonic).
    float ml = mf;
    double sl = sf, kl = 0;
    if (!same) {
        std::vector<float>& tmp = m_lensTmp;
        tmp.resize(size_t(V));
        ml = cpu::maxValue(l, V);
        sl = cpu::expShifted(l, V, ml, tmp.data());
        // sum pf * ((f - l) - dz) / sf = sum pf * (f - l) / sf - dz, as sum pf = sf (within rounding).
        const double dz = (double(mf) + std::log(sf)) - (double(ml) + std::log(sl));
        // f - l by the vector kernel: -1 * l is exact, so this is the rounded difference itself.
        std::memcpy(tmp.data(), f, size_t(V) * sizeof(float));
        cpu::axpy(-1.0f, l, tmp.data(), V);
        kl = double(cpu::dot(pf, tmp.data(), V)) / sf - dz;
    }
    LensRecord rec;
    rec.loop = int16_t(loop);
    rec.layer = int16_t(layer);
    rec.kl = float(std::max(0.0, kl));
    rec.tokens.resize(size_t(k));
    rec.probs.resize(size_t(k));
    if (k > 0) {
        cpu::topK(l, V, k, rec.tokens.data(), rec.probs.data());
        for (int e = 0; e < k; ++e)
            rec.probs[size_t(e)] =
                rec.tokens[size_t(e)] < 0 ? 0.0f : float(std::exp(double(rec.probs[size_t(e)] - ml)) / sl);
    }
    return rec;
}

} // namespace sage
