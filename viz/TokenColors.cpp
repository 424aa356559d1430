#include "viz/TokenColors.h"

#include <algorithm>
#include <cmath>

namespace sage::TokenColors {

double score(Mode mode, double probability, double entropy, int vocabSize)
{
    double s = 0.0;
    if (mode == Mode::Probability) {
        s = probability;
    } else {
        const double maxEntropy = std::log(double(std::max(vocabSize, 2)));
        s = 1.0 - entropy / maxEntropy;
    }
    if (!std::isfinite(s)) return 0.0;
    return std::clamp(s, 0.0, 1.0);
}

QColor chipColor(double score, bool dark)
{
    if (!std::isfinite(score)) score = 0.0;
    score = std::clamp(score, 0.0, 1.0);
    // Hue 0 (red) .. 120 (green); amber in the middle keeps the midpoint distinct from both ends.
    const double hue = 120.0 * score;
    return dark ? QColor::fromHslF(float(hue / 360.0), 0.55f, 0.34f)
                : QColor::fromHslF(float(hue / 360.0), 0.70f, 0.78f);
}

QColor promptChipColor(bool dark)
{
    return dark ? QColor(0x3a, 0x40, 0x4a) : QColor(0xe3, 0xe6, 0xeb);
}

QColor textColorOn(const QColor& background)
{
    const double luminance = 0.299 * background.redF() + 0.587 * background.greenF() + 0.114 * background.blueF();
    return luminance > 0.5 ? QColor(Qt::black) : QColor(Qt::white);
}

} // namespace sage::TokenColors
