#include "engine/model/Model.h"

#include "engine/core/SageError.h"
#include "engine/io/TensorStore.h"
#include "engine/tokenizer/Tokenizer.h"

#include <algorithm>
#include <map>
#include <set>

namespace sage {

namespace {

std::string shapeText(const std::vector<int64_t>& s)
{
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

} // namespace

Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::filesystem::path& dir)
{
    if (!std::filesystem::is_directory(dir))
        throw SageError(dir.string() + ": is not a folder; pass a model folder with config.json and safetensors weights");
    std::unique_ptr<Model> m(new Model());
    m->m_folder = dir;
    m->m_config = ModelConfig::load(dir);
    m->m_generationConfig = GenerationConfig::load(dir);
    m->m_store = TensorStore::openFolder(dir);
    m->bindWeights();
    m->m_tokenizer = Tokenizer::load(dir);

    const ModelConfig& c = m->m_config;
    m->m_bosId = m->m_generationConfig.bosTokenId ? m->m_generationConfig.bosTokenId : c.bosTokenId;
    m->m_eosIds = !m->m_generationConfig.eosTokenIds.empty() ? m->m_generationConfig.eosTokenIds : c.eosTokenIds;
    if (m->m_tokenizer) {
        for (int32_t id : m->m_tokenizer->eosIds())
            if (std::find(m->m_eosIds.begin(), m->m_eosIds.end(), id) == m->m_eosIds.end()) m->m_eosIds.push_back(id);
        if (m->m_tokenizer->vocabSize() > c.vocabSize)
            throw SageError((dir / "tokenizer.model").string() + ": has " + std::to_string(m->m_tokenizer->vocabSize()) +
                            " pieces but config.json vocab_size is " + std::to_string(c.vocabSize) +
                            "; the tokenizer does not belong to this model");
    }
    for (int64_t id : m->m_eosIds)
        if (id >= c.vocabSize)
            throw SageError((dir / "config.json").string() + ": eos_token_id " + std::to_string(id) +
                            " is outside the vocabulary (vocab_size " + std::to_string(c.vocabSize) + ")");
    return m;
}

void Model::bindWeights()
{
    const ModelConfig& c = m_config;
    const int64_t D = c.hiddenSize, H = c.numAttentionHeads, KV = c.numKeyValueHeads, hd = c.headDim;
    std::set<std::string> used;

    // Looks a tensor up and checks its shape against what config.json implies.
    auto bind = [&](const std::string& name, std::vector<int64_t> expected) -> WeightView {
        const TensorInfo* t = m_store->find(name);
        if (!t)
            throw SageError(m_folder.string() + ": tensor " + name + " is missing; config.json implies it with shape " +
                            shapeText(expected) + " (is the config from another model?)");
        // 1-D weights may be stored as [n] or [1, n].
        std::vector<int64_t> found = t->shape;
        if (expected.size() == 1 && found.size() == 2 && found[0] == 1) found.erase(found.begin());
        if (found != expected)
            throw SageError(t->file + ": tensor " + name + " has shape " + shapeText(t->shape) + ", config.json implies " +
                            shapeText(expected) + "; the config and the weights disagree");
        used.insert(name);
        WeightView v = t->view();
        if (expected.size() == 1) {
            v.rows = 1;
            v.cols = expected[0];
        }
        return v;
    };
    auto bindSwiGlu = [&](const std::string& prefix, int64_t F) {
        return SwiGluWeights{bind(prefix + ".gate_proj.weight", {F, D}), bind(prefix + ".up_proj.weight", {F, D}),
                             bind(prefix + ".down_proj.weight", {D, F})};
    };

    m_embed = bind("model.embed_tokens.weight", {c.vocabSize, D});
    m_finalNorm = bind("model.norm.weight", {D});
    if (c.tieWordEmbeddings) {
        m_lmHead = m_embed;
    } else {
        if (!m_store->find("lm_head.weight"))
            throw SageError(m_folder.string() + ": tensor lm_head.weight is missing and config.json has "
                                                "tie_word_embeddings false; set it to true if the head is tied");
        m_lmHead = bind("lm_head.weight", {c.vocabSize, D});
    }

    m_layers.resize(size_t(c.numHiddenLayers));
    for (int64_t L = 0; L < c.numHiddenLayers; ++L) {
        LayerWeights& w = m_layers[size_t(L)];
        const std::string p = "model.layers." + std::to_string(L);
        w.inputNorm = bind(p + ".input_layernorm.weight", {D});
        w.postNorm = bind(p + ".post_attention_layernorm.weight", {D});
        w.q = bind(p + ".self_attn.q_proj.weight", {H * hd, D});
        w.k = bind(p + ".self_attn.k_proj.weight", {KV * hd, D});
        w.v = bind(p + ".self_attn.v_proj.weight", {KV * hd, D});
        w.o = bind(p + ".self_attn.o_proj.weight", {D, H * hd});
        if (c.loopNum > 1) {
            const std::string g = "model.gate_projections." + std::to_string(L);
            w.loopGate = bind(g + ".weight", {H, hd});
            w.loopGateBias = bind(g + ".bias", {H});
        }
        w.moe = c.isMoeLayer(L);
        if (w.moe) {
            w.router = bind(p + ".mlp.gate.weight", {c.numExperts, D});
            for (int64_t e = 0; e < c.numExperts; ++e)
                w.experts.push_back(bindSwiGlu(p + ".mlp.experts." + std::to_string(e), c.moeIntermediateSize));
            if (c.sharedExpertIntermediateSize > 0) {
                w.hasSharedExpert = true;
                w.sharedExpert = bindSwiGlu(p + ".mlp.shared_expert", c.sharedExpertIntermediateSize);
                w.sharedExpertGate = bind(p + ".mlp.shared_expert_gate.weight", {D});
            }
        } else {
            w.mlp = bindSwiGlu(p + ".mlp", c.intermediateSize);
        }
    }

    // A layer tensor the config does not account for means the config describes another model
    // (more layers, experts or loop gates than stated); computing anyway would give wrong numbers.
    for (const std::string& name : m_store->names()) {
        if (used.count(name)) continue;
        const bool isLayerWeight = name.rfind("model.layers.", 0) == 0 || name.rfind("model.gate_projections.", 0) == 0;
        const bool isBuffer = name.find("rotary_emb.inv_freq") != std::string::npos;
        if (isLayerWeight && !isBuffer)
            throw SageError(m_store->get(name).file + ": tensor " + name +
                            " is not used by the architecture config.json describes (num_hidden_layers " +
                            std::to_string(c.numHiddenLayers) + ", loop_num " + std::to_string(c.loopNum) +
                            ", num_experts " + std::to_string(c.numExperts) + "); the config and the weights disagree");
    }
}

uint64_t Model::weightBytes() const
{
    return m_store->totalBytes();
}

std::string Model::weightDtypeSummary() const
{
    std::map<std::string, uint64_t> bytes;
    for (const std::string& name : m_store->names()) {
        const TensorInfo& t = m_store->get(name);
        bytes[dtypeName(t.dtype)] += t.byteSize;
    }
    if (bytes.size() == 1) return bytes.begin()->first;
    std::string out = "mixed";
    for (const auto& [k, v] : bytes) out += " " + k + ":" + std::to_string(v * 100 / std::max<uint64_t>(1, weightBytes())) + "%";
    return out;
}

} // namespace sage
