#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <utility>
#include <vector>

namespace sage {

class Model;
namespace cpu {
class ThreadPool;
}

// Evidence the backward sweep collects for one candidate decision point (a generated position d; its row is
// d - 1). Layer index k = (loop - 1) * layers + layer.
struct IrCandidateEvidence {
    int64_t position = 0;
    std::vector<float> carried; // [K, H, 2] relevance moved between positions by head h, stream s (0 global, 1 local)
    std::vector<float> expertMass; // [K, E] relevance-weighted routing weight of expert e (MoE layers; else empty)
};

// What one sweep produces (docs/ir.md, "The sweep").
struct IrSweepResult {
    int64_t tokens = 0;       // T
    int64_t promptLength = 0; // P
    int64_t loops = 1, layers = 0, heads = 0, experts = 0;
    std::vector<float> relevance; // [G, T], G = T - P: row g is query position P - 1 + g
    std::vector<IrCandidateEvidence> candidates;
    // Per loop (1-based index - 1), per position: the lens prediction after that loop, top entries with their
    // softmax probabilities (the last loop is the model's output). [loops][T][k]
    std::vector<std::vector<std::vector<std::pair<int32_t, float>>>> loopTop;
};

// The Inverse Reasoning sweep: one teacher-forced forward pass over the final sequence with a capture hook that
// keeps, per (loop, layer), the head-mean effective attention map (loops >= 2: g * A_global + (1 - g) * A_local
// on the same positions), per-head off-diagonal masses, gates and routing; then the backward relevance
// propagation r <- r * (0.5 * A + 0.5 * I) from the last layer of the last loop to the first, for all generated
// tokens at once.
class IrSweep
{
public:
    // tokens: the final sequence (prompt first); promptLength >= 1; candidates: generated positions (>= P)
    // whose evidence is wanted. Throws SageError for bad arguments or a sequence over config's memory budget,
    // CancelledError when *cancel becomes true. progress(fraction) is called on the calling thread.
    static IrSweepResult run(const Model& model, cpu::ThreadPool& pool, std::span<const int32_t> tokens,
                             int64_t promptLength, std::span<const int64_t> candidates, uint64_t memoryBudget,
                             int lensTopK, const std::atomic<bool>* cancel = nullptr,
                             const std::function<void(double)>* progress = nullptr);

    // Bytes the sweep holds for a sequence of T tokens on a model with `loops` x `layers` layers.
    static uint64_t mapBytes(int64_t loops, int64_t layers, int64_t T);

    // The propagation alone (tests, tools). maps: K row-stochastic [T, T] head-mean effective attention maps in
    // forward order (loop 1 layer 0 first), zero above the diagonal. Returns [rows.size(), T]:
    // row r = e_q * Ahat_{K-1} * ... * Ahat_0 with Ahat = 0.5 * A + 0.5 * I and q = rows[r].
    static std::vector<float> propagate(const std::vector<std::vector<float>>& maps, int64_t T,
                                        std::span<const int64_t> rows, cpu::ThreadPool* pool = nullptr);
};

} // namespace sage
