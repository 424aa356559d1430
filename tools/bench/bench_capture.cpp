// sage-bench-capture: decode tokens/s with capture off against each capture preset, at several context
// lengths, on a random checkpoint of the bundled model's shape (written here, not committed) or on --model DIR.
// The session is prefilled once per context with capture off; every configuration then decodes the same
// greedy continuation from a copy of that session. --reps rounds run every configuration once each, each round
// starting at a different configuration. Reported against capture off: the best time of each configuration
// against the best off time, and the median (and range) of the per-round ratios, which pair runs made seconds
// apart and so resist slow phases of a shared machine better. The first decoded token of each run is not timed
// (a recorder's one-time setup); held lens steps are flushed inside the timed part. "off-again" repeats "off"
// to show the noise floor.
// Configurations: off (no hook), ask-nothing (a hook that answers every question with "no"), summary,
// standard, full (full only up to --full-max-context, since it keeps O(T^2) rows).
// Usage: sage-bench-capture [--model DIR] [--threads N] [--contexts 256,1024,4096] [--decode N] [--reps N]
//                           [--full-max-context N] [--workdir DIR] [--json] [--by-kind] [--configs a,b]
//                           [--turns N] [--hook-timing] [--list-runs] [--lens-hold-steps N] [--sampler]
//        sage-bench-capture --estimate   (bytes per token of each preset for the bundled and the 40B shape)
// --configs runs only the named configurations besides "off" (e.g. --configs standard for a profile);
// "<preset>@head" (only through --configs) is the preset with its lens rows computed in the output head's
// matrix-vector pass (TraceRecorder's WithHead mode) whatever the model's size; "<preset>@batched" the same
// with the lens computed in batches (Batched mode).
// --by-kind adds one configuration per capture kind ("k:attention", "k:gates", ...: the standard preset
// reduced to that kind), and "k:attention-topk", the attention summaries without any full rows.
// --sampler chooses each next token as generate() does (Sampler::sample with greedy settings, sage-cli's
// default, its summary handed to the recorder as captureGenerate does) instead of by argmax, so that the
// decode timed is the product's generation loop.
// --list-runs prints each timed run on stderr as it starts (to match callgrind's dumps, above main).
// --turns N keeps every configuration's session live at once and lets them take turns of N decoded tokens
// (rotating who goes first), summing each one's time over its turns: on a shared machine whose speed changes
// over tens of milliseconds this pairs the configurations far more closely than one run after another (the
// caches are then shared by all sessions, as on a machine running more than one thing). Its turns are not
// marked for callgrind and not listed by --list-runs: use one run after another (no --turns) for those.
// --hook-timing times every method of each recorder inside the decode (TimingHook, below) and prints, per
// configuration, the time per token spent in the recorder and its share of that configuration's own decode time.
// The session's own capture work (the lens row in the head's product, copies of kept rows) is not in it.
// --lens-hold-steps N makes a recorder that batches its lens hold N steps whatever the time per step (under
// callgrind every step is slow and would otherwise not be held).
#include "engine/model/RandomCheckpoint.h"

#include "engine/capture/CaptureHook.h"
#include "engine/capture/CapturePolicy.h"
#include "engine/capture/Trace.h"
#include "engine/capture/TraceRecorder.h"
#include "engine/core/Allocator.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/model/Model.h"
#include "engine/runtime/InferenceSession.h"
#include "engine/runtime/Sampler.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

using namespace sage;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// Markers around each timed decode, for counting instructions instead of time on a noisy machine:
//   valgrind --tool=callgrind --zero-before=sage_bench_decode_begin --dump-before=sage_bench_decode_end ...
// writes one profile per timed run (in the order --list-runs prints them), whose total is the instructions of
// exactly that run's decode loop and final flush.
extern "C" __attribute__((noinline)) void sage_bench_decode_begin(const char* config)
{
    asm volatile("" : : "r"(config) : "memory");
}
extern "C" __attribute__((noinline)) void sage_bench_decode_end(const char* config)
{
    asm volatile("" : : "r"(config) : "memory");
}

