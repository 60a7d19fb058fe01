"""Integer kernels of activation and reduction ops, keyed by the target's kernel name.

``PREPARE[kernel](graph, target, plan, act)`` derives the integer constants of one layer from the quantization
of its input and output (or turns the plan into a reported fallback); ``RUN[kernel](model, plan, ints,
threads)`` returns its output codes. The simulator (hwsim/emulate/simulator.py) dispatches to them.

Kernels whose output depends on the input code only (TFLite HARD_SWISH and LEAKY_RELU, the DPU's leaky ReLU,
hard-sigmoid and hard-swish) are evaluated once per possible code at prepare time with the engine's exact
integer formula (``_core``), and run as a table lookup (``_core.apply_lut``): bit-identical to evaluating
the formula per element, and one memory access per element. LOGISTIC/TANH ("lut") do the same: the 8-bit
float table of numerics A.7, and for int16 (TFLite 16x8) the reference kernels' interpolated sigmoid table
evaluated over all 65,536 codes. 8-bit SOFTMAX runs in C++ over rows (csrc/hwsim/softmax_tflite.h), int16
SOFTMAX in numpy with a 65,536-entry exponential table; MEAN, XNNPACK's ADD and TFLite's requantizing QUANTIZE
(``requantize_tflite``, called by the simulator's Concat) are exact numpy vector code.

Numpy twins of every formula live in :mod:`hwsim.emulate.ref_activations`.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from hwsim import _core
from hwsim.emulate import ref_activations as ref

PREPARE: dict[str, Callable[..., None]] = {}
RUN: dict[str, Callable[..., np.ndarray]] = {}

_EIGHT_BIT = (np.dtype(np.int8), np.dtype(np.uint8))


def _register(kernel: str, prepare: Callable[..., None], run: Callable[..., np.ndarray]) -> None:
    PREPARE[kernel], RUN[kernel] = prepare, run


def _fallback(plan, reason: str) -> None:
    plan.mode, plan.reason = "fallback", f"{reason} (float32 instead)"


def all_codes(dtype: np.dtype) -> np.ndarray:
    """Every bit pattern of an 8- or 16-bit integer type, in the index order of ``_core.apply_lut``."""
    dtype = np.dtype(dtype)
    unsigned = np.dtype(f"u{dtype.itemsize}")
    return np.arange(1 << (8 * dtype.itemsize), dtype=np.int64).astype(unsigned).view(dtype)


def _table_run(model, plan, ints: dict[str, np.ndarray], threads: int) -> np.ndarray:
    return _core.apply_lut(np.ascontiguousarray(ints[plan.node.inputs[0]]), plan.consts["table"])


def _f32(v: float) -> np.float32:
    return np.float32(v)


# ---------------------------------------------------------------------------------------------------------
# TFLite HARD_SWISH (numerics A.8)


def hard_swish_params(input_scale: float, output_scale: float) -> dict[str, int]:
    """int16 multipliers of HARD_SWISH (TFLite HardSwishPrepare, numerics A.8).

    s_hi = float32(s_in / 128); QuantizeMultiplier of float32(s_hi / s_out) and float32(s_hi / (3/32768)),
    each reduced to int16 by DownScaleInt32ToInt16Multiplier ((M + 2^15) >> 16, 32767 near the top).
    """
    hires = _f32(_f32(input_scale) * _f32(1.0 / 128.0))

    def m16(real: np.float32) -> tuple[int, int]:
        m, e = _core.quantize_multiplier(float(real))
        return (32767 if m >= 2**31 - 1 - 2**15 else (int(m) + 2**15) >> 16), int(e)

    mo, eo = m16(_f32(hires / _f32(output_scale)))
    mr, er = m16(_f32(hires / _f32(3.0 / 32768.0)))
    return {"output_multiplier": mo, "output_shift": eo, "reluish_multiplier": mr, "reluish_shift": er}


def _prepare_hard_swish(graph, target, plan, act) -> None:
    x_q, y_q = act[plan.node.inputs[0]], act[plan.output]
    if x_q.dtype not in _EIGHT_BIT or y_q.dtype != x_q.dtype:
        return _fallback(plan, "HARD_SWISH runs on int8/uint8 only")
    prm = hard_swish_params(x_q.scale, y_q.scale)
    if prm["output_shift"] > 0:  # TFLite requires s_in / (128 s_out) < 1 (HardSwishPrepare)
        return _fallback(plan, "HARD_SWISH needs s_in < 128 s_out")
    if prm["reluish_shift"] > 15:
        return _fallback(plan, "HARD_SWISH reluish multiplier out of the int16 range")
    plan.consts.update(prm)
    plan.consts["table"] = _core.hard_swish_tflite(all_codes(x_q.dtype), input_zero_point=x_q.zero_point,
                                                   output_zero_point=y_q.zero_point, qmin=y_q.qmin,
                                                   qmax=y_q.qmax, **prm)


_register("tflite_hard_swish", _prepare_hard_swish, _table_run)


# ---------------------------------------------------------------------------------------------------------
# TFLite LEAKY_RELU: reference (numerics A.7) and XNNPACK (measured, test_leaky_relu_all_codes)


def leaky_relu_params(input_scale: float, output_scale: float, alpha: float) -> dict[str, int]:
    """Reference LEAKY_RELU multipliers: QuantizeMultiplier of s_in/s_out and s_in·alpha/s_out, each ratio
    computed in float32 and then widened (TFLite LeakyReluPrepare: `double m = input->params.scale *
    params->alpha / output->params.scale`, float operands)."""
    si, so, a = _f32(input_scale), _f32(output_scale), _f32(alpha)
    mi, ei = _core.quantize_multiplier(float(_f32(si / so)))
    ma, ea = _core.quantize_multiplier(float(_f32(_f32(si * a) / so)))
    return {"multiplier_identity": int(mi), "shift_identity": int(ei), "multiplier_alpha": int(ma),
            "shift_alpha": int(ea)}


def leaky_relu_xnnpack_params(input_scale: float, output_scale: float, alpha: float) -> dict[str, int]:
    """XNNPACK LEAKY_RELU 8-bit multipliers: rint(256·float32(s_in/s_out)), rint(256·float32(alpha·s_in/s_out))."""
    si, so, a = _f32(input_scale), _f32(output_scale), _f32(alpha)
    return {"positive_multiplier": int(np.rint(256 * np.float64(_f32(si / so)))),
            "negative_multiplier": int(np.rint(256 * np.float64(_f32(_f32(a * si) / so))))}


def _prepare_leaky_relu(graph, target, plan, act) -> None:
    x_q, y_q = act[plan.node.inputs[0]], act[plan.output]
    alpha = float(plan.node.attrs.get("alpha", 0.01))
    reference = plan.impl.params.get("arithmetic", "multiplier") != "fixed_point_8bit"
    codes = (*_EIGHT_BIT, np.dtype(np.int16)) if reference else _EIGHT_BIT  # 16x8: the reference kernel only
    if x_q.dtype not in codes or y_q.dtype != x_q.dtype:
        return _fallback(plan, f"LEAKY_RELU runs on {'int8/uint8/int16' if reference else 'int8/uint8'} only")
    if alpha < 0:
        return _fallback(plan, f"LEAKY_RELU with a negative alpha {alpha}")
    common = dict(input_zero_point=x_q.zero_point, output_zero_point=y_q.zero_point, qmin=y_q.qmin, qmax=y_q.qmax)
    if plan.impl.params.get("arithmetic", "multiplier") == "fixed_point_8bit":
        prm = leaky_relu_xnnpack_params(x_q.scale, y_q.scale, alpha)
        if max(abs(v) for v in prm.values()) >= 1 << 23:
            return _fallback(plan, "LEAKY_RELU scale ratio too large for the 8-bit fixed-point multiplier")
        plan.consts["table"] = _core.leaky_relu_xnnpack(all_codes(x_q.dtype), **prm, **common)
    else:
        scheme = plan.impl.requant.scheme if plan.impl.requant is not None else "fixed_point_double"
        if scheme != "fixed_point_double":
            return _fallback(plan, f"LEAKY_RELU with requantization '{scheme}' is not simulated")
        prm = leaky_relu_params(x_q.scale, y_q.scale, alpha)
        if max(prm["shift_identity"], prm["shift_alpha"]) > 22:
            return _fallback(plan, "LEAKY_RELU scale ratio too large")
        plan.consts["table"] = _core.leaky_relu_tflite(all_codes(x_q.dtype), **prm, **common)
    plan.consts.update(prm)


_register("tflite_leaky_relu", _prepare_leaky_relu, _table_run)


# ---------------------------------------------------------------------------------------------------------
# TFLite SOFTMAX: gemmlowp fixed point (reference) or float32 table (optimized), numerics A.9


def softmax_fixed_point_params(input_scale: float, beta: float = 1.0) -> dict[str, int] | None:
    """PreprocessSoftmaxScaling with 5 integer bits: (M, left_shift) = QuantizeMultiplierGreaterThanOne of
    min(beta·s_in·2^26, 2^31 − 1); diff_min = −floor(31·2^26 / 2^left_shift). None when the real
    multiplier is below 1 (TFLite rejects it)."""
    real = min(float(beta) * float(_f32(input_scale)) * (1 << 26), (1 << 31) - 1.0)
    if real < 1.0:
        return None
    m, shift = _core.quantize_multiplier(real)
    diff_min = -int(math.floor(31 * (1 << 26) / (1 << int(shift))))
    return {"beta_multiplier": int(m), "beta_left_shift": int(shift), "diff_min": diff_min}


def _prepare_softmax(graph, target, plan, act) -> None:
    node = plan.node
    x_q, y_q = act[node.inputs[0]], act[plan.output]
    rank = len(graph.tensors[node.inputs[0]].shape)
    if node.attrs.get("axis", -1) not in (-1, rank - 1):
        return _fallback(plan, "SOFTMAX over an axis other than the last")
    if x_q.dtype == np.int16:
        return _prepare_softmax_int16(node, plan, x_q, y_q)
    if x_q.dtype not in _EIGHT_BIT or y_q.dtype != x_q.dtype:
        return _fallback(plan, "SOFTMAX runs on int8/uint8/int16 only")
    if plan.impl.params.get("algorithm", "float_table") == "fixed_point":
        tmin = int(np.iinfo(y_q.dtype).min)
        if (_f32(y_q.scale), y_q.zero_point) != (_f32(1 / 256), tmin):
            return _fallback(plan, f"fixed-point SOFTMAX needs output (1/256, {tmin})")
        prm = softmax_fixed_point_params(x_q.scale)
        if prm is None:
            return _fallback(plan, "SOFTMAX input scale below 2^-26")
        plan.consts.update(prm, algorithm="fixed_point")
    else:
        plan.consts.update(algorithm="float_table", table=ref.softmax_table(x_q.scale))


def _run_softmax(model, plan, ints, threads) -> np.ndarray:
    x = np.ascontiguousarray(ints[plan.node.inputs[0]])
    c, y_q = plan.consts, model.act[plan.output]
    if c["algorithm"] == "int16":
        return softmax_int16(x, c["exp_table"])
    if c["algorithm"] == "fixed_point":
        if x.shape[-1] > 2048:
            raise _too_wide(plan, x.shape[-1])
        return _core.softmax_tflite_fixed_point(x, beta_multiplier=c["beta_multiplier"],
                                                beta_left_shift=c["beta_left_shift"], diff_min=c["diff_min"])
    return _core.softmax_tflite_float_table(x, c["table"], output_scale=_f32(y_q.scale),
                                            output_zero_point=y_q.zero_point, qmin=y_q.qmin, qmax=y_q.qmax)


def _too_wide(plan, n: int) -> Exception:
    from hwsim.errors import HwsimError

    return HwsimError(f"node '{plan.node.name}': fixed-point SOFTMAX over {n} values overflows TFLite's Q12.19 "
                      "sum (at most 2048)")


_register("tflite_softmax", _prepare_softmax, _run_softmax)


# ---------------------------------------------------------------------------------------------------------
# TFLite MEAN over H, W (GlobalAvgPool): reference (numerics A.10) and XNNPACK fp32 (measured)


def mean_multiplier(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """(M', e') of the reference MEAN: (M, e) = QuantizeMultiplier(s_in/s_out) in double;
    sh = min(floor(log2 N), 32, 31 + e); M' = (M·2^sh) // N; e' = e − sh (numerics A.10)."""
    m, e = _core.quantize_multiplier(float(_f32(input_scale)) / float(_f32(output_scale)))
    sh = min(int(count).bit_length() - 1, 32, 31 + int(e))
    return (int(m) << sh) // int(count), int(e) - sh


def _prepare_mean(graph, target, plan, act) -> None:
    node = plan.node
    x_q, y_q = act[node.inputs[0]], act[plan.output]
    shape = graph.tensors[node.inputs[0]].shape
    if node.op != "GlobalAvgPool" or len(shape) != 4:
        return _fallback(plan, f"MEAN kernel for {node.op}")
    count = int(shape[1]) * int(shape[2])
    scheme = plan.impl.requant.scheme if plan.impl.requant is not None else "none"
    if scheme == "fixed_point_double":
        m, e = mean_multiplier(x_q.scale, y_q.scale, count)
        if not -31 <= e <= 30 or count * 65536 >= 2**31:
            return _fallback(plan, "MEAN multiplier out of the int32 range")
        plan.consts.update(multiplier=m, shift=e)
    elif scheme == "float_scale":
        plan.consts["scale"] = _f32(_f32(x_q.scale) / (_f32(count) * _f32(y_q.scale)))
    else:
        return _fallback(plan, f"MEAN with requantization '{scheme}' is not simulated")


def _run_mean(model, plan, ints, threads) -> np.ndarray:
    x = ints[plan.node.inputs[0]]
    x_q, y_q, c = model.act[plan.node.inputs[0]], model.act[plan.output], plan.consts
    count = x.shape[1] * x.shape[2]
    total = x.astype(np.int64).sum(axis=(1, 2), keepdims=True) - count * x_q.zero_point
    if "scale" in c:
        v = (total.astype(np.float32) * c["scale"]).astype(np.float32)
        v = np.clip(v, np.float32(y_q.qmin - y_q.zero_point), np.float32(y_q.qmax - y_q.zero_point))
        return (np.rint(v).astype(np.int64) + y_q.zero_point).astype(y_q.dtype)
    flat = np.ascontiguousarray(total.reshape(-1, 1), dtype=np.int32)
    y = _core.multiply_by_quantized_multiplier(flat, np.array([c["multiplier"]], np.int32),
                                               np.array([c["shift"]], np.int32), variant="double")
    y = y.reshape(total.shape).astype(np.int64) + y_q.zero_point
    return np.clip(y, y_q.qmin, y_q.qmax).astype(y_q.dtype)


_register("tflite_mean", _prepare_mean, _run_mean)


# ---------------------------------------------------------------------------------------------------------
# PyTorch quantized global average pooling (measured on torch 2.13, tests/oracle/test_torch_fbgemm_model_oracle.py):
# output (s, zp) = input (s, zp); y = clamp(rint(float32(sum of raw codes) * float32(1/N))), the raw mean rounded
# half to even with the zero point included.


def _prepare_torch_avg_pool(graph, target, plan, act) -> None:
    node = plan.node
    x_q, y_q = act[node.inputs[0]], act[plan.output]
    if len(graph.tensors[node.inputs[0]].shape) != 4 or (x_q.scale, x_q.zero_point) != (y_q.scale, y_q.zero_point):
        return _fallback(plan, "PyTorch average pooling with different input and output parameters (unmeasured)")


def _run_torch_avg_pool(model, plan, ints, threads) -> np.ndarray:
    x = ints[plan.node.inputs[0]]
    y_q = model.act[plan.output]
    total = x.astype(np.int64).sum(axis=(1, 2), keepdims=True)
    v = total.astype(np.float32) * _f32(_f32(1.0) / _f32(x.shape[1] * x.shape[2]))
    return np.clip(np.rint(v), y_q.qmin, y_q.qmax).astype(y_q.dtype)


_register("torch_avg_pool", _prepare_torch_avg_pool, _run_torch_avg_pool)


# ---------------------------------------------------------------------------------------------------------
# onnxruntime's fused QDQ ops on x86 (ORT_ENABLE_ALL turns DequantizeLinear -> Add/GlobalAveragePool ->
# QuantizeLinear into com.microsoft QLinearAdd / QLinearGlobalAveragePool; docs/engine-findings.md).


def _prepare_ort_qlinear_add(graph, target, plan, act) -> None:
    node = plan.node
    if len(node.inputs) != 2 or any(t in graph.params or t not in act for t in node.inputs):
        return _fallback(plan, "Add with a constant operand is not fused into QLinearAdd")
    dtypes = {act[t].dtype for t in (*node.inputs, plan.output)}
    if len(dtypes) != 1 or next(iter(dtypes)) not in _EIGHT_BIT:
        return _fallback(plan, "QLinearAdd needs int8 or uint8 inputs and output of one type")


def _run_ort_qlinear_add(model, plan, ints, threads) -> np.ndarray:
    a_name, b_name = plan.node.inputs
    a_q, b_q, y_q = model.act[a_name], model.act[b_name], model.act[plan.output]
    a, b = ints[a_name], ints[b_name]
    if a.shape != b.shape:  # QLinearAdd broadcasts like Add
        a, b = (np.ascontiguousarray(v) for v in np.broadcast_arrays(a, b))
    return _core.add_float_scale(a, b, _f32(a_q.scale), a_q.zero_point, _f32(b_q.scale), b_q.zero_point,
                                 _f32(y_q.scale), y_q.zero_point, qmin=y_q.qmin, qmax=y_q.qmax, form="mlas_avx2",
                                 threads=threads)


_register("ort_qlinear_add", _prepare_ort_qlinear_add, _run_ort_qlinear_add)


def ort_global_avg_pool_scale(input_scale: float, output_scale: float, count: int) -> np.float32:
    """float32 s_in / (s_out · N), as MLAS computes it (CheckQLinearGlobalAveragePoolScaleAndSize)."""
    return _f32(_f32(input_scale) / (_f32(output_scale) * _f32(count)))


def _prepare_ort_qlinear_global_avg_pool(graph, target, plan, act) -> None:
    node = plan.node
    shape = graph.tensors[node.inputs[0]].shape
    x_q, y_q = act[node.inputs[0]], act[plan.output]
    if len(shape) != 4 or x_q.dtype != y_q.dtype or x_q.dtype not in _EIGHT_BIT:
        return _fallback(plan, "QLinearGlobalAveragePool needs a 4-D int8/uint8 input of the output's type")
    count = int(shape[1]) * int(shape[2])
    scale = ort_global_avg_pool_scale(x_q.scale, y_q.scale, count)
    if not (2.0**-32 <= scale < 256.0) or count >= 1 << 24:
        # onnxruntime refuses these ("parameter out of computation range"): no engine result to match
        return _fallback(plan, "QLinearGlobalAveragePool scale outside onnxruntime's range [2^-32, 256)")


def ort_qlinear_global_avg_pool(x: np.ndarray, x_scale: float, x_zero_point: int, y_scale: float,
                                y_zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """QLinearGlobalAveragePool of NHWC codes ``x`` as MLAS computes it on x86 → [N, 1, 1, C] codes.

    acc = Σ q − N·zp_in (int32), v = float32(acc) · ort_global_avg_pool_scale(...), clamped to
    [qmin − zp_out, qmax − zp_out] in float32, rounded half to even (cvtps2dq), + zp_out.
    """
    scale = ort_global_avg_pool_scale(x_scale, y_scale, x.shape[1] * x.shape[2])
    return _core.global_avg_pool_float_scale(np.ascontiguousarray(x), x_zero_point, float(scale), y_zero_point,
                                             qmin, qmax)


def _run_ort_qlinear_global_avg_pool(model, plan, ints, threads) -> np.ndarray:
    x_q, y_q = model.act[plan.node.inputs[0]], model.act[plan.output]
    return ort_qlinear_global_avg_pool(ints[plan.node.inputs[0]], x_q.scale, x_q.zero_point, y_q.scale,
                                       y_q.zero_point, y_q.qmin, y_q.qmax)


_register("ort_qlinear_global_avg_pool", _prepare_ort_qlinear_global_avg_pool, _run_ort_qlinear_global_avg_pool)


# ---------------------------------------------------------------------------------------------------------
# XNNPACK ADD (measured, test_add_all_pairs): multipliers of `multiplier_bits` bits, one rounding


def xnnpack_add_params(a_scale: float, b_scale: float, output_scale: float, bits: int = 20) -> dict[str, int]:
    """m_i = rint(float32(s_i / s_out)·2^k), k = bits − floor(log2(max ratio))."""
    so = _f32(output_scale)
    ra, rb = _f32(_f32(a_scale) / so), _f32(_f32(b_scale) / so)
    k = bits - int(np.floor(np.log2(max(ra, rb))))
    return {"a_multiplier": int(np.rint(np.float64(ra) * 2.0**k)),
            "b_multiplier": int(np.rint(np.float64(rb) * 2.0**k)), "shift": k}


def _prepare_xnnpack_add(graph, target, plan, act) -> None:
    node = plan.node
    if len(node.inputs) != 2 or any(t in graph.params or t not in act for t in node.inputs):
        return _fallback(plan, "ADD with a constant operand")
    a_q, b_q, y_q = act[node.inputs[0]], act[node.inputs[1]], act[plan.output]
    prm = xnnpack_add_params(a_q.scale, b_q.scale, y_q.scale, int(plan.impl.params.get("multiplier_bits", 20)))
    if not 1 <= prm["shift"] <= 40:
        return _fallback(plan, "ADD scale ratios out of XNNPACK's range")
    plan.consts.update(prm)


def _run_xnnpack_add(model, plan, ints, threads) -> np.ndarray:
    a_name, b_name = plan.node.inputs
    a_q, b_q, y_q = model.act[a_name], model.act[b_name], model.act[plan.output]
    y = ref.add_xnnpack(ints[a_name], ints[b_name], a_zero_point=a_q.zero_point, b_zero_point=b_q.zero_point,
                        output_zero_point=y_q.zero_point, qmin=y_q.qmin, qmax=y_q.qmax, **plan.consts)
    return y.astype(y_q.dtype)


_register("xnnpack_add", _prepare_xnnpack_add, _run_xnnpack_add)


# ---------------------------------------------------------------------------------------------------------
# Xilinx DPU: leaky ReLU (C.5), hard-sigmoid and hard-swish (C.6); power-of-two positions, DPU_ROUND


def _dpu_rounding(plan) -> Any:
    return getattr(_core.RoundingMode, dict(plan.impl.requant.params).get("rounding", "HALF_UP")
                   if plan.impl.requant is not None else "HALF_UP")


def _shift_round(x: np.ndarray, n: int, mode) -> np.ndarray:
    """x / 2^n with the DPU's rounding (n > 0), exact x·2^−n otherwise."""
    x = np.ascontiguousarray(x, dtype=np.int64)
    return _core.rounding_right_shift(x, n, mode) if n > 0 else x << -n


