#pragma once

#include "engine/runtime/Sampler.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sage {

class InferenceSession;
class Tokenizer;

struct GenerationRequest {
    std::vector<int32_t> prompt;        // appended to the session (prefill) before the first sampled token
    int64_t maxNewTokens = 64;
    SamplingParams sampling;
    std::vector<int64_t> eosTokenIds;   // generation stops after any of them
    std::vector<std::string> stopStrings; // generation stops when the text contains one (needs a tokenizer)
    int topAlternatives = 5;            // alternatives recorded per step
};

enum class StopReason { MaxTokens, EndOfSequence, StopString, Cancelled, ContextFull };
const char* stopReasonName(StopReason r);

struct GenerationResult {
    std::vector<TokenChoice> steps; // one per generated token
    std::string text;               // generated text, cut before a matched stop string
    StopReason reason = StopReason::MaxTokens;
    int64_t promptTokens = 0;
    double prefillSeconds = 0;
    double decodeSeconds = 0;

    std::vector<int32_t> tokens() const;
};

// Called on the generating thread after each token: the step index, the choice, and the text that became
// final with this token (possibly empty: incomplete UTF-8 or a possible stop-string prefix is held back).
// Text still held back when generation ends is passed in one more call for the last step.
using StepCallback = std::function<void(int64_t step, const TokenChoice& choice, const std::string& textDelta)>;

// Runs prefill then decode on `session`. Cancellation (*cancel set from any thread) is observed between
// layers, so it takes effect within one layer's time; the result then holds the steps completed so far.
GenerationResult generate(InferenceSession& session, const Tokenizer* tokenizer, const GenerationRequest& request,
                          const StepCallback& onStep = {}, const std::atomic<bool>* cancel = nullptr);

} // namespace sage
