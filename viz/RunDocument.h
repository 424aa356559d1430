#pragma once

#include "viz/StepRecord.h"

#include <QList>
#include <QObject>
#include <QString>

#include <memory>

namespace sage {

class Trace; // engine/capture: per-step captured intermediates (attached when capture is enabled)
class TraceWatcher;

// The run every view shows: the prompt, the generated steps and, once capture exists, the trace.
// Lives on the GUI thread and only grows while a run is in progress; the worker's batches arrive through
// appendSteps(), and every model adapts it incrementally through stepsAppended().
//
// Positions are sequence positions: [0, promptLength()) are prompt tokens, position promptLength() + s is
// generated step s. Views select positions (StepSelection) so that later views (attention rows, routing)
// can address prompt tokens too.
class RunDocument : public QObject
{
    Q_OBJECT

public:
    enum class State { Empty, Running, Finished };
    Q_ENUM(State)

    explicit RunDocument(QObject* parent = nullptr);
    ~RunDocument() override;

    // Starts a new run: forgets the previous one. vocabSize scales entropy colours (log V is the maximum).
    void beginRun(const QList<PromptToken>& prompt, int vocabSize);
    // Appends generated steps (in order) and emits stepsAppended(first, last) with last exclusive.
    void appendSteps(const QList<GeneratedStep>& steps);
    // Marks the run complete; stopReason is the engine's name ("max_tokens", "eos", "cancelled", ...).
    void finishRun(const QString& stopReason, const QString& text);
    void clear();

    State state() const { return m_state; }
    int promptLength() const { return int(m_prompt.size()); }
    int stepCount() const { return int(m_steps.size()); }
    int positionCount() const { return promptLength() + stepCount(); }
    int vocabSize() const { return m_vocabSize; }
    const PromptToken& promptToken(int i) const { return m_prompt[i]; }
    const GeneratedStep& step(int s) const { return m_steps[s]; }
    const QList<PromptToken>& prompt() const { return m_prompt; }
    const QList<GeneratedStep>& steps() const { return m_steps; }
    QList<int32_t> generatedTokens() const;
    QString stopReason() const { return m_stopReason; }
    QString generatedText() const { return m_text; }

    // The captured trace of this run (null until capture is enabled); views built on it follow traceChanged.
    std::shared_ptr<const Trace> trace() const { return m_trace; }
    void setTrace(std::shared_ptr<const Trace> trace);
    // Trace steps announced through traceAppended so far (views read trace()->step(i) for i below it).
    qint64 traceStepCount() const;

signals:
    void runStarted();
    void stepsAppended(int first, int last); // generated-step indices [first, last)
    void runFinished();
    void cleared();
    void traceChanged();
    // Trace steps [first, last) were appended (batched on the GUI thread, at most ~30 times a second; the
    // steps already in a trace when it is set arrive as one range).
    void traceAppended(qint64 first, qint64 last);

private:
    State m_state = State::Empty;
    QList<PromptToken> m_prompt;
    QList<GeneratedStep> m_steps;
    int m_vocabSize = 0;
    QString m_stopReason;
    QString m_text;
    std::shared_ptr<const Trace> m_trace;
    TraceWatcher* m_traceWatcher = nullptr;
};

} // namespace sage
