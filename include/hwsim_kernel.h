/*
 * hwsim_kernel.h: the C ABI of a user's model of one layer, for `hwsim cosim`.
 *
 * A shared library implements two functions:
 *
 *   int hwsim_kernel_abi_version(void);          returns HWSIM_KERNEL_ABI_VERSION it was compiled with
 *   int hwsim_kernel_run(const hwsim_layer *l);  computes l->output from l->input, weights, bias, quant
 *
 * hwsim quantizes and simulates the model, then calls hwsim_kernel_run once for the chosen layer with that
 * layer's integer input (all samples of the batch), integer weights, int32 bias and the target's
 * requantization parameters, and compares the integers the kernel wrote with its own, element by element.
 * hwsim owns every buffer; the kernel writes only output.data and must not keep pointers after returning.
 *
 * Layout: activations NHWC (Dense: [N, in] -> [N, out]); Conv2D weights OHWI [O, KH, KW, I/groups];
 * depthwise weights [C*multiplier, KH, KW, 1]; Dense weights [out, in]. Tensors are dense, C order;
 * strides are given in elements for convenience. Per-channel parameters are indexed by output channel.
 *
 * Requantization (one scheme per layer, the target's; see docs/golden.md "C co-simulation ABI"):
 *   acc[c]   = sum (x - input_zero_point) * w  +  bias[c]            (int32 accumulation)
 *   FIXED_POINT_DOUBLE  y = MultiplyByQuantizedMultiplier(acc, multiplier[c], shift[c]) + output_zero_point
 *                       (gemmlowp: SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT; shift > 0
 *                        is a left shift)
 *   FIXED_POINT_SINGLE  y = ((int64)acc * multiplier[c] + 2^(30-shift[c])) >> (31 - shift[c]) + output_zero_point
 *   FLOAT_SCALE         y = round(float(acc) * scale[c]) + output_zero_point, in float32, `rounding`
 *                       (clamp_before_round != 0: clamp the float to [act_min - zp, act_max - zp] first)
 *   POW2_SHIFT          y = round((acc_without_bias + bias[c] * 2^shift_bias) / 2^shift_cut), `rounding`
 *                       (negative shift_bias: bias >> -shift_bias, exact); DPU
 *   then y = min(max(y, act_min), act_max): act_min/act_max already include a fused ReLU/ReLU6.
 * For POW2_SHIFT the bias is not in the accumulator: it is added with its own shift as above.
 *
 * Return HWSIM_OK, or a nonzero hwsim_status; hwsim reports the code and the layer.
 */
#ifndef HWSIM_KERNEL_H
#define HWSIM_KERNEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a struct below changes layout or meaning; hwsim refuses a library reporting another. */
#define HWSIM_KERNEL_ABI_VERSION 1
#define HWSIM_MAX_RANK 8

/* Element types of hwsim_tensor.dtype. */
enum hwsim_dtype {
  HWSIM_INT8 = 1,
  HWSIM_UINT8 = 2,
  HWSIM_INT16 = 3,
  HWSIM_UINT16 = 4,
  HWSIM_INT32 = 5,
  HWSIM_FLOAT32 = 6
};

/* Layer kinds of hwsim_layer.op. */
enum hwsim_op {
  HWSIM_OP_CONV2D = 1,           /* groups >= 1 */
  HWSIM_OP_DEPTHWISE_CONV2D = 2, /* groups == input channels, depth_multiplier >= 1 */
  HWSIM_OP_DENSE = 3
};

/* Requantization schemes of hwsim_quant.scheme (the target's per-op choice). */
enum hwsim_requant {
  HWSIM_REQUANT_FIXED_POINT_DOUBLE = 1,
  HWSIM_REQUANT_FIXED_POINT_SINGLE = 2,
  HWSIM_REQUANT_FLOAT_SCALE = 3,
  HWSIM_REQUANT_POW2_SHIFT = 4
};

/* Rounding of FLOAT_SCALE and POW2_SHIFT (same numbering as hwsim._core.RoundingMode). */
enum hwsim_rounding {
  HWSIM_ROUND_HALF_TO_EVEN = 0,
  HWSIM_ROUND_HALF_AWAY_FROM_ZERO = 1,
  HWSIM_ROUND_HALF_UP = 2,
  HWSIM_ROUND_HALF_DOWN = 3,
  HWSIM_ROUND_HALF_TOWARD_ZERO = 4,
  HWSIM_ROUND_FLOOR = 5,
  HWSIM_ROUND_TRUNCATE = 6
};

