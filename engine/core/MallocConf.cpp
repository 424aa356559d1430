// Compiled into each program that links jemalloc (the sage_allocator target in the top-level CMakeLists.txt),
// never into a library: jemalloc reads this symbol from the executable when it starts.
//
// thp:always   back jemalloc's memory with transparent huge pages (madvise), so that growing traces and KV
//              caches fault once per 2 MiB instead of once per 4 KiB (engine/core/Allocator.h says why).
// metadata_thp:auto  the same for jemalloc's own metadata once it is large enough to matter.
// The environment variable MALLOC_CONF still overrides these at run time.
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "thp:always,metadata_thp:auto";
}
