"""Integer numerics of hwsim: rounding, saturation, fixed point, requantization, quantize, packing.

Every function here runs in the compiled core (`hwsim._core`); this module re-exports it with the
engine presets and parameter helpers that are plain data or one-off float arithmetic. Each rounding
mode and requantization scheme has its own name; the numpy twins in `hwsim.emulate.ref_numerics`
and `hwsim.emulate.ref_ops` are the slow, obviously-correct oracles these functions are tested against.

Conventions: accumulator arrays have channels on the LAST axis; per-channel parameters have length 1
(per-tensor) or C. ``qmin``/``qmax`` are the final clamp (type range intersected with the fused
activation range).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwsim._core import (
    MultiplierVariant,
    add_float_scale,
    add_int8_tflite,
    apply_lut,
    avg_pool2d_dpu,
    avg_pool2d_tflite,
    dpu_avgpool_factor,
    eltwise_add_dpu,
    hard_sigmoid_dpu,
    lut_tflite_int8,
    max_pool2d,
    mul_float_scale,
    mul_int8_tflite,
    OverflowMode,
    RoundingMode,
    dequantize,
    int_range,
    multiply_by_quantized_multiplier,
    pack_bits,
    quantize,
    quantize_multiplier,
    requantize_fixed_point,
    requantize_float,
    requantize_pow2,
    round_float,
    rounding_divide_by_pot,
    rounding_right_shift,
    saturating_doubling_high_mul,
    saturating_rounding_doubling_high_mul,
    unpack_bits,
)

__all__ = [
    "FLOAT_REQUANT_PRESETS",
    "QUANTIZE_PRESETS",
    "MultiplierVariant",
    "OverflowMode",
    "RoundingMode",
    "add_float_scale",
    "add_int8_tflite",
    "apply_lut",
    "avg_pool2d_dpu",
    "avg_pool2d_tflite",
    "dequantize",
    "dpu_avgpool_factor",
    "eltwise_add_dpu",
    "hard_sigmoid_dpu",
    "int_range",
    "lut_tflite_int8",
    "max_pool2d",
    "mul_float_scale",
    "mul_int8_tflite",
    "multiply_by_quantized_multiplier",
    "onnxruntime_output_scale",
    "pack_bits",
    "quantize",
    "quantize_multiplier",
    "quantize_preset",
    "requantize_fixed_point",
    "requantize_float",
    "requantize_float_preset",
    "requantize_pow2",
    "round_float",
    "rounding_divide_by_pot",
    "rounding_right_shift",
    "saturating_doubling_high_mul",
    "saturating_rounding_doubling_high_mul",
    "tflite_add_params",
    "tflite_channel_multipliers",
    "tflite_mul_params",
    "unpack_bits",
]

#: Float-scale requantization as each engine does it (numerics.md A.3, A.4, B.2, B.5).
FLOAT_REQUANT_PRESETS: dict[str, dict[str, Any]] = {
    # MlasRequantizeOutput: float(acc + bias_i32) * scale, clamp in float to [qmin-zp, qmax-zp], RNE, + zp.
    "onnxruntime_mlas": dict(precision="fp32", scale_op="multiply", bias_mode="int32", clamp="before_rounding",
                             rounding=RoundingMode.HALF_TO_EVEN),
    # xnn_qs8_requantize_fp32: (float)acc * (float)scale, clamp in float, lrintf (RNE), + zp.
    "xnnpack_fp32": dict(precision="fp32", scale_op="multiply", bias_mode="int32", clamp="before_rounding",
                         rounding=RoundingMode.HALF_TO_EVEN),
    # fbgemm ReQuantizeOutput with an int32 bias: lrintf(float(acc + bias) * C_multiplier) + zp, then clamp.
    "fbgemm": dict(precision="fp32", scale_op="multiply", bias_mode="int32", clamp="after_rounding",
                   rounding=RoundingMode.HALF_TO_EVEN),
    # fbgemm float bias, generic and per-channel paths: float(raw) + bias / act_times_w_scale.
    "fbgemm_float_bias": dict(precision="fp32", scale_op="multiply", bias_mode="float_divide", clamp="after_rounding",
                              rounding=RoundingMode.HALF_TO_EVEN),
    # fbgemm float bias, AVX2/AVX512 per-tensor path: float(raw) + bias * (1 / act_times_w_scale).
    "fbgemm_float_bias_avx2": dict(precision="fp32", scale_op="multiply", bias_mode="float_reciprocal",
                                   clamp="after_rounding", rounding=RoundingMode.HALF_TO_EVEN),
    # TFLM FullyConnectedPerChannel with float scales: (int32) round(acc * (double)scale), C round = RHAZ.
    "tflite_fc_float_scale": dict(precision="fp64", scale_op="multiply", bias_mode="int32", clamp="after_rounding",
                                  rounding=RoundingMode.HALF_AWAY_FROM_ZERO),
}

#: Float -> int quantization as each engine does it (numerics.md A.1, B.2, B.3, B.5, section 7).
QUANTIZE_PRESETS: dict[str, dict[str, Any]] = {
    "onnxruntime": dict(method="divide", precision="fp32", rounding=RoundingMode.HALF_TO_EVEN),
    "tflite_reference": dict(method="divide", precision="fp32", rounding=RoundingMode.HALF_AWAY_FROM_ZERO),
    "tflite_optimized": dict(method="multiply_reciprocal", precision="fp32", rounding=RoundingMode.HALF_TO_EVEN),
    "fbgemm": dict(method="multiply_reciprocal", precision="fp32", rounding=RoundingMode.HALF_TO_EVEN),
    # torch quint8/qint8 (vectorised): fma(x, 1/s, zp); torch qint32 (scalar): (x * (1/s)) + zp, two roundings.
    "torch": dict(method="fma_reciprocal", precision="fp32", rounding=RoundingMode.HALF_TO_EVEN),
    "torch_qint32": dict(method="multiply_add_reciprocal", precision="fp32", rounding=RoundingMode.HALF_TO_EVEN),
}


def requantize_float_preset(
    acc: np.ndarray,
    preset: str,
    scale: Any,
    zero_point: Any,
    qmin: int,
    qmax: int,
    *,
    bias: np.ndarray | None = None,
    bias_scale: Any = None,
    out_dtype: Any = None,
) -> np.ndarray:
    """Float-scale requantization with one engine's float steps (a key of `FLOAT_REQUANT_PRESETS`).

    Parameters
    ----------
    acc : ndarray of int32
        Accumulators, channels on the last axis.
    preset : str
        Engine name, for example ``"onnxruntime_mlas"`` or ``"fbgemm_float_bias_avx2"``.
    scale, zero_point : scalar or 1-D
        Output multiplier (``s_in * s_w / s_out``) and output zero point, per tensor or per channel.
    qmin, qmax : int
        Final clamp.
    bias : ndarray, optional
        int32 bias for the int presets; float32 bias (with ``bias_scale`` = ``s_in * s_w``) for the
        ``fbgemm_float_bias*`` presets.
    """
    if preset not in FLOAT_REQUANT_PRESETS:
        raise ValueError(f"preset must be one of {sorted(FLOAT_REQUANT_PRESETS)}, got {preset!r}")
    options = dict(FLOAT_REQUANT_PRESETS[preset])
    if bias is None:
        options.pop("bias_mode")
    return requantize_float(acc, scale, zero_point, qmin, qmax, bias=bias, bias_scale=bias_scale,
                            out_dtype=out_dtype, **options)


def quantize_preset(x: np.ndarray, preset: str, scale: Any, zero_point: Any, qmin: int, qmax: int,
                    **kwargs: Any) -> np.ndarray:
    """`quantize` with one engine's float steps (a key of `QUANTIZE_PRESETS`); kwargs go to `quantize`."""
    if preset not in QUANTIZE_PRESETS:
        raise ValueError(f"preset must be one of {sorted(QUANTIZE_PRESETS)}, got {preset!r}")
    return quantize(x, scale, zero_point, qmin, qmax, **{**QUANTIZE_PRESETS[preset], **kwargs})


