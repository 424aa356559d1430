#include "viz/HeatmapColors.h"

#include <QColor>

#include <algorithm>
#include <cmath>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SAGE_HEATMAP_AVX2 1
#endif
#include <thread>
#include <vector>

namespace sage::HeatmapColors {

namespace {

struct Stop {
    double t;
    int r, g, b;
};

Lut build(const std::vector<Stop>& stops)
{
    Lut lut{};
    for (int i = 0; i < kLutSize; ++i) {
        const double t = double(i) / double(kLutSize - 1);
        size_t k = 1;
        while (k + 1 < stops.size() && stops[k].t < t) ++k;
        const Stop& a = stops[k - 1];
        const Stop& b = stops[k];
        const double u = std::clamp((t - a.t) / (b.t - a.t), 0.0, 1.0);
        auto mix = [u](int x, int y) { return int(std::lround(x + (y - x) * u)); };
        lut[size_t(i)] = qRgb(mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b));
    }
    return lut;
}

} // namespace

const Lut& sequential()
{
    // Viridis control points: monotonic in lightness, readable for colour-blind users.
    static const Lut lut = build({{0.00, 68, 1, 84},
                                  {0.13, 71, 44, 122},
                                  {0.25, 59, 81, 139},
                                  {0.38, 44, 113, 142},
                                  {0.50, 33, 144, 141},
                                  {0.63, 39, 173, 129},
                                  {0.75, 92, 200, 99},
                                  {0.88, 170, 220, 50},
                                  {1.00, 253, 231, 37}});
    return lut;
}

const Lut& diverging()
{
    // Blue - light grey - red; the neutral midpoint is not white so zero cells still read as "no change".
    static const Lut lut = build({{0.00, 33, 102, 172},
                                  {0.25, 103, 169, 207},
                                  {0.50, 238, 238, 238},
                                  {0.75, 239, 138, 98},
                                  {1.00, 178, 24, 43}});
    return lut;
}

QRgb sequentialColor(double t)
{
    if (std::isnan(t)) return kMissing;
    return sequential()[size_t(std::lround(std::clamp(t, 0.0, 1.0) * (kLutSize - 1)))];
}

QRgb divergingColor(double t)
{
    if (std::isnan(t)) return kMissing;
    return diverging()[size_t(std::lround((std::clamp(t, -1.0, 1.0) + 1.0) * 0.5 * (kLutSize - 1)))];
}

namespace {

#ifdef SAGE_HEATMAP_AVX2
// Eight cells at a time: index = clamp(v * mul + add), colour = gather(table, index); NaN cells get kMissing.
__attribute__((target("avx2,fma"))) void colorRowsAvx2(const float* values, int r0, int r1, int cols, float mul,
                                                       float add, float maxIndex, const QRgb* table, uchar* bits,
                                                       qsizetype bytesPerLine)
{
    const __m256 vmul = _mm256_set1_ps(mul), vadd = _mm256_set1_ps(add);
    const __m256 vzero = _mm256_setzero_ps(), vmax = _mm256_set1_ps(maxIndex);
    const __m256i vmissing = _mm256_set1_epi32(int(kMissing));
    const int* lut = reinterpret_cast<const int*>(table);
    // Attention maps are causal: half the cells (above the diagonal) are exactly 0, so runs of 8 zeros skip the
    // gather and store the zero colour.
    const __m256i vzeroColour = _mm256_set1_epi32(int(table[int(std::clamp(add, 0.0f, maxIndex))]));
    for (int r = r0; r < r1; ++r) {
        const float* v = values + size_t(r) * size_t(cols);
        QRgb* out = reinterpret_cast<QRgb*>(bits + r * bytesPerLine);
        int c = 0;
        for (; c + 8 <= cols; c += 8) {
            const __m256 x = _mm256_loadu_ps(v + c);
            if (_mm256_movemask_ps(_mm256_cmp_ps(x, vzero, _CMP_EQ_OQ)) == 0xff) {
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), vzeroColour);
                continue;
            }
            const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
            // max/min return the second operand for NaN: the index is then 0, replaced by the blend below.
            const __m256 f = _mm256_min_ps(_mm256_max_ps(_mm256_fmadd_ps(x, vmul, vadd), vzero), vmax);
            const __m256i colour = _mm256_i32gather_epi32(lut, _mm256_cvttps_epi32(f), 4);
            const __m256i result = _mm256_blendv_epi8(colour, vmissing, _mm256_castps_si256(nan));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), result);
        }
        for (; c < cols; ++c) {
            const float x = v[c];
            out[c] = x != x ? kMissing : table[int(std::clamp(x * mul + add, 0.0f, maxIndex))];
        }
    }
}
#endif

