#include "viz/RunDocument.h"

#include "viz/TraceWatcher.h"

namespace sage {

RunDocument::RunDocument(QObject* parent) : QObject(parent), m_traceWatcher(new TraceWatcher(this))
{
    connect(m_traceWatcher, &TraceWatcher::appended, this, &RunDocument::traceAppended);
}

RunDocument::~RunDocument() = default;

void RunDocument::beginRun(const QList<PromptToken>& prompt, int vocabSize)
{
    m_prompt = prompt;
    m_steps.clear();
    m_vocabSize = vocabSize;
    m_stopReason.clear();
    m_text.clear();
    m_state = State::Running;
    const bool hadTrace = m_trace != nullptr;
    m_trace.reset();
    m_traceWatcher->setTrace(nullptr);
    emit runStarted();
    if (hadTrace) emit traceChanged();
}

void RunDocument::appendSteps(const QList<GeneratedStep>& steps)
{
    if (steps.isEmpty()) return;
    const int first = stepCount();
    m_steps.append(steps);
    emit stepsAppended(first, stepCount());
}

void RunDocument::finishRun(const QString& stopReason, const QString& text)
{
    m_stopReason = stopReason;
    m_text = text;
    m_state = State::Finished;
    emit runFinished();
}

void RunDocument::clear()
{
    m_prompt.clear();
    m_steps.clear();
    m_vocabSize = 0;
    m_stopReason.clear();
    m_text.clear();
    m_state = State::Empty;
    m_trace.reset();
    m_traceWatcher->setTrace(nullptr);
    emit cleared();
}

QList<int32_t> RunDocument::generatedTokens() const
{
    QList<int32_t> out;
    out.reserve(m_steps.size());
    for (const GeneratedStep& s : m_steps) out.append(s.token);
    return out;
}

void RunDocument::setTrace(std::shared_ptr<const Trace> trace)
{
    m_trace = std::move(trace);
    m_traceWatcher->setTrace(m_trace);
    emit traceChanged();
}

qint64 RunDocument::traceStepCount() const
{
    return m_traceWatcher->announced();
}

} // namespace sage
