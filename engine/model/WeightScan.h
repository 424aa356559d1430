#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace sage {

class TensorStore;
namespace cpu {
class ThreadPool;
}

// The first tensor (in name order) that holds a NaN or an infinity, where, and how many it holds.
struct NonFiniteWeight {
    std::string tensor;
    std::string file;
    int64_t index = 0;                // flat element index of the first non-finite value
    int64_t count = 0;                // non-finite values in that tensor
    bool isNan = false;               // the first one is a NaN (else +-Inf)
    int64_t tensorsWithNonFinite = 0; // tensors of the checkpoint with at least one
};

// Scans every weight of the store (F32/F16/BF16, by exponent bits, so no conversion) for NaN and Inf, split
// into chunks of a few MB over the pool's threads. Reads every byte of the checkpoint once: on a cold page
// cache its cost is the disk read that the first forward pass would otherwise pay.
std::optional<NonFiniteWeight> findNonFiniteWeight(const TensorStore& store, cpu::ThreadPool& pool);

// Throws SageError "<file>: tensor NAME holds NaN at element I (...)" naming the fix, when the scan finds any.
void requireFiniteWeights(const TensorStore& store, cpu::ThreadPool& pool);

} // namespace sage
