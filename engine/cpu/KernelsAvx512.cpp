// AVX-512 kernels (F + BW + VL + DQ). Compiled with -mavx512*; only called after CpuFeatures reported
// the extensions (see Kernels.cpp), so nothing here may run at static-initialisation time.
//
// This file deliberately uses no standard-library templates (std::min, std::vector, ...): an out-of-line
// copy of one, compiled here with AVX-512 enabled, is a weak symbol the linker may pick for the generic code
// too, which would then fault on a CPU without AVX-512. Everything below has internal linkage.

#include "engine/cpu/IsaKernels.h"

// GCC 12's AVX-512 headers build "undefined" vectors as `__m512 __Y = __Y;`, which -Wuninitialized reports
// wherever such an intrinsic is inlined (GCC bug 105593, fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>
#include <new>

namespace sage::cpu {

namespace {

constexpr int kLanes = 16;

inline int64_t minI(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

inline int clampI(int v, int lo, int hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

// ---- loading weights of any stored type as f32 lanes ----

template <DType D> struct Storage {
    using type = uint16_t;
};
template <> struct Storage<DType::F32> {
    using type = float;
};
template <DType D> using StorageT = typename Storage<D>::type;

// 16 consecutive weights as f32. bf16 is the upper half of an f32, so widening to 32 bits and shifting
// left by 16 is an exact conversion; f16 uses the hardware converter (also exact).
template <DType D> inline __m512 load16(const StorageT<D>* p)
{
    if constexpr (D == DType::F32) {
        return _mm512_loadu_ps(p);
    } else if constexpr (D == DType::F16) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    } else {
        const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
        return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
    }
}

// The lanes of `m` loaded, the others 0. Masked-off elements are not read, so this is safe at the very
// end of a buffer.
template <DType D> inline __m512 load16(const StorageT<D>* p, __mmask16 m)
{
    if constexpr (D == DType::F32) {
        return _mm512_maskz_loadu_ps(m, p);
    } else if constexpr (D == DType::F16) {
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
    } else {
        const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
        return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
    }
}

inline __mmask16 tailMask(int64_t n) // n in [0, 16]
{
    return n >= kLanes ? __mmask16(0xffff) : __mmask16((1u << n) - 1u);
}

template <DType D> void convertSpan(const StorageT<D>* src, int64_t n, float* dst)
{
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) _mm512_storeu_ps(dst + i, load16<D>(src + i));
    if (i < n) {
        const __mmask16 m = tailMask(n - i);
        _mm512_mask_storeu_ps(dst + i, m, load16<D>(src + i, m));
    }
}

void convert(const void* src, DType dtype, int64_t n, float* dst)
{
    switch (dtype) {
    case DType::F32: convertSpan<DType::F32>(static_cast<const float*>(src), n, dst); return;
    case DType::F16: convertSpan<DType::F16>(static_cast<const uint16_t*>(src), n, dst); return;
    case DType::BF16: convertSpan<DType::BF16>(static_cast<const uint16_t*>(src), n, dst); return;
    }
}

// ---- decode path: matrix-vector products streaming the weights ----

// y[t, i] = x[t, :] . W[i, :] for NT tokens and NR consecutive weight rows. Every (t, i) pair owns one
// accumulator whose lane l sums k = l (mod 16) in increasing k; the K tail is a masked step (zeros add
// nothing), then a fixed horizontal reduction. That sequence is the same whatever NR/NT tile the row falls
// in, which is what makes results independent of the thread split.
template <DType D, int NR, int NT>
void matvecTile(const float* x /*[NT, K]*/, int64_t K, const StorageT<D>* w /*[NR, K]*/, float* y /*[NT, ldy]*/,
                int64_t ldy)
{
    __m512 acc[NT][NR];
    for (int t = 0; t < NT; ++t)
        for (int i = 0; i < NR; ++i) acc[t][i] = _mm512_setzero_ps();

    int64_t k = 0;
    for (; k + kLanes <= K; k += kLanes) {
        __m512 wv[NR];
        for (int i = 0; i < NR; ++i) wv[i] = load16<D>(w + i * K + k);
        for (int t = 0; t < NT; ++t) {
            const __m512 xv = _mm512_loadu_ps(x + t * K + k);
            for (int i = 0; i < NR; ++i) acc[t][i] = _mm512_fmadd_ps(xv, wv[i], acc[t][i]);
        }
    }
    if (k < K) {
        const __mmask16 m = tailMask(K - k);
        __m512 wv[NR];
        for (int i = 0; i < NR; ++i) wv[i] = load16<D>(w + i * K + k, m);
        for (int t = 0; t < NT; ++t) {
            const __m512 xv = _mm512_maskz_loadu_ps(m, x + t * K + k);
            for (int i = 0; i < NR; ++i) acc[t][i] = _mm512_fmadd_ps(xv, wv[i], acc[t][i]);
        }
    }
    for (int t = 0; t < NT; ++t)
        for (int i = 0; i < NR; ++i) y[t * ldy + i] = _mm512_reduce_add_ps(acc[t][i]);
}

template <DType D, int NT>
void matvecRowsT(const float* x, const StorageT<D>* w, int64_t K, int64_t R, float* y, int64_t r0, int64_t r1)
{
    // Enough independent accumulators to cover FMA latency x throughput (4 x 2) when the weights are in
    // cache, within 32 registers: 8 rows for one or two tokens (up to 16 accumulators plus 10 operands; two
    // tokens are a decode step with its logit lens row), 4 rows x NT tokens otherwise. Every (token, row)
    // has its own accumulator summed in the same order whatever the tile, so the shape changes no bit.
    constexpr int kRows = NT <= 2 ? 8 : 4;
    int64_t r = r0;
    for (; r + kRows <= r1; r += kRows) matvecTile<D, kRows, NT>(x, K, w + r * K, y + r, R);
    for (; r < r1; ++r) matvecTile<D, 1, NT>(x, K, w + r * K, y + r, R);
}

template <DType D> void matvecRowsD(const float* x, int64_t T, const WeightView& w, float* y, int64_t r0, int64_t r1)
{
    const auto* wd = static_cast<const StorageT<D>*>(w.data);
    const int64_t K = w.cols;
    const int64_t R = w.rows;
    for (int64_t t = 0; t < T; t += 4) {
        const float* xt = x + t * K;
        float* yt = y + t * R;
        switch (minI(4, T - t)) {
        case 1: matvecRowsT<D, 1>(xt, wd, K, R, yt, r0, r1); break;
        case 2: matvecRowsT<D, 2>(xt, wd, K, R, yt, r0, r1); break;
        case 3: matvecRowsT<D, 3>(xt, wd, K, R, yt, r0, r1); break;
        default: matvecRowsT<D, 4>(xt, wd, K, R, yt, r0, r1); break;
        }
    }
}

void matvecRows(const float* x, int64_t T, const WeightView& w, float* y, int64_t r0, int64_t r1)
{
    switch (w.dtype) {
    case DType::F32: matvecRowsD<DType::F32>(x, T, w, y, r0, r1); return;
    case DType::F16: matvecRowsD<DType::F16>(x, T, w, y, r0, r1); return;
    case DType::BF16: matvecRowsD<DType::BF16>(x, T, w, y, r0, r1); return;
    }
}

// ---- prefill path: blocked matrix-matrix product ----
//
// For a panel of kPanelRows weight rows and a block of kBlockK columns, the weights are converted to f32
// and transposed once into `panel` [kBlockK][kPanelRows], so that one k step of the micro-kernel loads
// four vectors of 16 rows each. The micro-kernel then holds a [kTileTokens x kPanelRows] tile of y in 24
// registers and, per k, broadcasts x[t, k] of each token and does 24 FMAs (outer-product form): no
// horizontal sums, and every y[t, r] is one FMA chain over k in increasing order, continued across K blocks
// through y itself. That order does not depend on tiling, so results do not depend on the thread split.
// Sizes: the panel is 64 KiB (L2), the x rows of a tile 6 KiB (L1).

constexpr int kTileTokens = 6;
constexpr int kPanelVectors = 4;
constexpr int kPanelRows = kPanelVectors * kLanes; // 64
constexpr int64_t kBlockK = 256;

// The packed panel of the calling thread: [kBlockK][kPanelRows] f32, 64-byte aligned.
struct PanelBuffer {
    float* data = nullptr;

