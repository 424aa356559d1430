#include "engine/runtime/RotaryEmbedding.h"

#include <cmath>

namespace sage {

RotaryEmbedding::RotaryEmbedding(const ModelConfig& c) : m_headDim(c.headDim)
{
    const int64_t half = c.headDim / 2;
    m_invFreq.resize(size_t(half));
    const float base = float(c.ropeTheta);
    for (int64_t i = 0; i < half; ++i) {
        const float exponent = float(2 * i) / float(c.headDim);
        m_invFreq[size_t(i)] = 1.0f / std::pow(base, exponent);
    }
    const RopeScaling& s = c.ropeScaling;
    if (s.type == "linear") {
        for (float& f : m_invFreq) f = f / float(s.factor);
    } else if (s.type == "llama3") {
        const float factor = float(s.factor);
        const float oldLen = float(s.originalMaxPositionEmbeddings);
        const float lowWavelen = oldLen / float(s.lowFreqFactor);
        const float highWavelen = oldLen / float(s.highFreqFactor);
        const float pi = 3.141592653589793f;
        for (float& f : m_invFreq) {
            const float wavelen = 2.0f * pi / f;
            float scaled = wavelen > lowWavelen ? f / factor : f;
            const bool medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
            if (medium) {
                const float smooth = (oldLen / wavelen - float(s.lowFreqFactor)) /
                                     (float(s.highFreqFactor) - float(s.lowFreqFactor));
                scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
            }
            f = scaled;
        }
    }
}

void RotaryEmbedding::apply(float* x, int64_t heads, int64_t pos) const
{
    const int64_t half = m_headDim / 2;
    // cos/sin depend on the position only; computed once for all heads.
    float cosv[512], sinv[512];
    std::vector<float> big;
    float* cs = cosv;
    float* sn = sinv;
    if (half > 512) {
        big.resize(size_t(2 * half));
        cs = big.data();
        sn = big.data() + half;
    }
    const float p = float(pos);
    for (int64_t i = 0; i < half; ++i) {
        const float angle = m_invFreq[size_t(i)] * p;
        cs[i] = std::cos(angle);
        sn[i] = std::sin(angle);
    }
    for (int64_t h = 0; h < heads; ++h) {
        float* v = x + h * m_headDim;
        for (int64_t i = 0; i < half; ++i) {
            const float a = v[i], b = v[i + half];
            v[i] = a * cs[i] - b * sn[i];
            v[i + half] = b * cs[i] + a * sn[i];
        }
    }
}

} // namespace sage