namespace {

// Asks, and is told nothing is wanted: the cost of the hook protocol itself.
class NullHook : public CaptureHook
{
public:
    uint32_t beginForward(int64_t, std::span<const int32_t>, int64_t) override { return 0; }
    void endForward(bool) override {}
    uint32_t askLayer(int64_t, int64_t) override { return 0; }
    uint32_t askHead(int64_t, int64_t, int64_t) override { return 0; }
    void observeAttention(int64_t, int64_t, int64_t, AttentionStream, int64_t, const float*, const float*, int64_t,
                          int64_t) override
    {
    }
    void observeStreams(int64_t, int64_t, int64_t, int64_t, const float*, const float*, float) override {}
    void observeGates(int64_t, int64_t, const float*) override {}
    void observeRouter(int64_t, int64_t, const float*, const int32_t*, const float*) override {}
    void observeResidual(int64_t, int64_t, const float*) override {}
    void observeLens(int64_t, int64_t, int64_t, int64_t, const float*, const float*) override {}
    void observeLensInput(int64_t, int64_t, const float*) override {}
    void observeLogits(const float*) override {}
};

// --hook-timing: forwards every call to the recorder and adds up the time spent in each method, read with the
// processor's time-stamp counter where there is one (a few nanoseconds per reading, so the measured time includes
// about one reading per call). The time inside the hook is measured in the same run as the decode it is part of,
// so its share of the decode does not depend on how fast the machine happens to be at the moment.
class TimingHook : public CaptureHook
{
public:
    enum Method {
        BeginForward,
        EndForward,
        AskLayer,
        AskHead,
        ObserveAttention,
        ObserveStreams,
        ObserveGates,
        ObserveRouter,
        ObserveResidual,
        ObserveLens,
        ObserveLensInput,
        ObserveLogits,
        kMethods
    };
    static constexpr const char* kNames[kMethods] = {
        "beginForward", "endForward",    "askLayer",        "askHead",     "observeAttention", "observeStreams",
        "observeGates", "observeRouter", "observeResidual", "observeLens", "observeLensInput", "observeLogits"};

    explicit TimingHook(CaptureHook& inner) : m_inner(inner) {}
    // Ticks and calls per method so far (ticks: ticksPerSecond() of them make a second).
    uint64_t ticks(int m) const { return m_ticks[m].load(std::memory_order_relaxed); }
    uint64_t calls(int m) const { return m_calls[m].load(std::memory_order_relaxed); }

    static uint64_t now()
    {
#if defined(__x86_64__) || defined(__i386__)
        return __rdtsc();
#else
        return uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
#endif
    }
    // Ticks that one timed call of an empty method reads inside its own window (two counter readings and two
    // virtual calls), measured once: the minimum mean over 20 batches of 20000 calls to a hook that does nothing.
    // The report subtracts it per call, so that methods called often (96 attention rows a token) are not
    // charged for the measurement itself.
    static double emptyCallTicks();
    // The counter's rate, measured once against the steady clock over 50 ms.
    static double ticksPerSecond()
    {
        static const double rate = [] {
            const auto t0 = Clock::now();
            const uint64_t c0 = now();
            while (Clock::now() - t0 < std::chrono::milliseconds(50)) {
            }
            const uint64_t c1 = now();
            return double(c1 - c0) / std::chrono::duration<double>(Clock::now() - t0).count();
        }();
        return rate;
    }

