#include "viz/RenderQueue.h"

#include <QRunnable>

#include <limits>

namespace sage {

RenderQueue::RenderQueue(QObject* parent) : QObject(parent), m_newest(std::make_shared<std::atomic<quint64>>(0))
{
    // One thread: a view never needs two images at once, and superseded jobs must not compete with the newest.
    m_pool.setMaxThreadCount(1);
    m_pool.setObjectName(QStringLiteral("render"));
}

RenderQueue::~RenderQueue()
{
    m_newest->store(std::numeric_limits<quint64>::max());
    m_pool.clear();
    m_pool.waitForDone();
}

quint64 RenderQueue::submit(Work work)
{
    const quint64 job = ++m_latest;
    m_newest->store(job);
    m_pool.clear(); // queued jobs that never started
    std::shared_ptr<std::atomic<quint64>> newest = m_newest;
    m_pool.start(QRunnable::create([this, job, newest, work = std::move(work)] {
        const Stale stale = [newest, job] { return newest->load(std::memory_order_relaxed) != job; };
        std::function<void()> deliver;
        if (!stale()) deliver = work(stale);
        if (stale()) deliver = nullptr;
        // `this` outlives the job (the destructor waits), and a queued call to a deleted object is dropped.
        QMetaObject::invokeMethod(
            this, [this, job, deliver] { finish(job, deliver); }, Qt::QueuedConnection);
    }));
    return job;
}

void RenderQueue::cancelAll()
{
    m_newest->store(++m_latest);
    m_pool.clear();
    m_delivered = m_latest;
    emit idle();
}

void RenderQueue::finish(quint64 job, const std::function<void()>& deliver)
{
    if (job != m_latest) return;
    m_delivered = job;
    if (deliver) deliver();
    emit idle();
}

} // namespace sage
