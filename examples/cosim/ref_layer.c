/*
 * Example kernel for `hwsim cosim`: a plain C model of an integer Conv2D / DepthwiseConv2D / Dense layer
 * with the four requantization schemes of include/hwsim_kernel.h (TFLite double and single rounding,
 * float scale, DPU power-of-two shift). Written from the formulas in the header, not from hwsim's code.
 *
 *   cc -O2 -shared -fPIC -Iinclude examples/cosim/ref_layer.c -o libref_layer.so -lm
 *   hwsim cosim --kernel ./libref_layer.so --layer conv1 --target arm_tflite examples/lenet5.npz
 *
 * Build with -DEXAMPLE_BUG_SINGLE_ROUNDING (see ref_layer_wrong.c) to get a deliberately wrong variant
 * that rounds once where the TFLite conv rounds twice.
 */
#include <math.h>
#include <stdint.h>

#include "hwsim_kernel.h"

int hwsim_kernel_abi_version(void) { return HWSIM_KERNEL_ABI_VERSION; }

static int32_t load(const hwsim_tensor *t, int64_t i) {
  switch (t->dtype) {
    case HWSIM_INT8: return ((const int8_t *)t->data)[i];
    case HWSIM_UINT8: return ((const uint8_t *)t->data)[i];
    case HWSIM_INT16: return ((const int16_t *)t->data)[i];
    case HWSIM_UINT16: return ((const uint16_t *)t->data)[i];
    default: return ((const int32_t *)t->data)[i];
  }
}

static void store(hwsim_tensor *t, int64_t i, int32_t v) {
  switch (t->dtype) {
    case HWSIM_INT8: ((int8_t *)t->data)[i] = (int8_t)v; break;
    case HWSIM_UINT8: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
    case HWSIM_INT16: ((int16_t *)t->data)[i] = (int16_t)v; break;
    case HWSIM_UINT16: ((uint16_t *)t->data)[i] = (uint16_t)v; break;
    default: ((int32_t *)t->data)[i] = v; break;
  }
}

/* gemmlowp SaturatingRoundingDoublingHighMul: round(a*b / 2^31), ties toward +inf. */
static int32_t srdhm(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  int64_t ab = (int64_t)a * (int64_t)b;
  int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
  return (int32_t)((ab + nudge) / (1LL << 31));
}

/* gemmlowp RoundingDivideByPOT: x / 2^n, ties away from zero. */
static int32_t rdbp(int32_t x, int n) {
  int32_t mask = (int32_t)((1LL << n) - 1);
  int32_t rem = x & mask;
  int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> n) + (rem > threshold ? 1 : 0);
}

static int32_t mbqm_double(int32_t x, int32_t m, int shift) {
  int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
  return rdbp(srdhm((int32_t)((uint32_t)x << left), m), right);
}

static int32_t mbqm_single(int32_t x, int32_t m, int shift) {
  int total = 31 - shift;
  return (int32_t)(((int64_t)x * m + (1LL << (total - 1))) >> total);
}

/* Round a double to an integer with an hwsim_rounding mode. */
static double round_mode(double v, int mode) {
  switch (mode) {
    case HWSIM_ROUND_HALF_TO_EVEN: {
      double r = floor(v), f = v - r;
      if (f > 0.5 || (f == 0.5 && fmod(r, 2.0) != 0.0)) r += 1.0;
      return r;
    }
    case HWSIM_ROUND_HALF_AWAY_FROM_ZERO: return v >= 0 ? floor(v + 0.5) : -floor(-v + 0.5);
    case HWSIM_ROUND_HALF_UP: return floor(v + 0.5);
    case HWSIM_ROUND_HALF_DOWN: return ceil(v - 0.5);
    case HWSIM_ROUND_HALF_TOWARD_ZERO: return v >= 0 ? ceil(v - 0.5) : -ceil(-v - 0.5);
    case HWSIM_ROUND_FLOOR: return floor(v);
    default: return trunc(v);
  }
}

/* t / 2^n for an int64 with a rounding mode (exact: the remainder decides). n <= 0 multiplies. */
static int64_t shift_round(int64_t t, int n, int mode) {
  if (n <= 0) return t * (1LL << -n);
  int64_t q = t >> n;                     /* floor */
  int64_t rem = t - (q << n);             /* in [0, 2^n) */
  int64_t half = 1LL << (n - 1);
  switch (mode) {
    case HWSIM_ROUND_HALF_UP: return q + (rem >= half);
    case HWSIM_ROUND_HALF_DOWN: return q + (rem > half);
    case HWSIM_ROUND_HALF_TO_EVEN: return q + (rem > half || (rem == half && (q & 1)));
    case HWSIM_ROUND_HALF_AWAY_FROM_ZERO: return q + (rem > half || (rem == half && t >= 0));
    case HWSIM_ROUND_HALF_TOWARD_ZERO: return q + (rem > half || (rem == half && t < 0));
    case HWSIM_ROUND_FLOOR: return q;
    default: return q + (t < 0 && rem != 0); /* truncate */
  }
}

