// Rounding modes and the two exact rounding primitives built on them:
//   RoundFloat(x, mode)            float64 value -> integer-valued float64
//   RoundingRightShift(x, n, mode) x / 2^n rounded, integer arithmetic only (no float).
//
// Both work from the same decomposition: q = floor(value), frac = value - q in [0, 1). Every mode is
// a rule for adding 0 or 1 to q, so the two primitives agree exactly on every representable input.
#pragma once

#include <cmath>
#include <cstdint>

#include "hwsim/assumptions.h"

namespace hwsim {

// One name per rounding rule; the values are stable (they are exposed to Python).
enum class RoundingMode : int {
  HALF_TO_EVEN = 0,         // nearest; ties to the even integer (RNE: nearbyint, np.round, x86 cvtps2dq, ARM vcvtnq)
  HALF_AWAY_FROM_ZERO = 1,  // nearest; ties away from zero (RHAZ: std::round, TfLiteRound, gemmlowp RDBP)
  HALF_UP = 2,              // nearest; ties toward +inf (RHUP: floor(x + 0.5), Xilinx DPU_ROUND, ap_fixed AP_RND)
  HALF_DOWN = 3,            // nearest; ties toward -inf (RHDN: ceil(x - 0.5), ap_fixed AP_RND_MIN_INF)
  HALF_TOWARD_ZERO = 4,     // nearest; ties toward zero (RHTZ: ap_fixed AP_RND_ZERO, Vitis method 6)
  FLOOR = 5,                // toward -inf (arithmetic >>, ap_fixed AP_TRN)
  TRUNCATE = 6,             // toward zero (C integer cast / division, ap_fixed AP_TRN_ZERO)
  STOCHASTIC = 7,           // floor or ceil, P(ceil) = frac, from StochasticBits(seed, element index) below
};

inline bool IsValidRoundingMode(int m) { return m >= 0 && m <= 7; }

// The counter-based generator behind STOCHASTIC: 64 random bits for element `index` under `seed`,
// a pure function (no state), so results do not depend on threading or evaluation order.
//   z = seed + (index + 1) * 0x9E3779B97F4A7C15          (mod 2^64)
//   z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9            (mod 2^64)
//   z = (z ^ (z >> 27)) * 0x94D049BB133111EB            (mod 2^64)
//   return z ^ (z >> 31)
// This is SplitMix64's output function applied to the (index+1)-th state of a stream started at `seed`.
// `index` is the element's flat C-order index in the array being rounded.
inline uint64_t StochasticBits(uint64_t seed, uint64_t index) {
  uint64_t z = seed + (index + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Whether a value q + frac (frac in [0, 1), `cmp_half` = sign of frac - 1/2, frac_nonzero) rounds up
// to q + 1 under `mode`. `q_is_odd` / `q_is_negative` describe the floor q. STOCHASTIC is decided by
// the caller (it needs the exact fraction).
inline bool RoundsUp(RoundingMode mode, int cmp_half, bool frac_nonzero, bool q_is_odd, bool q_is_negative) {
  switch (mode) {
    case RoundingMode::HALF_TO_EVEN:        return cmp_half > 0 || (cmp_half == 0 && q_is_odd);
    case RoundingMode::HALF_AWAY_FROM_ZERO: return cmp_half > 0 || (cmp_half == 0 && !q_is_negative);
    case RoundingMode::HALF_UP:             return cmp_half >= 0;
    case RoundingMode::HALF_DOWN:           return cmp_half > 0;
    case RoundingMode::HALF_TOWARD_ZERO:    return cmp_half > 0 || (cmp_half == 0 && q_is_negative);
    case RoundingMode::FLOOR:               return false;
    case RoundingMode::TRUNCATE:            return frac_nonzero && q_is_negative;
    case RoundingMode::STOCHASTIC:          return false;
  }
  return false;
}

// Rounds a float64 to an integer-valued float64 by `mode`. Exact: floor and x - floor(x) are exact
// in binary64. STOCHASTIC rounds up when u < frac with u = (StochasticBits(seed, index) >> 11) * 2^-53,
// so P(ceil) = ceil(frac * 2^53) / 2^53. NaN and +-inf are returned unchanged (callers saturate them).
inline double RoundFloat(double x, RoundingMode mode, uint64_t seed = 0, uint64_t index = 0) {
  if (!std::isfinite(x)) return x;
  const double q = std::floor(x);
  const double frac = x - q;
  if (frac == 0.0) return q;
  if (mode == RoundingMode::STOCHASTIC) {
    const double u = static_cast<double>(StochasticBits(seed, index) >> 11) * 0x1p-53;
    return u < frac ? q + 1.0 : q;
  }
  const int cmp_half = frac > 0.5 ? 1 : (frac < 0.5 ? -1 : 0);
  const bool q_is_odd = std::fmod(q, 2.0) != 0.0;
  return RoundsUp(mode, cmp_half, true, q_is_odd, q < 0.0) ? q + 1.0 : q;
}

// x / 2^n rounded by `mode`, for n in [0, bits(T) - 1], exact integer arithmetic. T is int32_t,
// int64_t or int128_t. n = 0 returns x. The floor is the arithmetic shift x >> n (the instruction every
// "shift-based" requantizer starts from); the dropped bits rem = x - (q << n) in [0, 2^n) decide the
// carry. STOCHASTIC rounds up when StochasticBits(seed, index) < rem * 2^(64 - n) (exact P = rem / 2^n
// for n <= 64; for n > 64 only the top 64 bits of the fraction are used).
template <typename T> struct UnsignedOf;
template <> struct UnsignedOf<int32_t> { using type = uint32_t; };
template <> struct UnsignedOf<int64_t> { using type = uint64_t; };
template <> struct UnsignedOf<int128_t> { using type = unsigned __int128; };

template <typename T>
inline T RoundingRightShift(T x, int n, RoundingMode mode, uint64_t seed = 0, uint64_t index = 0) {
  using U = typename UnsignedOf<T>::type;
  if (n <= 0) return x;
  const T q = x >> n;
  // The dropped bits, in [0, 2^n): the low n bits of x, taken in unsigned arithmetic (no overflow).
  const T rem = static_cast<T>(static_cast<U>(x) & ((U{1} << n) - 1));
  if (rem == 0) return q;
  if (mode == RoundingMode::STOCHASTIC) {
    const uint64_t u = StochasticBits(seed, index);
    uint64_t threshold;
    if (n <= 64) {
      threshold = n == 64 ? static_cast<uint64_t>(rem) : static_cast<uint64_t>(rem) << (64 - n);
    } else {
      threshold = static_cast<uint64_t>(rem >> (n - 64));
    }
    return u < threshold ? q + 1 : q;
  }
  const T half = T(1) << (n - 1);
  const int cmp_half = rem > half ? 1 : (rem < half ? -1 : 0);
  return RoundsUp(mode, cmp_half, true, (q & 1) != 0, q < 0) ? q + 1 : q;
}

}  // namespace hwsim
