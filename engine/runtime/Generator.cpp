#include "engine/runtime/Generator.h"

#include "engine/core/SageError.h"
#include "engine/runtime/InferenceSession.h"
#include "engine/tokenizer/StreamDecoder.h"
#include "engine/tokenizer/Tokenizer.h"

#include <algorithm>
#include <chrono>
#include <memory>

namespace sage {

const char* stopReasonName(StopReason r)
{
    switch (r) {
    case StopReason::MaxTokens: return "max_tokens";
    case StopReason::EndOfSequence: return "eos";
    case StopReason::StopString: return "stop_string";
    case StopReason::Cancelled: return "cancelled";
    case StopReason::ContextFull: return "context_full";
    }
    return "?";
}

std::vector<int32_t> GenerationResult::tokens() const
{
    std::vector<int32_t> out;
    out.reserve(steps.size());
    for (const TokenChoice& c : steps) out.push_back(c.token);
    return out;
}

namespace {

// Length of the longest suffix of `text` that is a proper prefix of some stop string: that much text
// must be held back because the next token may complete a stop string.
size_t heldBackLength(const std::string& text, const std::vector<std::string>& stops)
{
    size_t hold = 0;
    for (const std::string& s : stops)
        for (size_t len = std::min(s.size() - 1, text.size()); len > hold; --len)
            if (text.compare(text.size() - len, len, s, 0, len) == 0) {
                hold = len;
                break;
            }
    return hold;
}

} // namespace

GenerationResult generate(InferenceSession& session, const Tokenizer* tokenizer, const GenerationRequest& req,
                          const StepCallback& onStep, const std::atomic<bool>* cancel)
{
    using Clock = std::chrono::steady_clock;
    GenerationResult result;
    result.promptTokens = int64_t(req.prompt.size());
    if (req.prompt.empty()) throw SageError("the prompt is empty; give a prompt text or token ids");
    if (!req.stopStrings.empty() && !tokenizer)
        throw SageError("stop strings need a tokenizer, and this model folder has no tokenizer.model");
    for (const std::string& s : req.stopStrings)
        if (s.empty()) throw SageError("a stop string must not be empty");
    if (session.position() + int64_t(req.prompt.size()) > session.maxContext())
        throw SageError("the prompt has " + std::to_string(req.prompt.size()) + " tokens but the context holds " +
                        std::to_string(session.maxContext() - session.position()) + "; shorten the prompt");

    Sampler sampler(req.sampling);
    std::unique_ptr<StreamDecoder> decoder = tokenizer ? std::make_unique<StreamDecoder>(*tokenizer) : nullptr;
    std::string pending; // decoded text not yet handed out (possible stop-string prefix)
    std::vector<float> logits;

    try {
        const auto t0 = Clock::now();
        session.forward(req.prompt, false, logits, cancel);
        result.prefillSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
        const auto t1 = Clock::now();

        for (int64_t step = 0; step < req.maxNewTokens; ++step) {
            if (cancel && cancel->load()) {
                result.reason = StopReason::Cancelled;
                break;
            }
            const TokenChoice choice = sampler.sample(logits, session.tokens(), req.topAlternatives);
            result.steps.push_back(choice);
            const bool isEos = std::find(req.eosTokenIds.begin(), req.eosTokenIds.end(), choice.token) !=
                               req.eosTokenIds.end();
            std::string delta;
            bool stopHit = false;
            if (decoder && !isEos) {
                pending += decoder->push(choice.token);
                if (!req.stopStrings.empty()) {
                    size_t cut = std::string::npos;
                    for (const std::string& s : req.stopStrings) cut = std::min(cut, pending.find(s));
                    if (cut != std::string::npos) {
                        pending.resize(cut);
                        stopHit = true;
                    }
                }
                const size_t hold = stopHit ? 0 : heldBackLength(pending, req.stopStrings);
                delta = pending.substr(0, pending.size() - hold);
                pending.erase(0, pending.size() - hold);
                result.text += delta;
            }
            if (onStep) onStep(step, choice, delta);
            if (isEos) {
                result.reason = StopReason::EndOfSequence;
                break;
            }
            if (stopHit) {
                result.reason = StopReason::StopString;
                break;
            }
            if (step + 1 == req.maxNewTokens) break;
            if (session.position() + 1 > session.maxContext()) {
                result.reason = StopReason::ContextFull;
                break;
            }
            const int32_t tok = choice.token;
            session.forward(std::span<const int32_t>(&tok, 1), false, logits, cancel);
        }
        result.decodeSeconds = std::chrono::duration<double>(Clock::now() - t1).count();
    } catch (const CancelledError&) {
        result.reason = StopReason::Cancelled;
    }
    if (decoder && result.reason != StopReason::StopString) {
        std::string tail = pending + decoder->flush();
        result.text += tail;
        if (onStep && !tail.empty() && !result.steps.empty())
            onStep(int64_t(result.steps.size()) - 1, result.steps.back(), tail);
    }
    return result;
}

} // namespace sage
