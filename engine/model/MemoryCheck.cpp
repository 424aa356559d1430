#include "engine/model/MemoryCheck.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string_view>

namespace sage {

namespace {

std::optional<uint64_t> parseUnsigned(std::string_view s)
{
    uint64_t v = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr == s.data()) return std::nullopt;
    return v;
}

std::optional<uint64_t> readFirstNumber(const char* path)
{
    std::ifstream in(path);
    std::string text;
    if (!(in >> text)) return std::nullopt;
    return parseUnsigned(text);
}

} // namespace

std::optional<AvailableMemory> memoryLeftAfter(uint64_t usedBytes)
{
    std::optional<AvailableMemory> m = availableMemory();
    if (m) m->bytes = std::max<uint64_t>(1, m->bytes > usedBytes ? m->bytes - usedBytes : 0);
    return m;
}

std::optional<AvailableMemory> availableMemory()
{
    if (const char* env = std::getenv("SAGE_AVAILABLE_MEMORY"); env && *env) {
        if (const auto v = parseUnsigned(env)) return AvailableMemory{*v, "SAGE_AVAILABLE_MEMORY"};
    }
    std::optional<AvailableMemory> out;
    std::ifstream meminfo("/proc/meminfo");
    std::string line;
    while (std::getline(meminfo, line)) {
        if (line.rfind("MemAvailable:", 0) != 0) continue;
        std::istringstream fields(line.substr(13));
        uint64_t kib = 0;
        if (fields >> kib) out = AvailableMemory{kib * 1024, "MemAvailable in /proc/meminfo"};
        break;
    }
    // cgroup v2: memory.max is "max" (no limit) or bytes; the headroom is max - current.
    const auto limit = readFirstNumber("/sys/fs/cgroup/memory.max");
    const auto current = readFirstNumber("/sys/fs/cgroup/memory.current");
    if (limit && current) {
        const uint64_t headroom = *limit > *current ? *limit - *current : 0;
        if (!out || headroom < out->bytes) out = AvailableMemory{headroom, "the cgroup memory limit (memory.max)"};
    }
    return out;
}

std::string formatByteSize(double b)
{
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        ++u;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
    return buf;
}

} // namespace sage
