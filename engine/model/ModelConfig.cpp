#include "engine/model/ModelConfig.h"

#include "engine/core/SageError.h"
#include "engine/io/StrictJson.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace sage {

namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& key, const std::string& what)
{
    throw SageError(source + ": field \"" + key + "\" " + what);
}

json readJsonFile(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) throw SageError(path.string() + ": cannot be opened for reading; check that it exists and is readable");
    std::stringstream ss;
    ss << in.rdbuf();
    // Strict: a repeated key or nesting deeper than any config's (rope_scaling, mch_heads) is damage; the
    // depth bound also keeps error messages, which print values, from recursing without limit.
    json j = parseStrictJson(ss.str(), path.string(), path.filename().string(), "re-download or fix the file", 16);
    if (!j.is_object()) throw SageError(path.string() + ": must contain a JSON object at the top level");
    return j;
}

bool present(const json& j, const char* key)
{
    auto it = j.find(key);
    return it != j.end() && !it->is_null();
}

// Upper bounds far above any published model, low enough that every size the engine derives from them
// (H * hd, V * D, the tensor list, the parameter count) fits 64-bit arithmetic.
constexpr int64_t kMaxDim = (int64_t(1) << 31) - 1;
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxExperts = 4096;
constexpr int64_t kMaxLoops = 64;
constexpr int64_t kMaxTensors = 1'000'000;

int64_t getInt(const json& j, const char* key, const std::string& src, std::optional<int64_t> def, int64_t minValue,
               int64_t maxValue = kMaxDim)
{
    if (!present(j, key)) {
        if (def) return *def;
        fail(src, key, "is missing; it is required for this architecture");
    }
    const json& v = j.at(key);
    if (!v.is_number_integer()) fail(src, key, "must be an integer, found " + v.dump());
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(maxValue))
        fail(src, key, "must be <= " + std::to_string(maxValue) + ", found " + v.dump());
    const int64_t x = v.get<int64_t>();
    if (x < minValue) fail(src, key, "must be >= " + std::to_string(minValue) + ", found " + std::to_string(x));
    if (x > maxValue)
        fail(src, key,
             "must be <= " + std::to_string(maxValue) + ", found " + std::to_string(x) +
                 " (no model is this large; the config is damaged)");
    return x;
}

double getDouble(const json& j, const char* key, const std::string& src, double def)
{
    if (!present(j, key)) return def;
    const json& v = j.at(key);
    if (!v.is_number()) fail(src, key, "must be a number, found " + v.dump());
    return v.get<double>();
}

bool getBool(const json& j, const char* key, const std::string& src, bool def)
{
    if (!present(j, key)) return def;
    const json& v = j.at(key);
    if (!v.is_boolean()) fail(src, key, "must be true or false, found " + v.dump());
    return v.get<bool>();
}

std::string getString(const json& j, const char* key, const std::string& src)
{
    if (!present(j, key)) return {};
    const json& v = j.at(key);
    if (!v.is_string()) fail(src, key, "must be a string, found " + v.dump());
    return v.get<std::string>();
}

// eos_token_id may be an int or a list of ints.
std::vector<int64_t> getIdList(const json& j, const char* key, const std::string& src)
{
    std::vector<int64_t> out;
    if (!present(j, key)) return out;
    const json& v = j.at(key);
    if (v.is_number_integer()) {
        out.push_back(v.get<int64_t>());
    } else if (v.is_array()) {
        for (const json& e : v) {
            if (!e.is_number_integer()) fail(src, key, "must be an integer or a list of integers, found " + v.dump());
            out.push_back(e.get<int64_t>());
        }
    } else {
        fail(src, key, "must be an integer or a list of integers, found " + v.dump());
    }
    for (int64_t id : out)
        if (id < 0) fail(src, key, "contains the negative token id " + std::to_string(id));
    return out;
}

std::optional<int64_t> getOptId(const json& j, const char* key, const std::string& src)
{
    if (!present(j, key)) return std::nullopt;
    const json& v = j.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
        fail(src, key, "must be a non-negative integer token id, found " + v.dump());
    return v.get<int64_t>();
}

} // namespace

ModelConfig ModelConfig::load(const std::filesystem::path& modelDir)
{
    const auto path = modelDir / "config.json";
    if (!std::filesystem::exists(path))
        throw SageError(path.string() + ": not found; a model folder needs config.json (Hugging Face layout)");
    return fromJson(readJsonFile(path), path.string());
}

