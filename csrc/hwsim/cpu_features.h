// CPU feature detection for run-time kernel dispatch. Nothing here is cached: each call asks CPUID
// again (__builtin_cpu_supports, __get_cpuid_count), so there is no global state to reset. The one side
// effect: on a CPU with AMX, detection asks Linux for permission to use tiles (request_amx_permission).
#pragma once

#include <string>
#include <thread>

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#include <cpuid.h>
#endif
#if defined(__linux__) && (defined(__x86_64__) || defined(_M_X64))
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace hwsim {

// Integer dot-product instruction families a GEMM kernel can be written for.
enum class GemmIsa {
    Scalar,      // portable C++, any CPU (also the only path on non-x86 machines)
    Avx2,        // 256-bit VPMADDUBSW (u8 x s8 pairs -> int16) + VPMADDWD + VPADDD
    Avx512Vnni,  // 512-bit VPDPBUSD (u8 x s8 quads -> int32); AVX2_PAIRS mode uses 512-bit VPMADDUBSW here
    Amx,         // AMX-INT8 TDPBUSD tiles for EXACT mode; AVX2_PAIRS mode uses the AVX-512 kernel
};

// What this CPU can run. Every field is false on non-x86 machines.
struct CpuFeatures {
    bool avx2 = false;
    bool fma = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512vl = false;
    bool avx512_vnni = false;
    bool avx_vnni = false;  // VEX-encoded VPDPBUSD on ymm (not used by a kernel yet; reported only)
    bool amx_tile = false;  // CPUID.(7,0):EDX[24]
    bool amx_int8 = false;  // CPUID.(7,0):EDX[25]
    bool amx_permitted = false;  // the OS lets this process use the tile data state (Linux arch_prctl)
};

// Linux allocates AMX tile state lazily: a process must ask once (ARCH_REQ_XCOMP_PERM for
// XFEATURE_XTILEDATA) before executing any tile instruction, else it gets SIGILL. Asking again is
// harmless; the permission is per process and never revoked. Returns whether tiles may be used.
inline bool request_amx_permission() {
#if defined(__linux__) && (defined(__x86_64__) || defined(_M_X64))
    constexpr long kArchGetXcompPerm = 0x1022, kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return false;
    unsigned long bitmask = 0;
    if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &bitmask) != 0) return false;
    return (bitmask >> kXfeatureXtiledata) & 1u;
#else
    return false;
#endif
}

inline CpuFeatures detect_cpu_features() {
    CpuFeatures f;
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.avx512f = __builtin_cpu_supports("avx512f");
    f.avx512bw = __builtin_cpu_supports("avx512bw");
    f.avx512vl = __builtin_cpu_supports("avx512vl");
    f.avx512_vnni = __builtin_cpu_supports("avx512vnni");
#if defined(__clang__) || (__GNUC__ >= 11)
    f.avx_vnni = __builtin_cpu_supports("avxvnni");
#endif
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
        f.amx_tile = (edx >> 24) & 1u;
        f.amx_int8 = (edx >> 25) & 1u;
    }
    if (f.amx_tile && f.amx_int8) f.amx_permitted = request_amx_permission();
#endif
    return f;
}

// Whether the kernels of `isa` can run here. The AVX-512 kernels need F + BW (VPMADDUBSW on zmm) + VNNI.
inline bool gemm_isa_supported(GemmIsa isa, const CpuFeatures& f) {
    switch (isa) {
        case GemmIsa::Scalar: return true;
        case GemmIsa::Avx2: return f.avx2;
        case GemmIsa::Avx512Vnni: return f.avx512f && f.avx512bw && f.avx512_vnni;
        case GemmIsa::Amx:
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 11)  // compilers with AMX intrinsics (gemm_amx.h)
            return f.amx_tile && f.amx_int8 && f.amx_permitted && f.avx512f && f.avx512bw && f.avx512_vnni;
#else
            return false;
#endif
    }
    return false;
}

// The ISA "auto" picks: the widest supported one.
inline GemmIsa best_gemm_isa(const CpuFeatures& f) {
    if (gemm_isa_supported(GemmIsa::Amx, f)) return GemmIsa::Amx;
    if (gemm_isa_supported(GemmIsa::Avx512Vnni, f)) return GemmIsa::Avx512Vnni;
    if (gemm_isa_supported(GemmIsa::Avx2, f)) return GemmIsa::Avx2;
    return GemmIsa::Scalar;
}

inline const char* gemm_isa_name(GemmIsa isa) {
    switch (isa) {
        case GemmIsa::Scalar: return "scalar";
        case GemmIsa::Avx2: return "avx2";
        case GemmIsa::Avx512Vnni: return "avx512_vnni";
        case GemmIsa::Amx: return "amx";
    }
    return "?";
}

// Parses "scalar" / "avx2" / "avx512_vnni" / "amx"; returns false for anything else ("auto" is resolved by the caller).
inline bool parse_gemm_isa(const std::string& name, GemmIsa* out) {
    if (name == "scalar") { *out = GemmIsa::Scalar; return true; }
    if (name == "avx2") { *out = GemmIsa::Avx2; return true; }
    if (name == "avx512_vnni") { *out = GemmIsa::Avx512Vnni; return true; }
    if (name == "amx") { *out = GemmIsa::Amx; return true; }
    return false;
}

inline int hardware_threads() {
    unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

}  // namespace hwsim
