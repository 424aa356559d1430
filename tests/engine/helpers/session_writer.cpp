// A process for the crash-safety test (tst_crashsafety) to SIGKILL: it writes session files through the
// same code as the CLI and the workbench, forever, until it is killed.
//   session_writer save FILE       SessionFile::save of versions (r, 1 + r % 4) for r = 1, 2, ...
//   session_writer autosave FILE   per round r, an Autosaver (every step) over a trace growing to 4 steps
// It prints "ready" once the first save has started, so the test's kill delays count from real work.
#include "../CrashSessions.h"

#include "engine/capture/Autosaver.h"

#include <cstdio>
#include <string>

using namespace sage;

int main(int argc, char** argv)
{
    if (argc != 3) {
        std::fprintf(stderr, "usage: session_writer save|autosave FILE\n");
        return 2;
    }
    const std::string mode = argv[1];
    const std::filesystem::path file = argv[2];
    std::puts("ready");
    std::fflush(stdout);
    for (int64_t round = 1;; ++round) {
        if (mode == "save") {
            Trace t;
            crashtest::fill(t, round, 1 + round % 4);
            SessionFile::save(file, crashtest::meta(round), t);
        } else {
            Trace t;
            Autosaver saver(file, crashtest::meta(round), t, 1, 0);
            for (int64_t p = 0; p < 4; ++p) t.append({crashtest::step(round, p)});
            if (!saver.lastError().empty()) {
                std::fprintf(stderr, "%s\n", saver.lastError().c_str());
                return 1;
            }
        }
    }
}
