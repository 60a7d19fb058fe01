"""The 16x8 (int16 activation) path of the simulator against plain numpy.

* ``accumulate_int16`` (int16 codes split into bytes, each half through the 8-bit core, recombined in int64)
  equals ``accumulate_int16_reference`` (im2col / depthwise taps, int64 products) on edge values (type
  min/max, powers of two ±1/±2) and seeded random codes, for Conv2D (padding, strides, dilation, groups),
  depthwise (multiplier 2) and Dense.
* ``requantize_single_int64`` equals exact Python-integer arithmetic of the single-rounding formula
  (numerics.md A.3), including accumulators beyond 2^32 where the int64 product would overflow.
* The int16 LOGISTIC/TANH, SOFTMAX and requantizing QUANTIZE kernels of ``hwsim.emulate.op_kernels`` equal a
  per-element Python-integer transcription of their formulas (edge values and seeded random codes).
"""

from __future__ import annotations

import numpy as np
import pytest
from edge_values import integer_edge_values

from hwsim import _core
from hwsim.emulate.simulator import (
    LayerPlan,
    accumulate_int16,
    accumulate_int16_reference,
    requantize_single_int64,
)
from hwsim.graph import Node
from hwsim.targets import load_target

TARGET = load_target("arm_tflite_int16x8")