void colorRows(const float* values, int r0, int r1, int cols, const Scale& s, const Lut& lut, uchar* bits,
               qsizetype bytesPerLine)
{
    // Linear scales map v -> index = v * mul + add; gamma needs a pow per cell, so it goes through a second
    // table indexed by the linear position instead.
    const float lo = s.diverging ? -s.high : s.low;
    const float span = std::max(s.high - lo, 1e-30f);
    const float mul = float(kLutSize - 1) / span;
    const float add = -lo * mul + 0.5f;
    const float maxIndex = float(kLutSize - 1);
    Lut gammaLut;
    const Lut* table = &lut;
    if (!s.diverging && s.gamma != 1.0f) {
        for (int i = 0; i < kLutSize; ++i) {
            const double t = std::pow(double(i) / (kLutSize - 1), double(s.gamma));
            gammaLut[size_t(i)] = lut[size_t(std::lround(t * (kLutSize - 1)))];
        }
        table = &gammaLut;
    }
    const QRgb* t = table->data();
#ifdef SAGE_HEATMAP_AVX2
    // viz is built without ISA flags: the gather loop is compiled for AVX2 on its own and chosen at run time.
    static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2) {
        colorRowsAvx2(values, r0, r1, cols, mul, add, maxIndex, t, bits, bytesPerLine);
        return;
    }
#endif
    for (int r = r0; r < r1; ++r) {
        const float* v = values + size_t(r) * size_t(cols);
        QRgb* out = reinterpret_cast<QRgb*>(bits + r * bytesPerLine);
        for (int c = 0; c < cols; ++c) {
            const float x = v[c];
            // NaN compares false: the clamp below would keep it, so it is caught first.
            if (x != x) {
                out[c] = kMissing;
                continue;
            }
            const float f = std::clamp(x * mul + add, 0.0f, maxIndex);
            out[c] = t[int(f)];
        }
    }
}

} // namespace

QImage colorize(const float* values, int rows, int cols, const Scale& scale, int threads)
{
    QImage image;
    colorizeInto(values, rows, cols, scale, image, threads);
    return image;
}

void colorizeInto(const float* values, int rows, int cols, const Scale& scale, QImage& image, int threads)
{
    if (image.width() != std::max(cols, 0) || image.height() != std::max(rows, 0) ||
        image.format() != QImage::Format_RGB32)
        image = QImage(std::max(cols, 0), std::max(rows, 0), QImage::Format_RGB32);
    if (rows <= 0 || cols <= 0 || image.isNull()) return;
    const Lut& lut = scale.diverging ? diverging() : sequential();
    uchar* bits = image.bits(); // detached once here; the bands then write disjoint rows
    const qsizetype bpl = image.bytesPerLine();
    threads = std::clamp(threads, 1, std::max(1, rows / 64));
    if (threads == 1) {
        colorRows(values, 0, rows, cols, scale, lut, bits, bpl);
        return;
    }
    std::vector<std::thread> pool;
    const int band = (rows + threads - 1) / threads;
    for (int k = 1; k < threads; ++k) {
        const int r0 = k * band, r1 = std::min(rows, r0 + band);
        if (r0 < r1) pool.emplace_back([=, &lut] { colorRows(values, r0, r1, cols, scale, lut, bits, bpl); });
    }
    colorRows(values, 0, std::min(rows, band), cols, scale, lut, bits, bpl);
    for (std::thread& t : pool) t.join();
}

} // namespace sage::HeatmapColors