    uint32_t beginForward(int64_t p0, std::span<const int32_t> tokens, int64_t loops) override
    {
        Timed t(*this, BeginForward);
        return m_inner.beginForward(p0, tokens, loops);
    }
    void endForward(bool ok) override
    {
        Timed t(*this, EndForward);
        m_inner.endForward(ok);
    }
    uint32_t askLayer(int64_t loop, int64_t layer) override
    {
        Timed t(*this, AskLayer);
        return m_inner.askLayer(loop, layer);
    }
    uint32_t askHead(int64_t loop, int64_t layer, int64_t head) override
    {
        Timed t(*this, AskHead);
        return m_inner.askHead(loop, layer, head);
    }
    void observeAttention(int64_t loop, int64_t layer, int64_t head, AttentionStream stream, int64_t i,
                          const float* probs, const float* scores, int64_t firstKey, int64_t count) override
    {
        Timed t(*this, ObserveAttention);
        m_inner.observeAttention(loop, layer, head, stream, i, probs, scores, firstKey, count);
    }
    void observeStreams(int64_t loop, int64_t layer, int64_t head, int64_t i, const float* a, const float* b,
                        float g) override
    {
        Timed t(*this, ObserveStreams);
        m_inner.observeStreams(loop, layer, head, i, a, b, g);
    }
    void observeGates(int64_t loop, int64_t layer, const float* gates) override
    {
        Timed t(*this, ObserveGates);
        m_inner.observeGates(loop, layer, gates);
    }
    void observeRouter(int64_t loop, int64_t layer, const float* probs, const int32_t* experts,
                       const float* weights) override
    {
        Timed t(*this, ObserveRouter);
        m_inner.observeRouter(loop, layer, probs, experts, weights);
    }
    void observeResidual(int64_t loop, int64_t layer, const float* hidden) override
    {
        Timed t(*this, ObserveResidual);
        m_inner.observeResidual(loop, layer, hidden);
    }
    void observeLens(int64_t loop, int64_t layer, int64_t i0, int64_t rows, const float* lens,
                     const float* final) override
    {
        Timed t(*this, ObserveLens);
        m_inner.observeLens(loop, layer, i0, rows, lens, final);
    }
    void observeLensInput(int64_t loop, int64_t layer, const float* hidden) override
    {
        Timed t(*this, ObserveLensInput);
        m_inner.observeLensInput(loop, layer, hidden);
    }
    void observeLogits(const float* logits) override
    {
        Timed t(*this, ObserveLogits);
        m_inner.observeLogits(logits);
    }

private:
    struct Timed {
        TimingHook& h;
        int m;
        uint64_t t0 = now();
        ~Timed()
        {
            h.m_ticks[m].fetch_add(now() - t0, std::memory_order_relaxed);
            h.m_calls[m].fetch_add(1, std::memory_order_relaxed);
        }
    };
    CaptureHook& m_inner;
    std::array<std::atomic<uint64_t>, kMethods> m_ticks{}, m_calls{};
};

double TimingHook::emptyCallTicks()
{
    static const double ticks = [] {
        NullHook null;
        TimingHook timed(null);
        CaptureHook* hook = &timed; // through the base, as the session calls it
        double best = 1e30;
        for (int batch = 0; batch < 20; ++batch) {
            const uint64_t t0 = timed.ticks(AskHead);
            constexpr int kCalls = 20000;
            for (int c = 0; c < kCalls; ++c) hook->askHead(1, 0, c & 7);
            best = std::min(best, double(timed.ticks(AskHead) - t0) / kCalls);
        }
        return best;
    }();
    return ticks;
}

nlohmann::json bundledShape()
{
    // The bundled model's shape (resources/models/sage-mini-coder/config.json): vocab 4096, hidden 256, 4 layers,
    // 8 heads on 4 KV heads, loop 2 with window 16, 4 experts top-2, four designated heads in layer 0. Only the
    // position limit is raised (the shipped model has 2048) so that 4k contexts can be measured.
    return {{"model_type", "sageloopcoder"},
            {"architectures", {"SAGELoopCoderForCausalLM"}},
            {"vocab_size", 4096},
            {"hidden_size", 256},
            {"intermediate_size", 384},
            {"num_hidden_layers", 4},
            {"num_attention_heads", 8},
            {"num_key_value_heads", 4},
            {"head_dim", 32},
            {"rms_norm_eps", 1e-5},
            {"rope_theta", 10000.0},
            {"max_position_embeddings", 8192},
            {"tie_word_embeddings", false},
            {"loop_num", 2},
            {"loop_window_size", 16},
            {"num_experts", 4},
            {"num_experts_per_tok", 2},
            {"moe_intermediate_size", 384},
            {"mch_heads", {{0, 2}, {0, 3}, {0, 4}, {0, 7}}},
            {"bos_token_id", 1},
            {"eos_token_id", 2}};
}

nlohmann::json shape40b()
{
    // SAGE-OSS-40B (design MODEL.md): dense, 80 layers, 40 heads on 8 KV heads, loop 2, window 64.
    return {{"model_type", "sageloopcoder"},
            {"vocab_size", 76800},
            {"hidden_size", 5120},
            {"intermediate_size", 27648},
            {"num_hidden_layers", 80},
            {"num_attention_heads", 40},
            {"num_key_value_heads", 8},
            {"head_dim", 128},
            {"rms_norm_eps", 1e-5},
            {"rope_theta", 500000.0},
            {"max_position_embeddings", 131072},
            {"loop_num", 2},
            {"loop_window_size", 64}};
}

void printEstimates()
{
    std::printf("| shape | preset | context | bytes/token | trace total | KV cache (f32) | trace / KV |\n");
    std::printf("|---|---|---|---|---|---|---|\n");
    for (const auto& [label, j] : {std::pair{"bundled", bundledShape()}, std::pair{"40B", shape40b()}}) {
        const ModelConfig c = ModelConfig::fromJson(j, label);
        for (const char* preset : {"summary", "standard", "full"})
            for (int64_t ctx : {1024, 4096}) {
                const CaptureEstimate e = CapturePolicy::fromName(preset, c).estimate(c, ctx);
                std::printf("| %s | %s | %lld | %llu | %.1f MiB | %.1f MiB | %.2fx |\n", label, preset, (long long)ctx,
                            (unsigned long long)e.bytesPerToken, double(e.totalBytes) / 1048576.0,
                            double(e.kvCacheBytes) / 1048576.0, double(e.totalBytes) / double(e.kvCacheBytes));
            }
    }
}

std::vector<int32_t> promptTokens(int64_t n, int64_t vocab)
{
    std::vector<int32_t> ids(static_cast<size_t>(n));
    uint64_t s = 12345;
    for (auto& t : ids) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        t = int32_t((s >> 33) % uint64_t(vocab));
    }
    return ids;
}

