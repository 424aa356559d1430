#include "engine/capture/TraceExport.h"

#include "engine/capture/NpyFile.h"
#include "engine/capture/Trace.h"
#include "engine/core/SageError.h"

#include <fstream>
#include <nlohmann/json.hpp>

namespace sage {

namespace {

void ensureDir(const std::filesystem::path& dir)
{
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec || !std::filesystem::is_directory(dir))
        throw SageError(dir.string() + ": cannot create the output folder (" + ec.message() + ")");
}

std::ofstream openText(const std::filesystem::path& file)
{
    std::ofstream out(file, std::ios::trunc);
    if (!out) throw SageError(file.string() + ": cannot be opened for writing; check the folder is writable");
    return out;
}

std::string loopLayer(int64_t loop, int64_t layer)
{
    return ".loop" + std::to_string(loop) + ".layer" + std::to_string(layer) + ".npy";
}

nlohmann::json infoJson(const TraceInfo& i)
{
    return {{"layers", i.layers},
            {"heads", i.heads},
            {"kv_heads", i.kvHeads},
            {"head_dim", i.headDim},
            {"hidden_size", i.hiddenSize},
            {"vocab_size", i.vocabSize},
            {"loops", i.loops},
            {"window", i.window},
            {"experts", i.experts},
            {"experts_per_tok", i.expertsPerTok},
            {"policy", i.policy},
            {"attention_top_k", i.attentionTopK},
            {"lens_top_k", i.lensTopK}};
}

} // namespace

