#pragma once
// A hand-built trace for the attention view tests: 2 loops, 2 layers, 2 heads, T positions (tokens 10 + p,
// prompt for p < 2). In every layer:
//   head 0 keeps full rows: loop 1 global = one-hot on key 0; loop 2 global = one-hot on key p (the diagonal),
//           loop 2 local = uniform over keys max(0, p - 1) .. p.
//   head 1 keeps only its top-1 entry: key p with probability 0.6 (rest mass 0.4) in every stream.
//   gates (loop 2): head 0 = 0.25, head 1 = 0.75 (layer 1: 0.5 and 0.5).
//   lens top-1: after loop 1 token 100 + p (p 0.5); after loop 2 token 100 + p for even p, 200 + p for odd p.
#include "engine/capture/Trace.h"

#include <cmath>
#include <memory>

namespace synthetic {

inline constexpr int kHeads = 2;
inline constexpr int kLayers = 2;

inline sage::TraceInfo info()
{
    sage::TraceInfo i;
    i.layers = kLayers;
    i.heads = kHeads;
    i.kvHeads = 1;
    i.loops = 2;
    i.window = 2;
    i.policy = "standard";
    i.attentionTopK = 1;
    i.lensTopK = 1;
    return i;
}

inline std::shared_ptr<const sage::StepRecord> step(int p, bool withAttention = true)
{
    auto s = std::make_shared<sage::StepRecord>();
    s->position = p;
    s->token = 10 + p;
    s->generated = p >= 2;
    for (int loop = 1; loop <= 2; ++loop)
        for (int layer = 0; layer < kLayers; ++layer) {
            sage::LayerRecord r;
            r.loop = int16_t(loop);
            r.layer = int16_t(layer);
            const int S = loop == 1 ? 1 : 2;
            if (loop == 2) r.gate = layer == 0 ? std::vector<float>{0.25f, 0.75f} : std::vector<float>{0.5f, 0.5f};
            if (withAttention) {
                r.streams = int16_t(S);
                r.topK = 1;
                r.topKeys.assign(size_t(kHeads * S), p);
                r.topProbs.assign(size_t(kHeads * S), 0.6f);
                r.restMass.assign(size_t(kHeads * S), 0.4f);
                r.entropy.assign(size_t(kHeads * S), 1.0f);
                sage::FullAttentionRow g;
                g.head = 0;
                g.stream = 0;
                g.firstKey = 0;
                g.probs.assign(size_t(p + 1), 0.0f);
                g.probs[loop == 1 ? 0 : size_t(p)] = 1.0f;
                r.fullRows.push_back(g);
                if (loop == 2) {
                    sage::FullAttentionRow l;
                    l.head = 0;
                    l.stream = 1;
                    l.firstKey = std::max(0, p - 1);
                    l.probs.assign(size_t(p - l.firstKey + 1), 1.0f / float(p - l.firstKey + 1));
                    r.fullRows.push_back(l);
                }
            }
            s->layers.push_back(std::move(r));
        }
    for (int loop = 1; loop <= 2; ++loop) {
        sage::LensRecord l;
        l.loop = int16_t(loop);
        l.layer = -1;
        l.kl = loop == 1 ? 0.125f : 0.0f;
        l.tokens = {loop == 1 || p % 2 == 0 ? 100 + p : 200 + p};
        l.probs = {0.5f};
        s->lens.push_back(std::move(l));
    }
    return s;
}

inline std::vector<sage::Trace::StepPtr> steps(int from, int to, bool withAttention = true)
{
    std::vector<sage::Trace::StepPtr> v;
    for (int p = from; p < to; ++p) v.push_back(step(p, withAttention));
    return v;
}

inline std::shared_ptr<sage::Trace> trace(int T, bool withAttention = true)
{
    auto t = std::make_shared<sage::Trace>(info());
    t->append(steps(0, T, withAttention));
    return t;
}

} // namespace synthetic
