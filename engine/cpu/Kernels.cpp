#include "engine/cpu/Kernels.h"

#include "engine/core/SageError.h"
#include "engine/cpu/IsaKernels.h"
#include "engine/cpu/ThreadPool.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <limits>
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

void scalarDotRows(const float* q, const float* base, int64_t stride, int64_t count, int64_t n, float* out)
{
    for (int64_t j = 0; j < count; ++j) out[j] = scalarDot(q, base + j * stride, n);
}

void scalarAxpyRows(const float* w, const float* base, int64_t stride, int64_t count, int64_t n, float* y)
{
    for (int64_t j = 0; j < count; ++j) scalarAxpy(w[j], base + j * stride, y, n);
}

float scalarSum(const float* x, int64_t n)
{
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += x[i];
    return s;
}

float scalarMaxValue(const float* x, int64_t n)
{
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; ++j)
        if (x[j] > m) m = x[j];
    return m;
}

int scalarLaneMaxima(const float* x, int64_t n, float* out)
{
    out[0] = scalarMaxValue(x, n);
    return 1;
}

void scalarExpShift(const float* x, int64_t n, float shift, float* out)
{
    using namespace expf_poly;
    for (int64_t j = 0; j < n; ++j) {
        float v = std::clamp(x[j] - shift, kExpLo, kExpHi);
        const float fn = (v * kLog2e + kRound) - kRound;
        v = v - fn * kC1 - fn * kC2;
        float p = kP[0];
        for (int c = 1; c < 6; ++c) p = p * v + kP[c];
        p = p * v * v + v + 1.0f;
        const int32_t bits = (int32_t(fn) + 127) << 23;
        out[j] = p * std::bit_cast<float>(bits);
    }
}

int64_t scalarCollectGreater(const float* x, int64_t n, float t, int32_t* out, int64_t cap)
{
    int64_t m = 0;
    for (int64_t j = 0; j < n && m < cap; ++j)
        if (x[j] > t) out[m++] = int32_t(j);
    return m;
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

// Throws SageError(message()) unless ok; the message is only built on failure (these checks run on every
// kernel call of a decode step).
template <class Message> void checkShape(bool ok, Message&& message)
{
    if (!ok) [[unlikely]]
        throw SageError(message());
}

} // namespace

const IsaKernels& scalarKernels()
{
    static const IsaKernels k{scalarMatvecRows,
                              scalarGemmBlock,
                              1,
                              1,
                              scalarConvert,
                              scalarRmsnormRow,
                              scalarDot,
                              scalarAxpy,
                              scalarSum,
                              scalarCollectGreater,
                              scalarMaxValue,
                              scalarLaneMaxima,
                              scalarExpShift,
                              scalarFmaProbe,
                              scalarDotRows,
                              scalarAxpyRows};
    return k;
}

float rmsScale(float sumSquares, int64_t D, float eps)
{
    return 1.0f / std::sqrt(sumSquares / float(D) + eps);
}

namespace {

// Checks a matmul's arguments; false when there is nothing to compute (y is then already final).
bool matmulArgs(const float* x, int64_t T, const WeightView& w, float* y)
{
    checkShape(T >= 0 && w.rows >= 0 && w.cols >= 0, [&] {
        return std::string("matmul: negative shape (T = " + std::to_string(T) + ", weight [" + std::to_string(w.rows) +
                           ", " + std::to_string(w.cols) + "])");
    });
    if (T == 0 || w.rows == 0) return false;
    if (w.cols == 0) {
        std::fill_n(y, T * w.rows, 0.0f);
        return false;
    }
    checkShape(x && y && w.data, [&] { return std::string("matmul: null input, weight or output buffer"); });
    return true;
}

// Runs block(t0, t1, r0, r1) over [T, R] split into work items (token block, row panel).
template <class Block>
void blocked(ThreadPool& pool, const IsaKernels& k, bool serial, int64_t T, int64_t R, Block&& block)
{
    // Row panels alone give each thread one contiguous range of weight rows, which is what keeps weight
    // traffic minimal; tokens are split as well only when there are too few panels to keep every thread busy.
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
            if (t0 < t1) block(t0, t1, p0 * k.gemmRowBlock, std::min(R, p1 * k.gemmRowBlock));
            i += p1 - p0;
        }
    };
    if (serial)
        items(0, panels * tokenBlocks);
    else
        pool.parallelFor(panels * tokenBlocks, items, 1);
}

void blocked(ThreadPool& pool, const IsaKernels& k, bool serial, const float* x, int64_t T, const WeightView& w,
             float* y)
{
    blocked(pool, k, serial, T, w.rows,
            [&](int64_t t0, int64_t t1, int64_t r0, int64_t r1) { k.gemmBlock(x, T, w, y, t0, t1, r0, r1); });
}

} // namespace

