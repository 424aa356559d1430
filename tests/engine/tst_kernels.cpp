// CPU kernels and thread pool: every instruction-set path the machine offers is compared against a
// double-precision reference computed from the same (rounded) weights, and results must be bitwise
// independent of the thread count.

#include "engine/core/SageError.h"
#include "engine/cpu/CpuFeatures.h"
#include "engine/cpu/IsaKernels.h"
#include "engine/cpu/Kernels.h"
#include "engine/cpu/ThreadPool.h"

#include <QtTest>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace sage;
using namespace sage::cpu;

namespace {

const DType kDTypes[] = {DType::F32, DType::F16, DType::BF16};

std::vector<Isa> availableIsas()
{
    std::vector<Isa> isas{Isa::Scalar};
    if (detectedIsa() >= Isa::Avx2) isas.push_back(Isa::Avx2);
    if (detectedIsa() >= Isa::Avx512) isas.push_back(Isa::Avx512);
    return isas;
}

// A finite f16 with magnitude in about [2^-6, 2): random sign, exponent and mantissa bits.
uint16_t randomF16(std::mt19937& rng)
{
    const uint32_t bits = rng();
    const uint16_t sign = uint16_t((bits & 1u) << 15);
    const uint16_t exponent = uint16_t(9 + (bits >> 1) % 7); // biased exponent 9..15
    const uint16_t mantissa = uint16_t((bits >> 4) & 0x3ffu);
    return uint16_t(sign | (exponent << 10) | mantissa);
}

// A weight matrix [rows, cols] in `dtype`, stored `offset` elements into its buffer so that its data
// pointer is not 64-byte aligned when offset > 0.
struct TestWeight {
    std::vector<uint8_t> bytes;
    WeightView view;

    TestWeight(DType dtype, int64_t rows, int64_t cols, std::mt19937& rng, int64_t offset = 1)
    {
        const size_t es = dtypeSize(dtype);
        bytes.resize(size_t(rows * cols + offset) * es + 64);
        // Align the base to 64 bytes first so that `offset` alone decides the misalignment.
        const auto base = reinterpret_cast<uintptr_t>(bytes.data());
        uint8_t* data = bytes.data() + ((64 - base % 64) % 64) + size_t(offset) * es;
        std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
        for (int64_t i = 0; i < rows * cols; ++i) {
            if (dtype == DType::F32) {
                const float v = uni(rng);
                std::memcpy(data + i * 4, &v, 4);
            } else {
                const uint16_t v = dtype == DType::F16 ? randomF16(rng) : floatToBf16(uni(rng));
                std::memcpy(data + i * 2, &v, 2);
            }
        }
        view = WeightView{data, dtype, rows, cols};
    }
};

std::vector<float> randomFloats(int64_t n, std::mt19937& rng, float scale = 1.0f)
{
    std::uniform_real_distribution<float> uni(-scale, scale);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& f : v) f = uni(rng);
    return v;
}

bool bitwiseEqual(const std::vector<float>& a, const std::vector<float>& b)
{
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Restores the detected ISA however a test ends.
struct IsaGuard {
    ~IsaGuard() { setMaxIsa(detectedIsa()); }
};

} // namespace

// Rows for the selection kernels: random, many ties, one value, rising, with NaN, mostly -inf, with +inf, and
// runs of 64 equal values, at lengths around the vector widths and blocks.
std::vector<std::vector<float>> selectionRows()
{
    std::mt19937 rng(77);
    std::vector<std::vector<float>> rows;
    for (int64_t n : {1, 3, 5, 15, 16, 17, 63, 64, 65, 255, 256, 1000, 4096}) {
        rows.push_back(randomFloats(n, rng));
        std::vector<float> ties(static_cast<size_t>(n));
        for (float& v : ties) v = float(int(rng() % 4)) * 0.25f; // many equal values
        rows.push_back(ties);
        rows.push_back(std::vector<float>(static_cast<size_t>(n), 0.5f));
        std::vector<float> rising(static_cast<size_t>(n)); // every entry an insertion: the worst case of the scan
        for (int64_t j = 0; j < n; ++j) rising[size_t(j)] = float(j);
        rows.push_back(rising);
        std::vector<float> withNaN = randomFloats(n, rng);
        withNaN[size_t(n / 2)] = std::nanf("");
        withNaN[0] = std::nanf("");
        rows.push_back(withNaN);
        // Infinities: a row of -inf with two finite entries (fewer than k above -inf), and +inf entries.
        constexpr float kInf = std::numeric_limits<float>::infinity();
        std::vector<float> lowest(static_cast<size_t>(n), -kInf);
        lowest[size_t(n / 3)] = 2.0f;
        lowest[size_t(n - 1)] = -1.0f;
        rows.push_back(lowest);
        std::vector<float> highest = randomFloats(n, rng);
        highest[size_t(n / 2)] = kInf;
        highest[size_t(n - 1)] = kInf;
        rows.push_back(highest);
        // Many entries above the first threshold, in chunks: rising steps of 64 equal values.
        std::vector<float> steps(static_cast<size_t>(n));
        for (int64_t j = 0; j < n; ++j) steps[size_t(j)] = float(j / 64);
        rows.push_back(steps);
        std::vector<float> zeros(static_cast<size_t>(n)); // -0 and +0 compare equal
        for (int64_t j = 0; j < n; ++j) zeros[size_t(j)] = j % 3 == 0 ? -0.0f : (j % 3 == 1 ? 0.0f : -1.0f);
        rows.push_back(zeros);
        rows.push_back(std::vector<float>(static_cast<size_t>(n), std::nanf("")));
    }
    return rows;
}

