#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace sage {

class Model;
namespace cpu {
class ThreadPool;
}

// Exact attention of one (loop, layer) for the heatmap views: both context streams and the loop gate of the
// requested heads, from one teacher-forced pass (recomputeAttention keeps a single stream of a single head).
struct HeadStreams {
    int64_t tokens = 0;          // T
    int64_t loop = 0, layer = 0; // 1-based loop, 0-based layer
    std::vector<int32_t> heads;  // [Hs] the heads kept, ascending
    std::vector<float> global;   // [Hs, T, T] row i: query position i; zero outside j <= i
    std::vector<float> local;    // [Hs, T, T] zero outside the window; empty in loop 1
    std::vector<float> gate;     // [Hs, T] gate g of each head and position; empty in loop 1

    // Index of `head` in heads, or -1.
    int64_t headIndex(int64_t head) const;
};

// Progress of a recompute: layers run so far out of the layers the pass needs.
using RecomputeProgress = std::function<void(int64_t done, int64_t total)>;

// One forward pass over `tokens` with a hook that keeps the rows of `heads` (empty: every head) at (loop, layer)
// and skips the layers after it. Throws SageError on out-of-range arguments or when the result would exceed
// maxBytes (naming the size and the fix), and CancelledError when *cancel becomes true (checked between layers).
HeadStreams recomputeHeadStreams(const Model& model, cpu::ThreadPool& pool, std::span<const int32_t> tokens,
                                 int64_t loop, int64_t layer, std::vector<int32_t> heads,
                                 const std::atomic<bool>* cancel = nullptr, const RecomputeProgress& progress = {},
                                 uint64_t maxBytes = uint64_t(2) << 30);

} // namespace sage
