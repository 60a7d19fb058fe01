// Requantization: int32 (or int64) accumulators -> narrow integers, one named scheme per function.
// Arrays are row-major [rows, C]: the LAST axis is the channel axis. Every per-channel parameter is a
// pointer plus a length that is either 1 (per-tensor) or C (per-channel); `Pick` selects the element.
// Output: q = clamp(..., qmin, qmax) where [qmin, qmax] is the caller's combined type / activation range.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "hwsim/assumptions.h"
#include "hwsim/fixedpoint.h"
#include "hwsim/int_range.h"
#include "hwsim/requantize_float_simd.h"
#include "hwsim/rounding.h"

namespace hwsim {

template <typename T>
inline T Pick(const T* p, int64_t len, int64_t c) { return p[len == 1 ? 0 : c]; }

// ---------------------------------------------------------------------------------------------
// (a) Float-scale requantization (onnxruntime MLAS, fbgemm ReQuantizeOutput, XNNPACK fp32, TFLM float FC).
enum class FloatBias : int {
  NONE = 0,
  INT32 = 1,             // raw = wrap32(acc + bias_i32), then converted (MLAS, XNNPACK, fbgemm int bias)
  FLOAT_DIVIDE = 2,      // raw_f = Real(acc) + bias_f / bias_scale      (fbgemm float bias, generic + per-channel)
  FLOAT_RECIPROCAL = 3,  // raw_f = Real(acc) + bias_f * (1 / bias_scale) (fbgemm float bias, AVX2 per-tensor)
};

struct FloatRequantOptions {
  bool scale_divides = false;          // v = raw_f / scale instead of raw_f * scale
  FloatBias bias = FloatBias::NONE;
  bool clamp_before_rounding = false;  // clamp v to [qmin - zp, qmax - zp] in Real before rounding (MLAS, XNNPACK)
  RoundingMode rounding = RoundingMode::HALF_TO_EVEN;
  uint64_t seed = 0;
};

// The portable inner loop of RequantizeFloat's fast path (see there) on a strided [rows, C] tile:
// plain arguments and restrict pointers so the compiler can prove the stores alias nothing. kBias: 0 none,
// 1 int32 (wrapping add), 2 float (pre-divided bias_add). Per-channel pointers start at the tile's column 0.
template <RoundingMode M, bool kDivides, int kBias, typename Real, typename Out>
[[gnu::noinline]] void RequantizeFloatSmallRows(const int32_t* __restrict acc, int64_t lda, int64_t rows, int64_t C,
                                                const int32_t* __restrict bias_i, const Real* __restrict bias_add,
                                                const Real* __restrict s, const Real* __restrict lo,
                                                const Real* __restrict hi, const int32_t* __restrict z,
                                                Out* __restrict out, int64_t ldo) {
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* __restrict a = acc + r * lda;
    Out* __restrict y = out + r * ldo;
    for (int64_t c = 0; c < C; ++c) {
      int32_t raw = a[c];
      if (kBias == 1) raw = static_cast<int32_t>(static_cast<uint32_t>(raw) + static_cast<uint32_t>(bias_i[c]));
      Real v = static_cast<Real>(raw);
      if (kBias == 2) v = v + bias_add[c];
      v = kDivides ? v / s[c] : v * s[c];
      v = std::min(std::max(v, lo[c]), hi[c]);
      y[c] = static_cast<Out>(static_cast<int32_t>(static_cast<uint32_t>(RoundSmallToInt32<M, Real>(v)) +
                                                   static_cast<uint32_t>(z[c])));
    }
  }
}

// Everything RequantizeFloat needs per channel, computed once (so a GEMM epilogue can apply it tile by
// tile). Vectors have length C.
template <typename Real>
struct FloatRequantPlan {
  int64_t C = 0;
  FloatRequantOptions o;
  RequantIsa isa = RequantIsa::Scalar;
  bool small = false;       // every |qmin - zp|, |qmax - zp| < 2^22 and not STOCHASTIC: the fast path applies
  bool float_bias = false;
  std::vector<Real> s, lo_f, hi_f, bias_add;
  std::vector<int64_t> z, lo_i, hi_i;
  std::vector<int32_t> z32, bias_i;

