// sage-bench-engine: end-to-end CPU engine throughput.
//  Part A: prefill and decode tokens/s of the engine and of the PyTorch reference (tools/reference) on the
//          same checkpoint, in the same run, as a ratio.
//  Part B: a ~1B-parameter BF16 random checkpoint generated here (not committed): decode weight bandwidth as a
//          fraction of the machine's measured memory read bandwidth, and prefill GFLOP/s as a fraction of the
//          measured FMA peak.
// Usage: sage-bench-engine [--threads N] [--model DIR] [--no-reference] [--skip-1b] [--workdir DIR] [--keep]
//                          [--prompt N] [--decode N] [--json]
#include "engine/cpu/Kernels.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/model/RandomCheckpoint.h"
#include "engine/model/Model.h"
#include "engine/runtime/InferenceSession.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

using namespace sage;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

double seconds(Clock::time_point a, Clock::time_point b)
{
    return std::chrono::duration<double>(b - a).count();
}

struct Throughput {
    double prefillTokensPerS = 0;
    double decodeTokensPerS = 0;
};

std::vector<int32_t> promptTokens(int64_t n, int64_t vocab)
{
    std::vector<int32_t> ids(static_cast<size_t>(n));
    uint64_t s = 12345;
    for (auto& t : ids) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        t = int32_t((s >> 33) % uint64_t(vocab));
    }
    ids[0] = 1;
    return ids;
}

// Best of `reps` runs: prefill of `prompt` tokens (last logits only, as generation does) and greedy decode
// of `decode` tokens, each token fed back one at a time.
Throughput measureEngine(const Model& m, cpu::ThreadPool& pool, int64_t prompt, int64_t decode, int reps)
{
    Throughput best;
    const auto ids = promptTokens(prompt, m.config().vocabSize);
    for (int r = 0; r < reps; ++r) {
        InferenceSession s(m, pool);
        std::vector<float> logits;
        auto t0 = Clock::now();
        s.forward(ids, false, logits);
        auto t1 = Clock::now();
        for (int64_t i = 0; i < decode; ++i) {
            const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
            s.forward(std::span<const int32_t>(&next, 1), false, logits);
        }
        auto t2 = Clock::now();
        best.prefillTokensPerS = std::max(best.prefillTokensPerS, double(prompt) / seconds(t0, t1));
        best.decodeTokensPerS = std::max(best.decodeTokensPerS, double(decode) / seconds(t1, t2));
    }
    return best;
}

std::optional<Throughput> measureReference(const fs::path& model, int threads, int64_t prompt, int64_t decode)
{
    const std::string cmd = "/usr/bin/python3 '" + std::string(SAGE_SOURCE_DIR) +
                            "/tools/reference/sage_ref.py' bench --model '" + model.string() +
                            "' --prompt-tokens " + std::to_string(prompt) + " --decode-tokens " +
                            std::to_string(decode) + " --threads " + std::to_string(threads) + " 2>/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return std::nullopt;
    std::string out;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    if (pclose(p) != 0) return std::nullopt;
    const auto j = nlohmann::json::parse(out, nullptr, false);
    if (j.is_discarded() || !j.contains("decode_tokens_per_s")) return std::nullopt;
    return Throughput{j["prefill_tokens_per_s"].get<double>(), j["decode_tokens_per_s"].get<double>()};
}

// Machine read bandwidth (GB/s): every thread sums its slice of a 1 GiB buffer; best of 5.
double measureReadBandwidth(cpu::ThreadPool& pool)
{
    const int64_t n = (int64_t(1) << 30) / 4;
    std::vector<float> buf(size_t(n), 1.0f); // [n] touched once so pages are resident
    const int T = pool.threadCount();
    std::vector<float> sink(static_cast<size_t>(T)); // [T] per-thread sums, kept so the reads are not optimised away
    double best = 0;
    for (int r = 0; r < 5; ++r) {
        auto t0 = Clock::now();
        pool.parallelFor(T, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) sink[size_t(i)] = cpu::sum(buf.data() + i * (n / T), n / T);
        });
        best = std::max(best, double(n / T * T) * 4 / seconds(t0, Clock::now()) / 1e9);
    }
    if (sink[0] == -1.0f) std::puts("");
    return best;
}

