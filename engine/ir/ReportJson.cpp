#include "engine/ir/ReportJson.h"

#include "engine/capture/SessionFile.h"
#include "engine/core/SageError.h"
#include "engine/runtime/Sampler.h"

#include <cmath>
#include <fstream>
#include <sstream>

namespace sage {

using nlohmann::json;

namespace {

json f(float v)
{
    return std::isfinite(v) ? json(double(v)) : json(nullptr);
}

json alternativeJson(const IrAlternative& a)
{
    return {{"token", a.token}, {"text", a.text}, {"p", f(a.probability)}};
}

json carrierJson(const IrCarrier& c)
{
    json j{{"loop", c.loop}, {"layer", c.layer}, {"share", f(c.share)}};
    if (c.head >= 0) {
        j["head"] = c.head;
        j["stream"] = c.stream;
    }
    return j;
}

// Validating access with a JSON path in every message.
class In
{
public:
    explicit In(std::string source) : m_src(std::move(source)) {}

    [[noreturn]] void fail(const std::string& path, const std::string& what) const
    {
        throw SageError(m_src + ": " + path + ": " + what);
    }
    static std::string typeOf(const json& j) { return j.type_name(); }

    const json& field(const json& obj, const std::string& path, const char* key) const
    {
        if (!obj.is_object()) fail(path, std::string("expected an object, found ") + typeOf(obj));
        auto it = obj.find(key);
        if (it == obj.end()) fail(path, std::string("the field \"") + key + "\" is missing");
        return *it;
    }
    const json& object(const json& obj, const std::string& path, const char* key) const
    {
        const json& v = field(obj, path, key);
        if (!v.is_object()) fail(path + "." + key, std::string("expected an object, found ") + typeOf(v));
        return v;
    }
    const json& array(const json& obj, const std::string& path, const char* key) const
    {
        const json& v = field(obj, path, key);
        if (!v.is_array()) fail(path + "." + key, std::string("expected an array, found ") + typeOf(v));
        return v;
    }
    std::string str(const json& obj, const std::string& path, const char* key) const
    {
        const json& v = field(obj, path, key);
        if (!v.is_string()) fail(path + "." + key, std::string("expected a string, found ") + typeOf(v));
        return v.get<std::string>();
    }
    bool boolean(const json& obj, const std::string& path, const char* key) const
    {
        const json& v = field(obj, path, key);
        if (!v.is_boolean()) fail(path + "." + key, std::string("expected true or false, found ") + typeOf(v));
        return v.get<bool>();
    }
    int64_t integer(const json& v, const std::string& path, int64_t lo, int64_t hi) const
    {
        int64_t x = 0;
        if (v.is_number_unsigned()) {
            const uint64_t u = v.get<uint64_t>();
            if (u > uint64_t(INT64_MAX)) fail(path, "the integer " + v.dump() + " is too large");
            x = int64_t(u);
        } else if (v.is_number_integer()) {
            x = v.get<int64_t>();
        } else {
            fail(path, std::string("expected an integer, found ") + typeOf(v) + " " + v.dump());
        }
        if (x < lo || x > hi)
            fail(path, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], found " +
                           std::to_string(x));
        return x;
    }
    int64_t integer(const json& obj, const std::string& path, const char* key, int64_t lo, int64_t hi) const
    {
        return integer(field(obj, path, key), path + "." + key, lo, hi);
    }
    double numberValue(const json& v, const std::string& path, double lo, double hi) const
    {
        if (!v.is_number()) fail(path, std::string("expected a number, found ") + typeOf(v));
        const double x = v.get<double>();
        if (!std::isfinite(x) || x < lo || x > hi)
            fail(path,
                 "expected a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], found " + v.dump());
        return x;
    }
    double number(const json& obj, const std::string& path, const char* key, double lo = -1e300,
                  double hi = 1e300) const
    {
        return numberValue(field(obj, path, key), path + "." + key, lo, hi);
    }
    float real(const json& obj, const std::string& path, const char* key, double lo = -3.4e38, double hi = 3.4e38) const
    {
        return float(number(obj, path, key, lo, hi));
    }

private:
    std::string m_src;
};

std::string at(const std::string& path, size_t i)
{
    return path + "[" + std::to_string(i) + "]";
}

constexpr int64_t kMaxInt = int64_t(1) << 53;

IrAlternative readAlternative(const In& in, const json& j, const std::string& path)
{
    IrAlternative a;
    a.token = int32_t(in.integer(j, path, "token", 0, INT32_MAX));
    a.text = in.str(j, path, "text");
    a.probability = in.real(j, path, "p", 0.0, 1.0);
    return a;
}

IrCarrier readCarrier(const In& in, const json& j, const std::string& path, bool head)
{
    IrCarrier c;
    c.loop = in.integer(j, path, "loop", 1, 1 << 20);
    c.layer = in.integer(j, path, "layer", 0, 1 << 20);
    if (head) {
        c.head = in.integer(j, path, "head", 0, 1 << 20);
        c.stream = in.str(j, path, "stream");
        if (c.stream != "global" && c.stream != "local")
            in.fail(path + ".stream", "expected \"global\" or \"local\", found \"" + c.stream + "\"");
    }
    c.share = in.real(j, path, "share", 0.0, 1.0 + 1e-4);
    return c;
}

} // namespace

