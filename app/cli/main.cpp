// sage-cli: the headless front end of the SAGE Workbench engine (info, generate, score).
#include "CliOptions.h"

#include "engine/capture/Autosaver.h"
#include "engine/capture/CaptureGeneration.h"
#include "engine/capture/CapturePolicy.h"
#include "engine/capture/SessionFile.h"
#include "engine/capture/Trace.h"
#include "engine/capture/TraceExport.h"
#include "engine/capture/TraceRecorder.h"
#include "engine/core/Allocator.h"
#include "engine/core/SageError.h"
#include "engine/core/Version.h"
#include "engine/cpu/Kernels.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/io/TensorStore.h"
#include "engine/ir/InverseReasoning.h"
#include "engine/ir/ReportHtml.h"
#include "engine/ir/ReportJson.h"
#include "engine/ir/ReportMarkdown.h"
#include "engine/ir/ReportPdf.h"
#include "engine/model/MemoryCheck.h"
#include "engine/model/Model.h"
#include "engine/runtime/Generator.h"
#include "engine/runtime/InferenceSession.h"
#include "engine/tokenizer/Tokenizer.h"

#include <atomic>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace sage;
using sage::cli::CliOptions;
using sage::cli::UsageError;

namespace {

std::atomic<bool> g_cancel{false};

extern "C" void onInterrupt(int)
{
    // First Ctrl-C stops generation cleanly (the partial output is kept); a second one exits at once.
    if (g_cancel.exchange(true)) std::_Exit(130);
}

const char* kUsage = R"(sage-cli - the SAGE Workbench engine from the command line

Usage:
  sage-cli info     [--model DIR] [--format text|json]
  sage-cli generate [--model DIR] (--prompt TEXT | --tokens 1,2,3) [--max-tokens N] [--temperature T]
                    [--top-k K] [--top-p P] [--min-p P] [--repetition-penalty R] [--seed S]
                    [--stop STRING ...] [--threads N] [--max-loops N] [--format text|json]
  sage-cli score    [--model DIR] (--tokens 1,2,3 | --text TEXT | --text-file FILE) [--max-loops N]
                    [--threads N] [--no-logits] --format json
  sage-cli capture  [--model DIR] (--prompt TEXT | --tokens 1,2,3) [--max-tokens N] [--temperature T]
                    [--top-k K] [--top-p P] [--seed S] [--policy summary|standard|full] [--budget BYTES]
                    [--loops LIST] [--layers LIST] [--heads LIST] [--streams global|local|both]
                    [--full-heads none|all|L:H,...] [--attention-top-k K] [--full-row-max-keys N]
                    [--threads N] [--format npy|json|csv] --out DIR|FILE.sagetrace
  sage-cli explain  [--model DIR] (--prompt TEXT | --tokens 1,2,3) [--max-tokens N] [--temperature T]
                    [--top-k K] [--top-p P] [--min-p P] [--repetition-penalty R] [--seed S] [--threads N]
                    [--entropy-threshold H] [--margin-threshold M] [--min-lift L] [--max-points N]
                    [--branches N] [--branch-length N] [--no-faithfulness]
                    --format json|md|html|pdf --out FILE
  sage-cli version

Every command that loads a model also takes --skip-weight-check (do not scan the weights for NaN/Inf) and
--allow-low-memory (load even when the weights exceed the available memory).
--model defaults to $SAGE_MODEL, else the bundled model. --temperature 0 (the default) is greedy decoding.
--max-loops 1 exits after loop 1 (the final norm and head are applied to loop 1's output).
capture runs the prompt (and --max-tokens generated tokens, default 0) with a capture policy (default
standard) and writes the trace: npy = one NumPy array per kind/loop/layer plus manifest.json in DIR (use
--policy full for exact attention maps and logits.npy); --budget defaults to the available memory, so a
policy that cannot fit is refused before the run; json = DIR/trace.json; csv = DIR/steps.csv and
DIR/routing.csv. An --out path ending in .sagetrace writes a session file instead (docs/session-format.md),
saved while the run goes on (every 256 steps or 10 s), so a crash or a kill keeps what was captured so far.
The selection options narrow the policy: LIST is numbers and ranges (1,3-5); loops count from 1, layers and
heads from 0; --full-heads names the (layer:head) pairs that keep full attention rows; --attention-top-k sets
the entries kept per summarised row (0 to 64); --full-row-max-keys N keeps full rows up to N keys (0: any).
Nothing outside the selection is computed; the trace's policy name records the selection.
explain generates (default 32 tokens), runs the Inverse Reasoning sweep and writes the report (docs/ir.md);
progress goes to stderr, Ctrl-C cancels.
)";

std::filesystem::path modelDir(const CliOptions& o)
{
    if (auto m = o.value("model")) return *m;
    if (const char* env = std::getenv("SAGE_MODEL"); env && *env) return env;
    return SAGE_DEFAULT_MODEL_DIR;
}

std::unique_ptr<Model> loadModel(const CliOptions& o)
{
    LoadOptions options;
    options.checkWeights = !o.has("skip-weight-check");
    options.checkMemory = !o.has("allow-low-memory");
    return Model::load(modelDir(o), options);
}

std::string readFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) throw SageError(path + ": cannot be opened for reading");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<int32_t> toIds(const std::vector<int>& v)
{
    return std::vector<int32_t>(v.begin(), v.end());
}

