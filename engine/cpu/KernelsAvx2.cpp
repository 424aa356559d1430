// AVX2 + FMA + F16C kernels. Compiled with -mavx2 -mfma -mf16c; only called after CpuFeatures reported
// the extensions (see Kernels.cpp), so nothing here may run at static-initialisation time.
//
// This file deliberately uses no standard-library templates (std::min, std::vector, ...): an out-of-line
// copy of one, compiled here with AVX2 enabled, is a weak symbol the linker may pick for the generic code
// too, which would then fault on a CPU without AVX2. Everything below has internal linkage.
//
// The structure mirrors KernelsAvx512.cpp (see the comments there); AVX2 has no masked 16-bit loads, so
// partial vectors at the end of a row are staged through a small zero-filled buffer.

#include "engine/cpu/IsaKernels.h"

#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>
#include <new>

namespace sage::cpu {

namespace {

constexpr int kLanes = 8;

inline int64_t minI(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

template <DType D> struct Storage {
    using type = uint16_t;
};
template <> struct Storage<DType::F32> {
    using type = float;
};
template <DType D> using StorageT = typename Storage<D>::type;

// 8 consecutive weights as f32 (bf16: widen and shift into the upper half; f16: hardware converter).
template <DType D> inline __m256 load8(const StorageT<D>* p)
{
    if constexpr (D == DType::F32) {
        return _mm256_loadu_ps(p);
    } else if constexpr (D == DType::F16) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    } else {
        const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
    }
}

// The first n (< 8) elements at p, the other lanes 0; reads nothing past p[n - 1].
template <typename S> inline void stagePartial(const S* p, int64_t n, S (&buf)[kLanes])
{
    for (int i = 0; i < kLanes; ++i) buf[i] = i < n ? p[i] : S(0);
}

template <DType D> inline __m256 load8Partial(const StorageT<D>* p, int64_t n)
{
    StorageT<D> buf[kLanes];
    stagePartial(p, n, buf);
    return load8<D>(buf);
}

inline void storePartial(float* p, int64_t n, __m256 v)
{
    float buf[kLanes];
    _mm256_storeu_ps(buf, v);
    for (int64_t i = 0; i < n; ++i) p[i] = buf[i];
}

// Lanes [0, n) set, n in [0, 8].
inline __m256i laneMask(int64_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Fixed pairwise order: halves, then pairs, then neighbours.
inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

template <DType D> void convertSpan(const StorageT<D>* src, int64_t n, float* dst)
{
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) _mm256_storeu_ps(dst + i, load8<D>(src + i));
    if (i < n) storePartial(dst + i, n - i, load8Partial<D>(src + i, n - i));
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

// y[t, i] = x[t, :] . W[i, :] for NT tokens and NR rows; one accumulator per (t, i), lane l summing
// k = l (mod 8) in increasing k, the K tail as one zero-padded step, then hsum: the same sequence in every
// tile shape, so results do not depend on the thread split.
template <DType D, int NR, int NT>
void matvecTile(const float* x /*[NT, K]*/, int64_t K, const StorageT<D>* w /*[NR, K]*/, float* y /*[NT, ldy]*/,
                int64_t ldy)
{
    __m256 acc[NT][NR];
    for (int t = 0; t < NT; ++t)
        for (int i = 0; i < NR; ++i) acc[t][i] = _mm256_setzero_ps();

    int64_t k = 0;
    for (; k + kLanes <= K; k += kLanes) {
        __m256 wv[NR];
        for (int i = 0; i < NR; ++i) wv[i] = load8<D>(w + i * K + k);
        for (int t = 0; t < NT; ++t) {
            const __m256 xv = _mm256_loadu_ps(x + t * K + k);
            for (int i = 0; i < NR; ++i) acc[t][i] = _mm256_fmadd_ps(xv, wv[i], acc[t][i]);
        }
    }
    if (k < K) {
        __m256 wv[NR];
        for (int i = 0; i < NR; ++i) wv[i] = load8Partial<D>(w + i * K + k, K - k);
        for (int t = 0; t < NT; ++t) {
            const __m256 xv = load8Partial<DType::F32>(x + t * K + k, K - k);
            for (int i = 0; i < NR; ++i) acc[t][i] = _mm256_fmadd_ps(xv, wv[i], acc[t][i]);
        }
    }
    for (int t = 0; t < NT; ++t)
        for (int i = 0; i < NR; ++i) y[t * ldy + i] = hsum(acc[t][i]);
}

template <DType D, int NT>
void matvecRowsT(const float* x, const StorageT<D>* w, int64_t K, int64_t R, float* y, int64_t r0, int64_t r1)
{
    // As many rows per tile as 16 registers allow: NT * NR accumulators + NR weights + NT inputs.
    constexpr int kRows = NT <= 2 ? 4 : (NT == 3 ? 3 : 2);
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

// ---- prefill path: blocked matrix-matrix product (outer-product micro-kernel, see KernelsAvx512.cpp) ----
// A 6-token x 16-row tile of y lives in 12 of the 16 registers; the kBlockK x 16 panel (16 KiB) stays in L1.

constexpr int kTileTokens = 6;
constexpr int kPanelVectors = 2;
constexpr int kPanelRows = kPanelVectors * kLanes; // 16
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

// Transposes the 8x8 block held in r (r[i] = row i) in registers: afterwards r[c] = column c.
inline void transpose8x8(__m256 (&r)[8])
{
    __m256 t[8];
    // Within each 128-bit lane L: t[2i] = (r2i[4L], r2i+1[4L], r2i[4L+1], r2i+1[4L+1]), t[2i+1] likewise for
    // columns 4L+2, 4L+3.
    for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u[4h + c], lane L = rows 4h..4h+3 of column 4L + c.
    __m256 u[8];
    for (int h = 0; h < 2; ++h) {
        u[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
        u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xee);
        u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
        u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xee);
    }
    for (int c = 0; c < 4; ++c) {
        r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
        r[c + 4] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
}

// panel[c][i] = W[r0 + i, k0 + c] as f32 for c < roundUp(kc, 8), i < kPanelRows; rows i >= nr and
// columns c >= kc are zero. Each row's whole cache line is staged first, then converted and transposed in
// 8x8 blocks in registers (see packPanel in KernelsAvx512.cpp for why).
template <DType D>
void packPanel(const StorageT<D>* w, int64_t K, int64_t r0, int nr, int64_t k0, int64_t kc,
               float* panel /*[kBlockK][kPanelRows]*/)
{
    constexpr int kLine = int(64 / sizeof(StorageT<D>)); // elements per cache line: 16 or 32
    alignas(64) StorageT<D> stage[kLanes][kLine];        // [8 rows][one line]
    for (int64_t c = 0; c < kc; c += kLine) {
        const int64_t n = minI(kLine, kc - c);
        for (int g = 0; g < kPanelVectors; ++g) {
            const StorageT<D>* src = w + (r0 + g * kLanes) * K + k0 + c;
            if (g * kLanes + kLanes <= nr && n == kLine) {
                for (int i = 0; i < kLanes; ++i)
                    for (int half = 0; half < 2; ++half)
                        _mm256_store_si256(reinterpret_cast<__m256i*>(stage[i]) + half,
                                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i * K) + half));
            } else {
                // Rows past nr and columns past kc read as zero; nothing past them is touched.
                for (int i = 0; i < kLanes; ++i) {
                    const bool valid = g * kLanes + i < nr;
                    for (int e = 0; e < kLine; ++e) stage[i][e] = valid && e < n ? src[i * K + e] : StorageT<D>(0);
                }
            }
            for (int h = 0; h < kLine && c + h < kc; h += kLanes) {
                __m256 r[kLanes];
                for (int i = 0; i < kLanes; ++i) r[i] = load8<D>(&stage[i][h]);
                transpose8x8(r);
                for (int i = 0; i < kLanes; ++i) _mm256_store_ps(panel + (c + h + i) * kPanelRows + g * kLanes, r[i]);
            }
        }
    }
}

// y[t, c] (+)= sum_k x[t, k] * panel[k][c] for MR tokens and the nr valid columns of the panel.
template <int MR>
void gemmMicro(const float* x /*[MR, ldx]*/, int64_t ldx, const float* panel /*[kc][kPanelRows]*/, int64_t kc,
               float* y /*[MR, ldy]*/, int64_t ldy, int nr, bool accumulate)
{
    __m256i m[kPanelVectors];
    for (int j = 0; j < kPanelVectors; ++j) m[j] = laneMask(nr - j * kLanes);

    __m256 acc[MR][kPanelVectors];
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < kPanelVectors; ++j)
            acc[i][j] = accumulate ? _mm256_maskload_ps(y + i * ldy + j * kLanes, m[j]) : _mm256_setzero_ps();