def _dpu_positions(plan, act, *, min_in: int | None = None) -> tuple[Any, Any] | None:
    x_q, y_q = act[plan.node.inputs[0]], act[plan.output]
    if x_q.fix_pos is None or y_q.fix_pos is None:
        _fallback(plan, "the DPU kernel needs power-of-two (fix_pos) input and output")
        return None
    if min_in is not None and x_q.fix_pos < min_in:
        _fallback(plan, f"input fix_pos {x_q.fix_pos} below the DPU's minimum {min_in}")
        return None
    return x_q, y_q


def _prepare_dpu_leaky_relu(graph, target, plan, act) -> None:
    prm = plan.impl.params
    num, den = int(prm.get("alpha_numerator", 26)), int(prm.get("alpha_denominator", 256))
    alpha = float(plan.node.attrs.get("alpha", 0.01))
    if abs(alpha - num / den) > 1e-6:
        return _fallback(plan, f"the DPU runs leaky ReLU with alpha {num}/{den} only, got {alpha}")
    if den & (den - 1):
        return _fallback(plan, f"alpha denominator {den} is not a power of two")
    pos = _dpu_positions(plan, act)
    if pos is None:
        return
    x_q, y_q = pos
    log2_den = den.bit_length() - 1
    x = all_codes(x_q.dtype).astype(np.int64)
    scaled = np.where(x < 0, x * num, x << log2_den)  # the slope acts on the exact value, one rounding after
    y = _shift_round(scaled, log2_den + x_q.fix_pos - y_q.fix_pos, _dpu_rounding(plan))
    plan.consts["table"] = np.clip(y, y_q.qmin, y_q.qmax).astype(y_q.dtype)