const Tokenizer& requireTokenizer(const Model& model, const char* what)
{
    if (!model.tokenizer())
        throw SageError(model.folder().string() + ": has no tokenizer.model, so " + what +
                        " cannot be used; pass token ids with --tokens");
    return *model.tokenizer();
}

// --prompt TEXT (encoded with the model's tokenizer) or --tokens 1,2,3; never empty.
std::vector<int32_t> promptIds(const CliOptions& o, const Model& model)
{
    std::vector<int32_t> ids;
    if (auto p = o.value("prompt"))
        ids = requireTokenizer(model, "--prompt").encode(*p);
    else
        ids = toIds(cli::parseIdList(*o.value("tokens"), "tokens"));
    if (ids.empty()) throw SageError("the prompt is empty; give a prompt text or token ids");
    return ids;
}

// The sampling flags shared by generate, capture and explain (a command that does not accept a flag gets
// its default: CliOptions refuses flags outside the command's list).
SamplingParams samplingParams(const CliOptions& o)
{
    SamplingParams s;
    s.temperature = o.number("temperature", 0.0, 0.0, 100.0);
    s.topK = o.integer("top-k", 0, 0, 1 << 30);
    s.topP = o.number("top-p", 1.0, 1e-9, 1.0);
    s.minP = o.number("min-p", 0.0, 0.0, 1.0);
    s.repetitionPenalty = o.number("repetition-penalty", 1.0, 1e-6, 100.0);
    s.seed = uint64_t(o.integer("seed", 0, 0, std::numeric_limits<long long>::max()));
    return s;
}

