// Xilinx DPU hard-sigmoid (vai_library hard-sigmoid-fix; numerics.md C.6):
//   tmp = clamp(q * 2731 + 3 * 2731 * 2^p_in, 0, 2^32);  y = sat(round(tmp / 2^(p_in + 14 - p_out)))
// 2731 / 2^14 = 0.16668701171875 ~ 1/6, so y ~ relu6(x + 3) / 6 at output fix_pos p_out. There is no
// explicit upper relu6 clamp: for x >= 3 the value 1.000122 * 2^p_out saturates when p_out >= 7.
// One rounding (default HALF_UP = DPU_ROUND), exact in 128-bit integers.
#pragma once

#include <cstdint>

#include "hwsim/assumptions.h"
#include "hwsim/rounding.h"

namespace hwsim {

template <typename T>
void HardSigmoidDpu(const T* x, int64_t n, int p_in, int p_out, int64_t qmin, int64_t qmax, RoundingMode mode, T* out) {
  const int shift = p_in + 14 - p_out;
  const int128_t offset = int128_t{3 * 2731} * (int128_t{1} << p_in);
  const int128_t cap = int128_t{1} << 32;
  for (int64_t i = 0; i < n; ++i) {
    int128_t tmp = static_cast<int128_t>(x[i]) * 2731 + offset;
    tmp = tmp < 0 ? 0 : (tmp > cap ? cap : tmp);
    const int128_t v = shift >= 0 ? RoundingRightShift<int128_t>(tmp, shift, mode, 0, static_cast<uint64_t>(i))
                                  : tmp * (int128_t{1} << -shift);
    out[i] = static_cast<T>(v < qmin ? qmin : (v > qmax ? qmax : static_cast<int64_t>(v)));
  }
}

}  // namespace hwsim
