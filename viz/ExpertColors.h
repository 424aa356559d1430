#pragma once

#include <QColor>

namespace sage {

// Categorical colours of experts, shared by the routing grid, its legend and the charts, so that expert e has
// one colour everywhere. The first ten are a qualitative palette readable on light and dark backgrounds;
// further experts step around the hue circle by the golden angle so neighbours stay distinct.
namespace ExpertColors {

QColor color(int expert);
// The colour of a cell without routing data (a dense layer, or a kind the capture did not keep).
QColor missingColor(bool dark);

} // namespace ExpertColors
} // namespace sage