    for (int64_t k = 0; k < kc; ++k) {
        const float* pk = panel + k * kPanelRows;
        __m256 wv[kPanelVectors];
        for (int j = 0; j < kPanelVectors; ++j) wv[j] = _mm256_load_ps(pk + j * kLanes);
        for (int i = 0; i < MR; ++i) {
            const __m256 xb = _mm256_broadcast_ss(x + i * ldx + k);
            for (int j = 0; j < kPanelVectors; ++j) acc[i][j] = _mm256_fmadd_ps(xb, wv[j], acc[i][j]);
        }
    }

    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < kPanelVectors; ++j) _mm256_maskstore_ps(y + i * ldy + j * kLanes, m[j], acc[i][j]);
}

#include "engine/cpu/BlockedGemm.inc"

// ---- vector helpers ----

inline float reduce4(const __m256 (&acc)[4])
{
    return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

// Four accumulators (combined in a fixed order) keep four FMA/add chains in flight.
float dot(const float* a, const float* b, int64_t n)
{
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 4 * kLanes <= n; i += 4 * kLanes)
        for (int j = 0; j < 4; ++j)
            acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + j * kLanes), _mm256_loadu_ps(b + i + j * kLanes), acc[j]);
    for (; i + kLanes <= n; i += kLanes)
        acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc[0]);
    if (i < n)
        acc[0] =
            _mm256_fmadd_ps(load8Partial<DType::F32>(a + i, n - i), load8Partial<DType::F32>(b + i, n - i), acc[0]);
    return reduce4(acc);
}

