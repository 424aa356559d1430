#pragma once

#include <QElapsedTimer>
#include <QObject>
#include <QPointer>
#include <QTimer>

#include <atomic>
#include <memory>
#include <vector>

namespace sage {

class RunDocument;
class Trace;
struct StepRecord;
struct TraceInfo;

// The GUI-thread side of a Trace for the trace views (routing, MCH streams). It follows a RunDocument's trace
// (or one set directly), listens to the trace's appends, which arrive on the generating thread, and folds
// them into at most ~30 stepsAppended() signals a second on the GUI thread. Models keep no copy of the
// records: step(i) hands out the trace's immutable records, held here as a prefix that only grows.
//
// Step i is sequence position origin() + i (the StepSelection's unit).
class TraceFeed : public QObject
{
    Q_OBJECT

public:
    explicit TraceFeed(QObject* parent = nullptr);
    ~TraceFeed() override;

    // Follows document->trace() (traceChanged) from now on; nullptr detaches.
    void setDocument(RunDocument* document);
    // Shows `trace` (nullptr: nothing). Emits traceReset(), then stepsAppended() for the steps it already has.
    void setTrace(std::shared_ptr<const Trace> trace);
    std::shared_ptr<const Trace> trace() const { return m_trace; }

    bool hasTrace() const { return m_trace != nullptr; }
    // The model shape of the trace (an empty TraceInfo without one).
    const TraceInfo& info() const;
    qint64 origin() const { return m_origin; }
    // Steps delivered so far (stepsAppended has announced [0, stepCount())).
    qint64 stepCount() const { return qint64(m_steps.size()); }
    const StepRecord& step(qint64 i) const { return *m_steps[size_t(i)]; }
    // The step at a sequence position, or nullptr outside the delivered prefix.
    const StepRecord* stepAtPosition(qint64 position) const;

    // Delivers every step published so far now, without waiting for the next batch.
    void flush();

signals:
    // The trace was replaced or cleared: drop everything (stepCount() is 0 again).
    void traceReset();
    // Steps [first, last) were delivered.
    void stepsAppended(qint64 first, qint64 last);

private:
    void onAppendedFromAnyThread();
    void scheduleFlush();
    void detachListener();

    QPointer<RunDocument> m_document;
    QMetaObject::Connection m_documentConnection;
    std::shared_ptr<const Trace> m_trace;
    int m_listenerId = 0;
    qint64 m_origin = 0;
    std::vector<std::shared_ptr<const StepRecord>> m_steps; // [delivered steps]
    std::atomic<bool> m_flushPosted{false};
    QTimer m_timer; // the deferred batch when the previous one was less than a frame ago
    QElapsedTimer m_sinceFlush;
};

} // namespace sage
