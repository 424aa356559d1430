// sage-bench-loadcheck: the cost of Model::load's NaN/Inf weight scan (LoadOptions::checkWeights), on the
// bundled model and on a random BF16 checkpoint of about 1 GB (written to --workdir, not committed), with the
// page cache warm (each load is repeated; the first, cold one is not counted). Reports the load time without
// the scan, load + touching every page (the peer: what the first forward pass pays for a fresh mapping),
// load with the scan, its ratio to the peer, and the scan alone (pages already mapped) at 1 and --threads.
// Usage: sage-bench-loadcheck [--threads N] [--reps N] [--workdir DIR] [--keep]
#include "engine/model/RandomCheckpoint.h"

#include "engine/cpu/ThreadPool.h"
#include "engine/io/TensorStore.h"
#include "engine/model/Model.h"
#include "engine/model/WeightScan.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

using namespace sage;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

template <typename F> double bestSeconds(int reps, F&& f)
{
    f(); // warm the page cache and the allocator; not counted
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        f();
        best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
    }
    return best;
}

void measure(const char* label, const fs::path& dir, int threads, int reps)
{
    LoadOptions off;
    off.checkWeights = false;
    off.checkMemory = false;
    LoadOptions on = off;
    on.checkWeights = true;
    on.threads = threads;
    const double tOff = bestSeconds(reps, [&] { Model::load(dir, off); });
    const double tOn = bestSeconds(reps, [&] { Model::load(dir, on); });
    // The first forward pass faults every page of the fresh mapping in; this peer does only that (one byte
    // per 4 KB page), so load+scan minus load+touch is what the scan adds to a model that is then used.
    const double tTouch = bestSeconds(reps, [&] {
        const auto m = Model::load(dir, off);
        uint64_t sum = 0;
        for (const auto& f : m->tensors().files())
            for (uint64_t i = 0; i < f->fileSize(); i += 4096) sum += f->mappedData()[i];
        volatile uint64_t sink = sum;
        (void)sink;
    });
    const auto store = TensorStore::openFolder(dir);
    const double gb = double(store->totalBytes()) / 1e9;
    cpu::ThreadPool one(1), many(threads);
    const double scan1 = bestSeconds(reps, [&] { findNonFiniteWeight(*store, one); });
    const double scanN = bestSeconds(reps, [&] { findNonFiniteWeight(*store, many); });
    std::printf("%-22s %6.3f GB  load %7.1f ms  load+touch %7.1f ms  load+scan %7.1f ms (%4.2fx load+touch)  "
                "scan alone: 1 thread %6.1f ms (%4.1f GB/s), %d threads %6.1f ms (%4.1f GB/s)\n",
                label, gb, tOff * 1e3, tTouch * 1e3, tOn * 1e3, tOn / tTouch, scan1 * 1e3, gb / scan1,
                many.threadCount(), scanN * 1e3, gb / scanN);
}

} // namespace

int main(int argc, char** argv)
{
    int threads = int(std::thread::hardware_concurrency());
    int reps = 3;
    fs::path workdir = fs::temp_directory_path() / "sage-bench-loadcheck";
    bool keep = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--threads" && i + 1 < argc)
            threads = std::stoi(argv[++i]);
        else if (a == "--reps" && i + 1 < argc)
            reps = std::stoi(argv[++i]);
        else if (a == "--workdir" && i + 1 < argc)
            workdir = argv[++i];
        else if (a == "--keep")
            keep = true;
        else {
            std::fprintf(stderr, "usage: sage-bench-loadcheck [--threads N] [--reps N] [--workdir DIR] [--keep]\n");
            return 2;
        }
    }
    measure("bundled (sage-mini)", fs::path(SAGE_SOURCE_DIR) / "resources/models/sage-mini-coder", threads, reps);

    const fs::path big = workdir / "random-1gb";
    if (!fs::exists(big / "model.safetensors")) {
        const nlohmann::json config = {{"model_type", "sageloopcoder"}, {"vocab_size", 32000},
                                       {"hidden_size", 2048},           {"intermediate_size", 5632},
                                       {"num_hidden_layers", 8},        {"num_attention_heads", 16},
                                       {"num_key_value_heads", 4},      {"loop_num", 2},
                                       {"loop_window_size", 64},        {"max_position_embeddings", 4096}};
        writeRandomCheckpoint(big, config, DType::BF16, 7);
    }
    measure("random BF16 (~1 GB)", big, threads, reps);
    if (!keep) fs::remove_all(workdir);
    return 0;
}