using Vec = __m256;
inline Vec vZero()
{
    return _mm256_setzero_ps();
}
inline Vec vSet1(float x)
{
    return _mm256_set1_ps(x);
}
inline Vec vLoad(const float* p, int64_t w)
{
    return w == kLanes ? _mm256_loadu_ps(p) : load8Partial<DType::F32>(p, w);
}
inline void vStore(float* p, int64_t w, Vec v)
{
    if (w == kLanes)
        _mm256_storeu_ps(p, v);
    else
        storePartial(p, w, v);
}
inline Vec vFma(Vec a, Vec b, Vec c)
{
    return _mm256_fmadd_ps(a, b, c);
}
inline Vec vAdd(Vec a, Vec b)
{
    return _mm256_add_ps(a, b);
}

#include "engine/cpu/SymmetricProducts.inc"

void symmetricProducts(const float* g, int64_t n, const float* a, const float* b, float* ga, float* gb)
{
    if (n <= 2 * kLanes)
        symmetricProductsV<2, 2>(g, n, a, b, ga, gb);
    else
        symmetricProductsV<4, 1>(g, n, a, b, ga, gb);
}

constexpr int64_t kMultiStreamMin = 1 << 16; // floats (256 KiB)

float sum(const float* x, int64_t n)
{
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    // A large array is summed as four quarters in lockstep: four sequential read streams keep more cache-line
    // fetches in flight than one (~25% more read bandwidth per core), so the benchmarks' bandwidth probe is
    // not limited by its own access pattern. The order stays fixed for a given n.
    if (n >= kMultiStreamMin) {
        const int64_t quarter = n / 4 / kLanes * kLanes;
        for (int64_t i = 0; i < quarter; i += kLanes)
            for (int j = 0; j < 4; ++j) acc[j] = _mm256_add_ps(acc[j], _mm256_loadu_ps(x + j * quarter + i));
        x += 4 * quarter;
        n -= 4 * quarter;
    }
    int64_t i = 0;
    for (; i + 4 * kLanes <= n; i += 4 * kLanes)
        for (int j = 0; j < 4; ++j) acc[j] = _mm256_add_ps(acc[j], _mm256_loadu_ps(x + i + j * kLanes));
    for (; i + kLanes <= n; i += kLanes) acc[0] = _mm256_add_ps(acc[0], _mm256_loadu_ps(x + i));
    if (i < n) acc[0] = _mm256_add_ps(acc[0], load8Partial<DType::F32>(x + i, n - i));
    return reduce4(acc);
}