def _codes(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """int16 codes: edge values first, then seeded random codes (saturating values included)."""
    edges = integer_edge_values(-32768, 32767, random_count=0)
    rng = np.random.default_rng(seed)
    x = rng.integers(-32768, 32768, size=int(np.prod(shape)), dtype=np.int64)
    x[: min(edges.size, x.size)] = rng.permutation(edges)[: x.size]
    return x.reshape(shape).astype(np.int16)


def _weights(shape: tuple[int, ...], seed: int) -> np.ndarray:
    w = np.random.default_rng(seed).integers(-127, 128, size=shape).astype(np.int8)
    w.reshape(-1)[:4] = [-127, 127, -127, 127]  # extreme products next to the extreme codes
    return w


def _plan(kind: str, w: np.ndarray, attrs: dict) -> LayerPlan:
    op = "Dense" if kind == "Dense" else "Conv2D"
    node = Node("layer", op, ["x", "w"], ["y"], attrs)
    p = LayerPlan(node, kind, TARGET.op(kind), "integer", output="y")
    p.consts["w_int"] = w
    if kind == "Conv2D":
        p.consts["w_packed"] = _core.pack_conv_weights(w, groups=attrs.get("groups", 1))
    elif kind == "Dense":
        p.consts["w_packed"] = _core.pack_weights(np.ascontiguousarray(w))
    else:
        p.consts["w_int_contiguous"] = np.ascontiguousarray(w)
    return p


CONV_CASES = [
    # (input shape, weight shape OHWI, strides, dilations, pads [t, l, b, r], groups)
    ((2, 7, 7, 3), (5, 3, 3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 1),
    ((1, 9, 8, 4), (6, 3, 2, 4), (2, 1), (1, 2), (0, 2, 1, 0), 1),
    ((1, 6, 6, 4), (4, 3, 3, 2), (1, 2), (1, 1), (1, 0, 1, 2), 2),
    ((1, 5, 5, 64), (3, 1, 1, 64), (1, 1), (1, 1), (0, 0, 0, 0), 1),
]


@pytest.mark.parametrize("xs, ws, strides, dilations, pads, groups", CONV_CASES)
def test_conv2d_split_equals_int64_reference(xs, ws, strides, dilations, pads, groups):
    x, w = _codes(xs, 1), _weights(ws, 2)
    p = _plan("Conv2D", w, {"strides": list(strides), "dilations": list(dilations), "pads": list(pads),
                            "groups": groups})
    got = accumulate_int16(p, x)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, accumulate_int16_reference(p, x))


def test_conv2d_extreme_codes_exceed_int32():
    """All codes -32768 against all weights -127 over K = 3·3·64: the sum is beyond int32 and stays exact."""
    x = np.full((1, 3, 3, 64), -32768, np.int16)
    w = np.full((2, 3, 3, 64), -127, np.int8)
    p = _plan("Conv2D", w, {"strides": [1, 1], "dilations": [1, 1], "pads": [0, 0, 0, 0], "groups": 1})
    want = 32768 * 127 * 3 * 3 * 64
    assert want > 2**31
    np.testing.assert_array_equal(accumulate_int16(p, x), np.full((1, 1, 1, 2), want, np.int64))


@pytest.mark.parametrize("strides, pads, mult", [((1, 1), (1, 1, 1, 1), 1), ((2, 2), (0, 0, 0, 0), 2),
                                                  ((2, 1), (2, 1, 0, 1), 2)])
def test_depthwise_split_equals_int64_reference(strides, pads, mult):
    x = _codes((2, 7, 6, 3), 3)
    w = _weights((3 * mult, 3, 3, 1), 4)
    p = _plan("DepthwiseConv2D", w, {"strides": list(strides), "dilations": [1, 1], "pads": list(pads),
                                     "groups": 3})
    np.testing.assert_array_equal(accumulate_int16(p, x), accumulate_int16_reference(p, x))


@pytest.mark.parametrize("k", [1, 7, 32, 513])
def test_dense_split_equals_int64_reference(k):
    x, w = _codes((9, k), 5), _weights((6, k), 6)
    p = _plan("Dense", w, {})
    np.testing.assert_array_equal(accumulate_int16(p, x), accumulate_int16_reference(p, x))


def test_int8_codes_are_refused():
    p = _plan("Dense", _weights((2, 4), 0), {})
    with pytest.raises(Exception, match="int16"):
        accumulate_int16(p, np.zeros((1, 4), np.int8))


def _single_exact(acc, bias, m, e, zp, lo, hi):
    out = np.empty(acc.shape, np.int64)
    for idx in np.ndindex(acc.shape):
        c = idx[-1]
        n = 31 - int(e[c])
        v = (int(acc[idx]) + int(bias[c])) * int(m[c]) + (1 << (n - 1))
        out[idx] = min(max((v >> n) + zp, lo), hi)
    return out


def test_single_rounding_int64_equals_python_integers():
    rng = np.random.default_rng(11)
    reals = np.array([0.5, 0.75, 0.0036, 3.0, 2.0**-31, 1e-5, 0.31959719771424216, 0.999999])
    m, e = _core.quantize_multiplier(reals)
    edges = integer_edge_values(-(2**46), 2**46, random_count=200)
    acc = np.concatenate([edges, rng.integers(-(2**40), 2**40, size=400)])
    acc = np.resize(acc, (acc.size // reals.size + 1) * reals.size).reshape(-1, reals.size).astype(np.int64)
    bias = rng.integers(-(2**20), 2**20, size=reals.size).astype(np.int64)
    got = requantize_single_int64(acc, m, e, 0, -32768, 32767, bias=bias, out_dtype=np.int16)
    np.testing.assert_array_equal(got.astype(np.int64), _single_exact(acc, bias, m, e, 0, -32768, 32767))


def test_single_rounding_int64_agrees_with_the_int32_core():
    """On accumulators that fit int32, the int64 twin equals the core's int32 single rounding."""
    rng = np.random.default_rng(12)
    m, e = _core.quantize_multiplier(rng.uniform(1e-4, 0.9, size=5))
    acc = rng.integers(-(2**30), 2**30, size=(300, 5)).astype(np.int32)
    want = _core.requantize_fixed_point(acc, m, e, 3, -32768, 32767, rounding="single", out_dtype=np.int16)
    np.testing.assert_array_equal(requantize_single_int64(acc.astype(np.int64), m, e, 3, -32768, 32767), want)


# ------------------------------------------------------------------------------------------------------
# int16 LOGISTIC / TANH / SOFTMAX and the requantizing QUANTIZE (hwsim.emulate.op_kernels) against plain
# Python integers, element by element, transcribing the formulas the kernels' docstrings state (the engine
# comparison is tests/oracle/test_tflite_int16x8_oracle.py).

from hwsim.emulate import op_kernels  # noqa: E402

ALL_CODES = op_kernels.all_codes(np.int16)
T16 = [int(v) for v in op_kernels.SIGMOID_TABLE_UINT16]


def _rescaled(q: int, m: int, ls: int) -> int:
    if m == 0:
        m, ls = 3 << ls, 0
    return (q * m + (1 << (ls - 1) if ls else 0)) >> ls


def _logistic_py(q: int, m: int, ls: int) -> int:
    v = _rescaled(q, m, ls)
    u = abs(v)
    h = u >> 9
    r = 0x7FFF << 10 if h >= 255 else (T16[h] << 9) + (u & 511) * (T16[h + 1] - T16[h])
    return (r + 512 if v >= 0 else (1 << 25) - r + 511) >> 10


def _tanh_py(q: int, m: int, ls: int) -> int:
    v = _rescaled(q, m, ls)
    u = abs(v)
    h = u >> 8
    r = 0xFFFF << 8 if h >= 255 else (T16[h] << 8) + (u & 255) * (T16[h + 1] - T16[h])
    return (r - (1 << 23) + 128 if v >= 0 else (1 << 23) - r + 127) >> 8


@pytest.mark.parametrize("fn, kernel, ref", [("logistic", op_kernels.logistic_int16, _logistic_py),
                                             ("tanh", op_kernels.tanh_int16, _tanh_py)])
@pytest.mark.parametrize("scale", [2.0**-12, 2.0**-11, 6 / 32767, 40 / 32767, 1e-6, 1.3])
def test_int16_activation_equals_python_integers(fn, kernel, ref, scale):
    prm = op_kernels.int16_activation_params(fn, scale)
    q = integer_edge_values(-32768, 32767, random_count=3000)
    got = kernel(q, **prm)
    assert got.dtype == np.int16
    want = [ref(int(v), prm["input_multiplier"], prm["input_left_shift"]) for v in q]
    np.testing.assert_array_equal(got.astype(np.int64), want)


def test_int16_activation_params_follow_the_prepare_rules():
    """Power of two (or within 1e-3 of one in log2) with left shift 12 + log2 s = 0: multiplier 0 (LOGISTIC and
    TANH); left shift 1: multiplier 0 for TANH only; otherwise s·12288 doubled until it passes 16383.5."""
    assert op_kernels.int16_activation_params("logistic", 2.0**-12) == {"input_multiplier": 0, "input_left_shift": 0}
    assert op_kernels.int16_activation_params("tanh", 2.0**-11) == {"input_multiplier": 0, "input_left_shift": 1}
    assert op_kernels.int16_activation_params("logistic", 2.0**-11) == {"input_multiplier": 24576,
                                                                        "input_left_shift": 12}
    assert op_kernels.int16_activation_params("tanh", 2.0**-12 * 1.0005)["input_multiplier"] == 0
    prm = op_kernels.int16_activation_params("tanh", 6 / 32767)
    m = float(np.float32(6 / 32767)) * 12288.0 * 2.0 ** prm["input_left_shift"]
    assert prm["input_multiplier"] == int(m) and 16383.5 < m <= 32767


def test_sigmoid_table_shape():
    """sigmoid(i/24) in Q0.16: 32768 at 0, non-decreasing, 65535 at the end, each entry within one step of
    65536·sigmoid(i/24) and a half (the half-midpoint-error shift moves an entry by up to 1.11, at i = 35)."""
    t = op_kernels.SIGMOID_TABLE_UINT16
    exact = 65536.0 / (1.0 + np.exp(-np.arange(256) / 24.0))
    assert t.size == 256 and t[0] == 32768 and t[-1] == 65535 and np.all(np.diff(t) >= 0)
    assert np.max(np.abs(t - exact)) < 1.5


def test_lut_lookup_equals_python_integers():
    rng = np.random.default_rng(21)
    lut = rng.integers(-32768, 32768, size=513)
    want = []
    for v in ALL_CODES.tolist():
        i, f = 256 + (v >> 7), v & 127
        y = int(lut[i]) + (((int(lut[i + 1]) - int(lut[i])) * f + 64) >> 7)
        want.append((y + 32768) % 65536 - 32768)
    np.testing.assert_array_equal(op_kernels.lut_lookup_int16(ALL_CODES, lut), want)


def test_softmax_luts_end_points():
    """exp on [-10, 0] and 1/(1+x) on [0, 1] at output scale 2/65535 (one is 32767.5 steps, clamped to 32767):
    exp(0) and 1/(1+0) give 32767, 1/(1+1) gives 16384; exp(-10) is 1.49 steps, which the midpoint correction
    of the first segment raises to 2; both tables are monotone."""
    e, r = op_kernels.softmax_int16_luts()
    assert e.size == r.size == 513
    assert (e[512], e[0], r[0], r[512]) == (32767, 2, 32767, 16384)
    assert np.all(np.diff(e) >= 0) and np.all(np.diff(r) <= 0)


def _softmax_py(row: list[int], exp_table: np.ndarray, recip_lut: np.ndarray) -> list[int]:
    m = max(row)
    e = [int(exp_table[m - v]) for v in row]
    s = sum(e)
    h = 32 - s.bit_length()
    shifted = ((s << (h - 1)) + (1 << 13)) >> 14
    x = min(max(shifted - 98304, -32768), 32767)
    i, f = 256 + (x >> 7), x & 127
    recip = int(recip_lut[i]) + (((int(recip_lut[i + 1]) - int(recip_lut[i])) * f + 64) >> 7)
    rs = 31 - h
    return [min(max((v * recip + (1 << (rs - 1))) >> rs, 0), 32767) for v in e]


@pytest.mark.parametrize("depth", [1, 2, 16, 300])
def test_softmax_int16_equals_python_integers(depth):
    rng = np.random.default_rng(depth)
    s = np.float32(4 / 32767)
    table = op_kernels.softmax_int16_exp_table(**op_kernels.softmax_int16_params(s))
    q = np.concatenate([rng.integers(-32768, 32768, size=(40, depth)),
                        np.clip(np.round(rng.normal(0, 1.0, size=(40, depth)) / s), -32768, 32767),
                        np.full((1, depth), -32768), np.full((1, depth), 32767)]).astype(np.int16)
    _, recip = op_kernels.softmax_int16_luts()
    want = [_softmax_py(row, table, recip) for row in q.astype(np.int64).tolist()]
    np.testing.assert_array_equal(op_kernels.softmax_int16(q, table), want)


def _mbqm_double_py(x: int, m: int, e: int) -> int:
    """numerics.md A.3: SaturatingRoundingDoublingHighMul(x·2^max(e,0), M), then RoundingDivideByPOT by -min(e,0)."""
    a = x * (1 << max(e, 0))
    if a == m == -(2**31):
        hi = 2**31 - 1
    else:
        ab = a * m
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        hi = int((ab + nudge) / (1 << 31))  # C++ integer division truncates toward zero
    n = -min(e, 0)
    if n == 0:
        return hi
    mask = (1 << n) - 1
    rem, thr = hi & mask, (mask >> 1) + (1 if hi < 0 else 0)
    return (hi >> n) + (1 if rem > thr else 0)


@pytest.mark.parametrize("s_in, s_out", [(1.0, 3.0), (3.0, 1.0), (2.0**-10, 3 * 2.0**-11), (3.8e-5, 1.34e-4),
                                         (0.7, 0.7), (1.0, 2.0)])
def test_requantize_tflite_equals_python_integers(s_in, s_out):
    m, e = _core.quantize_multiplier(float(np.float32(s_in)) / float(np.float32(s_out)))
    q = integer_edge_values(-32768, 32767, random_count=2000)
    got = op_kernels.requantize_tflite(q, s_in, 0, s_out, 0, -32768, 32767, np.int16)
    want = [min(max(_mbqm_double_py(int(v), int(m), int(e)), -32768), 32767) for v in q]
    np.testing.assert_array_equal(got.astype(np.int64), want)
