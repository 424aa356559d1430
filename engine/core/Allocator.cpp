#include "engine/core/Allocator.h"

#include <cstddef>

// jemalloc's control interface; null when the program runs on the C library's malloc (weak reference).
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen) __attribute__((weak));

namespace sage {

std::string allocatorDescription()
{
    if (!mallctl) return "C library malloc";
    const char* version = nullptr;
    const char* thp = nullptr;
    size_t len = sizeof(const char*);
    std::string out = "jemalloc";
    if (mallctl("version", &version, &len, nullptr, 0) == 0 && version) out += std::string(" ") + version;
    len = sizeof(const char*);
    if (mallctl("opt.thp", &thp, &len, nullptr, 0) == 0 && thp)
        out += std::string(" (transparent huge pages: ") + thp + ")";
    return out;
}

} // namespace sage
