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
    // Runs `iterations` rounds of independent FMA chains held in registers; returns the flops executed.
    double (*fmaProbe)(int64_t iterations);
};

const IsaKernels& scalarKernels();
// Only valid to call (and only linked in to be called) when detectedIsa() reports the instruction set.
const IsaKernels& avx2Kernels();
const IsaKernels& avx512Kernels();

// f32(x)^-1/2 of the mean square, shared by every ISA so they only differ in how sumSquares is summed.
float rmsScale(float sumSquares, int64_t D, float eps);

} // namespace sage::cpu
