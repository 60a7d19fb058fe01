// Quantize (float -> int) and dequantize (int -> float) with per-tensor, per-channel (any axis) and
// per-group (blocks of `group_size` along an axis) parameters, modelling each engine's float steps.
//
// Layout: the input is viewed as [outer, D, inner] around the quantization axis. Parameter index:
//   per-tensor 0; per-channel d; per-group ((o * n_groups) + d / group_size) * inner + i, i.e. the
//   parameter array has the input's shape with the axis shrunk to n_groups = ceil(D / group_size)
//   (ONNX QuantizeLinear `block_size`).
#pragma once

#include <cmath>
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "hwsim/int_range.h"
#include "hwsim/rounding.h"

namespace hwsim {

enum class QuantizeMethod : int {
  DIVIDE = 0,               // t = x / s; q = round(t) + zp        (ONNX/onnxruntime, TFLite reference, AIMET)
  MULTIPLY_RECIPROCAL = 1,  // t = x * (1/s); q = round(t) + zp    (fbgemm Quantize, TFLite optimized)
  FMA_RECIPROCAL = 2,       // t = fma(x, 1/s, zp) (one rounding); q = round(t)  (torch quint8/qint8, vectorised)
  MULTIPLY_ADD_RECIPROCAL = 3,  // t = (x * (1/s)) + zp, two roundings; q = round(t)  (torch qint32, scalar path)
};

enum class DequantizeMethod : int {
  SUBTRACT_THEN_SCALE = 0,  // Real(q - zp) * s                      (ONNX, TFLite reference, torch)
  SCALE_THEN_SUBTRACT = 1,  // Real(q) * s - Real(zp) * s            (TFLite optimized DEQUANTIZE)
};

struct ParamLayout {
  int64_t outer = 1, D = 1, inner = 1;
  int kind = 0;            // 0 per-tensor, 1 per-channel, 2 per-group
  int64_t group_size = 1;  // kind 2 only
  int64_t n_groups = 1;

  int64_t Index(int64_t o, int64_t d, int64_t i) const {
    if (kind == 0) return 0;
    if (kind == 1) return d;
    return (o * n_groups + d / group_size) * inner + i;
  }
};

// Fast path of Quantize for SATURATE and deterministic rounding with |qmin|, |qmax| < 2^22: the value
// t is clamped before rounding (same integer: every mode is monotone and keeps integers; NaN -> 0),
// then rounded by the branch-free RoundSmallToInt32. n elements; parameter j is params[j * kStride].
template <RoundingMode M, QuantizeMethod kMethod, int kStride, typename In, typename Real, typename Out>
inline void QuantizeRunSmallBody(const In* __restrict x, int64_t n, const Real* __restrict scale, const Real* __restrict inv,
                      const Real* __restrict lo, const Real* __restrict hi, const int32_t* __restrict zp,
                      Out* __restrict out) {
  for (int64_t j = 0; j < n; ++j) {
    const int64_t p = j * kStride;
    const Real xv = static_cast<Real>(x[j]);
    Real t;
    if (kMethod == QuantizeMethod::DIVIDE) t = xv / scale[p];
    else if (kMethod == QuantizeMethod::MULTIPLY_RECIPROCAL) t = xv * inv[p];
    else if (kMethod == QuantizeMethod::FMA_RECIPROCAL) t = std::fma(xv, inv[p], static_cast<Real>(zp[p]));
    else t = static_cast<Real>(xv * inv[p]) + static_cast<Real>(zp[p]);
    t = t == t ? t : Real(0);
    t = std::min(std::max(t, lo[p]), hi[p]);
    const bool adds_zp = kMethod == QuantizeMethod::DIVIDE || kMethod == QuantizeMethod::MULTIPLY_RECIPROCAL;
    out[j] = static_cast<Out>(RoundSmallToInt32<M, Real>(t) + (adds_zp ? zp[p] : 0));
  }
}

// Not inlined: as separate functions their restrict parameters let the loop vectorise. The FMA
// method gets an AVX2+FMA clone on x86 (the baseline build has no fma instruction and would call
// libm's fmaf per element); both compute the same single-rounding fma, so results are identical.
template <RoundingMode M, QuantizeMethod kMethod, int kStride, typename In, typename Real, typename Out>
[[gnu::noinline]] void QuantizeRunSmallGeneric(const In* __restrict x, int64_t n, const Real* __restrict scale,
                                               const Real* __restrict inv, const Real* __restrict lo,
                                               const Real* __restrict hi, const int32_t* __restrict zp, Out* __restrict out) {
  QuantizeRunSmallBody<M, kMethod, kStride, In, Real, Out>(x, n, scale, inv, lo, hi, zp, out);
}

#if defined(__x86_64__) || defined(_M_X64)
template <RoundingMode M, QuantizeMethod kMethod, int kStride, typename In, typename Real, typename Out>
[[gnu::noinline]] __attribute__((target("avx2,fma"))) void QuantizeRunSmallFma(
    const In* __restrict x, int64_t n, const Real* __restrict scale, const Real* __restrict inv,
    const Real* __restrict lo, const Real* __restrict hi, const int32_t* __restrict zp, Out* __restrict out) {
  QuantizeRunSmallBody<M, kMethod, kStride, In, Real, Out>(x, n, scale, inv, lo, hi, zp, out);
}

// The other methods on 16 lanes: the same IEEE operations (division and multiplication are correctly
// rounded at every vector width; no contraction, -ffp-contract=off), so the same integers.
template <RoundingMode M, QuantizeMethod kMethod, int kStride, typename In, typename Real, typename Out>
[[gnu::noinline]] __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) void QuantizeRunSmallAvx512(
    const In* __restrict x, int64_t n, const Real* __restrict scale, const Real* __restrict inv,
    const Real* __restrict lo, const Real* __restrict hi, const int32_t* __restrict zp, Out* __restrict out) {
  QuantizeRunSmallBody<M, kMethod, kStride, In, Real, Out>(x, n, scale, inv, lo, hi, zp, out);
}

