#pragma once

#include "engine/capture/TraceStep.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sage {

// The model shape and the policy a trace was captured with.
struct TraceInfo {
    int64_t layers = 0, heads = 0, kvHeads = 0, headDim = 0, hiddenSize = 0, vocabSize = 0;
    int64_t loops = 1, window = 0, experts = 0, expertsPerTok = 0;
    std::string policy;
    int attentionTopK = 0, lensTopK = 0;
};

// The append-only record of one run: one StepRecord per position (prompt positions included).
// A writer (the generating thread) appends whole steps; readers on any thread see a consistent prefix:
// size() and snapshot() only ever show completed steps, and a step never changes once published
// (records are held by shared_ptr<const>). Listeners are told the newly appended range [a, b) on the
// appending thread, after the steps are visible.
class Trace
{
public:
    using Listener = std::function<void(int64_t begin, int64_t end)>;
    using StepPtr = std::shared_ptr<const StepRecord>;

    explicit Trace(TraceInfo info = {}) : m_info(std::move(info)) {}
    Trace(const Trace&) = delete;
    Trace& operator=(const Trace&) = delete;

    const TraceInfo& info() const { return m_info; }
    // Position of step 0: 0 for a run captured from its start; later when capture was switched on mid-run.
    // Only settable while the trace is empty.
    int64_t origin() const { return m_origin; }
    void setOrigin(int64_t position);
    void setInfo(TraceInfo info);

    int64_t size() const;
    // Step i (< size(), position origin() + i), or nullptr past the published prefix.
    StepPtr step(int64_t i) const;
    // The whole published prefix at one instant.
    std::vector<StepPtr> snapshot() const;
    std::vector<int32_t> tokens() const;
    // Approximate bytes held by the published records.
    uint64_t bytes() const;

    // Publishes steps at positions origin() + size() .. + steps.size() - 1 and notifies the listeners.
    // Throws SageError if a step's position does not continue the trace.
    void append(std::vector<StepPtr> steps);
    // Forgets every step (listeners are told nothing; a new run starts).
    void clear();

    // Listening does not change the trace, so readers holding a const Trace may listen too.
    int addListener(Listener listener) const;
    void removeListener(int id) const;

    static uint64_t recordBytes(const StepRecord& s);

private:
    mutable std::mutex m_mutex;
    TraceInfo m_info;
    std::vector<StepPtr> m_steps;
    int64_t m_origin = 0;
    uint64_t m_bytes = 0;
    mutable std::mutex m_listenerMutex;
    mutable std::map<int, Listener> m_listeners;
    mutable int m_nextListener = 1;
};

} // namespace sage