int cmdInfo(const CliOptions& o)
{
    auto model = loadModel(o);
    const ModelConfig& c = model->config();
    const double kvPerToken = double(c.numHiddenLayers) * 2 * c.numKeyValueHeads * c.headDim * sizeof(float);
    const double ringBytes = double(c.loopNum - 1) * c.numHiddenLayers * 2 * c.loopWindowSize * c.numKeyValueHeads *
                             c.headDim * sizeof(float);
    const int64_t ctx = c.maxPositionEmbeddings;
    const double weights = double(model->weightBytes());
    if (o.string("format", "text") == "json") {
        nlohmann::json j;
        j["folder"] = model->folder().string();
        j["architecture"] = c.architectureName();
        j["model_type"] = c.modelType;
        j["parameters"] = c.parameterCount();
        j["dtype"] = model->weightDtypeSummary();
        j["weight_bytes"] = model->weightBytes();
        j["kv_cache_bytes_per_token"] = kvPerToken;
        j["loop_ring_bytes"] = ringBytes;
        j["memory_bytes_at_max_context"] = weights + ringBytes + kvPerToken * double(ctx);
        j["layers"] = c.numHiddenLayers;
        j["hidden_size"] = c.hiddenSize;
        j["heads"] = c.numAttentionHeads;
        j["kv_heads"] = c.numKeyValueHeads;
        j["head_dim"] = c.headDim;
        j["vocab_size"] = c.vocabSize;
        j["loop_num"] = c.loopNum;
        j["loop_window_size"] = c.loopWindowSize;
        j["num_experts"] = c.numExperts;
        j["num_experts_per_tok"] = c.numExpertsPerTok;
        j["max_position_embeddings"] = ctx;
        j["tokenizer"] = model->tokenizer() != nullptr;
        j["cpu_isa"] = cpu::isaName(cpu::activeIsa());
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::printf("Model folder      %s\n", model->folder().string().c_str());
    std::printf("Architecture      %s (model_type %s)\n", c.architectureName().c_str(), c.modelType.c_str());
    std::printf("Parameters        %lld (%.3f B)\n", (long long)c.parameterCount(), double(c.parameterCount()) / 1e9);
    std::printf("Weights           %s, %s in %zu file(s), memory-mapped\n", model->weightDtypeSummary().c_str(),
                formatByteSize(weights).c_str(), model->tensors().fileCount());
    std::printf("Layers            %lld, hidden %lld, heads %lld (KV %lld, head_dim %lld), vocab %lld\n",
                (long long)c.numHiddenLayers, (long long)c.hiddenSize, (long long)c.numAttentionHeads,
                (long long)c.numKeyValueHeads, (long long)c.headDim, (long long)c.vocabSize);
    std::printf("Loops             %lld (window %lld)\n", (long long)c.loopNum, (long long)c.loopWindowSize);
    if (c.numExperts > 0)
        std::printf("Experts           %lld, top-%lld, moe_intermediate %lld, shared expert %lld%s\n",
                    (long long)c.numExperts, (long long)c.numExpertsPerTok, (long long)c.moeIntermediateSize,
                    (long long)c.sharedExpertIntermediateSize, c.normTopkProb ? ", top-k renormalised" : "");
    else
        std::printf("Feed-forward      dense SwiGLU, intermediate %lld\n", (long long)c.intermediateSize);
    if (c.hasMchKey) std::printf("MCH heads         %zu designated\n", c.mchHeads.size());
    std::printf("Context           %lld tokens (RoPE theta %g%s)\n", (long long)ctx, c.ropeTheta,
                c.ropeScaling.type.empty() ? "" : (", " + c.ropeScaling.type + " scaling").c_str());
    std::printf("KV cache (CPU)    %s per token + %s loop-window rings\n", formatByteSize(kvPerToken).c_str(),
                formatByteSize(ringBytes).c_str());
    const int64_t typical = std::min<int64_t>(4096, ctx);
    std::printf("Memory needed     %s at %lld tokens, %s at the full context (%lld tokens)\n",
                formatByteSize(weights + ringBytes + kvPerToken * double(typical)).c_str(), (long long)typical,
                formatByteSize(weights + ringBytes + kvPerToken * double(ctx)).c_str(), (long long)ctx);
    std::printf("Tokenizer         %s\n", model->tokenizer() ? "tokenizer.model" : "missing (token ids only)");
    std::printf("CPU kernels       %s\n", cpu::isaName(cpu::activeIsa()));
    return 0;
}

SessionOptions sessionOptions(const CliOptions& o, const Model& m)
{
    SessionOptions s;
    s.maxLoops = o.integer("max-loops", 0, 0, m.config().loopNum);
    return s;
}

int threadCount(const CliOptions& o)
{
    return int(o.integer("threads", 0, 0, 1024));
}

int cmdGenerate(const CliOptions& o)
{
    if (o.has("prompt") == o.has("tokens")) throw UsageError{"generate needs exactly one of --prompt or --tokens"};
    const std::string format = o.string("format", "text");
    if (format != "text" && format != "json") throw UsageError{"--format must be text or json"};
    auto model = loadModel(o);
    GenerationRequest req;
    req.prompt = promptIds(o, *model);
    req.maxNewTokens = o.integer("max-tokens", 64, 0, 1 << 30);
    req.sampling = samplingParams(o);
    req.stopStrings = o.values("stop");
    req.eosTokenIds = model->eosTokenIds();

    cpu::ThreadPool pool(threadCount(o));
    InferenceSession session(*model, pool, sessionOptions(o, *model));
    const bool text = format == "text";
    const bool haveTok = model->tokenizer() != nullptr;
    std::signal(SIGINT, onInterrupt);
    const GenerationResult r = generate(
        session, model->tokenizer(), req,
        [&](int64_t, const TokenChoice& c, const std::string& delta) {
            if (!text) return;
            if (haveTok)
                std::fwrite(delta.data(), 1, delta.size(), stdout);
            else
                std::printf("%d ", c.token);
            std::fflush(stdout);
        },
        &g_cancel);
    std::signal(SIGINT, SIG_DFL);
    const double decodeTokens = double(std::max<size_t>(r.steps.size(), 1) - 1);
    if (text) {
        std::printf("\n");
        std::fprintf(stderr, "[%zu tokens, stop: %s; prefill %lld tokens %.1f tok/s; decode %.1f tok/s]\n",
                     r.steps.size(), stopReasonName(r.reason), (long long)r.promptTokens,
                     r.prefillSeconds > 0 ? double(r.promptTokens) / r.prefillSeconds : 0.0,
                     r.decodeSeconds > 0 ? decodeTokens / r.decodeSeconds : 0.0);
    } else {
        nlohmann::json j;
        j["prompt_tokens"] = req.prompt;
        j["tokens"] = r.tokens();
        j["text"] = r.text;
        j["stop_reason"] = stopReasonName(r.reason);
        nlohmann::json steps = nlohmann::json::array();
        for (const TokenChoice& c : r.steps) {
            nlohmann::json alts = nlohmann::json::array();
            for (auto [id, p] : c.alternatives) alts.push_back({{"token", id}, {"p", p}});
            steps.push_back({{"token", c.token},
                             {"p", c.probability},
                             {"entropy", c.entropy},
                             {"margin", c.margin},
                             {"alternatives", alts}});
        }
        j["steps"] = steps;
        j["prefill_seconds"] = r.prefillSeconds;
        j["decode_seconds"] = r.decodeSeconds;
        std::cout << j.dump() << "\n";
    }
    return r.reason == StopReason::Cancelled ? 130 : 0;
}

void appendFloat(std::string& out, float v)
{
    if (!std::isfinite(v)) { // JSON has no NaN/Inf; null keeps the array shape
        out += "null";
        return;
    }
    char buf[32];
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v); // shortest text that reads back to the same float
    (void)ec;
    out.append(buf, ptr);
}

