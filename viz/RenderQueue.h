#pragma once

#include <QObject>
#include <QThreadPool>

#include <atomic>
#include <functional>
#include <memory>

namespace sage {

// Runs the image builds of one view off the GUI thread, newest request first: submitting a job supersedes
// every earlier one (a queued job is dropped before it starts, a running one sees its `stale` predicate turn
// true and may stop early), and only the newest job's result is delivered, on the queue's thread. The
// destructor cancels and waits for the running job, so a job may use the view's shared data until it returns.
class RenderQueue : public QObject
{
    Q_OBJECT

public:
    using Stale = std::function<bool()>;
    // Runs on a pool thread; returns what to do with the result on the GUI thread (may be empty).
    using Work = std::function<std::function<void()>(const Stale& stale)>;

    explicit RenderQueue(QObject* parent = nullptr);
    ~RenderQueue() override;

    quint64 submit(Work work);
    // Supersedes every job without starting a new one.
    void cancelAll();
    // True while the newest job has not delivered.
    bool isBusy() const { return m_delivered != m_latest; }
    quint64 latestJob() const { return m_latest; }

signals:
    // The newest job delivered (or was cancelled): nothing is pending.
    void idle();

private:
    void finish(quint64 job, const std::function<void()>& deliver);

    QThreadPool m_pool;
    std::shared_ptr<std::atomic<quint64>> m_newest; // read by the jobs
    quint64 m_latest = 0;                           // GUI thread
    quint64 m_delivered = 0;                        // GUI thread
};

} // namespace sage