void TraceExport::writeNpy(const Trace& trace, const std::filesystem::path& dir)
{
    ensureDir(dir);
    const std::vector<Trace::StepPtr> steps = trace.snapshot();
    const TraceInfo& info = trace.info();
    const int64_t T = int64_t(steps.size()), H = info.heads, E = info.experts;
    nlohmann::json files = nlohmann::json::array();
    auto emit = [&](const std::string& name, const std::string& kind, int64_t loop, int64_t layer,
                    const std::vector<float>& data, const std::vector<int64_t>& shape,
                    const nlohmann::json& extra = nlohmann::json::object()) {
        NpyFile::write(dir / name, data.data(), shape);
        nlohmann::json f = {{"file", name}, {"kind", kind}, {"shape", shape}};
        if (loop > 0) f["loop"] = loop;
        if (layer >= 0) f["layer"] = layer;
        f.update(extra);
        files.push_back(f);
    };
    if (T == 0) throw SageError("the trace is empty: nothing to export");
    if (trace.origin() != 0)
        throw SageError("the trace starts at position " + std::to_string(trace.origin()) +
                        "; .npy maps need a trace captured from position 0 (capture the whole run)");

    // Which (loop, layer) records every step has, in forward order (from the first step).
    for (const LayerRecord& r0 : steps[0]->layers) {
        const int64_t loop = r0.loop, L = r0.layer;
        std::vector<const LayerRecord*> recs(static_cast<size_t>(T));
        bool complete = true;
        for (int64_t t = 0; t < T; ++t) complete &= (recs[size_t(t)] = steps[size_t(t)]->layer(loop, L)) != nullptr;
        if (!complete) continue;

        if (r0.streams > 0) {
            for (int64_t s = 0; s < r0.streams; ++s) {
                std::vector<float> map(size_t(H * T * T), 0.0f); // [H, T, T]
                std::vector<bool> kept(size_t(H), false);        // heads with any row kept (a policy's selection)
                for (int64_t t = 0; t < T; ++t) {
                    const LayerRecord& r = *recs[size_t(t)];
                    for (int64_t h = 0; h < H; ++h) {
                        float* row = map.data() + (h * T + t) * T;
                        bool full = false;
                        for (const FullAttentionRow& f : r.fullRows)
                            if (f.head == h && f.stream == s && !f.probs.empty()) {
                                for (size_t j = 0; j < f.probs.size() && f.firstKey + int64_t(j) < T; ++j)
                                    row[f.firstKey + int64_t(j)] = f.probs[j];
                                full = true;
                            }
                        kept[size_t(h)] = kept[size_t(h)] || full;
                        if (full || r.topK == 0) continue;
                        const int64_t slot = h * r.streams + s;
                        for (int64_t e = 0; e < r.topK; ++e) {
                            const int32_t key = r.topKeys[size_t(slot * r.topK + e)];
                            if (key >= 0 && key < T) {
                                row[key] = r.topProbs[size_t(slot * r.topK + e)];
                                kept[size_t(h)] = true;
                            }
                        }
                    }
                }
                // A stream the policy left out entirely has no file (rather than a map of zeros); otherwise the
                // manifest names the heads whose rows are in it (the others are zero).
                nlohmann::json heads = nlohmann::json::array();
                for (int64_t h = 0; h < H; ++h)
                    if (kept[size_t(h)]) heads.push_back(h);
                if (heads.empty()) continue;
                emit(std::string("attn.") + (s == 0 ? "global" : "local") + loopLayer(loop, L),
                     s == 0 ? "attention.global" : "attention.local", loop, L, map, {H, T, T}, {{"heads", heads}});
            }
        }
        auto perHead = [&](const char* name, const char* kind, std::vector<float> LayerRecord::*field) {
            if ((r0.*field).empty()) return;
            std::vector<float> a(size_t(T * H)); // [T, H]
            for (int64_t t = 0; t < T; ++t) {
                const std::vector<float>& v = recs[size_t(t)]->*field;
                if (int64_t(v.size()) != H) return;
                std::copy(v.begin(), v.end(), a.begin() + t * H);
            }
            emit(name + loopLayer(loop, L), kind, loop, L, a, {T, H});
        };
        perHead("gate", "gate", &LayerRecord::gate);
        perHead("norm.global", "stream_norm.global", &LayerRecord::normGlobal);
        perHead("norm.local", "stream_norm.local", &LayerRecord::normLocal);
        perHead("divergence", "divergence", &LayerRecord::divergence);
        if (!r0.routerProbs.empty()) {
            std::vector<float> a(size_t(T * E)); // [T, E]
            for (int64_t t = 0; t < T; ++t)
                std::copy(recs[size_t(t)]->routerProbs.begin(), recs[size_t(t)]->routerProbs.end(), a.begin() + t * E);
            emit("router" + loopLayer(loop, L), "router", loop, L, a, {T, E});
        }
    }

    // Residual norms [loops, N, T] and lens KL after each loop [loops, T]: NaN where not captured.
    {
        const float nan = std::numeric_limits<float>::quiet_NaN();
        std::vector<float> resid(size_t(info.loops * info.layers * T), nan);
        std::vector<float> kl(size_t(info.loops * T), nan);
        bool anyResid = false, anyLens = false;
        for (int64_t t = 0; t < T; ++t) {
            for (const LayerRecord& r : steps[size_t(t)]->layers)
                if (!std::isnan(r.residualNorm) && r.loop <= info.loops && r.layer < info.layers) {
                    resid[size_t(((r.loop - 1) * info.layers + r.layer) * T + t)] = r.residualNorm;
                    anyResid = true;
                }
            for (const LensRecord& l : steps[size_t(t)]->lens)
                if (l.layer < 0 && l.loop <= info.loops) {
                    kl[size_t((l.loop - 1) * T + t)] = l.kl;
                    anyLens = true;
                }
        }
        if (anyResid) emit("resid_norm.npy", "residual_norm", 0, -1, resid, {info.loops, info.layers, T});
        if (anyLens) emit("lens_kl.npy", "logit_lens_kl", 0, -1, kl, {info.loops, T});
    }
    bool haveLogits = true;
    for (const auto& s : steps) haveLogits &= int64_t(s->logits.size()) == info.vocabSize;
    if (haveLogits) {
        std::vector<float> a(size_t(T * info.vocabSize)); // [T, V]
        for (int64_t t = 0; t < T; ++t)
            std::copy(steps[size_t(t)]->logits.begin(), steps[size_t(t)]->logits.end(), a.begin() + t * info.vocabSize);
        emit("logits.npy", "logits", 0, -1, a, {T, info.vocabSize});
    }

    nlohmann::json m;
    m["format"] = "sage-capture-npy";
    m["version"] = 1;
    m["model"] = infoJson(info);
    std::vector<int32_t> tokens;
    std::vector<bool> generated;
    for (const auto& s : steps) {
        tokens.push_back(s->token);
        generated.push_back(s->generated);
    }
    m["tokens"] = tokens;
    m["generated"] = generated;
    m["files"] = files;
    std::ofstream out = openText(dir / "manifest.json");
    out << m.dump(2) << "\n";
    if (!out) throw SageError((dir / "manifest.json").string() + ": write failed");
}

