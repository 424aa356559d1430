#include "engine/capture/Trace.h"

#include "engine/core/SageError.h"

namespace sage {

void Trace::setInfo(TraceInfo info)
{
    std::lock_guard lock(m_mutex);
    m_info = std::move(info);
}

void Trace::setOrigin(int64_t position)
{
    std::lock_guard lock(m_mutex);
    if (!m_steps.empty()) throw SageError("trace: the origin can only be set while the trace is empty");
    m_origin = position;
}

int64_t Trace::size() const
{
    std::lock_guard lock(m_mutex);
    return int64_t(m_steps.size());
}

Trace::StepPtr Trace::step(int64_t i) const
{
    std::lock_guard lock(m_mutex);
    return i >= 0 && i < int64_t(m_steps.size()) ? m_steps[size_t(i)] : nullptr;
}

std::vector<Trace::StepPtr> Trace::snapshot() const
{
    std::lock_guard lock(m_mutex);
    return m_steps;
}

std::vector<int32_t> Trace::tokens() const
{
    std::lock_guard lock(m_mutex);
    std::vector<int32_t> t;
    t.reserve(m_steps.size());
    for (const StepPtr& s : m_steps) t.push_back(s->token);
    return t;
}

uint64_t Trace::bytes() const
{
    std::lock_guard lock(m_mutex);
    return m_bytes;
}

uint64_t Trace::recordBytes(const StepRecord& s)
{
    auto vec = [](const auto& v) { return uint64_t(v.capacity() * sizeof(v[0])); };
    uint64_t b = sizeof(StepRecord) + s.choice.alternatives.capacity() * sizeof(s.choice.alternatives[0]) +
                 vec(s.logits) + s.layers.capacity() * sizeof(LayerRecord) + s.lens.capacity() * sizeof(LensRecord);
    for (const LayerRecord& r : s.layers) {
        b += vec(r.gate) + vec(r.normGlobal) + vec(r.normLocal) + vec(r.divergence) + vec(r.routerProbs) +
             vec(r.experts) + vec(r.expertWeights) + vec(r.topKeys) + vec(r.topProbs) + vec(r.restMass) +
             vec(r.entropy) + r.fullRows.capacity() * sizeof(FullAttentionRow);
        for (const FullAttentionRow& f : r.fullRows) b += vec(f.probs);
    }
    for (const LensRecord& l : s.lens) b += vec(l.tokens) + vec(l.probs);
    return b;
}

void Trace::append(std::vector<StepPtr> steps)
{
    if (steps.empty()) return;
    int64_t a = 0, b = 0;
    uint64_t added = 0;
    for (const StepPtr& s : steps) added += recordBytes(*s);
    {
        std::lock_guard lock(m_mutex);
        a = int64_t(m_steps.size());
        for (size_t k = 0; k < steps.size(); ++k)
            if (steps[k]->position != m_origin + a + int64_t(k))
                throw SageError("trace: appended step has position " + std::to_string(steps[k]->position) +
                                ", expected " + std::to_string(m_origin + a + int64_t(k)) +
                                "; a trace records one run without gaps");
        m_steps.insert(m_steps.end(), steps.begin(), steps.end());
        m_bytes += added;
        b = int64_t(m_steps.size());
    }
    std::lock_guard lock(m_listenerMutex);
    for (auto& [id, l] : m_listeners) l(a, b);
}

void Trace::clear()
{
    std::lock_guard lock(m_mutex);
    m_steps.clear();
    m_bytes = 0;
}

int Trace::addListener(Listener listener) const
{
    std::lock_guard lock(m_listenerMutex);
    const int id = m_nextListener++;
    m_listeners.emplace(id, std::move(listener));
    return id;
}

void Trace::removeListener(int id) const
{
    std::lock_guard lock(m_listenerMutex);
    m_listeners.erase(id);
}

} // namespace sage