// FMA peak (GFLOP/s) of the active ISA on all threads at once.
double measureFmaPeak(cpu::ThreadPool& pool)
{
    double best = 0;
    for (int r = 0; r < 3; ++r) {
        std::vector<double> flops(size_t(pool.threadCount()), 0);
        auto t0 = Clock::now();
        pool.parallelFor(pool.threadCount(), [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) flops[size_t(i)] = cpu::fmaPeakProbe(20'000'000);
        });
        double total = 0;
        for (double f : flops) total += f;
        best = std::max(best, total / seconds(t0, Clock::now()) / 1e9);
    }
    return best;
}

nlohmann::json oneBillionConfig()
{
    // ~0.94B parameters: Llama-1B-like widths, loop_num 2 (weights read twice per token), dense SwiGLU.
    return {{"model_type", "sageloopcoder"},
            {"architectures", {"SAGELoopCoderForCausalLM"}},
            {"vocab_size", 32000},
            {"hidden_size", 2048},
            {"intermediate_size", 5632},
            {"num_hidden_layers", 18},
            {"num_attention_heads", 16},
            {"num_key_value_heads", 4},
            {"head_dim", 128},
            {"rms_norm_eps", 1e-5},
            {"rope_theta", 500000.0},
            {"max_position_embeddings", 4096},
            {"tie_word_embeddings", false},
            {"loop_num", 2},
            {"loop_window_size", 64},
            {"bos_token_id", 1},
            {"eos_token_id", 2},
            {"torch_dtype", "bfloat16"}};
}

nlohmann::json smallMoeConfig()
{
    // The shape the reference benchmark uses: big enough that the reference is not only Python overhead.
    return {{"model_type", "sageloopcoder"},
            {"architectures", {"SAGELoopCoderForCausalLM"}},
            {"vocab_size", 8192},
            {"hidden_size", 512},
            {"intermediate_size", 1408},
            {"num_hidden_layers", 8},
            {"num_attention_heads", 8},
            {"num_key_value_heads", 2},
            {"head_dim", 64},
            {"rms_norm_eps", 1e-5},
            {"rope_theta", 10000.0},
            {"max_position_embeddings", 2048},
            {"loop_num", 2},
            {"loop_window_size", 64},
            {"num_experts", 8},
            {"num_experts_per_tok", 2},
            {"moe_intermediate_size", 512},
            {"bos_token_id", 1},
            {"eos_token_id", 2},
            {"torch_dtype", "bfloat16"}};
}

std::string argValue(int argc, char** argv, const char* name, const std::string& def)
{
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
    return def;
}

bool hasFlag(int argc, char** argv, const char* name)
{
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], name) == 0) return true;
    return false;
}

} // namespace

