#pragma once

#include "engine/capture/CaptureKind.h"

#include <cstdint>
#include <span>
#include <vector>

namespace sage {

class Model;
namespace cpu {
class ThreadPool;
}

// Exact attention on demand: one teacher-forced forward pass over `tokens` (a fresh session) with a hook that
// keeps only the rows of (loop, layer, head, stream); layers after it are skipped. Returns the [T, T] map
// (row i: query position i; zero outside the causal range, and for the local stream outside the window).
// Loops are 1-based; loop 1 has only the global stream. Throws SageError on out-of-range arguments.
std::vector<float> recomputeAttention(const Model& model, cpu::ThreadPool& pool, std::span<const int32_t> tokens,
                                      int64_t loop, int64_t layer, int64_t head, AttentionStream stream);

} // namespace sage
