// sage-bench-kernels: CPU kernel throughput against the machine's own limits, measured in the same run.
//
//   sage-bench-kernels [--threads N] [--quick] [--json]
//
// (a) memory read bandwidth: sum over a 1 GiB f32 buffer on N threads;
// (b) FMA peak: independent FMA chains in registers on N threads, with the active ISA;
// (c) bf16 matrix-vector product (decode, T = 1) in GB/s of weights read, as a fraction of (a);
// (d) bf16 matmul for T = 1, 4, 32, 128, 512 at K = R = 4096 in GFLOP/s, as a fraction of (b);
// (e) ThreadPool::parallelFor overhead per call.
// Every figure is the best of several repetitions, because other processes may share the cores.
// The weights of (c) and (d) rotate through enough copies that they are read from memory, not from the
// last-level cache, as the weights of a real model are. SAGE_MAX_ISA=scalar|avx2|avx512 caps the ISA.

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

// Best (shortest) time of `reps` runs of fn, repeating further until at least `minSeconds` were spent.
template <typename Fn>
double bestSeconds(int reps, double minSeconds, const Fn& fn)
{
    double best = 1e300;
    double total = 0;
    for (int r = 0; r < reps || total < minSeconds; ++r) {
        const Clock::time_point t0 = Clock::now();
        fn();
        const double s = secondsSince(t0);
        best = std::min(best, s);
        total += s;
        if (r > 1000) break;
    }
    return best;
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

struct MatvecResult {
    int64_t rows, cols;
    double gbps;
};

struct MatmulResult {
    int64_t tokens;
    double gflops;
    double gbps; // weight bytes per second
};

} // namespace