    PanelBuffer()
    {
        data = static_cast<float*>(::operator new(sizeof(float) * kPanelRows * kBlockK, std::align_val_t(64)));
    }
    ~PanelBuffer() { ::operator delete(data, std::align_val_t(64)); }
    PanelBuffer(const PanelBuffer&) = delete;
    PanelBuffer& operator=(const PanelBuffer&) = delete;
};

float* panelBuffer()
{
    thread_local PanelBuffer buffer;
    return buffer.data;
}

// Transposes the 16x16 block held in r (r[i] = row i) in registers: afterwards r[c] = column c.
inline void transpose16x16(__m512 (&r)[16])
{
    __m512 t[16];
    // Within each 128-bit lane L: t[2i] = (r2i[4L], r2i+1[4L], r2i[4L+1], r2i+1[4L+1]), t[2i+1] likewise for
    // columns 4L+2, 4L+3.
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u[4i + c], lane L = rows 4i..4i+3 of column 4L + c.
    __m512 u[16];
    for (int i = 0; i < 4; ++i) {
        const __m512d a = _mm512_castps_pd(t[4 * i]);
        const __m512d b = _mm512_castps_pd(t[4 * i + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * i + 2]);
        const __m512d d = _mm512_castps_pd(t[4 * i + 3]);
        u[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    // Column 4L + c gathers lane L of u[c], u[4 + c], u[8 + c], u[12 + c].
    for (int c = 0; c < 4; ++c) {
        const __m512 lo01 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
        const __m512 hi01 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xee);
        const __m512 lo23 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        const __m512 hi23 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xee);
        r[c + 0] = _mm512_shuffle_f32x4(lo01, lo23, 0x88);
        r[c + 4] = _mm512_shuffle_f32x4(lo01, lo23, 0xdd);
        r[c + 8] = _mm512_shuffle_f32x4(hi01, hi23, 0x88);
        r[c + 12] = _mm512_shuffle_f32x4(hi01, hi23, 0xdd);
    }
}

// panel[c][i] = W[r0 + i, k0 + c] as f32 for c < roundUp(kc, 16), i < kPanelRows; rows i >= nr and
// columns c >= kc are zero. Converts and transposes 16x16 blocks in registers, so the weights are read once
// and the panel written once. Each row's whole cache line is copied to a small staging block first: the rows
// of a panel are usually a multiple of 4 KiB apart, so they all fall into one L1 set and a line would be
// evicted before its second half was used.
template <DType D>
void packPanel(const StorageT<D>* w, int64_t K, int64_t r0, int nr, int64_t k0, int64_t kc,
               float* panel /*[kBlockK][kPanelRows]*/)
{
    constexpr int kLine = int(64 / sizeof(StorageT<D>)); // elements per cache line: 16 or 32
    alignas(64) StorageT<D> stage[16][kLine];            // [16 rows][one line]
    for (int64_t c = 0; c < kc; c += kLine) {
        const int64_t n = minI(kLine, kc - c);
        for (int g = 0; g < kPanelVectors; ++g) {
            const StorageT<D>* src = w + (r0 + g * kLanes) * K + k0 + c;
            if (g * kLanes + kLanes <= nr && n == kLine) {
                for (int i = 0; i < 16; ++i) _mm512_store_si512(stage[i], _mm512_loadu_si512(src + i * K));
            } else {
                // Rows past nr and columns past kc read as zero; masked-off elements are never touched.
                const uint64_t lanes = n >= 64 ? ~uint64_t(0) : (uint64_t(1) << n) - 1;
                for (int i = 0; i < 16; ++i) {
                    const bool valid = g * kLanes + i < nr;
                    if constexpr (kLine == 16)
                        _mm512_store_ps(stage[i], valid ? _mm512_maskz_loadu_ps(__mmask16(lanes), src + i * K)
                                                        : _mm512_setzero_ps());
                    else
                        _mm512_store_si512(stage[i], valid ? _mm512_maskz_loadu_epi16(__mmask32(lanes), src + i * K)
                                                           : _mm512_setzero_si512());
                }
            }
            for (int h = 0; h < kLine && c + h < kc; h += kLanes) {
                __m512 r[16];
                for (int i = 0; i < 16; ++i) r[i] = load16<D>(&stage[i][h]);
                transpose16x16(r);
                for (int i = 0; i < 16; ++i) _mm512_store_ps(panel + (c + h + i) * kPanelRows + g * kLanes, r[i]);
            }
        }
    }
}

// y[t, c] (+)= sum_k x[t, k] * panel[k][c] for MR tokens and the nr valid columns of the panel.
template <int MR>
void gemmMicro(const float* x /*[MR, ldx]*/, int64_t ldx, const float* panel /*[kc][kPanelRows]*/, int64_t kc,
               float* y /*[MR, ldy]*/, int64_t ldy, int nr, bool accumulate)
{
    __mmask16 m[kPanelVectors];
    for (int j = 0; j < kPanelVectors; ++j) m[j] = tailMask(clampI(nr - j * kLanes, 0, kLanes));

    __m512 acc[MR][kPanelVectors];
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < kPanelVectors; ++j)
            acc[i][j] = accumulate ? _mm512_maskz_loadu_ps(m[j], y + i * ldy + j * kLanes) : _mm512_setzero_ps();