ModelConfig ModelConfig::fromJson(const nlohmann::json& j, const std::string& src)
{
    ModelConfig c;
    c.modelType = getString(j, "model_type", src);
    if (present(j, "architectures")) {
        const json& a = j.at("architectures");
        if (!a.is_array()) fail(src, "architectures", "must be a list of strings");
        for (const json& e : a) {
            if (!e.is_string()) fail(src, "architectures", "must be a list of strings");
            c.architectures.push_back(e.get<std::string>());
        }
    }
    // Architectures the engine computes exactly; anything else would silently produce wrong numbers.
    static const char* known[] = {"sageloopcoder", "iquestloopcoder", "llama", ""};
    if (std::find(std::begin(known), std::end(known), c.modelType) == std::end(known))
        fail(src, "model_type",
             "is \"" + c.modelType + "\"; supported: sageloopcoder, iquestloopcoder, llama (and MoE/MCH extensions)");

    c.vocabSize = getInt(j, "vocab_size", src, std::nullopt, 1);
    c.hiddenSize = getInt(j, "hidden_size", src, std::nullopt, 1);
    c.numHiddenLayers = getInt(j, "num_hidden_layers", src, std::nullopt, 1, kMaxLayers);
    c.numAttentionHeads = getInt(j, "num_attention_heads", src, std::nullopt, 1);
    c.numKeyValueHeads = getInt(j, "num_key_value_heads", src, c.numAttentionHeads, 1);
    if (c.numAttentionHeads % c.numKeyValueHeads != 0)
        fail(src, "num_key_value_heads",
             "(" + std::to_string(c.numKeyValueHeads) + ") must divide num_attention_heads (" +
                 std::to_string(c.numAttentionHeads) + ")");
    const bool headDimGiven = present(j, "head_dim");
    if (!headDimGiven && c.hiddenSize % c.numAttentionHeads != 0)
        fail(src, "head_dim", "is missing and hidden_size is not divisible by num_attention_heads; add head_dim");
    c.headDim = getInt(j, "head_dim", src, c.hiddenSize / c.numAttentionHeads, 1);
    if (c.headDim % 2 != 0)
        fail(src, "head_dim", "must be even for rotary embeddings, found " + std::to_string(c.headDim));
    c.rmsNormEps = getDouble(j, "rms_norm_eps", src, 1e-6);
    if (!(c.rmsNormEps > 0)) fail(src, "rms_norm_eps", "must be positive");
    c.ropeTheta = getDouble(j, "rope_theta", src, 10000.0);
    if (!(c.ropeTheta > 0)) fail(src, "rope_theta", "must be positive");
    c.maxPositionEmbeddings = getInt(j, "max_position_embeddings", src, 2048, 1);
    c.tieWordEmbeddings = getBool(j, "tie_word_embeddings", src, false);
    c.attentionBias = getBool(j, "attention_bias", src, false);
    c.mlpBias = getBool(j, "mlp_bias", src, false);
    if (c.attentionBias)
        fail(src, "attention_bias", "is true; this engine supports models without attention bias only");
    if (c.mlpBias) fail(src, "mlp_bias", "is true; this engine supports models without MLP bias only");
    c.loopNum = getInt(j, "loop_num", src, 1, 1, kMaxLoops);
    c.loopWindowSize = getInt(j, "loop_window_size", src, 64, 1);
    c.bosTokenId = getOptId(j, "bos_token_id", src);
    c.eosTokenIds = getIdList(j, "eos_token_id", src);
    c.torchDtype = getString(j, "torch_dtype", src);

    if (present(j, "rope_scaling")) {
        const json& rs = j.at("rope_scaling");
        if (!rs.is_object()) fail(src, "rope_scaling", "must be an object or null");
        std::string type = getString(rs, "rope_type", src);
        if (type.empty()) type = getString(rs, "type", src);
        if (type != "linear" && type != "llama3" && type != "default")
            fail(src, "rope_scaling.rope_type", "is \"" + type + "\"; supported: linear, llama3");
        if (type != "default") {
            c.ropeScaling.type = type;
            c.ropeScaling.factor = getDouble(rs, "factor", src, 1.0);
            if (!(c.ropeScaling.factor > 0)) fail(src, "rope_scaling.factor", "must be positive");
            if (type == "llama3") {
                c.ropeScaling.lowFreqFactor = getDouble(rs, "low_freq_factor", src, 1.0);
                c.ropeScaling.highFreqFactor = getDouble(rs, "high_freq_factor", src, 4.0);
                c.ropeScaling.originalMaxPositionEmbeddings =
                    getInt(rs, "original_max_position_embeddings", src, 8192, 1);
                if (!(c.ropeScaling.highFreqFactor > c.ropeScaling.lowFreqFactor))
                    fail(src, "rope_scaling.high_freq_factor", "must be greater than low_freq_factor");
            }
        }
    }

    c.numExperts = getInt(j, "num_experts", src, 0, 0, kMaxExperts);
    if (c.numExperts > 0) {
        c.numExpertsPerTok = getInt(j, "num_experts_per_tok", src, std::nullopt, 1);
        if (c.numExpertsPerTok > c.numExperts)
            fail(src, "num_experts_per_tok",
                 "(" + std::to_string(c.numExpertsPerTok) + ") exceeds num_experts (" + std::to_string(c.numExperts) +
                     ")");
        c.moeIntermediateSize = getInt(j, "moe_intermediate_size", src, std::nullopt, 1);
        c.normTopkProb = getBool(j, "norm_topk_prob", src, false);
        c.sharedExpertIntermediateSize = getInt(j, "shared_expert_intermediate_size", src, 0, 0);
        c.decoderSparseStep = getInt(j, "decoder_sparse_step", src, 1, 1);
        if (present(j, "mlp_only_layers")) {
            const json& m = j.at("mlp_only_layers");
            if (!m.is_array()) fail(src, "mlp_only_layers", "must be a list of layer indices");
            for (const json& e : m) {
                if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() >= c.numHiddenLayers)
                    fail(src, "mlp_only_layers",
                         "must list layer indices in [0, num_hidden_layers), found " + m.dump());
                c.mlpOnlyLayers.push_back(e.get<int64_t>());
            }
        }
    }
    // Dense layers exist when there are no experts or some layers are MLP-only.
    bool anyDense = c.numExperts == 0;
    for (int64_t L = 0; L < c.numHiddenLayers && !anyDense; ++L) anyDense = !c.isMoeLayer(L);
    c.intermediateSize =
        getInt(j, "intermediate_size", src, anyDense ? std::nullopt : std::optional<int64_t>(0), anyDense ? 1 : 0);

    // What Model::load derives next (the tensor list, the parameter count) must stay small and exact.
    const int64_t perLayerFfn = c.numExperts > 0 ? 1 + 3 * c.numExperts + 4 : 3;
    const int64_t tensors = 3 + c.numHiddenLayers * (8 + perLayerFfn);
    if (tensors > kMaxTensors)
        fail(src, "num_hidden_layers",
             "(" + std::to_string(c.numHiddenLayers) + ") with num_experts (" + std::to_string(c.numExperts) +
                 ") implies " + std::to_string(tensors) + " weight tensors, more than the " +
                 std::to_string(kMaxTensors) + " the engine loads; the config is damaged or not a transformer's");
    try {
        (void)c.parameterCount();
    } catch (const SageError&) {
        fail(src, "hidden_size",
             "with the other sizes implies more parameters than a 64-bit count holds; the config is damaged");
    }

    if (present(j, "mch_heads")) {
        c.hasMchKey = true;
        const json& m = j.at("mch_heads");
        if (!m.is_array()) fail(src, "mch_heads", "must be a list of [layer, head] pairs");
        for (const json& e : m) {
            if (!e.is_array() || e.size() != 2 || !e[0].is_number_integer() || !e[1].is_number_integer())
                fail(src, "mch_heads", "must be a list of [layer, head] pairs, found " + e.dump());
            const int64_t L = e[0].get<int64_t>(), h = e[1].get<int64_t>();
            if (L < 0 || L >= c.numHiddenLayers || h < 0 || h >= c.numAttentionHeads)
                fail(src, "mch_heads",
                     "entry " + e.dump() + " is outside the model's " + std::to_string(c.numHiddenLayers) +
                         " layers x " + std::to_string(c.numAttentionHeads) + " heads");
            c.mchHeads.emplace_back(L, h);
        }
    }
    return c;
}

