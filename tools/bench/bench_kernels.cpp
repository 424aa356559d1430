// sage-bench-kernels: CPU kernel throughput against the machine's own limits, measured in the same run.
//
//   sage-bench-kernels [--threads N] [--quick] [--json]
//
// (a) memory read bandwidth: sum over a 1 GiB f32 buffer on N threads;
// (b) FMA peak: independent FMA chains in registers on N threads, with the active ISA;
// (c) bf16 matrix-vector product (decode, T = 1) in GB/s of weights read, as a fraction of (a);
// (d) bf16 matmul for T = 1, 4, 32, 128, 512 at K = R = 4096 in GFLOP/s, as a fraction of (b);
// (e) ThreadPool::parallelFor overhead per call;
// (f) the capture's summary of one attention row (cpu::topK k = 4, then the entropy's cpu::dot of
//     probabilities and scores) in ns per row for rows of 16, 300 and 1024 keys, as a ratio to its peer,
//     the softmax of the same row (cpu::maxValue, cpu::expShifted) that the engine computes anyway; and the
//     top-4 alone (cpu::topK). The rows (4 MiB of scores and probabilities, softmax-like) are all distinct, so
//     that branch predictors cannot learn them.
// Other processes may share the cores, so every quantity is reported as its best pass over several rounds,
// and the rounds cycle through all quantities: each gets its chance at a quiet moment, which keeps the ratio
// between a kernel and its peer (measured in passes of similar length, 10-100 ms) meaningful.
// The weights of (c) and (d) rotate through enough copies (512 MiB) that they are read from memory, not
// from the last-level cache, as the weights of a real model are.
// SAGE_MAX_ISA=scalar|avx2|avx512 caps the instruction set (see engine/cpu/CpuFeatures.cpp).

#include "engine/core/DType.h"
#include "engine/core/WeightView.h"
#include "engine/cpu/Kernels.h"
#include "engine/cpu/ThreadPool.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using namespace sage;
using namespace sage::cpu;

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0)
{
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Options {
    int threads = 0;
    bool quick = false;
    bool json = false;
};

Options parseOptions(int argc, char** argv)
{
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--threads" && i + 1 < argc) {
            o.threads = std::atoi(argv[++i]);
        } else if (a == "--quick") {
            o.quick = true;
        } else if (a == "--json") {
            o.json = true;
        } else {
            std::fprintf(stderr, "usage: sage-bench-kernels [--threads N] [--quick] [--json]\n");
            std::exit(a == "--help" || a == "-h" ? 0 : 2);
        }
    }
    if (o.threads <= 0) o.threads = int(std::max(1u, std::thread::hardware_concurrency()));
    return o;
}

// One measured quantity. A pass runs units 0..units-1 (run(u), each worth `work` bytes or flops); the
// rotation over units is what keeps the data out of the caches.
struct Probe {
    std::function<void(int64_t)> run;
    int64_t units = 1;
    double work = 0;
    double bestSeconds = 1e300; // of one unit, from the best pass

    void measure(int passes)
    {
        for (int p = 0; p < passes; ++p) {
            const Clock::time_point t0 = Clock::now();
            for (int64_t u = 0; u < units; ++u) run(u);
            bestSeconds = std::min(bestSeconds, secondsSince(t0) / double(units));
        }
    }
    double rate() const { return work / bestSeconds / 1e9; }
};

} // namespace

