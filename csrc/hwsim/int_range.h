// Integer types of 2..16 bits (and 32 for accumulators), signed or unsigned, full or narrow range,
// and the two overflow behaviours.
//
// Narrow ("symmetric") range drops one end of the full range:
//   signed:   [-(2^(b-1) - 1), 2^(b-1) - 1]   e.g. int8 [-127, 127], int4 [-7, 7], int2 [-1, 1]
//   unsigned: [0, 2^b - 2]                    trims the TOP code (Brevitas `max_int(narrow=True)` convention)
#pragma once

#include <algorithm>
#include <cstdint>

#include "hwsim/assumptions.h"

namespace hwsim {

enum class OverflowMode : int {
  SATURATE = 0,  // clamp to [lo, hi] (every quantizer and requantizer; ap_fixed AP_SAT)
  WRAP = 1,      // keep the low `bits` bits, two's complement if signed (plain integer overflow; ap_fixed AP_WRAP)
};

struct IntRange {
  int64_t lo;
  int64_t hi;
  int bits;         // storage width whose low bits WRAP keeps
  bool is_signed;
};

inline bool IsValidIntBits(int bits) { return (bits >= 2 && bits <= 16) || bits == 32; }

// The range of a `bits`-wide integer; narrow as documented above. Caller checks IsValidIntBits.
inline IntRange MakeIntRange(int bits, bool is_signed, bool narrow) {
  IntRange r{0, 0, bits, is_signed};
  if (is_signed) {
    r.lo = -(int64_t{1} << (bits - 1)) + (narrow ? 1 : 0);
    r.hi = (int64_t{1} << (bits - 1)) - 1;
  } else {
    r.lo = 0;
    r.hi = (int64_t{1} << bits) - 1 - (narrow ? 1 : 0);
  }
  return r;
}

// The smallest storage type (2..16 or 32 bits; signed iff lo < 0) containing [lo, hi]; used to give
// an explicit [qmin, qmax] a width for WRAP.
inline IntRange RangeForBounds(int64_t lo, int64_t hi) {
  const bool is_signed = lo < 0;
  for (int bits = 2; bits <= 32; ++bits) {
    if (!IsValidIntBits(bits)) continue;
    const IntRange full = MakeIntRange(bits, is_signed, false);
    if (full.lo <= lo && hi <= full.hi) return IntRange{lo, hi, bits, is_signed};
  }
  return IntRange{lo, hi, 32, is_signed};
}

// Clamp to [lo, hi].
inline int64_t Saturate(int64_t v, const IntRange& r) { return std::min(std::max(v, r.lo), r.hi); }

// Keep the low r.bits bits of v (two's complement sign extension if signed), computed in unsigned
// arithmetic so nothing overflows. A narrow range then clamps the one code it excludes (for example
// -8 -> -7 for narrow int4): hardware has no narrow wrap, this is hwsim's stated convention.
inline int64_t Wrap(int64_t v, const IntRange& r) {
  const uint64_t mask = r.bits >= 64 ? ~uint64_t{0} : ((uint64_t{1} << r.bits) - 1);
  uint64_t low = static_cast<uint64_t>(v) & mask;
  int64_t w;
  if (r.is_signed && (low >> (r.bits - 1)) & 1) {
    w = static_cast<int64_t>(low | ~mask);
  } else {
    w = static_cast<int64_t>(low);
  }
  return std::min(std::max(w, r.lo), r.hi);
}

inline int64_t ApplyOverflow(int64_t v, const IntRange& r, OverflowMode mode) {
  return mode == OverflowMode::WRAP ? Wrap(v, r) : Saturate(v, r);
}

// Two's-complement int32 wrap of an int64 value (what an int32 accumulator or `acc += bias` does).
inline int32_t WrapToInt32(int64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(v))); }

// Clamp a float64 (possibly +-inf) into [lo, hi] and convert; NaN maps to 0 clamped into [lo, hi]
// (hwsim's convention: engines disagree and C leaves it undefined).
inline int64_t SaturateDoubleToInt(double v, int64_t lo, int64_t hi) {
  if (v != v) return std::min(std::max<int64_t>(0, lo), hi);
  if (v <= static_cast<double>(lo)) return lo;
  if (v >= static_cast<double>(hi)) return hi;
  return static_cast<int64_t>(v);
}

}  // namespace hwsim