  // The per-column constants the SIMD kernels read, starting at column col0 (float plans only).
  FloatRequantColumns columns(int64_t col0) const {
    static_assert(std::is_same<Real, float>::value, "the SIMD kernels are float32");
    FloatRequantColumns k;
    k.scale = s.data() + col0;
    k.lo = lo_f.data() + col0;
    k.hi = hi_f.data() + col0;
    k.zp = z32.data() + col0;
    k.bias_i = bias_i.empty() ? nullptr : bias_i.data() + col0;
    k.bias_add = bias_add.data() + col0;
    return k;
  }

  // The plan for channels [0, C) repeated `times` times (a [rows, C] array seen as [rows / times, C * times]).
  FloatRequantPlan tiled(int64_t times) const {
    FloatRequantPlan t = *this;
    t.C = C * times;
    auto rep = [&](auto& v) {
      auto src = v;
      v.clear();
      if (src.empty()) return;
      for (int64_t i = 0; i < times; ++i) v.insert(v.end(), src.begin(), src.end());
    };
    rep(t.s); rep(t.lo_f); rep(t.hi_f); rep(t.bias_add); rep(t.z); rep(t.lo_i); rep(t.hi_i); rep(t.z32); rep(t.bias_i);
    return t;
  }
};

template <typename Real>
FloatRequantPlan<Real> PlanRequantizeFloat(int64_t C, const int32_t* bias_i, const Real* bias_f, const Real* bias_scale,
                                           int64_t bias_scale_len, const Real* scale, int64_t scale_len,
                                           const int32_t* zp, int64_t zp_len, int64_t qmin, int64_t qmax,
                                           const FloatRequantOptions& o, RequantIsa isa) {
  FloatRequantPlan<Real> p;
  p.C = C;
  p.o = o;
  p.isa = isa;
  p.s.resize(C); p.lo_f.resize(C); p.hi_f.resize(C); p.bias_add.assign(C, Real(0));
  p.z.resize(C); p.lo_i.resize(C); p.hi_i.resize(C); p.z32.resize(C);
  if (o.bias == FloatBias::INT32) p.bias_i.assign(bias_i, bias_i + C);
  for (int64_t c = 0; c < C; ++c) {
    p.s[c] = Pick(scale, scale_len, c);
    p.z[c] = Pick(zp, zp_len, c);
    p.z32[c] = static_cast<int32_t>(p.z[c]);
    p.lo_i[c] = qmin - p.z[c];
    p.hi_i[c] = qmax - p.z[c];
    p.lo_f[c] = static_cast<Real>(p.lo_i[c]);
    p.hi_f[c] = static_cast<Real>(p.hi_i[c]);
    if (o.bias == FloatBias::FLOAT_DIVIDE) p.bias_add[c] = bias_f[c] / Pick(bias_scale, bias_scale_len, c);
    if (o.bias == FloatBias::FLOAT_RECIPROCAL) p.bias_add[c] = bias_f[c] * (Real(1) / Pick(bias_scale, bias_scale_len, c));
  }
  p.float_bias = o.bias == FloatBias::FLOAT_DIVIDE || o.bias == FloatBias::FLOAT_RECIPROCAL;
  // Clamping before or after rounding gives the same integer (every mode is monotone and keeps
  // integers), so the fast path always clamps first; then the branch-free small-value rounding applies.
  p.small = o.rounding != RoundingMode::STOCHASTIC;
  for (int64_t c = 0; c < C; ++c) p.small = p.small && p.lo_i[c] > -(int64_t{1} << 22) && p.hi_i[c] < (int64_t{1} << 22);
  return p;
}

