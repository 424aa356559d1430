#pragma once

#include "engine/ir/IrReport.h"

#include <cstdint>
#include <span>
#include <vector>

namespace sage {

// The faithfulness figure of a report (docs/ir.md, "Faithfulness"): the mean changed fraction of the
// continuation after flipping each decision point to its first runner-up, against the same after flipping as
// many random non-decision generated tokens to theirs.
class Faithfulness
{
public:
    // `count` distinct positions drawn from `eligible` with a 64-bit Mersenne twister seeded with `seed`
    // (partial Fisher-Yates on the raw outputs, so the draw is the same with every standard library), ascending.
    static std::vector<int64_t> pickRandom(std::span<const int64_t> eligible, int64_t count, uint64_t seed);
    static IrFaithfulness compute(std::span<const float> decisionChanges, std::span<const float> randomChanges,
                                  std::vector<int64_t> randomPositions);
};

} // namespace sage