void axpy(float a, const float* x, float* y, int64_t n)
{
    const __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    if (i < n)
        storePartial(
            y + i, n - i,
            _mm256_fmadd_ps(av, load8Partial<DType::F32>(x + i, n - i), load8Partial<DType::F32>(y + i, n - i)));
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
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 4 * kLanes <= D_; i += 4 * kLanes)
        for (int j = 0; j < 4; ++j) {
            const __m256 v = _mm256_loadu_ps(x + i + j * kLanes);
            acc[j] = _mm256_fmadd_ps(v, v, acc[j]);
        }
    for (; i + kLanes <= D_; i += kLanes) {
        const __m256 v = _mm256_loadu_ps(x + i);
        acc[0] = _mm256_fmadd_ps(v, v, acc[0]);
    }
    if (i < D_) {
        const __m256 v = load8Partial<DType::F32>(x + i, D_ - i);
        acc[0] = _mm256_fmadd_ps(v, v, acc[0]);
    }
    const __m256 scale = _mm256_set1_ps(rmsScale(reduce4(acc), D_, eps));
    // (x * scale) * weight, in that order, as the reference model rounds it.
    for (i = 0; i + kLanes <= D_; i += kLanes)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), scale), load8<D>(weight + i)));
    if (i < D_) {
        const __m256 v = _mm256_mul_ps(load8Partial<DType::F32>(x + i, D_ - i), scale);
        storePartial(y + i, D_ - i, _mm256_mul_ps(v, load8Partial<D>(weight + i, D_ - i)));
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
    return _mm256_max_ps(a, b);
}
inline Vec vMin(Vec a, Vec b)
{
    return _mm256_min_ps(a, b);
}
inline Vec vLoadOr(const float* p, int64_t w, Vec fill)
{
    const __m256i m = laneMask(w);
    return _mm256_blendv_ps(fill, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
// kthLargestK's fold: lane l and lane l ^ S exchanged (S a power of 2 below the lane count); lane 0.
template <int S> Vec vSwap(Vec v)
{
    if constexpr (S == 4) return _mm256_permute2f128_ps(v, v, 1);
    if constexpr (S == 2) return _mm256_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2));
    if constexpr (S == 1) return _mm256_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1));
}
inline float vFirst(Vec v)
{
    return _mm256_cvtss_f32(v);
}

#include "engine/cpu/Selection.inc"

int64_t collectGreater(const float* x, int64_t n, float t, int32_t* out, int64_t cap)
{
    const __m256 tv = _mm256_set1_ps(t);
    int64_t i = 0, m = 0;
    for (; i + 4 * kLanes <= n && m < cap; i += 4 * kLanes) {
        const uint32_t m0 = uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), tv, _CMP_GT_OQ)));
        const uint32_t m1 =
            uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i + kLanes), tv, _CMP_GT_OQ)));
        const uint32_t m2 =
            uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i + 2 * kLanes), tv, _CMP_GT_OQ)));
        const uint32_t m3 =
            uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i + 3 * kLanes), tv, _CMP_GT_OQ)));
        const uint32_t all = m0 | (m1 << 8) | (m2 << 16) | (m3 << 24);
        if (all) m = appendBits(all, i, out, m, cap);
    }
    for (; i < n && m < cap; i += kLanes) {
        // Masked-off lanes load 0, which may exceed t: the mask drops them.
        const int64_t w = std::min<int64_t>(kLanes, n - i);
        const __m256 v = _mm256_maskload_ps(x + i, laneMask(w));
        const uint32_t mk = uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(v, tv, _CMP_GT_OQ))) & ((1u << w) - 1u);
        if (mk) m = appendBits(mk, i, out, m, cap);
    }
    return m;
}

// IsaKernels::topKShort: the row fits two vectors.
void topKShort(const float* x, int64_t n, int k, int32_t* idx, float* val)
{
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i in[2] = {laneMask(n), laneMask(n - kLanes)};
    const __m256 v[2] = {_mm256_maskload_ps(x, in[0]), _mm256_maskload_ps(x + kLanes, in[1])};
    __m256i rank[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int64_t i = 0; i < n; ++i) {
        // Entry i comes before the entries it exceeds, and before equal ones at higher indices (lanes > i).
        // NaN compares false either way, so it is never counted. A true compare is -1: subtracting adds one.
        const __m256 b = _mm256_set1_ps(x[i]);
        for (int h = 0; h < 2; ++h) {
            const __m256 after = _mm256_castsi256_ps(
                _mm256_cmpgt_epi32(_mm256_add_epi32(lanes, _mm256_set1_epi32(h * kLanes)), _mm256_set1_epi32(int(i))));
            const __m256 before = _mm256_or_ps(_mm256_cmp_ps(b, v[h], _CMP_GT_OQ),
                                               _mm256_and_ps(after, _mm256_cmp_ps(b, v[h], _CMP_EQ_OQ)));
            rank[h] = _mm256_sub_epi32(rank[h], _mm256_castps_si256(before));
        }
    }
    // The entries that are not NaN have the distinct ranks 0, 1, ...: pick those below k.
    const uint32_t valid = (uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(v[0], v[0], _CMP_ORD_Q))) |
                            (uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(v[1], v[1], _CMP_ORD_Q))) << 8)) &
                           ((1u << n) - 1u);
    for (int r = 0; r < k; ++r) {
        const __m256i want = _mm256_set1_epi32(r);
        const uint32_t at =
            (uint32_t(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(rank[0], want)))) |
             (uint32_t(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(rank[1], want)))) << 8)) &
            valid;
        pickRank(at, x, r, idx, val);
    }
}