// Applies plan p to the tile of rows [row0, row0 + rows) x columns [col0, col0 + cols) of a [*, p.C]
// array: acc and out point at the tile's first element, with row strides lda and ldo. row0 and col0
// only locate the per-channel constants and the STOCHASTIC element index (row * C + col).
template <typename Real, typename Out>
void ApplyRequantizeFloat(const FloatRequantPlan<Real>& p, const int32_t* acc, int64_t lda, int64_t row0, int64_t rows,
                          int64_t col0, int64_t cols, Out* out, int64_t ldo) {
  const FloatRequantOptions& o = p.o;
  if (rows <= 0 || cols <= 0) return;
  if (p.small) {
    // The explicit SIMD kernels cover float32 + HALF_TO_EVEN (requantize_float_simd.h); other cases run
    // the portable loop, which the compiler may vectorise on its own.
    if constexpr (std::is_same<Real, float>::value) {
      if (o.rounding == RoundingMode::HALF_TO_EVEN && p.isa != RequantIsa::Scalar) {
        const FloatRequantColumns k = p.columns(col0);
        auto run = [&](auto divides_tag) {
          constexpr bool kDiv = decltype(divides_tag)::value;
          if (o.bias == FloatBias::INT32) RequantizeFloatRneRows<kDiv, 1, Out>(p.isa, acc, lda, rows, cols, k, out, ldo);
          else if (p.float_bias) RequantizeFloatRneRows<kDiv, 2, Out>(p.isa, acc, lda, rows, cols, k, out, ldo);
          else RequantizeFloatRneRows<kDiv, 0, Out>(p.isa, acc, lda, rows, cols, k, out, ldo);
        };
        if (o.scale_divides) run(std::true_type{}); else run(std::false_type{});
        return;
      }
    }
    const int32_t* bi = p.bias_i.empty() ? nullptr : p.bias_i.data() + col0;
    DispatchRoundingMode(o.rounding, [&](auto mode) {
      auto rows_loop = [&](auto divides_tag, auto bias_tag) {
        RequantizeFloatSmallRows<decltype(mode)::value, decltype(divides_tag)::value, decltype(bias_tag)::value, Real, Out>(
            acc, lda, rows, cols, bi, p.bias_add.data() + col0, p.s.data() + col0, p.lo_f.data() + col0,
            p.hi_f.data() + col0, p.z32.data() + col0, out, ldo);
      };
      auto with_bias = [&](auto divides_tag) {
        if (o.bias == FloatBias::INT32) rows_loop(divides_tag, std::integral_constant<int, 1>{});
        else if (p.float_bias) rows_loop(divides_tag, std::integral_constant<int, 2>{});
        else rows_loop(divides_tag, std::integral_constant<int, 0>{});
      };
      if (o.scale_divides) with_bias(std::true_type{}); else with_bias(std::false_type{});
    });
    return;
  }
  DispatchRoundingMode(o.rounding, [&](auto mode) {
    constexpr RoundingMode M = decltype(mode)::value;
    for (int64_t r = 0; r < rows; ++r) {
      const int32_t* a = acc + r * lda;
      Out* y = out + r * ldo;
      for (int64_t j = 0; j < cols; ++j) {
        const int64_t c = col0 + j;
        int32_t raw = a[j];
        if (o.bias == FloatBias::INT32) raw = WrapToInt32(static_cast<int64_t>(raw) + p.bias_i[c]);
        Real v = static_cast<Real>(raw);
        if (p.float_bias) v = v + p.bias_add[c];  // bias / bias_scale (or * its reciprocal), one rounding each
        v = o.scale_divides ? v / p.s[c] : v * p.s[c];
        if (o.clamp_before_rounding) v = std::min(std::max(v, p.lo_f[c]), p.hi_f[c]);  // v is finite here
        y[j] = static_cast<Out>(RoundFloatToInt<M>(static_cast<double>(v), p.lo_i[c], p.hi_i[c], o.seed,
                                                   static_cast<uint64_t>((row0 + r) * p.C + c)) +
                                p.z[c]);
      }
    }
  });
}

