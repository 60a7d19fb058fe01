// Rounding modes and the two exact rounding primitives built on them:
//   RoundFloat(x, mode)            float64 value -> integer-valued float64
//   RoundingRightShift(x, n, mode) x / 2^n rounded, integer arithmetic only (no float).
//
// Both work from the same decomposition: q = floor(value), frac = value - q in [0, 1). Every mode is
// a rule for adding 0 or 1 to q, so the two primitives agree exactly on every representable input.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

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

// Whether q + frac (q = floor, frac in (0, 1); cmp_half = sign of frac - 1/2) rounds up to q + 1
// under mode M. STOCHASTIC is decided by the callers (they need the exact fraction).
template <RoundingMode M>
inline bool RoundsUp(int cmp_half, bool q_is_odd, bool q_is_negative) {
  switch (M) {
    case RoundingMode::HALF_TO_EVEN:        return cmp_half > 0 || (cmp_half == 0 && q_is_odd);
    case RoundingMode::HALF_AWAY_FROM_ZERO: return cmp_half > 0 || (cmp_half == 0 && !q_is_negative);
    case RoundingMode::HALF_UP:             return cmp_half >= 0;
    case RoundingMode::HALF_DOWN:           return cmp_half > 0;
    case RoundingMode::HALF_TOWARD_ZERO:    return cmp_half > 0 || (cmp_half == 0 && q_is_negative);
    case RoundingMode::FLOOR:               return false;
    case RoundingMode::TRUNCATE:            return q_is_negative;
    case RoundingMode::STOCHASTIC:          return false;
  }
  return false;
}

// Calls f(std::integral_constant<RoundingMode, M>{}) for the runtime mode, so inner loops are
// compiled once per mode with no per-element branch on it.
template <typename F>
inline void DispatchRoundingMode(RoundingMode mode, F&& f) {
  switch (mode) {
    case RoundingMode::HALF_TO_EVEN: return f(std::integral_constant<RoundingMode, RoundingMode::HALF_TO_EVEN>{});
    case RoundingMode::HALF_AWAY_FROM_ZERO:
      return f(std::integral_constant<RoundingMode, RoundingMode::HALF_AWAY_FROM_ZERO>{});
    case RoundingMode::HALF_UP: return f(std::integral_constant<RoundingMode, RoundingMode::HALF_UP>{});
    case RoundingMode::HALF_DOWN: return f(std::integral_constant<RoundingMode, RoundingMode::HALF_DOWN>{});
    case RoundingMode::HALF_TOWARD_ZERO:
      return f(std::integral_constant<RoundingMode, RoundingMode::HALF_TOWARD_ZERO>{});
    case RoundingMode::FLOOR: return f(std::integral_constant<RoundingMode, RoundingMode::FLOOR>{});
    case RoundingMode::TRUNCATE: return f(std::integral_constant<RoundingMode, RoundingMode::TRUNCATE>{});
    case RoundingMode::STOCHASTIC: return f(std::integral_constant<RoundingMode, RoundingMode::STOCHASTIC>{});
  }
}

// Rounds a float64 to an integer by mode M and clamps it to [lo, hi] (lo <= hi, |lo|, |hi| < 2^62).
// Exact: for |x| < 2^52 the floor q and the comparisons of frac = x - q are done exactly (see below);
// |x| >= 2^52 is already an integer. NaN gives 0 clamped into [lo, hi]. STOCHASTIC rounds up when
// u < frac with u = (StochasticBits(seed, index) >> 11) * 2^-53, so P(ceil) = ceil(frac * 2^53) / 2^53.
template <RoundingMode M>
inline int64_t RoundFloatToInt(double x, int64_t lo, int64_t hi, uint64_t seed = 0, uint64_t index = 0) {
  if (!(std::fabs(x) < 0x1p52)) {
    if (x != x) return std::min(std::max<int64_t>(0, lo), hi);
    if (x <= static_cast<double>(lo)) return lo;
    if (x >= static_cast<double>(hi)) return hi;
    return static_cast<int64_t>(x);  // an integer already, inside (lo, hi)
  }
  // frac = x - floor(x) is not exact in binary64 for small negative x; x - trunc(x) is. With
  // ft = x - trunc(x): x >= 0 gives frac = ft; x < 0 non-integer gives floor = t - 1, frac = 1 + ft,
  // and every comparison of frac is done exactly on ft.
  const int64_t t = static_cast<int64_t>(x);  // toward zero
  const double ft = x - static_cast<double>(t);
  const bool neg_f = ft < 0.0;
  const int64_t q = t - (neg_f ? 1 : 0);  // floor
  bool up;
  if (M == RoundingMode::STOCHASTIC) {
    const double u = static_cast<double>(StochasticBits(seed, index) >> 11) * 0x1p-53;  // in [0, 1)
    up = neg_f ? (u - 1.0 < ft) : (u < ft);  // u < frac; u - 1 is exact
  } else {
    const double half = neg_f ? -0.5 : 0.5;
    const int cmp_half = (ft > half) - (ft < half);
    up = (ft != 0.0) & RoundsUp<M>(cmp_half, (q & 1) != 0, q < 0);
  }
  const int64_t r = q + static_cast<int64_t>(up);
  return std::min(std::max(r, lo), hi);
}