int main(int argc, char** argv)
{
    const Options opt = parseOptions(argc, argv);
    ThreadPool pool(opt.threads);

    // (a) memory read bandwidth: a pass sums 1 GiB in 64 MiB slices, each split across the threads.
    const int64_t sliceFloats = int64_t(16) << 20;
    const int64_t slices = opt.quick ? 4 : 16;                         // 256 MiB or 1 GiB in all
    std::vector<float> big(static_cast<size_t>(slices * sliceFloats)); // [slices * sliceFloats]
    pool.parallelFor(int64_t(big.size()), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) big[size_t(i)] = float(i & 1023) * 1e-3f;
    });
    std::vector<float> partial(static_cast<size_t>(opt.threads)); // [threads] kept so the sums are not elided
    const int64_t bwGrain = (sliceFloats + opt.threads - 1) / opt.threads;
    Probe memory{[&](int64_t u) {
                     const float* slice = big.data() + u * sliceFloats;
                     pool.parallelFor(
                         sliceFloats,
                         [&](int64_t b, int64_t e) { partial[size_t(b / bwGrain)] = sum(slice + b, e - b); }, bwGrain);
                 },
                 slices, double(sliceFloats) * 4};

    // (b) FMA peak: every thread runs the probe at once.
    const int64_t fmaIterations = 500'000;
    std::vector<double> flops(static_cast<size_t>(opt.threads)); // [threads]
    Probe fma{[&](int64_t) {
                  pool.parallelFor(opt.threads, [&](int64_t b, int64_t e) {
                      for (int64_t i = b; i < e; ++i) flops[size_t(i)] = fmaPeakProbe(fmaIterations);
                  });
              },
              8, 0};
    fma.run(0);
    for (double f : flops) fma.work += f;

    // Weights: one buffer of bf16 viewed as several matrices, rotated so that every call reads from memory.
    const int64_t weightBytes = int64_t(512) << 20;
    std::vector<uint16_t> weights(static_cast<size_t>(weightBytes / 2)); // [weightBytes / 2] bf16
    pool.parallelFor(int64_t(weights.size()), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) weights[size_t(i)] = floatToBf16(float((i * 7919) % 2001 - 1000) * 1e-5f);
    });
    const auto copiesOf = [&](int64_t rows, int64_t cols) {
        return std::max<int64_t>(1, weightBytes / (rows * cols * 2));
    };
    const auto view = [&](int64_t rows, int64_t cols, int64_t copy) {
        return WeightView{weights.data() + copy * rows * cols, DType::BF16, rows, cols};
    };

    // (c) decode matrix-vector products: a unit is one call, on the next copy of the weights.
    const int64_t matvecSizes[] = {4096, 8192};
    std::vector<float> xv(8192, 0.01f), yv(8192); // [1, n] each
    std::vector<Probe> matvec;
    for (int64_t n : matvecSizes)
        matvec.push_back({[&, n](int64_t u) { matmul(pool, xv.data(), 1, view(n, n, u), yv.data()); }, copiesOf(n, n),
                          double(n * n * 2)});

    // (d) matmul across token counts; the compute-bound ones need no rotation.
    const int64_t K = 4096, R = 4096;
    const int64_t tokenCounts[] = {1, 4, 32, 128, 512};
    std::vector<float> xm(size_t(512 * K)), ym(size_t(512 * R)); // [T, K], [T, R] for the largest T
    for (size_t i = 0; i < xm.size(); ++i) xm[i] = float(int(i % 17) - 8) * 0.01f;
    std::vector<Probe> matmuls;
    for (int64_t T : tokenCounts)
        matmuls.push_back({[&, T](int64_t u) { matmul(pool, xm.data(), T, view(R, K, u), ym.data()); },
                           T >= 32 ? 2 : copiesOf(R, K), 2.0 * double(T * K * R)});

    // (e) parallelFor overhead: an almost empty body, like the smallest kernels of a decode step.
    std::vector<int64_t> touched(64); // [64]
    const int callsPerUnit = 1000;
    Probe overhead{[&](int64_t) {
                       for (int i = 0; i < callsPerUnit; ++i)
                           pool.parallelFor(
                               64,
                               [&](int64_t b, int64_t e) {
                                   for (int64_t j = b; j < e; ++j) ++touched[size_t(j)];
                               },
                               8);
                   },
                   10, double(callsPerUnit)};

    // (f) attention-row summaries against the row's softmax, on one thread (the recorder's work per row).
    const int64_t rowLengths[] = {16, 300, 1024};
    const int64_t rowFloats = int64_t(1) << 19; // per array: 2 MiB of scores, 2 MiB of probabilities
    std::vector<float> rowScores(static_cast<size_t>(rowFloats)), rowProbs(static_cast<size_t>(rowFloats)),
        rowOut(1024); // [rowFloats]
    uint64_t lcg = 12345;
    for (float& v : rowScores) {
        lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
        v = float(int64_t(lcg >> 40) % 4001 - 2000) * 2e-3f; // uniform in [-4, 4]
    }
    std::vector<Probe> summaries, softmaxes, topKs;
    int32_t topIdx[4];
    float topVal[4];
    double rowSink = 0;
    for (int64_t n : rowLengths) {
        const int64_t rows = rowFloats / n;
        for (int64_t r = 0; r < rows; ++r) {
            const float* x = rowScores.data() + r * n;
            float* p = rowProbs.data() + r * n;
            const double z = expShifted(x, n, maxValue(x, n), p);
            for (int64_t j = 0; j < n; ++j) p[j] = float(p[j] / z);
        }
        summaries.push_back({[&, n, rows](int64_t) {
                                 for (int64_t r = 0; r < rows; ++r) {
                                     topK(rowProbs.data() + r * n, n, 4, topIdx, topVal);
                                     rowSink += topVal[0] + dot(rowProbs.data() + r * n, rowScores.data() + r * n, n);
                                 }
                             },
                             1, double(rows)});
        topKs.push_back({[&, n, rows](int64_t) {
                             for (int64_t r = 0; r < rows; ++r) {
                                 topK(rowProbs.data() + r * n, n, 4, topIdx, topVal);
                                 rowSink += topVal[0];
                             }
                         },
                         1, double(rows)});
        softmaxes.push_back({[&, n, rows](int64_t) {
                                 for (int64_t r = 0; r < rows; ++r) {
                                     const float* x = rowScores.data() + r * n;
                                     rowSink += expShifted(x, n, maxValue(x, n), rowOut.data());
                                 }
                             },
                             1, double(rows)});
    }

    std::vector<Probe*> all{&memory, &fma};
    for (Probe& p : matvec) all.push_back(&p);
    for (Probe& p : matmuls) all.push_back(&p);
    all.push_back(&overhead);
    for (size_t i = 0; i < summaries.size(); ++i) {
        all.push_back(&summaries[i]);
        all.push_back(&topKs[i]);
        all.push_back(&softmaxes[i]);
    }
    const int rounds = opt.quick ? 1 : 4;
    for (int round = 0; round < rounds; ++round)
        for (Probe* p : all) p->measure(2);

    const double memGBps = memory.rate();
    const double peakGflops = fma.rate();
    const double pfMicros = overhead.bestSeconds / callsPerUnit * 1e6;

    std::printf("sage-bench-kernels: ISA %s (detected %s), %d thread%s%s\n", isaName(activeIsa()),
                isaName(detectedIsa()), opt.threads, opt.threads == 1 ? "" : "s", opt.quick ? ", quick" : "");
    std::printf("%-44s %10.1f GB/s\n", "(a) memory read bandwidth (sum over f32)", memGBps);
    std::printf("%-44s %10.1f GFLOP/s\n", "(b) FMA peak (register chains)", peakGflops);
    for (size_t i = 0; i < matvec.size(); ++i) {
        char label[64];
        std::snprintf(label, sizeof label, "(c) bf16 matvec %lldx%lld", (long long)matvecSizes[i],
                      (long long)matvecSizes[i]);
        std::printf("%-44s %10.1f GB/s     %5.2f of (a)\n", label, matvec[i].rate(), matvec[i].rate() / memGBps);
    }
    for (size_t i = 0; i < matmuls.size(); ++i) {
        char label[64];
        std::snprintf(label, sizeof label, "(d) bf16 matmul T=%lld K=R=4096", (long long)tokenCounts[i]);
        const double gflops = matmuls[i].rate();
        const double gbps = gflops / double(tokenCounts[i]); // 2 flops per bf16 weight (2 bytes) per token
        std::printf("%-44s %10.1f GFLOP/s  %5.2f of (b)   %7.1f GB/s weights  %5.2f of (a)\n", label, gflops,
                    gflops / peakGflops, gbps, gbps / memGBps);
    }
    std::printf("%-44s %10.2f us/call\n", "(e) parallelFor overhead", pfMicros);
    const auto nsPerRow = [](const Probe& p) { return p.bestSeconds / p.work * 1e9; };
    for (size_t i = 0; i < summaries.size(); ++i) {
        char label[64];
        std::snprintf(label, sizeof label, "(f) attention-row summary, %lld keys", (long long)rowLengths[i]);
        std::printf("%-44s %10.1f ns/row   %5.2f of the row's softmax (%.1f ns); top-4 alone %.1f ns\n", label,
                    nsPerRow(summaries[i]), nsPerRow(summaries[i]) / nsPerRow(softmaxes[i]), nsPerRow(softmaxes[i]),
                    nsPerRow(topKs[i]));
    }
    if (rowSink == 0.125) std::printf("\n"); // keeps the summaries' results alive

    if (opt.json) {
        std::printf("{\"bench\":\"kernels\",\"isa\":\"%s\",\"threads\":%d,\"quick\":%s,\"mem_read_gbps\":%.2f,"
                    "\"fma_peak_gflops\":%.2f,\"matvec\":[",
                    isaName(activeIsa()), opt.threads, opt.quick ? "true" : "false", memGBps, peakGflops);
        for (size_t i = 0; i < matvec.size(); ++i)
            std::printf("%s{\"rows\":%lld,\"cols\":%lld,\"gbps\":%.2f,\"of_bandwidth\":%.3f}", i ? "," : "",
                        (long long)matvecSizes[i], (long long)matvecSizes[i], matvec[i].rate(),
                        matvec[i].rate() / memGBps);
        std::printf("],\"matmul\":[");
        for (size_t i = 0; i < matmuls.size(); ++i) {
            const double gflops = matmuls[i].rate();
            const double gbps = gflops / double(tokenCounts[i]);
            std::printf("%s{\"tokens\":%lld,\"k\":%lld,\"r\":%lld,\"gflops\":%.2f,\"of_peak\":%.3f,"
                        "\"weight_gbps\":%.2f,\"of_bandwidth\":%.3f}",
                        i ? "," : "", (long long)tokenCounts[i], (long long)K, (long long)R, gflops,
                        gflops / peakGflops, gbps, gbps / memGBps);
        }
        std::printf("],\"parallel_for_us\":%.3f,\"row_summaries\":[", pfMicros);
        for (size_t i = 0; i < summaries.size(); ++i)
            std::printf("%s{\"keys\":%lld,\"summary_ns\":%.2f,\"topk_ns\":%.2f,\"softmax_ns\":%.2f}", i ? "," : "",
                        (long long)rowLengths[i], nsPerRow(summaries[i]), nsPerRow(topKs[i]), nsPerRow(softmaxes[i]));
        std::printf("]}\n");
    }
    return 0;
}