_register("dpu_leaky_relu", _prepare_dpu_leaky_relu, _table_run)


def _force_min_output_fix_pos(plan, act, minimum: int) -> None:
    """vai_q raises the output fix_pos of a hard-sigmoid to at least ``minimum`` (numerics C.6, section 7)."""
    from dataclasses import replace

    y_q = act[plan.output]
    if y_q.fix_pos is not None and y_q.fix_pos < minimum:
        act[plan.output] = replace(y_q, fix_pos=minimum, scale=float(np.ldexp(np.float32(1.0), -minimum)))


def _hsigmoid_codes(x: np.ndarray, p_in: int, p_out: int, multiplier: int, shift: int, qmin: int, qmax: int,
                    mode) -> np.ndarray:
    if (multiplier, shift) == (2731, 14):
        return _core.hard_sigmoid_dpu(x, p_in, p_out, qmin=qmin, qmax=qmax, rounding=mode).astype(np.int64)
    tmp = np.clip(x.astype(np.int64) * multiplier + 3 * multiplier * (1 << p_in), 0, 1 << 32)
    return np.clip(_shift_round(tmp, p_in + shift - p_out, mode), qmin, qmax)


def _prepare_dpu_hsigmoid(graph, target, plan, act) -> None:
    prm = plan.impl.params
    a = plan.node.attrs
    if abs(float(a.get("alpha", 1 / 6)) - 1 / 6) > 1e-6 or abs(float(a.get("beta", 0.5)) - 0.5) > 1e-6:
        return _fallback(plan, "the DPU hard-sigmoid is relu6(x + 3) / 6 (alpha 1/6, beta 1/2) only")
    _force_min_output_fix_pos(plan, act, int(prm.get("min_output_fix_pos", 7)))
    pos = _dpu_positions(plan, act, min_in=int(prm.get("min_input_fix_pos", 0)))
    if pos is None:
        return
    x_q, y_q = pos
    y = _hsigmoid_codes(all_codes(x_q.dtype), x_q.fix_pos, y_q.fix_pos, int(prm.get("multiplier", 2731)),
                        int(prm.get("shift", 14)), y_q.qmin, y_q.qmax, _dpu_rounding(plan))
    plan.consts["table"] = y.astype(y_q.dtype)


