// Platform assumptions every hwsim header relies on, checked at compile time.
//
// The emulated hardware is two's-complement with arithmetic right shifts; the emulation must be too.
// C++17 leaves `>>` of a negative value implementation-defined and signed overflow undefined: hwsim
// never overflows a signed type on purpose (wrap is done in unsigned arithmetic, see int_range.h) and
// relies on `>>` being an arithmetic (floor) shift, which every supported compiler (GCC, Clang, MSVC)
// provides and C++20 mandates.
#pragma once

#include <climits>
#include <cstdint>
#include <limits>

namespace hwsim {

static_assert(CHAR_BIT == 8, "hwsim assumes 8-bit bytes");
static_assert(sizeof(float) == 4 && std::numeric_limits<float>::is_iec559, "float must be IEEE-754 binary32");
static_assert(sizeof(double) == 8 && std::numeric_limits<double>::is_iec559, "double must be IEEE-754 binary64");
static_assert((-1 >> 1) == -1, "signed >> must be an arithmetic (floor) shift");
static_assert((int64_t{-5} >> 1) == -3, "int64 >> must be an arithmetic (floor) shift");
static_assert(static_cast<int32_t>(0xFFFFFFFFu) == -1, "unsigned -> signed conversion must be two's complement");
static_assert(static_cast<int8_t>(uint8_t{0x80}) == -128, "uint8 -> int8 conversion must be two's complement");

#if defined(__SIZEOF_INT128__)
// 128-bit intermediates hold the exact value of shifted sums (requantize_pow2, DPU eltwise add).
using int128_t = __int128;
static_assert((int128_t{-5} >> 1) == -3, "int128 >> must be an arithmetic (floor) shift");
#else
#error "hwsim needs a compiler with __int128 (GCC or Clang on a 64-bit target)"
#endif

}  // namespace hwsim