// Fast form of RoundFloatToInt for a finite value already clamped to |v| < 2^22 (float) or 2^30
// (double): the same rule, written branch-free on int32 lanes so loops over it vectorise (SSE2 has
// every operation used: truncating convert, compare, and, add). Not for STOCHASTIC.
// The fraction is taken against trunc(v), not floor(v): v - trunc(v) is exact in binary floating
// point, while v - floor(v) is not for small negative v (-0.49999997f - (-1) rounds to 0.5f).
template <RoundingMode M, typename Real>
inline int32_t RoundSmallToInt32(Real v) {
  const int32_t t = static_cast<int32_t>(v);          // toward zero
  const Real ft = v - static_cast<Real>(t);            // exact, in (-1, 1), sign of v
  const int32_t neg_f = ft < Real(0);                  // then floor = t - 1 and frac = 1 + ft
  const int32_t q = t - neg_f;                         // floor
  const Real half = Real(0.5) - static_cast<Real>(neg_f);  // frac vs 1/2, compared on ft exactly
  const int32_t gt = ft > half, eq = ft == half, neg = q < 0;
  int32_t up = 0;
  switch (M) {
    case RoundingMode::HALF_TO_EVEN: up = gt | (eq & q); break;  // q & 1 via the low bit
    case RoundingMode::HALF_AWAY_FROM_ZERO: up = gt | (eq & (1 - neg)); break;
    case RoundingMode::HALF_UP: up = gt | eq; break;
    case RoundingMode::HALF_DOWN: up = gt; break;
    case RoundingMode::HALF_TOWARD_ZERO: up = gt | (eq & neg); break;
    case RoundingMode::FLOOR: up = 0; break;
    case RoundingMode::TRUNCATE: up = neg_f; break;  // a negative non-integer goes back up to t
    case RoundingMode::STOCHASTIC: up = 0; break;
  }
  return q + (up & 1);
}

// Rounds a float64 to an integer-valued float64 by `mode` (same rule as RoundFloatToInt; exact).
// NaN and +-inf are returned unchanged.
inline double RoundFloat(double x, RoundingMode mode, uint64_t seed = 0, uint64_t index = 0) {
  if (!(std::fabs(x) < 0x1p52)) return x;
  double r = 0;
  DispatchRoundingMode(mode, [&](auto m) {
    r = static_cast<double>(RoundFloatToInt<decltype(m)::value>(x, -(int64_t{1} << 53), int64_t{1} << 53, seed, index));
  });
  return r;
}

// x / 2^n rounded by mode M, for n in [0, bits(T) - 1], exact integer arithmetic. T is int32_t,
// int64_t or int128_t. n <= 0 returns x. The floor is the arithmetic shift x >> n (the instruction every
// "shift-based" requantizer starts from); the dropped bits rem in [0, 2^n) decide the carry.
// STOCHASTIC rounds up when StochasticBits(seed, index) < rem * 2^(64 - n) (exact P = rem / 2^n for
// n <= 64; for n > 64 only the top 64 bits of the fraction are used).
template <typename T> struct UnsignedOf;
template <> struct UnsignedOf<int32_t> { using type = uint32_t; };
template <> struct UnsignedOf<int64_t> { using type = uint64_t; };
template <> struct UnsignedOf<int128_t> { using type = unsigned __int128; };

template <RoundingMode M, typename T>
inline T RoundingRightShiftT(T x, int n, uint64_t seed = 0, uint64_t index = 0) {
  using U = typename UnsignedOf<T>::type;
  if (n <= 0) return x;
  const T q = x >> n;
  // The dropped bits: the low n bits of x, taken in unsigned arithmetic (no overflow).
  const T rem = static_cast<T>(static_cast<U>(x) & ((U{1} << n) - 1));
  if (M == RoundingMode::STOCHASTIC) {
    if (rem == 0) return q;
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
  const int cmp_half = (rem > half) - (rem < half);
  return q + static_cast<T>((rem != 0) & RoundsUp<M>(cmp_half, (q & 1) != 0, q < 0));
}

// Runtime-mode form of RoundingRightShiftT.
template <typename T>
inline T RoundingRightShift(T x, int n, RoundingMode mode, uint64_t seed = 0, uint64_t index = 0) {
  T r = x;
  DispatchRoundingMode(mode, [&](auto m) { r = RoundingRightShiftT<decltype(m)::value, T>(x, n, seed, index); });
  return r;
}

}  // namespace hwsim
