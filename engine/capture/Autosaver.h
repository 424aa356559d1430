#pragma once

#include "engine/capture/SessionFile.h"

#include <chrono>
#include <filesystem>
#include <mutex>

namespace sage {

class Trace;

// Saves a running session every `everySteps` appended steps or `everySeconds` seconds (whichever comes first;
// 0 disables that trigger), through SessionFile's atomic path, so a crash loses at most that much. It listens
// to the trace and saves on the appending thread. flush() saves now; the destructor saves what is unsaved.
// Save errors are kept (lastError()) rather than thrown into the generating thread.
class Autosaver
{
public:
    // The schedule sage-cli capture and the workbench use: a crash loses at most this many steps or seconds.
    static constexpr int64_t kDefaultEverySteps = 256;
    static constexpr double kDefaultEverySeconds = 10.0;

    Autosaver(std::filesystem::path path, SessionMeta meta, Trace& trace, int64_t everySteps = kDefaultEverySteps,
              double everySeconds = kDefaultEverySeconds);
    ~Autosaver();
    Autosaver(const Autosaver&) = delete;
    Autosaver& operator=(const Autosaver&) = delete;

    void flush();
    int64_t saves() const;
    std::string lastError() const;

private:
    void onAppended(int64_t end);
    void saveLocked();

    std::filesystem::path m_path;
    SessionMeta m_meta;
    Trace& m_trace;
    int64_t m_everySteps;
    double m_everySeconds;
    int m_listener = 0;
    mutable std::mutex m_mutex;
    int64_t m_savedSteps = -1;
    int64_t m_saves = 0;
    std::string m_error;
    std::chrono::steady_clock::time_point m_lastSave;
};

} // namespace sage
