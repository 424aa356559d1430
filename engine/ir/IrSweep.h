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

// Evidence of one decision point (a generated position d; its row is d - 1). Layer index
// k = (loop - 1) * layers + layer.
struct IrCandidateEvidence {
    int64_t position = 0;
    std::vector<float> carried; // [K, H, 2] relevance moved between positions by head h, stream s (0 global, 1 local)
    std::vector<float> expertMass; // [K, E] relevance-weighted routing weight of expert e (MoE models; else empty)
};

// The Inverse Reasoning sweep (docs/ir.md, "The sweep"): one teacher-forced forward pass over the final sequence
// with a capture hook that keeps, per (loop, layer), the head-mean effective attention map (loops >= 2:
// g * A_global + (1 - g) * A_local on the same positions), per-head off-diagonal masses, the routing and the
// residual stream after each loop; then the backward relevance propagation r <- r * (0.5 * A + 0.5 * I) from the
// last layer of the last loop to the first, for every generated token at once. The object keeps the maps so that
// evidence() and loopPrediction() can answer for the decision points chosen afterwards.
class IrSweep
{
public:
    IrSweep(const Model& model, cpu::ThreadPool& pool);
    ~IrSweep();
    IrSweep(const IrSweep&) = delete;
    IrSweep& operator=(const IrSweep&) = delete;

    // tokens: the final sequence (prompt first), 1 <= promptLength <= T. Throws SageError for bad arguments or a
    // sequence over the memory budget (0 = none), CancelledError when *cancel becomes true. progress(fraction)
    // is called on the calling thread. Returns the relevance [G, T], G = T - P: row g is the relevance of
    // generated token P + g (query row P - 1 + g) over the positions before it.
    std::vector<float> run(std::span<const int32_t> tokens, int64_t promptLength, uint64_t memoryBudget,
                           const std::atomic<bool>* cancel = nullptr, const std::function<void(double)>& progress = {});

    // After run(): the breakdown of each generated position's relevance by layer, head, stream and expert
    // (a backward pass over those rows only).
    std::vector<IrCandidateEvidence> evidence(std::span<const int64_t> positions) const;
    // After run(): the top k of the logit lens after `loop` (1-based; the last loop is the model's output) at
    // `row`, as (token, probability), most probable first.
    std::vector<std::pair<int32_t, float>> loopPrediction(int64_t loop, int64_t row, int k) const;

    // After run(): the row-normalised head-mean effective attention of (loop, layer), [T, T] (tests, views).
    const std::vector<float>& map(int64_t loop, int64_t layer) const
    {
        return m_maps.at(size_t((loop - 1) * m_layers + layer));
    }

    int64_t loops() const { return m_loops; }
    int64_t layers() const { return m_layers; }
    int64_t heads() const { return m_heads; }
    int64_t experts() const { return m_experts; }

    // Bytes the sweep holds for its maps for a sequence of T tokens on a model with `loops` x `layers` layers.
    static uint64_t mapBytes(int64_t loops, int64_t layers, int64_t T);

    // The propagation alone (tests, tools). maps: K row-stochastic [T, T] head-mean effective attention maps in
    // forward order (loop 1 layer 0 first), zero above the diagonal. Returns [rows.size(), T]:
    // row r = e_q * Ahat_{K-1} * ... * Ahat_0 with Ahat = 0.5 * A + 0.5 * I and q = rows[r].
    static std::vector<float> propagate(const std::vector<std::vector<float>>& maps, int64_t T,
                                        std::span<const int64_t> rows, cpu::ThreadPool* pool = nullptr);

private:
    const Model& m_model;
    cpu::ThreadPool& m_pool;
    int64_t m_loops, m_layers, m_heads, m_experts;
    int64_t m_T = 0, m_P = 0;
    std::vector<std::vector<float>> m_maps;    // per k: [T, T] normalised head-mean effective attention
    std::vector<std::vector<float>> m_offDiag; // per k: [T, H, 2] stream weight * (1 - A[i, i])
    std::vector<std::vector<float>> m_routing; // per k (MoE layers): [T, E] routing weight as applied
    std::vector<float> m_loopHidden;           // [loops, T, D] residual stream after each loop
};

} // namespace sage
