// 2-D pooling on NHWC integer tensors: max pool, TFLite average pool, Xilinx DPU average pool.
// Geometry: output (oh, ow) reads input rows oh*stride_h - pad_top + [0, kh) and columns
// ow*stride_w - pad_left + [0, kw); taps outside the input are "padding".
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "hwsim/assumptions.h"
#include "hwsim/requantize.h"
#include "hwsim/rounding.h"

namespace hwsim {

struct PoolGeometry {
  int64_t N, H, W, C;
  int64_t kh, kw, stride_h, stride_w;
  int64_t pad_top, pad_bottom, pad_left, pad_right;
  int64_t OH() const { return (H + pad_top + pad_bottom - kh) / stride_h + 1; }
  int64_t OW() const { return (W + pad_left + pad_right - kw) / stride_w + 1; }
};

// Visits every output position (n, oh, ow): reduces the in-bounds taps channel-vector by channel-
// vector (NHWC: the C values of one tap are contiguous, so the inner loop vectorises), then calls
// finish(c, reduced, count, padded_count) for each channel. count = in-bounds taps; padded_count =
// taps inside the padded input (count_include_pad). Acc is int32_t for sums and max (codes <= 16 bit,
// windows < 2^15 taps) or int64_t otherwise; init is the reduction's identity.
// Output rows [row_begin, row_end) of N * OH (all of them by default), so callers can split the work.
template <typename T, typename Acc, typename Reduce, typename Finish>
void PoolLoop(const T* x, const PoolGeometry& g, T* out, Acc init, Reduce reduce, Finish finish,
              int64_t row_begin = 0, int64_t row_end = -1) {
  const int64_t OH = g.OH(), OW = g.OW(), C = g.C;
  if (row_end < 0) row_end = g.N * OH;
  std::vector<Acc> acc(static_cast<size_t>(C));
  for (int64_t row = row_begin; row < row_end; ++row) {
      const int64_t n = row / OH, oh = row % OH;
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t h0 = oh * g.stride_h - g.pad_top, w0 = ow * g.stride_w - g.pad_left;
        const int64_t hs = std::max<int64_t>(h0, 0), he = std::min<int64_t>(h0 + g.kh, g.H);
        const int64_t ws = std::max<int64_t>(w0, 0), we = std::min<int64_t>(w0 + g.kw, g.W);
        const int64_t count = std::max<int64_t>(he - hs, 0) * std::max<int64_t>(we - ws, 0);
        const int64_t ph = std::min<int64_t>(h0 + g.kh, g.H + g.pad_bottom) - h0;
        const int64_t pw = std::min<int64_t>(w0 + g.kw, g.W + g.pad_right) - w0;
        const int64_t padded_count = ph * pw;
        Acc* __restrict a = acc.data();
        for (int64_t c = 0; c < C; ++c) a[c] = init;
        for (int64_t h = hs; h < he; ++h)
          for (int64_t w = ws; w < we; ++w) {
            const T* __restrict px = x + ((n * g.H + h) * g.W + w) * C;
            for (int64_t c = 0; c < C; ++c) a[c] = reduce(a[c], static_cast<Acc>(px[c]));
          }
        T* y = out + ((n * OH + oh) * OW + ow) * C;
        for (int64_t c = 0; c < C; ++c) y[c] = finish(a[c], count, padded_count);
      }
  }
}

// Max of the in-bounds raw codes, then clamp to [act_min, act_max] (TFLite MaxPool; an all-padding
// window, impossible when pads < kernel, would give act_min).
// The running maximum stays in T (the codes' own type), so the channel loop compiles to byte / word maxima
// (PMAXUB on every x86-64); starting from T's minimum instead of INT32_MIN changes nothing after the clamp.
// Output rows [row_begin, row_end) of N * OH (all by default).
template <typename T>
void MaxPool2d(const T* x, const PoolGeometry& g, int64_t act_min, int64_t act_max, T* out, int64_t row_begin = 0,
               int64_t row_end = -1) {
  PoolLoop(x, g, out, std::numeric_limits<T>::min(), [](T m, T v) { return v > m ? v : m; },
           [&](T m, int64_t, int64_t) { return static_cast<T>(std::min<int64_t>(std::max<int64_t>(m, act_min), act_max)); },
           row_begin, row_end);
}

// TFLite AveragePool (reference/integer_ops/pooling.h): acc = sum of in-bounds raw codes (zero point
// NOT subtracted); count = in-bounds taps (or, with count_include_pad, taps inside the padded input,
// padding adding 0); avg = acc > 0 ? (acc + count/2) / count : (acc - count/2) / count with C truncating
// division, i.e. round half away from zero; clamp to [act_min, act_max].
template <typename T>
void AvgPool2dTflite(const T* x, const PoolGeometry& g, bool count_include_pad, int64_t act_min, int64_t act_max, T* out) {
  PoolLoop(x, g, out, int64_t{0}, [](int64_t s, int64_t v) { return s + v; },
           [&](int64_t s, int64_t count, int64_t padded_count) {
             const int64_t k = count_include_pad ? padded_count : count;
             const int64_t avg = s > 0 ? (s + k / 2) / k : (s - k / 2) / k;
             return static_cast<T>(std::min(std::max(avg, act_min), act_max));
           });
}

