#pragma once

#include "engine/cpu/Kernels.h"

#include <optional>
#include <string_view>

namespace sage::cpu {

// The x86 vector extensions the kernels care about, as reported by cpuid (and enabled by the OS).
struct CpuFeatures {
    bool avx2 = false;
    bool fma = false;
    bool f16c = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512vl = false;
    bool avx512dq = false;

    static CpuFeatures detect();
    // The widest kernel set these features allow: the AVX2 kernels need AVX2+FMA+F16C, the AVX-512 kernels
    // additionally F+BW+VL+DQ.
    Isa bestIsa() const;
};

// "scalar", "avx2", "avx512" (any case) as used by SAGE_MAX_ISA; nullopt for anything else.
std::optional<Isa> parseIsaName(std::string_view name);

} // namespace sage::cpu
