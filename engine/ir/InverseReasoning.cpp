#include "engine/ir/InverseReasoning.h"

#include "engine/capture/ModelIdentity.h"
#include "engine/core/SageError.h"
#include "engine/core/Version.h"
#include "engine/ir/Branches.h"
#include "engine/ir/DecisionPoints.h"
#include "engine/ir/Explanation.h"
#include "engine/ir/Faithfulness.h"
#include "engine/ir/IrSweep.h"
#include "engine/model/Model.h"
#include "engine/runtime/Generator.h"
#include "engine/runtime/InferenceSession.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <numeric>

namespace sage {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0)
{
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string utcNow()
{
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

void checkConfig(const IrConfig& c)
{
    auto bad = [](const std::string& field, const std::string& value, const std::string& expected) {
        throw SageError("IR settings: " + field + " is " + value + ", expected " + expected);
    };
    if (!(c.entropyThreshold >= 0)) bad("entropy threshold", std::to_string(c.entropyThreshold), ">= 0 nats");
    if (!(c.marginThreshold >= 0 && c.marginThreshold <= 1))
        bad("margin threshold", std::to_string(c.marginThreshold), "a probability in [0, 1]");
    if (!(c.minInfluenceLift >= 0)) bad("minimum influence lift", std::to_string(c.minInfluenceLift), ">= 0");
    if (!(c.parentMinLift >= 0)) bad("parent minimum lift", std::to_string(c.parentMinLift), ">= 0");
    if (c.maxDecisionPoints < 0) bad("maximum decision points", std::to_string(c.maxDecisionPoints), ">= 0");
    if (c.alternatives < 1) bad("alternatives", std::to_string(c.alternatives), ">= 1");
    if (c.branchesPerPoint < 0 || c.branchesPerPoint > c.alternatives)
        bad("branches per point", std::to_string(c.branchesPerPoint),
            "between 0 and the alternatives (" + std::to_string(c.alternatives) + ")");
    if (c.branchLength < 0) bad("branch length", std::to_string(c.branchLength), ">= 0 tokens");
    if (c.rejoinMatch < 1) bad("rejoin match", std::to_string(c.rejoinMatch), ">= 1 token");
    if (c.topSources < 1 || c.topCarriers < 1 || c.topExperts < 0 || c.lensTopK < 1)
        bad("evidence sizes",
            std::to_string(c.topSources) + "/" + std::to_string(c.topCarriers) + "/" + std::to_string(c.topExperts) +
                "/" + std::to_string(c.lensTopK),
            "top sources, carriers and lens entries >= 1, experts >= 0");
}

IrEvidence buildEvidence(const IrSweep& sw, const IrCandidateEvidence& ce, const IrReport& report, const Tokenizer* tok,
                         const IrConfig& cfg)
{
    IrEvidence e;
    const int64_t T = int64_t(report.tokens.size()), d = ce.position, P = report.promptLength;
    const int64_t H = sw.heads(), N = sw.layers(), K = sw.loops() * sw.layers(), E = sw.experts();
    const float* r = report.relevance.data() + (d - P) * T;

    std::vector<int64_t> pos(static_cast<size_t>(d));
    std::iota(pos.begin(), pos.end(), 0);
    const size_t ns = std::min<size_t>(size_t(cfg.topSources), pos.size());
    std::partial_sort(pos.begin(), pos.begin() + ptrdiff_t(ns), pos.end(),
                      [&](int64_t a, int64_t b) { return r[a] > r[b] || (r[a] == r[b] && a < b); });
    for (size_t i = 0; i < ns; ++i)
        e.sources.push_back({pos[i], report.tokens[size_t(pos[i])].id, report.tokens[size_t(pos[i])].text, r[pos[i]]});

    double total = 0;
    for (float x : ce.carried) total += x;
    const double inv = total > 0 ? 1.0 / total : 0.0;
    e.loopShares.assign(size_t(sw.loops()), 0.0f);
    std::vector<IrCarrier> layers, heads;
    double glob = 0, loc = 0;
    for (int64_t k = 0; k < K; ++k) {
        const int64_t loop = k / N + 1, layer = k % N;
        double layerSum = 0;
        for (int64_t h = 0; h < H; ++h)
            for (int s = 0; s < (loop > 1 ? 2 : 1); ++s) {
                const double v = ce.carried[size_t((k * H + h) * 2 + s)];
                layerSum += v;
                if (loop > 1) (s == 0 ? glob : loc) += v;
                heads.push_back({loop, layer, h, s == 0 ? "global" : "local", float(v * inv)});
            }
        e.loopShares[size_t(loop - 1)] += float(layerSum * inv);
        layers.push_back({loop, layer, -1, "", float(layerSum * inv)});
    }
    if (glob + loc > 0) {
        e.globalShare = float(glob / (glob + loc));
        e.localShare = float(loc / (glob + loc));
    }
    auto byShare = [](const IrCarrier& a, const IrCarrier& b) { return a.share > b.share; };
    std::stable_sort(layers.begin(), layers.end(), byShare);
    std::stable_sort(heads.begin(), heads.end(), byShare);
    layers.resize(std::min(layers.size(), size_t(cfg.topCarriers)));
    heads.resize(std::min(heads.size(), size_t(cfg.topCarriers)));
    e.layers = std::move(layers);
    e.heads = std::move(heads);

    if (E > 0 && !ce.expertMass.empty()) {
        std::vector<IrExpertShare> ex;
        for (int64_t k = 0; k < K; ++k) {
            double sum = 0;
            for (int64_t x = 0; x < E; ++x) sum += ce.expertMass[size_t(k * E + x)];
            if (sum <= 0) continue;
            for (int64_t x = 0; x < E; ++x)
                ex.push_back({k / N + 1, k % N, x, float(ce.expertMass[size_t(k * E + x)] / sum)});
        }
        std::stable_sort(ex.begin(), ex.end(),
                         [](const IrExpertShare& a, const IrExpertShare& b) { return a.share > b.share; });
        ex.resize(std::min(ex.size(), size_t(cfg.topExperts)));
        e.experts = std::move(ex);
    }

    for (int64_t l = 0; l < sw.loops(); ++l) {
        IrLoopPrediction lp;
        lp.loop = l + 1;
        for (auto [id, p] : sw.loopPrediction(l + 1, d - 1, cfg.lensTopK))
            lp.top.push_back({id, Branches::piece(tok, id), p});
        e.loopPredictions.push_back(std::move(lp));
    }
    return e;
}

} // namespace

IrReport runInverseReasoning(const Model& model, cpu::ThreadPool& pool, const IrRequest& request,
                             const IrConfig& config, const IrProgress& progress, const std::atomic<bool>* cancel)
{
    checkConfig(config);
    if (request.prompt.empty()) throw SageError("the prompt is empty; give a prompt text or token ids");
    if (request.maxNewTokens < 1)
        throw SageError("inverse reasoning needs generated tokens: --max-tokens is " +
                        std::to_string(request.maxNewTokens) + ", give at least 1");
    const auto t0 = Clock::now();
    GenerationRequest gen;
    gen.prompt = request.prompt;
    gen.maxNewTokens = request.maxNewTokens;
    gen.sampling = request.sampling;
    gen.eosTokenIds = model.eosTokenIds();
    gen.topAlternatives = config.alternatives + 1;
    InferenceSession session(model, pool);
    const GenerationResult r = generate(
        session, model.tokenizer(), gen,
        [&](int64_t step, const TokenChoice&, const std::string&) {
            if (progress) progress("generate", double(step + 1) / double(request.maxNewTokens));
        },
        cancel);
    if (r.reason == StopReason::Cancelled) throw CancelledError();
    IrReport report =
        analyseGeneration(model, pool, request, r.steps, stopReasonName(r.reason), config, progress, cancel);
    report.run.generateSeconds = since(t0) - report.run.sweepSeconds - report.run.branchSeconds;
    return report;
}

IrReport analyseGeneration(const Model& model, cpu::ThreadPool& pool, const IrRequest& request,
                           const std::vector<TokenChoice>& steps, const std::string& stopReason, const IrConfig& config,
                           const IrProgress& progress, const std::atomic<bool>* cancel)
{
    checkConfig(config);
    if (request.prompt.empty()) throw SageError("the prompt is empty; give a prompt text or token ids");
    const ModelConfig& mc = model.config();
    const Tokenizer* tok = model.tokenizer();

    IrReport rep;
    rep.config = config;
    rep.loops = mc.loopNum;
    rep.layers = mc.numHiddenLayers;
    rep.heads = mc.numAttentionHeads;
    IrRunInfo& run = rep.run;
    run.modelName = model.folder().filename().string();
    run.architecture = mc.architectureName();
    const ModelIdentity id = ModelIdentity::of(model);
    run.configHash = id.configHash;
    run.weightHash = id.weightHash;
    run.promptText = request.promptText;
    run.promptTokens = request.prompt;
    run.sampling = request.sampling;
    run.maxNewTokens = request.maxNewTokens;
    run.stopReason = stopReason;
    run.engineVersion = engineVersion();

    std::vector<int32_t> seq = request.prompt;
    for (int32_t t : request.prompt) rep.tokens.push_back({t, Branches::piece(tok, t), false, 0, 0, 0});
    for (const TokenChoice& c : steps) {
        seq.push_back(c.token);
        rep.tokens.push_back({c.token, Branches::piece(tok, c.token), true, c.probability, c.entropy, c.margin});
    }
    const int64_t P = int64_t(request.prompt.size()), T = int64_t(seq.size()), G = T - P;
    rep.promptLength = P;
    rep.generatedText = Branches::text(tok, std::span<const int32_t>(seq).subspan(size_t(P)));

    // The sweep.
    const auto tSweep = Clock::now();
    const std::vector<int64_t> candidates = DecisionPoints::contested(rep.tokens, P, config);
    IrSweep sw(model, pool);
    if (G > 0)
        rep.relevance = sw.run(seq, P, config.memoryBudget, cancel, [&](double f) {
            if (progress) progress("sweep", f);
        });
    run.sweepSeconds = since(tSweep);

    // Decision points with their alternatives and evidence.
    rep.decisionPoints = DecisionPoints::select(rep.tokens, P, candidates, rep.relevance, config);
    std::vector<int64_t> points;
    for (const IrDecisionPoint& p : rep.decisionPoints) points.push_back(p.position);
    const std::vector<IrCandidateEvidence> evidence = sw.evidence(points);
    for (IrDecisionPoint& p : rep.decisionPoints) {
        const TokenChoice& c = steps[size_t(p.step)];
        for (auto [alt, prob] : c.alternatives)
            if (alt != c.token && int64_t(p.alternatives.size()) < config.alternatives)
                p.alternatives.push_back({alt, Branches::piece(tok, alt), prob});
        p.evidence = buildEvidence(sw, evidence[size_t(p.id)], rep, tok, config);
    }

    // Branches: every decision point's runner-ups, plus the random flips of the faithfulness figure.
    const auto tBranch = Clock::now();
    std::vector<IrFlip> flips;
    for (const IrDecisionPoint& p : rep.decisionPoints) {
        IrFlip f{p.position, {}};
        for (int i = 0; i < config.branchesPerPoint && i < int(p.alternatives.size()); ++i)
            f.forced.push_back(p.alternatives[size_t(i)].token);
        flips.push_back(std::move(f));
    }
    auto runnerUp = [&](int64_t pos) -> std::pair<int32_t, float> {
        for (auto [alt, prob] : steps[size_t(pos - P)].alternatives)
            if (alt != seq[size_t(pos)]) return {alt, prob};
        return {-1, 0.0f};
    };
    std::vector<int64_t> randomPositions;
    if (config.faithfulness && !rep.decisionPoints.empty()) {
        std::vector<int64_t> eligible;
        for (int64_t t = P; t + 1 < T; ++t) {
            const bool isPoint = std::any_of(rep.decisionPoints.begin(), rep.decisionPoints.end(),
                                             [&](const IrDecisionPoint& p) { return p.position == t; });
            if (!isPoint && runnerUp(t).first >= 0) eligible.push_back(t);
        }
        randomPositions = Faithfulness::pickRandom(eligible, int64_t(rep.decisionPoints.size()),
                                                   request.sampling.seed ^ 0x5a6e1f00d5eedull);
        for (int64_t t : randomPositions) flips.push_back({t, {runnerUp(t).first}});
    }
    const auto branches = Branches::generate(model, pool, seq, flips, config.branchLength, cancel, [&](double f) {
        if (progress) progress("branches", f);
    });
    std::vector<float> decisionChanges, randomChanges;
    for (size_t i = 0; i < rep.decisionPoints.size(); ++i) {
        IrDecisionPoint& p = rep.decisionPoints[i];
        for (size_t b = 0; b < branches[i].size(); ++b)
            p.branches.push_back(Branches::describe(tok, seq, p.position, branches[i][b], p.alternatives[b].probability,
                                                    config.rejoinMatch));
        if (!p.branches.empty() && p.position + 1 < T) decisionChanges.push_back(p.branches[0].changed);
    }
    for (size_t i = 0; i < randomPositions.size(); ++i) {
        const size_t fi = rep.decisionPoints.size() + i;
        const IrBranch b = Branches::describe(tok, seq, randomPositions[i], branches[fi][0],
                                              runnerUp(randomPositions[i]).second, config.rejoinMatch);
        randomChanges.push_back(b.changed);
    }
    rep.faithfulness = Faithfulness::compute(decisionChanges, randomChanges, randomPositions);
    run.branchSeconds = since(tBranch);

    if (progress) progress("report", 0.0);
    for (IrDecisionPoint& p : rep.decisionPoints) p.explanation = Explanation::explain(p, rep);
    run.date = utcNow();
    if (progress) progress("report", 1.0);
    return rep;
}

} // namespace sage
