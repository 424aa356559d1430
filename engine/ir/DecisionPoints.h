#pragma once

#include "engine/ir/IrConfig.h"
#include "engine/ir/IrReport.h"

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace sage {

// Finding decision points (docs/ir.md, "Decision points"): contested generated steps that later tokens depend on,
// and the tree they form.
class DecisionPoints
{
public:
    // Entropy (nats) and top-1/top-2 margin of softmax(logits), computed in double.
    static std::pair<float, float> entropyAndMargin(std::span<const float> logits);
    // entropy >= entropyThreshold or margin <= marginThreshold.
    static bool isContested(double entropy, double margin, const IrConfig& config);
    // Generated positions (>= promptLength) whose step is contested, ascending.
    static std::vector<int64_t> contested(const std::vector<IrToken>& tokens, int64_t promptLength,
                                          const IrConfig& config);
    // Selects decision points among `candidates` with the relevance rows [G, T] (IrReport::relevance layout):
    // influence, score, at most maxDecisionPoints, in sequence order with ids, parents and parent lifts set.
    // Alternatives, evidence, branches and explanations are left empty.
    static std::vector<IrDecisionPoint> select(const std::vector<IrToken>& tokens, int64_t promptLength,
                                               std::span<const int64_t> candidates, std::span<const float> relevance,
                                               const IrConfig& config);
};

} // namespace sage
