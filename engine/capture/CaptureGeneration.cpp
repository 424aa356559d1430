#include "engine/capture/CaptureGeneration.h"

#include "engine/capture/TraceRecorder.h"
#include "engine/core/SageError.h"
#include "engine/runtime/InferenceSession.h"

namespace sage {

GenerationResult captureGenerate(InferenceSession& session, const Tokenizer* tokenizer,
                                 const GenerationRequest& request, TraceRecorder& recorder, const StepCallback& onStep,
                                 const std::atomic<bool>* cancel)
{
    struct Uninstall {
        InferenceSession& s;
        CaptureHook* previous;
        ~Uninstall() { s.setCaptureHook(previous); }
    } uninstall{session, session.captureHook()};
    session.setCaptureHook(&recorder);

    int64_t lastStep = -1;
    GenerationResult r = generate(
        session, tokenizer, request,
        [&](int64_t step, const TokenChoice& choice, const std::string& delta) {
            if (step != lastStep) recorder.setNextChoice(choice); // the tail-text call repeats the last step
            lastStep = step;
            if (onStep) onStep(step, choice, delta);
        },
        cancel);
    if (!r.steps.empty() && r.reason != StopReason::Cancelled && session.position() < session.maxContext()) {
        recorder.setNextChoice(r.steps.back());
        const int32_t tok = r.steps.back().token;
        std::vector<float> logits;
        try {
            session.forward(std::span<const int32_t>(&tok, 1), false, logits, cancel);
        } catch (const CancelledError&) {
            r.reason = StopReason::Cancelled;
        }
    }
    recorder.flush(); // the steps still held for their batched logit lens
    return r;
}

} // namespace sage