bool ModelConfig::isMoeLayer(int64_t layer) const
{
    if (numExperts <= 0) return false;
    if (std::find(mlpOnlyLayers.begin(), mlpOnlyLayers.end(), layer) != mlpOnlyLayers.end()) return false;
    return (layer + 1) % decoderSparseStep == 0;
}

std::string ModelConfig::architectureName() const
{
    if (!architectures.empty()) return architectures.front();
    if (modelType == "sageloopcoder") return "SAGELoopCoderForCausalLM";
    if (modelType == "iquestloopcoder") return "IQuestLoopCoderForCausalLM";
    return "LlamaForCausalLM";
}

std::vector<TensorSpec> ModelConfig::tensorSpecs() const
{
    const int64_t D = hiddenSize, H = numAttentionHeads, KV = numKeyValueHeads, hd = headDim;
    std::vector<TensorSpec> s;
    auto swiGlu = [&](const std::string& prefix, int64_t F) {
        s.push_back({prefix + ".gate_proj.weight", {F, D}});
        s.push_back({prefix + ".up_proj.weight", {F, D}});
        s.push_back({prefix + ".down_proj.weight", {D, F}});
    };
    s.push_back({"model.embed_tokens.weight", {vocabSize, D}});
    s.push_back({"model.norm.weight", {D}});
    if (!tieWordEmbeddings) s.push_back({"lm_head.weight", {vocabSize, D}});
    for (int64_t L = 0; L < numHiddenLayers; ++L) {
        const std::string p = "model.layers." + std::to_string(L);
        s.push_back({p + ".input_layernorm.weight", {D}});
        s.push_back({p + ".post_attention_layernorm.weight", {D}});
        s.push_back({p + ".self_attn.q_proj.weight", {H * hd, D}});
        s.push_back({p + ".self_attn.k_proj.weight", {KV * hd, D}});
        s.push_back({p + ".self_attn.v_proj.weight", {KV * hd, D}});
        s.push_back({p + ".self_attn.o_proj.weight", {D, H * hd}});
        if (loopNum > 1) {
            const std::string g = "model.gate_projections." + std::to_string(L);
            s.push_back({g + ".weight", {H, hd}});
            s.push_back({g + ".bias", {H}});
        }
        if (isMoeLayer(L)) {
            s.push_back({p + ".mlp.gate.weight", {numExperts, D}});
            for (int64_t e = 0; e < numExperts; ++e)
                swiGlu(p + ".mlp.experts." + std::to_string(e), moeIntermediateSize);
            if (sharedExpertIntermediateSize > 0) {
                swiGlu(p + ".mlp.shared_expert", sharedExpertIntermediateSize);
                s.push_back({p + ".mlp.shared_expert_gate.weight", {1, D}});
            }
        } else {
            swiGlu(p + ".mlp", intermediateSize);
        }
    }
    return s;
}