class TestKernels : public QObject
{
    Q_OBJECT

private slots:
    // ---- ThreadPool ----

    void threadPoolCoversEveryIndexOnce()
    {
        for (int threads : {1, 2, 3, 4}) {
            ThreadPool pool(threads);
            QCOMPARE(pool.threadCount(), threads);
            for (int64_t n : {0, 1, 2, 3, 7, 64, 1000, 4097}) {
                for (int64_t grain : {1, 2, 3, 8, 100}) {
                    std::vector<int> visits(size_t(n), 0); // [n]
                    std::mutex mutex;
                    std::vector<std::pair<int64_t, int64_t>> chunks;
                    pool.parallelFor(
                        n,
                        [&](int64_t b, int64_t e) {
                            for (int64_t i = b; i < e; ++i) ++visits[size_t(i)];
                            std::lock_guard<std::mutex> lock(mutex);
                            chunks.emplace_back(b, e);
                        },
                        grain);
                    for (int64_t i = 0; i < n; ++i) QCOMPARE(visits[size_t(i)], 1);
                    QVERIFY(int64_t(chunks.size()) <= threads);
                    for (const auto& [b, e] : chunks) {
                        QVERIFY(b < e);
                        QCOMPARE(b % grain, int64_t(0)); // chunks start on grain boundaries
                        if (e != n) QCOMPARE((e - b) % grain, int64_t(0));
                    }
                }
            }
        }
    }

