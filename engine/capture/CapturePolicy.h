#pragma once

#include "engine/capture/CaptureKind.h"

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sage {

struct ModelConfig;

enum class CapturePreset { Summary, Standard, Full };

// Estimated trace bytes (see CapturePolicy::estimate).
struct CaptureEstimate {
    uint64_t bytesPerToken = 0; // average over a sequence of `tokens` positions
    uint64_t totalBytes = 0;    // for the whole sequence
    uint64_t kvCacheBytes = 0;  // the session's KV caches at that length (f32, loop-1 K/V + loop rings)
};

// What a capture keeps: which kinds, loops, layers, heads and streams; which heads keep full attention rows
// (the others keep their top-k entries, the remaining mass and the entropy); and a memory budget.
//
// Presets (docs/capture.md has the bytes per token):
//   summary:  gates, stream norms and divergence, chosen experts, residual norms, logit lens after each loop;
//             no attention rows (recompute them on demand).
//   standard: summary + full router softmax + top-k summaries of every head's rows + full rows of mch_heads
//             while a row has at most 256 keys (longer rows of those heads keep the top-k summary; the exact
//             map is recomputed on demand), so the trace stays within 2x the KV cache at 4k context.
//   full:     everything: full rows of every head and stream, final logits of every position.
// Selections (loops, layers, heads) are empty = all. Loops are 1-based, layers and heads 0-based.
class CapturePolicy
{
public:
    CapturePolicy() = default;
    static CapturePolicy preset(CapturePreset preset, const ModelConfig& config);
    // "summary" | "standard" | "full"; throws SageError naming the valid names otherwise.
    static CapturePolicy fromName(const std::string& name, const ModelConfig& config);

    std::string name() const { return m_name; }
    void setName(const std::string& name) { m_name = name; }

    uint32_t kinds() const { return m_kinds; }
    void setKinds(uint32_t kinds) { m_kinds = kinds; }

    void selectLoops(std::set<int64_t> loops) { m_loops = std::move(loops); }
    void selectLayers(std::set<int64_t> layers) { m_layers = std::move(layers); }
    void selectHeads(std::set<int64_t> heads) { m_heads = std::move(heads); }
    void selectStreams(uint32_t streamBits) { m_streams = streamBits; }
    const std::set<int64_t>& loops() const { return m_loops; }
    const std::set<int64_t>& layers() const { return m_layers; }
    const std::set<int64_t>& heads() const { return m_heads; }
    uint32_t streams() const { return m_streams; }

    // Heads with full attention rows: every selected head, or the listed (layer, head) pairs.
    void setFullRowsForAllHeads(bool all) { m_fullAll = all; }
    void setFullHeads(std::set<std::pair<int64_t, int64_t>> heads) { m_fullHeads = std::move(heads); }
    bool fullRowsForAllHeads() const { return m_fullAll; }
    const std::set<std::pair<int64_t, int64_t>>& fullHeads() const { return m_fullHeads; }

    // Full rows are kept only while they have at most this many keys (0: no limit); longer rows of full-row
    // heads fall back to the top-k summary. Bounds the O(T^2) growth of full rows on long contexts.
    void setFullRowMaxKeys(int64_t keys) { m_fullRowMaxKeys = keys; }
    int64_t fullRowMaxKeys() const { return m_fullRowMaxKeys; }
    bool keepsFullRow(int64_t keys) const { return m_fullRowMaxKeys <= 0 || keys <= m_fullRowMaxKeys; }

    // Entries kept per attention row of a head without full rows (0: rows of those heads are not kept at all).
    void setAttentionTopK(int k) { m_attnTopK = k; }
    int attentionTopK() const { return m_attnTopK; }
    void setLensTopK(int k) { m_lensTopK = k; }
    int lensTopK() const { return m_lensTopK; }

    // 0 = no budget.
    void setMemoryBudget(uint64_t bytes) { m_budget = bytes; }
    uint64_t memoryBudget() const { return m_budget; }

    // --- queries the capture hook answers the forward pass with ------------------------------------------------
    bool loopSelected(int64_t loop) const { return m_loops.empty() || m_loops.count(loop) != 0; }
    bool layerSelected(int64_t layer) const { return m_layers.empty() || m_layers.count(layer) != 0; }
    bool headSelected(int64_t head) const { return m_heads.empty() || m_heads.count(head) != 0; }
    bool fullRows(int64_t layer, int64_t head) const
    {
        return headSelected(head) && (m_fullAll || m_fullHeads.count({layer, head}) != 0);
    }
    // CaptureKind layer bits at (loop, layer) for a model of `config`.
    uint32_t layerKinds(const ModelConfig& config, int64_t loop, int64_t layer) const;
    // StreamBits of head's rows kept at (loop, layer): full or summarised.
    uint32_t headStreams(int64_t loop, int64_t layer, int64_t head) const;

    // Trace bytes for a sequence of `tokens` positions (attention rows grow with the position; the average
    // over positions 0..tokens-1 is reported per token).
    CaptureEstimate estimate(const ModelConfig& config, int64_t tokens) const;
    // Throws SageError when estimate(config, tokens).totalBytes exceeds the budget, naming both numbers and
    // the fixes (a smaller preset, fewer layers/heads, or a larger budget).
    void checkBudget(const ModelConfig& config, int64_t tokens) const;

private:
    std::string m_name = "custom";
    uint32_t m_kinds = 0;
    std::set<int64_t> m_loops, m_layers, m_heads;
    uint32_t m_streams = StreamBits::Both;
    bool m_fullAll = false;
    std::set<std::pair<int64_t, int64_t>> m_fullHeads;
    int m_attnTopK = 0;
    int64_t m_fullRowMaxKeys = 0;
    int m_lensTopK = 5;
    uint64_t m_budget = 0;
};

// What a user narrows a preset to, as text: sage-cli capture's selection options and the workbench's capture
// preferences. An empty field keeps the preset's choice. Index lists are numbers and ranges separated by commas
// ("0,2,5-7"; "all" is the same as empty). Loops are 1-based, layers and heads 0-based (as everywhere else).
struct CaptureSelection {
    std::string loops;
    std::string layers;
    std::string heads;           // query heads
    std::string streams;         // "global", "local" or "both"
    std::string fullHeads;       // heads with full rows: "none", "all" (every selected head) or "layer:head,..."
    int attentionTopK = -1;      // entries kept per summarised row (0 = none); -1 keeps the preset's
    int64_t fullRowMaxKeys = -1; // full rows kept up to this many keys (0 = no limit); -1 keeps the preset's
    bool empty() const;
};
inline constexpr int kMaxAttentionTopK = 64;

// Applies `selection` to `policy` for a model of `config` and appends what it selected to the policy's name
// ("standard (layers 0,2; heads 1-3)"), which the trace and saved sessions carry. Throws SageError naming the
// field, the value and what would be valid (e.g. "layers: 7 is not a layer of this model (0-3)").
void applySelection(CapturePolicy& policy, const CaptureSelection& selection, const ModelConfig& config);
// An index list into numbers within [lo, hi] (empty or "all": the empty set, meaning all). Throws SageError
// starting with `field`; `what` names one item ("layer") in the message.
std::set<int64_t> parseIndexList(const std::string& text, int64_t lo, int64_t hi, const std::string& field,
                                 const std::string& what);
// The inverse, compressed into ranges: {0, 2, 3, 4} -> "0,2-4".
std::string formatIndexList(const std::set<int64_t>& indices);

} // namespace sage