int main(int argc, char** argv)
{
    const Options opt = parseOptions(argc, argv);
    ThreadPool pool(opt.threads);
    const int reps = opt.quick ? 3 : 7;
    const double minSeconds = opt.quick ? 0.05 : 0.3;

    // (a) memory read bandwidth.
    const int64_t bwFloats = (opt.quick ? 256LL : 1024LL) << 18; // 256 MiB or 1 GiB of f32
    std::vector<float> big(static_cast<size_t>(bwFloats)); // [bwFloats]
    pool.parallelFor(bwFloats, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) big[size_t(i)] = float(i & 1023) * 1e-3f;
    });
    std::vector<float> partial(static_cast<size_t>(opt.threads)); // [threads] one sum per chunk, kept so nothing is elided
    const int64_t bwGrain = (bwFloats + opt.threads - 1) / opt.threads; // one chunk per thread
    const double bwSeconds = bestSeconds(reps, minSeconds, [&] {
        pool.parallelFor(
            bwFloats,
            [&](int64_t b, int64_t e) { partial[size_t(b / bwGrain)] = sum(&big[size_t(b)], e - b); }, bwGrain);
    });
    const double memGBps = double(bwFloats) * 4 / bwSeconds / 1e9;
    big = {};

    // (b) FMA peak: every thread runs the probe at once.
    const int64_t fmaIterations = opt.quick ? 2'000'000 : 10'000'000;
    std::vector<double> flops(static_cast<size_t>(opt.threads)); // [threads]
    const double fmaSeconds = bestSeconds(reps, minSeconds, [&] {
        pool.parallelFor(opt.threads, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) flops[size_t(i)] = fmaPeakProbe(fmaIterations);
        });
    });
    double totalFlops = 0;
    for (double f : flops) totalFlops += f;
    const double peakGflops = totalFlops / fmaSeconds / 1e9;

    // Weights: one buffer of bf16 viewed as several matrices, rotated so every call reads from memory.
    const int64_t weightBytes = (opt.quick ? 256LL : 512LL) << 20;
    std::vector<uint16_t> weights(static_cast<size_t>(weightBytes / 2)); // [weightBytes / 2] bf16
    pool.parallelFor(int64_t(weights.size()), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) weights[size_t(i)] = floatToBf16(float((i * 7919) % 2001 - 1000) * 1e-5f);
    });
    const auto copiesOf = [&](int64_t rows, int64_t cols) { return std::max<int64_t>(1, weightBytes / (rows * cols * 2)); };
    const auto view = [&](int64_t rows, int64_t cols, int64_t copy) {
        return WeightView{weights.data() + copy * rows * cols, DType::BF16, rows, cols};
    };

    // (c) decode matrix-vector products.
    std::vector<MatvecResult> matvec;
    for (int64_t n : {4096, 8192}) {
        const int64_t copies = copiesOf(n, n);
        std::vector<float> x(static_cast<size_t>(n), 0.01f), y(static_cast<size_t>(n)); // [1, n] each
        const double s = bestSeconds(reps, minSeconds, [&] {
            for (int64_t c = 0; c < copies; ++c) matmul(pool, x.data(), 1, view(n, n, c), y.data());
        });
        matvec.push_back({n, n, double(copies * n * n * 2) / s / 1e9});
    }

    // (d) matmul across token counts.
    std::vector<MatmulResult> matmuls;
    const int64_t K = 4096, R = 4096;
    const int64_t copies = copiesOf(R, K);
    for (int64_t T : {1, 4, 32, 128, 512}) {
        std::vector<float> x(size_t(T * K)), y(size_t(T * R)); // [T, K], [T, R]
        for (size_t i = 0; i < x.size(); ++i) x[i] = float(int(i % 17) - 8) * 0.01f;
        int64_t c = 0;
        const int64_t callsPerRep = T >= 32 ? 1 : copies;
        const double s = bestSeconds(reps, minSeconds, [&] {
            for (int64_t i = 0; i < callsPerRep; ++i, c = (c + 1) % copies) matmul(pool, x.data(), T, view(R, K, c), y.data());
        }) / double(callsPerRep);
        matmuls.push_back({T, 2.0 * double(T * K * R) / s / 1e9, double(R * K * 2) / s / 1e9});
    }

    // (e) parallelFor overhead: an almost empty body, as the smallest kernels of a decode step.
    std::vector<int64_t> touched(64); // [64]
    const int overheadCalls = opt.quick ? 2000 : 20000;
    const double pfSeconds = bestSeconds(reps, 0, [&] {
        for (int i = 0; i < overheadCalls; ++i)
            pool.parallelFor(64, [&](int64_t b, int64_t e) { for (int64_t j = b; j < e; ++j) ++touched[size_t(j)]; }, 8);
    });
    const double pfMicros = pfSeconds / overheadCalls * 1e6;

    std::printf("sage-bench-kernels: ISA %s (detected %s), %d thread%s%s\n", isaName(activeIsa()), isaName(detectedIsa()),
                opt.threads, opt.threads == 1 ? "" : "s", opt.quick ? ", quick" : "");
    std::printf("%-44s %10.1f GB/s\n", "(a) memory read bandwidth (sum over f32)", memGBps);
    std::printf("%-44s %10.1f GFLOP/s\n", "(b) FMA peak (register chains)", peakGflops);
    for (const MatvecResult& m : matvec) {
        char label[64];
        std::snprintf(label, sizeof label, "(c) bf16 matvec %lldx%lld", (long long)m.rows, (long long)m.cols);
        std::printf("%-44s %10.1f GB/s     %5.2f of (a)\n", label, m.gbps, m.gbps / memGBps);
    }
    for (const MatmulResult& m : matmuls) {
        char label[64];
        std::snprintf(label, sizeof label, "(d) bf16 matmul T=%lld K=R=4096", (long long)m.tokens);
        std::printf("%-44s %10.1f GFLOP/s  %5.2f of (b)   %7.1f GB/s weights  %5.2f of (a)\n", label, m.gflops,
                    m.gflops / peakGflops, m.gbps, m.gbps / memGBps);
    }
    std::printf("%-44s %10.2f us/call\n", "(e) parallelFor overhead", pfMicros);

    if (opt.json) {
        std::printf("{\"bench\":\"kernels\",\"isa\":\"%s\",\"threads\":%d,\"quick\":%s,\"mem_read_gbps\":%.2f,"
                    "\"fma_peak_gflops\":%.2f,\"matvec\":[",
                    isaName(activeIsa()), opt.threads, opt.quick ? "true" : "false", memGBps, peakGflops);
        for (size_t i = 0; i < matvec.size(); ++i)
            std::printf("%s{\"rows\":%lld,\"cols\":%lld,\"gbps\":%.2f,\"of_bandwidth\":%.3f}", i ? "," : "",
                        (long long)matvec[i].rows, (long long)matvec[i].cols, matvec[i].gbps, matvec[i].gbps / memGBps);
        std::printf("],\"matmul\":[");
        for (size_t i = 0; i < matmuls.size(); ++i)
            std::printf("%s{\"tokens\":%lld,\"k\":4096,\"r\":4096,\"gflops\":%.2f,\"of_peak\":%.3f,\"weight_gbps\":%.2f,"
                        "\"of_bandwidth\":%.3f}",
                        i ? "," : "", (long long)matmuls[i].tokens, matmuls[i].gflops, matmuls[i].gflops / peakGflops,
                        matmuls[i].gbps, matmuls[i].gbps / memGBps);
        std::printf("],\"parallel_for_us\":%.3f}\n", pfMicros);
    }
    return 0;
}
