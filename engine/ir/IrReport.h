#pragma once

#include "engine/ir/IrConfig.h"
#include "engine/runtime/Sampler.h"

#include <cstdint>
#include <string>
#include <vector>

namespace sage {

// The result of an Inverse Reasoning run: everything the reports (JSON, Markdown, HTML, PDF), the session file
// and the workbench show. Positions are indices into the final sequence (prompt first); a generated token at
// position t was predicted from the row of position t - 1. docs/ir.md defines every number.

struct IrToken {
    int32_t id = -1;
    std::string text; // the token's piece as shown token by token
    bool generated = false;
    float probability = 0.0f; // generated tokens: p of the token under its step's distribution
    float entropy = 0.0f;     // nats
    float margin = 0.0f;      // p(top1) - p(top2)
    bool operator==(const IrToken&) const = default;
};

struct IrAlternative {
    int32_t token = -1;
    std::string text;
    float probability = 0.0f;
    bool operator==(const IrAlternative&) const = default;
};

// A source position and the relevance it receives from the decision point's row.
struct IrSource {
    int64_t position = 0;
    int32_t token = -1;
    std::string text;
    float relevance = 0.0f;
    bool operator==(const IrSource&) const = default;
};

// The share of a decision's carried relevance that went through one (loop, layer[, head, stream]).
// head = -1 for a whole layer; stream is "global", "local" or "" (the whole layer).
struct IrCarrier {
    int64_t loop = 1;
    int64_t layer = 0;
    int64_t head = -1;
    std::string stream;
    float share = 0.0f;
    bool operator==(const IrCarrier&) const = default;
};

struct IrExpertShare {
    int64_t loop = 1;
    int64_t layer = 0;
    int64_t expert = 0;
    float share = 0.0f;
    bool operator==(const IrExpertShare&) const = default;
};

// The model's prediction for the step after one loop (logit lens; the last loop is the final output).
struct IrLoopPrediction {
    int64_t loop = 1;
    std::vector<IrAlternative> top;
    bool operator==(const IrLoopPrediction&) const = default;
};

struct IrEvidence {
    std::vector<IrSource> sources;                 // highest relevance first
    std::vector<float> loopShares;                 // [loops] carried relevance per loop, sums to 1
    float globalShare = 0.0f;                      // loops >= 2: carried relevance through the global stream ...
    float localShare = 0.0f;                       // ... and the local stream (globalShare + localShare = 1 when any)
    std::vector<IrCarrier> layers;                 // top (loop, layer), highest share first
    std::vector<IrCarrier> heads;                  // top (loop, layer, head, stream), highest share first
    std::vector<IrExpertShare> experts;            // top (loop, layer, expert) by relevance-weighted routing weight
    std::vector<IrLoopPrediction> loopPredictions; // one per loop, loop 1 first
    bool operator==(const IrEvidence&) const = default;
};

struct IrBranch {
    int32_t forcedToken = -1;
    std::string forcedText;
    float forcedProbability = 0.0f;
    std::vector<int32_t> tokens;    // the forced token, then the greedy continuation
    std::string text;               // decoded tokens
    std::string originalText;       // the original continuation from the decision point, same token count
    int64_t divergesAtChar = 0;     // first byte where text and originalText differ
    int64_t rejoinsAt = -1;         // branch token index where it rejoins the original continuation, -1: never
    int64_t rejoinsOriginalAt = -1; // ... and the matching index in the original continuation
    float changed = 0.0f;           // fraction of the compared continuation tokens (after the forced one) that differ
    bool operator==(const IrBranch&) const = default;
};

struct IrDecisionPoint {
    int64_t id = 0;       // index in IrReport::decisionPoints
    int64_t position = 0; // sequence position of the chosen token
    int64_t step = 0;     // generated-token index (position - promptLength)
    int32_t token = -1;
    std::string text;
    float probability = 0.0f;
    float entropy = 0.0f;
    float margin = 0.0f;
    float influence = 0.0f;    // highest relevance lift a later token gives this position
    int64_t influencedBy = -1; // the later position with that lift
    float score = 0.0f;        // ranking: influence * (1 - margin)
    int64_t parent = -1;       // id of the parent decision point, -1 for a root
    float parentLift = 0.0f;
    std::vector<IrAlternative> alternatives; // runner-ups, most probable first (the chosen token excluded)
    IrEvidence evidence;
    std::vector<IrBranch> branches;
    std::string explanation;
    bool operator==(const IrDecisionPoint&) const = default;
};

struct IrFaithfulness {
    int64_t flips = 0;           // decision-point flips (and as many random flips)
    float decisionChange = 0.0f; // mean changed fraction after flipping decision points
    float randomChange = 0.0f;   // mean changed fraction after flipping random non-decision tokens
    float score = 0.0f;          // decisionChange - randomChange
    std::vector<int64_t> randomPositions;
    bool operator==(const IrFaithfulness&) const = default;
};

struct IrRunInfo {
    std::string modelName; // the model folder's name
    std::string architecture;
    std::string configHash; // ModelIdentity
    std::string weightHash;
    std::string promptText; // empty when the prompt was given as ids
    std::vector<int32_t> promptTokens;
    SamplingParams sampling;
    int64_t maxNewTokens = 0;
    std::string stopReason;
    std::string engineVersion;
    std::string date; // ISO 8601 UTC, when the run finished
    double generateSeconds = 0, sweepSeconds = 0, branchSeconds = 0;
    bool operator==(const IrRunInfo& o) const;
};

struct IrReport {
    static constexpr int kSchemaVersion = 1;

    IrRunInfo run;
    IrConfig config;
    int64_t loops = 1, layers = 0, heads = 0;
    std::vector<IrToken> tokens; // the final sequence
    int64_t promptLength = 0;
    std::string generatedText; // the generated tokens decoded together
    // [G, T] with G = tokens.size() - promptLength and T = tokens.size(): row g is the relevance of generated
    // token promptLength + g over positions 0 .. promptLength + g - 1 (zero from its own position on).
    std::vector<float> relevance;
    std::vector<IrDecisionPoint> decisionPoints; // in sequence order; parents precede children
    IrFaithfulness faithfulness;

    int64_t generatedCount() const { return int64_t(tokens.size()) - promptLength; }
    float relevanceAt(int64_t generatedIndex, int64_t position) const
    {
        return relevance[size_t(generatedIndex * int64_t(tokens.size()) + position)];
    }
    bool operator==(const IrReport&) const = default;
};

inline bool IrRunInfo::operator==(const IrRunInfo& o) const
{
    const SamplingParams &a = sampling, &b = o.sampling;
    return modelName == o.modelName && architecture == o.architecture && configHash == o.configHash &&
           weightHash == o.weightHash && promptText == o.promptText && promptTokens == o.promptTokens &&
           a.temperature == b.temperature && a.topK == b.topK && a.topP == b.topP && a.minP == b.minP &&
           a.repetitionPenalty == b.repetitionPenalty && a.seed == b.seed && maxNewTokens == o.maxNewTokens &&
           stopReason == o.stopReason && engineVersion == o.engineVersion && date == o.date &&
           generateSeconds == o.generateSeconds && sweepSeconds == o.sweepSeconds && branchSeconds == o.branchSeconds;
}

} // namespace sage
