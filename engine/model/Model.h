#pragma once

#include "engine/core/WeightView.h"
#include "engine/model/ModelConfig.h"

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace sage {

class TensorStore;
class Tokenizer;

// One SwiGLU block: down(silu(gate(x)) * up(x)).
struct SwiGluWeights {
    WeightView gate; // [F, D]
    WeightView up;   // [F, D]
    WeightView down; // [D, F]
};

struct LayerWeights {
    WeightView inputNorm;    // [1, D]
    WeightView postNorm;     // [1, D]
    WeightView q;            // [H*hd, D]
    WeightView k;            // [KV*hd, D]
    WeightView v;            // [KV*hd, D]
    WeightView o;            // [D, H*hd]
    WeightView loopGate;     // [H, hd]   (loop_num > 1 only)
    WeightView loopGateBias; // [1, H]    (loop_num > 1 only)

    bool moe = false;
    SwiGluWeights mlp;                  // dense layers
    WeightView router;                  // [E, D]
    std::vector<SwiGluWeights> experts; // E entries
    bool hasSharedExpert = false;
    SwiGluWeights sharedExpert;
    WeightView sharedExpertGate; // [1, D]
};

namespace cpu {
class ThreadPool;
class PackedWeight;
} // namespace cpu

// Safety checks Model::load runs before it hands out a model; each can be turned off explicitly.
struct LoadOptions {
    // Scan every weight for NaN/Inf (engine/model/WeightScan.h) and refuse the model when one is found.
    bool checkWeights = true;
    // Refuse a model whose weights (memory-mapped, read in full for every token) exceed the memory this
    // process can still use (engine/model/MemoryCheck.h), instead of thrashing or being killed by the OS.
    bool checkMemory = true;
    // Threads for the weight scan; <= 0 => all cores.
    int threads = 0;
};

// A loaded checkpoint: validated config, memory-mapped weights bound per layer, optional tokenizer.
// Immutable after load, so any number of sessions (threads) may share it.
class Model
{
public:
    ~Model();
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

    // Loads config.json, generation_config.json, the weights and (if present) the tokenizer from `dir`.
    // Throws SageError naming the file, tensor and the expected vs found shape when anything disagrees.
    static std::unique_ptr<Model> load(const std::filesystem::path& dir);
    static std::unique_ptr<Model> load(const std::filesystem::path& dir, const LoadOptions& options);

    const ModelConfig& config() const { return m_config; }
    const GenerationConfig& generationConfig() const { return m_generationConfig; }
    const std::filesystem::path& folder() const { return m_folder; }
    // nullptr when the folder has no tokenizer.model; token-id input still works.
    const Tokenizer* tokenizer() const { return m_tokenizer.get(); }
    const TensorStore& tensors() const { return *m_store; }

    const WeightView& embedTokens() const { return m_embed; }   // [V, D]
    const WeightView& finalNorm() const { return m_finalNorm; } // [1, D]
    const WeightView& lmHead() const { return m_lmHead; }       // [V, D] (the embedding when tied)
    const LayerWeights& layer(int64_t i) const { return m_layers[size_t(i)]; }

    // End-of-sequence ids: generation_config.json overrides config.json; the tokenizer's eos is added.
    const std::vector<int64_t>& eosTokenIds() const { return m_eosIds; }
    std::optional<int64_t> bosTokenId() const { return m_bosId; }

    uint64_t weightBytes() const;
    // The stored dtype of most weight bytes ("BF16", "F32", "mixed ..." ).
    std::string weightDtypeSummary() const;

    // Layer `layer`'s per-head Gram matrices of o_proj's head slices, G_h = Wo_h^T Wo_h ([H, hd, hd], f32), so
    // that ||Wo_h x|| = sqrt(x^T G_h x) costs hd^2 instead of D * hd (capture's stream norms). Computed on
    // `pool` on first use and kept while the model lives, shared by every recorder of every session
    // (thread-safe).
    const std::vector<float>& headOutputGram(int64_t layer, cpu::ThreadPool& pool) const;

private:
    Model() = default;
    void bindWeights();

    std::filesystem::path m_folder;
    ModelConfig m_config;
    GenerationConfig m_generationConfig;
    std::unique_ptr<TensorStore> m_store;
    std::unique_ptr<Tokenizer> m_tokenizer;
    WeightView m_embed, m_finalNorm, m_lmHead;
    std::vector<LayerWeights> m_layers;
    std::vector<int64_t> m_eosIds;
    std::optional<int64_t> m_bosId;
    mutable std::mutex m_gramMutex;
    mutable std::vector<std::unique_ptr<std::vector<float>>> m_headGram; // [layer], null until asked for
};

// The logit lens of residual-stream rows: out[rows, V] = lm_head(final_norm(hidden[rows, D])), through the
// blocked matrix kernel (cpu::matmulBlocked), so that a row's result does not depend on how many rows are
// computed together. `normed` is scratch, resized to [rows, D]. `head`, when given, is model.lmHead() packed
// (cpu::PackedWeight): the same numbers without converting the head on every call.
void lensLogits(const Model& model, cpu::ThreadPool& pool, const float* hidden, int64_t rows,
                std::vector<float>& normed, float* out, const cpu::PackedWeight* head = nullptr);

} // namespace sage
