#include "engine/ir/IrSweep.h"

#include "engine/capture/CaptureHook.h"
#include "engine/core/SageError.h"
#include "engine/cpu/Kernels.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/model/Model.h"
#include "engine/model/ModelConfig.h"
#include "engine/runtime/InferenceSession.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>

namespace sage {

namespace {

// Top k entries of softmax(logits[0, V)), most probable first.
std::vector<std::pair<int32_t, float>> softmaxTop(const float* logits, int64_t V, int k)
{
    float mx = logits[0];
    for (int64_t v = 1; v < V; ++v) mx = std::max(mx, logits[v]);
    double sum = 0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp(double(logits[v] - mx));
    std::vector<int32_t> idx(static_cast<size_t>(V));
    for (int64_t v = 0; v < V; ++v) idx[size_t(v)] = int32_t(v);
    const int64_t kk = std::min<int64_t>(k, V);
    std::partial_sort(idx.begin(), idx.begin() + kk, idx.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    std::vector<std::pair<int32_t, float>> out;
    for (int64_t i = 0; i < kk; ++i)
        out.emplace_back(idx[size_t(i)], float(std::exp(double(logits[idx[size_t(i)]] - mx)) / sum));
    return out;
}

// Keeps what the sweep needs from one teacher-forced pass and nothing else.
class SweepHook : public CaptureHook
{
public:
    SweepHook(const Model& model, int64_t T, const std::function<void(double)>& progress)
        : m_T(T), m_loops(model.config().loopNum), m_layers(model.config().numHiddenLayers),
          m_heads(model.config().numAttentionHeads), m_experts(model.config().numExperts),
          m_expertsPerTok(model.config().numExpertsPerTok), m_D(model.config().hiddenSize), m_progress(progress),
          m_rowLocks(std::make_unique<std::mutex[]>(size_t(T)))
    {
        const size_t K = size_t(m_loops * m_layers);
        maps.resize(K);
        offDiag.resize(K);
        routing.resize(K);
        loopHidden.assign(size_t(m_loops * T * m_D), 0.0f);
    }

    std::vector<std::vector<float>> maps;    // per k: [T, T] head-mean effective attention (rows summed over heads)
    std::vector<std::vector<float>> offDiag; // per k: [T, H, 2] stream weight * (1 - A[i, i]) per head and stream
    std::vector<std::vector<float>> routing; // per k (MoE layers): [T, E] routing weight as applied, 0 if not chosen
    std::vector<float> loopHidden;           // [loops, T, D]

    uint32_t beginForward(int64_t p0, std::span<const int32_t> tokens, int64_t) override
    {
        m_p0 = p0;
        m_n = int64_t(tokens.size());
        return 0;
    }
    void endForward(bool) override {}

    uint32_t askLayer(int64_t loop, int64_t layer) override
    {
        const size_t k = size_t((loop - 1) * m_layers + layer);
        if (maps[k].empty()) {
            maps[k].assign(size_t(m_T * m_T), 0.0f);
            offDiag[k].assign(size_t(m_T * m_heads * 2), 0.0f);
        }
        if (m_progress) m_progress(double(k) / double(m_loops * m_layers));
        uint32_t kinds = CaptureKind::Attention | CaptureKind::RouterChoice;
        if (loop > 1) kinds |= CaptureKind::Gates;
        // The residual after a loop's last layer feeds that loop's logit lens, computed later for a few rows.
        if (layer == m_layers - 1) kinds |= CaptureKind::Residual;
        return kinds;
    }
    uint32_t askHead(int64_t loop, int64_t, int64_t) override
    {
        return loop == 1 ? StreamBits::Global : StreamBits::Both;
    }
    void observeAttention(int64_t loop, int64_t layer, int64_t head, AttentionStream stream, int64_t i,
                          const float* probs, const float*, int64_t firstKey, int64_t count) override
    {
        const int64_t k = (loop - 1) * m_layers + layer;
        const int64_t p = m_p0 + i;
        float w = 1.0f;
        if (loop > 1) {
            const float g = m_gates[size_t(i * m_heads + head)];
            w = stream == AttentionStream::Global ? g : 1.0f - g;
        }
        const int s = stream == AttentionStream::Global ? 0 : 1;
        offDiag[size_t(k)][size_t((p * m_heads + head) * 2 + s)] = w * (1.0f - probs[p - firstKey]);
        const float scaled = w / float(m_heads);
        float* row = maps[size_t(k)].data() + p * m_T + firstKey;
        // Heads of one row may run on different workers; a lock per row keeps the sum exact and cheap.
        std::lock_guard<std::mutex> lock(m_rowLocks[size_t(p)]);
        cpu::axpy(scaled, probs, row, count);
    }
    void observeStreams(int64_t, int64_t, int64_t, int64_t, const float*, const float*, float) override {}
    void observeGates(int64_t, int64_t, const float* gates) override { m_gates.assign(gates, gates + m_n * m_heads); }
    void observeRouter(int64_t loop, int64_t layer, const float*, const int32_t* experts, const float* weights) override
    {
        const size_t k = size_t((loop - 1) * m_layers + layer);
        if (routing[k].empty()) routing[k].assign(size_t(m_T * m_experts), 0.0f);
        const int64_t K = m_expertsPerTok;
        for (int64_t i = 0; i < m_n; ++i)
            for (int64_t j = 0; j < K; ++j)
                routing[k][size_t((m_p0 + i) * m_experts + experts[i * K + j])] = weights[i * K + j];
    }
    void observeResidual(int64_t loop, int64_t, const float* hidden) override
    {
        std::copy(hidden, hidden + m_n * m_D, loopHidden.begin() + ((loop - 1) * m_T + m_p0) * m_D);
    }
    void observeLens(int64_t, int64_t, int64_t, int64_t, const float*, const float*) override {}
    void observeLensInput(int64_t, int64_t, const float*) override {}
    void observeLogits(const float*) override {}

private:
    int64_t m_T, m_loops, m_layers, m_heads, m_experts, m_expertsPerTok, m_D;
    const std::function<void(double)>& m_progress;
    std::unique_ptr<std::mutex[]> m_rowLocks;
    int64_t m_p0 = 0, m_n = 0;
    std::vector<float> m_gates; // [n, H] gates of the current layer
};

// out[r, :] = row r of R * (0.5 * A + 0.5 * I), for R [rows, T] whose row r is zero after column q_r.
void backwardStep(cpu::ThreadPool* pool, const float* A, int64_t T, std::span<const int64_t> rows, const float* R,
                  float* out)
{
    auto work = [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
            const int64_t q = rows[size_t(r)];
            const float* in = R + r * T;
            float* o = out + r * T;
            for (int64_t j = 0; j < T; ++j) o[j] = 0.5f * in[j];
            // Row i of A is non-zero on keys 0..i only, so the product stays lower-triangular.
            for (int64_t i = 0; i <= q; ++i)
                if (in[i] != 0.0f) cpu::axpy(0.5f * in[i], A + i * T, o, i + 1);
        }
    };
    const int64_t n = int64_t(rows.size());
    if (pool)
        pool->parallelFor(n, work);
    else
        work(0, n);
}

} // namespace

uint64_t IrSweep::mapBytes(int64_t loops, int64_t layers, int64_t T)
{
    return uint64_t(loops * layers) * uint64_t(T) * uint64_t(T) * sizeof(float);
}

std::vector<float> IrSweep::propagate(const std::vector<std::vector<float>>& maps, int64_t T,
                                      std::span<const int64_t> rows, cpu::ThreadPool* pool)
{
    const int64_t n = int64_t(rows.size());
    for (int64_t q : rows)
        if (q < 0 || q >= T)
            throw SageError("relevance propagation: row " + std::to_string(q) + " is outside [0, " + std::to_string(T) +
                            ")");
    for (const auto& m : maps)
        if (int64_t(m.size()) != T * T)
            throw SageError("relevance propagation: a map has " + std::to_string(m.size()) + " entries, expected " +
                            std::to_string(T * T) + " (T x T)");
    std::vector<float> R(size_t(n * T), 0.0f), next(size_t(n * T)); // [n, T] each
    for (int64_t r = 0; r < n; ++r) R[size_t(r * T + rows[size_t(r)])] = 1.0f;
    for (int64_t k = int64_t(maps.size()) - 1; k >= 0; --k) {
        backwardStep(pool, maps[size_t(k)].data(), T, rows, R.data(), next.data());
        R.swap(next);
    }
    return R;
}

IrSweep::IrSweep(const Model& model, cpu::ThreadPool& pool)
    : m_model(model), m_pool(pool), m_loops(model.config().loopNum), m_layers(model.config().numHiddenLayers),
      m_heads(model.config().numAttentionHeads), m_experts(model.config().numExperts)
{
}

IrSweep::~IrSweep() = default;

std::vector<float> IrSweep::run(std::span<const int32_t> tokens, int64_t promptLength, uint64_t memoryBudget,
                                const std::atomic<bool>* cancel, const std::function<void(double)>& progress)
{
    const int64_t T = int64_t(tokens.size());
    if (promptLength < 1 || promptLength > T)
        throw SageError("inverse reasoning: the prompt length " + std::to_string(promptLength) +
                        " must be between 1 and the sequence length " + std::to_string(T));
    const uint64_t bytes = mapBytes(m_loops, m_layers, T);
    if (memoryBudget > 0 && bytes > memoryBudget)
        throw SageError("inverse reasoning: a sequence of " + std::to_string(T) + " tokens needs " +
                        std::to_string(bytes) + " bytes of attention maps (" + std::to_string(m_loops) + " loops x " +
                        std::to_string(m_layers) + " layers x T x T floats), over the budget of " +
                        std::to_string(memoryBudget) + " bytes; generate fewer tokens or raise the budget");
    m_T = T;
    m_P = promptLength;
    const int64_t K = m_loops * m_layers;

    // 1. One teacher-forced pass with full attention: 0.8 of the progress.
    const std::function<void(double)> fwdProgress = [&](double f) {
        if (progress) progress(0.8 * f);
    };
    {
        SweepHook hook(m_model, T, fwdProgress);
        InferenceSession session(m_model, m_pool);
        session.setCaptureHook(&hook);
        std::vector<float> logits;
        session.forward(tokens, false, logits, cancel);
        m_maps = std::move(hook.maps);
        m_offDiag = std::move(hook.offDiag);
        m_routing = std::move(hook.routing);
        m_loopHidden = std::move(hook.loopHidden);
    }
    // Head means of row-stochastic rows are row-stochastic up to rounding; normalising makes every relevance
    // row sum to 1 to float precision, whatever the depth.
    for (auto& m : m_maps) {
        if (m.empty()) m.assign(size_t(T * T), 0.0f);
        for (int64_t i = 0; i < T; ++i) {
            float* row = m.data() + i * T;
            double s = 0;
            for (int64_t j = 0; j <= i; ++j) s += row[j];
            if (s <= 0) {
                row[i] = 1.0f;
                continue;
            }
            const float inv = float(1.0 / s);
            for (int64_t j = 0; j <= i; ++j) row[j] *= inv;
        }
    }

    // 2. Backward sweep for the rows of every generated token (query rows P-1 .. T-2) together.
    const int64_t G = T - promptLength;
    std::vector<int64_t> rows(static_cast<size_t>(G));
    for (int64_t g = 0; g < G; ++g) rows[size_t(g)] = promptLength - 1 + g;
    std::vector<float> R(size_t(G * T), 0.0f), next(size_t(G * T)); // [G, T]
    for (int64_t g = 0; g < G; ++g) R[size_t(g * T + rows[size_t(g)])] = 1.0f;
    for (int64_t k = K - 1; k >= 0; --k) {
        if (cancel && cancel->load()) throw CancelledError();
        backwardStep(&m_pool, m_maps[size_t(k)].data(), T, rows, R.data(), next.data());
        R.swap(next);
        if (progress) progress(0.8 + 0.2 * double(K - k) / double(K));
    }
    return R;
}

std::vector<IrCandidateEvidence> IrSweep::evidence(std::span<const int64_t> positions) const
{
    if (positions.empty()) return {};
    const int64_t T = m_T, H = m_heads, E = m_experts, K = m_loops * m_layers;
    std::vector<int64_t> rows;
    for (int64_t d : positions) {
        if (d < m_P || d >= T)
            throw SageError("inverse reasoning: position " + std::to_string(d) + " is not a generated position [" +
                            std::to_string(m_P) + ", " + std::to_string(T) + ")");
        rows.push_back(d - 1);
    }
    const int64_t n = int64_t(rows.size());
    std::vector<IrCandidateEvidence> out(rows.size());
    for (size_t c = 0; c < out.size(); ++c) {
        out[c].position = positions[c];
        out[c].carried.assign(size_t(K * H * 2), 0.0f);
        if (E > 0) out[c].expertMass.assign(size_t(K * E), 0.0f);
    }
    std::vector<float> R(size_t(n * T), 0.0f), next(size_t(n * T)); // [n, T]
    for (int64_t r = 0; r < n; ++r) R[size_t(r * T + rows[size_t(r)])] = 1.0f;
    for (int64_t k = K - 1; k >= 0; --k) {
        // The relevance arriving at the output of layer k (r_after) is what its attention and experts carried.
        for (int64_t c = 0; c < n; ++c) {
            const float* r = R.data() + c * T;
            const float* od = m_offDiag[size_t(k)].data();
            IrCandidateEvidence& ce = out[size_t(c)];
            for (int64_t i = 0; i <= rows[size_t(c)]; ++i) {
                if (r[i] == 0.0f) continue;
                for (int64_t h = 0; h < H; ++h)
                    for (int s = 0; s < 2; ++s)
                        ce.carried[size_t((k * H + h) * 2 + s)] += 0.5f / float(H) * r[i] * od[(i * H + h) * 2 + s];
                if (E > 0 && !m_routing[size_t(k)].empty())
                    for (int64_t e = 0; e < E; ++e)
                        ce.expertMass[size_t(k * E + e)] += r[i] * m_routing[size_t(k)][size_t(i * E + e)];
            }
        }
        backwardStep(&m_pool, m_maps[size_t(k)].data(), T, rows, R.data(), next.data());
        R.swap(next);
    }
    return out;
}

std::vector<std::pair<int32_t, float>> IrSweep::loopPrediction(int64_t loop, int64_t row, int k) const
{
    if (loop < 1 || loop > m_loops || row < 0 || row >= m_T)
        throw SageError("inverse reasoning: no lens at loop " + std::to_string(loop) + ", row " + std::to_string(row));
    const ModelConfig& c = m_model.config();
    const int64_t D = c.hiddenSize;
    std::vector<float> x(static_cast<size_t>(D)), logits(static_cast<size_t>(c.vocabSize)); // [1, D], [1, V]
    cpu::rmsnorm(m_loopHidden.data() + ((loop - 1) * m_T + row) * D, 1, D, m_model.finalNorm(), float(c.rmsNormEps),
                 x.data());
    cpu::matmul(m_pool, x.data(), 1, m_model.lmHead(), logits.data());
    return softmaxTop(logits.data(), c.vocabSize, k);
}

} // namespace sage