_register("dpu_hsigmoid", _prepare_dpu_hsigmoid, _table_run)


def _prepare_dpu_hswish(graph, target, plan, act) -> None:
    prm = plan.impl.params
    pos = _dpu_positions(plan, act, min_in=int(prm.get("min_input_fix_pos", 0)))
    if pos is None:
        return
    x_q, y_q = pos
    p_t = int(prm.get("internal_fix_pos", 7))
    mode = _dpu_rounding(plan)
    x = all_codes(x_q.dtype)
    # the internal hard-sigmoid is 8 bits at fix_pos 7 whatever the activation width (section 7)
    t = _hsigmoid_codes(x, x_q.fix_pos, p_t, int(prm.get("multiplier", 2731)), int(prm.get("shift", 14)), -128,
                        127, mode)
    y = _shift_round(x.astype(np.int64) * t, x_q.fix_pos + p_t - y_q.fix_pos, mode)
    plan.consts["table"] = np.clip(y, y_q.qmin, y_q.qmax).astype(y_q.dtype)


_register("dpu_hswish", _prepare_dpu_hswish, _table_run)


# ---------------------------------------------------------------------------------------------------------
# LOGISTIC / TANH ("lut" kernel). 8-bit: the 256-entry float table of numerics A.7 item 1 (_core.lut_tflite_int8).
# int16 (TFLite 16x8): the interpreter runs reference_integer_ops::Logistic / Tanh for both resolvers
# (activations.cc SigmoidEval/TanhEval), a 256-entry uint16 sigmoid table over [0, 255/24] read with 9-bit
# (LOGISTIC) or 8-bit (TANH) linear interpolation after an int16 input rescale (SigmoidPrepare/TanhPrepare).
# numerics.md A.7 attributes the 513-entry LUTPopulate table to int16 LOGISTIC; the interpreter does not use it
# there (measured: tests/oracle/test_tflite_int16x8_oracle.py::test_int16_activation_all_codes).


