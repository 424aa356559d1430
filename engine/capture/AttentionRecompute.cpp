#include "engine/capture/AttentionRecompute.h"

#include "engine/capture/CaptureHook.h"
#include "engine/core/SageError.h"
#include "engine/model/Model.h"
#include "engine/runtime/InferenceSession.h"

#include <atomic>
#include <cstring>

namespace sage {

namespace {

// Keeps the rows of one (loop, layer, head, stream) in a [T, T] map and asks for nothing else.
class SingleMapHook : public CaptureHook
{
public:
    SingleMapHook(int64_t T, int64_t loop, int64_t layer, int64_t head, AttentionStream stream)
        : map(size_t(T * T), 0.0f), m_T(T), m_loop(loop), m_layer(layer), m_head(head), m_stream(stream)
    {
    }

    std::vector<float> map; // [T, T]
    std::atomic<bool> done{false};

    uint32_t beginForward(int64_t, std::span<const int32_t>, int64_t) override { return 0; }
    void endForward(bool) override {}
    uint32_t askLayer(int64_t loop, int64_t layer) override
    {
        if (loop > m_loop || (loop == m_loop && layer > m_layer)) done = true; // the rest is not needed
        return loop == m_loop && layer == m_layer ? CaptureKind::Attention : 0;
    }
    uint32_t askHead(int64_t, int64_t, int64_t head) override
    {
        return head == m_head ? (m_stream == AttentionStream::Global ? StreamBits::Global : StreamBits::Local) : 0;
    }
    void observeAttention(int64_t, int64_t, int64_t, AttentionStream, int64_t i, const float* probs, const float*,
                          int64_t firstKey, int64_t count) override
    {
        std::memcpy(map.data() + i * m_T + firstKey, probs, size_t(count) * sizeof(float));
    }
    void observeStreams(int64_t, int64_t, int64_t, int64_t, const float*, const float*, float) override {}
    void observeGates(int64_t, int64_t, const float*) override {}
    void observeRouter(int64_t, int64_t, const float*, const int32_t*, const float*) override {}
    void observeResidual(int64_t, int64_t, const float*) override {}
    void observeLens(int64_t, int64_t, int64_t, int64_t, const float*, const float*) override {}
    void observeLensInput(int64_t, int64_t, const float*) override {}
    void observeLogits(const float*) override {}

private:
    int64_t m_T, m_loop, m_layer, m_head;
    AttentionStream m_stream;
};

} // namespace

std::vector<float> recomputeAttention(const Model& model, cpu::ThreadPool& pool, std::span<const int32_t> tokens,
                                      int64_t loop, int64_t layer, int64_t head, AttentionStream stream)
{
    const ModelConfig& c = model.config();
    auto range = [](const char* what, int64_t v, int64_t lo, int64_t hi) {
        if (v < lo || v > hi)
            throw SageError(std::string("attention request: ") + what + " " + std::to_string(v) + " is outside [" +
                            std::to_string(lo) + ", " + std::to_string(hi) + "] for this model");
    };
    range("loop", loop, 1, c.loopNum);
    range("layer", layer, 0, c.numHiddenLayers - 1);
    range("head", head, 0, c.numAttentionHeads - 1);
    if (loop == 1 && stream == AttentionStream::Local)
        throw SageError("attention request: loop 1 has only the global (causal) stream; ask for loop >= 2 for the "
                        "local stream");
    const int64_t T = int64_t(tokens.size());
    if (T == 0) throw SageError("attention request: no tokens; the trace is empty");

    SingleMapHook hook(T, loop, layer, head, stream);
    InferenceSession session(model, pool);
    session.setCaptureHook(&hook);
    std::vector<float> logits;
    try {
        session.forward(tokens, false, logits, &hook.done);
    } catch (const CancelledError&) {
        // Expected: the hook stops the pass once the requested layer has run.
    }
    return std::move(hook.map);
}

} // namespace sage