void TraceExport::writeJson(const Trace& trace, const std::filesystem::path& file)
{
    const std::vector<Trace::StepPtr> steps = trace.snapshot();
    nlohmann::json j;
    j["format"] = "sage-capture-json";
    j["version"] = 1;
    j["model"] = infoJson(trace.info());
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& s : steps) {
        nlohmann::json o = {{"position", s->position}, {"token", s->token}, {"generated", s->generated}};
        if (s->generated) {
            nlohmann::json alts = nlohmann::json::array();
            for (auto [id, p] : s->choice.alternatives) alts.push_back({{"token", id}, {"p", p}});
            o["p"] = s->choice.probability;
            o["entropy"] = s->choice.entropy;
            o["margin"] = s->choice.margin;
            o["alternatives"] = alts;
        }
        nlohmann::json lens = nlohmann::json::array();
        for (const LensRecord& l : s->lens) {
            nlohmann::json top = nlohmann::json::array();
            for (size_t k = 0; k < l.tokens.size(); ++k) top.push_back({{"token", l.tokens[k]}, {"p", l.probs[k]}});
            lens.push_back({{"loop", l.loop}, {"layer", l.layer}, {"kl", l.kl}, {"top", top}});
        }
        o["lens"] = lens;
        nlohmann::json routing = nlohmann::json::array();
        for (const LayerRecord& r : s->layers)
            if (!r.experts.empty()) {
                nlohmann::json e = {
                    {"loop", r.loop}, {"layer", r.layer}, {"experts", r.experts}, {"weights", r.expertWeights}};
                if (!r.routerProbs.empty()) e["router_probs"] = r.routerProbs;
                routing.push_back(e);
            }
        o["routing"] = routing;
        arr.push_back(o);
    }
    j["steps"] = arr;
    std::ofstream out = openText(file);
    out << j.dump() << "\n";
    if (!out) throw SageError(file.string() + ": write failed");
}

void TraceExport::writeCsv(const Trace& trace, const std::filesystem::path& dir)
{
    ensureDir(dir);
    const std::vector<Trace::StepPtr> steps = trace.snapshot();
    {
        std::ofstream out = openText(dir / "steps.csv");
        out << "position,token,generated,p,entropy,margin,alternatives\n";
        for (const auto& s : steps) {
            out << s->position << ',' << s->token << ',' << (s->generated ? 1 : 0) << ',';
            if (s->generated) {
                out << s->choice.probability << ',' << s->choice.entropy << ',' << s->choice.margin << ',';
                for (size_t k = 0; k < s->choice.alternatives.size(); ++k)
                    out << (k ? ";" : "") << s->choice.alternatives[k].first << ':' << s->choice.alternatives[k].second;
            } else {
                out << ",,,";
            }
            out << '\n';
        }
        if (!out) throw SageError((dir / "steps.csv").string() + ": write failed");
    }
    std::ofstream out = openText(dir / "routing.csv");
    out << "position,loop,layer,rank,expert,weight,router_p\n";
    for (const auto& s : steps)
        for (const LayerRecord& r : s->layers)
            for (size_t k = 0; k < r.experts.size(); ++k) {
                out << s->position << ',' << r.loop << ',' << r.layer << ',' << k << ',' << r.experts[k] << ','
                    << r.expertWeights[k] << ',';
                if (!r.routerProbs.empty()) out << r.routerProbs[size_t(r.experts[k])];
                out << '\n';
            }
    if (!out) throw SageError((dir / "routing.csv").string() + ": write failed");
}

} // namespace sage
