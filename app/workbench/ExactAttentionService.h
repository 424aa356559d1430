#pragma once

#include "viz/ExactAttentionSource.h"

#include <QThreadPool>

#include <atomic>
#include <map>
#include <memory>

namespace sage {

class Model;
namespace cpu {
class ThreadPool;
}

// Exact attention maps for the views: each request runs recomputeHeadStreams (one teacher-forced pass that
// stops after the requested layer) on this service's own thread with its own CPU pool, so it never waits for
// and never blocks the EngineWorker. The model is shared with the worker (read-only).
class ExactAttentionService : public ExactAttentionSource
{
    Q_OBJECT

public:
    explicit ExactAttentionService(QObject* parent = nullptr);
    ~ExactAttentionService() override;

    // The model to replay with (null: none; requests then return 0). threads: CPU threads, 0 = all cores.
    void setModel(std::shared_ptr<const Model> model, int threads);

    quint64 request(const std::vector<int32_t>& tokens, int loop, int layer,
                    const std::vector<int32_t>& heads) override;
    void cancel(quint64 ticket) override;

private:
    QThreadPool m_jobs;
    std::shared_ptr<const Model> m_model;
    int m_threads = 0;
    quint64 m_next = 0;
    std::map<quint64, std::shared_ptr<std::atomic<bool>>> m_cancel; // running or queued requests
    std::shared_ptr<cpu::ThreadPool> m_pool;                        // used by the job thread only
};

} // namespace sage
