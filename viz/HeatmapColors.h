#pragma once

#include <QImage>
#include <QRgb>

#include <array>

namespace sage {

// Colour maps of the attention views. Sequential: perceptually ordered dark-blue .. yellow (viridis-like) for
// probabilities; diverging: blue (negative) .. neutral .. red (positive) for differences. Both are fixed
// lookup tables so that recolouring a map costs one multiply and one load per cell.
namespace HeatmapColors {

inline constexpr int kLutSize = 1024;
using Lut = std::array<QRgb, kLutSize>;

// The colour shown for cells without data (rows the capture did not keep).
inline constexpr QRgb kMissing = 0xff808080;

const Lut& sequential();
const Lut& diverging();
// t in [0, 1] (clamped; NaN = kMissing).
QRgb sequentialColor(double t);
// t in [-1, 1] (clamped; NaN = kMissing).
QRgb divergingColor(double t);

// How values map onto the colour map.
struct Scale {
    float low = 0.0f;   // value shown with the first colour (diverging: -high is the first colour)
    float high = 1.0f;  // value shown with the last colour
    float gamma = 1.0f; // sequential only: t^gamma (0.5 lifts small probabilities)
    bool diverging = false;
};

// values [rows, cols] row-major -> an RGB32 image of rows x cols pixels (one pixel per cell). NaN cells get
// kMissing. `threads` > 1 splits the rows into bands coloured in parallel.
QImage colorize(const float* values, int rows, int cols, const Scale& scale, int threads = 1);
// The same into `image`, reusing its buffer when it already is an RGB32 image of cols x rows (recolouring a map
// after a scale change then costs no allocation or page faults).
void colorizeInto(const float* values, int rows, int cols, const Scale& scale, QImage& image, int threads = 1);

} // namespace HeatmapColors
} // namespace sage
