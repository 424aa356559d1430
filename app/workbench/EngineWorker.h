#pragma once

#include "app/workbench/WorkbenchTypes.h"
#include "viz/StepRecord.h"

#include <QObject>

#include "engine/capture/SessionFile.h"
#include "engine/runtime/Sampler.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sage {

class Model;
class Trace;
struct IrReport;
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
    // Inverse Reasoning over the last finished run (generated or opened): the sweep, decision points, branches
    // and faithfulness (docs/ir.md). Cancel with requestCancel(job).
    void explain(quint64 job, const sage::ExplainSettings& settings);
    // Saves the last run (its trace must have been captured) and `report` (may be null) as a session file.
    void saveSession(quint64 job, const QString& path, std::shared_ptr<const sage::IrReport> report);
    // Opens a session file as the current run: emits generationStarted, traceStarted, stepsAppended and
    // generationFinished for `job` like a generation, then irLoaded when the session holds IR results.
    void openSession(quint64 job, const QString& path);

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
    // stage: "generate", "sweep", "branches", "report"; fraction within the stage, at most ~30 times a second.
    void explainProgress(quint64 job, const QString& stage, double fraction);
    void explainFinished(quint64 job, std::shared_ptr<const sage::IrReport> report);
    void explainFailed(quint64 job, const QString& message);
    void sessionSaved(quint64 job, const QString& path);
    void sessionFailed(quint64 job, const QString& message);
    // An opened session's IR results, or a warning about it (empty report pointer with a message).
    void irLoaded(quint64 job, std::shared_ptr<const sage::IrReport> report);
    void sessionWarning(quint64 job, const QString& message);

private:
    ModelSummary summarize(const Model& model) const;
    void ensurePool();

    std::shared_ptr<Model> m_model;
    mutable std::mutex m_modelMutex; // guards m_model's pointer for sharedModel()
    std::unique_ptr<cpu::ThreadPool> m_pool;
    int m_threads = 0;
    void beginJob(quint64 job);
    // The metadata of a session file of the loaded model's run.
    SessionMeta runMeta(const std::vector<int32_t>& prompt, const std::string& promptText,
                        const SamplingParams& sampling, int64_t maxNewTokens, const std::string& policy) const;

    // The last finished run, what Explain and Save Session work on.
    struct LastRun {
        bool valid = false;
        std::vector<int32_t> prompt;
        std::string promptText;
        SamplingParams sampling;
        int64_t maxNewTokens = 0;
        std::vector<TokenChoice> steps;
        std::string stopReason;
        std::string policy;
        std::shared_ptr<Trace> trace; // null when capture was off
    };
    LastRun m_last;

    std::atomic<bool> m_cancel{false};
    std::atomic<quint64> m_cancelUpTo{0};
};

} // namespace sage

Q_DECLARE_METATYPE(std::shared_ptr<const sage::Trace>)
Q_DECLARE_METATYPE(std::shared_ptr<const sage::IrReport>)