int cmdScore(const CliOptions& o)
{
    const int inputs = int(o.has("tokens")) + int(o.has("text")) + int(o.has("text-file"));
    if (inputs != 1) throw UsageError{"score needs exactly one of --tokens, --text or --text-file"};
    if (o.string("format", "json") != "json") throw UsageError{"score supports --format json only"};
    auto model = loadModel(o);
    std::vector<int32_t> ids;
    if (auto t = o.value("tokens"))
        ids = toIds(cli::parseIdList(*t, "tokens"));
    else if (auto t = o.value("text"))
        ids = requireTokenizer(*model, "--text").encode(*t);
    else
        ids = requireTokenizer(*model, "--text-file").encode(readFile(*o.value("text-file")));
    if (ids.empty()) throw SageError("nothing to score: the input encodes to no tokens");

    cpu::ThreadPool pool(threadCount(o));
    InferenceSession session(*model, pool, sessionOptions(o, *model));
    std::vector<float> logits; // [T, V]
    session.forward(ids, true, logits);
    const int64_t V = model->config().vocabSize, T = int64_t(ids.size());
    double nllSum = 0;
    for (int64_t t = 0; t + 1 < T; ++t) {
        const float* row = logits.data() + t * V;
        double mx = row[0];
        for (int64_t v = 1; v < V; ++v) mx = std::max(mx, double(row[v]));
        double sum = 0;
        for (int64_t v = 0; v < V; ++v) sum += std::exp(double(row[v]) - mx);
        nllSum -= double(row[ids[size_t(t + 1)]]) - mx - std::log(sum);
    }
    const double nll = T > 1 ? nllSum / double(T - 1) : 0.0;

    std::string out = "{\"tokens\":[";
    for (int64_t t = 0; t < T; ++t) out += (t ? "," : "") + std::to_string(ids[size_t(t)]);
    out += "]";
    if (!o.has("no-logits")) {
        out += ",\"logits\":[";
        for (int64_t t = 0; t < T; ++t) {
            out += t ? ",[" : "[";
            for (int64_t v = 0; v < V; ++v) {
                if (v) out += ',';
                appendFloat(out, logits[size_t(t * V + v)]);
            }
            out += "]";
        }
        out += "]";
    }
    char tail[128];
    std::snprintf(tail, sizeof tail, ",\"nll\":%.17g,\"perplexity\":%.17g,\"loops\":%lld}\n", nll, std::exp(nll),
                  (long long)session.loops());
    out += tail;
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

int cmdCapture(const CliOptions& o)
{
    if (o.has("prompt") == o.has("tokens")) throw UsageError{"capture needs exactly one of --prompt or --tokens"};
    const auto out = o.value("out");
    if (!out) throw UsageError{"capture needs --out DIR (the folder the exported files are written to)"};
    const std::string format = o.string("format", "npy");
    if (format != "npy" && format != "json" && format != "csv") throw UsageError{"--format must be npy, json or csv"};
    auto model = loadModel(o);
    GenerationRequest req;
    req.prompt = promptIds(o, *model);
    req.maxNewTokens = o.integer("max-tokens", 0, 0, 1 << 30);
    req.sampling = samplingParams(o);
    req.eosTokenIds = model->eosTokenIds();

    CapturePolicy policy = CapturePolicy::fromName(o.string("policy", "standard"), model->config());
    CaptureSelection selection;
    selection.loops = o.string("loops", "");
    selection.layers = o.string("layers", "");
    selection.heads = o.string("heads", "");
    selection.streams = o.string("streams", "");
    selection.fullHeads = o.string("full-heads", "");
    selection.attentionTopK = int(o.integer("attention-top-k", -1, 0, kMaxAttentionTopK));
    selection.fullRowMaxKeys = o.integer("full-row-max-keys", -1, 0, std::numeric_limits<int32_t>::max());
    applySelection(policy, selection, model->config());
    uint64_t budget = uint64_t(o.integer("budget", 0, 0, std::numeric_limits<long long>::max()));
    std::string budgetSource;
    if (!o.has("budget")) {
        // Without an explicit budget, the trace must fit into the memory left after the weights.
        if (const auto left = memoryLeftAfter(model->weightBytes())) {
            budget = left->bytes;
            budgetSource =
                " (without --budget, the budget is the memory available after the weights: " + left->source + ")";
        }
    }
    policy.setMemoryBudget(budget);
    try {
        policy.checkBudget(model->config(), int64_t(req.prompt.size()) + req.maxNewTokens + 1);
    } catch (const SageError& e) {
        throw SageError(e.what() + budgetSource);
    }

    cpu::ThreadPool pool(threadCount(o));
    InferenceSession session(*model, pool);
    Trace trace;
    TraceRecorder recorder(*model, policy, trace, &pool);
    // A session file is autosaved while the run goes on (Autosaver's default schedule), so a
    // crash or a kill keeps what was captured up to then; the last save below writes the whole run.
    const bool sessionOut = out->size() > 10 && out->ends_with(".sagetrace");
    std::unique_ptr<Autosaver> autosaver;
    if (sessionOut) {
        SessionMeta meta;
        meta.model = ModelIdentity::of(*model);
        meta.modelFolder = model->folder().string();
        meta.prompt = req.prompt;
        meta.promptText = o.string("prompt", "");
        meta.sampling = req.sampling;
        meta.maxNewTokens = req.maxNewTokens;
        meta.policy = policy.name();
        autosaver = std::make_unique<Autosaver>(*out, std::move(meta), trace);
    }
    std::signal(SIGINT, onInterrupt);
    if (req.maxNewTokens > 0) {
        const GenerationResult r = captureGenerate(session, model->tokenizer(), req, recorder, {}, &g_cancel);
        if (r.reason == StopReason::Cancelled) std::fprintf(stderr, "sage-cli: cancelled; writing the steps so far\n");
    } else {
        session.setCaptureHook(&recorder);
        std::vector<float> logits;
        session.forward(req.prompt, false, logits, &g_cancel);
        session.setCaptureHook(nullptr);
        recorder.flush();
    }
    std::signal(SIGINT, SIG_DFL);

    if (sessionOut) {
        autosaver->flush(); // the whole run
        if (!autosaver->lastError().empty()) throw SageError(autosaver->lastError());
        autosaver.reset();
    } else if (format == "npy")
        TraceExport::writeNpy(trace, *out);
    else if (format == "csv")
        TraceExport::writeCsv(trace, *out);
    else {
        std::filesystem::create_directories(*out);
        TraceExport::writeJson(trace, std::filesystem::path(*out) / "trace.json");
    }
    std::fprintf(stderr, "[captured %lld positions with policy %s: %s in the trace; wrote %s]\n",
                 (long long)trace.size(), policy.name().c_str(), formatByteSize(double(trace.bytes())).c_str(),
                 out->c_str());
    return 0;
}

int cmdExplain(const CliOptions& o)
{
    if (o.has("prompt") == o.has("tokens")) throw UsageError{"explain needs exactly one of --prompt or --tokens"};
    const auto out = o.value("out");
    if (!out) throw UsageError{"explain needs --out FILE (the report to write)"};
    if (!o.has("format")) throw UsageError{"explain needs --format json, md, html or pdf"};
    const std::string format = *o.value("format");
    if (format != "json" && format != "md" && format != "html" && format != "pdf")
        throw UsageError{"--format must be json, md, html or pdf, got '" + format + "'"};
    IrConfig cfg;
    cfg.entropyThreshold = o.number("entropy-threshold", cfg.entropyThreshold, 0.0, 100.0);
    cfg.marginThreshold = o.number("margin-threshold", cfg.marginThreshold, 0.0, 1.0);
    cfg.minInfluenceLift = o.number("min-lift", cfg.minInfluenceLift, 0.0, 1e9);
    cfg.maxDecisionPoints = int(o.integer("max-points", cfg.maxDecisionPoints, 0, 1000));
    cfg.branchesPerPoint = int(o.integer("branches", cfg.branchesPerPoint, 0, cfg.alternatives));
    cfg.branchLength = int(o.integer("branch-length", cfg.branchLength, 0, 4096));
    cfg.faithfulness = !o.has("no-faithfulness");

    auto model = loadModel(o);
    IrRequest req;
    req.prompt = promptIds(o, *model);
    req.promptText = o.string("prompt", "");
    req.maxNewTokens = o.integer("max-tokens", 32, 1, 1 << 30);
    req.sampling = samplingParams(o);

    cpu::ThreadPool pool(threadCount(o));
    std::string lastStage;
    int lastPercent = -1;
    const IrProgress progress = [&](const std::string& stage, double f) {
        const int pc = int(f * 100.0);
        if (stage == lastStage && pc == lastPercent) return;
        if (stage != lastStage && !lastStage.empty()) std::fputc('\n', stderr);
        lastStage = stage;
        lastPercent = pc;
        std::fprintf(stderr, "\r[%s %3d%%]", stage.c_str(), pc);
        std::fflush(stderr);
    };
    std::signal(SIGINT, onInterrupt);
    IrReport report;
    try {
        report = runInverseReasoning(*model, pool, req, cfg, progress, &g_cancel);
    } catch (const CancelledError&) {
        std::signal(SIGINT, SIG_DFL);
        std::fprintf(stderr, "\nsage-cli: explain cancelled; no report written\n");
        return 130;
    }
    std::signal(SIGINT, SIG_DFL);
    std::fputc('\n', stderr);

    std::string bytes;
    if (format == "json")
        bytes = ReportJson::write(report);
    else if (format == "md")
        bytes = ReportMarkdown::write(report);
    else if (format == "html")
        bytes = ReportHtml::write(report);
    else
        bytes = ReportPdf::write(report);
    writeFileAtomically(*out, bytes);
    std::fprintf(stderr, "[%lld generated tokens, %zu decision points, faithfulness %.3f; sweep %.2f s; wrote %s]\n",
                 (long long)report.generatedCount(), report.decisionPoints.size(), double(report.faithfulness.score),
                 report.run.sweepSeconds, out->c_str());
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        std::fputs(kUsage, args.empty() ? stderr : stdout);
        return args.empty() ? 2 : 0;
    }
    const std::vector<std::string> kLoadFlags = {"skip-weight-check", "allow-low-memory"};
    const std::string cmd = args[0];
    args.erase(args.begin());
    try {
        if (cmd == "version") {
            std::printf("sage-cli %s\nallocator: %s\n", engineVersion(), allocatorDescription().c_str());
            return 0;
        }
        if (cmd == "info") return cmdInfo(CliOptions(args, {"model", "format"}, kLoadFlags));
        if (cmd == "generate")
            return cmdGenerate(CliOptions(args,
                                          {"model", "prompt", "tokens", "max-tokens", "temperature", "top-k", "top-p",
                                           "min-p", "repetition-penalty", "seed", "threads", "max-loops", "format"},
                                          kLoadFlags, {"stop"}));
        if (cmd == "score")
            return cmdScore(CliOptions(args, {"model", "tokens", "text", "text-file", "max-loops", "threads", "format"},
                                       {"no-logits", "skip-weight-check", "allow-low-memory"}));
        if (cmd == "capture")
            return cmdCapture(CliOptions(args,
                                         {"model",  "prompt",  "tokens",     "max-tokens",      "temperature",
                                          "top-k",  "top-p",   "seed",       "threads",         "policy",
                                          "budget", "format",  "out",        "loops",           "layers",
                                          "heads",  "streams", "full-heads", "attention-top-k", "full-row-max-keys"},
                                         kLoadFlags));
        if (cmd == "explain") {
            std::vector<std::string> flags = kLoadFlags;
            flags.push_back("no-faithfulness");
            return cmdExplain(
                CliOptions(args,
                           {"model", "prompt", "tokens", "max-tokens", "temperature", "top-k", "top-p", "min-p",
                            "repetition-penalty", "seed", "threads", "format", "out", "entropy-threshold",
                            "margin-threshold", "min-lift", "max-points", "branches", "branch-length"},
                           flags));
        }
        throw UsageError{"unknown command '" + cmd +
                         "'; commands: info, generate, score, capture, explain, version (see sage-cli --help)"};
    } catch (const UsageError& e) {
        std::fprintf(stderr, "sage-cli: %s\n", e.message.c_str());
        return 2;
    } catch (const SageError& e) {
        std::fprintf(stderr, "sage-cli: error: %s\n", e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "sage-cli: error: out of memory; use a smaller model or a shorter input\n");
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sage-cli: error: %s\n", e.what());
        return 1;
    }
}