    for (int64_t k = 0; k < kc; ++k) {
        const float* pk = panel + k * kPanelRows;
        __m512 wv[kPanelVectors];
        for (int j = 0; j < kPanelVectors; ++j) wv[j] = _mm512_load_ps(pk + j * kLanes);
        for (int i = 0; i < MR; ++i) {
            const __m512 xb = _mm512_set1_ps(x[i * ldx + k]);
            for (int j = 0; j < kPanelVectors; ++j) acc[i][j] = _mm512_fmadd_ps(xb, wv[j], acc[i][j]);
        }
    }

    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < kPanelVectors; ++j) _mm512_mask_storeu_ps(y + i * ldy + j * kLanes, m[j], acc[i][j]);
}

#include "engine/cpu/BlockedGemm.inc"

// ---- vector helpers ----

// Four accumulators (combined in a fixed order) keep four FMA/add chains in flight.
float dot(const float* a, const float* b, int64_t n)
{
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 4 * kLanes <= n; i += 4 * kLanes)
        for (int j = 0; j < 4; ++j)
            acc[j] = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + j * kLanes), _mm512_loadu_ps(b + i + j * kLanes), acc[j]);
    for (; i < n; i += kLanes) {
        const __mmask16 m = tailMask(n - i);
        acc[0] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc[0]);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

