#pragma once

// Shared by the fuzz targets: the engine's readers take paths, so each target writes its input into a
// scratch folder (in /dev/shm when available, so no disk I/O per execution) and opens it from there.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <unistd.h>

namespace sage::fuzz {

// A folder private to this process, created on first use and removed at exit.
inline const std::filesystem::path& scratchDir(const char* name)
{
    static const std::filesystem::path dir = [name] {
        const char* base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : std::getenv("TMPDIR");
        std::filesystem::path d = std::filesystem::path(base ? base : "/tmp") /
                                  ("sage-fuzz-" + std::string(name) + "-" + std::to_string(::getpid()));
        std::filesystem::create_directories(d);
        static const std::filesystem::path toRemove = d;
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(toRemove, ec);
        });
        return d;
    }();
    return dir;
}

inline void writeFile(const std::filesystem::path& path, std::string_view bytes)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
    if (!out) {
        std::fprintf(stderr, "fuzz harness: cannot write %s\n", path.c_str());
        std::abort();
    }
}

inline void writeFile(const std::filesystem::path& path, const uint8_t* data, size_t size)
{
    writeFile(path, std::string_view(reinterpret_cast<const char*>(data), size));
}

// Keeps a computed value alive so that reads made only to let ASan check them are not optimised away.
inline void consume(uint64_t value)
{
    static volatile uint64_t sink;
    sink = sink + value;
}

// A harness invariant broke: report it as a crash so libFuzzer saves the input.
[[noreturn]] inline void invariantFailed(const char* what)
{
    std::fprintf(stderr, "fuzz invariant failed: %s\n", what);
    std::abort();
}

} // namespace sage::fuzz