// DPU average pool (vai_library pool-fix; numerics.md C.7): y = sat(round(sum * F / 2^(S + shift)))
// with sum over in-bounds taps (padding adds 0, divisor fixed by F/2^S ~ 1/(kh*kw)), shift = p_in - p_out
// (negative: left shift), one rounding (default HALF_UP = DPU_ROUND).
template <typename T>
void AvgPool2dDpu(const T* x, const PoolGeometry& g, int64_t factor, int factor_shift, int shift, int64_t qmin,
                  int64_t qmax, RoundingMode mode, T* out) {
  const int total = factor_shift + shift;
  PoolLoop(x, g, out, int64_t{0}, [](int64_t s, int64_t v) { return s + v; },
           [&](int64_t s, int64_t, int64_t) {
             const int128_t num = static_cast<int128_t>(s) * factor;
             const int128_t v = total >= 0 ? RoundingRightShift<int128_t>(num, total, mode) : num * (int128_t{1} << -total);
             return static_cast<T>(v < qmin ? qmin : (v > qmax ? qmax : static_cast<int64_t>(v)));
           });
}

struct DpuAvgPoolFactor {
  int64_t factor;
  int shift;
};

// F / 2^S approximating 1 / (kh*kw) for the DPU (numerics.md C.7). Fixed table first: 3x3 -> 7/64,
// 5x5 -> 10/256, 6x6 (and 3x6, 6x3) -> 7/256, 7x7 -> 21/1024, 14x14 -> 21/4096. Otherwise, with
// k = kh*kw: for S = 0 .. ceil(log2(k*128)) - 1, F = round(2^S / k) (half away from zero), keep the first S
// with the strictly smallest |F/2^S - 1/k| (compared exactly: |F*k - 2^S| / (k * 2^S)).
inline DpuAvgPoolFactor DpuAvgPoolFactorFor(int64_t kh, int64_t kw, bool use_table = true) {
  if (!use_table) {
    // fall through to the search
  } else if (kh == 3 && kw == 3) {
    return {7, 6};
  } else if (kh == 5 && kw == 5) {
    return {10, 8};
  } else if ((kh == 6 && kw == 6) || (kh == 3 && kw == 6) || (kh == 6 && kw == 3)) {
    return {7, 8};
  } else if (kh == 7 && kw == 7) {
    return {21, 10};
  } else if (kh == 14 && kw == 14) {
    return {21, 12};
  }
  const int64_t k = kh * kw;
  int s_max = 0;
  while ((int64_t{1} << s_max) < k * 128) ++s_max;  // s_max = ceil(log2(k * 128))
  DpuAvgPoolFactor best{0, -1};
  // error(S) = |F*k - 2^S| / (k * 2^S); compare e1/2^S1 < e2/2^S2 as e1 * 2^S2 < e2 * 2^S1.
  int128_t best_err = 0;
  for (int s = 0; s < s_max; ++s) {
    const int64_t p = int64_t{1} << s;
    const int64_t f = (2 * p + k) / (2 * k);  // round half away from zero of p / k (p, k > 0)
    const int128_t err = static_cast<int128_t>(f * k > p ? f * k - p : p - f * k);
    if (best.shift < 0 || err * (int128_t{1} << best.shift) < best_err * (int128_t{1} << s)) {
      best = {f, s};
      best_err = err;
    }
  }
  return best;
}

// Global average pool with a float32 output scale (onnxruntime's QLinearGlobalAveragePool on x86, MLAS):
// per image n and channel c of x [N, HW, C]
//   acc = sum over the HW positions of q - HW * zp_in        (int32 wrap-around, as MLAS sums in int32)
//   out = RequantizeFloat(acc, scale, zp_out, qmin, qmax)    (float32(acc) * scale, clamped to
//         [qmin - zp_out, qmax - zp_out], rounded half to even, + zp_out)
// The sums run over whole rows of C channels (NHWC: contiguous), so the inner loop vectorises.
template <typename T>
void GlobalAvgPoolFloatScale(const T* x, int64_t n, int64_t hw, int64_t c, int32_t x_zero_point, float scale,
                             int32_t y_zero_point, int64_t qmin, int64_t qmax, T* out) {
  std::vector<int32_t> acc(static_cast<size_t>(n * c));
  const uint32_t offset = static_cast<uint32_t>(hw) * static_cast<uint32_t>(x_zero_point);
  for (int64_t i = 0; i < n; ++i) {
    uint32_t* a = reinterpret_cast<uint32_t*>(acc.data() + i * c);
    for (int64_t ch = 0; ch < c; ++ch) a[ch] = 0u - offset;
    for (int64_t p = 0; p < hw; ++p) {
      const T* row = x + (i * hw + p) * c;
      for (int64_t ch = 0; ch < c; ++ch) a[ch] += static_cast<uint32_t>(static_cast<int32_t>(row[ch]));
    }
  }
  FloatRequantOptions o;
  o.clamp_before_rounding = true;
  o.rounding = RoundingMode::HALF_TO_EVEN;
  RequantizeFloat<float, T>(acc.data(), n, c, nullptr, nullptr, nullptr, 0, &scale, 1, &y_zero_point, 1, qmin, qmax,
                            o, out);
}

}  // namespace hwsim
