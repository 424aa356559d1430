#pragma once

// A hand-built trace with known routing and MCH statistics, shared by the routing and MCH view tests.
//
// 5 positions, 2 layers, 3 heads, 2 loops, 4 experts, top-2.
//   Routing, loop 1: position i, layer l chooses a = (i + 3l) % 4 (weight 0.6), then b = (a + 1) % 4 (0.3);
//   the router softmax is 0.6 / 0.3 / 0.05 / 0.05.
//   Loop 2: layer 0 keeps the set (position 2 lists it in the other order); layer 1 moves even positions to
//   {(a + 2) % 4, (a + 3) % 4} and keeps odd ones.
//   MCH (loop 2 only): gate[h] = 0.1 (h + 1) + 0.01 i, divergence[h] = 0.2 h + 0.05 l,
//   normGlobal[h] = 1 + h, normLocal[h] = 0.5 (h + 1).

#include "engine/capture/Trace.h"

#include <memory>
#include <vector>

namespace sage::test {

inline constexpr int kPositions = 5, kLayers = 2, kHeads = 3, kExperts = 4;

inline TraceInfo syntheticInfo()
{
    TraceInfo info;
    info.layers = kLayers;
    info.heads = kHeads;
    info.kvHeads = kHeads;
    info.headDim = 4;
    info.hiddenSize = 12;
    info.vocabSize = 32;
    info.loops = 2;
    info.window = 4;
    info.experts = kExperts;
    info.expertsPerTok = 2;
    info.policy = "standard";
    return info;
}

inline std::shared_ptr<StepRecord> syntheticStep(int i)
{
    auto s = std::make_shared<StepRecord>();
    s->position = i;
    s->token = 10 + i;
    s->generated = i >= 2;
    for (int loop = 1; loop <= 2; ++loop)
        for (int l = 0; l < kLayers; ++l) {
            LayerRecord r;
            r.loop = int16_t(loop);
            r.layer = int16_t(l);
            int a = (i + 3 * l) % 4, b = (a + 1) % 4;
            if (loop == 2 && l == 1 && i % 2 == 0) {
                a = (a + 2) % 4;
                b = (a + 1) % 4;
            }
            r.experts = {a, b};
            if (loop == 2 && l == 0 && i == 2) r.experts = {b, a};
            r.expertWeights = {0.6f, 0.3f};
            r.routerProbs.assign(kExperts, 0.05f);
            r.routerProbs[size_t(r.experts[0])] = 0.6f;
            r.routerProbs[size_t(r.experts[1])] = 0.3f;
            if (loop == 2)
                for (int h = 0; h < kHeads; ++h) {
                    r.gate.push_back(0.1f * float(h + 1) + 0.01f * float(i));
                    r.divergence.push_back(0.2f * float(h) + 0.05f * float(l));
                    r.normGlobal.push_back(1.0f + float(h));
                    r.normLocal.push_back(0.5f * float(h + 1));
                }
            s->layers.push_back(std::move(r));
        }
    return s;
}

inline void appendSynthetic(Trace& trace, int first, int last)
{
    std::vector<Trace::StepPtr> steps;
    for (int i = first; i < last; ++i) steps.push_back(syntheticStep(i));
    trace.append(std::move(steps));
}

inline std::shared_ptr<Trace> syntheticTrace(int positions = kPositions)
{
    auto trace = std::make_shared<Trace>(syntheticInfo());
    appendSynthetic(*trace, 0, positions);
    return trace;
}

} // namespace sage::test