constexpr int64_t kMultiStreamMin = 1 << 16; // floats (256 KiB)

float sum(const float* x, int64_t n)
{
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    // A large array is summed as four quarters in lockstep: four sequential read streams keep more cache-line
    // fetches in flight than one (~25% more read bandwidth per core), so the benchmarks' bandwidth probe is
    // not limited by its own access pattern. The order stays fixed for a given n.
    if (n >= kMultiStreamMin) {
        const int64_t quarter = n / 4 / kLanes * kLanes;
        for (int64_t i = 0; i < quarter; i += kLanes)
            for (int j = 0; j < 4; ++j) acc[j] = _mm512_add_ps(acc[j], _mm512_loadu_ps(x + j * quarter + i));
        x += 4 * quarter;
        n -= 4 * quarter;
    }
    int64_t i = 0;
    for (; i + 4 * kLanes <= n; i += 4 * kLanes)
        for (int j = 0; j < 4; ++j) acc[j] = _mm512_add_ps(acc[j], _mm512_loadu_ps(x + i + j * kLanes));
    for (; i < n; i += kLanes) acc[0] = _mm512_add_ps(acc[0], _mm512_maskz_loadu_ps(tailMask(n - i), x + i));
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

using Vec = __m512;
inline Vec vZero()
{
    return _mm512_setzero_ps();
}
inline Vec vSet1(float x)
{
    return _mm512_set1_ps(x);
}
inline Vec vLoad(const float* p, int64_t w)
{
    return _mm512_maskz_loadu_ps(tailMask(w), p);
}
inline void vStore(float* p, int64_t w, Vec v)
{
    _mm512_mask_storeu_ps(p, tailMask(w), v);
}
inline Vec vFma(Vec a, Vec b, Vec c)
{
    return _mm512_fmadd_ps(a, b, c);
}
inline Vec vAdd(Vec a, Vec b)
{
    return _mm512_add_ps(a, b);
}

#include "engine/cpu/SymmetricProducts.inc"

void symmetricProducts(const float* g, int64_t n, const float* a, const float* b, float* ga, float* gb)
{
    if (n <= kLanes)
        symmetricProductsV<1, 4>(g, n, a, b, ga, gb);
    else if (n <= 2 * kLanes)
        symmetricProductsV<2, 4>(g, n, a, b, ga, gb);
    else
        symmetricProductsV<4, 2>(g, n, a, b, ga, gb);
}

void axpy(float a, const float* x, float* y, int64_t n)
{
    const __m512 av = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        const __mmask16 m = tailMask(n - i);
        _mm512_mask_storeu_ps(y + i, m,
                              _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

void dotRows(const float* q, const float* base, int64_t stride, int64_t count, int64_t n, float* out)
{
    for (int64_t j = 0; j < count; ++j) out[j] = dot(q, base + j * stride, n);
}

void axpyRows(const float* w, const float* base, int64_t stride, int64_t count, int64_t n, float* y)
{
    for (int64_t j = 0; j < count; ++j) axpy(w[j], base + j * stride, y, n);
}

template <DType D> void rmsnormRowD(const float* x, int64_t D_, const StorageT<D>* weight, float eps, float* y)
{
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 4 * kLanes <= D_; i += 4 * kLanes)
        for (int j = 0; j < 4; ++j) {
            const __m512 v = _mm512_loadu_ps(x + i + j * kLanes);
            acc[j] = _mm512_fmadd_ps(v, v, acc[j]);
        }
    for (; i < D_; i += kLanes) {
        const __m512 v = _mm512_maskz_loadu_ps(tailMask(D_ - i), x + i);
        acc[0] = _mm512_fmadd_ps(v, v, acc[0]);
    }
    const float ss = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
    const __m512 scale = _mm512_set1_ps(rmsScale(ss, D_, eps));
    // (x * scale) * weight, in that order, as the reference model rounds it.
    for (i = 0; i < D_; i += kLanes) {
        const __mmask16 m = tailMask(D_ - i);
        const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), scale);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(v, load16<D>(weight + i, m)));
    }
}