json ReportJson::toJson(const IrReport& r)
{
    const IrRunInfo& run = r.run;
    const SamplingParams& s = run.sampling;
    json j;
    j["format"] = kFormat;
    j["schema_version"] = IrReport::kSchemaVersion;
    j["run"] = {{"model",
                 {{"name", run.modelName},
                  {"architecture", run.architecture},
                  {"config_fnv1a64", run.configHash},
                  {"weights_fnv1a64", run.weightHash}}},
                {"prompt_text", run.promptText},
                {"prompt_tokens", run.promptTokens},
                {"sampling", samplingJson(s)},
                {"max_new_tokens", run.maxNewTokens},
                {"stop_reason", run.stopReason},
                {"engine_version", run.engineVersion},
                {"date", run.date},
                {"timings",
                 {{"generate_seconds", run.generateSeconds},
                  {"sweep_seconds", run.sweepSeconds},
                  {"branch_seconds", run.branchSeconds}}}};
    const IrConfig& c = r.config;
    j["config"] = {{"entropy_threshold", c.entropyThreshold},
                   {"margin_threshold", c.marginThreshold},
                   {"min_influence_lift", c.minInfluenceLift},
                   {"parent_min_lift", c.parentMinLift},
                   {"max_decision_points", c.maxDecisionPoints},
                   {"alternatives", c.alternatives},
                   {"branches_per_point", c.branchesPerPoint},
                   {"branch_length", c.branchLength},
                   {"rejoin_match", c.rejoinMatch},
                   {"top_sources", c.topSources},
                   {"top_carriers", c.topCarriers},
                   {"top_experts", c.topExperts},
                   {"lens_top_k", c.lensTopK},
                   {"faithfulness", c.faithfulness},
                   {"memory_budget", c.memoryBudget}};
    j["model_shape"] = {{"loops", r.loops}, {"layers", r.layers}, {"heads", r.heads}};
    j["prompt_length"] = r.promptLength;
    j["generated_text"] = r.generatedText;
    json toks = json::array();
    for (const IrToken& t : r.tokens) {
        json tj{{"id", t.id}, {"text", t.text}, {"generated", t.generated}};
        if (t.generated) {
            tj["p"] = f(t.probability);
            tj["entropy"] = f(t.entropy);
            tj["margin"] = f(t.margin);
        }
        toks.push_back(std::move(tj));
    }
    j["tokens"] = std::move(toks);
    // Row g holds positions 0 .. P + g - 1 only: the rest is zero by definition.
    json rel = json::array();
    const int64_t T = int64_t(r.tokens.size());
    for (int64_t g = 0; g < r.generatedCount(); ++g) {
        json row = json::array();
        for (int64_t p = 0; p < r.promptLength + g; ++p) row.push_back(f(r.relevance[size_t(g * T + p)]));
        rel.push_back(std::move(row));
    }
    j["relevance"] = std::move(rel);

    json dps = json::array();
    for (const IrDecisionPoint& p : r.decisionPoints) {
        json d{{"id", p.id},
               {"position", p.position},
               {"step", p.step},
               {"token", p.token},
               {"text", p.text},
               {"p", f(p.probability)},
               {"entropy", f(p.entropy)},
               {"margin", f(p.margin)},
               {"influence", f(p.influence)},
               {"influenced_by", p.influencedBy},
               {"score", f(p.score)},
               {"parent", p.parent},
               {"parent_lift", f(p.parentLift)},
               {"explanation", p.explanation}};
        json alts = json::array();
        for (const IrAlternative& a : p.alternatives) alts.push_back(alternativeJson(a));
        d["alternatives"] = std::move(alts);
        const IrEvidence& e = p.evidence;
        json ev;
        json src = json::array();
        for (const IrSource& s : e.sources)
            src.push_back(
                {{"position", s.position}, {"token", s.token}, {"text", s.text}, {"relevance", f(s.relevance)}});
        ev["sources"] = std::move(src);
        json ls = json::array();
        for (float x : e.loopShares) ls.push_back(f(x));
        ev["loop_shares"] = std::move(ls);
        ev["global_share"] = f(e.globalShare);
        ev["local_share"] = f(e.localShare);
        json layers = json::array(), heads = json::array(), experts = json::array(), preds = json::array();
        for (const IrCarrier& c : e.layers) layers.push_back(carrierJson(c));
        for (const IrCarrier& c : e.heads) heads.push_back(carrierJson(c));
        for (const IrExpertShare& x : e.experts)
            experts.push_back({{"loop", x.loop}, {"layer", x.layer}, {"expert", x.expert}, {"share", f(x.share)}});
        for (const IrLoopPrediction& lp : e.loopPredictions) {
            json top = json::array();
            for (const IrAlternative& a : lp.top) top.push_back(alternativeJson(a));
            preds.push_back({{"loop", lp.loop}, {"top", std::move(top)}});
        }
        ev["layers"] = std::move(layers);
        ev["heads"] = std::move(heads);
        ev["experts"] = std::move(experts);
        ev["loop_predictions"] = std::move(preds);
        d["evidence"] = std::move(ev);
        json brs = json::array();
        for (const IrBranch& b : p.branches)
            brs.push_back({{"forced_token", b.forcedToken},
                           {"forced_text", b.forcedText},
                           {"forced_p", f(b.forcedProbability)},
                           {"tokens", b.tokens},
                           {"text", b.text},
                           {"original_text", b.originalText},
                           {"diverges_at_char", b.divergesAtChar},
                           {"rejoins_at", b.rejoinsAt},
                           {"rejoins_original_at", b.rejoinsOriginalAt},
                           {"changed", f(b.changed)}});
        d["branches"] = std::move(brs);
        dps.push_back(std::move(d));
    }
    j["decision_points"] = std::move(dps);
    const IrFaithfulness& fa = r.faithfulness;
    j["faithfulness"] = {{"flips", fa.flips},
                         {"decision_change", f(fa.decisionChange)},
                         {"random_change", f(fa.randomChange)},
                         {"score", f(fa.score)},
                         {"random_positions", fa.randomPositions}};
    return j;
}