static int32_t requantize(const hwsim_quant *q, int64_t acc_no_bias, int32_t bias, int c) {
  int64_t y;
  if (q->scheme == HWSIM_REQUANT_POW2_SHIFT) {
    int64_t b = q->shift_bias >= 0 ? (int64_t)bias * (1LL << q->shift_bias) : ((int64_t)bias >> -q->shift_bias);
    y = shift_round(acc_no_bias + b, q->shift_cut, q->rounding) + q->output_zero_point;
  } else {
    int32_t acc = (int32_t)(uint32_t)((uint64_t)acc_no_bias + (uint32_t)bias); /* int32 wrap */
    if (q->scheme == HWSIM_REQUANT_FLOAT_SCALE) {
      float v = (float)acc * q->scale[c];
      if (q->clamp_before_round) {
        float lo = (float)(q->act_min - q->output_zero_point), hi = (float)(q->act_max - q->output_zero_point);
        v = v < lo ? lo : (v > hi ? hi : v);
      }
      y = (int64_t)round_mode((double)v, q->rounding) + q->output_zero_point;
    } else {
#ifdef EXAMPLE_BUG_SINGLE_ROUNDING
      const int twice = 0; /* the bug: rounds once whatever the scheme says */
#else
      const int twice = q->scheme == HWSIM_REQUANT_FIXED_POINT_DOUBLE;
#endif
      y = (int64_t)(twice ? mbqm_double(acc, q->multiplier[c], q->shift[c])
                          : mbqm_single(acc, q->multiplier[c], q->shift[c])) + q->output_zero_point;
    }
  }
  if (y < q->act_min) y = q->act_min;
  if (y > q->act_max) y = q->act_max;
  return (int32_t)y;
}

static int run_dense(const hwsim_layer *l) {
  int64_t n = l->input.shape[0], in = l->input.shape[1], out = l->weights.shape[0];
  if (l->weights.shape[1] != in || l->output.shape[1] != out) return HWSIM_E_ARGUMENT;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t o = 0; o < out; ++o) {
      int64_t acc = 0;
      for (int64_t i = 0; i < in; ++i)
        acc += (int64_t)(load(&l->input, r * in + i) - l->quant.input_zero_point) * load(&l->weights, o * in + i);
      store((hwsim_tensor *)&l->output, r * out + o, requantize(&l->quant, acc, load(&l->bias, o), (int)o));
    }
  return HWSIM_OK;
}

static int run_conv(const hwsim_layer *l) {
  const int64_t N = l->input.shape[0], H = l->input.shape[1], W = l->input.shape[2], C = l->input.shape[3];
  const int64_t O = l->weights.shape[0], KH = l->weights.shape[1], KW = l->weights.shape[2];
  const int64_t KI = l->weights.shape[3];
  const int64_t OH = l->output.shape[1], OW = l->output.shape[2];
  const int depthwise = l->op == HWSIM_OP_DEPTHWISE_CONV2D;
  const int64_t groups = depthwise ? C : l->groups;
  const int64_t out_per_group = O / groups;
  if (l->output.shape[3] != O || (!depthwise && KI * groups != C)) return HWSIM_E_ARGUMENT;
  for (int64_t b = 0; b < N; ++b)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox)
        for (int64_t o = 0; o < O; ++o) {
          const int64_t g = o / out_per_group;
          int64_t acc = 0;
          for (int64_t ky = 0; ky < KH; ++ky) {
            const int64_t iy = oy * l->strides[0] - l->pads[0] + ky * l->dilations[0];
            if (iy < 0 || iy >= H) continue;
            for (int64_t kx = 0; kx < KW; ++kx) {
              const int64_t ix = ox * l->strides[1] - l->pads[1] + kx * l->dilations[1];
              if (ix < 0 || ix >= W) continue;
              for (int64_t ki = 0; ki < KI; ++ki) {
                const int64_t ci = depthwise ? o / l->depth_multiplier : g * KI + ki;
                const int32_t x = load(&l->input, ((b * H + iy) * W + ix) * C + ci) - l->quant.input_zero_point;
                acc += (int64_t)x * load(&l->weights, ((o * KH + ky) * KW + kx) * KI + ki);
              }
            }
          }
          store((hwsim_tensor *)&l->output, ((b * OH + oy) * OW + ox) * O + o,
                requantize(&l->quant, acc, load(&l->bias, o), (int)o));
        }
  return HWSIM_OK;
}

int hwsim_kernel_run(const hwsim_layer *l) {
  if (l->abi_version != HWSIM_KERNEL_ABI_VERSION || l->struct_size != sizeof(hwsim_layer)) return HWSIM_E_ARGUMENT;
  /* Not modelled here: the DPU's fused leaky ReLU and the x86 int16 pair saturation. */
  if (l->quant.fused_activation == HWSIM_ACT_LEAKY_RELU_26_256) return HWSIM_E_UNSUPPORTED;
  if (l->accumulation != HWSIM_ACC_EXACT) return HWSIM_E_UNSUPPORTED;
  if (l->op == HWSIM_OP_DENSE) return run_dense(l);
  if (l->op == HWSIM_OP_CONV2D || l->op == HWSIM_OP_DEPTHWISE_CONV2D) return run_conv(l);
  return HWSIM_E_UNSUPPORTED;
}
