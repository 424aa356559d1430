#pragma once

#include "engine/capture/CaptureKind.h"

#include <cstdint>
#include <span>

namespace sage {

// The forward pass's capture interface ("ask, then observe"). InferenceSession calls it at named points of
// every forward call (prefill or decode); it first asks what is wanted and then offers only that, so a kind
// nobody asked for is never computed or copied. With no hook installed the forward pass does one pointer test
// per layer.
//
// Indices: `loop` is 1-based (1 = the plain causal loop), `layer` 0-based, `i` is the row within the current
// call (position = p0 + i), `head` a query head. Pointers are valid only during the call.
//
// Threading: observeAttention and observeStreams are called concurrently from the session's worker threads,
// each (i, head, stream) exactly once per (loop, layer); every other method runs on the thread that called
// InferenceSession::forward, with the workers idle.
class CaptureHook
{
public:
    virtual ~CaptureHook() = default;

    // A forward call over `tokens` at positions [p0, p0 + tokens.size()) begins, with `loops` loops.
    // Returns the forward-level kinds wanted (CaptureKind::LogitLens, CaptureKind::Logits).
    virtual uint32_t beginForward(int64_t p0, std::span<const int32_t> tokens, int64_t loops) = 0;
    // The call ended: ok = true when it completed (the positions are committed; an exception thrown here
    // reaches forward()'s caller), false when it threw (the session state was rolled back, so what was observed
    // in this call must be discarded; must not throw).
    virtual void endForward(bool ok) = 0;

    // Ask: the CaptureKind layer bits wanted at (loop, layer); 0 skips the layer entirely.
    virtual uint32_t askLayer(int64_t loop, int64_t layer) = 0;
    // Ask (only when askLayer included Attention): StreamBits of `head` wanted at (loop, layer).
    virtual uint32_t askHead(int64_t loop, int64_t layer, int64_t head) = 0;

    // probs[0, count): softmax row of query i over keys at positions firstKey .. firstKey + count - 1;
    // scores[0, count): the scaled scores it is the softmax of (entropy without a logarithm per key).
    virtual void observeAttention(int64_t loop, int64_t layer, int64_t head, AttentionStream stream, int64_t i,
                                  const float* probs, const float* scores, int64_t firstKey, int64_t count) = 0;
    // Loops >= 2: the global stream output a[hd] and the local stream output b[hd] of `head` for row i, before
    // they are mixed with gate g.
    virtual void observeStreams(int64_t loop, int64_t layer, int64_t head, int64_t i, const float* a, const float* b,
                                float g) = 0;
    // gates [n, H] (loops >= 2).
    virtual void observeGates(int64_t loop, int64_t layer, const float* gates) = 0;
    // MoE layers: probs [n, E] full softmax, experts [n, K] most probable first, weights [n, K] as applied.
    virtual void observeRouter(int64_t loop, int64_t layer, const float* probs, const int32_t* experts,
                               const float* weights) = 0;
    // hidden [n, D]: the residual stream after the layer (attention and feed-forward added).
    virtual void observeResidual(int64_t loop, int64_t layer, const float* hidden) = 0;
    // The logit lens, delivered one of two ways (beginForward's answer decides):
    // - by the session: rows [i0, i0 + rows): lens [rows, V] = lm_head(final_norm(h)) of the residual after
    //   `layer` of `loop` (layer = -1: after the whole loop; the last loop's lens is the output itself), and
    //   final [rows, V], the call's output logits of the same rows. Decode steps compute the lens rows in the
    //   head's own weight pass (matrix-vector kernel);
    // - with CaptureKind::LensInput: hidden [n, D], that residual stream, as soon as it exists; the hook computes
    //   the lens itself when it likes (lensLogits in engine/model/Model.h), e.g. in batches over several calls.
    virtual void observeLens(int64_t loop, int64_t layer, int64_t i0, int64_t rows, const float* lens,
                             const float* final) = 0;
    virtual void observeLensInput(int64_t loop, int64_t layer, const float* hidden) = 0;
    // logits [n, V]: the output logits of every row of the call, whatever rows the caller asked for
    // (CaptureKind::Logits or CaptureKind::LensInput).
    virtual void observeLogits(const float* logits) = 0;
};

} // namespace sage