// CPU time of the whole process (all pool threads): unlike wall time it does not count the time the process
// waits while other processes run, which dominates the noise on a shared machine.
double processCpuSeconds()
{
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

int32_t argmax(const std::vector<float>& v)
{
    return int32_t(std::max_element(v.begin(), v.end()) - v.begin());
}

} // namespace

int run(int argc, char** argv);

int main(int argc, char** argv)
{
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sage-bench-capture: %s\n", e.what());
        return 1;
    }
}

int run(int argc, char** argv)
{
    std::string modelArg, workdir = (fs::temp_directory_path() / "sage-bench-capture").string();
    int threads = 0, decode = 32, reps = 3;
    int64_t fullMax = 1024;
    std::vector<int64_t> contexts = {256, 1024, 4096};
    bool json = false, byKind = false, listRuns = false;
    bool hookTiming = false;       // --hook-timing: time the recorder's methods inside the decode
    int turns = 0;                 // --turns N: configurations take turns of N tokens (0: one run each)
    bool sampler = false;          // --sampler: choose tokens as generate() does (Sampler::sample), not by argmax
    int64_t lensHoldSteps = 0;     // --lens-hold-steps: hold this many steps whatever the timing (callgrind runs)
    std::vector<std::string> only; // --configs: run just these (and "off", the reference)
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--model")
            modelArg = next();
        else if (a == "--threads")
            threads = std::stoi(next());
        else if (a == "--decode")
            decode = std::stoi(next());
        else if (a == "--reps")
            reps = std::stoi(next());
        else if (a == "--full-max-context")
            fullMax = std::stoll(next());
        else if (a == "--workdir")
            workdir = next();
        else if (a == "--json")
            json = true;
        else if (a == "--by-kind")
            byKind = true;
        else if (a == "--list-runs")
            listRuns = true;
        else if (a == "--hook-timing")
            hookTiming = true;
        else if (a == "--sampler")
            sampler = true;
        else if (a == "--turns")
            turns = std::stoi(next());
        else if (a == "--lens-hold-steps")
            lensHoldSteps = std::stoll(next());
        else if (a == "--configs") {
            std::stringstream ss(next());
            std::string item;
            while (std::getline(ss, item, ',')) only.push_back(item);
        } else if (a == "--estimate") {
            printEstimates();
            return 0;
        } else if (a == "--contexts") {
            contexts.clear();
            std::stringstream ss(next());
            std::string item;
            while (std::getline(ss, item, ',')) contexts.push_back(std::stoll(item));
        } else {
            std::fprintf(stderr, "unknown option %s\n", a.c_str());
            return 2;
        }
    }
    fs::path modelDir = modelArg;
    if (modelArg.empty()) {
        modelDir = fs::path(workdir) / "bundled-shape";
        if (!fs::exists(modelDir / "model.safetensors"))
            writeRandomCheckpoint(modelDir, bundledShape(), DType::BF16, 7);
    }
    auto model = Model::load(modelDir);
    const ModelConfig& c = model->config();
    // Each run decodes an untimed token and `decode` timed ones after the context: fail now, not after a prefill.
    for (int64_t ctx : contexts)
        if (ctx + 1 + decode > c.maxPositionEmbeddings)
            throw std::runtime_error("context " + std::to_string(ctx) + " plus " + std::to_string(decode + 1) +
                                     " decoded tokens exceeds the model's context of " +
                                     std::to_string(c.maxPositionEmbeddings) + " (max_position_embeddings in " +
                                     (modelDir / "config.json").string() + "); lower --contexts or --decode");
    cpu::ThreadPool pool(threads);
    std::fprintf(stderr, "allocator: %s\n", allocatorDescription().c_str());
    std::fprintf(stderr, "model %s: %lld layers, %lld heads, loop %lld, vocab %lld; %d threads\n",
                 modelDir.string().c_str(), (long long)c.numHiddenLayers, (long long)c.numAttentionHeads,
                 (long long)c.loopNum, (long long)c.vocabSize, pool.threadCount());

    std::vector<std::string> configs = {"off", "ask-nothing", "summary", "standard", "full", "off-again"};
    // --by-kind: the standard preset restricted to one capture kind at a time, to attribute its cost.
    const std::vector<std::pair<std::string, uint32_t>> kindConfigs = {
        {"k:attention", CaptureKind::Attention},   {"k:gates", CaptureKind::Gates},
        {"k:streams", CaptureKind::StreamStats},   {"k:router-p", CaptureKind::RouterProbs},
        {"k:router-c", CaptureKind::RouterChoice}, {"k:residual", CaptureKind::Residual},
        {"k:lens", CaptureKind::LogitLens},        {"k:attention-topk", CaptureKind::Attention}};
    if (byKind)
        for (const auto& kc : kindConfigs) configs.insert(configs.end() - 1, kc.first);
    if (!only.empty()) {
        std::erase_if(configs, [&](const std::string& name) {
            return name != "off" && std::find(only.begin(), only.end(), name) == only.end();
        });
        // Named variants outside the default list ("standard@head", "k:lens" without --by-kind), before a second
        // capture-off run.
        const auto tail = std::find(configs.begin(), configs.end(), std::string("off-again"));
        const ptrdiff_t at = tail - configs.begin();
        for (const std::string& name : only)
            if (std::find(configs.begin(), configs.end(), name) == configs.end() &&
                (name.find('@') != std::string::npos || name.rfind("k:", 0) == 0))
                configs.insert(configs.begin() + at, name);
    }
    nlohmann::json results = nlohmann::json::array();
    for (int64_t ctx : contexts) {
        InferenceSession base(*model, pool);
        std::vector<float> logits;
        const auto ids = promptTokens(ctx, c.vocabSize);
        const auto p0 = Clock::now();
        base.forward(ids, false, logits);
        const double prefillS = std::chrono::duration<double>(Clock::now() - p0).count();
        const int32_t first = argmax(logits);

        std::vector<double> best(configs.size(), 1e30), bestCpu(configs.size(), 1e30);
        // --hook-timing: per configuration, the hook's ticks and calls per method over all rounds, and the
        // decode time of those rounds.
        std::vector<std::array<uint64_t, TimingHook::kMethods>> hookTicks(configs.size()), hookCalls(configs.size());
        std::vector<double> hookDecodeSec(configs.size(), 0.0);
        std::vector<std::vector<double>> times(configs.size()); // [config][round] seconds
        std::vector<uint64_t> traceBytes(configs.size(), 0);
        std::vector<std::string> lensModes(configs.size(), "-"); // the recorder's lens mode in effect
        // One configuration's decode from a copy of the prefilled session.
        struct Run {
            size_t k = 0;
            std::unique_ptr<InferenceSession> s;
            Trace trace;
            NullHook nullHook;
            std::unique_ptr<TraceRecorder> rec;
            std::unique_ptr<TimingHook> timing;              // --hook-timing
            Sampler sampler{SamplingParams{}};               // --sampler: greedy (sage-cli's default)
            std::array<uint64_t, TimingHook::kMethods> t0{}; // its counts after the untimed first token
            std::array<uint64_t, TimingHook::kMethods> c0{};
            int32_t tok = 0;
            std::vector<float> out;
            double sec = 0, cpuSec = 0;
        };
        const auto start = [&](Run& run, size_t k) {
            const std::string& name = configs[k];
            run.k = k;
            run.s = std::make_unique<InferenceSession>(base); // same caches, capture off until installed below
            run.trace.setOrigin(ctx);
            if (name == "ask-nothing")
                run.s->setCaptureHook(&run.nullHook);
            else if (name.rfind("k:", 0) == 0) {
                CapturePolicy p = CapturePolicy::fromName("standard", c);
                for (const auto& kc : kindConfigs)
                    if (kc.first == name) p.setKinds(kc.second);
                if (name == "k:attention-topk") p.setFullHeads({}); // the summaries alone, no full rows
                run.rec = std::make_unique<TraceRecorder>(*model, p, run.trace, &pool);
            } else if (name != "off" && name != "off-again") {
                // "<preset>@head" / "<preset>@batched": the preset with its lens in the head's pass / in batches.
                const size_t at = std::min(name.find("@head"), name.find("@batched"));
                run.rec = std::make_unique<TraceRecorder>(*model, CapturePolicy::fromName(name.substr(0, at), c),
                                                          run.trace, &pool);
                if (name.find("@head") != std::string::npos)
                    run.rec->setLensBatching({.mode = TraceRecorder::LensBatching::Mode::WithHead});
                if (name.find("@batched") != std::string::npos)
                    run.rec->setLensBatching({.mode = TraceRecorder::LensBatching::Mode::Batched});
            }
            if (run.rec) {
                if (hookTiming) {
                    run.timing = std::make_unique<TimingHook>(*run.rec);
                    run.s->setCaptureHook(run.timing.get());
                } else {
                    run.s->setCaptureHook(run.rec.get());
                }
                if (lensHoldSteps > 0 && name.find("@head") == std::string::npos)
                    run.rec->setLensBatching({.maxSteps = lensHoldSteps,
                                              .maxHold = std::chrono::hours(1),
                                              .slowCall = std::chrono::hours(1)});
            }
            if (run.rec) lensModes[k] = run.rec->batchesLens() ? "batched" : "with-head";
            // One untimed token and its lens: one-time costs of a recorder (o_proj Gram matrices, the packed
            // output head of a batched lens, first allocations).
            run.tok = first;
            run.s->forward(std::span<const int32_t>(&run.tok, 1), false, run.out);
            run.tok = argmax(run.out);
            if (run.rec) run.rec->flush();
            if (run.timing)
                for (int m = 0; m < TimingHook::kMethods; ++m) {
                    run.t0[size_t(m)] = run.timing->ticks(m);
                    run.c0[size_t(m)] = run.timing->calls(m);
                }
        };
        // Decodes `tokens` timed tokens (and with `last`, flushes the steps still held for their batched lens,
        // which count too).
        const auto decodeTimed = [&](Run& run, int tokens, bool last) {
            const auto t0 = Clock::now();
            const double c0 = processCpuSeconds();
            for (int d = 0; d < tokens; ++d) {
                run.s->forward(std::span<const int32_t>(&run.tok, 1), false, run.out);
                if (sampler) {
                    // As generate() and captureGenerate() do: the choice with its summary, handed to the recorder.
                    const TokenChoice choice = run.sampler.sample(run.out, run.s->tokens(), 5);
                    run.tok = choice.token;
                    if (run.rec) run.rec->setNextChoice(choice);
                } else {
                    run.tok = argmax(run.out);
                }
            }
            if (last && run.rec) run.rec->flush();
            run.sec += std::chrono::duration<double>(Clock::now() - t0).count();
            run.cpuSec += processCpuSeconds() - c0;
        };
        const auto finish = [&](Run& run) {
            best[run.k] = std::min(best[run.k], run.sec);
            times[run.k].push_back(run.sec);
            bestCpu[run.k] = std::min(bestCpu[run.k], run.cpuSec);
            traceBytes[run.k] = run.trace.bytes() * uint64_t(decode) / uint64_t(decode + 1);
            if (run.timing) {
                for (int m = 0; m < TimingHook::kMethods; ++m) {
                    hookTicks[run.k][size_t(m)] += run.timing->ticks(m) - run.t0[size_t(m)];
                    hookCalls[run.k][size_t(m)] += run.timing->calls(m) - run.c0[size_t(m)];
                }
                hookDecodeSec[run.k] += run.sec;
            }
        };
        for (int r = 0; r < reps; ++r) {
            // Each round starts at a different configuration, so that no configuration always follows the same
            // neighbour.
            std::vector<size_t> order;
            for (size_t step = 0; step < configs.size(); ++step) {
                const size_t k = (step + size_t(r)) % configs.size();
                if (!(configs[k] == "full" && ctx > fullMax)) order.push_back(k);
            }
            if (turns <= 0) {
                // Every configuration decodes all its tokens in one go.
                for (size_t k : order) {
                    Run run;
                    start(run, k);
                    if (listRuns)
                        std::fprintf(stderr, "run: context %lld round %d %s\n", (long long)ctx, r, configs[k].c_str());
                    sage_bench_decode_begin(configs[k].c_str());
                    decodeTimed(run, decode, true);
                    sage_bench_decode_end(configs[k].c_str());
                    finish(run);
                }
                continue;
            }
            // --turns N: every configuration's session is live at once, and they take turns of N tokens (the
            // first turn rotating), so that a slow phase of the machine falls on all of them alike.
            std::vector<Run> runs(order.size());
            for (size_t i = 0; i < order.size(); ++i) start(runs[i], order[i]);
            int done = 0;
            for (int turn = 0; done < decode; ++turn) {
                const int tokens = std::min(turns, decode - done);
                done += tokens;
                for (size_t i = 0; i < runs.size(); ++i)
                    decodeTimed(runs[(i + size_t(turn)) % runs.size()], tokens, done == decode);
            }
            for (Run& run : runs) finish(run);
        }
        if (!json)
            std::printf("context %lld (prefill %.2f s, capture off); time vs off: best against best, and the median "
                        "(min..max) of the rounds' own ratios:\n",
                        (long long)ctx, prefillS);
        for (size_t k = 0; k < configs.size(); ++k) {
            if (best[k] >= 1e30) continue;
            const double tps = decode / best[k], off = decode / best[0];
            const double bytesPerTok = double(traceBytes[k]) / decode;
            // Paired ratios: a configuration against capture off in the same round (rounds are seconds apart, so
            // a slow phase of a shared machine affects both sides of a pair).
            std::vector<double> ratios;
            for (size_t r = 0; r < times[k].size(); ++r) ratios.push_back(times[k][r] / times[0][r] - 1.0);
            std::sort(ratios.begin(), ratios.end());
            const double median = ratios.size() % 2 ? ratios[ratios.size() / 2]
                                                    : 0.5 * (ratios[ratios.size() / 2 - 1] + ratios[ratios.size() / 2]);
            if (!json)
                std::printf("  %-12s %9.1f tok/s  best %+6.1f%%  median %+6.1f%% (%+.1f..%+.1f)  CPU %+6.1f%%  trace "
                            "%8.0f B/token  lens %s\n",
                            configs[k].c_str(), tps, 100.0 * (best[k] / best[0] - 1.0), 100.0 * median,
                            100.0 * ratios.front(), 100.0 * ratios.back(), 100.0 * (bestCpu[k] / bestCpu[0] - 1.0),
                            bytesPerTok, lensModes[k].c_str());
            results.push_back({{"context", ctx},
                               {"lens_mode", lensModes[k]},
                               {"config", configs[k]},
                               {"decode_tokens_per_s", tps},
                               {"time_vs_off", best[k] / best[0] - 1.0},
                               {"paired_median_vs_off", median},
                               {"paired_min_vs_off", ratios.front()},
                               {"paired_max_vs_off", ratios.back()},
                               {"cpu_time_vs_off", bestCpu[k] / bestCpu[0] - 1.0},
                               {"off_tokens_per_s", off},
                               {"trace_bytes_per_token", bytesPerTok}});
            if (hookDecodeSec[k] > 0) {
                // The hook's own time against the decode time of the same runs (the recorder's methods on every
                // thread; with several threads, observeAttention and observeStreams run on the workers at once).
                const double rate = TimingHook::ticksPerSecond(), empty = TimingHook::emptyCallTicks();
                const double tokens = double(decode) * double(times[k].size());
                // A method's time less the counter's own share of it (at least zero).
                const auto methodSec = [&](int m) {
                    const double calls = double(hookCalls[k][size_t(m)]);
                    return std::max(0.0, double(hookTicks[k][size_t(m)]) - calls * empty) / rate;
                };
                double total = 0;
                nlohmann::json methods = nlohmann::json::object();
                for (int m = 0; m < TimingHook::kMethods; ++m) {
                    const double sec = methodSec(m);
                    total += sec;
                    if (hookCalls[k][size_t(m)] > 0)
                        methods[TimingHook::kNames[m]] = {{"calls_per_token", double(hookCalls[k][size_t(m)]) / tokens},
                                                          {"us_per_token", 1e6 * sec / tokens}};
                }
                results.back()["hook_share_of_decode"] = total / hookDecodeSec[k];
                results.back()["hook_empty_call_ns"] = 1e9 * empty / rate;
                results.back()["hook_methods"] = methods;
                if (!json) {
                    std::printf("    %s: recorder methods %.1f us per token, %.1f%% of its decode time (less %.1f ns "
                                "per call for the timing itself)\n",
                                configs[k].c_str(), 1e6 * total / tokens, 100.0 * total / hookDecodeSec[k],
                                1e9 * empty / rate);
                    for (int m = 0; m < TimingHook::kMethods; ++m)
                        if (hookCalls[k][size_t(m)] > 0) {
                            const double sec = methodSec(m);
                            std::printf("      %-18s %6.1f calls/token %8.1f ns/call %7.2f us/token %5.2f%%\n",
                                        TimingHook::kNames[m], double(hookCalls[k][size_t(m)]) / tokens,
                                        1e9 * sec / double(hookCalls[k][size_t(m)]), 1e6 * sec / tokens,
                                        100.0 * sec / hookDecodeSec[k]);
                        }
                }
            }
        }
    }
    if (json) std::cout << results.dump(2) << "\n";
    return 0;
}
