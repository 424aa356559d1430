#pragma once

#include "engine/runtime/Generator.h"

namespace sage {

class TraceRecorder;

// generate() with `recorder` installed on the session: every prompt position and every sampled token becomes
// a trace step (sampled ones with their TokenChoice). The last sampled token, which generate() itself never
// feeds back, is run through the model too (when the run was not cancelled and the context has room), so the
// trace covers every token of the final sequence. The hook is removed again before returning.
GenerationResult captureGenerate(InferenceSession& session, const Tokenizer* tokenizer,
                                 const GenerationRequest& request, TraceRecorder& recorder,
                                 const StepCallback& onStep = {}, const std::atomic<bool>* cancel = nullptr);

} // namespace sage
