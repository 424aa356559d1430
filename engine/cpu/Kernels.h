#pragma once

#include "engine/core/WeightView.h"

#include <cstdint>
#include <memory>

namespace sage::cpu {

class ThreadPool;

enum class Isa { Scalar, Avx2, Avx512 };

const char* isaName(Isa isa);
// The best instruction set this CPU supports (checked at run time with cpuid).
Isa detectedIsa();
// The instruction set the kernels currently use: detectedIsa() unless forced lower.
Isa activeIsa();
// Forces kernels to use at most `isa` (tests compare every path against the scalar one).
// A request above detectedIsa() is clamped to it. Not thread-safe against running kernels.
void setMaxIsa(Isa isa);

// y[T, R] = x[T, K] . W[R, K]^T, i.e. y[t, r] = sum_k x[t, k] * W(r, k).
// x: f32 row-major [T, K] (K = w.cols); y: f32 row-major [T, R] (R = w.rows), overwritten.
// W is read in its stored dtype (F32, F16, BF16) and converted on the fly. Accumulation in f32.
// Parallel over rows of W (and over blocks of T for large T) on `pool`.
void matmul(ThreadPool& pool, const float* x, int64_t T, const WeightView& w, float* y);
// The same product through the blocked (prefill) kernel whatever T is. Each y[t, r] is then computed with the
// same operations for any T and any thread split, so rows computed in batches of different sizes agree bit
// for bit (matmul's matrix-vector path for T <= kMatvecMaxTokens rounds differently). For batches of rows
// collected over time, such as the logit lens of decode steps.
void matmulBlocked(ThreadPool& pool, const float* x, int64_t T, const WeightView& w, float* y);
// A weight converted once into the layout matmulBlocked's kernel builds on every call (f32 panels), for a
// weight multiplied again and again with few rows at a time: the logit lens packs the output head once
// instead of converting all of it for every batch of steps. Owns its copy (4 bytes per weight); the view
// it was packed from must outlive it.
class PackedWeight
{
public:
    PackedWeight() = default;
    // Packs w for the active ISA.
    explicit PackedWeight(const WeightView& w);
    const WeightView& source() const { return m_source; }
    Isa isa() const { return m_isa; }
    size_t bytes() const { return m_floats * sizeof(float); }
    const float* data() const { return m_data.get(); }

private:
    struct Free {
        void operator()(float* p) const;
    };
    WeightView m_source{};
    Isa m_isa = Isa::Scalar;
    size_t m_floats = 0;
    std::unique_ptr<float[], Free> m_data;
};
// matmulBlocked(pool, x, T, w.source(), y), bit for bit, without converting the weight. When the active ISA
// is no longer the one w was packed for (setMaxIsa), it is matmulBlocked itself.
void matmulPacked(ThreadPool& pool, const float* x, int64_t T, const PackedWeight& w, float* y);
// Products of at most this many rows take the matrix-vector path, which reads the weights once for all rows
// and computes every row with exactly the operations it gets alone: batching rows there changes no bit.
inline constexpr int64_t kMatvecMaxTokens = 4;

// y[T, D] = x[t, :] * rsqrt(mean(x[t, :]^2) + eps) * weight[:]; weight is a 1-D view with D entries.
// y may alias x.
void rmsnorm(const float* x, int64_t T, int64_t D, const WeightView& weight, float eps, float* y);

// dst[0..w.cols) = row r of w as f32.
void convertRow(const WeightView& w, int64_t r, float* dst);

float dot(const float* a, const float* b, int64_t n);
// y[i] += a * x[i]
void axpy(float a, const float* x, float* y, int64_t n);
// The functions dot() and axpy() call for the active ISA, for loops that call them very often on short rows
// (attention: once per key and head): the same numbers without looking the ISA up on every call.
using DotFn = float (*)(const float* a, const float* b, int64_t n);
using AxpyFn = void (*)(float a, const float* x, float* y, int64_t n);
DotFn dotKernel();
AxpyFn axpyKernel();
// out[j] = dot(q, base + j * stride, n) for j in [0, count), and y[0, n) += w[j] * (base + j * stride)[0, n) for
// j = 0, 1, .., count - 1 in that order: one call for all keys of an attention head, the same numbers as
// count calls of dot() / axpy().
void dotRows(const float* q, const float* base, int64_t stride, int64_t count, int64_t n, float* out);
void axpyRows(const float* w, const float* base, int64_t stride, int64_t count, int64_t n, float* y);

// out[j] = exp(x[j] - shift) for j in [0, n), with a vectorised polynomial exponential (Cephes expf: relative
// error below 2e-7 against std::exp; arguments below -87.3 give about 1e-38 instead of 0).
// For softmax-like rows (shift = the row maximum). Returns the sum of out[] (f32 blocks of 256, added in f64).
// out may alias x.
double expShifted(const float* x, int64_t n, float shift, float* out);

// The largest entry of x[0, n), n >= 1 (NaN entries skipped). Vectorised.
float maxValue(const float* x, int64_t n);

// The k largest of x[0, n) as (index, value), largest first, ties to the lower index; NaN entries are skipped.
// Fewer than k entries: the rest are (-1, 0). Vectorised scan.
void topK(const float* x, int64_t n, int k, int32_t* idx, float* val);

// ga[0, n) = G a and gb[0, n) = G b for a symmetric f32 matrix G [n, n], row-major (only its symmetry is
// used: row x is taken as column x, so the vector kernels add broadcast multiples of rows, without the
// horizontal sums of a matrix-vector product). For the capture's stream norms x^T G x with a head's Gram
// matrix (n = head_dim), where a general product's setup would cost more than the arithmetic.
void symmetricProducts(const float* g, int64_t n, const float* a, const float* b, float* ga, float* gb);

// Sum of x[0, n) in f32 with a fixed order per ISA. Streams at full read bandwidth, which is why the
// benchmarks use it as their memory-bandwidth probe.
float sum(const float* x, int64_t n);

// For benchmarks: runs `iterations` rounds of independent FMA chains held in registers with the active
// ISA on the calling thread and returns the number of floating-point operations executed (2 per lane per
// FMA), i.e. the peak the matmul kernels are compared against.
double fmaPeakProbe(int64_t iterations);

} // namespace sage::cpu
