// Quantize (float -> int) and dequantize (int -> float) with per-tensor, per-channel (any axis) and
// per-group (blocks of `group_size` along an axis) parameters, modelling each engine's float steps.
//
// Layout: the input is viewed as [outer, D, inner] around the quantization axis. Parameter index:
//   per-tensor 0; per-channel d; per-group ((o * n_groups) + d / group_size) * inner + i, i.e. the
//   parameter array has the input's shape with the axis shrunk to n_groups = ceil(D / group_size)
//   (ONNX QuantizeLinear `block_size`).
#pragma once

#include <cmath>
#include <cstdint>
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
        const double r = RoundFloat(t, rounding, seed, static_cast<uint64_t>(flat));
        const int64_t q = SaturateDoubleToInt(r, -wide, wide) + add;
        out[flat] = static_cast<Out>(ApplyOverflow(q, range, overflow));
      }
    }
  }
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