    void threadPoolSurvivesManyBackToBackCalls()
    {
        // The decode step issues hundreds of calls per token; this exercises the hand-over between
        // generations, calls that leave a worker without a chunk (n = 2 on 3 threads), and workers going to
        // sleep between bursts.
        ThreadPool pool(3);
        std::vector<int64_t> out(12, 0); // [12]
        const int calls = 3000;
        for (int call = 0; call < calls; ++call) {
            const int64_t n = call % 2 ? 2 : int64_t(out.size());
            pool.parallelFor(n, [&](int64_t b, int64_t e) {
                for (int64_t i = b; i < e; ++i) out[size_t(i)] += 1;
            });
            if (call == calls / 2) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        for (size_t i = 0; i < out.size(); ++i) QCOMPARE(out[i], int64_t(i < 2 ? calls : calls / 2));
    }

    void threadPoolRunsNestedCallsSerially()
    {
        ThreadPool pool(3);
        std::atomic<int> innerCalls{0};
        std::atomic<bool> innerOnOtherThread{false};
        std::atomic<int> innerCovered{0};
        pool.parallelFor(6, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) {
                const auto outer = std::this_thread::get_id();
                pool.parallelFor(100, [&](int64_t ib, int64_t ie) {
                    ++innerCalls;
                    innerCovered += int(ie - ib);
                    if (std::this_thread::get_id() != outer) innerOnOtherThread = true;
                });
            }
        });
        QCOMPARE(innerCalls.load(), 6); // one serial call covering [0, 100) per outer index
        QCOMPARE(innerCovered.load(), 600);
        QVERIFY(!innerOnOtherThread.load());
    }

    void threadPoolPropagatesExceptions()
    {
        for (int threads : {1, 2, 3}) {
            ThreadPool pool(threads);
            std::atomic<int> done{0};
            bool caught = false;
            try {
                pool.parallelFor(30, [&](int64_t b, int64_t e) {
                    for (int64_t i = b; i < e; ++i) {
                        if (i == 17) throw std::runtime_error("chunk failed at 17");
                        ++done;
                    }
                });
            } catch (const std::runtime_error& e) {
                caught = true;
                QCOMPARE(QString::fromUtf8(e.what()), QStringLiteral("chunk failed at 17"));
            }
            QVERIFY(caught);
            QVERIFY(done.load() < 30);
            // The pool stays usable after a failed call.
            std::atomic<int64_t> total{0};
            pool.parallelFor(100, [&](int64_t b, int64_t e) { total += e - b; });
            QCOMPARE(total.load(), int64_t(100));
        }
    }

    // ---- ISA selection ----

    void isaSelection()
    {
        IsaGuard guard;
        QCOMPARE(parseIsaName("AVX512"), std::optional<Isa>(Isa::Avx512));
        QCOMPARE(parseIsaName("avx2"), std::optional<Isa>(Isa::Avx2));
        QCOMPARE(parseIsaName("Scalar"), std::optional<Isa>(Isa::Scalar));
        QVERIFY(!parseIsaName("sse9").has_value());
        QCOMPARE(CpuFeatures::detect().bestIsa(), detectedIsa());
        setMaxIsa(Isa::Scalar);
        QCOMPARE(activeIsa(), Isa::Scalar);
        setMaxIsa(Isa::Avx512); // clamped to what the CPU has
        QCOMPARE(activeIsa(), detectedIsa());
        qInfo("detected ISA: %s", isaName(detectedIsa()));
    }

    // ---- matmul ----

    void matmulMatchesReference()
    {
        // Tolerance: |y - ref| <= 2e-5 * sum_k |x_k w_k| + 1e-6, with ref the double-precision sum over the
        // same rounded weights. f32 accumulation over K <= 257 terms in any order stays well inside it.
        IsaGuard guard;
        ThreadPool pool(2);
        std::mt19937 rng(1234);
        for (DType dtype : kDTypes) {
            for (int64_t K : {1, 7, 16, 33, 128, 257}) {
                for (int64_t R : {1, 5, 64, 130}) {
                    const TestWeight w(dtype, R, K, rng);
                    for (int64_t T : {1, 2, 3, 5, 17, 64}) {
                        // x and y sit one float past a 64-byte boundary: kernels must not assume alignment.
                        std::vector<float> xs = randomFloats(T * K + 1, rng); // [1 + T*K]
                        const float* x = xs.data() + 1;
                        std::vector<double> ref(size_t(T * R));   // [T, R]
                        std::vector<double> bound(size_t(T * R)); // [T, R] sum |x w|
                        for (int64_t t = 0; t < T; ++t)
                            for (int64_t r = 0; r < R; ++r) {
                                double s = 0, a = 0;
                                for (int64_t k = 0; k < K; ++k) {
                                    const double p = double(x[t * K + k]) * double(w.view.at(r, k));
                                    s += p;
                                    a += std::abs(p);
                                }
                                ref[size_t(t * R + r)] = s;
                                bound[size_t(t * R + r)] = 2e-5 * a + 1e-6;
                            }
                        for (Isa isa : availableIsas()) {
                            setMaxIsa(isa);
                            std::vector<float> ys(size_t(T * R + 1), std::nanf("")); // [1 + T*R]
                            matmul(pool, x, T, w.view, ys.data() + 1);
                            QVERIFY(std::isnan(ys[0])); // nothing written before y
                            for (int64_t i = 0; i < T * R; ++i) {
                                const double err = std::abs(double(ys[size_t(i + 1)]) - ref[size_t(i)]);
                                if (!(err <= bound[size_t(i)]))
                                    QFAIL(qPrintable(QStringLiteral("%1 %2 T=%3 K=%4 R=%5 y[%6]=%7 ref=%8")
                                                         .arg(isaName(isa), dtypeName(dtype))
                                                         .arg(T)
                                                         .arg(K)
                                                         .arg(R)
                                                         .arg(i)
                                                         .arg(double(ys[size_t(i + 1)]), 0, 'g', 9)
                                                         .arg(ref[size_t(i)], 0, 'g', 9)));
                            }
                        }
                    }
                }
            }
        }
    }

    void matmulIsIndependentOfThreadCount()
    {
        IsaGuard guard;
        ThreadPool pool1(1), pool2(2), pool3(3);
        std::mt19937 rng(99);
        struct Shape {
            int64_t T, K, R;
        };
        // Decode shapes, prefill shapes with many row panels, and prefill shapes with so few row panels
        // that tokens are split across threads too; K > 256 crosses a K block.
        const Shape shapes[] = {{1, 300, 257}, {3, 129, 300}, {4, 64, 1001}, {17, 300, 200},
                                {64, 100, 70}, {9, 40, 1000}, {40, 513, 17}};
        for (DType dtype : kDTypes) {
            for (const Shape& s : shapes) {
                const TestWeight w(dtype, s.R, s.K, rng);
                const std::vector<float> x = randomFloats(s.T * s.K, rng); // [T, K]
                for (Isa isa : availableIsas()) {
                    setMaxIsa(isa);
                    std::vector<float> y1(size_t(s.T * s.R)), y2(y1.size()), y3(y1.size()); // [T, R]
                    matmul(pool1, x.data(), s.T, w.view, y1.data());
                    matmul(pool2, x.data(), s.T, w.view, y2.data());
                    matmul(pool3, x.data(), s.T, w.view, y3.data());
                    const QByteArray what =
                        QByteArray(isaName(isa)) + " " + dtypeName(dtype) + " T=" + QByteArray::number(qint64(s.T));
                    QVERIFY2(bitwiseEqual(y1, y2), what.constData());
                    QVERIFY2(bitwiseEqual(y1, y3), what.constData());
                    // And run to run.
                    std::vector<float> again(y1.size());
                    matmul(pool2, x.data(), s.T, w.view, again.data());
                    QVERIFY2(bitwiseEqual(y2, again), what.constData());
                }
            }
        }
    }

    void matmulBlockedRowsDoNotDependOnTheBatch()
    {
        // Every row of matmulBlocked equals the same row computed alone (T = 1) bit for bit, for any T, thread
        // count and ISA; and it agrees with matmul within the rounding tolerance of matmulMatchesReference.
        IsaGuard guard;
        ThreadPool pool1(1), pool2(2);
        std::mt19937 rng(4242);
        for (DType dtype : kDTypes) {
            for (int64_t K : {7, 256, 300}) {
                const TestWeight w(dtype, 130, K, rng);
                const int64_t R = 130, T = 40;
                const std::vector<float> x = randomFloats(T * K, rng); // [T, K]
                for (Isa isa : availableIsas()) {
                    setMaxIsa(isa);
                    std::vector<float> all(size_t(T * R)), viaMatmul(size_t(T * R));
                    matmulBlocked(pool2, x.data(), T, w.view, all.data());
                    matmul(pool1, x.data(), T, w.view, viaMatmul.data());
                    for (int64_t t0 = 0; t0 < T;) {
                        const int64_t n = std::min<int64_t>(T - t0, 1 + t0 % 7); // batches of 1 .. 7 rows
                        std::vector<float> part(size_t(n * R));
                        matmulBlocked(t0 % 2 ? pool1 : pool2, x.data() + t0 * K, n, w.view, part.data());
                        QVERIFY2(std::memcmp(part.data(), all.data() + t0 * R, part.size() * sizeof(float)) == 0,
                                 qPrintable(QString("%1 %2 K=%3 rows %4..%5")
                                                .arg(isaName(isa), dtypeName(dtype))
                                                .arg(K)
                                                .arg(t0)
                                                .arg(t0 + n)));
                        t0 += n;
                    }
                    for (size_t i = 0; i < all.size(); ++i)
                        QVERIFY(std::abs(all[i] - viaMatmul[i]) <= 1e-5f * (1.0f + std::abs(viaMatmul[i])));
                }
            }
        }
    }

    void rowKernelsMatchSeparateCalls()
    {
        // dotRows / axpyRows (decode attention over all keys of a head in one call) equal count separate dot() /
        // axpy() calls bit for bit: every ISA, row lengths around the vector widths, strided rows, zero rows.
        IsaGuard guard;
        std::mt19937 rng(5151);
        for (int64_t n : {1, 7, 16, 32, 100, 128}) {
            for (int64_t count : {0, 1, 5, 64}) {
                const int64_t stride = n + 9; // rows of a [keys, kv_heads * head_dim] cache: not adjacent
                const std::vector<float> base = randomFloats(std::max<int64_t>(1, count) * stride, rng);
                const std::vector<float> q = randomFloats(n, rng), w = randomFloats(std::max<int64_t>(1, count), rng);
                const std::vector<float> y0 = randomFloats(n, rng);
                for (Isa isa : availableIsas()) {
                    setMaxIsa(isa);
                    std::vector<float> rows(size_t(std::max<int64_t>(1, count)), -7.0f), one(rows.size(), -7.0f);
                    dotRows(q.data(), base.data(), stride, count, n, rows.data());
                    for (int64_t j = 0; j < count; ++j) one[size_t(j)] = dot(q.data(), base.data() + j * stride, n);
                    QVERIFY2(std::memcmp(rows.data(), one.data(), rows.size() * sizeof(float)) == 0,
                             qPrintable(QString("dotRows %1 n=%2 count=%3").arg(isaName(isa)).arg(n).arg(count)));
                    std::vector<float> ya = y0, yb = y0;
                    axpyRows(w.data(), base.data(), stride, count, n, ya.data());
                    for (int64_t j = 0; j < count; ++j) axpy(w[size_t(j)], base.data() + j * stride, yb.data(), n);
                    QVERIFY2(std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(float)) == 0,
                             qPrintable(QString("axpyRows %1 n=%2 count=%3").arg(isaName(isa)).arg(n).arg(count)));
                    if (count > 0) QVERIFY(ya != y0);
                }
            }
        }
    }

    void packedWeightMatchesMatmulBlocked()
    {
        // matmulPacked with a weight packed once equals matmulBlocked bit for bit: every dtype, ISA and thread
        // count, row counts that end inside a panel, K below, at and across the K block, batches of 1 .. 40
        // rows. A weight packed under another ISA than the active one still gives matmulBlocked's numbers.
        IsaGuard guard;
        ThreadPool pool1(1), pool2(2);
        std::mt19937 rng(9090);
        for (DType dtype : kDTypes) {
            for (int64_t K : {7, 256, 300, 600}) {
                for (int64_t R : {1, 15, 16, 65, 130}) {
                    const TestWeight w(dtype, R, K, rng);
                    const std::vector<float> x = randomFloats(40 * K, rng);
                    for (Isa isa : availableIsas()) {
                        setMaxIsa(isa);
                        const PackedWeight packed(w.view);
                        QCOMPARE(packed.isa(), isa);
                        for (int64_t T : {1, 2, 6, 7, 40}) {
                            std::vector<float> expected(size_t(T * R)), got(size_t(T * R), -1.0f);
                            matmulBlocked(pool1, x.data(), T, w.view, expected.data());
                            matmulPacked(T % 2 ? pool2 : pool1, x.data(), T, packed, got.data());
                            QVERIFY2(std::memcmp(expected.data(), got.data(), got.size() * sizeof(float)) == 0,
                                     qPrintable(QString("%1 %2 K=%3 R=%4 T=%5")
                                                    .arg(isaName(isa), dtypeName(dtype))
                                                    .arg(K)
                                                    .arg(R)
                                                    .arg(T)));
                        }
                    }
                    // Packed for the best ISA, used under the scalar one: matmulBlocked's scalar numbers.
                    setMaxIsa(availableIsas().back());
                    const PackedWeight best(w.view);
                    setMaxIsa(Isa::Scalar);
                    std::vector<float> expected(size_t(3 * R)), got(size_t(3 * R));
                    matmulBlocked(pool1, x.data(), 3, w.view, expected.data());
                    matmulPacked(pool1, x.data(), 3, best, got.data());
                    QVERIFY(std::memcmp(expected.data(), got.data(), got.size() * sizeof(float)) == 0);
                }
            }
        }
    }

    void topKAndMaxValueMatchAScan()
    {
        // Against a plain stable sort: the k largest, largest first, ties to the lower index; fewer entries than
        // k leave (-1, 0); rows of ties, rows of one value, rows with NaN or infinities. maxValue skips NaN.
        IsaGuard guard;
        const std::vector<std::vector<float>> rows = selectionRows();
        for (Isa isa : availableIsas()) {
            setMaxIsa(isa);
            for (const std::vector<float>& row : rows) {
                const int64_t n = int64_t(row.size());
                std::vector<int32_t> order;
                for (int64_t j = 0; j < n; ++j)
                    if (!std::isnan(row[size_t(j)])) order.push_back(int32_t(j));
                std::stable_sort(order.begin(), order.end(),
                                 [&](int32_t a, int32_t b) { return row[size_t(a)] > row[size_t(b)]; });
                QCOMPARE(maxValue(row.data(), n),
                         order.empty() ? -std::numeric_limits<float>::infinity() : row[size_t(order[0])]);
                for (int k : {1, 4, 5, 8, 16}) {
                    std::vector<int32_t> idx(size_t(k), 99);
                    std::vector<float> val(size_t(k), 99.0f);
                    topK(row.data(), n, k, idx.data(), val.data());
                    for (int e = 0; e < k; ++e) {
                        if (e < int(order.size()) && e < n) {
                            QCOMPARE(idx[size_t(e)], order[size_t(e)]);
                            QCOMPARE(val[size_t(e)], row[size_t(order[size_t(e)])]);
                        } else {
                            QCOMPARE(idx[size_t(e)], int32_t(-1));
                            QCOMPARE(val[size_t(e)], 0.0f);
                        }
                    }
                }
            }
        }
    }

    void kthLargestMatchesASort()
    {
        // The ISA kernels that compute the k-th largest entry (NaN skipped, repeated values counted; -inf when
        // fewer than k entries are not NaN), against a sort, for every k they take.
        const std::vector<std::vector<float>> rows = selectionRows();
        int checked = 0;
        for (Isa isa : availableIsas()) {
            const IsaKernels& kern =
                isa == Isa::Avx512 ? avx512Kernels() : (isa == Isa::Avx2 ? avx2Kernels() : scalarKernels());
            if (!kern.kthLargest) continue;
            for (const std::vector<float>& row : rows) {
                std::vector<float> sorted;
                for (float v : row)
                    if (!std::isnan(v)) sorted.push_back(v);
                std::sort(sorted.begin(), sorted.end(), std::greater<float>());
                for (int k = 1; k <= kMaxKthLargest; ++k) {
                    const float want =
                        int(sorted.size()) >= k ? sorted[size_t(k - 1)] : -std::numeric_limits<float>::infinity();
                    const float got = kern.kthLargest(row.data(), int64_t(row.size()), k);
                    if (!(got == want)) // == also holds for -0 against +0
                        QFAIL(qPrintable(QString("ISA %1, n %2, k %3: got %4, want %5")
                                             .arg(int(isa))
                                             .arg(row.size())
                                             .arg(k)
                                             .arg(double(got))
                                             .arg(double(want))));
                    ++checked;
                }
            }
        }
        if (checked == 0) QSKIP("no ISA of this machine has a kthLargest kernel (AVX-512 has one)");
    }

    void matmulEdgeShapes()
    {
        ThreadPool pool(2);
        std::mt19937 rng(5);
        // K = 0: an empty sum is 0.
        const float dummy = 1.0f;
        std::vector<float> y(6, 7.0f); // [2, 3]
        matmul(pool, &dummy, 2, WeightView{&dummy, DType::F32, 3, 0}, y.data());
        for (float v : y) QCOMPARE(v, 0.0f);
        // T = 0 writes nothing.
        matmul(pool, nullptr, 0, WeightView{&dummy, DType::F32, 3, 1}, nullptr);
        // Negative shapes are rejected with a message naming the shape.
        try {
            matmul(pool, &dummy, -1, WeightView{&dummy, DType::F32, 3, 1}, y.data());
            QFAIL("negative T accepted");
        } catch (const SageError& e) {
            QVERIFY(QByteArray(e.what()).contains("T = -1"));
        }
    }

    // ---- rmsnorm, convertRow, dot, axpy ----

    void rmsnormMatchesReference()
    {
        // Tolerance: |y - ref| <= 2e-5 * |ref| + 1e-7 with ref = x * (mean(x^2) + eps)^-1/2 * w in double.
        IsaGuard guard;
        std::mt19937 rng(7);
        const float eps = 1e-5f;
        for (DType dtype : kDTypes) {
            for (int64_t D : {1, 7, 16, 33, 128, 257, 5120}) {
                const int64_t T = 3;
                const TestWeight w(dtype, 1, D, rng);
                const std::vector<float> x = randomFloats(T * D, rng, 3.0f); // [T, D]
                for (Isa isa : availableIsas()) {
                    setMaxIsa(isa);
                    std::vector<float> y(size_t(T * D)); // [T, D]
                    rmsnorm(x.data(), T, D, w.view, eps, y.data());
                    for (int64_t t = 0; t < T; ++t) {
                        double ss = 0;
                        for (int64_t i = 0; i < D; ++i) ss += double(x[t * D + i]) * x[t * D + i];
                        const double scale = 1.0 / std::sqrt(ss / double(D) + double(eps));
                        for (int64_t i = 0; i < D; ++i) {
                            const double ref = double(x[t * D + i]) * scale * double(w.view.at(0, i));
                            QVERIFY2(
                                std::abs(double(y[t * D + i]) - ref) <= 2e-5 * std::abs(ref) + 1e-7,
                                qPrintable(QStringLiteral("%1 %2 D=%3").arg(isaName(isa), dtypeName(dtype)).arg(D)));
                        }
                    }
                    // In place gives the same bits.
                    std::vector<float> inPlace = x;
                    rmsnorm(inPlace.data(), T, D, w.view, eps, inPlace.data());
                    QVERIFY(bitwiseEqual(inPlace, y));
                }
            }
        }
    }

    void rmsnormRejectsMismatchedWeight()
    {
        const float w[4] = {1, 1, 1, 1};
        float x[5] = {1, 2, 3, 4, 5};
        try {
            rmsnorm(x, 1, 5, WeightView{w, DType::F32, 1, 4}, 1e-5f, x);
            QFAIL("mismatched norm weight accepted");
        } catch (const SageError& e) {
            QVERIFY(QByteArray(e.what()).contains("has shape [1, 4], expected one row of 5"));
        }
    }

    void convertRowIsExactForEveryHalfPattern()
    {
        // Every f16 and bf16 bit pattern (subnormals, infinities, NaNs) plus 3 more elements so the row
        // has a vector tail; compared against the scalar conversions of DType.h.
        IsaGuard guard;
        const int64_t n = 65536 + 3;
        std::vector<uint16_t> bits(static_cast<size_t>(n)); // [n]
        for (int64_t i = 0; i < n; ++i) bits[size_t(i)] = uint16_t(i);
        for (DType dtype : {DType::F16, DType::BF16}) {
            const WeightView w{bits.data(), dtype, 1, n};
            for (Isa isa : availableIsas()) {
                setMaxIsa(isa);
                std::vector<float> out(size_t(n + 1), -1.0f); // [n + 1], last entry must stay untouched
                convertRow(w, 0, out.data());
                QCOMPARE(out[size_t(n)], -1.0f);
                for (int64_t i = 0; i < n; ++i) {
                    const float ref = w.at(0, i);
                    const float got = out[size_t(i)];
                    if (std::isnan(ref)) {
                        QVERIFY(std::isnan(got));
                    } else if (std::memcmp(&ref, &got, 4) != 0) {
                        QFAIL(qPrintable(QStringLiteral("%1 %2 pattern 0x%3: %4 != %5")
                                             .arg(isaName(isa), dtypeName(dtype))
                                             .arg(i, 4, 16, QChar('0'))
                                             .arg(double(got))
                                             .arg(double(ref))));
                    }
                }
            }
        }
        // Rows other than 0, and f32.
        std::mt19937 rng(3);
        const TestWeight w(DType::F32, 4, 37, rng);
        std::vector<float> out(37); // [37]
        convertRow(w.view, 2, out.data());
        for (int64_t i = 0; i < 37; ++i) QCOMPARE(out[size_t(i)], w.view.at(2, i));
        QVERIFY_THROWS_EXCEPTION(SageError, convertRow(w.view, 4, out.data()));
    }

    void dotSumAndAxpyMatchReference()
    {
        // dot: |err| <= 1e-5 * sum |a b| + 1e-6; sum: |err| <= 1e-5 * sum |a| + 1e-6;
        // axpy: |err| <= 1e-6 * (|a x| + |y|), one or two roundings.
        IsaGuard guard;
        std::mt19937 rng(11);
        for (int64_t n : {0, 1, 7, 8, 16, 33, 64, 65, 257, 1000, 70001}) {
            const std::vector<float> a = randomFloats(n + 1, rng); // [n + 1], used from offset 1
            const std::vector<float> b = randomFloats(n + 1, rng);
            const std::vector<float> y0 = randomFloats(n + 1, rng);
            double ref = 0, bound = 0;
            for (int64_t i = 1; i <= n; ++i) {
                ref += double(a[size_t(i)]) * b[size_t(i)];
                bound += std::abs(double(a[size_t(i)]) * b[size_t(i)]);
            }
            for (Isa isa : availableIsas()) {
                setMaxIsa(isa);
                QVERIFY(std::abs(double(dot(a.data() + 1, b.data() + 1, n)) - ref) <= 1e-5 * bound + 1e-6);
                double refSum = 0, absSum = 0;
                for (int64_t i = 1; i <= n; ++i) {
                    refSum += a[size_t(i)];
                    absSum += std::abs(a[size_t(i)]);
                }
                QVERIFY(std::abs(double(sum(a.data() + 1, n)) - refSum) <= 1e-5 * absSum + 1e-6);

                std::vector<float> y = y0;
                const float alpha = 0.37f;
                axpy(alpha, a.data() + 1, y.data() + 1, n);
                QCOMPARE(y[0], y0[0]); // untouched before the range
                for (int64_t i = 1; i <= n; ++i) {
                    const double r = double(y0[size_t(i)]) + double(alpha) * a[size_t(i)];
                    const double tol = 1e-6 * (std::abs(double(alpha) * a[size_t(i)]) + std::abs(y0[size_t(i)]));
                    QVERIFY(std::abs(double(y[size_t(i)]) - r) <= tol);
                }
            }
        }
    }

    // symmetricProducts: G a and G b of a random symmetric G on every ISA, against double sums (|err| <= 1e-5 *
    // sum |G a| + 1e-6 per entry), at sizes around the vector widths and their multiples of 2 and 4 (the tiles);
    // the outputs' neighbours stay untouched.
    void symmetricProductsMatchReference()
    {
        IsaGuard guard;
        std::mt19937 rng(13);
        for (int64_t n : {1, 5, 8, 15, 16, 17, 24, 32, 33, 48, 64, 65, 100, 128}) {
            std::vector<float> g = randomFloats(n * n, rng);
            for (int64_t x = 0; x < n; ++x)
                for (int64_t y = 0; y < x; ++y) g[size_t(y * n + x)] = g[size_t(x * n + y)];
            const std::vector<float> a = randomFloats(n, rng), b = randomFloats(n, rng);
            for (Isa isa : availableIsas()) {
                setMaxIsa(isa);
                std::vector<float> out(size_t(2 * n + 2), -7.0f); // [guard; G a; G b; guard]
                symmetricProducts(g.data(), n, a.data(), b.data(), out.data() + 1, out.data() + 1 + n);
                QCOMPARE(out.front(), -7.0f);
                QCOMPARE(out.back(), -7.0f);
                for (int s = 0; s < 2; ++s) {
                    const std::vector<float>& v = s == 0 ? a : b;
                    for (int64_t c = 0; c < n; ++c) {
                        double ref = 0, bound = 0;
                        for (int64_t x = 0; x < n; ++x) {
                            ref += double(g[size_t(x * n + c)]) * v[size_t(x)];
                            bound += std::abs(double(g[size_t(x * n + c)]) * v[size_t(x)]);
                        }
                        const double got = out[size_t(1 + s * n + c)];
                        if (std::abs(got - ref) > 1e-5 * bound + 1e-6)
                            QFAIL(qPrintable(QString("%1, n %2, vector %3, entry %4: %5 vs %6")
                                                 .arg(isaName(isa))
                                                 .arg(n)
                                                 .arg(s)
                                                 .arg(c)
                                                 .arg(got)
                                                 .arg(ref)));
                    }
                }
            }
        }
    }

    void expShiftedMatchesStdExp()
    {
        // exp(x - shift) on a grid of shifted arguments over [-87, 0] (step 1e-3), at random in [-60, 0] and
        // below the clamp (-87.5 .. -100): relative error <= 4e-7 against std::exp in double on [-87, 0], about
        // 1e-38 below -87.3; the returned sum within 1e-5 relative; in-place use works.
        IsaGuard guard;
        const float shift = 30.0f;
        std::vector<float> x;
        for (int i = 0; i <= 87000; ++i) x.push_back(shift - float(i) * 1e-3f);
        std::mt19937 rng(5);
        std::uniform_real_distribution<float> u(-30.0f, 30.0f);
        for (int i = 0; i < 4097; ++i) x.push_back(u(rng));
        for (float a : {-87.5f, -90.0f, -100.0f}) x.push_back(shift + a);
        for (Isa isa : availableIsas()) {
            setMaxIsa(isa);
            std::vector<float> out(x.size());
            const double s = expShifted(x.data(), int64_t(x.size()), shift, out.data());
            double refSum = 0;
            for (size_t i = 0; i < x.size(); ++i) {
                const double arg = double(x[i] - shift); // the argument as rounded to float, as std::exp sees it
                const double ref = std::exp(arg);
                refSum += ref;
                if (arg >= -87.0)
                    QVERIFY2(std::abs(double(out[i]) - ref) <= 4e-7 * ref,
                             qPrintable(QString("x %1: %2 vs %3").arg(arg).arg(out[i]).arg(ref)));
                else
                    QVERIFY(out[i] >= 0.0f && out[i] < 2e-38f);
            }
            QVERIFY(std::abs(s - refSum) <= 1e-5 * refSum);
            std::vector<float> inPlace = x;
            expShifted(inPlace.data(), int64_t(inPlace.size()), shift, inPlace.data());
            QVERIFY(inPlace == out);
        }
    }
    void fmaProbeCountsFlops()
    {
        IsaGuard guard;
        for (Isa isa : availableIsas()) {
            setMaxIsa(isa);
            const double flops = fmaPeakProbe(10);
            QVERIFY(flops > 0 && std::fmod(flops, 20.0) == 0.0);
        }
    }
};

QTEST_APPLESS_MAIN(TestKernels)
#include "tst_kernels.moc"
