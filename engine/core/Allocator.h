#pragma once

#include <string>

namespace sage {

// The allocator this process runs on, for benchmark reports and the CLI's version line: "jemalloc 5.3.0
// (transparent huge pages: always)" when the program links jemalloc (CMake option SAGE_JEMALLOC, the default),
// otherwise "C library malloc".
//
// Why it matters: a live trace grows by kilobytes per decode step and the KV cache by a row per layer, all in
// fresh memory. With 4 KiB pages every new page is a page fault, which costs ~0.2 us on bare metal but 10-15 us
// on some virtual machines, where that alone added ~6% to a decode step of the bundled model with the standard
// capture preset. jemalloc with transparent huge pages (engine/core/MallocConf.cpp) faults once per 2 MiB.
std::string allocatorDescription();

} // namespace sage
