#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace sage {

// How much memory this process can still use, for refusing work up front instead of being killed by the
// OS: MemAvailable from /proc/meminfo, lowered to the cgroup (v2) limit's headroom when a container sets
// one. The environment variable SAGE_AVAILABLE_MEMORY (bytes) overrides the detection (tests, or to
// leave room for other programs). `source` says where the figure came from, for messages.
struct AvailableMemory {
    uint64_t bytes = 0;
    std::string source;
};
// nullopt when nothing can be read (not Linux): callers then skip their check.
std::optional<AvailableMemory> availableMemory();
// What is left of availableMemory() once `usedBytes` (e.g. a model's mapped weights) are in memory: at least 1
// byte, so that a budget derived from it refuses everything rather than meaning "no budget". nullopt as above.
std::optional<AvailableMemory> memoryLeftAfter(uint64_t usedBytes);

// "1.50 GiB"
std::string formatByteSize(double bytes);

} // namespace sage
