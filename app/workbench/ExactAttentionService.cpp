#include "app/workbench/ExactAttentionService.h"

#include "engine/core/SageError.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/model/Model.h"

#include <QRunnable>

#include <new>

namespace sage {

ExactAttentionService::ExactAttentionService(QObject* parent) : ExactAttentionSource(parent)
{
    qRegisterMetaType<std::shared_ptr<const sage::HeadStreams>>();
    m_jobs.setMaxThreadCount(1);
}

ExactAttentionService::~ExactAttentionService()
{
    for (auto& [ticket, flag] : m_cancel) flag->store(true);
    m_jobs.clear();
    m_jobs.waitForDone();
}

void ExactAttentionService::setModel(std::shared_ptr<const Model> model, int threads)
{
    for (auto& [ticket, flag] : m_cancel) flag->store(true);
    m_model = std::move(model);
    if (threads != m_threads) {
        m_threads = threads;
        m_jobs.waitForDone(); // the pool is rebuilt by the next job; none may be using it
        m_pool.reset();
    }
}

quint64 ExactAttentionService::request(const std::vector<int32_t>& tokens, int loop, int layer,
                                       const std::vector<int32_t>& heads)
{
    if (!m_model) return 0;
    const quint64 ticket = ++m_next;
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    m_cancel[ticket] = cancel;
    m_jobs.start(QRunnable::create([this, ticket, cancel, model = m_model, tokens, loop, layer, heads] {
        auto post = [this](auto fn) { QMetaObject::invokeMethod(this, fn, Qt::QueuedConnection); };
        try {
            if (cancel->load()) throw CancelledError();
            if (!m_pool) m_pool = std::make_shared<cpu::ThreadPool>(m_threads);
            int last = -1;
            auto progress = [&](int64_t done, int64_t total) {
                const int percent = total > 0 ? int(100 * done / total) : 0;
                if (percent == last) return;
                last = percent;
                post([this, ticket, percent] { emit this->progress(ticket, percent); });
            };
            auto result = std::make_shared<const HeadStreams>(
                recomputeHeadStreams(*model, *m_pool, tokens, loop, layer, heads, cancel.get(), progress));
            post([this, ticket, result] {
                m_cancel.erase(ticket);
                emit finished(ticket, result);
            });
        } catch (const CancelledError&) {
            post([this, ticket] {
                m_cancel.erase(ticket);
                emit failed(ticket, QStringLiteral("cancelled"));
            });
        } catch (const std::bad_alloc&) {
            post([this, ticket] {
                m_cancel.erase(ticket);
                emit failed(ticket, tr("out of memory while recomputing attention; choose one head instead of the "
                                       "mean or a shorter sequence"));
            });
        } catch (const std::exception& e) {
            const QString message = QString::fromStdString(e.what());
            post([this, ticket, message] {
                m_cancel.erase(ticket);
                emit failed(ticket, message);
            });
        }
    }));
    return ticket;
}

void ExactAttentionService::cancel(quint64 ticket)
{
    const auto it = m_cancel.find(ticket);
    if (it != m_cancel.end()) it->second->store(true);
}

} // namespace sage
