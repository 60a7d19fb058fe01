"""Depthwise conv2d into int32: ``hwsim._core.depthwise_conv2d_s32`` equals its numpy twin bit for bit.

Specification (csrc/hwsim/depthwise_conv2d.h): x NHWC, w OHWI [C·mult, KH, KW, 1], output channel oc reads
input channel oc // mult. EXACT sums (x − zp)·w; FBGEMM_DW_PAIRS sums raw products in int16-saturated pairs
of taps (kh·KW + kw order) and subtracts zp·Σw (numerics.md B.1 and section 7).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from edge_values import int_type_range, integer_edge_values
from hypothesis import given, settings
from hypothesis import strategies as st

import hwsim._core as core
from hwsim.emulate import ref_depthwise as ref

MODES = ["EXACT", "FBGEMM_DW_PAIRS"]
ISAS = [isa for isa in ("scalar", "avx2", "avx512") if core.depthwise_isa_available(isa)]


def _random_case(rng, n, h, w, c, kh, kw, mult, dtype):
    lo, hi = int_type_range(8, dtype == np.int8)
    x = rng.integers(lo, hi, size=(n, h, w, c), endpoint=True).astype(dtype)
    wt = rng.integers(-128, 127, size=(c * mult, kh, kw, 1), endpoint=True).astype(np.int8)
    zp = int(rng.integers(lo, hi, endpoint=True))
    return x, wt, zp


def _both(x, w, mode, isa="auto", threads=1, **kw):
    got = core.depthwise_conv2d_s32(x, w, mode=mode, isa=isa, threads=threads, **kw)
    want = ref.depthwise_conv2d_s32(x, w, mode=mode, **kw)
    return got, want


# The VPMADDUBSW rows of numerics.md section 5, as a 1×2 depthwise kernel whose two taps form one pair.
@pytest.mark.parametrize(
    ("xs", "ws", "pairs", "exact"),
    [
        ((255, 255), (127, 127), 32767, 64770),
        ((255, 255), (-128, -128), -32768, -65280),
        ((127, 127), (127, 127), 32258, 32258),
    ],
)
def test_pair_saturation_hand_table(xs, ws, pairs, exact):
    x = np.array(xs, dtype=np.uint8).reshape(1, 1, 2, 1)
    w = np.array(ws, dtype=np.int8).reshape(1, 1, 2, 1)
    assert core.depthwise_conv2d_s32(x, w, mode="FBGEMM_DW_PAIRS")[0, 0, 0, 0] == pairs
    assert core.depthwise_conv2d_s32(x, w, mode="EXACT")[0, 0, 0, 0] == exact


def test_pairs_subtracts_zero_point_times_weight_sum():
    # One 3×3 window of 255s with zp 200 and weights 127: the pairs saturate on raw values
    # (4 pairs · 32767 + 255·127) and then zp·Σw = 200·9·127 comes off exactly.
    x = np.full((1, 3, 3, 1), 255, np.uint8)
    w = np.full((1, 3, 3, 1), 127, np.int8)
    got = core.depthwise_conv2d_s32(x, w, x_zero_point=200, mode="FBGEMM_DW_PAIRS")
    assert got[0, 0, 0, 0] == 4 * 32767 + 255 * 127 - 200 * 9 * 127


def test_padding_taps_hold_the_zero_point():
    # All-padding outside a 1×1 image: EXACT gives (zp − zp)·w = 0 there; the pairs mode sees raw zp.
    x = np.full((1, 1, 1, 8), 7, np.uint8)
    w = np.full((8, 3, 3, 1), 3, np.int8)
    got = core.depthwise_conv2d_s32(x, w, pads=(1, 1, 1, 1), x_zero_point=7)
    assert np.all(got == 0)
    got = core.depthwise_conv2d_s32(x, w, pads=(1, 1, 1, 1), x_zero_point=5, mode="FBGEMM_DW_PAIRS")
    assert np.all(got == 2 * 3)


# FBGEMM_DW_PAIRS models uint8 × int8 only; int8 activations with it raise (see test_bad_arguments_raise).
@pytest.mark.parametrize(("mode", "dtype"), [("EXACT", np.uint8), ("EXACT", np.int8), ("FBGEMM_DW_PAIRS", np.uint8)])
@pytest.mark.parametrize("isa", ISAS)
def test_edge_values_every_isa(mode, isa, dtype):
    lo, hi = int_type_range(8, dtype == np.int8)
    vals = integer_edge_values(lo, hi, random_count=0)
    rng = np.random.default_rng(1)
    c = 19  # not a multiple of any vector width
    x = rng.choice(vals, size=(2, 6, 7, c)).astype(dtype)
    w = rng.choice(integer_edge_values(-128, 127, random_count=0), size=(c * 2, 3, 3, 1)).astype(np.int8)
    for zp in (lo, 0 if lo < 0 else 1, hi):
        got, want = _both(x, w, mode, isa=isa, pads=(1, 1, 1, 1), x_zero_point=zp)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("isa", ISAS)
def test_extreme_values_saturate_every_pair(mode, isa):
    x = np.full((1, 5, 5, 16), 255, np.uint8)
    w = np.tile(np.array([127, -128], np.int8), 16 * 9 // 2 + 1)[: 16 * 9].reshape(16, 3, 3, 1)
    got, want = _both(x, w, mode, isa=isa, pads=(1, 1, 1, 1), x_zero_point=0)
    np.testing.assert_array_equal(got, want)


GEOMETRIES = [
    # kernel, strides, dilations, pads [t, l, b, r], multiplier
    ((3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 1),
    ((3, 3), (2, 2), (1, 1), (1, 1, 1, 1), 1),
    ((3, 3), (2, 1), (1, 2), (0, 2, 1, 0), 2),
    ((5, 5), (1, 1), (1, 1), (2, 2, 2, 2), 1),
    ((5, 3), (3, 2), (2, 1), (3, 0, 0, 3), 3),
    ((7, 7), (2, 2), (1, 1), (3, 3, 3, 3), 2),
    ((1, 1), (1, 1), (1, 1), (0, 0, 0, 0), 4),
    ((2, 4), (1, 3), (3, 1), (1, 2, 3, 4), 1),
    ((3, 3), (1, 1), (1, 1), (4, 4, 4, 4), 1),  # rows of pure padding
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("kernel", "strides", "dilations", "pads", "mult"), GEOMETRIES)
def test_geometries_match_twin(rng, mode, kernel, strides, dilations, pads, mult):
    x, w, zp = _random_case(rng, 2, 9, 8, 5, *kernel, mult, np.uint8)
    for isa in ISAS:
        got, want = _both(
            x, w, mode, isa=isa, strides=strides, dilations=dilations, pads=pads, depth_multiplier=mult, x_zero_point=zp
        )
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_weight_zero_point_scalar_and_per_channel(rng, isa, dtype):
    x, w, zp = _random_case(rng, 2, 7, 6, 6, 3, 3, 2, dtype)
    lo, hi = int_type_range(8, dtype == np.int8)
    x[0, 0, 0] = lo
    w[0, 0, 0, 0] = -128
    for w_zp in (0, 127, -128, np.arange(-6, 6, dtype=np.int64) * 10, np.full(12, 127)):
        got, want = _both(x, w, "EXACT", isa=isa, pads=(1, 2, 0, 1), x_zero_point=zp, w_zero_point=w_zp)
        np.testing.assert_array_equal(got, want)
    # The extreme product (x - zp)(w - w_zp) = 255 · 255 stays exact.
    x1 = np.full((1, 3, 3, 1), hi, dtype)
    w1 = np.full((1, 3, 3, 1), -128, np.int8)
    got = core.depthwise_conv2d_s32(x1, w1, x_zero_point=lo, w_zero_point=127, isa=isa)
    assert got[0, 0, 0, 0] == 9 * 255 * -255


def test_int8_activations_exact(rng):
    x, w, zp = _random_case(rng, 1, 7, 7, 12, 3, 3, 2, np.int8)
    got, want = _both(x, w, "EXACT", pads=(1, 0, 1, 2), x_zero_point=zp)
    np.testing.assert_array_equal(got, want)


def test_threads_do_not_change_integers(rng):
    x, w, zp = _random_case(rng, 3, 11, 10, 24, 3, 3, 1, np.uint8)
    for mode in MODES:
        one = core.depthwise_conv2d_s32(x, w, pads=(1, 1, 1, 1), x_zero_point=zp, mode=mode, threads=1)
        for threads in (0, 2, 3):  # 0 = all hardware threads
            many = core.depthwise_conv2d_s32(x, w, pads=(1, 1, 1, 1), x_zero_point=zp, mode=mode, threads=threads)
            np.testing.assert_array_equal(one, many)


def test_mode_accepts_enum_and_alias():
    x = np.full((1, 3, 3, 1), 255, np.uint8)
    w = np.full((1, 3, 3, 1), 127, np.int8)
    a = core.depthwise_conv2d_s32(x, w, mode=core.DepthwiseMode.FBGEMM_DW3X3_PAIRS)
    b = core.depthwise_conv2d_s32(x, w, mode="FBGEMM_DW_PAIRS")
    np.testing.assert_array_equal(a, b)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 2),
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    c=st.integers(1, 10),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    mult=st.integers(1, 3),
    mode=st.sampled_from(MODES),
    signed=st.booleans(),
)
def test_property_random_shapes(data, n, h, w, c, kh, kw, mult, mode, signed):
    if mode != "EXACT":
        signed = False
    dtype = np.int8 if signed else np.uint8
    strides = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    dilations = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    pads = tuple(data.draw(st.integers(0, 3)) for _ in range(4))
    if h + pads[0] + pads[2] < dilations[0] * (kh - 1) + 1 or w + pads[1] + pads[3] < dilations[1] * (kw - 1) + 1:
        return
    seed = data.draw(st.integers(0, 2**32 - 1))
    x, wt, zp = _random_case(np.random.default_rng(seed), n, h, w, c, kh, kw, mult, dtype)
    isa = data.draw(st.sampled_from(ISAS))
    w_zp = data.draw(st.sampled_from([None, 0, -128, 127, 5])) if mode == "EXACT" else None
    got, want = _both(
        x, wt, mode, isa=isa, strides=strides, dilations=dilations, pads=pads, x_zero_point=zp, w_zero_point=w_zp
    )
    np.testing.assert_array_equal(got, want)


# --- bad input raises, naming the argument ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "word"),
    [
        ({"x": np.zeros((1, 3, 3, 2), np.int16)}, TypeError, "x"),
        ({"w": np.zeros((2, 3, 3, 1), np.uint8)}, TypeError, "w"),
        ({"x": np.zeros((3, 3, 2), np.uint8)}, ValueError, "x"),
        ({"w": np.zeros((2, 3, 3, 2), np.int8)}, ValueError, "w"),
        ({"w": np.zeros((3, 3, 3, 1), np.int8)}, ValueError, "w.shape[0]"),
        ({"depth_multiplier": 2}, ValueError, "depth_multiplier"),
        ({"x_zero_point": 256}, ValueError, "x_zero_point"),
        ({"x_zero_point": -1}, ValueError, "x_zero_point"),
        ({"strides": (0, 1)}, ValueError, "strides"),
        ({"dilations": (1, -1)}, ValueError, "dilations"),
        ({"pads": (0, 0, -1, 0)}, ValueError, "pads"),
        ({"x": np.zeros((1, 1, 1, 2), np.uint8)}, ValueError, "kernel"),
        ({"mode": "SOMETHING"}, ValueError, "mode"),
        ({"isa": "neon9"}, ValueError, "isa"),
        ({"threads": -1}, ValueError, "threads"),
        ({"x": np.zeros((1, 3, 3, 2), np.int8), "mode": "FBGEMM_DW_PAIRS"}, TypeError, "uint8"),
        ({"w": np.zeros((2, 129, 129, 1), np.int8)}, ValueError, "taps"),
        ({"w_zero_point": 128}, ValueError, "w_zero_point"),
        ({"w_zero_point": [1, 2, 3]}, ValueError, "w_zero_point"),
        ({"w_zero_point": 1.5}, TypeError, "w_zero_point"),
        ({"w_zero_point": 1, "mode": "FBGEMM_DW_PAIRS"}, ValueError, "w_zero_point"),
        ({"x": np.zeros((1, 3, 6, 2), np.uint8)[:, :, ::2]}, ValueError, "contiguous"),
    ],
)
def test_bad_arguments_raise(kwargs, exc, word):
    args = {"x": np.zeros((1, 3, 3, 2), np.uint8), "w": np.zeros((2, 3, 3, 1), np.int8)}
    args.update(kwargs)
    with pytest.raises(exc, match=word.replace("[", r"\[").replace("]", r"\]")):
        core.depthwise_conv2d_s32(**args)


def test_unavailable_isa_raises_instead_of_crashing():
    for isa in ("avx2", "avx512"):
        if not core.depthwise_isa_available(isa):
            with pytest.raises(ValueError, match="isa"):
                core.depthwise_conv2d_s32(np.zeros((1, 3, 3, 2), np.uint8), np.zeros((2, 3, 3, 1), np.int8), isa=isa)


def test_fbgemm_routing_rule_is_a_pure_function():
    # The rule itself is checked against the engine in tests/oracle/test_torch_gemm_conv.py.
    routed = [
        args
        for args in itertools.product((8, 12), (1, 2, 3), (3, 5, 9), (1, 3))
        if ref.fbgemm_routes_depthwise(args[0], args[1], (args[2], args[2]), (args[3],) * 2, (1, 1), ((args[2] - 1) // 2,) * 4)
    ]
    assert routed == [(8, 1, 3, 1), (8, 1, 5, 1), (8, 2, 3, 1), (8, 2, 5, 1)]
