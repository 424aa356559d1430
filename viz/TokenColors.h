#pragma once

#include <QColor>

namespace sage {

// Colours of token chips. A score in [0, 1] (1 = the model was sure) maps onto a red - amber - green ramp
// whose lightness suits the palette, so light and dark themes both keep black or white text readable.
namespace TokenColors {

enum class Mode { Probability, Entropy };

// Probability mode: the token's probability. Entropy mode: 1 - entropy / log(vocabSize) (low entropy =
// confident = high score). NaN-safe: a non-finite score is treated as 0.
double score(Mode mode, double probability, double entropy, int vocabSize);
QColor chipColor(double score, bool dark);
QColor promptChipColor(bool dark);
// Black or white, whichever reads better on `background`.
QColor textColorOn(const QColor& background);

} // namespace TokenColors
} // namespace sage
