#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <random>
#include <span>
#include <vector>

namespace sage {

struct SamplingParams {
    double temperature = 0.0;       // <= 0 => greedy (argmax)
    int64_t topK = 0;               // 0 => off
    double topP = 1.0;              // 1 => off
    double minP = 0.0;              // 0 => off; keeps tokens with p >= minP * p_max
    double repetitionPenalty = 1.0; // 1 => off; CTRL-style: logit / penalty if > 0 else logit * penalty
    uint64_t seed = 0;

    bool greedy() const { return temperature <= 0.0; }
};

// The sampling settings as the JSON object that session files and IR reports store ("temperature", "top_k",
// "top_p", "min_p", "repetition_penalty", "seed").
nlohmann::json samplingJson(const SamplingParams& s);

// One token's choice: the token, its probability under the distribution it was drawn from, and that
// distribution's summary (the full softmax at temperature 1 after the repetition penalty).
struct TokenChoice {
    int32_t token = -1;
    float probability = 0.0f; // p(token) under the softmax of the (penalised) logits at temperature 1
    float entropy = 0.0f;     // nats, same distribution
    float margin = 0.0f;      // p(top1) - p(top2), same distribution
    std::vector<std::pair<int32_t, float>> alternatives; // top entries, most probable first
};

// Turns logits into tokens. Deterministic for a given seed: the random stream is a 64-bit Mersenne twister
// read as 53-bit uniforms, independent of the standard library's distributions.
class Sampler
{
public:
    explicit Sampler(SamplingParams params);

    const SamplingParams& params() const { return m_params; }
    // history: tokens already in the sequence (for the repetition penalty).
    TokenChoice sample(std::span<const float> logits, std::span<const int32_t> history, int topAlternatives = 5);

    // The probabilities the sampler draws from after every filter (for tests): [V], zero for filtered tokens.
    std::vector<double> filteredDistribution(std::span<const float> logits, std::span<const int32_t> history) const;

private:
    double uniform();

    SamplingParams m_params;
    std::mt19937_64 m_rng; // specified exactly by the standard: the same stream everywhere
};

} // namespace sage
