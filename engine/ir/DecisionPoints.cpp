#include "engine/ir/DecisionPoints.h"

#include "engine/core/SageError.h"

#include <algorithm>
#include <cmath>

namespace sage {

std::pair<float, float> DecisionPoints::entropyAndMargin(std::span<const float> logits)
{
    if (logits.empty()) return {0.0f, 1.0f};
    double mx = logits[0];
    for (float l : logits) mx = std::max(mx, double(l));
    double sum = 0;
    for (float l : logits) sum += std::exp(double(l) - mx);
    double h = 0, p1 = 0, p2 = 0;
    for (float l : logits) {
        const double p = std::exp(double(l) - mx) / sum;
        if (p > 0) h -= p * std::log(p);
        if (p > p1) {
            p2 = p1;
            p1 = p;
        } else if (p > p2) {
            p2 = p;
        }
    }
    return {float(h), float(p1 - p2)};
}

bool DecisionPoints::isContested(double entropy, double margin, const IrConfig& config)
{
    return entropy >= config.entropyThreshold || margin <= config.marginThreshold;
}

std::vector<int64_t> DecisionPoints::contested(const std::vector<IrToken>& tokens, int64_t promptLength,
                                               const IrConfig& config)
{
    std::vector<int64_t> out;
    for (int64_t t = promptLength; t < int64_t(tokens.size()); ++t)
        if (isContested(tokens[size_t(t)].entropy, tokens[size_t(t)].margin, config)) out.push_back(t);
    return out;
}

std::vector<IrDecisionPoint> DecisionPoints::select(const std::vector<IrToken>& tokens, int64_t promptLength,
                                                    std::span<const int64_t> candidates,
                                                    std::span<const float> relevance, const IrConfig& config)
{
    const int64_t T = int64_t(tokens.size()), P = promptLength, G = T - P;
    if (int64_t(relevance.size()) != G * T)
        throw SageError("decision points: the relevance has " + std::to_string(relevance.size()) +
                        " entries, expected " + std::to_string(G * T) + " (generated x sequence length)");
    auto R = [&](int64_t t, int64_t pos) { return relevance[size_t((t - P) * T + pos)]; }; // row of token t

    std::vector<IrDecisionPoint> found;
    for (int64_t d : candidates) {
        if (d < P || d >= T) continue;
        // Later tokens other than the immediate successor: its row always leans on d through the 0.5 * I term.
        float best = 0.0f;
        int64_t by = -1;
        for (int64_t t = d + 2; t < T; ++t) {
            const float lift = R(t, d) * float(t);
            if (lift > best) {
                best = lift;
                by = t;
            }
        }
        if (by < 0 || best < config.minInfluenceLift) continue;
        const IrToken& tok = tokens[size_t(d)];
        IrDecisionPoint p;
        p.position = d;
        p.step = d - P;
        p.token = tok.id;
        p.text = tok.text;
        p.probability = tok.probability;
        p.entropy = tok.entropy;
        p.margin = tok.margin;
        p.influence = best;
        p.influencedBy = by;
        p.score = best * (1.0f - tok.margin);
        found.push_back(std::move(p));
    }
    std::stable_sort(found.begin(), found.end(),
                     [](const IrDecisionPoint& a, const IrDecisionPoint& b) { return a.score > b.score; });
    if (int64_t(found.size()) > config.maxDecisionPoints) found.resize(size_t(std::max(0, config.maxDecisionPoints)));
    std::sort(found.begin(), found.end(),
              [](const IrDecisionPoint& a, const IrDecisionPoint& b) { return a.position < b.position; });

    for (size_t i = 0; i < found.size(); ++i) {
        IrDecisionPoint& p = found[i];
        p.id = int64_t(i);
        // The parent: the earlier decision point this token's own choice leans on most.
        for (size_t j = 0; j < i; ++j) {
            const float lift = R(p.position, found[j].position) * float(p.position);
            if (lift >= config.parentMinLift && lift > p.parentLift) {
                p.parentLift = lift;
                p.parent = int64_t(j);
            }
        }
    }
    return found;
}

} // namespace sage