std::string ReportJson::write(const IrReport& report, int indent)
{
    return toJson(report).dump(indent) + "\n";
}

void ReportJson::save(const IrReport& report, const std::filesystem::path& path)
{
    writeFileAtomically(path, write(report));
}

IrReport ReportJson::fromJson(const json& j, const std::string& source)
{
    const In in(source);
    IrReport r;
    if (!j.is_object()) in.fail("$", std::string("expected the report object, found ") + j.type_name());
    const std::string format = in.str(j, "$", "format");
    if (format != kFormat)
        in.fail("$.format",
                "expected \"" + std::string(kFormat) + "\", found \"" + format + "\"; this is not an IR report");
    const int64_t version = in.integer(j, "$", "schema_version", 1, INT32_MAX);
    if (version > IrReport::kSchemaVersion)
        in.fail("$.schema_version", "the report has schema version " + std::to_string(version) +
                                        ", this build reads up to " + std::to_string(IrReport::kSchemaVersion) +
                                        "; update SAGE Workbench to open it");

    const json& run = in.object(j, "$", "run");
    const json& model = in.object(run, "$.run", "model");
    r.run.modelName = in.str(model, "$.run.model", "name");
    r.run.architecture = in.str(model, "$.run.model", "architecture");
    r.run.configHash = in.str(model, "$.run.model", "config_fnv1a64");
    r.run.weightHash = in.str(model, "$.run.model", "weights_fnv1a64");
    r.run.promptText = in.str(run, "$.run", "prompt_text");
    const json& pt = in.array(run, "$.run", "prompt_tokens");
    for (size_t i = 0; i < pt.size(); ++i)
        r.run.promptTokens.push_back(int32_t(in.integer(pt[i], at("$.run.prompt_tokens", i), 0, INT32_MAX)));
    const json& s = in.object(run, "$.run", "sampling");
    r.run.sampling.temperature = in.number(s, "$.run.sampling", "temperature", 0, 1e6);
    r.run.sampling.topK = in.integer(s, "$.run.sampling", "top_k", 0, INT64_MAX);
    r.run.sampling.topP = in.number(s, "$.run.sampling", "top_p", 0, 1);
    r.run.sampling.minP = in.number(s, "$.run.sampling", "min_p", 0, 1);
    r.run.sampling.repetitionPenalty = in.number(s, "$.run.sampling", "repetition_penalty", 0, 1e6);
    {
        const json& seed = in.field(s, "$.run.sampling", "seed");
        if (!seed.is_number_unsigned() && !(seed.is_number_integer() && seed.get<int64_t>() >= 0))
            in.fail("$.run.sampling.seed", std::string("expected a non-negative integer, found ") + seed.type_name());
        r.run.sampling.seed = seed.get<uint64_t>();
    }
    r.run.maxNewTokens = in.integer(run, "$.run", "max_new_tokens", 0, INT64_MAX);
    r.run.stopReason = in.str(run, "$.run", "stop_reason");
    r.run.engineVersion = in.str(run, "$.run", "engine_version");
    r.run.date = in.str(run, "$.run", "date");
    const json& tm = in.object(run, "$.run", "timings");
    r.run.generateSeconds = in.number(tm, "$.run.timings", "generate_seconds", 0);
    r.run.sweepSeconds = in.number(tm, "$.run.timings", "sweep_seconds", 0);
    r.run.branchSeconds = in.number(tm, "$.run.timings", "branch_seconds", 0);

    const json& c = in.object(j, "$", "config");
    const std::string cp = "$.config";
    IrConfig& cfg = r.config;
    cfg.entropyThreshold = in.number(c, cp, "entropy_threshold", 0);
    cfg.marginThreshold = in.number(c, cp, "margin_threshold", 0, 1);
    cfg.minInfluenceLift = in.number(c, cp, "min_influence_lift", 0);
    cfg.parentMinLift = in.number(c, cp, "parent_min_lift", 0);
    cfg.maxDecisionPoints = int(in.integer(c, cp, "max_decision_points", 0, INT32_MAX));
    cfg.alternatives = int(in.integer(c, cp, "alternatives", 1, INT32_MAX));
    cfg.branchesPerPoint = int(in.integer(c, cp, "branches_per_point", 0, INT32_MAX));
    cfg.branchLength = int(in.integer(c, cp, "branch_length", 0, INT32_MAX));
    cfg.rejoinMatch = int(in.integer(c, cp, "rejoin_match", 1, INT32_MAX));
    cfg.topSources = int(in.integer(c, cp, "top_sources", 1, INT32_MAX));
    cfg.topCarriers = int(in.integer(c, cp, "top_carriers", 1, INT32_MAX));
    cfg.topExperts = int(in.integer(c, cp, "top_experts", 0, INT32_MAX));
    cfg.lensTopK = int(in.integer(c, cp, "lens_top_k", 1, INT32_MAX));
    cfg.faithfulness = in.boolean(c, cp, "faithfulness");
    {
        const json& mb = in.field(c, cp, "memory_budget");
        if (!mb.is_number_unsigned() && !(mb.is_number_integer() && mb.get<int64_t>() >= 0))
            in.fail(cp + ".memory_budget", std::string("expected a non-negative integer, found ") + mb.type_name());
        cfg.memoryBudget = mb.get<uint64_t>();
    }

    const json& shape = in.object(j, "$", "model_shape");
    r.loops = in.integer(shape, "$.model_shape", "loops", 1, 1 << 20);
    r.layers = in.integer(shape, "$.model_shape", "layers", 0, 1 << 20);
    r.heads = in.integer(shape, "$.model_shape", "heads", 0, 1 << 20);

    const json& toks = in.array(j, "$", "tokens");
    r.promptLength = in.integer(j, "$", "prompt_length", 0, int64_t(toks.size()));
    for (size_t i = 0; i < toks.size(); ++i) {
        const std::string p = at("$.tokens", i);
        IrToken t;
        t.id = int32_t(in.integer(toks[i], p, "id", 0, INT32_MAX));
        t.text = in.str(toks[i], p, "text");
        t.generated = in.boolean(toks[i], p, "generated");
        if (t.generated != (int64_t(i) >= r.promptLength))
            in.fail(p + ".generated", std::string("expected ") + (t.generated ? "false" : "true") + " for a token " +
                                          (t.generated ? "inside" : "after") + " the prompt");
        if (t.generated) {
            t.probability = in.real(toks[i], p, "p", 0, 1);
            t.entropy = in.real(toks[i], p, "entropy", 0);
            t.margin = in.real(toks[i], p, "margin", 0, 1);
        }
        r.tokens.push_back(std::move(t));
    }
    const int64_t T = int64_t(r.tokens.size()), G = r.generatedCount();
    r.generatedText = in.str(j, "$", "generated_text");

    const json& rel = in.array(j, "$", "relevance");
    if (int64_t(rel.size()) != G)
        in.fail("$.relevance", "expected " + std::to_string(G) + " rows (one per generated token), found " +
                                   std::to_string(rel.size()));
    r.relevance.assign(size_t(G * T), 0.0f);
    for (int64_t g = 0; g < G; ++g) {
        const std::string p = at("$.relevance", size_t(g));
        const json& row = rel[size_t(g)];
        if (!row.is_array() || int64_t(row.size()) != r.promptLength + g)
            in.fail(p, "expected an array of " + std::to_string(r.promptLength + g) +
                           " numbers (the positions before the token), found " +
                           (row.is_array() ? std::to_string(row.size()) + " entries" : row.type_name()));
        for (size_t k = 0; k < row.size(); ++k)
            r.relevance[size_t(g * T) + k] = float(in.numberValue(row[k], at(p, k), 0, 1 + 1e-4));
    }

    const json& dps = in.array(j, "$", "decision_points");
    for (size_t i = 0; i < dps.size(); ++i) {
        const std::string p = at("$.decision_points", i);
        const json& dj = dps[i];
        IrDecisionPoint d;
        d.id = in.integer(dj, p, "id", int64_t(i), int64_t(i));
        d.position = in.integer(dj, p, "position", r.promptLength, T - 1);
        if (i > 0 && d.position <= r.decisionPoints.back().position)
            in.fail(p + ".position", "decision points must be in sequence order; " + std::to_string(d.position) +
                                         " follows " + std::to_string(r.decisionPoints.back().position));
        d.step = in.integer(dj, p, "step", d.position - r.promptLength, d.position - r.promptLength);
        d.token = int32_t(in.integer(dj, p, "token", 0, INT32_MAX));
        d.text = in.str(dj, p, "text");
        d.probability = in.real(dj, p, "p", 0, 1);
        d.entropy = in.real(dj, p, "entropy", 0);
        d.margin = in.real(dj, p, "margin", 0, 1);
        d.influence = in.real(dj, p, "influence", 0);
        d.influencedBy = in.integer(dj, p, "influenced_by", -1, T - 1);
        d.score = in.real(dj, p, "score");
        d.parent = in.integer(dj, p, "parent", -1, int64_t(i) - 1);
        d.parentLift = in.real(dj, p, "parent_lift", 0);
        d.explanation = in.str(dj, p, "explanation");
        const json& alts = in.array(dj, p, "alternatives");
        for (size_t k = 0; k < alts.size(); ++k)
            d.alternatives.push_back(readAlternative(in, alts[k], at(p + ".alternatives", k)));
        const json& ej = in.object(dj, p, "evidence");
        const std::string ep = p + ".evidence";
        IrEvidence& e = d.evidence;
        const json& src = in.array(ej, ep, "sources");
        for (size_t k = 0; k < src.size(); ++k) {
            const std::string sp = at(ep + ".sources", k);
            IrSource s;
            s.position = in.integer(src[k], sp, "position", 0, d.position - 1);
            s.token = int32_t(in.integer(src[k], sp, "token", 0, INT32_MAX));
            s.text = in.str(src[k], sp, "text");
            s.relevance = in.real(src[k], sp, "relevance", 0, 1 + 1e-4);
            e.sources.push_back(std::move(s));
        }
        const json& ls = in.array(ej, ep, "loop_shares");
        if (int64_t(ls.size()) != r.loops)
            in.fail(ep + ".loop_shares", "expected " + std::to_string(r.loops) + " entries (one per loop), found " +
                                             std::to_string(ls.size()));
        for (size_t k = 0; k < ls.size(); ++k)
            e.loopShares.push_back(float(in.numberValue(ls[k], at(ep + ".loop_shares", k), 0, 1 + 1e-4)));
        e.globalShare = in.real(ej, ep, "global_share", 0, 1 + 1e-4);
        e.localShare = in.real(ej, ep, "local_share", 0, 1 + 1e-4);
        const json& lj = in.array(ej, ep, "layers");
        for (size_t k = 0; k < lj.size(); ++k) e.layers.push_back(readCarrier(in, lj[k], at(ep + ".layers", k), false));
        const json& hj = in.array(ej, ep, "heads");
        for (size_t k = 0; k < hj.size(); ++k) e.heads.push_back(readCarrier(in, hj[k], at(ep + ".heads", k), true));
        const json& xj = in.array(ej, ep, "experts");
        for (size_t k = 0; k < xj.size(); ++k) {
            const std::string xp = at(ep + ".experts", k);
            IrExpertShare x;
            x.loop = in.integer(xj[k], xp, "loop", 1, 1 << 20);
            x.layer = in.integer(xj[k], xp, "layer", 0, 1 << 20);
            x.expert = in.integer(xj[k], xp, "expert", 0, 1 << 20);
            x.share = in.real(xj[k], xp, "share", 0, 1 + 1e-4);
            e.experts.push_back(x);
        }
        const json& pj = in.array(ej, ep, "loop_predictions");
        for (size_t k = 0; k < pj.size(); ++k) {
            const std::string lp = at(ep + ".loop_predictions", k);
            IrLoopPrediction pred;
            pred.loop = in.integer(pj[k], lp, "loop", 1, 1 << 20);
            const json& top = in.array(pj[k], lp, "top");
            for (size_t m = 0; m < top.size(); ++m) pred.top.push_back(readAlternative(in, top[m], at(lp + ".top", m)));
            e.loopPredictions.push_back(std::move(pred));
        }
        const json& bj = in.array(dj, p, "branches");
        for (size_t k = 0; k < bj.size(); ++k) {
            const std::string bp = at(p + ".branches", k);
            IrBranch b;
            b.forcedToken = int32_t(in.integer(bj[k], bp, "forced_token", 0, INT32_MAX));
            b.forcedText = in.str(bj[k], bp, "forced_text");
            b.forcedProbability = in.real(bj[k], bp, "forced_p", 0, 1);
            const json& bt = in.array(bj[k], bp, "tokens");
            if (bt.empty()) in.fail(bp + ".tokens", "expected at least the forced token, found an empty array");
            for (size_t m = 0; m < bt.size(); ++m)
                b.tokens.push_back(int32_t(in.integer(bt[m], at(bp + ".tokens", m), 0, INT32_MAX)));
            if (b.tokens[0] != b.forcedToken)
                in.fail(bp + ".tokens[0]", "expected the forced token " + std::to_string(b.forcedToken) + ", found " +
                                               std::to_string(b.tokens[0]));
            b.text = in.str(bj[k], bp, "text");
            b.originalText = in.str(bj[k], bp, "original_text");
            b.divergesAtChar = in.integer(bj[k], bp, "diverges_at_char", 0, kMaxInt);
            b.rejoinsAt = in.integer(bj[k], bp, "rejoins_at", -1, int64_t(b.tokens.size()) - 1);
            b.rejoinsOriginalAt = in.integer(bj[k], bp, "rejoins_original_at", -1, kMaxInt);
            b.changed = in.real(bj[k], bp, "changed", 0, 1);
            d.branches.push_back(std::move(b));
        }
        r.decisionPoints.push_back(std::move(d));
    }

    const json& fa = in.object(j, "$", "faithfulness");
    r.faithfulness.flips = in.integer(fa, "$.faithfulness", "flips", 0, kMaxInt);
    r.faithfulness.decisionChange = in.real(fa, "$.faithfulness", "decision_change", 0, 1);
    r.faithfulness.randomChange = in.real(fa, "$.faithfulness", "random_change", 0, 1);
    r.faithfulness.score = in.real(fa, "$.faithfulness", "score", -1, 1);
    const json& rp = in.array(fa, "$.faithfulness", "random_positions");
    for (size_t i = 0; i < rp.size(); ++i)
        r.faithfulness.randomPositions.push_back(
            in.integer(rp[i], at("$.faithfulness.random_positions", i), r.promptLength, T - 1));
    return r;
}

IrReport ReportJson::read(const std::string& text, const std::string& source)
{
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        throw SageError(source + ": not valid JSON (" + e.what() +
                        "); an IR report is written by `sage-cli explain "
                        "--format json`");
    }
    return fromJson(j, source);
}

IrReport ReportJson::load(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) throw SageError(path.string() + ": cannot be opened for reading");
    std::stringstream ss;
    ss << in.rdbuf();
    return read(ss.str(), path.string());
}

} // namespace sage
