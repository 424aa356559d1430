#include "viz/TraceFeed.h"

#include "engine/capture/Trace.h"
#include "viz/RunDocument.h"

namespace sage {

namespace {
// At most one batch per frame at 30 Hz: a token stream of hundreds of steps a second still repaints smoothly.
constexpr int kBatchIntervalMs = 33;

const TraceInfo& emptyInfo()
{
    static const TraceInfo info;
    return info;
}
} // namespace

TraceFeed::TraceFeed(QObject* parent) : QObject(parent)
{
    m_timer.setSingleShot(true);
    connect(&m_timer, &QTimer::timeout, this, &TraceFeed::flush);
}

TraceFeed::~TraceFeed()
{
    detachListener();
}

void TraceFeed::setDocument(RunDocument* document)
{
    if (m_document == document) return;
    disconnect(m_documentConnection);
    m_document = document;
    if (document) {
        m_documentConnection =
            connect(document, &RunDocument::traceChanged, this, [this] { setTrace(m_document->trace()); });
        setTrace(document->trace());
    } else {
        setTrace(nullptr);
    }
}

const TraceInfo& TraceFeed::info() const
{
    return m_trace ? m_trace->info() : emptyInfo();
}

const StepRecord* TraceFeed::stepAtPosition(qint64 position) const
{
    const qint64 i = position - m_origin;
    return i >= 0 && i < stepCount() ? m_steps[size_t(i)].get() : nullptr;
}

void TraceFeed::detachListener()
{
    // removeListener waits for a listener call in progress on the generating thread, so no call can reach
    // this object after it returns.
    if (m_trace && m_listenerId) const_cast<Trace&>(*m_trace).removeListener(m_listenerId);
    m_listenerId = 0;
}

void TraceFeed::setTrace(std::shared_ptr<const Trace> trace)
{
    detachListener();
    m_timer.stop();
    m_trace = std::move(trace);
    m_steps.clear();
    m_origin = m_trace ? m_trace->origin() : 0;
    emit traceReset();
    if (!m_trace) return;
    // Listeners observe the record without changing it; Trace only offers them on a non-const object.
    m_listenerId = const_cast<Trace&>(*m_trace).addListener([this](int64_t, int64_t) { onAppendedFromAnyThread(); });
    flush();
}

void TraceFeed::onAppendedFromAnyThread()
{
    // One queued call per batch however many appends happen before the GUI thread gets to it.
    if (m_flushPosted.exchange(true)) return;
    QMetaObject::invokeMethod(this, &TraceFeed::scheduleFlush, Qt::QueuedConnection);
}

void TraceFeed::scheduleFlush()
{
    if (m_timer.isActive()) return;
    const qint64 since = m_sinceFlush.isValid() ? m_sinceFlush.elapsed() : kBatchIntervalMs;
    if (since >= kBatchIntervalMs)
        flush();
    else
        m_timer.start(int(kBatchIntervalMs - since));
}

void TraceFeed::flush()
{
    m_timer.stop();
    // Cleared before reading the size: an append after this point posts a new batch.
    m_flushPosted = false;
    m_sinceFlush.start();
    if (!m_trace) return;
    const qint64 size = m_trace->size();
    const qint64 first = stepCount();
    if (size < first) {
        // Trace::clear(): the run was restarted in place.
        m_steps.clear();
        emit traceReset();
        flush();
        return;
    }
    if (size == first) return;
    m_steps.reserve(size_t(size));
    for (qint64 i = first; i < size; ++i) {
        Trace::StepPtr s = m_trace->step(i);
        if (!s) break; // cleared meanwhile: the next batch resets
        m_steps.push_back(std::move(s));
    }
    if (stepCount() > first) emit stepsAppended(first, stepCount());
}

} // namespace sage
