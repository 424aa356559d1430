#pragma once

// The sessions the crash-safety test and its writer process (helpers/session_writer.cpp) agree on: version
// (round, steps) is fully determined by its two numbers, so the test can rebuild the exact bytes of any
// version it finds on disk. Each step carries V = 200000 logits ([V] floats, 800 KB), so one save writes
// megabytes and a kill often lands inside it.
#include "engine/capture/SessionFile.h"
#include "engine/capture/Trace.h"

#include <memory>
#include <string>

namespace sage::crashtest {

constexpr int64_t kLogits = 200000;

inline SessionMeta meta(int64_t round)
{
    SessionMeta m;
    m.prompt = {int32_t(round % 1000), 7};
    m.promptText = "round " + std::to_string(round);
    m.policy = "summary";
    m.sampling.seed = uint64_t(round);
    return m;
}

inline Trace::StepPtr step(int64_t round, int64_t position)
{
    auto s = std::make_shared<StepRecord>();
    s->position = position;
    s->token = int32_t(position + 1);
    s->logits.resize(size_t(kLogits)); // [V]
    for (int64_t v = 0; v < kLogits; ++v)
        s->logits[size_t(v)] = float(round) + float(position) * 0.5f + float(v) * 1e-6f;
    return s;
}

inline void fill(Trace& trace, int64_t round, int64_t steps)
{
    std::vector<Trace::StepPtr> all;
    for (int64_t p = 0; p < steps; ++p) all.push_back(step(round, p));
    trace.append(std::move(all));
}

// The bytes SessionFile::save writes for version (round, steps).
inline std::string bytes(int64_t round, int64_t steps)
{
    Trace t;
    fill(t, round, steps);
    return SessionFile::serialize(meta(round), t);
}

} // namespace sage::crashtest
