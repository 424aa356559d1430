#pragma once

#include "app/workbench/WorkbenchTypes.h"
#include "viz/StepRecord.h"

#include <QObject>

#include <atomic>
#include <memory>
#include <mutex>

namespace sage {

class Model;
class Trace;
namespace cpu {
class ThreadPool;
}

// Owns the engine on its own thread: the loaded Model, the CPU thread pool and one InferenceSession per
// generation. The GUI calls the slots through queued invocations and hears back through queued signals;
// every request carries a job id that comes back with its results, so the GUI drops results of jobs it has
// moved past. No signal crosses the thread more than ~30 times a second: generated steps are batched.
//
// Errors never escape: a SageError (or any exception) becomes loadFailed / generationFailed with the
// message as the engine wrote it. A failed load keeps the previously loaded model.
class EngineWorker : public QObject
{
    Q_OBJECT

public:
    // Steps are held back at most this long before they are posted (30 batches a second).
    static constexpr int kBatchIntervalMs = 33;

    explicit EngineWorker(QObject* parent = nullptr);
    ~EngineWorker() override;

    // Thread-safe (called from the GUI thread while a job runs): cancels job `job` and every job queued
    // before it. The engine observes the flag between layers.
    void requestCancel(quint64 job);
    // Thread-safe: the loaded model (null before a load), shared so that other threads (exact attention
    // recomputes) can use it while this worker generates or loads another one.
    std::shared_ptr<const Model> sharedModel() const;

public slots:
    void loadModel(quint64 job, const QString& folder, int threads);
    void generate(quint64 job, const sage::GenerationJob& request);
    // Threads of the CPU pool (0 = all cores); takes effect for the next job.
    void setThreads(int threads);
    void unloadModel();

signals:
    void loadProgress(quint64 job, int percent, const QString& stage);
    void modelLoaded(quint64 job, const sage::ModelSummary& summary);
    void loadFailed(quint64 job, const QString& folder, const QString& message);
    void generationStarted(quint64 job, const QList<sage::PromptToken>& prompt, int vocabSize);
    // The job captures into `trace` (sent right after generationStarted; the trace then grows while it runs).
    void traceStarted(quint64 job, std::shared_ptr<const sage::Trace> trace);
    // Steps [first, first + steps.size()) of the job's run.
    void stepsAppended(quint64 job, int first, const QList<sage::GeneratedStep>& steps);
    void generationFinished(quint64 job, const sage::GenerationStats& stats);
    void generationFailed(quint64 job, const QString& message);

private:
    ModelSummary summarize(const Model& model) const;
    void ensurePool();

    std::shared_ptr<Model> m_model;
    mutable std::mutex m_modelMutex; // guards m_model's pointer for sharedModel()
    std::unique_ptr<cpu::ThreadPool> m_pool;
    int m_threads = 0;
    std::atomic<bool> m_cancel{false};
    std::atomic<quint64> m_cancelUpTo{0};
};

} // namespace sage

Q_DECLARE_METATYPE(std::shared_ptr<const sage::Trace>)
