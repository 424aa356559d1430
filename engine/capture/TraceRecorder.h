#pragma once

#include "engine/capture/CaptureHook.h"
#include "engine/capture/CapturePolicy.h"
#include "engine/capture/Trace.h"
#include "engine/runtime/Sampler.h"

#include <memory>
#include <optional>
#include <vector>

namespace sage {

class Model;

// The capture hook that fills a Trace according to a CapturePolicy. Install it on an InferenceSession
// (setCaptureHook); every successful forward call appends one StepRecord per position. Before the forward
// call of a sampled token, setNextChoice() hands over how it was chosen (captureGenerate does this).
class TraceRecorder : public CaptureHook
{
public:
    TraceRecorder(const Model& model, CapturePolicy policy, Trace& trace);
    ~TraceRecorder() override;

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
    void observeLogits(const float* logits) override;

private:
    LayerRecord& current(int64_t i) { return m_pending[size_t(i)]->layers[m_layerIndex]; }
    const std::vector<float>& gram(int64_t layer);

    const Model& m_model;
    CapturePolicy m_policy;
    Trace& m_trace;
    std::optional<TokenChoice> m_nextChoice;
    std::vector<std::shared_ptr<StepRecord>> m_pending; // [n] records of the running call
    int64_t m_p0 = 0;
    size_t m_layerIndex = 0; // index of the current (loop, layer) in each pending step's layers
    uint32_t m_layerKinds = 0;
    std::vector<int32_t> m_fullIndex; // [H * streams] index into fullRows or -1, for the current layer
    // Per layer: Gram matrices G_h = Wo_h^T Wo_h [H, hd, hd] of o_proj's head slices, so that
    // ||Wo_h x|| = sqrt(x^T G_h x) costs hd^2 instead of D * hd. Built on first use.
    std::vector<std::vector<float>> m_gram;
    // Softmax of the final logits of the current forward call, row by row ([rows, V] probabilities / Z, and
    // log Z per row), computed once and shared by every lens record against them.
    const float* m_finalFor = nullptr;
    std::vector<float> m_finalExp;  // [rows, V] exp(f - max f)
    std::vector<double> m_finalSum; // [rows] sum of the row's exp
    std::vector<float> m_finalMax;  // [rows]
};

} // namespace sage
