#pragma once

#include "engine/ir/IrConfig.h"
#include "engine/ir/IrReport.h"
#include "engine/runtime/Sampler.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sage {

class Model;
namespace cpu {
class ThreadPool;
}

struct IrRequest {
    std::vector<int32_t> prompt; // token ids (encode the text with the model's tokenizer first)
    std::string promptText;      // recorded in the report; empty when the prompt was given as ids
    int64_t maxNewTokens = 64;
    SamplingParams sampling; // includes the seed
};

// stage: "generate", "sweep", "branches", "report"; fraction in [0, 1] within the stage.
using IrProgress = std::function<void(const std::string& stage, double fraction)>;

// The single entry point: generates from the prompt, runs the IR sweep over the final sequence, finds the
// decision points and their tree, runs the counterfactual branches and the faithfulness flips, and writes the
// explanations. Runs on the calling thread (call it off the GUI thread); progress is called on it too.
// Throws SageError for bad input (empty prompt, sequence over the memory budget) and CancelledError when
// *cancel becomes true.
IrReport runInverseReasoning(const Model& model, cpu::ThreadPool& pool, const IrRequest& request,
                             const IrConfig& config, const IrProgress& progress = {},
                             const std::atomic<bool>* cancel = nullptr);

// The same after generation: `steps` are the generated tokens' choices (TokenChoice with alternatives), e.g.
// from a captured run; stopReason as stopReasonName() writes it.
IrReport analyseGeneration(const Model& model, cpu::ThreadPool& pool, const IrRequest& request,
                           const std::vector<TokenChoice>& steps, const std::string& stopReason, const IrConfig& config,
                           const IrProgress& progress = {}, const std::atomic<bool>* cancel = nullptr);

} // namespace sage