def _sigmoid_table_uint16() -> np.ndarray:
    """The 256-entry sigmoid table of TFLite's int16 LOGISTIC/TANH: sigmoid(i/24) in unsigned Q0.16.

    Each entry is the sample moved by half the error that linear interpolation makes at the midpoint of its
    segment, round(f(i) − ((f(i) + f(i+1))/2 − f(i + 1/2))/2) with f(t) = 65536·sigmoid(t/24), so that the
    interpolated curve straddles the function; the last entry is pinned to 65535, the top of uint16. This rule
    gives TFLite's constant table (common.h ``sigmoid_table_uint16``) entry for entry; the exhaustive engine
    tests confirm it.
    """
    def f(t: float) -> float:
        return 65536.0 / (1.0 + math.exp(-t / 24.0))

    table = [round(f(i) - ((f(i) + f(i + 1)) / 2 - f(i + 0.5)) / 2) for i in range(255)] + [65535]
    return np.array(table, dtype=np.int64)


SIGMOID_TABLE_UINT16 = _sigmoid_table_uint16()


def checked_log2(x: float) -> tuple[int, bool]:
    """TFLite CheckedLog2: (round(log2 x), |log2 x − round(log2 x)| < 1e-3), log2 as log(x)·(1/log 2) in double."""
    v = math.log(float(x)) * (1.0 / math.log(2.0))
    r = math.copysign(math.floor(abs(v) + 0.5), v)  # std::round: half away from zero
    return int(r), abs(v - r) < 1e-3