// v = Real(raw) [+ float bias] then * scale (or / scale), all in Real (float = fp32, double = fp64) with
// one IEEE rounding per operation (no FMA); int -> float conversion rounds to nearest even. Then either
// clamp in Real and round, or round and clamp; + zp. Rounding of a float32 value is done exactly in
// double (same integer). Overflowing conversions saturate (real x86 cvtps2dq would give INT_MIN).
// float32 + HALF_TO_EVEN runs the explicit AVX-512 / AVX2 kernels when the CPU has them (isa: nullptr =
// the best this CPU has; the caller checks that a forced one is supported).
template <typename Real, typename Out>
void RequantizeFloat(const int32_t* acc, int64_t rows, int64_t C, const int32_t* bias_i, const Real* bias_f,
                     const Real* bias_scale, int64_t bias_scale_len, const Real* scale, int64_t scale_len,
                     const int32_t* zp, int64_t zp_len, int64_t qmin, int64_t qmax, const FloatRequantOptions& o,
                     Out* out, const RequantIsa* isa = nullptr) {
  if (rows <= 0 || C <= 0) return;
  const FloatRequantPlan<Real> p = PlanRequantizeFloat<Real>(C, bias_i, bias_f, bias_scale, bias_scale_len, scale,
                                                             scale_len, zp, zp_len, qmin, qmax, o,
                                                             isa ? *isa : host_requant_isa());
  // Narrow rows waste vector lanes: view [rows, C] as [rows / t, C * t] with the constants repeated t times
  // (the element index of STOCHASTIC, which this path never serves, would be unchanged anyway).
  constexpr int64_t kWide = 64;
  if (p.small && C < kWide && rows >= 2 * ((kWide + C - 1) / C)) {
    const int64_t t = (kWide + C - 1) / C;
    const int64_t wide_rows = rows / t;
    const FloatRequantPlan<Real> wide = p.tiled(t);
    ApplyRequantizeFloat<Real, Out>(wide, acc, wide.C, 0, wide_rows, 0, wide.C, out, wide.C);
    const int64_t done = wide_rows * t;
    ApplyRequantizeFloat<Real, Out>(p, acc + done * C, C, done, rows - done, 0, C, out + done * C, C);
    return;
  }
  ApplyRequantizeFloat<Real, Out>(p, acc, C, 0, rows, 0, C, out, C);
}

// ---------------------------------------------------------------------------------------------
// (b) TFLite fixed point: acc (+ bias, wrapping in the accumulator type), MBQM by the named variant,
// + zp (int32 wrap, as the compiled kernel does), clamp. Acc = int32_t (DOUBLE/SINGLE/INT64_16BIT) or
// int64_t (INT64_16BIT only: the 16x8 kernels).
template <typename Acc, typename Out>
void RequantizeFixedPoint(const Acc* acc, int64_t rows, int64_t C, const Acc* bias, const int32_t* mult,
                          int64_t mult_len, const int32_t* shift, int64_t shift_len, const int32_t* zp, int64_t zp_len,
                          int64_t qmin, int64_t qmax, MultiplierVariant variant, Out* out) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = r * C + c;
      Acc a = acc[i];
      if (bias != nullptr) {
        // Wrapping add in the accumulator's own width (unsigned arithmetic: no UB).
        using U = typename UnsignedOf<Acc>::type;
        a = static_cast<Acc>(static_cast<U>(a) + static_cast<U>(bias[c]));
      }
      const int32_t m = Pick(mult, mult_len, c);
      const int sh = Pick(shift, shift_len, c);
      int32_t scaled;
      switch (variant) {
        case MultiplierVariant::DOUBLE_ROUNDING:
          scaled = MultiplyByQuantizedMultiplierDoubleRounding(static_cast<int32_t>(a), m, sh);
          break;
        case MultiplierVariant::SINGLE_ROUNDING:
          scaled = MultiplyByQuantizedMultiplierSingleRounding(static_cast<int32_t>(a), m, sh);
          break;
        default:
          scaled = MultiplyByQuantizedMultiplierInt64(static_cast<int64_t>(a), m, sh);
          break;
      }
      const int64_t withzp = WrapToInt32(static_cast<int64_t>(scaled) + Pick(zp, zp_len, c));
      out[i] = static_cast<Out>(std::min(std::max(withzp, qmin), qmax));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// (c) Power-of-two shift (Xilinx DPU conv requant, numerics C.4):