void rmsnormRow(const float* x, int64_t D_, const WeightView& weight, float eps, float* y)
{
    switch (weight.dtype) {
    case DType::F32: rmsnormRowD<DType::F32>(x, D_, static_cast<const float*>(weight.data), eps, y); return;
    case DType::F16: rmsnormRowD<DType::F16>(x, D_, static_cast<const uint16_t*>(weight.data), eps, y); return;
    case DType::BF16: rmsnormRowD<DType::BF16>(x, D_, static_cast<const uint16_t*>(weight.data), eps, y); return;
    }
}

inline Vec vMax(Vec a, Vec b)
{
    return _mm512_max_ps(a, b);
}
inline Vec vMin(Vec a, Vec b)
{
    return _mm512_min_ps(a, b);
}
inline Vec vLoadOr(const float* p, int64_t w, Vec fill)
{
    return _mm512_mask_loadu_ps(fill, tailMask(w), p);
}
// kthLargestK's fold: lane l and lane l ^ S exchanged (S a power of 2 below the lane count); lane 0.
template <int S> Vec vSwap(Vec v)
{
    if constexpr (S == 8) return _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2));
    if constexpr (S == 4) return _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1));
    if constexpr (S == 2) return _mm512_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2));
    if constexpr (S == 1) return _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1));
}
inline float vFirst(Vec v)
{
    return _mm512_cvtss_f32(v);
}