int64_t ModelConfig::parameterCount() const
{
    int64_t n = 0;
    bool overflow = false;
    for (const TensorSpec& t : tensorSpecs()) {
        int64_t e = 1;
        for (int64_t d : t.shape) overflow = overflow || __builtin_mul_overflow(e, d, &e);
        overflow = overflow || __builtin_add_overflow(n, e, &n);
    }
    if (overflow) throw SageError("config.json: the model's sizes imply more parameters than a 64-bit count holds");
    return n;
}

GenerationConfig GenerationConfig::load(const std::filesystem::path& modelDir)
{
    GenerationConfig g;
    const auto path = modelDir / "generation_config.json";
    if (!std::filesystem::exists(path)) return g;
    const json j = readJsonFile(path);
    const std::string src = path.string();
    g.bosTokenId = getOptId(j, "bos_token_id", src);
    g.eosTokenIds = getIdList(j, "eos_token_id", src);
    if (present(j, "temperature")) g.temperature = getDouble(j, "temperature", src, 1.0);
    if (present(j, "top_p")) g.topP = getDouble(j, "top_p", src, 1.0);
    if (present(j, "top_k")) g.topK = getInt(j, "top_k", src, 0, 0);
    if (present(j, "repetition_penalty")) g.repetitionPenalty = getDouble(j, "repetition_penalty", src, 1.0);
    if (present(j, "max_new_tokens")) g.maxNewTokens = getInt(j, "max_new_tokens", src, 0, 0);
    if (present(j, "do_sample")) g.doSample = getBool(j, "do_sample", src, false);
    return g;
}

} // namespace sage
