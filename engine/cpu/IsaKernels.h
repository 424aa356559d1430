#pragma once

#include "engine/core/WeightView.h"

#include <cstdint>

namespace sage::cpu {

// One instruction set's implementation of the kernels. Kernels.cpp owns the public entry points, the
// argument checks and the split of work across threads, and calls the table of activeIsa().
// Every entry computes each output element with a fixed operation order that does not depend on which
// other elements the same call computes, so results do not depend on how work is split across threads.
struct IsaKernels {
    // y[t, r] for t in [0, T), r in [r0, r1): the memory-bound path for small T (decode). Each weight row
    // is streamed once and meets all T tokens. x: [T, K], y: [T, R] with K = w.cols, R = w.rows.
    void (*matvecRows)(const float* x, int64_t T, const WeightView& w, float* y, int64_t r0, int64_t r1);
    // y[t, r] for t in [t0, t1), r in [r0, r1): the compute-bound path for large T (prefill). Panels of
    // gemmRowBlock rows are converted to f32 once per K block and reused across all tokens of the range.
    void (*gemmBlock)(const float* x, int64_t T, const WeightView& w, float* y, int64_t t0, int64_t t1, int64_t r0,
                      int64_t r1);
    int64_t gemmRowBlock;   // rows per packed panel: the unit in which gemm work is split across threads
    int64_t gemmTokenBlock; // tokens per register tile

    // dst[0, n) = src[0, n) of type `dtype` as f32.
    void (*convert)(const void* src, DType dtype, int64_t n, float* dst);
    // y[0, D) = x[0, D) * rsqrt(mean(x^2) + eps) * weight[0, D); y may alias x.
    void (*rmsnormRow)(const float* x, int64_t D, const WeightView& weight, float eps, float* y);
    float (*dot)(const float* a, const float* b, int64_t n);
    void (*axpy)(float a, const float* x, float* y, int64_t n);
    float (*sum)(const float* x, int64_t n);
    // Writes the indices j in [0, n) with x[j] > t (NaN entries are never greater) to out in increasing order
    // and stops at the cap-th (cap >= 1); returns how many it wrote.
    int64_t (*collectGreater)(const float* x, int64_t n, float t, int32_t* out, int64_t cap);
    // The largest of x[0, n), n >= 1, NaN entries skipped (-inf when all are NaN).
    float (*maxValue)(const float* x, int64_t n);
    // out[l] = the largest x[j] with j = l mod L over the kernel's L vector lanes (NaN skipped, -inf where a
    // lane has none); returns L <= kMaxLanes.
    int (*laneMaxima)(const float* x, int64_t n, float* out);
    // out[j] = exp(x[j] - shift) with the polynomial of expShifted (Kernels.h); out may alias x.
    void (*expShift)(const float* x, int64_t n, float shift, float* out);
    // Runs `iterations` rounds of independent FMA chains held in registers; returns the flops executed.
    double (*fmaProbe)(int64_t iterations);

    // gemmBlock with its panels converted once, for a weight multiplied again and again (the logit lens):
    // packPanels writes every panel gemmBlock would build, the one of rows [p, p + gemmRowBlock) and columns
    // [k0, k0 + gemmBlockK) at packed + ((p / gemmRowBlock) * ceil(K / gemmBlockK) + k0 / gemmBlockK) *
    // gemmBlockK * gemmRowBlock; gemmPacked then computes what gemmBlock computes, bit for bit.
    // Null for an ISA without panels (scalar).
    // Many short products with one vector (decode attention over the keys of a head): out[j] = dot(q, rows of
    // `base` j = 0..count-1, `stride` floats apart, n long) and y += w[j] * row j for j in order, each row with
    // exactly dot's / axpy's operations, so the numbers equal count separate calls.
    void (*dotRows)(const float* q, const float* base, int64_t stride, int64_t count, int64_t n, float* out) = nullptr;
    void (*axpyRows)(const float* w, const float* base, int64_t stride, int64_t count, int64_t n, float* y) = nullptr;

    int64_t gemmBlockK = 0;
    void (*packPanels)(const WeightView& w, float* packed) = nullptr;
    void (*gemmPacked)(const float* x, int64_t K, int64_t R, const float* packed, float* y, int64_t t0, int64_t t1,
                       int64_t r0, int64_t r1) = nullptr;
    // The k-th largest of x[0, n) counting repeated values, NaN skipped, for 1 <= k <= kMaxKthLargest; -inf when
    // fewer than k entries are not NaN. Branch-free: per-lane sorted lists of the k largest, folded pairwise by
    // bitonic merges across the lanes. Null for an ISA without it.
    float (*kthLargest)(const float* x, int64_t n, int k) = nullptr;
    // ga = G a and gb = G b for a symmetric f32 G [n, n] (Kernels.h symmetricProducts). Null for an ISA
    // without it.
    void (*symmetricProducts)(const float* g, int64_t n, const float* a, const float* b, float* ga,
                              float* gb) = nullptr;
    // cpu::topK for a row of 1 <= n <= kTopKShortMaxN entries and any k >= 1 (Kernels.h): every entry's rank
    // (the entries before it: larger, or equal at a lower index) counted in vector registers, then the entries
    // of ranks 0..k-1 picked out; no branch per entry. Null for an ISA without it.
    void (*topKShort)(const float* x, int64_t n, int k, int32_t* idx, float* val) = nullptr;
};

const IsaKernels& scalarKernels();
// Only valid to call (and only linked in to be called) when detectedIsa() reports the instruction set.
const IsaKernels& avx2Kernels();
const IsaKernels& avx512Kernels();

inline constexpr int kMaxLanes = 16;
inline constexpr int kMaxKthLargest = 8;
inline constexpr int64_t kTopKShortMaxN = 16;

// f32(x)^-1/2 of the mean square, shared by every ISA so they only differ in how sumSquares is summed.
float rmsScale(float sumSquares, int64_t D, float eps);

// Constants of the Cephes expf polynomial behind expShift: exp(v) = 2^n * p(v - n ln 2), n = round(v log2 e),
// ln 2 split in two parts (Cody-Waite), arguments clamped to [kExpLo, kExpHi].
namespace expf_poly {
inline constexpr float kLog2e = 1.44269504088896341f, kC1 = 0.693359375f, kC2 = -2.12194440e-4f;
inline constexpr float kRound = 12582912.0f; // 1.5 * 2^23: (t + kRound) - kRound rounds t to an integer
inline constexpr float kExpLo = -87.3f, kExpHi = 88.3f;
inline constexpr float kP[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
} // namespace expf_poly

} // namespace sage::cpu
