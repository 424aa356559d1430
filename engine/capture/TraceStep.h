#pragma once

#include "engine/runtime/Sampler.h"

#include <cstdint>
#include <limits>
#include <vector>

namespace sage {

// The record types of a Trace (engine/capture/Trace.h). One StepRecord per sequence position, holding what
// the capture policy kept for that position's query row in every loop and layer.

// A full attention row: probabilities over keys firstKey .. firstKey + probs.size() - 1.
struct FullAttentionRow {
    int16_t head = 0;
    uint8_t stream = 0; // AttentionStream
    int32_t firstKey = 0;
    std::vector<float> probs; // [count]
};

// Everything kept for one (loop, layer) of one position. Arrays are empty when their kind was not captured.
struct LayerRecord {
    int16_t loop = 0; // 1-based
    int16_t layer = 0;
    float residualNorm = std::numeric_limits<float>::quiet_NaN(); // ||h|| after the layer
    std::vector<float> gate;                                      // [H] loop gate g (loops >= 2)
    std::vector<float> normGlobal;                                // [H] ||o_proj_h(g * A)||
    std::vector<float> normLocal;                                 // [H] ||o_proj_h((1 - g) * B)||
    std::vector<float> divergence;                                // [H] 1 - cos(A, B)
    std::vector<float> routerProbs;                               // [E] full softmax (MoE layers)
    std::vector<int32_t> experts;                                 // [K] chosen experts, most probable first
    std::vector<float> expertWeights;                             // [K] as applied (renormalised when norm_topk_prob)
    // Attention summaries, slot = head * streams + stream (streams = 1 in loop 1, else 2); k = topK.
    int16_t streams = 0;
    int16_t topK = 0;
    std::vector<int32_t> topKeys;           // [H * streams, k] key positions, most probable first; -1 = none
    std::vector<float> topProbs;            // [H * streams, k]
    std::vector<float> restMass;            // [H * streams] 1 - sum of the kept entries; NaN when not captured
    std::vector<float> entropy;             // [H * streams] nats, of the whole row; NaN when not captured
    std::vector<FullAttentionRow> fullRows; // heads with full rows
};

// Logit lens: lm_head(final_norm(h)) of the residual after `layer` of `loop` (layer -1: after the loop).
struct LensRecord {
    int16_t loop = 0;
    int16_t layer = -1;
    float kl = 0;                // KL(final || lens) in nats
    std::vector<int32_t> tokens; // [k] most probable first
    std::vector<float> probs;    // [k]
};

struct StepRecord {
    int64_t position = 0;
    int32_t token = -1;
    // True when the token was sampled: `choice` then describes the distribution it was drawn from (the logits
    // of the previous position). Prompt positions have generated = false.
    bool generated = false;
    TokenChoice choice;
    std::vector<LayerRecord> layers; // in forward order: loop-major, then layer
    std::vector<LensRecord> lens;
    std::vector<float> logits; // [V] final logits of this position (CaptureKind::Logits)

    const LayerRecord* layer(int64_t loop, int64_t layerIndex) const
    {
        for (const LayerRecord& r : layers)
            if (r.loop == loop && r.layer == layerIndex) return &r;
        return nullptr;
    }
    const FullAttentionRow* fullRow(int64_t loop, int64_t layerIndex, int64_t head, uint8_t stream) const
    {
        const LayerRecord* r = layer(loop, layerIndex);
        if (!r) return nullptr;
        for (const FullAttentionRow& f : r->fullRows)
            if (f.head == head && f.stream == stream) return &f;
        return nullptr;
    }
};

} // namespace sage
