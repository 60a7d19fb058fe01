"""PyTorch quantized (torch 2.13 CPU, engines fbgemm and qnnpack) is the oracle for hwsim's linear/conv.

Expected integers are hwsim's own kernels (``gemm_s32``, ``conv2d_s32``, ``depthwise_conv2d_s32``) followed
by hwsim's own requantization (``hwsim.numerics.requantize_float_preset`` with the presets "fbgemm",
"fbgemm_float_bias_avx2" (per-tensor bias), "fbgemm_float_bias" (per-channel bias) and, for qnnpack,
"xnnpack_fp32" after ``quantize_preset(bias, "torch")``). What the engines do, as measured here (the tests
below are the evidence):

fbgemm (numerics.md B.2/B.3; float bias path):
    act_times_w_scale[c] = float32(x_s)·float32(w_s[c]);  C[c] = act_times_w_scale[c] / float32(y_s)   (float32)
    raw_f = float32(acc) + bias_f[c] / act_times_w_scale[c];  y = clamp(lrintf(raw_f·C[c]) + y_zp, 0, 255)
    acc is exact int32 on this VNNI host for GEMM/conv, EXCEPT the depthwise kernel: groups == C with
    C % 8 == 0, multiplier 1 or 2, square 3×3/5×5/7×7, stride 1 or 2, dilation 1, padding (K−1)/2 runs
    fbgemm's depthwise kernel, reproduced by ``depthwise_conv2d_s32(mode=FBGEMM_DW_PAIRS)`` (int16-saturated
    pairs of taps), see :func:`hwsim.emulate.ref_depthwise.fbgemm_routes_depthwise`.
qnnpack (measured; PyTorch's QNNPACK fp32 requantization):
    bias_q[c] = RNE(bias_f[c] · float32(1 / act_times_w_scale[c])) in float32 (int32 bias);
    C[c] = act_times_w_scale[c] · float32(1 / y_s)   (a reciprocal of the output scale, unlike fbgemm);
    v = float32(acc + bias_q[c])·C[c], clamped in float to [0 − y_zp, 255 − y_zp], RNE, + y_zp
    — the same epilogue as onnxruntime's MLAS. acc is exact int32 everywhere (no pair saturation, also for
    depthwise).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hwsim._core as core
from hwsim import numerics
from hwsim.emulate.ref_depthwise import fbgemm_routes_depthwise

pytestmark = [pytest.mark.oracle, pytest.mark.filterwarnings("ignore::UserWarning")]

ENGINES = ["fbgemm", "qnnpack"]


@pytest.fixture(params=ENGINES)
def engine(request):
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = request.param
    yield request.param
    torch.backends.quantized.engine = previous


def _qweight(wq: np.ndarray, w_s: np.ndarray, per_channel: bool) -> torch.Tensor:
    if per_channel:
        return torch._make_per_channel_quantized_tensor(
            torch.from_numpy(wq), torch.from_numpy(w_s.astype(np.float64)), torch.zeros(len(w_s), dtype=torch.long), 0
        )
    return torch._make_per_tensor_quantized_tensor(torch.from_numpy(wq), float(w_s[0]), 0)


def _qinput(xq: np.ndarray, x_s: float, x_zp: int) -> torch.Tensor:
    return torch._make_per_tensor_quantized_tensor(torch.from_numpy(xq), x_s, x_zp)


def _engine_scale(engine: str, atws: np.ndarray, y_s: float) -> np.ndarray:
    """The float32 output multiplier: fbgemm divides by y_s, qnnpack multiplies by float32(1 / y_s)."""
    if engine == "fbgemm":
        return atws / np.float32(y_s)
    return atws * (np.float32(1) / np.float32(y_s))


def _requantize_like(engine: str, acc, x_s, w_s, y_s, y_zp, bias, per_channel):
    """hwsim's requantization configured as the engine does it (see the module docstring)."""
    atws = np.float32(x_s) * w_s.astype(np.float32)  # float32 products, one per output channel
    scale = _engine_scale(engine, atws, y_s).astype(np.float64)  # float32 values, passed exactly
    if engine == "fbgemm":
        if bias is None:
            return numerics.requantize_float_preset(acc, "fbgemm", scale, y_zp, 0, 255, out_dtype=np.uint8)
        # B.2: the AVX2 epilogue multiplies by a reciprocal for a per-tensor float bias, divides per channel.
        preset = "fbgemm_float_bias" if per_channel else "fbgemm_float_bias_avx2"
        return numerics.requantize_float_preset(
            acc, preset, scale, y_zp, 0, 255, bias=bias.astype(np.float32), bias_scale=atws.astype(np.float64),
            out_dtype=np.uint8,
        )
    bias_q = None
    if bias is not None:  # torch.quantize_per_channel(bias, act_times_w_scale, 0, qint32)
        bias_q = numerics.quantize_preset(
            bias.astype(np.float32), "torch", atws.astype(np.float64), np.zeros(len(atws), np.int64),
            -(2**31), 2**31 - 1, axis=0, out_dtype=np.int32,
        )
    # QNNPACK's fp32 requantization is the same float sequence as XNNPACK's / MLAS's.
    return numerics.requantize_float_preset(acc, "xnnpack_fp32", scale, y_zp, 0, 255, bias=bias_q, out_dtype=np.uint8)