#include "engine/cpu/Selection.inc"

int64_t collectGreater(const float* x, int64_t n, float t, int32_t* out, int64_t cap)
{
    const __m512 tv = _mm512_set1_ps(t);
    int64_t i = 0, m = 0;
    for (; i + 4 * kLanes <= n && m < cap; i += 4 * kLanes) {
        const __mmask16 m0 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), tv, _CMP_GT_OQ);
        const __mmask16 m1 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i + kLanes), tv, _CMP_GT_OQ);
        const __mmask16 m2 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i + 2 * kLanes), tv, _CMP_GT_OQ);
        const __mmask16 m3 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i + 3 * kLanes), tv, _CMP_GT_OQ);
        const uint64_t all = uint64_t(m0) | (uint64_t(m1) << 16) | (uint64_t(m2) << 32) | (uint64_t(m3) << 48);
        if (all) m = appendBits(all, i, out, m, cap);
    }
    for (; i < n && m < cap; i += kLanes) {
        const __mmask16 tm = tailMask(n - i);
        const __mmask16 mk = _mm512_mask_cmp_ps_mask(tm, _mm512_maskz_loadu_ps(tm, x + i), tv, _CMP_GT_OQ);
        if (mk) m = appendBits(mk, i, out, m, cap);
    }
    return m;
}

// IsaKernels::topKShort: the row fits one vector.
void topKShort(const float* x, int64_t n, int k, int32_t* idx, float* val)
{
    const __mmask16 in = tailMask(n);
    const __m512 v = _mm512_maskz_loadu_ps(in, x);
    const __m512i one = _mm512_set1_epi32(1);
    __m512i rank = _mm512_setzero_si512();
    for (int64_t i = 0; i < n; ++i) {
        // Entry i comes before the entries it exceeds, and before equal ones at higher indices (lanes > i).
        // NaN compares false either way, so it is never counted.
        const __m512 b = _mm512_set1_ps(x[i]);
        const __mmask16 after = __mmask16(0xfffeu << i);
        const __mmask16 before =
            _mm512_cmp_ps_mask(b, v, _CMP_GT_OQ) | _mm512_mask_cmp_ps_mask(after, b, v, _CMP_EQ_OQ);
        rank = _mm512_mask_add_epi32(rank, before, rank, one);
    }
    // The entries that are not NaN have the distinct ranks 0, 1, ...: pick those below k.
    const __mmask16 valid = _mm512_mask_cmp_ps_mask(in, v, v, _CMP_ORD_Q);
    for (int r = 0; r < k; ++r) {
        const uint32_t at = _mm512_mask_cmpeq_epi32_mask(valid, rank, _mm512_set1_epi32(r));
        pickRank(at, x, r, idx, val);
    }
}

