#pragma once

#include "engine/runtime/RotaryEmbedding.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace sage {

class CaptureHook;
class Model;
struct LayerWeights;
struct SwiGluWeights;
namespace cpu {
class ThreadPool;
}

struct SessionOptions {
    // Longest sequence the session accepts; 0 => the model's max_position_embeddings.
    int64_t maxContext = 0;
    // Run only the first maxLoops loops, then the final norm and head ("early exit"); 0 => all loops.
    int64_t maxLoops = 0;
};

// The state of one sequence on the CPU backend: KV caches per MODEL.md ("Incremental decoding"), the tokens
// processed so far, and scratch buffers. forward() runs prefill (many tokens) and decode (one token) through
// the same code, so both produce the same logits.
//
// Caches, per layer L:
//   loop 1:  K1[L], V1[L]   [capacity, KV, hd]  every position
//   loop l>=2: ring buffers [W, KV, hd], slot = position % W, holding the last W positions of that loop.
class InferenceSession
{
public:
    InferenceSession(const Model& model, cpu::ThreadPool& pool, SessionOptions options = {});
    ~InferenceSession();
    InferenceSession(const InferenceSession&); // deep copy of the caches (branching)
    InferenceSession& operator=(const InferenceSession&) = delete;

    const Model& model() const { return m_model; }
    int64_t position() const { return m_pos; }
    int64_t maxContext() const { return m_maxContext; }
    int64_t loops() const { return m_loops; }
    const std::vector<int32_t>& tokens() const { return m_tokens; }

    // Processes `tokens` at positions [position(), position() + n) and appends them to the caches.
    // logits receives [n, V] (allPositions) or [1, V] (the last position only).
    // Throws SageError on bad ids or a full context and CancelledError when *cancel becomes true; in both
    // cases the session is left exactly as it was before the call.
    void forward(std::span<const int32_t> tokens, bool allPositions, std::vector<float>& logits,
                 const std::atomic<bool>* cancel = nullptr);

    // Installs a capture hook (engine/capture/CaptureHook.h) called by every later forward(); nullptr removes
    // it. The hook must outlive its installation. Capture never changes the logits forward() returns.
    void setCaptureHook(CaptureHook* hook) { m_hook = hook; }
    CaptureHook* captureHook() const { return m_hook; }

    // Forgets all tokens (keeps allocations).
    void reset();
    // Bytes held by the KV caches.
    uint64_t cacheBytes() const;

private:
    struct LayerCache {
        std::vector<float> k1, v1;                    // [capacity, KV, hd]
        std::vector<std::vector<float>> kRing, vRing; // per loop >= 2: [W, KV, hd]
    };

    void ensureCapacity(int64_t positions);
    void attention(int64_t loop, int64_t L, const LayerWeights& w, int64_t n, int64_t p0, uint32_t want);
    void feedForward(const LayerWeights& w, int64_t n, int64_t loop, int64_t L, uint32_t want);
    void deliverLens(int64_t loop, int64_t L, const float* hidden, int64_t n, const float* finalLogits);
    void swiGlu(const SwiGluWeights& w, const float* x, int64_t m, float* out);

    const Model& m_model;
    cpu::ThreadPool& m_pool;
    RotaryEmbedding m_rope;
    int64_t m_maxContext = 0;
    int64_t m_loops = 1;
    int64_t m_window = 1;
    int64_t m_pos = 0;
    int64_t m_capacity = 0;
    std::vector<int32_t> m_tokens;
    std::vector<LayerCache> m_cache;

    // Scratch for one forward call of n tokens.
    std::vector<float> m_h;               // [n, D] residual stream
    std::vector<float> m_x;               // [n, D] normed input
    std::vector<float> m_q;               // [n, H*hd]
    std::vector<float> m_k;               // [n, KV*hd]
    std::vector<float> m_v;               // [n, KV*hd]
    std::vector<float> m_attn;            // [n, H*hd] mixed attention output, before o_proj
    std::vector<float> m_proj;            // [n, D]
    std::vector<float> m_gate;            // [n, H] loop gate of the current layer
    std::vector<float> m_gateW;           // [H, hd] loop gate weights as f32
    std::vector<float> m_ffnA, m_ffnB;    // [m, F]
    std::vector<float> m_ffnIn, m_ffnOut; // [m, D]
    std::vector<float> m_router;          // [n, E]
    // New K/V of loops >= 2 for the current call, committed to the rings when the call succeeds.
    // Index [(loop - 2) * N + L]: [n, KV*hd] each.
    std::vector<std::vector<float>> m_pendingK, m_pendingV;

    // Capture (all empty and untouched while m_hook is null).
    CaptureHook* m_hook = nullptr;
    std::vector<uint8_t> m_headStreams; // [H] StreamBits asked for the current layer
    std::vector<float> m_captureLogits; // [n, V] logits of every row of the call
    std::vector<float> m_lensLogits;    // [chunk, V], or [n + lens rows, V] when fused with the head
    std::vector<float> m_lensX;         // [n + lens rows, D] normed rows of a fused head product
    // Residual streams kept for a logit lens the session computes: (loop, layer or -1, [n, D]).
    struct SavedHidden {
        int64_t loop, layer;
        std::vector<float> h;
    };
    std::vector<SavedHidden> m_lensHidden;
};

} // namespace sage
