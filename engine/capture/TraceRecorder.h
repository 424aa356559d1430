#pragma once

#include "engine/capture/CaptureHook.h"
#include "engine/capture/CapturePolicy.h"
#include "engine/capture/Trace.h"
#include "engine/runtime/Sampler.h"

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

namespace sage {

class Model;
namespace cpu {
class ThreadPool;
class PackedWeight;
} // namespace cpu

// The capture hook that fills a Trace according to a CapturePolicy. Install it on an InferenceSession
// (setCaptureHook); every successful forward call yields one StepRecord per position. Before the forward
// call of a sampled token, setNextChoice() hands over how it was chosen (captureGenerate does this).
//
// The logit lens costs one lm_head row per position and lens. By default the session computes a decode step's
// lens rows in the output head's own matrix-vector pass (up to cpu::kMatvecMaxTokens rows share one read of the
// head's weights): for a model whose weights stream from memory almost for free, and for one small enough to stay
// in the caches still the cheapest way measured (docs/benchmarks.md). Only a small model (at most
// kBatchedLensMaxWeightBytes) whose policy asks for more lens rows per step than that pass holds (a lens per
// layer) batches instead: such a recorder takes the lens inputs (CaptureKind::LensInput), holds the steps of
// fast decode calls back and computes their lens rows together with the blocked matrix kernel (lensLogits, whose
// rows do not depend on the batch), then appends the steps (a prompt's lens rows come from the session). Only
// single-position calls are held, at most LensBatching::maxSteps steps or maxHold, and none after a call that
// took longer than slowCall. flush() appends what is held; captureGenerate calls it when generation ends, and so
// does the destructor. The mode is chosen once per recorder from the model's size and the policy, so the values
// recorded never depend on timing.
class TraceRecorder : public CaptureHook
{
public:
    struct LensBatching {
        enum class Mode { Auto, Batched, WithHead };
        // Auto: Batched when the weights take at most kBatchedLensMaxWeightBytes and a decode step has more lens
        // rows than fit beside the output row in the head's pass (lensRowsPerStep), else WithHead.
        Mode mode = Mode::Auto;
        int64_t maxSteps = 32;
        std::chrono::milliseconds maxHold{30};
        std::chrono::milliseconds slowCall{5};
    };
    static constexpr uint64_t kBatchedLensMaxWeightBytes = uint64_t(64) << 20;
    // Batched: the output head is packed for the lens product (f32, 4 bytes per weight) when that takes at most
    // this much memory; a larger head is converted again for each batch instead.
    static constexpr uint64_t kPackedHeadMaxBytes = uint64_t(32) << 20;

    // `pool` (which must outlive the recorder) computes the batched lens on the thread that calls forward()
    // or flush(); nullptr computes it on that thread alone.
    TraceRecorder(const Model& model, CapturePolicy policy, Trace& trace, cpu::ThreadPool* pool = nullptr);
    ~TraceRecorder() override;

    void setLensBatching(const LensBatching& batching);
    // True when the recorder computes the lens in batches (LensBatching::Mode::Batched, or Auto on a small model
    // with many lens rows per step).
    bool batchesLens() const { return m_batched; }
    // Lens rows the policy asks for per decoded position (after each loop but the last, and per layer).
    int64_t lensRowsPerStep() const;
    // Computes the logit lens of the held steps and appends them to the trace.
    void flush();
    // Steps of completed forward calls not yet in the trace.
    int64_t heldSteps() const { return int64_t(m_held.size()); }

    const CapturePolicy& policy() const { return m_policy; }
    Trace& trace() { return m_trace; }
    // The choice that produced the first token of the next forward call.
    void setNextChoice(const TokenChoice& choice) { m_nextChoice = choice; }