inline bool HostHasFma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

inline bool HostHasAvx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  return has;
}
#endif

template <RoundingMode M, QuantizeMethod kMethod, int kStride, typename In, typename Real, typename Out>
void QuantizeRunSmall(const In* x, int64_t n, const Real* scale, const Real* inv, const Real* lo, const Real* hi,
                      const int32_t* zp, Out* out) {
#if defined(__x86_64__) || defined(_M_X64)
  if (kMethod == QuantizeMethod::FMA_RECIPROCAL && HostHasFma()) {
    QuantizeRunSmallFma<M, kMethod, kStride, In, Real, Out>(x, n, scale, inv, lo, hi, zp, out);
    return;
  }
  if (kMethod != QuantizeMethod::FMA_RECIPROCAL && kStride == 0 && HostHasAvx512()) {
    QuantizeRunSmallAvx512<M, kMethod, kStride, In, Real, Out>(x, n, scale, inv, lo, hi, zp, out);
    return;
  }
#endif
  QuantizeRunSmallGeneric<M, kMethod, kStride, In, Real, Out>(x, n, scale, inv, lo, hi, zp, out);
}

// Real = float (fp32) or double (fp64): every operation is one IEEE operation in Real. The scale is
// used as Real (a float64 scale is rounded to float32 for fp32, as engines store float32 scales).
template <typename In, typename Real, typename Out>
void Quantize(const In* x, const ParamLayout& L, const Real* scale, const int32_t* zp, const IntRange& range,
              OverflowMode overflow, RoundingMode rounding, uint64_t seed, QuantizeMethod method, Out* out) {
  const int64_t n_params = L.kind == 0 ? 1 : (L.kind == 1 ? L.D : L.outer * L.n_groups * L.inner);
  std::vector<Real> inv(static_cast<size_t>(n_params));
  for (int64_t p = 0; p < n_params; ++p) inv[p] = Real(1) / scale[p];
  // Wide saturation bounds before WRAP so the float -> int64 conversion is defined.
  const int64_t wide = int64_t{1} << 62;
  const bool small = overflow == OverflowMode::SATURATE && rounding != RoundingMode::STOCHASTIC &&
                     range.lo > -(int64_t{1} << 21) && range.hi < (int64_t{1} << 21);
  if (small) {
    // Clamp bounds of t per parameter: [qmin - zp, qmax - zp] when zp is added after rounding.
    const bool adds_zp = method == QuantizeMethod::DIVIDE || method == QuantizeMethod::MULTIPLY_RECIPROCAL;
    std::vector<Real> lo(static_cast<size_t>(n_params)), hi(static_cast<size_t>(n_params));
    for (int64_t p = 0; p < n_params; ++p) {
      lo[p] = static_cast<Real>(range.lo - (adds_zp ? zp[p] : 0));
      hi[p] = static_cast<Real>(range.hi - (adds_zp ? zp[p] : 0));
    }
    DispatchRoundingMode(rounding, [&](auto mode_tag) {
      constexpr RoundingMode M = decltype(mode_tag)::value;
      auto with_method = [&](auto method_tag) {
        constexpr QuantizeMethod kM = decltype(method_tag)::value;
        auto run = [&](auto stride_tag, int64_t x_off, int64_t n, int64_t p_off) {
          QuantizeRunSmall<M, kM, decltype(stride_tag)::value, In, Real, Out>(
              x + x_off, n, scale + p_off, inv.data() + p_off, lo.data() + p_off, hi.data() + p_off, zp + p_off, out + x_off);
        };
        const std::integral_constant<int, 0> same;
        const std::integral_constant<int, 1> step;
        if (L.kind == 0) {
          run(same, 0, L.outer * L.D * L.inner, 0);
        } else if (L.kind == 1 && L.inner == 1) {
          for (int64_t o = 0; o < L.outer; ++o) run(step, o * L.D, L.D, 0);
        } else if (L.kind == 1) {
          for (int64_t o = 0; o < L.outer; ++o)
            for (int64_t d = 0; d < L.D; ++d) run(same, (o * L.D + d) * L.inner, L.inner, d);
        } else if (L.inner == 1) {
          for (int64_t o = 0; o < L.outer; ++o)
            for (int64_t g = 0; g < L.n_groups; ++g) {
              const int64_t d0 = g * L.group_size;
              run(same, o * L.D + d0, std::min(L.group_size, L.D - d0), o * L.n_groups + g);
            }
        } else {
          for (int64_t o = 0; o < L.outer; ++o)
            for (int64_t d = 0; d < L.D; ++d)
              run(step, (o * L.D + d) * L.inner, L.inner, (o * L.n_groups + d / L.group_size) * L.inner);
        }
      };
      switch (method) {
        case QuantizeMethod::DIVIDE:
          with_method(std::integral_constant<QuantizeMethod, QuantizeMethod::DIVIDE>{}); break;
        case QuantizeMethod::MULTIPLY_RECIPROCAL:
          with_method(std::integral_constant<QuantizeMethod, QuantizeMethod::MULTIPLY_RECIPROCAL>{}); break;
        case QuantizeMethod::FMA_RECIPROCAL:
          with_method(std::integral_constant<QuantizeMethod, QuantizeMethod::FMA_RECIPROCAL>{}); break;
        default:
          with_method(std::integral_constant<QuantizeMethod, QuantizeMethod::MULTIPLY_ADD_RECIPROCAL>{}); break;
      }
    });
    return;
  }
  DispatchRoundingMode(rounding, [&](auto mode_tag) {
    constexpr RoundingMode M = decltype(mode_tag)::value;
    for (int64_t o = 0; o < L.outer; ++o) {
      for (int64_t d = 0; d < L.D; ++d) {
        for (int64_t i = 0; i < L.inner; ++i) {
          const int64_t flat = (o * L.D + d) * L.inner + i;
          const int64_t p = L.Index(o, d, i);
          const Real xv = static_cast<Real>(x[flat]);
          const int32_t z = zp[p];
          double t;
          int64_t add = 0;
          switch (method) {
            case QuantizeMethod::DIVIDE: t = static_cast<double>(xv / scale[p]); add = z; break;
            case QuantizeMethod::MULTIPLY_RECIPROCAL: t = static_cast<double>(xv * inv[p]); add = z; break;
            case QuantizeMethod::FMA_RECIPROCAL: t = static_cast<double>(std::fma(xv, inv[p], static_cast<Real>(z))); break;
            default: t = static_cast<double>(static_cast<Real>(xv * inv[p]) + static_cast<Real>(z)); break;
          }
          const int64_t q = RoundFloatToInt<M>(t, -wide, wide, seed, static_cast<uint64_t>(flat)) + add;
          out[flat] = static_cast<Out>(overflow == OverflowMode::WRAP ? Wrap(q, range) : Saturate(q, range));
        }
      }
    }
  });
}

template <typename In, typename Real>
void Dequantize(const In* q, const ParamLayout& L, const Real* scale, const int32_t* zp, DequantizeMethod method,
                Real* out) {
  for (int64_t o = 0; o < L.outer; ++o) {
    for (int64_t d = 0; d < L.D; ++d) {
      for (int64_t i = 0; i < L.inner; ++i) {
        const int64_t flat = (o * L.D + d) * L.inner + i;
        const int64_t p = L.Index(o, d, i);
        if (method == DequantizeMethod::SUBTRACT_THEN_SCALE) {
          out[flat] = static_cast<Real>(static_cast<int64_t>(q[flat]) - zp[p]) * scale[p];
        } else {
          out[flat] = static_cast<Real>(q[flat]) * scale[p] - static_cast<Real>(zp[p]) * scale[p];
        }
      }
    }
  }
}

}  // namespace hwsim
