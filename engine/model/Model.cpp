#include "engine/model/Model.h"

#include "engine/core/SageError.h"
#include "engine/cpu/Kernels.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/io/TensorStore.h"
#include "engine/model/MemoryCheck.h"
#include "engine/model/WeightScan.h"
#include "engine/tokenizer/Tokenizer.h"

#include <algorithm>
#include <map>

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
    return load(dir, LoadOptions{});
}

std::unique_ptr<Model> Model::load(const std::filesystem::path& dir, const LoadOptions& options)
{
    if (!std::filesystem::is_directory(dir))
        throw SageError(dir.string() +
                        ": is not a folder; pass a model folder with config.json and safetensors weights");
    std::unique_ptr<Model> m(new Model());
    m->m_folder = dir;
    m->m_config = ModelConfig::load(dir);
    m->m_generationConfig = GenerationConfig::load(dir);
    m->m_store = TensorStore::openFolder(dir);
    if (options.checkMemory) {
        // Before anything reads the weights: the scan below would page them all in.
        const uint64_t need = m->m_store->totalBytes();
        if (const auto avail = availableMemory(); avail && need > avail->bytes)
            throw SageError(dir.string() + ": the weights need " + formatByteSize(double(need)) + " (" +
                            std::to_string(need) + " bytes) resident in memory, but only " +
                            formatByteSize(double(avail->bytes)) + " (" + std::to_string(avail->bytes) +
                            " bytes) is available (" + avail->source +
                            "); every token reads all weights, so the model would page from disk or be killed "
                            "by the OS. Free memory, use a machine with more memory or a smaller checkpoint, or "
                            "load anyway (sage-cli --allow-low-memory, LoadOptions::checkMemory = false)");
    }
    m->bindWeights();
    if (options.checkWeights) {
        // Below a few chunks, starting worker threads costs more than the scan (the bundled model: ~2 ms).
        const bool small = m->m_store->totalBytes() < (uint64_t(64) << 20);
        cpu::ThreadPool pool(small ? 1 : options.threads);
        requireFiniteWeights(*m->m_store, pool);
    }
    m->m_tokenizer = Tokenizer::load(dir);

    const ModelConfig& c = m->m_config;
    m->m_bosId = m->m_generationConfig.bosTokenId ? m->m_generationConfig.bosTokenId : c.bosTokenId;
    m->m_eosIds = !m->m_generationConfig.eosTokenIds.empty() ? m->m_generationConfig.eosTokenIds : c.eosTokenIds;
    if (m->m_tokenizer) {
        for (int32_t id : m->m_tokenizer->eosIds())
            if (std::find(m->m_eosIds.begin(), m->m_eosIds.end(), id) == m->m_eosIds.end()) m->m_eosIds.push_back(id);
        if (m->m_tokenizer->vocabSize() > c.vocabSize)
            throw SageError((dir / "tokenizer.model").string() + ": has " +
                            std::to_string(m->m_tokenizer->vocabSize()) + " pieces but config.json vocab_size is " +
                            std::to_string(c.vocabSize) + "; the tokenizer does not belong to this model");
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
    // 1. Every tensor the config implies exists with exactly the implied shape. Vectors may be stored as
    //    [n] or [1, n] and matrices [1, n] as [n]: both layouts occur in published checkpoints.
    std::map<std::string, WeightView> views;
    for (const TensorSpec& spec : c.tensorSpecs()) {
        const TensorInfo* t = m_store->find(spec.name);
        if (!t) {
            if (spec.name == "lm_head.weight")
                throw SageError(m_folder.string() + ": tensor lm_head.weight is missing and config.json has "
                                                    "tie_word_embeddings false; set it to true if the head is tied");
            throw SageError(m_folder.string() + ": tensor " + spec.name +
                            " is missing; config.json implies it with shape " + shapeText(spec.shape) +
                            " (is the config from another model?)");
        }
        auto squeeze = [](std::vector<int64_t> s) {
            if (s.size() == 2 && s[0] == 1) s.erase(s.begin());
            return s;
        };
        if (squeeze(t->shape) != squeeze(spec.shape))
            throw SageError(t->file + ": tensor " + spec.name + " has shape " + shapeText(t->shape) +
                            ", config.json implies " + shapeText(spec.shape) + "; the config and the weights disagree");
        WeightView v = t->view();
        v.rows = spec.shape.size() == 2 ? spec.shape[0] : 1;
        v.cols = spec.shape.back();
        views.emplace(spec.name, v);
    }

    // 2. A layer tensor the config does not account for means the config describes another model (fewer
    //    layers, experts or loops than stored); computing anyway would give wrong numbers.
    for (const std::string& name : m_store->names()) {
        if (views.count(name)) continue;
        const bool isLayerWeight = name.rfind("model.layers.", 0) == 0 || name.rfind("model.gate_projections.", 0) == 0;
        const bool isBuffer = name.find("rotary_emb.inv_freq") != std::string::npos;
        if (isLayerWeight && !isBuffer)
            throw SageError(m_store->get(name).file + ": tensor " + name +
                            " is not used by the architecture config.json describes (num_hidden_layers " +
                            std::to_string(c.numHiddenLayers) + ", loop_num " + std::to_string(c.loopNum) +
                            ", num_experts " + std::to_string(c.numExperts) + "); the config and the weights disagree");
    }

    // 3. Bind the views per layer.
    auto at = [&](const std::string& name) { return views.at(name); };
    auto swiGlu = [&](const std::string& prefix) {
        return SwiGluWeights{at(prefix + ".gate_proj.weight"), at(prefix + ".up_proj.weight"),
                             at(prefix + ".down_proj.weight")};
    };
    m_embed = at("model.embed_tokens.weight");
    m_finalNorm = at("model.norm.weight");
    m_lmHead = c.tieWordEmbeddings ? m_embed : at("lm_head.weight");
    m_layers.resize(size_t(c.numHiddenLayers));
    for (int64_t L = 0; L < c.numHiddenLayers; ++L) {
        LayerWeights& w = m_layers[size_t(L)];
        const std::string p = "model.layers." + std::to_string(L);
        w.inputNorm = at(p + ".input_layernorm.weight");
        w.postNorm = at(p + ".post_attention_layernorm.weight");
        w.q = at(p + ".self_attn.q_proj.weight");
        w.k = at(p + ".self_attn.k_proj.weight");
        w.v = at(p + ".self_attn.v_proj.weight");
        w.o = at(p + ".self_attn.o_proj.weight");
        if (c.loopNum > 1) {
            const std::string g = "model.gate_projections." + std::to_string(L);
            w.loopGate = at(g + ".weight");
            w.loopGateBias = at(g + ".bias");
        }
        w.moe = c.isMoeLayer(L);
        if (w.moe) {
            w.router = at(p + ".mlp.gate.weight");
            for (int64_t e = 0; e < c.numExperts; ++e)
                w.experts.push_back(swiGlu(p + ".mlp.experts." + std::to_string(e)));
            w.hasSharedExpert = c.sharedExpertIntermediateSize > 0;
            if (w.hasSharedExpert) {
                w.sharedExpert = swiGlu(p + ".mlp.shared_expert");
                w.sharedExpertGate = at(p + ".mlp.shared_expert_gate.weight");
            }
        } else {
            w.mlp = swiGlu(p + ".mlp");
        }
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
    for (const auto& [k, v] : bytes)
        out += " " + k + ":" + std::to_string(v * 100 / std::max<uint64_t>(1, weightBytes())) + "%";
    return out;
}

const std::vector<float>& Model::headOutputGram(int64_t layer, cpu::ThreadPool& pool) const
{
    std::lock_guard lock(m_gramMutex);
    if (m_headGram.empty()) m_headGram.resize(m_layers.size());
    std::unique_ptr<std::vector<float>>& slot = m_headGram.at(size_t(layer));
    if (slot) return *slot;
    const int64_t D = m_config.hiddenSize, H = m_config.numAttentionHeads, hd = m_config.headDim;
    const WeightView& o = m_layers[size_t(layer)].o; // [D, H*hd]
    // Wo^T as f32 [H*hd, D]: head h's rows are Wo_h^T, and G_h = Wo_h^T (Wo_h^T)^T is one blocked product.
    std::vector<float> t(size_t(H * hd * D)), row(size_t(H * hd));
    for (int64_t d = 0; d < D; ++d) {
        cpu::convertRow(o, d, row.data());
        for (int64_t j = 0; j < H * hd; ++j) t[size_t(j * D + d)] = row[size_t(j)];
    }
    auto gram = std::make_unique<std::vector<float>>(size_t(H * hd * hd));
    for (int64_t h = 0; h < H; ++h) {
        const float* th = t.data() + h * hd * D;
        cpu::matmulBlocked(pool, th, hd, WeightView{th, DType::F32, hd, D}, gram->data() + h * hd * hd);
    }
    slot = std::move(gram);
    return *slot;
}

void lensLogits(const Model& model, cpu::ThreadPool& pool, const float* hidden, int64_t rows,
                std::vector<float>& normed, float* out, const cpu::PackedWeight* head)
{
    const ModelConfig& c = model.config();
    normed.resize(size_t(rows * c.hiddenSize));
    cpu::rmsnorm(hidden, rows, c.hiddenSize, model.finalNorm(), float(c.rmsNormEps), normed.data());
    if (head && head->source().data == model.lmHead().data)
        cpu::matmulPacked(pool, normed.data(), rows, *head, out);
    else
        cpu::matmulBlocked(pool, normed.data(), rows, model.lmHead(), out);
}

} // namespace sage
