#pragma once

#include <QElapsedTimer>
#include <QObject>
#include <QTimer>

#include <atomic>
#include <memory>

namespace sage {

class Trace;

// Carries a Trace's "steps [a, b) appended" notifications, which arrive on the generating thread, to this
// object's (GUI) thread: the listener only stores the new end and posts at most one event, and appended()
// is emitted at most every kIntervalMs with the whole range since the last emission.
class TraceWatcher : public QObject
{
    Q_OBJECT

public:
    static constexpr int kIntervalMs = 33;

    explicit TraceWatcher(QObject* parent = nullptr);
    ~TraceWatcher() override;

    // Follows `trace` (null: none). Steps the trace already holds are announced as one appended range.
    void setTrace(std::shared_ptr<const Trace> trace);
    const std::shared_ptr<const Trace>& trace() const { return m_trace; }
    // Steps announced so far.
    qint64 announced() const { return m_announced; }

signals:
    void appended(qint64 first, qint64 last);

private:
    void detach();
    void flush();

    std::shared_ptr<const Trace> m_trace;
    int m_listener = 0;
    // Shared with the listener so that a notification racing with setTrace() touches live memory.
    struct Pending {
        std::atomic<qint64> end{0};
        std::atomic<bool> posted{false};
    };
    std::shared_ptr<Pending> m_pending;
    qint64 m_announced = 0;
    QElapsedTimer m_sinceEmit;
    QTimer m_timer;
};

} // namespace sage