int main(int argc, char** argv)
{
    const int threads = std::stoi(argValue(argc, argv, "--threads", "2"));
    const int64_t prompt = std::stoll(argValue(argc, argv, "--prompt", "128"));
    const int64_t decode = std::stoll(argValue(argc, argv, "--decode", "64"));
    const fs::path workdir = argValue(argc, argv, "--workdir", (fs::temp_directory_path() / "sage-bench").string());
    cpu::ThreadPool pool(threads);
    nlohmann::json report;
    report["threads"] = threads;
    report["isa"] = cpu::isaName(cpu::activeIsa());
    std::printf("sage-bench-engine: %d thread(s), %s kernels\n\n", threads, cpu::isaName(cpu::activeIsa()));

    try {
        // Part A: engine vs reference on the same checkpoint.
        fs::path modelA = argValue(argc, argv, "--model", "");
        if (modelA.empty()) {
            modelA = workdir / "small-moe-bf16";
            if (!fs::exists(modelA / "model.safetensors"))
                writeRandomCheckpoint(modelA, smallMoeConfig(), DType::BF16, 1);
        }
        auto m = Model::load(modelA);
        const Throughput eng = measureEngine(*m, pool, prompt, decode, 3);
        std::printf("A. %s (%.1f M parameters, %s)\n", modelA.filename().string().c_str(),
                    double(m->config().parameterCount()) / 1e6, m->weightDtypeSummary().c_str());
        std::printf("   engine     prefill %9.1f tok/s   decode %8.1f tok/s\n", eng.prefillTokensPerS,
                    eng.decodeTokensPerS);
        report["a"] = {{"model", modelA.filename().string()},
                       {"engine_prefill_tok_s", eng.prefillTokensPerS},
                       {"engine_decode_tok_s", eng.decodeTokensPerS}};
        if (!hasFlag(argc, argv, "--no-reference")) {
            if (auto ref = measureReference(modelA, threads, prompt, decode)) {
                std::printf("   reference  prefill %9.1f tok/s   decode %8.1f tok/s\n", ref->prefillTokensPerS,
                            ref->decodeTokensPerS);
                std::printf("   ratio      prefill %9.2fx        decode %8.2fx   (goal: decode >= 10x)\n",
                            eng.prefillTokensPerS / ref->prefillTokensPerS, eng.decodeTokensPerS / ref->decodeTokensPerS);
                report["a"]["reference_prefill_tok_s"] = ref->prefillTokensPerS;
                report["a"]["reference_decode_tok_s"] = ref->decodeTokensPerS;
                report["a"]["prefill_ratio"] = eng.prefillTokensPerS / ref->prefillTokensPerS;
                report["a"]["decode_ratio"] = eng.decodeTokensPerS / ref->decodeTokensPerS;
            } else {
                std::printf("   reference  not run (python3 with torch missing or it failed)\n");
            }
        }
        m.reset();

        // Part B: ~1B BF16 checkpoint against the machine's peaks.
        if (!hasFlag(argc, argv, "--skip-1b")) {
            const double bw = measureReadBandwidth(pool);
            const double peak = measureFmaPeak(pool);
            std::printf("\nMachine: read bandwidth %.1f GB/s, FMA peak %.1f GFLOP/s (%d threads)\n", bw, peak, threads);
            const fs::path dirB = workdir / "random-1b-bf16";
            if (!fs::exists(dirB / "model.safetensors")) {
                std::printf("Writing %s ...\n", dirB.string().c_str());
                std::fflush(stdout);
                writeRandomCheckpoint(dirB, oneBillionConfig(), DType::BF16, 2);
            }
            auto big = Model::load(dirB);
            const ModelConfig& c = big->config();
            // Bytes of weights read per decoded token: every layer once per loop, the head once.
            double layerBytes = 0;
            for (const TensorSpec& t : c.tensorSpecs())
                if (t.name.rfind("model.layers.", 0) == 0 || t.name.rfind("model.gate_projections.", 0) == 0) {
                    double e = 2;
                    for (int64_t d : t.shape) e *= double(d);
                    layerBytes += e;
                }
            const double headBytes = double(c.vocabSize) * double(c.hiddenSize) * 2;
            const double bytesPerToken = double(c.loopNum) * layerBytes + headBytes;
            // Matrix FLOPs per prefill token (2 per multiply-add), attention excluded (small at 256 tokens).
            const double flopsPerToken = 2.0 * (double(c.loopNum) * layerBytes / 2);
            const int64_t bigPrompt = 256;
            const Throughput t = measureEngine(*big, pool, bigPrompt, 16, 2);
            const double gbs = t.decodeTokensPerS * bytesPerToken / 1e9;
            const double gflops = t.prefillTokensPerS * flopsPerToken / 1e9;
            std::printf("B. random 1B BF16 (%.2f B parameters, %.2f GB of weights read per token)\n",
                        double(c.parameterCount()) / 1e9, bytesPerToken / 1e9);
            std::printf("   decode  %6.2f tok/s = %6.1f GB/s = %5.1f%% of read bandwidth (goal >= 60%%)\n",
                        t.decodeTokensPerS, gbs, 100 * gbs / bw);
            std::printf("   prefill %6.1f tok/s = %6.1f GFLOP/s = %5.1f%% of FMA peak (goal >= 40%%), %lld-token prompt\n",
                        t.prefillTokensPerS, gflops, 100 * gflops / peak, (long long)bigPrompt);
            report["machine"] = {{"read_bandwidth_gb_s", bw}, {"fma_peak_gflop_s", peak}};
            report["b"] = {{"parameters", c.parameterCount()},
                           {"decode_tok_s", t.decodeTokensPerS},
                           {"decode_gb_s", gbs},
                           {"decode_bandwidth_fraction", gbs / bw},
                           {"prefill_tok_s", t.prefillTokensPerS},
                           {"prefill_gflop_s", gflops},
                           {"prefill_peak_fraction", gflops / peak}};
            if (!hasFlag(argc, argv, "--keep")) fs::remove_all(dirB);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sage-bench-engine: %s\n", e.what());
        return 1;
    }
    if (hasFlag(argc, argv, "--json")) std::cout << report.dump() << "\n";
    return 0;
}
