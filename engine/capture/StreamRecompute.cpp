#include "engine/capture/StreamRecompute.h"

#include "engine/capture/CaptureHook.h"
#include "engine/core/SageError.h"
#include "engine/model/Model.h"
#include "engine/runtime/InferenceSession.h"

#include <algorithm>
#include <cstring>

namespace sage {

int64_t HeadStreams::headIndex(int64_t head) const
{
    const auto it = std::lower_bound(heads.begin(), heads.end(), int32_t(head));
    return it != heads.end() && *it == head ? int64_t(it - heads.begin()) : -1;
}

namespace {

// Keeps both streams and the gate of the selected heads at one (loop, layer). Rows of different heads are
// written by different worker threads into disjoint [T, T] slices, so no locking is needed.
class StreamsHook : public CaptureHook
{
public:
    StreamsHook(HeadStreams& out, int64_t H, int64_t layers, const std::atomic<bool>* cancel,
                const RecomputeProgress& progress)
        : m_out(out), m_H(H), m_cancel(cancel), m_progress(progress)
    {
        m_slot.assign(size_t(H), -1);
        for (size_t k = 0; k < out.heads.size(); ++k) m_slot[size_t(out.heads[k])] = int32_t(k);
        m_total = (out.loop - 1) * layers + out.layer + 1;
        m_layers = layers;
    }

    std::atomic<bool> stop{false}; // the forward pass's cancel flag: set when done or cancelled
    bool cancelled = false;

    uint32_t beginForward(int64_t, std::span<const int32_t>, int64_t) override { return 0; }
    void endForward(bool) override {}
    uint32_t askLayer(int64_t loop, int64_t layer) override
    {
        const int64_t index = (loop - 1) * m_layers + layer; // layers completed before this one
        if (m_progress) m_progress(std::min(index, m_total), m_total);
        if (m_cancel && m_cancel->load(std::memory_order_relaxed)) {
            cancelled = true;
            stop = true;
            return 0;
        }
        if (index >= m_total) {
            stop = true; // the rest of the pass is not needed
            return 0;
        }
        if (loop != m_out.loop || layer != m_out.layer) return 0;
        return CaptureKind::Attention | (loop > 1 ? CaptureKind::Gates : 0u);
    }
    uint32_t askHead(int64_t loop, int64_t, int64_t head) override
    {
        if (m_slot[size_t(head)] < 0) return 0;
        return loop == 1 ? StreamBits::Global : StreamBits::Both;
    }
    void observeAttention(int64_t, int64_t, int64_t head, AttentionStream stream, int64_t i, const float* probs,
                          const float*, int64_t firstKey, int64_t count) override
    {
        const int64_t T = m_out.tokens;
        std::vector<float>& map = stream == AttentionStream::Global ? m_out.global : m_out.local;
        float* row = map.data() + (int64_t(m_slot[size_t(head)]) * T + i) * T;
        std::memcpy(row + firstKey, probs, size_t(count) * sizeof(float));
    }
    void observeStreams(int64_t, int64_t, int64_t, int64_t, const float*, const float*, float) override {}
    void observeGates(int64_t, int64_t, const float* gates) override
    {
        const int64_t T = m_out.tokens;
        for (size_t k = 0; k < m_out.heads.size(); ++k)
            for (int64_t i = 0; i < T; ++i) m_out.gate[k * size_t(T) + size_t(i)] = gates[i * m_H + m_out.heads[k]];
    }
    void observeRouter(int64_t, int64_t, const float*, const int32_t*, const float*) override {}
    void observeResidual(int64_t, int64_t, const float*) override {}
    void observeLens(int64_t, int64_t, int64_t, int64_t, const float*, const float*) override {}
    void observeLensInput(int64_t, int64_t, const float*) override {}
    void observeLogits(const float*) override {}

private:
    HeadStreams& m_out;
    int64_t m_H;
    const std::atomic<bool>* m_cancel;
    const RecomputeProgress& m_progress;
    std::vector<int32_t> m_slot; // [H] index into m_out.heads or -1
    int64_t m_total = 0, m_layers = 0;
};

} // namespace

HeadStreams recomputeHeadStreams(const Model& model, cpu::ThreadPool& pool, std::span<const int32_t> tokens,
                                 int64_t loop, int64_t layer, std::vector<int32_t> heads,
                                 const std::atomic<bool>* cancel, const RecomputeProgress& progress, uint64_t maxBytes)
{
    const ModelConfig& c = model.config();
    auto range = [](const char* what, int64_t v, int64_t lo, int64_t hi) {
        if (v < lo || v > hi)
            throw SageError(std::string("attention request: ") + what + " " + std::to_string(v) + " is outside [" +
                            std::to_string(lo) + ", " + std::to_string(hi) + "] for this model");
    };
    range("loop", loop, 1, c.loopNum);
    range("layer", layer, 0, c.numHiddenLayers - 1);
    if (heads.empty())
        for (int64_t h = 0; h < c.numAttentionHeads; ++h) heads.push_back(int32_t(h));
    std::sort(heads.begin(), heads.end());
    heads.erase(std::unique(heads.begin(), heads.end()), heads.end());
    for (int32_t h : heads) range("head", h, 0, c.numAttentionHeads - 1);
    const int64_t T = int64_t(tokens.size());
    if (T == 0) throw SageError("attention request: no tokens; the trace is empty");

    const uint64_t maps = loop == 1 ? 1 : 2;
    const uint64_t bytes = maps * uint64_t(heads.size()) * uint64_t(T) * uint64_t(T) * sizeof(float);
    if (bytes > maxBytes)
        throw SageError("attention request: " + std::to_string(heads.size()) + " heads x " + std::to_string(T) +
                        " positions need " + std::to_string(bytes >> 20) + " MiB, over the limit of " +
                        std::to_string(maxBytes >> 20) + " MiB; ask for a single head or a shorter sequence");

    HeadStreams out;
    out.tokens = T;
    out.loop = loop;
    out.layer = layer;
    out.heads = std::move(heads);
    const size_t Hs = out.heads.size();
    out.global.assign(Hs * size_t(T * T), 0.0f);
    if (loop > 1) {
        out.local.assign(Hs * size_t(T * T), 0.0f);
        out.gate.assign(Hs * size_t(T), 0.0f);
    }

    StreamsHook hook(out, c.numAttentionHeads, c.numHiddenLayers, cancel, progress);
    InferenceSession session(model, pool);
    session.setCaptureHook(&hook);
    std::vector<float> logits;
    try {
        session.forward(tokens, false, logits, &hook.stop);
    } catch (const CancelledError&) {
        // Expected: the hook stops the pass once the requested layer has run (or when cancelled).
    }
    if (hook.cancelled) throw CancelledError();
    const int64_t total = (loop - 1) * c.numHiddenLayers + layer + 1;
    if (progress) progress(total, total);
    return out;
}

} // namespace sage
