#include "viz/ExpertColors.h"

#include <array>
#include <cmath>

namespace sage::ExpertColors {

QColor color(int expert)
{
    // Tableau 10: a common categorical palette with no two colours of similar lightness and hue.
    static const std::array<QRgb, 10> palette = {0x4e79a7, 0xf28e2b, 0xe15759, 0x76b7b2, 0x59a14f,
                                                 0xedc948, 0xb07aa1, 0xff9da7, 0x9c755f, 0xbab0ac};
    if (expert < 0) return QColor(0x80, 0x80, 0x80);
    if (expert < int(palette.size())) return QColor(palette[size_t(expert)]);
    const double hue = std::fmod(0.61803398875 * double(expert), 1.0);
    const double lightness = expert % 2 ? 0.45 : 0.62;
    return QColor::fromHslF(float(hue), 0.60f, float(lightness));
}

QColor missingColor(bool dark)
{
    return dark ? QColor(0x2a, 0x2e, 0x35) : QColor(0xf0, 0xf0, 0xf0);
}

} // namespace sage::ExpertColors