// Lane l holds the largest x[j] with j = l mod 16 (entry j sits in lane j mod 16 in every block, also in the
// masked tail). max(v, acc) returns acc when v is NaN: NaN entries are skipped, as in the scalar kernel.
__m512 laneMaxVector(const float* x, int64_t n)
{
    const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    __m512 acc[4] = {ninf, ninf, ninf, ninf};
    int64_t i = 0;
    for (; i + 4 * kLanes <= n; i += 4 * kLanes)
        for (int j = 0; j < 4; ++j) acc[j] = _mm512_max_ps(_mm512_loadu_ps(x + i + j * kLanes), acc[j]);
    for (; i < n; i += kLanes) acc[0] = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, tailMask(n - i), x + i), acc[0]);
    return _mm512_max_ps(_mm512_max_ps(acc[0], acc[1]), _mm512_max_ps(acc[2], acc[3]));
}

float maxValue(const float* x, int64_t n)
{
    return _mm512_reduce_max_ps(laneMaxVector(x, n));
}

int laneMaxima(const float* x, int64_t n, float* out)
{
    _mm512_storeu_ps(out, laneMaxVector(x, n));
    return kLanes;
}

void expShift(const float* x, int64_t n, float shift, float* out)
{
    using namespace expf_poly;
    const __m512 s = _mm512_set1_ps(shift), lo = _mm512_set1_ps(kExpLo), hi = _mm512_set1_ps(kExpHi);
    const __m512 log2e = _mm512_set1_ps(kLog2e), c1 = _mm512_set1_ps(kC1), c2 = _mm512_set1_ps(kC2);
    const __m512 rnd = _mm512_set1_ps(kRound), one = _mm512_set1_ps(1.0f);
    const __m512i bias = _mm512_set1_epi32(127);
    for (int64_t i = 0; i < n; i += kLanes) {
        const __mmask16 m = tailMask(n - i);
        // max/min with the bound first: a NaN argument stays NaN, as std::clamp leaves it.
        __m512 v = _mm512_min_ps(hi, _mm512_max_ps(lo, _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s)));
        const __m512 fn = _mm512_sub_ps(_mm512_fmadd_ps(v, log2e, rnd), rnd);
        v = _mm512_fnmadd_ps(fn, c2, _mm512_fnmadd_ps(fn, c1, v));
        __m512 p = _mm512_set1_ps(kP[0]);
        for (int c = 1; c < 6; ++c) p = _mm512_fmadd_ps(p, v, _mm512_set1_ps(kP[c]));
        p = _mm512_fmadd_ps(_mm512_mul_ps(p, v), v, _mm512_add_ps(v, one));
        const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fn), bias), 23);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(p, _mm512_castsi512_ps(bits)));
    }
}

double fmaProbe(int64_t iterations)
{
    // 12 independent chains: more than latency (4) x FMA pipes (2) on current cores.
    constexpr int kChains = 12;
    __m512 a[kChains];
    for (int j = 0; j < kChains; ++j) a[j] = _mm512_set1_ps(1.0f + 0.01f * float(j));
    const __m512 m = _mm512_set1_ps(0.999999f);
    const __m512 c = _mm512_set1_ps(1e-7f);
    for (int64_t it = 0; it < iterations; ++it)
        for (int j = 0; j < kChains; ++j) a[j] = _mm512_fmadd_ps(a[j], m, c);
    __m512 s = a[0];
    for (int j = 1; j < kChains; ++j) s = _mm512_add_ps(s, a[j]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return double(iterations) * kChains * kLanes * 2;
}

} // namespace

const IsaKernels& avx512Kernels()
{
    static const IsaKernels k{
        matvecRows, gemmBlock,      kPanelRows, kTileTokens, convert,           rmsnormRow, dot,     axpy,
        sum,        collectGreater, maxValue,   laneMaxima,  expShift,          fmaProbe,   dotRows, axpyRows,
        kBlockK,    packPanels,     gemmPacked, kthLargest,  symmetricProducts, topKShort};
    return k;
}

} // namespace sage::cpu
