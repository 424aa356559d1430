#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace sage {

// RoPE frequency scaling as in Hugging Face transformers ("linear" and "llama3").
struct RopeScaling {
    std::string type; // empty = none
    double factor = 1.0;
    double lowFreqFactor = 1.0;
    double highFreqFactor = 4.0;
    int64_t originalMaxPositionEmbeddings = 8192;
};

// A tensor the config implies: its stored name and shape ([out, in] for projections, [n] for vectors).
struct TensorSpec {
    std::string name;
    std::vector<int64_t> shape;
};

// Everything config.json says about a SAGELoopCoder / IQuestLoopCoder / Llama checkpoint (MODEL.md, "Config").
struct ModelConfig {
    std::string modelType;              // "sageloopcoder", "iquestloopcoder", "llama", ...
    std::vector<std::string> architectures;
    int64_t vocabSize = 0;
    int64_t hiddenSize = 0;             // D
    int64_t intermediateSize = 0;       // F (dense SwiGLU)
    int64_t numHiddenLayers = 0;        // N
    int64_t numAttentionHeads = 0;      // H
    int64_t numKeyValueHeads = 0;       // KV
    int64_t headDim = 0;                // hd
    double rmsNormEps = 1e-6;
    double ropeTheta = 10000.0;
    RopeScaling ropeScaling;
    int64_t maxPositionEmbeddings = 2048;
    bool tieWordEmbeddings = false;
    bool attentionBias = false;
    bool mlpBias = false;
    int64_t loopNum = 1;
    int64_t loopWindowSize = 64;        // W
    std::optional<int64_t> bosTokenId;
    std::vector<int64_t> eosTokenIds;
    std::string torchDtype;

    // Mixture-of-experts extension (numExperts == 0 => dense everywhere).
    int64_t numExperts = 0;
    int64_t numExpertsPerTok = 0;
    int64_t moeIntermediateSize = 0;
    bool normTopkProb = false;
    int64_t sharedExpertIntermediateSize = 0;
    int64_t decoderSparseStep = 1;
    std::vector<int64_t> mlpOnlyLayers;

    // Multi-context-head extension: designated [layer, head] pairs (empty when the key is absent).
    std::vector<std::pair<int64_t, int64_t>> mchHeads;
    bool hasMchKey = false;

    // Reads and validates config.json in `modelDir`. Throws SageError naming the file and field.
    static ModelConfig load(const std::filesystem::path& modelDir);
    // `source` names the file in error messages.
    static ModelConfig fromJson(const nlohmann::json& j, const std::string& source);

    bool isMoeLayer(int64_t layer) const;
    int64_t queryGroupSize() const { return numAttentionHeads / numKeyValueHeads; }
    std::string architectureName() const;
    // Every tensor a checkpoint of this config must hold, in a fixed order (MODEL.md, "Tensors").
    std::vector<TensorSpec> tensorSpecs() const;
    // Parameter count implied by the config (all experts counted).
    int64_t parameterCount() const;
};

// generation_config.json (optional). Values override config.json's token ids where present.
struct GenerationConfig {
    std::optional<int64_t> bosTokenId;
    std::vector<int64_t> eosTokenIds;
    std::optional<double> temperature;
    std::optional<double> topP;
    std::optional<int64_t> topK;
    std::optional<double> repetitionPenalty;
    std::optional<int64_t> maxNewTokens;
    std::optional<bool> doSample;

    static GenerationConfig load(const std::filesystem::path& modelDir); // absent file => empty
};

} // namespace sage
