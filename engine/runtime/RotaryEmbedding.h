#pragma once

#include "engine/model/ModelConfig.h"

#include <cstdint>
#include <vector>

namespace sage {

// Rotary position embedding in the Hugging Face "rotate_half" convention. Frequencies are computed in
// float32 exactly as transformers does (including "linear" and "llama3" scaling) so that angles round the
// same way as in the PyTorch reference.
class RotaryEmbedding
{
public:
    explicit RotaryEmbedding(const ModelConfig& config);

    const std::vector<float>& inverseFrequencies() const { return m_invFreq; } // [hd/2]

    // Rotates `heads` vectors of length hd stored contiguously in x ([heads, hd]) for absolute position pos.
    void apply(float* x, int64_t heads, int64_t pos) const;

private:
    int64_t m_headDim;
    std::vector<float> m_invFreq; // [hd/2]
};

} // namespace sage