def int16_activation_params(fn: str, input_scale: float) -> dict[str, int]:
    """(input_multiplier, input_left_shift) of int16 LOGISTIC/TANH (TFLite SigmoidPrepare/TanhPrepare).

    With s_in a power of two (CheckedLog2, tolerance 1e-3 in log2) and left_shift = 12 + log2 s_in equal to 0
    (LOGISTIC) or 0/1 (TANH), multiplier is 0: the kernel then uses 3·2^left_shift with no shift. Otherwise
    m = s_in·4096·3 in double is doubled while m <= 32767/2 (at most 31 times), left_shift counts the doublings
    and multiplier = trunc(m); the kernel computes (q·multiplier + 2^(left_shift−1)) >> left_shift.
    """
    log2, pot = checked_log2(float(np.float32(input_scale)))
    shift = 12 + log2
    if pot and (shift == 0 or (fn == "tanh" and shift == 1)):
        return {"input_multiplier": 0, "input_left_shift": shift}
    m, shift = float(np.float32(input_scale)) * 4096.0 * 3.0, 0
    while m <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        m *= 2.0
    return {"input_multiplier": int(m), "input_left_shift": shift}


def _int16_rescaled_input(q: np.ndarray, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    m, ls = (3 << input_left_shift, 0) if input_multiplier == 0 else (input_multiplier, input_left_shift)
    v = q.astype(np.int64) * m
    return (v + (1 << (ls - 1))) >> ls if ls > 0 else v


def logistic_int16(q: np.ndarray, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """int16 LOGISTIC codes (output scale 2^-15, zero point 0) of int16 codes ``q`` (zero point 0).

    v = rescaled input (real·4096·3 ≈ v); u = |v|; h = u >> 9, t = u & 511; r = 0x7FFF << 10 if h >= 255,
    else (T[h] << 9) + t·(T[h+1] − T[h]); out = (r + 512) >> 10 for v >= 0, ((1 << 25) − r + 511) >> 10 for
    v < 0 (TFLite reference_integer_ops::Logistic, int16 overload).
    """
    v = _int16_rescaled_input(q, input_multiplier, input_left_shift)
    u = np.abs(v)
    h = u >> 9
    hc = np.minimum(h, 254)
    t = SIGMOID_TABLE_UINT16
    r = np.where(h >= 255, 0x7FFF << 10, (t[hc] << 9) + (u & 0x1FF) * (t[hc + 1] - t[hc]))
    r = np.where(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1)
    return (r >> 10).astype(np.int16)


def tanh_int16(q: np.ndarray, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """int16 TANH codes (output scale 2^-15, zero point 0) of int16 codes ``q`` (zero point 0).

    tanh(x) = 2·sigmoid(2x) − 1 on the same table with 8-bit interpolation: u = |v|, h = u >> 8, t = u & 255;
    r = 0xFFFF << 8 if h >= 255, else (T[h] << 8) + t·(T[h+1] − T[h]); out = (r − 2^23 + 2^7) >> 8 for v >= 0,
    (2^23 − r + 2^7 − 1) >> 8 for v < 0 (TFLite reference_integer_ops::Tanh, int16 overload).
    """
    v = _int16_rescaled_input(q, input_multiplier, input_left_shift)
    u = np.abs(v)
    h = u >> 8
    hc = np.minimum(h, 254)
    t = SIGMOID_TABLE_UINT16
    r = np.where(h >= 255, 0xFFFF << 8, (t[hc] << 8) + (u & 0xFF) * (t[hc + 1] - t[hc]))
    r = np.where(v >= 0, r - (1 << 23) + (1 << 7), (1 << 23) - r + (1 << 7) - 1)
    return (r >> 8).astype(np.int16)


_INT16_ACTIVATIONS = {"Sigmoid": ("logistic", logistic_int16), "Tanh": ("tanh", tanh_int16)}
_INT16_ONE = (_f32(2.0**-15), 0)  # int16 LOGISTIC/TANH/SOFTMAX output (scale, zero point) TFLite requires


def _prepare_lut(graph, target, plan, act) -> None:
    node = plan.node
    x_q, y_q = act[node.inputs[0]], act[plan.output]
    fn = {"Sigmoid": "logistic", "Tanh": "tanh"}.get(node.op)
    if fn is None:
        return _fallback(plan, f"no lookup table for {node.op} yet")
    if x_q.dtype == np.int16:
        if y_q.dtype != np.int16 or (x_q.zero_point, (_f32(y_q.scale), y_q.zero_point)) != (0, _INT16_ONE):
            return _fallback(plan, f"int16 {fn.upper()} needs input zero point 0 and output (2^-15, 0)")
        prm = int16_activation_params(fn, x_q.scale)
        if prm["input_multiplier"] > 32767:  # s_in > 4/3: q·multiplier would leave int32 in TFLite
            return _fallback(plan, f"int16 {fn.upper()} input scale {x_q.scale} too large")
        plan.consts.update(prm)
        plan.consts["table"] = _INT16_ACTIVATIONS[node.op][1](all_codes(np.int16), **prm)
        return
    plan.consts["table"] = _core.lut_tflite_int8(fn, np.float32(x_q.scale), x_q.zero_point, np.float32(y_q.scale),
                                                 y_q.zero_point, dtype=str(x_q.dtype))


_register("lut", _prepare_lut, _table_run)


# ---------------------------------------------------------------------------------------------------------
# TFLite int16 SOFTMAX (reference_ops::SoftmaxInt16, run by both resolvers; numerics A.9 last bullet)


def lut_populate_int16(fn: Callable[[float], float], input_scale: float, input_zero_point: int,
                       output_scale: float, output_zero_point: int) -> np.ndarray:
    """TFLite LUTPopulate<int16_t> in double: the 513-entry interpolation table of ``fn`` over the int16 input
    range [s_in(−32768 − zp_in), s_in(32767 − zp_in)].

    step = (in_max − in_min)/512 and inv = 65536/(out_max − out_min). Entry i < 512 is round(f(x_i)·inv) moved
    by half the midpoint error of linear interpolation, bias = round((round((f(x_{i+1})·inv + round(f(x_i)·inv))/2)
    − round(f(x_i + step/2)·inv))/2); entry 512 is round(f(in_max)·inv); each clamped to int16. std::round
    (half away from zero) throughout; ``fn`` is called on Python floats (libm, as the interpreter's std::exp).
    """
    in_min, in_max = input_scale * (-32768 - input_zero_point), input_scale * (32767 - input_zero_point)
    out_min, out_max = output_scale * (-32768 - output_zero_point), output_scale * (32767 - output_zero_point)
    step = (in_max - in_min) / 512
    half = step / 2
    inv = 65536.0 / (out_max - out_min)

    def rnd(v: float) -> float:
        return math.copysign(math.floor(abs(v) + 0.5), v)

    lut = []
    for i in range(512):
        val, mid, nxt = fn(in_min + i * step), fn(in_min + i * step + half), fn(in_min + (i + 1) * step)
        sample = rnd(val * inv)
        err = rnd((nxt * inv + rnd(val * inv)) / 2) - rnd(mid * inv)
        lut.append(sample - rnd(err / 2))
    lut.append(rnd(fn(in_max) * inv))
    return np.clip(np.array(lut), -32768, 32767).astype(np.int64)


def lut_lookup_int16(x: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """TFLite's int16 table lookup: i = 256 + (x >> 7), base = lut[i], slope = lut[i+1] − lut[i];
    base + ((slope·(x & 127) + 64) >> 7), wrapped to int16."""
    x = np.asarray(x, dtype=np.int64)
    i = 256 + (x >> 7)
    base = lut[i]
    y = base + (((lut[i + 1] - base) * (x & 0x7F) + 64) >> 7)
    return ((y + 32768) & 0xFFFF) - 32768


_SOFTMAX16_RANGE = 65535  # int16 max − min


def softmax_int16_luts() -> tuple[np.ndarray, np.ndarray]:
    """(exp table on [−10, 0], 1/(1 + x) table on [0, 1]), both with output scale 2/65535 (SoftmaxPrepare)."""
    r = _SOFTMAX16_RANGE
    exp_lut = lut_populate_int16(math.exp, 10.0 / r, 32767, 2.0 / r, 0)
    recip_lut = lut_populate_int16(lambda v: 1.0 / (1.0 + v), 1.0 / r, -32768, 2.0 / r, 0)
    return exp_lut, recip_lut


def softmax_int16_params(input_scale: float, beta: float = 1.0) -> dict[str, int]:
    """QuantizeMultiplier(s_in·β / (10/65535)): the input difference rescaled so that [−65535, 0] is [−10, 0];
    s_in·β is a float32 product (SoftmaxPrepare)."""
    real = float(_f32(_f32(input_scale) * _f32(beta))) / (10.0 / 65535.0)
    m, e = _core.quantize_multiplier(real)
    return {"input_multiplier": int(m), "input_left_shift": int(e)}


def softmax_int16_exp_table(input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """exp(q − max) in Q0.15 for every difference d = max − q in [0, 65535] (index d): the exp LUT read at
    clamp(MBQM(−d) + 32767) with the int32 MultiplyByQuantizedMultiplier (double rounding, numerics A.3)."""
    d = -np.arange(65536, dtype=np.int32).reshape(-1, 1)
    scaled = _core.multiply_by_quantized_multiplier(d, np.array([input_multiplier], np.int32),
                                                    np.array([input_left_shift], np.int32), variant="double")
    sym = np.clip(scaled.astype(np.int64).ravel() + 32767, -32768, 32767)
    return lut_lookup_int16(sym, _SOFTMAX16_LUTS[0])


def softmax_int16(q: np.ndarray, exp_table: np.ndarray) -> np.ndarray:
    """int16 SOFTMAX over the last axis of int16 codes ``q`` (output (2^-15, 0)), given softmax_int16_exp_table.

    e = exp_table[max − q] (Q0.15); S = Σe (int32); h = clz32(S); s = ((S << (h − 1)) + 2^13) >> 14;
    r = recip LUT at clamp(s − 98304) (1/(1 + x) of x = s/2^16 − 1, recentred); out = clamp((e·r + 2^(30−h))
    >> (31 − h), 0, 32767) (TFLite reference_ops::SoftmaxInt16).
    """
    x = np.asarray(q, dtype=np.int64)
    e = exp_table[x.max(axis=-1, keepdims=True) - x]
    total = e.sum(axis=-1, keepdims=True)
    if np.any(total >= 2**31):
        raise ValueError("int16 SOFTMAX: the int32 sum of exponentials overflows (row longer than 65,537)")
    h = 32 - _bit_length(total)
    shifted = ((total << (h - 1)) + (1 << 13)) >> 14
    recip = lut_lookup_int16(np.clip(shifted - (1 << 15) - (1 << 16), -32768, 32767), _SOFTMAX16_LUTS[1])
    rs = 31 - h
    out = (e * recip + (np.int64(1) << (rs - 1))) >> rs
    return np.clip(out, 0, 32767).astype(np.int16)


def _prepare_softmax_int16(node, plan, x_q, y_q) -> None:
    # one algorithm whatever the target's `algorithm`: both TFLite resolvers run SoftmaxInt16 (activations.cc)
    if y_q.dtype != np.int16 or (x_q.zero_point, (_f32(y_q.scale), y_q.zero_point)) != (0, _INT16_ONE):
        return _fallback(plan, "int16 SOFTMAX needs input zero point 0 and output (2^-15, 0)")
    prm = softmax_int16_params(x_q.scale)  # the IR's Softmax has beta 1 (the importer refuses others)
    if prm["input_left_shift"] > 15:  # (q − max) · 2^shift must stay inside int32 in TFLite's MBQM
        return _fallback(plan, f"int16 SOFTMAX input scale {x_q.scale} too large")
    plan.consts.update(prm, algorithm="int16", exp_table=softmax_int16_exp_table(**prm))


def _bit_length(v: np.ndarray) -> np.ndarray:
    """Bit length of positive int64 values below 2^32 (exact: frexp of a double holding an integer < 2^53)."""
    return np.frexp(v.astype(np.float64))[1].astype(np.int64)


_SOFTMAX16_LUTS = softmax_int16_luts()


# ---------------------------------------------------------------------------------------------------------
# TFLite QUANTIZE between two quantized types (reference_ops::Requantize; quantize.cc Prepare)


def requantize_tflite(q: np.ndarray, input_scale: float, input_zero_point: int, output_scale: float,
                      output_zero_point: int, qmin: int, qmax: int, out_dtype: Any,
                      variant: str = "double") -> np.ndarray:
    """TFLite's requantizing QUANTIZE (int16 -> int16 in 16x8 models, written before CONCATENATION when the
    input scales differ): (M, e) = QuantizeMultiplier(double(s_in) / double(s_out)); out = clamp(zp_out +
    MBQM(q − zp_in, M, e)) with the int32 MultiplyByQuantizedMultiplier (``variant`` 'double' in ordinary
    builds, numerics A.3; measured on int16, tests/oracle/test_tflite_int16x8_oracle.py)."""
    m, e = _core.quantize_multiplier(float(_f32(input_scale)) / float(_f32(output_scale)))
    d = np.ascontiguousarray((np.asarray(q, dtype=np.int64) - input_zero_point).reshape(-1, 1), dtype=np.int32)
    y = _core.multiply_by_quantized_multiplier(d, np.array([m], np.int32), np.array([e], np.int32), variant=variant)
    y = y.astype(np.int64).reshape(np.shape(q)) + output_zero_point
    return np.clip(y, qmin, qmax).astype(out_dtype)