void matmul(ThreadPool& pool, const float* x, int64_t T, const WeightView& w, float* y)
{
    if (!matmulArgs(x, T, w, y)) return;
    const IsaKernels& k = kernelsFor(activeIsa());
    const bool serial = T * w.rows * w.cols < kSerialMacs || pool.threadCount() == 1;
    if (T <= kMatvecMaxTokens) {
        const auto rows = [&](int64_t r0, int64_t r1) { k.matvecRows(x, T, w, y, r0, r1); };
        if (serial)
            rows(0, w.rows);
        else
            pool.parallelFor(w.rows, rows, 8); // grain 8: no two threads write the same cache line of y
        return;
    }
    blocked(pool, k, serial, x, T, w, y);
}

void matmulBlocked(ThreadPool& pool, const float* x, int64_t T, const WeightView& w, float* y)
{
    if (!matmulArgs(x, T, w, y)) return;
    const IsaKernels& k = kernelsFor(activeIsa());
    blocked(pool, k, T * w.rows * w.cols < kSerialMacs || pool.threadCount() == 1, x, T, w, y);
}

void PackedWeight::Free::operator()(float* p) const
{
    ::operator delete(p, std::align_val_t(64));
}

PackedWeight::PackedWeight(const WeightView& w) : m_source(w), m_isa(activeIsa())
{
    const IsaKernels& k = kernelsFor(m_isa);
    if (!k.packPanels || w.rows <= 0 || w.cols <= 0) return; // matmulPacked falls back to matmulBlocked
    const auto up = [](int64_t n, int64_t m) { return (n + m - 1) / m * m; };
    m_floats = size_t(up(w.rows, k.gemmRowBlock) * up(w.cols, k.gemmBlockK));
    // Not cleared: packPanels writes every entry that gemmPacked reads.
    m_data.reset(static_cast<float*>(::operator new(m_floats * sizeof(float), std::align_val_t(64))));
    k.packPanels(w, m_data.get());
}

void matmulPacked(ThreadPool& pool, const float* x, int64_t T, const PackedWeight& w, float* y)
{
    const WeightView& v = w.source();
    if (!matmulArgs(x, T, v, y)) return;
    const IsaKernels& k = kernelsFor(activeIsa());
    const bool serial = T * v.rows * v.cols < kSerialMacs || pool.threadCount() == 1;
    if (!w.data() || w.isa() != activeIsa()) {
        blocked(pool, k, serial, x, T, v, y);
        return;
    }
    blocked(pool, k, serial, T, v.rows, [&](int64_t t0, int64_t t1, int64_t r0, int64_t r1) {
        k.gemmPacked(x, v.cols, v.rows, w.data(), y, t0, t1, r0, r1);
    });
}

void rmsnorm(const float* x, int64_t T, int64_t D, const WeightView& weight, float eps, float* y)
{
    checkShape(weight.rows == 1 && weight.cols == D, [&] {
        return std::string("rmsnorm: the norm weight has shape [" + std::to_string(weight.rows) + ", " +
                           std::to_string(weight.cols) + "], expected one row of " + std::to_string(D) +
                           " entries (the hidden size)");
    });
    const IsaKernels& k = kernelsFor(activeIsa());
    for (int64_t t = 0; t < T; ++t) k.rmsnormRow(x + t * D, D, weight, eps, y + t * D);
}

void convertRow(const WeightView& w, int64_t r, float* dst)
{
    checkShape(r >= 0 && r < w.rows, [&] {
        return std::string("convertRow: row " + std::to_string(r) + " is outside the " + std::to_string(w.rows) +
                           " rows of the weight");
    });
    kernelsFor(activeIsa()).convert(w.row(r).data, w.dtype, w.cols, dst);
}

double expShifted(const float* x, int64_t n, float shift, float* out)
{
    const IsaKernels& k = kernelsFor(activeIsa());
    k.expShift(x, n, shift, out);
    // f32 sums of blocks of 256 added in f64: the rounding error stays that of a 256-term sum for any n.
    double total = 0;
    for (int64_t b = 0; b < n; b += 256) total += double(k.sum(out + b, std::min<int64_t>(256, n - b)));
    return total;
}

float maxValue(const float* x, int64_t n)
{
    checkShape(n >= 1, [&] { return std::string("maxValue: empty range"); });
    return kernelsFor(activeIsa()).maxValue(x, n);
}

float dot(const float* a, const float* b, int64_t n)
{
    return kernelsFor(activeIsa()).dot(a, b, n);
}

void axpy(float a, const float* x, float* y, int64_t n)
{
    kernelsFor(activeIsa()).axpy(a, x, y, n);
}

DotFn dotKernel()
{
    return kernelsFor(activeIsa()).dot;
}

AxpyFn axpyKernel()
{
    return kernelsFor(activeIsa()).axpy;
}

void dotRows(const float* q, const float* base, int64_t stride, int64_t count, int64_t n, float* out)
{
    kernelsFor(activeIsa()).dotRows(q, base, stride, count, n, out);
}

void axpyRows(const float* w, const float* base, int64_t stride, int64_t count, int64_t n, float* y)
{
    kernelsFor(activeIsa()).axpyRows(w, base, stride, count, n, y);
}

float sum(const float* x, int64_t n)
{
    return kernelsFor(activeIsa()).sum(x, n);
}

