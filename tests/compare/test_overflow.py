"""Static accumulator-overflow check: bounds are exact worst cases, agree with the integer core's own
overflow count on the worst-case input, follow the kernels' K order, and flag exactly the layers that can
overflow (the pair arithmetic is numerics.md B.1 and section 7; the pairing rule is csrc/hwsim/gemm.h)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import _core
from hwsim.compare.overflow import check_overflow, pair_bounds, signed_bits, sum_bounds, tensor_ranges
from hwsim.emulate.simulator import quantize_for_target
from hwsim.errors import HwsimError
from hwsim.graph import GraphBuilder, QuantSpec, load_model
from hwsim.targets import load_target

LENET = "examples/lenet5.npz"


def _spec(scale, bits=8, signed=True, axis=None, n=1):
    return QuantSpec(bits=bits, signed=signed, scale=np.full(n, scale, np.float32),
                     zero_point=np.zeros(n, np.int64), axis=axis)


def _prequantized_dense(w_int: np.ndarray, x_signed: bool = False):
    """Dense layer with the given int8 weights and input codes u8 (or s8) at zp 0, used as they are."""
    o, k = w_int.shape
    b = GraphBuilder("dense")
    x = b.input("x", (1, k))
    b.param("w", w_int.astype(np.int8))
    b.param("bias", np.zeros(o, np.int32))
    b.output(b.dense(x, "w", "bias", name="fc"))
    b.quant("x", _spec(1.0, signed=x_signed))
    b.quant("w", _spec(0.01, axis=0, n=o))
    b.quant("bias", _spec(0.01, bits=32, axis=0, n=o))
    b.quant("fc", _spec(64.0))
    return b.build()


def _prequantized_conv(w_int: np.ndarray, pads=(0, 0, 0, 0)):
    o, kh, kw, c = w_int.shape
    b = GraphBuilder("conv")
    x = b.input("x", (1, 4, 4, c))
    b.param("w", w_int.astype(np.int8))
    b.param("bias", np.zeros(o, np.int32))
    b.output(b.conv2d(x, "w", "bias", pads=list(pads), name="conv"))
    b.quant("x", _spec(1.0, signed=False))
    b.quant("w", _spec(0.01, axis=0, n=o))
    b.quant("bias", _spec(0.01, bits=32, axis=0, n=o))
    b.quant("conv", _spec(64.0))
    return b.build()


def _only(report, check):
    (c,) = [c for c in report.checks if c.check == check]
    return c


# ------------------------------------------------------------------------------------------------------
# Bounds


@pytest.mark.parametrize("lo, hi, bits", [(0, 0, 1), (-1, 0, 1), (0, 1, 2), (-128, 127, 8), (-129, 127, 9),
                                          (0, 32767, 16), (0, 32768, 17), (-32768, 0, 16), (-32769, 0, 17),
                                          (0, 64770, 17), (-65280, 0, 17)])
def test_signed_bits(lo, hi, bits):
    assert signed_bits(lo, hi) == bits


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-128, 127), min_size=1, max_size=6), st.integers(-128, 255), st.integers(0, 255))
def test_sum_bounds_are_the_extremes_over_all_corner_inputs(w, lo, span):
    hi = lo + span
    w = np.array([w])
    got_min, got_max = sum_bounds(w, lo, hi)
    sums = [int(np.dot(w[0], c)) for c in itertools.product((lo, hi), repeat=w.shape[1])]
    assert (int(got_min[0]), int(got_max[0])) == (min(sums), max(sums))


def test_pair_bounds_pair_adjacent_k_and_pad_odd_k():
    w = np.array([[127, 127, -128, 5, 7]])
    lo, hi = pair_bounds(w, 0, 255)
    assert lo.tolist() == [[0, -128 * 255, 0]] and hi.tolist() == [[2 * 127 * 255, 5 * 255, 7 * 255]]


# ------------------------------------------------------------------------------------------------------
# int16 pairs on AVX2 targets


@pytest.mark.parametrize("weights, headroom", [
    ([[127, 127, 0, 0]], -1),        # 2·255·127 = 64770 > 32767 (numerics B.1)
    ([[-128, -128, 0, 0]], -1),      # 2·255·(−128) = −65280 < −32768
    ([[63, 63, 63, 63]], 0),         # 2·255·63 = 32130 fits (7-bit weights, B.1)
    ([[127, 0, 127, 0]], 0),         # large weights in different pairs: 255·127 = 32385 fits
    ([[1, 1, 1, 1]], 16 - signed_bits(0, 510)),
])
def test_avx2_pair_headroom_matches_the_core_on_the_worst_input(weights, headroom):
    w = np.array(weights)
    qm = quantize_for_target(_prequantized_dense(w), load_target("intel_int8_avx2"))
    c = _only(check_overflow(qm), "int16_pairs")
    assert c.headroom_bits == headroom and c.can_overflow == (headroom < 0)
    assert c.input_range == (0, 255) and c.width_bits == 16
    # The worst-case input of the worst pair makes the core's VPMADDUBSW emulation saturate iff flagged.
    worst = np.where(w[c.worst_channel] > 0, 255, 0).astype(np.uint8)[None, :]
    worst_neg = np.where(w[c.worst_channel] < 0, 255, 0).astype(np.uint8)[None, :]
    count = sum(_core.gemm_s32(x, w.astype(np.int8), mode="avx2_pairs", count_overflow=True)[1]
                for x in (worst, worst_neg))
    assert (count > 0) == c.can_overflow


def test_exact_target_has_no_pair_check():
    qm = quantize_for_target(_prequantized_dense(np.array([[127, 127]])), load_target("intel_int8"))
    rep = check_overflow(qm)
    assert [c.check for c in rep.checks] == ["accumulator"] and not rep.overflowing


def test_conv_pairs_follow_the_kh_kw_ci_order():
    # C = 2: K order (kh, kw, ci) with ci innermost is k0=(0,0,0) k1=(0,0,1) k2=(0,1,0) k3=(0,1,1).
    same_pair = np.zeros((1, 1, 2, 2), np.int8)
    same_pair[0, 0, 0, :] = 127            # k0, k1: one pair → saturates
    split = np.zeros((1, 1, 2, 2), np.int8)
    split[0, 0, 0, 1] = split[0, 0, 1, 0] = 127  # k1, k2: two pairs → fits
    t = load_target("intel_int8_avx2")
    flagged = _only(check_overflow(quantize_for_target(_prequantized_conv(same_pair), t)), "int16_pairs")
    safe = _only(check_overflow(quantize_for_target(_prequantized_conv(split), t)), "int16_pairs")
    assert flagged.headroom_bits == -1 and flagged.worst_pair == 0
    assert safe.headroom_bits == 0
    x = np.full((1, 4, 4, 2), 255, np.uint8)
    for w, c in ((same_pair, flagged), (split, safe)):
        _, count = _core.conv2d_s32(x, w, mode="avx2_pairs", count_overflow=True)
        assert (count > 0) == c.can_overflow


def test_signed_activations_pair_on_shifted_codes():
    # int8 activations enter VPMADDUBSW as a + 128 (gemm.h): codes −128..127 become 0..255.
    qm = quantize_for_target(_prequantized_dense(np.array([[127, 127]]), x_signed=True),
                             load_target("intel_int8_avx2"))
    c = _only(check_overflow(qm), "int16_pairs")
    assert c.input_range == (0, 255) and c.headroom_bits == -1


# ------------------------------------------------------------------------------------------------------
# Accumulator width


def _narrow_target(tmp_path, bits):
    (tmp_path / "intel_int8_acc16.yaml").write_text(
        "schema_version: 1\nname: intel_int8_acc16\nfamily: intel\nextends: intel_int8\n"
        "description: intel_int8 with a narrow accumulator\n"
        f"numerics:\n  accumulator:\n    bits: {bits}\n    overflow: WRAP\n")
    return load_target(tmp_path / "intel_int8_acc16.yaml")


@pytest.mark.parametrize("weights, overflow", [
    ([[127, 127, 127, 127]], True),   # 4·255·127 = 129540 needs 18 bits
    ([[1, 1, 1, 1]], False),          # 1020 needs 11 bits
    ([[32, -32, 32, -32]], False),    # ±16320: 16 bits
])
def test_narrow_accumulator_is_flagged_with_its_headroom(tmp_path, weights, overflow):
    w = np.array(weights)
    t = _narrow_target(tmp_path, 16)
    qm = quantize_for_target(_prequantized_dense(w), t)
    c = _only(check_overflow(qm), "accumulator")
    lo, hi = sum_bounds(w, 0, 255)
    assert (c.bound_min, c.bound_max) == (int(lo[0]), int(hi[0]))
    assert c.width_bits == 16 and c.headroom_bits == 16 - signed_bits(lo[0], hi[0])
    assert c.can_overflow == overflow
    # same answer from the width override on the 32-bit target
    again = _only(check_overflow(quantize_for_target(_prequantized_dense(w), load_target("intel_int8")),
                                 acc_bits=16), "accumulator")
    assert again.headroom_bits == c.headroom_bits
    worst = np.where(w[0] > 0, 255, 0).astype(np.uint8)[None, :]
    _, count = _core.gemm_s32(worst, w.astype(np.int8), acc_bits=16, count_overflow=True)
    assert (count > 0) == overflow


@pytest.mark.parametrize("weights, headroom", [
    ([[127, 127, 127, 127]], -2),   # exact sum 4·255·127 = 129540 (18 bits) > saturated pairs 2·32767
    ([[1, 1, 1, 1]], 16 - signed_bits(0, 1020)),
])
def test_narrow_accumulator_on_avx2_pairs(tmp_path, weights, headroom):
    (tmp_path / "avx2_acc16.yaml").write_text(
        "schema_version: 1\nname: avx2_acc16\nfamily: intel\nextends: intel_int8_avx2\n"
        "description: avx2 with a narrow accumulator\n"
        "numerics:\n  accumulator:\n    bits: 16\n    overflow: WRAP\n")
    w = np.array(weights)
    qm = quantize_for_target(_prequantized_dense(w), load_target(tmp_path / "avx2_acc16.yaml"))
    c = _only(check_overflow(qm), "accumulator")
    assert c.headroom_bits == headroom
    worst = np.where(w[0] > 0, 255, 0).astype(np.uint8)[None, :]
    _, count = _core.gemm_s32(worst, w.astype(np.int8), mode="avx2_pairs", acc_bits=16, count_overflow=True)
    assert (count > 0) == (headroom < 0)


def test_bias_counts_in_the_accumulator():
    g = _prequantized_dense(np.array([[1, 1]]))
    g.params["bias"] = np.array([1000], np.int32)
    c = _only(check_overflow(quantize_for_target(g, load_target("intel_int8"))), "accumulator")
    assert (c.bound_min, c.bound_max) == (1000, 1000 + 510)


# ------------------------------------------------------------------------------------------------------
# Depthwise pairs (fbgemm)


def test_fbgemm_depthwise_pairs_are_checked_on_routed_geometries():
    rng = np.random.default_rng(0)
    b = GraphBuilder("dw")
    x = b.input("x", (1, 6, 6, 8))
    w = rng.normal(0, 1, (8, 3, 3, 1)).astype(np.float32)
    b.output(b.depthwise_conv2d(x, w, np.zeros(8, np.float32), pads=[1, 1, 1, 1], name="dw"))
    qm = quantize_for_target(b.build(), load_target("intel_int8_fbgemm"),
                             rng.uniform(0, 1, (8, 6, 6, 8)).astype(np.float32))
    c = _only(check_overflow(qm), "dw_pairs")
    w_int = qm.plans[0].consts["w_int"].reshape(8, 9).astype(np.int64)
    lo, hi = pair_bounds(w_int, 0, 255)  # taps kh·3 + kw, pairs (0,1), (2,3), (4,5), (6,7), 8 alone
    need = max(signed_bits(a, z) for a, z in zip(lo.ravel(), hi.ravel()))
    assert c.headroom_bits == 16 - need
    # a 3×3 depthwise conv without padding is not routed to the pair kernel (ref_depthwise)
    b2 = GraphBuilder("dw0")
    x2 = b2.input("x", (1, 6, 6, 8))
    b2.output(b2.depthwise_conv2d(x2, w, np.zeros(8, np.float32), name="dw"))
    qm2 = quantize_for_target(b2.build(), load_target("intel_int8_fbgemm"),
                              rng.uniform(0, 1, (8, 6, 6, 8)).astype(np.float32))
    assert [c.check for c in check_overflow(qm2).checks] == ["accumulator"]


# ------------------------------------------------------------------------------------------------------
# Ranges and the lenet example


@pytest.fixture(scope="module")
def lenet():
    return load_model(LENET)


def test_lenet_on_avx2_can_saturate_pairs_but_not_int32(lenet):
    qm = quantize_for_target(lenet, load_target("intel_int8_avx2"), lenet.data["calibration"]["x"][:32])
    rep = check_overflow(qm)
    assert {c.layer for c in rep.overflowing} == {"conv1+ReLU", "conv2+ReLU", "fc1+ReLU", "fc2+ReLU", "fc3"}
    assert all(c.check == "int16_pairs" and c.headroom_bits == -1 for c in rep.overflowing)
    assert all(c.headroom_bits > 0 for c in rep.checks if c.check == "accumulator")


@pytest.mark.parametrize("target", ["intel_int8", "arm_tflite", "fpga_dpu", "intel_int8_avx2_reduce_range"])
def test_lenet_cannot_overflow_elsewhere(lenet, target):
    qm = quantize_for_target(lenet, load_target(target), lenet.data["calibration"]["x"][:32])
    assert check_overflow(qm).overflowing == []


def test_fused_relu_narrows_the_next_layer_input(lenet):
    qm = quantize_for_target(lenet, load_target("arm_tflite"), lenet.data["calibration"]["x"][:32])
    ranges = tensor_ranges(qm)
    zp = qm.act["relu1"].zero_point
    assert ranges["relu1"] == (zp, 127) and ranges["pool1"] == (zp, 127)
    conv2 = [c for c in check_overflow(qm).checks if c.node == "conv2"][0]
    assert conv2.input_range == (zp, 127)


def test_observed_ranges_are_within_storage_ranges(lenet):
    x = lenet.data["calibration"]["x"][:32]
    qm = quantize_for_target(lenet, load_target("intel_int8_avx2"), x)
    static, seen = check_overflow(qm), check_overflow(qm, data=x)
    assert seen.range_source == "observed"
    for a, b in zip(static.checks, seen.checks):
        assert a.input_range[0] <= b.input_range[0] and b.input_range[1] <= a.input_range[1]
        assert b.headroom_bits >= a.headroom_bits


def test_report_serialises(lenet, tmp_path):
    import json

    qm = quantize_for_target(lenet, load_target("intel_int8_avx2"), lenet.data["calibration"]["x"][:16])
    rep = check_overflow(qm)
    doc = json.loads(json.dumps(rep.to_dict()))
    assert doc["target"] == "intel_int8_avx2" and len(doc["can_overflow"]) == 5
    rep.write_folder(tmp_path)
    lines = (tmp_path / "overflow.csv").read_text().splitlines()
    assert lines[0].startswith("layer,node,op_kind,check") and len(lines) == 1 + len(rep.checks)


def test_bad_width_is_refused(lenet):
    qm = quantize_for_target(lenet, load_target("intel_int8"), lenet.data["calibration"]["x"][:8])
    with pytest.raises(HwsimError, match="acc-bits"):
        check_overflow(qm, acc_bits=1)