    uint32_t beginForward(int64_t p0, std::span<const int32_t> tokens, int64_t loops) override;
    void endForward(bool ok) override;
    uint32_t askLayer(int64_t loop, int64_t layer) override;
    uint32_t askHead(int64_t loop, int64_t layer, int64_t head) override;
    void observeAttention(int64_t loop, int64_t layer, int64_t head, AttentionStream stream, int64_t i,
                          const float* probs, const float* scores, int64_t firstKey, int64_t count) override;
    void observeStreams(int64_t loop, int64_t layer, int64_t head, int64_t i, const float* a, const float* b,
                        float g) override;
    void observeGates(int64_t loop, int64_t layer, const float* gates) override;
    void observeRouter(int64_t loop, int64_t layer, const float* probs, const int32_t* experts,
                       const float* weights) override;
    void observeResidual(int64_t loop, int64_t layer, const float* hidden) override;
    void observeLens(int64_t loop, int64_t layer, int64_t i0, int64_t rows, const float* lens,
                     const float* final) override;
    void observeLensInput(int64_t loop, int64_t layer, const float* hidden) override;
    void observeLogits(const float* logits) override;

private:
    using Clock = std::chrono::steady_clock;
    LayerRecord& current(int64_t i) { return m_pending[size_t(i)]->layers[m_layerIndex]; }
    const float* gram(int64_t layer);
    bool lensWanted() const;
    // Softmax parts of final logits f [V] into slot s of m_finalExp / m_finalMax / m_finalSum.
    void finalSoftmax(const float* f, size_t s);
    // The lens record of logits l [V] against final logits f [V] whose softmax parts are in slot s.
    LensRecord lensRecord(int64_t loop, int64_t layer, const float* l, const float* f, size_t s);

    const Model& m_model;
    CapturePolicy m_policy;
    Trace& m_trace;
    std::optional<TokenChoice> m_nextChoice;
    std::vector<std::shared_ptr<StepRecord>> m_pending; // [n] records of the running call
    int64_t m_p0 = 0;
    size_t m_layerIndex = 0; // index of the current (loop, layer) in each pending step's layers
    // What the policy asks of one (loop, layer), worked out on its first forward call (the policy is fixed).
    struct LayerPlan {
        bool known = false;
        uint32_t kinds = 0;
        std::vector<uint32_t> headBits;                // [H] askHead's answers
        std::vector<int32_t> fullIndex;                // [H * streams] index into fullRows or -1
        std::vector<std::pair<int16_t, uint8_t>> full; // (head, stream) of each full row
    };
    const LayerPlan& plan(int64_t loop, int64_t layer);
    std::vector<LayerPlan> m_plans;    // [(loop - 1) * layers + layer]
    const LayerPlan* m_plan = nullptr; // the current layer's
    int64_t m_planLoop = 0, m_planLayer = -1;
    // Per layer: the model's per-head Gram matrices of o_proj ([H, hd, hd], Model::headOutputGram), null until
    // first used.
    std::vector<const float*> m_gram;

    // Lens batching. m_final / m_finalLoops have a row per held decode step (those come first in m_held), then
    // one for the running call's step.
    LensBatching m_batching;
    bool m_batched = false;
    const float* m_finalFor = nullptr; // WithHead: the call's final logits whose softmax slots are filled
    cpu::ThreadPool* m_pool = nullptr;
    std::unique_ptr<cpu::ThreadPool> m_serial; // one thread: m_pool when none is given
    struct LensJob {
        size_t held; // the step's index in m_held (steps of the running call follow the held ones)
        int16_t loop, layer;
    };
    std::vector<std::shared_ptr<StepRecord>> m_held; // completed steps waiting for their lens
    std::vector<LensJob> m_jobs;                     // lens rows to compute, in the order they were offered
    std::vector<float> m_jobHidden;                  // [jobs, D] their residual-stream rows
    std::vector<float> m_final;                      // [decode steps, V] final logits
    std::vector<int16_t> m_finalLoops;               // [held + pending] loops of the step's forward call
    size_t m_callJobs = 0;                           // m_jobs.size() when the running call began
    int64_t m_loops = 0;                             // loops of the running call
    size_t m_layersPerStep = 0;                      // LayerRecords per step with m_loops loops
    Clock::time_point m_callStart, m_heldSince;
    // The final softmax of each held step (Batched) or row of the call (WithHead): exp(f - max f), max, sum.
    std::vector<float> m_finalExp, m_finalMax, m_lensLogits, m_normed, m_lensTmp;
    std::vector<double> m_finalSum;
    // Batched: the output head packed for the blocked kernel, once (cpu::PackedWeight), instead of converting
    // it again for every batch. Built on the first batch when it fits kPackedHeadMaxBytes.
    std::unique_ptr<cpu::PackedWeight> m_packedHead;
    bool m_packTried = false;
};

} // namespace sage