def _params(rng, n_out, per_channel, k, x_hi, saturate):
    x_s = float(np.float32(0.01 + rng.random() * 0.05))
    x_zp = int(rng.integers(0, x_hi + 1))
    if per_channel:
        w_s = (rng.random(n_out) * 0.01 + 0.001).astype(np.float32)
    else:
        w_s = np.full(n_out, np.float32(rng.random() * 0.01 + 0.001), np.float32)
    # 40 standard deviations of a random accumulator per output step: most outputs in range, a few clipped;
    # the saturating cases shrink y_s 100× so most outputs clip at 0 or 255.
    y_s = float(np.float32(np.sqrt(k) * x_s * float(w_s.mean()) * 40 * (0.01 if saturate else 1.0)))
    y_zp = int(rng.integers(0, 256))
    return x_s, x_zp, w_s, y_s, y_zp


# --- quantized Linear -------------------------------------------------------------------------------------


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("reduce_range", [False, True])  # 7-bit activations [0, 127], PyTorch's x86 default
@pytest.mark.parametrize("saturate", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize(("m", "k", "n"), [(1, 1, 1), (4, 33, 17), (16, 256, 64), (3, 1000, 24)])
def test_linear(engine, per_channel, reduce_range, saturate, with_bias, m, k, n):
    rng = np.random.default_rng(hash((per_channel, reduce_range, saturate, with_bias, m, k, n)) % 2**32)
    x_hi = 127 if reduce_range else 255
    x_s, x_zp, w_s, y_s, y_zp = _params(rng, n, per_channel, k, x_hi, saturate)
    xq = rng.integers(0, x_hi, size=(m, k), endpoint=True).astype(np.uint8)
    xq[0, : min(k, 4)] = (0, x_hi, 0, x_hi)[: min(k, 4)]
    wq = rng.integers(-128, 127, size=(n, k), endpoint=True).astype(np.int8)
    wq[0, : min(k, 2)] = (-128, 127)[: min(k, 2)]
    bias = (rng.standard_normal(n) * 3).astype(np.float32) if with_bias else None

    linear = torch.ao.nn.quantized.Linear(k, n)
    linear.set_weight_bias(_qweight(wq, w_s, per_channel), None if bias is None else torch.from_numpy(bias))
    linear.scale, linear.zero_point = y_s, y_zp
    got = linear(_qinput(xq, x_s, x_zp)).int_repr().numpy()

    acc = core.gemm_s32(xq, wq, a_zero_point=x_zp)
    want = _requantize_like(engine, acc, x_s, w_s, y_s, y_zp, bias, per_channel)
    np.testing.assert_array_equal(want, got)
    if saturate:
        assert np.mean((got == 0) | (got == 255)) > 0.3


# --- quantized Conv2d -------------------------------------------------------------------------------------

# (N, C, H, W, O, K, stride, dilation, padding, groups)
CONV_CASES = [
    (1, 3, 8, 8, 4, 3, 1, 1, 1, 1),
    (2, 5, 9, 7, 6, 3, 2, 2, 0, 1),
    (1, 16, 6, 6, 32, 1, 1, 1, 0, 1),
    (1, 6, 7, 7, 9, 3, 1, 1, 1, 3),  # grouped
    (1, 64, 5, 5, 16, 3, 1, 1, 1, 1),  # K = 576
    (1, 4, 9, 9, 4, 3, 1, 1, 1, 4),  # depthwise, C % 8 != 0: exact on fbgemm
    (1, 8, 9, 9, 8, 3, 1, 1, 0, 8),  # depthwise, padding 0: exact on fbgemm
]


def _run_conv(xq, wq, w_s, per_channel, case, x_s, x_zp, y_s, y_zp, bias):
    _, c, _, _, o, kk, stride, dilation, padding, groups = case
    conv = torch.ao.nn.quantized.Conv2d(
        c, o, kk, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias is not None
    )
    conv.set_weight_bias(_qweight(wq, w_s, per_channel), None if bias is None else torch.from_numpy(bias))
    conv.scale, conv.zero_point = y_s, y_zp
    out = conv(_qinput(xq, x_s, x_zp)).int_repr()
    return np.ascontiguousarray(out.permute(0, 2, 3, 1).numpy())


def _conv_inputs(rng, case, x_hi, edge):
    n, c, h, w, o, kk, *_, groups = case
    if edge:  # extremes everywhere: the int16 pairs of a VPMADDUBSW-based kernel saturate
        xq = rng.choice(np.array([0, 1, x_hi - 1, x_hi], np.uint8), size=(n, c, h, w))
        wq = rng.choice(np.array([-128, -127, 126, 127], np.int8), size=(o, c // groups, kk, kk))
    else:
        xq = rng.integers(0, x_hi, size=(n, c, h, w), endpoint=True).astype(np.uint8)
        wq = rng.integers(-128, 127, size=(o, c // groups, kk, kk), endpoint=True).astype(np.int8)
    return xq, wq


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("reduce_range", [False, True])
@pytest.mark.parametrize("saturate", [False, True])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d(engine, per_channel, reduce_range, saturate, case):
    rng = np.random.default_rng(hash((per_channel, reduce_range, saturate, case)) % 2**32)
    x_hi = 127 if reduce_range else 255
    *_, o, kk, stride, dilation, padding, groups = case
    k = case[1] // groups * kk * kk
    x_s, x_zp, w_s, y_s, y_zp = _params(rng, o, per_channel, k, x_hi, saturate)
    xq, wq = _conv_inputs(rng, case, x_hi, edge=saturate)
    bias = (rng.standard_normal(o) * 3).astype(np.float32)
    got = _run_conv(xq, wq, w_s, per_channel, case, x_s, x_zp, y_s, y_zp, bias)

    acc = core.conv2d_s32(
        np.ascontiguousarray(xq.transpose(0, 2, 3, 1)),
        np.ascontiguousarray(wq.transpose(0, 2, 3, 1)),
        x_zero_point=x_zp, strides=(stride, stride), dilations=(dilation, dilation), pads=(padding,) * 4,
        groups=groups,
    )
    want = _requantize_like(engine, acc, x_s, w_s, y_s, y_zp, bias, per_channel)
    np.testing.assert_array_equal(want, got)


# --- depthwise: fbgemm's saturating kernel ----------------------------------------------------------------

# (C, multiplier, K, stride) with "same" padding: all routed to fbgemm's depthwise kernel.
DEPTHWISE_ROUTED = [(16, 1, 3, 1), (16, 1, 3, 2), (8, 2, 3, 1), (24, 1, 5, 1), (8, 2, 5, 2), (8, 1, 7, 1)]


def _depthwise_expected(engine, xq, wq, case_dw, x_s, x_zp, w_s, y_s, y_zp, bias, per_channel, pads, dil=1):
    c, mult, kk, stride = case_dw
    routed = engine == "fbgemm" and fbgemm_routes_depthwise(c, mult, (kk, kk), (stride,) * 2, (dil,) * 2, pads)
    acc = core.depthwise_conv2d_s32(
        np.ascontiguousarray(xq.transpose(0, 2, 3, 1)),
        np.ascontiguousarray(wq.transpose(0, 2, 3, 1)),
        strides=(stride, stride), dilations=(dil, dil), pads=pads, x_zero_point=x_zp,
        mode="FBGEMM_DW_PAIRS" if routed else "EXACT",
    )
    return _requantize_like(engine, acc, x_s, w_s, y_s, y_zp, bias, per_channel), acc


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("case_dw", DEPTHWISE_ROUTED)
def test_depthwise_saturating_pairs(engine, per_channel, case_dw):
    """On fbgemm the depthwise kernel saturates int16 pairs even on this VNNI host (numerics.md section 7);
    qnnpack computes the same convolutions exactly."""
    c, mult, kk, stride = case_dw
    rng = np.random.default_rng(hash((per_channel, case_dw)) % 2**32)
    x_s, x_zp, w_s, _, y_zp = _params(rng, c * mult, per_channel, kk * kk, 255, False)
    x_zp = 3
    y_s = float(np.float32(x_s * float(w_s.mean()) * 512))  # coarse enough to see pair saturation
    xq = rng.integers(200, 255, size=(2, c, 9, 9), endpoint=True).astype(np.uint8)
    wq = rng.choice(np.array([-128, -120, 120, 127], np.int8), size=(c * mult, 1, kk, kk))
    bias = (rng.standard_normal(c * mult) * 3).astype(np.float32)
    pad = (kk - 1) // 2
    got = _run_conv(xq, wq, w_s, per_channel, (2, c, 9, 9, c * mult, kk, stride, 1, pad, c), x_s, x_zp, y_s, y_zp, bias)
    want, acc = _depthwise_expected(engine, xq, wq, case_dw, x_s, x_zp, w_s, y_s, y_zp, bias, per_channel, (pad,) * 4)
    np.testing.assert_array_equal(want, got)
    # The case really separates the two models: the other accumulation gives different integers.
    other_mode = "EXACT" if engine == "fbgemm" else "FBGEMM_DW_PAIRS"
    other = core.depthwise_conv2d_s32(
        np.ascontiguousarray(xq.transpose(0, 2, 3, 1)), np.ascontiguousarray(wq.transpose(0, 2, 3, 1)),
        strides=(stride, stride), pads=(pad,) * 4, x_zero_point=x_zp, mode=other_mode,
    )
    assert np.any(_requantize_like(engine, other, x_s, w_s, y_s, y_zp, bias, per_channel) != got)


@pytest.mark.parametrize(
    ("c", "mult", "kernel", "stride", "pad", "dil"),
    [
        # routed to fbgemm's depthwise kernel
        (8, 1, (3, 3), (1, 1), (1, 1), 1), (8, 1, (3, 3), (2, 2), (1, 1), 1), (16, 1, (5, 5), (2, 2), (2, 2), 1),
        (8, 2, (7, 7), (1, 1), (3, 3), 1), (24, 1, (3, 3), (1, 1), (1, 1), 1), (8, 1, (3, 3), (1, 2), (1, 1), 1),
        (8, 1, (3, 3), (2, 1), (1, 1), 1), (16, 2, (3, 3), (2, 2), (1, 1), 1), (32, 1, (7, 7), (2, 2), (3, 3), 1),
        # not routed: exact int32
        (4, 1, (3, 3), (1, 1), (1, 1), 1), (12, 1, (3, 3), (1, 1), (1, 1), 1), (4, 2, (3, 3), (1, 1), (1, 1), 1),
        (8, 3, (3, 3), (1, 1), (1, 1), 1), (8, 4, (3, 3), (1, 1), (1, 1), 1), (8, 1, (3, 3), (1, 1), (0, 0), 1),
        (8, 1, (3, 3), (1, 1), (2, 2), 1), (8, 1, (3, 3), (1, 1), (1, 0), 1), (8, 1, (3, 3), (3, 3), (1, 1), 1),
        (8, 1, (3, 3), (1, 1), (1, 1), 2), (8, 1, (5, 5), (1, 1), (0, 0), 1), (8, 1, (9, 9), (1, 1), (4, 4), 1),
        (8, 1, (5, 5), (3, 3), (2, 2), 1), (8, 1, (3, 5), (1, 1), (1, 2), 1),
        (8, 1, (5, 3), (1, 1), (2, 1), 1),
    ],
)
def test_fbgemm_depthwise_routing_rule(c, mult, kernel, stride, pad, dil):
    """fbgemm_routes_depthwise says exactly when fbgemm's output follows the saturating pairs model.

    Inputs near 255 and weights near ±128 saturate most int16 pairs, so the two accumulations give
    different outputs and the engine's output identifies its kernel."""
    torch.backends.quantized.engine = "fbgemm"
    rng = np.random.default_rng(c * 1000 + mult * 100 + kernel[0] * 10 + kernel[1] + stride[0] + pad[1] + dil)
    x_s, x_zp, w_s = 0.05, 7, np.full(c * mult, np.float32(0.02), np.float32)
    y_s = float(np.float32(np.float32(x_s) * w_s[0]) * 512)
    y_zp = 128
    xq = rng.integers(200, 255, size=(1, c, 9, 9), endpoint=True).astype(np.uint8)
    wq = rng.choice(np.array([-128, -120, 120, 127], np.int8), size=(c * mult, 1, *kernel))
    conv = torch.ao.nn.quantized.Conv2d(c, c * mult, kernel, stride=stride, padding=pad, dilation=dil, groups=c,
                                        bias=False)
    conv.set_weight_bias(_qweight(wq, w_s, False), None)
    conv.scale, conv.zero_point = y_s, y_zp
    got = np.ascontiguousarray(conv(_qinput(xq, x_s, x_zp)).int_repr().permute(0, 2, 3, 1).numpy())
    pads = (pad[0], pad[1], pad[0], pad[1])
    routed = fbgemm_routes_depthwise(c, mult, kernel, stride, (dil, dil), pads)
    x_nhwc, w_ohwi = np.ascontiguousarray(xq.transpose(0, 2, 3, 1)), np.ascontiguousarray(wq.transpose(0, 2, 3, 1))
    outputs = {}
    for mode in ("EXACT", "FBGEMM_DW_PAIRS"):
        acc = core.depthwise_conv2d_s32(x_nhwc, w_ohwi, strides=stride, dilations=(dil, dil), pads=pads,
                                        x_zero_point=x_zp, mode=mode)
        outputs[mode] = _requantize_like("fbgemm", acc, x_s, w_s, y_s, y_zp, None, False)
    np.testing.assert_array_equal(outputs["FBGEMM_DW_PAIRS" if routed else "EXACT"], got)
    assert np.any(outputs["EXACT"] != outputs["FBGEMM_DW_PAIRS"]), "the case must separate the two kernels"


@pytest.mark.parametrize("per_channel", [False, True])
def test_fbgemm_float_bias_reciprocal_per_tensor_divide_per_channel(per_channel):
    """numerics.md B.2: fbgemm adds bias·(1/act_times_w_scale) per tensor but bias/act_times_w_scale per channel.

    Biases at (k + 1/2)·act_times_w_scale with C ≈ 1 put every output on a float tie that the two
    formulas break differently; the engine must follow exactly the one hwsim's preset names.
    """
    torch.backends.quantized.engine = "fbgemm"
    rng = np.random.default_rng(3)
    n = 512
    x_s = float(np.float32(0.01 + rng.random() * 0.05))
    w_s = np.full(n, np.float32(0.004), np.float32)  # equal scales: C = 1 on every channel, per-channel path or not
    atws = np.float32(x_s) * w_s
    y_s = float(atws[0])
    bias = ((np.floor(rng.random(n) * 200 - 100) + np.float32(0.5)) * atws).astype(np.float32)
    xq = np.full((1, 1), 9, np.uint8)
    wq = np.ones((n, 1), np.int8)
    linear = torch.ao.nn.quantized.Linear(1, n)
    linear.set_weight_bias(_qweight(wq, w_s, per_channel), torch.from_numpy(bias))
    linear.scale, linear.zero_point = y_s, 128
    got = linear(_qinput(xq, x_s, 9)).int_repr().numpy()
    acc = core.gemm_s32(xq, wq, a_zero_point=9)
    np.testing.assert_array_equal(_requantize_like("fbgemm", acc, x_s, w_s, y_s, 128, bias, per_channel), got)
    other = "float_reciprocal" if per_channel else "float_divide"
    wrong = core.requantize_float(
        acc, (atws / np.float32(y_s)).astype(np.float64), 128, 0, 255, bias=bias, bias_scale=atws.astype(np.float64),
        bias_mode=other, out_dtype=np.uint8,
    )
    assert np.any(wrong != got), "the case must separate the two bias formulas"


@pytest.mark.parametrize("kind", ["linear", "conv", "depthwise"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_output_scale_formula_on_ties(engine, kind, per_channel):
    """y_s = 30·x_s·w_s puts many outputs within an ulp of .5 ties, where C = atws / y_s (fbgemm) and
    C = atws · (1 / y_s) (qnnpack) round differently; each engine must follow its own formula exactly."""
    rng = np.random.default_rng(40 + per_channel)
    c, o = 8, (8 if kind == "depthwise" else 12)
    for _ in range(1000):  # scales for which the two formulas give different float32 multipliers
        x_s = float(np.float32(0.01 + rng.random() * 0.05))
        w_s = np.full(o, np.float32(0.001 + rng.random() * 0.01), np.float32)
        if per_channel:
            w_s[1::2] *= np.float32(2)  # powers of two keep the tie structure on every channel
        y_s = float(np.float32(x_s * float(w_s[0]) * 30))
        atws = np.float32(x_s) * w_s
        if np.all(_engine_scale("fbgemm", atws, y_s) != _engine_scale("qnnpack", atws, y_s)):
            break
    x_zp = int(rng.integers(0, 256))
    y_zp = int(rng.integers(0, 256))
    # fbgemm adds a float bias in accumulator units, which moves values off the ties: test it without one.
    bias = None if engine == "fbgemm" else (rng.standard_normal(o) * 3).astype(np.float32)
    if kind == "linear":
        xq = rng.integers(0, 255, size=(256, 9), endpoint=True).astype(np.uint8)
        wq = rng.integers(-128, 127, size=(o, 9), endpoint=True).astype(np.int8)
        module = torch.ao.nn.quantized.Linear(9, o)
        module.set_weight_bias(_qweight(wq, w_s, per_channel), None if bias is None else torch.from_numpy(bias))
        module.scale, module.zero_point = y_s, y_zp
        got = module(_qinput(xq, x_s, x_zp)).int_repr().numpy()
        acc = core.gemm_s32(xq, wq, a_zero_point=x_zp)
    else:
        groups = c if kind == "depthwise" else 1
        case = (1, c, 16, 16, o, 3, 1, 1, 1, groups)
        xq = rng.integers(0, 255, size=(1, c, 16, 16), endpoint=True).astype(np.uint8)
        wq = rng.integers(-128, 127, size=(o, c // groups, 3, 3), endpoint=True).astype(np.int8)
        got = _run_conv(xq, wq, w_s, per_channel, case, x_s, x_zp, y_s, y_zp, bias)
        x_nhwc, w_ohwi = np.ascontiguousarray(xq.transpose(0, 2, 3, 1)), np.ascontiguousarray(wq.transpose(0, 2, 3, 1))
        if kind == "depthwise":
            routed = engine == "fbgemm" and fbgemm_routes_depthwise(c, 1, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1))
            acc = core.depthwise_conv2d_s32(x_nhwc, w_ohwi, pads=(1, 1, 1, 1), x_zero_point=x_zp,
                                            mode="FBGEMM_DW_PAIRS" if routed else "EXACT")
        else:
            acc = core.conv2d_s32(x_nhwc, w_ohwi, x_zero_point=x_zp, pads=(1, 1, 1, 1))
    want = _requantize_like(engine, acc, x_s, w_s, y_s, y_zp, bias, per_channel)
    np.testing.assert_array_equal(want, got)
    other = "qnnpack" if engine == "fbgemm" else "fbgemm"
    scale_other = _engine_scale(other, atws, y_s).astype(np.float64)
    if engine == "fbgemm":
        wrong = numerics.requantize_float_preset(acc, "fbgemm", scale_other, y_zp, 0, 255, out_dtype=np.uint8)
    else:
        bias_q = numerics.quantize_preset(bias, "torch", atws.astype(np.float64), np.zeros(o, np.int64), -(2**31),
                                          2**31 - 1, axis=0, out_dtype=np.int32)
        wrong = numerics.requantize_float_preset(acc, "xnnpack_fp32", scale_other, y_zp, 0, 255, bias=bias_q,
                                                 out_dtype=np.uint8)
    assert np.any(wrong != got), "the case must separate the two scale formulas"
