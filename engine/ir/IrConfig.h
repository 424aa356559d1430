#pragma once

#include <cstdint>

namespace sage {

// Settings of an Inverse Reasoning run (docs/ir.md has every formula these enter).
struct IrConfig {
    // A generated step is contested when its entropy (nats) is at least entropyThreshold OR its top-1/top-2
    // probability margin is at most marginThreshold.
    double entropyThreshold = 1.0;
    double marginThreshold = 0.2;
    // A contested step becomes a decision point when some later generated token (other than the immediate
    // successor) gives it a relevance lift of at least minInfluenceLift: R[t-1, d] * t, i.e. its relevance
    // relative to a uniform spread over the t positions that token could see.
    double minInfluenceLift = 1.0;
    // A decision point's parent is the earlier decision point with the highest lift for it, when that lift
    // is at least parentMinLift; otherwise the point is a root.
    double parentMinLift = 1.0;
    // At most this many decision points are kept (highest score first, then reported in sequence order).
    int maxDecisionPoints = 8;
    // Alternatives recorded per decision point, and how many of the runner-ups get a counterfactual branch.
    int alternatives = 5;
    int branchesPerPoint = 2;
    // Greedy tokens generated after the forced token of a branch.
    int branchLength = 12;
    // A branch rejoins the original continuation when this many consecutive branch tokens equal a run of the
    // original continuation (at any offset after the decision point).
    int rejoinMatch = 3;
    // Evidence sizes.
    int topSources = 5;
    int topCarriers = 5;
    int topExperts = 3;
    int lensTopK = 3;
    // Faithfulness: random non-decision flips compared with the decision-point flips (seeded by the run seed).
    bool faithfulness = true;
    // Upper bound on the bytes the sweep holds for the per-layer attention maps (loops x layers x T x T floats);
    // a longer sequence is refused with an error naming both numbers. 0 = no bound.
    uint64_t memoryBudget = uint64_t(4) << 30;

    bool operator==(const IrConfig&) const = default;
};

} // namespace sage
