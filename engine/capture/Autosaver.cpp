#include "engine/capture/Autosaver.h"

#include "engine/capture/Trace.h"
#include "engine/core/SageError.h"

#include <exception>
#include <new>

namespace sage {

Autosaver::Autosaver(std::filesystem::path path, SessionMeta meta, Trace& trace, int64_t everySteps,
                     double everySeconds)
    : m_path(std::move(path)), m_meta(std::move(meta)), m_trace(trace), m_everySteps(everySteps),
      m_everySeconds(everySeconds), m_lastSave(std::chrono::steady_clock::now())
{
    m_listener = m_trace.addListener([this](int64_t, int64_t end) { onAppended(end); });
}

Autosaver::~Autosaver()
{
    m_trace.removeListener(m_listener);
    std::lock_guard lock(m_mutex);
    if (m_trace.size() != m_savedSteps) saveLocked();
}

void Autosaver::onAppended(int64_t end)
{
    std::lock_guard lock(m_mutex);
    const double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - m_lastSave).count();
    const int64_t base = std::max<int64_t>(m_savedSteps, 0);
    if ((m_everySteps > 0 && end - base >= m_everySteps) || (m_everySeconds > 0 && since >= m_everySeconds))
        saveLocked();
}

void Autosaver::flush()
{
    std::lock_guard lock(m_mutex);
    saveLocked();
}

void Autosaver::saveLocked()
{
    try {
        const int64_t n = m_trace.size();
        SessionFile::save(m_path, m_meta, m_trace);
        m_savedSteps = n;
        ++m_saves;
        m_error.clear();
    } catch (const SageError& e) {
        m_error = e.what();
    } catch (const std::bad_alloc&) {
        // Never out of a listener or the destructor: generation goes on, and the error is reported.
        m_error = m_path.string() + ": out of memory while autosaving; save the session once memory is free";
    } catch (const std::exception& e) {
        m_error = m_path.string() + ": autosave failed (" + e.what() + ")";
    }
    m_lastSave = std::chrono::steady_clock::now();
}

int64_t Autosaver::saves() const
{
    std::lock_guard lock(m_mutex);
    return m_saves;
}

std::string Autosaver::lastError() const
{
    std::lock_guard lock(m_mutex);
    return m_error;
}

} // namespace sage
