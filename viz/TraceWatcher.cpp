#include "viz/TraceWatcher.h"

#include "engine/capture/Trace.h"

namespace sage {

TraceWatcher::TraceWatcher(QObject* parent) : QObject(parent)
{
    m_timer.setSingleShot(true);
    connect(&m_timer, &QTimer::timeout, this, &TraceWatcher::flush);
}

TraceWatcher::~TraceWatcher()
{
    detach();
}

void TraceWatcher::detach()
{
    // removeListener returns only once no notification is running, so nothing touches `this` afterwards.
    if (m_trace && m_listener) m_trace->removeListener(m_listener);
    m_listener = 0;
    m_trace.reset();
    m_pending.reset();
    m_timer.stop();
}

void TraceWatcher::setTrace(std::shared_ptr<const Trace> trace)
{
    detach();
    m_announced = 0;
    m_trace = std::move(trace);
    if (!m_trace) return;
    auto pending = std::make_shared<Pending>();
    m_pending = pending;
    m_listener = m_trace->addListener([this, pending](int64_t, int64_t end) {
        pending->end.store(end);
        if (!pending->posted.exchange(true))
            QMetaObject::invokeMethod(this, &TraceWatcher::flush, Qt::QueuedConnection);
    });
    pending->end.store(m_trace->size());
    m_sinceEmit.invalidate();
    if (pending->end.load() > 0) {
        pending->posted = true;
        QMetaObject::invokeMethod(this, &TraceWatcher::flush, Qt::QueuedConnection);
    }
}

void TraceWatcher::flush()
{
    if (!m_pending) return;
    m_pending->posted = false;
    if (m_sinceEmit.isValid() && m_sinceEmit.elapsed() < kIntervalMs) {
        if (!m_timer.isActive()) m_timer.start(int(kIntervalMs - m_sinceEmit.elapsed()));
        return;
    }
    const qint64 end = m_pending->end.load();
    if (end <= m_announced) return;
    const qint64 first = m_announced;
    m_announced = end;
    m_sinceEmit.start();
    emit appended(first, end);
}

} // namespace sage