// out[l] = the largest x[j] with j = l mod 8. max(v, acc) returns acc when v is NaN: NaN entries are skipped,
// as in the scalar kernel.
int laneMaxima(const float* x, int64_t n, float* out)
{
    const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    __m256 acc[4] = {ninf, ninf, ninf, ninf};
    int64_t i = 0;
    for (; i + 4 * kLanes <= n; i += 4 * kLanes)
        for (int j = 0; j < 4; ++j) acc[j] = _mm256_max_ps(_mm256_loadu_ps(x + i + j * kLanes), acc[j]);
    for (; i + kLanes <= n; i += kLanes) acc[0] = _mm256_max_ps(_mm256_loadu_ps(x + i), acc[0]);
    _mm256_storeu_ps(out, _mm256_max_ps(_mm256_max_ps(acc[0], acc[1]), _mm256_max_ps(acc[2], acc[3])));
    for (; i < n; ++i) // entry i sits in lane i mod 8, as in the full blocks
        if (x[i] > out[i % kLanes]) out[i % kLanes] = x[i];
    return kLanes;
}

float maxValue(const float* x, int64_t n)
{
    float lanes[kLanes];
    laneMaxima(x, n, lanes);
    return *std::max_element(lanes, lanes + kLanes); // no lane is NaN
}

void expShift(const float* x, int64_t n, float shift, float* out)
{
    using namespace expf_poly;
    const __m256 s = _mm256_set1_ps(shift), lo = _mm256_set1_ps(kExpLo), hi = _mm256_set1_ps(kExpHi);
    const __m256 log2e = _mm256_set1_ps(kLog2e), c1 = _mm256_set1_ps(kC1), c2 = _mm256_set1_ps(kC2);
    const __m256 rnd = _mm256_set1_ps(kRound), one = _mm256_set1_ps(1.0f);
    const __m256i bias = _mm256_set1_epi32(127);
    const auto block = [&](__m256 xv) {
        // max/min with the bound first: a NaN argument stays NaN, as std::clamp leaves it.
        __m256 v = _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_sub_ps(xv, s)));
        const __m256 fn = _mm256_sub_ps(_mm256_fmadd_ps(v, log2e, rnd), rnd);
        v = _mm256_fnmadd_ps(fn, c2, _mm256_fnmadd_ps(fn, c1, v));
        __m256 p = _mm256_set1_ps(kP[0]);
        for (int c = 1; c < 6; ++c) p = _mm256_fmadd_ps(p, v, _mm256_set1_ps(kP[c]));
        p = _mm256_fmadd_ps(_mm256_mul_ps(p, v), v, _mm256_add_ps(v, one));
        const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fn), bias), 23);
        return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    };
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) _mm256_storeu_ps(out + i, block(_mm256_loadu_ps(x + i)));
    if (i < n) {
        alignas(32) float buf[kLanes] = {};
        for (int64_t j = i; j < n; ++j) buf[j - i] = x[j];
        _mm256_store_ps(buf, block(_mm256_load_ps(buf)));
        for (int64_t j = i; j < n; ++j) out[j] = buf[j - i];
    }
}

double fmaProbe(int64_t iterations)
{
    // 12 independent chains: more than latency (4-5) x FMA pipes (2) on current cores, within 16 registers.
    constexpr int kChains = 12;
    __m256 a[kChains];
    for (int j = 0; j < kChains; ++j) a[j] = _mm256_set1_ps(1.0f + 0.01f * float(j));
    const __m256 m = _mm256_set1_ps(0.999999f);
    const __m256 c = _mm256_set1_ps(1e-7f);
    for (int64_t it = 0; it < iterations; ++it)
        for (int j = 0; j < kChains; ++j) a[j] = _mm256_fmadd_ps(a[j], m, c);
    __m256 s = a[0];
    for (int j = 1; j < kChains; ++j) s = _mm256_add_ps(s, a[j]);
    volatile float sink = hsum(s);
    (void)sink;
    return double(iterations) * kChains * kLanes * 2;
}

} // namespace

const IsaKernels& avx2Kernels()
{
    static const IsaKernels k{
        matvecRows, gemmBlock,      kPanelRows, kTileTokens, convert,           rmsnormRow, dot,     axpy,
        sum,        collectGreater, maxValue,   laneMaxima,  expShift,          fmaProbe,   dotRows, axpyRows,
        kBlockK,    packPanels,     gemmPacked, kthLargest,  symmetricProducts, topKShort};
    return k;
}

} // namespace sage::cpu