//   y = sat(round((acc + bias * 2^shift_bias) / 2^shift_cut) + zp)
// computed exactly in 128-bit integers (one rounding, default HALF_UP = DPU_ROUND). Either shift may be
// negative: a negative shift_bias right-shifts the bias and a negative shift_cut is a left shift, both
// without intermediate rounding. Shifts must be in [-32, 32] (the binding checks).
template <typename Acc, typename Out>
void RequantizePow2(const Acc* acc, int64_t rows, int64_t C, const Acc* bias, const int32_t* shift_bias,
                    int64_t shift_bias_len, const int32_t* shift_cut, int64_t shift_cut_len, const int32_t* zp,
                    int64_t zp_len, int64_t qmin, int64_t qmax, RoundingMode mode, uint64_t seed, Out* out) {
  // Fast path: int32 accumulators and shifts small enough for every intermediate to fit int64
  // (|acc * 2^k + bias * 2^(sb + k)| < 2^62 when k, sb + k <= 30); otherwise exact 128-bit arithmetic.
  bool fits64 = sizeof(Acc) == 4;
  for (int64_t c = 0; c < C && fits64; ++c) {
    const int sb = bias != nullptr ? Pick(shift_bias, shift_bias_len, c) : 0;
    const int sc = Pick(shift_cut, shift_cut_len, c);
    const int k = sb < 0 ? -sb : 0;
    fits64 = k <= 30 && sb + k <= 30 && sc + k >= 0;  // no left shift in the int64 path
  }
  DispatchRoundingMode(mode, [&](auto mode_tag) {
    constexpr RoundingMode M = decltype(mode_tag)::value;
    auto run = [&](auto wide_tag) {
      using W = decltype(wide_tag);
      const W big = W{1} << 61;  // far outside any output range: a safe saturation sentinel
      // Per channel: value = (acc * 2^k + bias_term) / 2^total, then clamp to [lo, hi] and + z.
      std::vector<int> k(C), total(C);
      std::vector<W> bias_term(C, W{0});
      std::vector<int64_t> z(C), lo(C), hi(C);
      for (int64_t c = 0; c < C; ++c) {
        const int sc = Pick(shift_cut, shift_cut_len, c);
        const int sb = bias != nullptr ? Pick(shift_bias, shift_bias_len, c) : 0;
        k[c] = bias != nullptr && sb < 0 ? -sb : 0;  // common denominator 2^k
        if (bias != nullptr) bias_term[c] = static_cast<W>(bias[c]) * (W{1} << (sb + k[c]));
        total[c] = sc + k[c];
        z[c] = Pick(zp, zp_len, c);
        lo[c] = qmin - z[c];
        hi[c] = qmax - z[c];
      }
      for (int64_t r = 0; r < rows; ++r) {
        const Acc* a = acc + r * C;
        Out* y = out + r * C;
        for (int64_t c = 0; c < C; ++c) {
          const W num = static_cast<W>(a[c]) * (W{1} << k[c]) + bias_term[c];
          W v;
          if (total[c] >= 0) {
            v = RoundingRightShiftT<M, W>(num, total[c], seed, static_cast<uint64_t>(r * C + c));
          } else {
            v = num > big ? big : (num < -big ? -big : num * (W{1} << -total[c]));
          }
          v = v < lo[c] ? W(lo[c]) : (v > hi[c] ? W(hi[c]) : v);
          y[c] = static_cast<Out>(static_cast<int64_t>(v) + z[c]);
        }
      }
    };
    if (fits64) run(int64_t{}); else run(int128_t{});
  });
}

}  // namespace hwsim
