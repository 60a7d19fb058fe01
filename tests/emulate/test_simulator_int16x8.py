"""The 16x8 (int16 activation) path of the simulator against plain numpy.

* ``accumulate_int16`` (int16 codes split into bytes, each half through the 8-bit core, recombined in int64)
  equals ``accumulate_int16_reference`` (im2col / depthwise taps, int64 products) on edge values (type
  min/max, powers of two ±1/±2) and seeded random codes, for Conv2D (padding, strides, dilation, groups),
  depthwise (multiplier 2) and Dense.
* ``requantize_single_int64`` equals exact Python-integer arithmetic of the single-rounding formula
  (numerics.md A.3), including accumulators beyond 2^32 where the int64 product would overflow.
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
