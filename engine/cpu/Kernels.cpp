#include "engine/cpu/Kernels.h"

#include "engine/core/SageError.h"
#include "engine/cpu/IsaKernels.h"
#include "engine/cpu/ThreadPool.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

// Public kernel entry points: argument checks, the choice between the decode (matrix-vector) and the
// prefill (blocked matrix-matrix) paths, the split of work across threads, and the portable scalar
// implementation. This file is compiled for the x86-64 baseline; the vector kernels are in
// KernelsAvx2.cpp / KernelsAvx512.cpp and are only reached through kernelsFor(activeIsa()).

namespace sage::cpu {

namespace {

// Up to this many tokens a matmul streams each weight row once and multiplies it with every token
// (memory-bound); above it the weights are converted panel by panel and reused from cache (compute-bound).

// Below this many multiply-adds a matmul runs on the calling thread: waking workers costs more.
constexpr int64_t kSerialMacs = 1 << 15;

// ---- scalar reference implementation ----

void scalarConvert(const void* src, DType dtype, int64_t n, float* dst)
{
    switch (dtype) {
    case DType::F32: std::copy_n(static_cast<const float*>(src), n, dst); return;
    case DType::F16: {
        const auto* s = static_cast<const uint16_t*>(src);
        for (int64_t i = 0; i < n; ++i) dst[i] = f16ToFloat(s[i]);
        return;
    }
    case DType::BF16: {
        const auto* s = static_cast<const uint16_t*>(src);
        for (int64_t i = 0; i < n; ++i) dst[i] = bf16ToFloat(s[i]);
        return;
    }
    }
}

float scalarDot(const float* a, const float* b, int64_t n)
{
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}

// One row of W as f32, reused by every token of a scalar matmul.
std::vector<float>& scalarRowBuffer(int64_t K)
{
    thread_local std::vector<float> row; // [K]
    if (int64_t(row.size()) < K) row.resize(size_t(K));
    return row;
}

void scalarMatvecRows(const float* x, int64_t T, const WeightView& w, float* y, int64_t r0, int64_t r1)
{
    const int64_t K = w.cols;
    const int64_t R = w.rows;
    float* row = scalarRowBuffer(K).data(); // [K]
    for (int64_t r = r0; r < r1; ++r) {
        scalarConvert(w.row(r).data, w.dtype, K, row);
        for (int64_t t = 0; t < T; ++t) y[t * R + r] = scalarDot(x + t * K, row, K);
    }
}

void scalarGemmBlock(const float* x, int64_t /*T*/, const WeightView& w, float* y, int64_t t0, int64_t t1, int64_t r0,
                     int64_t r1)
{
    const int64_t K = w.cols;
    const int64_t R = w.rows;
    float* row = scalarRowBuffer(K).data(); // [K]
    for (int64_t r = r0; r < r1; ++r) {
        scalarConvert(w.row(r).data, w.dtype, K, row);
        for (int64_t t = t0; t < t1; ++t) y[t * R + r] = scalarDot(x + t * K, row, K);
    }
}

void scalarRmsnormRow(const float* x, int64_t D, const WeightView& weight, float eps, float* y)
{
    float ss = 0.0f;
    for (int64_t i = 0; i < D; ++i) ss += x[i] * x[i];
    const float scale = rmsScale(ss, D, eps);
    for (int64_t i = 0; i < D; ++i) y[i] = (x[i] * scale) * weight.at(0, i);
}

void scalarAxpy(float a, const float* x, float* y, int64_t n)
{
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

float scalarSum(const float* x, int64_t n)
{
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += x[i];
    return s;
}

double scalarFmaProbe(int64_t iterations)
{
    // Eight independent chains so the probe measures throughput, not latency.
    float a[8] = {1.0f, 1.1f, 1.2f, 1.3f, 1.4f, 1.5f, 1.6f, 1.7f};
    for (int64_t it = 0; it < iterations; ++it)
        for (float& v : a) v = v * 0.999999f + 1e-7f;
    volatile float sink = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
    (void)sink;
    return double(iterations) * 8 * 2;
}

const IsaKernels& kernelsFor(Isa isa)
{
    switch (isa) {
    case Isa::Avx512: return avx512Kernels();
    case Isa::Avx2: return avx2Kernels();
    case Isa::Scalar: break;
    }
    return scalarKernels();
}

void checkShape(bool ok, const std::string& message)
{
    if (!ok) throw SageError(message);
}

} // namespace

const IsaKernels& scalarKernels()
{
    static const IsaKernels k{scalarMatvecRows, scalarGemmBlock, 1,          1,         scalarConvert,
                              scalarRmsnormRow, scalarDot,       scalarAxpy, scalarSum, scalarFmaProbe};
    return k;
}

float rmsScale(float sumSquares, int64_t D, float eps)
{
    return 1.0f / std::sqrt(sumSquares / float(D) + eps);
}

void matmul(ThreadPool& pool, const float* x, int64_t T, const WeightView& w, float* y)
{
    checkShape(T >= 0 && w.rows >= 0 && w.cols >= 0, "matmul: negative shape (T = " + std::to_string(T) + ", weight [" +
                                                         std::to_string(w.rows) + ", " + std::to_string(w.cols) + "])");
    const int64_t R = w.rows;
    const int64_t K = w.cols;
    if (T == 0 || R == 0) return;
    if (K == 0) {
        std::fill_n(y, T * R, 0.0f);
        return;
    }
    checkShape(x && y && w.data, "matmul: null input, weight or output buffer");

    const IsaKernels& k = kernelsFor(activeIsa());
    const bool serial = T * R * K < kSerialMacs || pool.threadCount() == 1;

    if (T <= kMatvecMaxTokens) {
        const auto rows = [&](int64_t r0, int64_t r1) { k.matvecRows(x, T, w, y, r0, r1); };
        if (serial)
            rows(0, R);
        else
            pool.parallelFor(R, rows, 8); // grain 8: no two threads write the same cache line of y
        return;
    }

    // Work items are (token block, row panel) pairs. Row panels alone give each thread one contiguous
    // range of weight rows, which is what keeps weight traffic minimal; tokens are split as well only when
    // there are too few panels to keep every thread busy.
    const int64_t panels = (R + k.gemmRowBlock - 1) / k.gemmRowBlock;
    const int64_t threads = serial ? 1 : pool.threadCount();
    const int64_t tokenTiles = (T + k.gemmTokenBlock - 1) / k.gemmTokenBlock;
    const int64_t tokenBlocks = std::clamp<int64_t>((2 * threads + panels - 1) / panels, 1, tokenTiles);
    const int64_t tokensPerBlock = ((tokenTiles + tokenBlocks - 1) / tokenBlocks) * k.gemmTokenBlock;
    const auto items = [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1;) {
            // Gather the run of consecutive panels of the same token block into one call.
            const int64_t tb = i / panels;
            const int64_t p0 = i % panels;
            const int64_t p1 = std::min(panels, p0 + (i1 - i));
            const int64_t t0 = tb * tokensPerBlock;
            const int64_t t1 = std::min(T, t0 + tokensPerBlock);
            if (t0 < t1) k.gemmBlock(x, T, w, y, t0, t1, p0 * k.gemmRowBlock, std::min(R, p1 * k.gemmRowBlock));
            i += p1 - p0;
        }
    };
    if (serial)
        items(0, panels * tokenBlocks);
    else
        pool.parallelFor(panels * tokenBlocks, items, 1);
}

void rmsnorm(const float* x, int64_t T, int64_t D, const WeightView& weight, float eps, float* y)
{
    checkShape(weight.rows == 1 && weight.cols == D, "rmsnorm: the norm weight has shape [" +
                                                         std::to_string(weight.rows) + ", " +
                                                         std::to_string(weight.cols) + "], expected one row of " +
                                                         std::to_string(D) + " entries (the hidden size)");
    const IsaKernels& k = kernelsFor(activeIsa());
    for (int64_t t = 0; t < T; ++t) k.rmsnormRow(x + t * D, D, weight, eps, y + t * D);
}

void convertRow(const WeightView& w, int64_t r, float* dst)
{
    checkShape(r >= 0 && r < w.rows, "convertRow: row " + std::to_string(r) + " is outside the " +
                                         std::to_string(w.rows) + " rows of the weight");
    kernelsFor(activeIsa()).convert(w.row(r).data, w.dtype, w.cols, dst);
}

double expShifted(const float* x, int64_t n, float shift, float* out)
{
    constexpr float kLog2e = 1.44269504088896341f, kC1 = 0.693359375f, kC2 = -2.12194440e-4f;
    constexpr float kRound = 12582912.0f; // 1.5 * 2^23: (t + kRound) - kRound rounds t to the nearest integer
    for (int64_t j = 0; j < n; ++j) {
        float v = std::clamp(x[j] - shift, -87.3f, 88.3f);
        const float fn = (v * kLog2e + kRound) - kRound;
        v = v - fn * kC1 - fn * kC2;
        float p = 1.9875691500e-4f;
        p = p * v + 1.3981999507e-3f;
        p = p * v + 8.3334519073e-3f;
        p = p * v + 4.1665795894e-2f;
        p = p * v + 1.6666665459e-1f;
        p = p * v + 5.0000001201e-1f;
        p = p * v * v + v + 1.0f;
        const int32_t bits = (int32_t(fn) + 127) << 23;
        out[j] = p * std::bit_cast<float>(bits);
    }
    // f32 sums of blocks of 256 added in f64: the rounding error stays that of a 256-term sum for any n.
    double total = 0;
    for (int64_t b = 0; b < n; b += 256) total += double(sum(out + b, std::min<int64_t>(256, n - b)));
    return total;
}

float dot(const float* a, const float* b, int64_t n)
{
    return kernelsFor(activeIsa()).dot(a, b, n);
}

void axpy(float a, const float* x, float* y, int64_t n)
{
    kernelsFor(activeIsa()).axpy(a, x, y, n);
}

float sum(const float* x, int64_t n)
{
    return kernelsFor(activeIsa()).sum(x, n);
}

double fmaPeakProbe(int64_t iterations)
{
    return kernelsFor(activeIsa()).fmaProbe(iterations);
}

} // namespace sage::cpu