/* Fused activation of hwsim_quant.fused_activation (ReLU/ReLU6 are already in act_min/act_max). */
enum hwsim_activation {
  HWSIM_ACT_NONE = 0,
  HWSIM_ACT_RELU = 1,
  HWSIM_ACT_RELU6 = 2,
  HWSIM_ACT_LEAKY_RELU_26_256 = 3 /* DPU: negative sums times 26/256 before the final shift */
};

/* How the products are summed (hwsim_layer.accumulation): exact, or an x86 instruction's saturation. */
enum hwsim_accumulation {
  HWSIM_ACC_EXACT = 0,            /* exact int32 sums */
  HWSIM_ACC_AVX2_PAIRS = 1,       /* u8*s8 products added in adjacent pairs saturating to int16 (VPMADDUBSW) */
  HWSIM_ACC_FBGEMM_DW_PAIRS = 2   /* fbgemm's depthwise kernel: pairs saturating to int16 */
};

enum hwsim_status {
  HWSIM_OK = 0,
  HWSIM_E_UNSUPPORTED = 1, /* this kernel does not implement the layer's op, dtype or scheme */
  HWSIM_E_ARGUMENT = 2,    /* a shape, stride or parameter is out of what the kernel accepts */
  HWSIM_E_INTERNAL = 3
};

typedef struct hwsim_tensor {
  int32_t dtype;                    /* enum hwsim_dtype */
  int32_t rank;                     /* <= HWSIM_MAX_RANK */
  int64_t shape[HWSIM_MAX_RANK];
  int64_t strides[HWSIM_MAX_RANK];  /* in elements; dense C order (NHWC) */
  void *data;                       /* const for inputs; the kernel writes the output's */
} hwsim_tensor;

typedef struct hwsim_quant {
  int32_t scheme;                   /* enum hwsim_requant */
  int32_t rounding;                 /* enum hwsim_rounding (FLOAT_SCALE, POW2_SHIFT) */
  int32_t input_zero_point;
  int32_t weight_zero_point;        /* 0: hwsim's weights are symmetric */
  int32_t output_zero_point;
  int32_t act_min;                  /* clamp of the output codes, fused ReLU/ReLU6 included */
  int32_t act_max;
  int32_t channels;                 /* length of the per-channel arrays (output channels) */
  const int32_t *multiplier;        /* FIXED_POINT_*: Q31 multipliers, per channel */
  const int32_t *shift;             /* FIXED_POINT_*: exponent, > 0 left, per channel */
  const float *scale;               /* FLOAT_SCALE: s_in * s_w[c] / s_out as float32, per channel */
  int32_t clamp_before_round;       /* FLOAT_SCALE: 1 = clamp the scaled float before rounding */
  int32_t shift_cut;                /* POW2_SHIFT */
  int32_t shift_bias;               /* POW2_SHIFT */
  int32_t fused_activation;         /* enum hwsim_activation */
} hwsim_quant;

typedef struct hwsim_layer {
  uint32_t struct_size;             /* sizeof(hwsim_layer) as hwsim built it */
  int32_t abi_version;              /* HWSIM_KERNEL_ABI_VERSION of the caller */
  const char *name;                 /* node name, for messages */
  int32_t op;                       /* enum hwsim_op */
  int32_t strides[2];               /* H, W */
  int32_t dilations[2];             /* H, W */
  int32_t pads[4];                  /* top, left, bottom, right */
  int32_t groups;
  int32_t depth_multiplier;
  int32_t accumulation;             /* enum hwsim_accumulation: the target's summation of this layer */
  hwsim_tensor input;
  hwsim_tensor weights;             /* int8 codes (4- and 2-bit weights are held unpacked in int8) */
  hwsim_tensor bias;                /* int32, one per output channel */
  hwsim_tensor output;              /* preallocated; dtype of the output codes */
  hwsim_quant quant;
} hwsim_layer;

int hwsim_kernel_abi_version(void);
int hwsim_kernel_run(const hwsim_layer *layer);

#ifdef __cplusplus
}
#endif

#endif /* HWSIM_KERNEL_H */
