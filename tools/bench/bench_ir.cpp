// sage-bench-ir: the Inverse Reasoning sweep (IrSweep::run: one teacher-forced pass with full attention capture,
// then the backward relevance propagation for every generated token) against one plain teacher-forced pass
// (InferenceSession::forward of the same tokens, logits of every position), on the bundled model.
// The sequence is the first --tokens tokens of a source file of this repository (default 1024), of which the
// first --prompt (default 24) count as the prompt. The timed sweep includes the evidence (per-layer, head, stream
// and expert breakdown and per-loop predictions) of up to 8 decision points, taken as the first contested positions
// (default IrConfig thresholds on the plain pass's distributions). Rounds are interleaved; best of --reps.
// Usage: sage-bench-ir [--model DIR] [--tokens N] [--prompt N] [--threads N] [--reps N] [--json]
#include "engine/core/SageError.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/ir/DecisionPoints.h"
#include "engine/ir/IrConfig.h"
#include "engine/ir/IrSweep.h"
#include "engine/model/Model.h"
#include "engine/runtime/InferenceSession.h"
#include "engine/tokenizer/Tokenizer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

using namespace sage;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv)
{
    std::string modelDir = std::string(SAGE_SOURCE_DIR) + "/resources/models/sage-mini-coder";
    int64_t tokens = 1024, prompt = 24;
    int threads = 2, reps = 3;
    bool json = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "sage-bench-ir: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--model")
            modelDir = next();
        else if (a == "--tokens")
            tokens = std::stoll(next());
        else if (a == "--prompt")
            prompt = std::stoll(next());
        else if (a == "--threads")
            threads = std::stoi(next());
        else if (a == "--reps")
            reps = std::stoi(next());
        else if (a == "--json")
            json = true;
        else {
            std::fprintf(stderr, "usage: sage-bench-ir [--model DIR] [--tokens N] [--prompt N] [--threads N] "
                                 "[--reps N] [--json]\n");
            return 2;
        }
    }
    try {
        auto model = Model::load(modelDir);
        if (!model->tokenizer()) throw SageError(modelDir + ": the benchmark needs a tokenizer.model");
        // Text: this repository's Python reference implementation, repeated if needed.
        std::ifstream in(std::string(SAGE_SOURCE_DIR) + "/tools/reference/sage_ref.py");
        std::stringstream ss;
        ss << in.rdbuf();
        std::vector<int32_t> seq;
        while (int64_t(seq.size()) < tokens) {
            const auto ids = model->tokenizer()->encode(ss.str());
            if (ids.empty()) throw SageError("the benchmark text encodes to no tokens");
            seq.insert(seq.end(), ids.begin(), ids.end());
        }
        seq.resize(size_t(tokens));
        const int64_t V = model->config().vocabSize;
        cpu::ThreadPool pool(threads);

        // Contested positions from the plain pass's distributions (row t - 1 predicts token t): the decision
        // points of a real run are chosen among them, and their evidence costs a backward pass over their rows.
        std::vector<int64_t> candidates;
        {
            InferenceSession s(*model, pool);
            std::vector<float> logits;
            s.forward(seq, true, logits);
            const IrConfig cfg;
            for (int64_t t = prompt; t < tokens; ++t) {
                const auto [h, m] =
                    DecisionPoints::entropyAndMargin(std::span<const float>(logits.data() + (t - 1) * V, size_t(V)));
                if (DecisionPoints::isContested(h, m, cfg)) candidates.push_back(t);
            }
        }

        double bestForward = 1e30, bestSweep = 1e30, bestCapture = 1e30;
        for (int r = 0; r < reps; ++r) {
            {
                InferenceSession s(*model, pool);
                std::vector<float> logits;
                const auto t0 = Clock::now();
                s.forward(seq, true, logits);
                bestForward = std::min(bestForward, std::chrono::duration<double>(Clock::now() - t0).count());
            }
            {
                const auto t0 = Clock::now();
                double captureDone = 0;
                std::function<void(double)> progress = [&](double f) {
                    // IrSweep reports 0.8 when the capture pass is over and the propagation starts.
                    if (f > 0.8 && captureDone == 0)
                        captureDone = std::chrono::duration<double>(Clock::now() - t0).count();
                };
                IrSweep sweep(*model, pool);
                const std::vector<float> rel = sweep.run(seq, prompt, 0, nullptr, progress);
                // The evidence of the decision points (at most IrConfig::maxDecisionPoints) is part of the cost.
                const std::span<const int64_t> points(
                    candidates.data(), std::min<size_t>(candidates.size(), size_t(IrConfig{}.maxDecisionPoints)));
                const auto ev = sweep.evidence(points);
                for (int64_t d : points)
                    for (int64_t l = 1; l <= sweep.loops(); ++l) (void)sweep.loopPrediction(l, d - 1, 3);
                if (rel.empty() || ev.size() != points.size()) throw SageError("the sweep produced no relevance");
                const double total = std::chrono::duration<double>(Clock::now() - t0).count();
                if (total < bestSweep) {
                    bestSweep = total;
                    bestCapture = captureDone;
                }
            }
        }
        const double ratio = bestSweep / bestForward;
        if (json) {
            nlohmann::json j{{"tokens", tokens},
                             {"prompt", prompt},
                             {"contested", candidates.size()},
                             {"threads", threads},
                             {"forward_seconds", bestForward},
                             {"sweep_seconds", bestSweep},
                             {"capture_pass_seconds", bestCapture},
                             {"propagation_seconds", bestSweep - bestCapture},
                             {"ratio", ratio},
                             {"goal", 2.0}};
            std::printf("%s\n", j.dump(2).c_str());
        } else {
            std::printf("IR sweep on %s: %lld tokens (%lld prompt, %zu contested), %d threads, best of %d\n",
                        modelDir.c_str(), (long long)tokens, (long long)prompt, candidates.size(), threads, reps);
            std::printf("  teacher-forced pass      %8.3f s\n", bestForward);
            std::printf("  sweep                    %8.3f s  (capture pass %.3f s + propagation and evidence %.3f s)\n",
                        bestSweep, bestCapture, bestSweep - bestCapture);
            std::printf("  ratio                    %8.2fx  (goal <= 2x)\n", ratio);
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sage-bench-ir: error: %s\n", e.what());
        return 1;
    }
}
