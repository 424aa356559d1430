#include "engine/cpu/CpuFeatures.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>

// Run-time ISA selection. One binary runs on every x86-64 CPU: the AVX2 / AVX-512 kernels live in
// *Avx2.cpp / *Avx512.cpp (compiled with those flags) and are only called after the checks below.
//
// Environment: SAGE_MAX_ISA=scalar|avx2|avx512 caps the instruction set the kernels use (it never raises
// it above what the CPU supports). Use it to reproduce a result of a machine without AVX-512, or to rule
// a vector kernel in or out while debugging. An unknown value is reported on stderr and ignored.

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace sage::cpu {

CpuFeatures CpuFeatures::detect()
{
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    // libgcc's cpu model also checks XGETBV, so a feature reads as present only when the OS saves the
    // matching register state.
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    // clang 14 does not know "f16c" in __builtin_cpu_supports: read CPUID.1:ECX bit 29 and rely on the AVX
    // check above for the OS saving YMM state (F16C converts in YMM registers).
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    f.f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) && __builtin_cpu_supports("avx");
    f.avx512f = __builtin_cpu_supports("avx512f");
    f.avx512bw = __builtin_cpu_supports("avx512bw");
    f.avx512vl = __builtin_cpu_supports("avx512vl");
    f.avx512dq = __builtin_cpu_supports("avx512dq");
#endif
    return f;
}

Isa CpuFeatures::bestIsa() const
{
    const bool hasAvx2 = avx2 && fma && f16c;
    if (hasAvx2 && avx512f && avx512bw && avx512vl && avx512dq) return Isa::Avx512;
    if (hasAvx2) return Isa::Avx2;
    return Isa::Scalar;
}

std::optional<Isa> parseIsaName(std::string_view name)
{
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (lower == "scalar") return Isa::Scalar;
    if (lower == "avx2") return Isa::Avx2;
    if (lower == "avx512") return Isa::Avx512;
    return std::nullopt;
}

namespace {

Isa isaFromEnvironment(Isa detected)
{
    const char* value = std::getenv("SAGE_MAX_ISA");
    if (!value || !*value) return detected;
    const std::optional<Isa> cap = parseIsaName(value);
    if (!cap) {
        std::fprintf(stderr,
                     "SAGE_MAX_ISA=%s is not a known instruction set; expected scalar, avx2 or avx512. "
                     "Using %s.\n",
                     value, isaName(detected));
        return detected;
    }
    return std::min(*cap, detected);
}

struct IsaState {
    Isa detected;
    std::atomic<Isa> active;
    IsaState() : detected(CpuFeatures::detect().bestIsa()), active(isaFromEnvironment(detected)) {}
};

IsaState& isaState()
{
    static IsaState state; // thread-safe lazy init: kernels may be called during static initialisation
    return state;
}

} // namespace

const char* isaName(Isa isa)
{
    switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    }
    return "?";
}

Isa detectedIsa()
{
    return isaState().detected;
}

Isa activeIsa()
{
    return isaState().active.load(std::memory_order_relaxed);
}

void setMaxIsa(Isa isa)
{
    IsaState& s = isaState();
    s.active.store(std::min(isa, s.detected), std::memory_order_relaxed);
}

} // namespace sage::cpu