namespace {
// The largest float below t (t not NaN): x > below(t) <=> x >= t.
float below(float t)
{
    if (t == 0.0f) return -std::numeric_limits<float>::denorm_min();
    if (t == -std::numeric_limits<float>::infinity()) return t;
    const uint32_t b = std::bit_cast<uint32_t>(t);
    return std::bit_cast<float>(t > 0.0f ? b - 1 : b + 1); // +inf - 1 ulp is the largest finite float
}
} // namespace

void topK(const float* x, int64_t n, int k, int32_t* idx, float* val)
{
    // Insertion into the sorted list of entries in index order, skipping by vector scans to the entries that
    // would enter it (collectGreater: a chunk of them per scan). While the list is not full, an entry enters if
    // it reaches t0, the k-th largest entry itself where the ISA computes it (kthLargest), else a lower bound of
    // it: the k-th largest of the vector lanes' maxima (entries with distinct indices), or with fewer lanes than
    // k the smallest of k segment maxima. So few entries are inserted only to be pushed out again, and the
    // insertions, whose branches a processor cannot predict, stay few. Rows of at most kTopKShortMaxN entries go
    // to the ISA's topKShort instead, which has no branch per entry.
    const IsaKernels& kern = kernelsFor(activeIsa());
    if (kern.topKShort && n >= 1 && n <= kTopKShortMaxN && k > 0) return kern.topKShort(x, n, k, idx, val);
    int have = 0;
    const auto insert = [&](int64_t j) {
        const float v = x[j];
        int pos = have < k ? have++ : k - 1;
        while (pos > 0 && v > val[pos - 1]) {
            val[pos] = val[pos - 1];
            idx[pos] = idx[pos - 1];
            --pos;
        }
        val[pos] = v;
        idx[pos] = int32_t(j);
    };
    if (k > 0 && n > 0) {
        constexpr float kLowest = -std::numeric_limits<float>::infinity();
        float gate = kLowest; // entries > gate enter a list that is not full (NaN never does)
        bool gated = false;
        // Up to 1024 entries, the k-th largest itself (branch-free, 2k + 1 vector operations per vector): the
        // scan then finds the k largest and their ties only. Longer rows (a vocabulary) take the one-operation
        // lane maxima, whose bound is tight there.
        constexpr int64_t kExactMaxN = 1024;
        if (kern.kthLargest && k <= kMaxKthLargest && n >= 2 * int64_t(k) && n <= kExactMaxN) {
            const float t0 = kern.kthLargest(x, n, k);
            if (t0 > kLowest) {
                gate = below(t0);
                gated = true;
            }
        } else if (n >= 32 * int64_t(k)) {
            float lanes[kMaxLanes];
            const int nl = kern.laneMaxima(x, n, lanes);
            float t0 = std::numeric_limits<float>::infinity();
            if (nl >= k) {
                // The k-th largest lane maximum: a descending list of the k largest, by insertion.
                float top[kMaxLanes];
                int h = 0;
                for (int l = 0; l < nl; ++l) {
                    const float v = lanes[l];
                    if (h == k && !(v > top[k - 1])) continue;
                    int pos = h < k ? h++ : k - 1;
                    for (; pos > 0 && v > top[pos - 1]; --pos) top[pos] = top[pos - 1];
                    top[pos] = v;
                }
                t0 = top[k - 1];
            } else {
                const int64_t seg = n / k;
                for (int s = 0; s < k; ++s) {
                    const int64_t b = s * seg, e = s + 1 == k ? n : b + seg;
                    t0 = std::min(t0, kern.maxValue(x + b, e - b));
                }
            }
            if (t0 > kLowest) {
                gate = below(t0);
                gated = true;
            }
        }
        int64_t j = 0;
        if (!gated)
            for (; j < n && have < k; ++j)
                if (!std::isnan(x[j])) insert(j); // every entry enters until the list is full
        constexpr int64_t kChunk = 64;
        int32_t found[kChunk];
        while (j < n) {
            const int64_t m = kern.collectGreater(x + j, n - j, have < k ? gate : val[k - 1], found, kChunk);
            for (int64_t c = 0; c < m; ++c) {
                const int64_t e = j + found[c];
                if (have < k || x[e] > val[k - 1]) insert(e); // the list may have filled up since the scan
            }
            if (m < kChunk) break;
            j += found[kChunk - 1] + 1;
        }
    }
    for (int r = have; r < k; ++r) {
        idx[r] = -1;
        val[r] = 0.0f;
    }
}

void symmetricProducts(const float* g, int64_t n, const float* a, const float* b, float* ga, float* gb)
{
    if (n <= 0) return;
    const IsaKernels& kern = kernelsFor(activeIsa());
    if (kern.symmetricProducts) return kern.symmetricProducts(g, n, a, b, ga, gb);
    for (int64_t c = 0; c < n; ++c) ga[c] = gb[c] = 0.0f;
    for (int64_t x = 0; x < n; ++x)
        for (int64_t c = 0; c < n; ++c) {
            ga[c] += a[x] * g[x * n + c];
            gb[c] += b[x] * g[x * n + c];
        }
}

double fmaPeakProbe(int64_t iterations)
{
    return kernelsFor(activeIsa()).fmaProbe(iterations);
}

} // namespace sage::cpu
