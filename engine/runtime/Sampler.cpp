#include "engine/runtime/Sampler.h"

#include "engine/core/SageError.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

namespace sage {

nlohmann::json samplingJson(const SamplingParams& s)
{
    return {{"temperature", s.temperature},
            {"top_k", s.topK},
            {"top_p", s.topP},
            {"min_p", s.minP},
            {"repetition_penalty", s.repetitionPenalty},
            {"seed", s.seed}};
}

namespace {

std::vector<double> penalised(std::span<const float> logits, std::span<const int32_t> history, double penalty)
{
    std::vector<double> z(logits.begin(), logits.end());
    if (penalty != 1.0) {
        std::vector<bool> seen(z.size(), false);
        for (int32_t t : history)
            if (t >= 0 && size_t(t) < z.size()) seen[size_t(t)] = true;
        for (size_t i = 0; i < z.size(); ++i)
            if (seen[i]) z[i] = z[i] > 0 ? z[i] / penalty : z[i] * penalty;
    }
    return z;
}

std::vector<double> softmax(const std::vector<double>& z, double temperature)
{
    const double mx = *std::max_element(z.begin(), z.end());
    std::vector<double> p(z.size());
    double sum = 0;
    for (size_t i = 0; i < z.size(); ++i) {
        p[i] = std::exp((z[i] - mx) / temperature);
        sum += p[i];
    }
    for (double& v : p) v /= sum;
    return p;
}

} // namespace

Sampler::Sampler(SamplingParams params) : m_params(params), m_rng(params.seed)
{
    if (params.topP <= 0.0 || params.topP > 1.0)
        throw SageError("top-p must be in (0, 1], got " + std::to_string(params.topP));
    if (params.minP < 0.0 || params.minP > 1.0)
        throw SageError("min-p must be in [0, 1], got " + std::to_string(params.minP));
    if (params.topK < 0) throw SageError("top-k must be >= 0, got " + std::to_string(params.topK));
    if (params.repetitionPenalty <= 0.0)
        throw SageError("repetition penalty must be > 0, got " + std::to_string(params.repetitionPenalty));
    if (!std::isfinite(params.temperature)) throw SageError("temperature must be a finite number");
}

double Sampler::uniform()
{
    // 53 random bits -> [0, 1); std::uniform_real_distribution is avoided because its algorithm is
    // implementation-defined, and a seed must give the same tokens with every standard library.
    return double(m_rng() >> 11) * 0x1.0p-53;
}

std::vector<double> Sampler::filteredDistribution(std::span<const float> logits, std::span<const int32_t> history) const
{
    const std::vector<double> z = penalised(logits, history, m_params.repetitionPenalty);
    const double temperature = m_params.greedy() ? 1.0 : m_params.temperature;
    std::vector<double> p = softmax(z, temperature);
    const size_t V = p.size();
    std::vector<int32_t> order(V);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[size_t(a)] > p[size_t(b)]; });
    std::vector<bool> keep(V, true);
    if (m_params.topK > 0)
        for (size_t r = size_t(m_params.topK); r < V; ++r) keep[size_t(order[r])] = false;
    if (m_params.minP > 0.0) {
        const double floor = m_params.minP * p[size_t(order[0])];
        for (size_t i = 0; i < V; ++i)
            if (p[i] < floor) keep[i] = false;
    }
    if (m_params.topP < 1.0) {
        // Keep the smallest prefix of the sorted distribution whose mass reaches top-p (always the first).
        double cum = 0;
        bool reached = false;
        for (size_t r = 0; r < V; ++r) {
            const size_t t = size_t(order[r]);
            if (reached) keep[t] = false;
            cum += p[t];
            if (cum >= m_params.topP) reached = true;
        }
    }
    double sum = 0;
    for (size_t i = 0; i < V; ++i) {
        if (!keep[i]) p[i] = 0;
        sum += p[i];
    }
    for (double& v : p) v /= sum;
    return p;
}

TokenChoice Sampler::sample(std::span<const float> logits, std::span<const int32_t> history, int topAlternatives)
{
    if (logits.empty()) throw SageError("cannot sample from an empty distribution");
    TokenChoice choice;
    // Summary statistics describe the model's distribution (temperature 1), not the sampling filters.
    const std::vector<double> z = penalised(logits, history, m_params.repetitionPenalty);
    const std::vector<double> p = softmax(z, 1.0);
    const size_t V = p.size();
    double entropy = 0;
    for (double v : p)
        if (v > 0) entropy -= v * std::log(v);
    const size_t nAlt = std::min(V, size_t(std::max(2, topAlternatives)));
    std::vector<int32_t> order(V);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + long(nAlt), order.end(), [&](int32_t a, int32_t b) {
        return p[size_t(a)] > p[size_t(b)] || (p[size_t(a)] == p[size_t(b)] && a < b);
    });
    choice.entropy = float(entropy);
    choice.margin = V > 1 ? float(p[size_t(order[0])] - p[size_t(order[1])]) : 1.0f;
    for (size_t r = 0; r < size_t(std::max(0, topAlternatives)) && r < V; ++r)
        choice.alternatives.emplace_back(order[r], float(p[size_t(order[r])]));

    if (m_params.greedy()) {
        choice.token = order[0];
    } else {
        const std::vector<double> q = filteredDistribution(logits, history);
        const double u = uniform();
        double cum = 0;
        choice.token = -1;
        for (size_t i = 0; i < V; ++i) {
            if (q[i] <= 0) continue;
            cum += q[i];
            choice.token = int32_t(i);
            if (u < cum) break;
        }
    }
    choice.probability = float(p[size_t(choice.token)]);
    return choice;
}

} // namespace sage