def onnxruntime_output_scale(x_scale: float, w_scale: Any, y_scale: float) -> np.ndarray:
    """Per-channel requantization scale as onnxruntime computes it: float32 (x_scale * w_scale) / y_scale."""
    xs = np.float32(x_scale)
    ws = np.atleast_1d(np.asarray(w_scale, dtype=np.float32))
    return (xs * ws) / np.float32(y_scale)


def tflite_channel_multipliers(input_scale: float, filter_scales: Any, output_scale: float,
                               single_rounding: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """TFLite conv/FC (M, shift) per channel: m_c = double(s_in) * double(s_w[c]) / double(s_out) (numerics A.2)."""
    sw = np.atleast_1d(np.asarray(filter_scales, dtype=np.float32)).astype(np.float64)
    real = np.float64(np.float32(input_scale)) * sw / np.float64(np.float32(output_scale))
    return quantize_multiplier(real, single_rounding)


def tflite_add_params(input1_scale: float, input1_zero_point: int, input2_scale: float, input2_zero_point: int,
                      output_scale: float, output_zero_point: int, *, left_shift: int = 20) -> dict[str, int]:
    """Integer parameters of TFLite int8 ADD from the float scales (numerics.md A.5, CalculateOpDataAdd).

    Returns keyword arguments for `add_int8_tflite` (without the activation range).
    """
    s1 = float(np.float32(input1_scale))
    s2 = float(np.float32(input2_scale))
    so = float(np.float32(output_scale))
    twice_max = 2.0 * max(s1, s2)
    m1, e1 = quantize_multiplier(s1 / twice_max)
    m2, e2 = quantize_multiplier(s2 / twice_max)
    mo, eo = quantize_multiplier(twice_max / ((1 << left_shift) * so))
    return dict(input1_offset=-int(input1_zero_point), input1_multiplier=m1, input1_shift=e1,
                input2_offset=-int(input2_zero_point), input2_multiplier=m2, input2_shift=e2,
                output_multiplier=mo, output_shift=eo, output_offset=int(output_zero_point), left_shift=left_shift)


def tflite_mul_params(input1_scale: float, input1_zero_point: int, input2_scale: float, input2_zero_point: int,
                      output_scale: float, output_zero_point: int, *, scale_precision: str = "fp64") -> dict[str, int]:
    """Integer parameters of TFLite int8 MUL: one multiplier for s1 * s2 / s_out.

    ``scale_precision="fp64"`` widens the float32 scales to double first (TFLM ``mul_common.cc``);
    ``"fp32"`` multiplies and divides the float32 scales in float32, as an expression on ``float``
    fields does in TF's ``kernels/mul.cc`` (our reading; check the version you emulate).
    """
    if scale_precision == "fp64":
        real = float(np.float32(input1_scale)) * float(np.float32(input2_scale)) / float(np.float32(output_scale))
    elif scale_precision == "fp32":
        real = float(np.float32(input1_scale) * np.float32(input2_scale) / np.float32(output_scale))
    else:
        raise ValueError(f"scale_precision must be 'fp64' or 'fp32', got {scale_precision!r}")
    m, e = quantize_multiplier(real)
    return dict(input1_offset=-int(input1_zero_point), input2_offset=-int(input2_zero_point),
                output_multiplier=m, output_shift=e, output_offset=int(output_zero_point))
