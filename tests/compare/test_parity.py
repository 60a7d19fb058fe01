"""Parity across targets: constructed differences are found at the right layer and labelled with the right
cause; identical targets are identical; the lenet example runs on every 8-bit target.

Every constructed case states where its difference comes from (a tie of numerics.md A.3 double rounding vs
B.5 RNE, a VPMADDUBSW pair of B.1, a power-of-two grid of C.1 against a float scale of A.1)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.compare.parity import CAUSES, parity
from hwsim.errors import HwsimError
from hwsim.graph import GraphBuilder, QuantSpec, load_model
from hwsim.targets import list_targets, load_target

LENET = "examples/lenet5.npz"


def _targets(*names):
    return [load_target(n) for n in names]


def _spec(scale, bits=8, signed=True, axis=None, n=1):
    return QuantSpec(bits=bits, signed=signed, scale=np.full(n, scale, np.float32),
                     zero_point=np.zeros(n, np.int64), axis=axis)


def _tie_graph():
    """Pre-quantized: x (s = 1) → 1×1 conv, w = [1, 1] at s_w = 1/2, y at s = 1 → y = (x0 + x1) / 2 exactly;
    then a second 1×1 conv y2 = y (w = 1 at s = 1), which only propagates."""
    b = GraphBuilder("tie")
    x = b.input("x", (1, 2, 2, 2))
    b.param("w1", np.ones((1, 1, 1, 2), np.int8))
    b.param("b1", np.zeros(1, np.int32))
    b.param("w2", np.ones((1, 1, 1, 1), np.int8))
    b.param("b2", np.zeros(1, np.int32))
    y = b.conv2d(x, "w1", "b1", name="conv1")
    y2 = b.conv2d(y, "w2", "b2", name="conv2")
    b.output(y2)
    b.quant("x", _spec(1.0))
    b.quant("w1", _spec(0.5, axis=0))
    b.quant("b1", _spec(0.5, bits=32, axis=0))
    b.quant(y, _spec(1.0))
    b.quant("w2", _spec(1.0, axis=0))
    b.quant("b2", _spec(1.0, bits=32, axis=0))
    b.quant(y2, _spec(1.0))
    return b.build()


def test_rounding_tie_tflite_double_rounding_vs_onnxruntime_rne():
    g = _tie_graph()
    # x0 + x1 odd puts acc / 2 on an exact .5: TFLite's SRDHM rounds 0.5 → 1 and 2.5 → 3 (numerics A.3),
    # MLAS rounds half to even, 0.5 → 0 and 2.5 → 2 (B.5); integers fed as floats quantize exactly.
    x = np.array([[[[0, 1], [2, 3]], [[4, 4], [-2, 1]]]], np.float32)
    rep = parity(g, _targets("arm_tflite", "intel_int8"), inputs=x)
    p = rep.pair("arm_tflite", "intel_int8")
    by = {lay.tensor: lay for lay in p.layers}
    assert by["x"].differing == 0
    conv1 = by["conv1"]
    assert p.first_divergent.tensor == "conv1"
    assert conv1.method == "replay"
    # sums 1, 5, 8, -1: 0.5 and 2.5 differ (1 vs 0, 3 vs 2); -0.5 → 0 on both; 4 is exact
    assert conv1.differing == 2 and conv1.causes == {"rounding_tie": 2}
    assert {(e.code_a, e.code_b) for e in conv1.examples} == {(1, 0), (3, 2)}
    assert by["conv2"].causes == {"propagated": 2}
    assert conv1.histogram == {"0": 2, "1": 2}


def test_rounding_tie_in_the_input_quantization_then_propagated():
    # x / s = 0.5 and 2.5 at s = 1: TFLite's QUANTIZE rounds half away from zero (1, 3), onnxruntime's
    # QuantizeLinear half to even (0, 2) (numerics section 7); −1.5 is −2 on both. conv1 only carries the
    # difference on.
    x = np.array([[[[0.5, 0], [2.5, 0]], [[1, 1], [-1.5, 0]]]], np.float32)
    rep = parity(_tie_graph(), _targets("arm_tflite", "intel_int8"), inputs=x)
    first = rep.pairs[0].first_divergent
    assert first.tensor == "x" and first.method == "input" and first.causes == {"rounding_tie": 2}
    conv1 = rep.pairs[0].layers[1]
    assert conv1.method == "replay" and set(conv1.causes) <= {"propagated", "rounding_tie"}
    assert conv1.causes.get("propagated", 0) >= 1


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.booleans(), st.integers(0, 2**32 - 1))
def test_tie_labels_match_an_exact_rational_reference(shift, conv, seed):
    # Pre-quantized layer with y = acc · 2^-shift exactly (x and y at scale 1, weights at 2^-shift): both
    # targets see the same exact value; an element is a rounding tie iff acc mod 2^shift = 2^(shift-1).
    # TFLite's conv rounds twice (numerics section 7), which also differs off ties (2.5 → 3 then 1.5 → 2 for
    # 1.25): those are 'arithmetic'. Its dense layer rounds once.
    rng = np.random.default_rng(seed)
    w = rng.integers(-6, 7, (3, 4))  # small enough that y stays inside int8: no clipping
    b = GraphBuilder("exact")
    x = b.input("x", (1, 1, 1, 4) if conv else (1, 4))
    b.param("w", (w.reshape(3, 1, 1, 4) if conv else w).astype(np.int8))
    b.param("bias", np.zeros(3, np.int32))
    b.output(b.conv2d(x, "w", "bias", name="fc") if conv else b.dense(x, "w", "bias", name="fc"))
    b.quant("x", _spec(1.0))
    b.quant("w", _spec(2.0**-shift, axis=0, n=3))
    b.quant("bias", _spec(2.0**-shift, bits=32, axis=0, n=3))
    b.quant("fc", _spec(1.0))
    xs = rng.integers(-10, 11, (32, 4))
    inputs = xs.reshape(32, 1, 1, 4) if conv else xs
    rep = parity(b.build(), _targets("arm_tflite", "intel_int8"), inputs=inputs.astype(np.float32),
                 examples=10**6)
    fc = rep.pairs[0].layers[-1]
    acc = (xs @ w.T).reshape((32, 1, 1, 3) if conv else (32, 3))
    for e in fc.examples:
        tie = acc[e.index] % 2**shift == 2 ** (shift - 1)
        assert e.cause == ("rounding_tie" if tie else "arithmetic"), (e, int(acc[e.index]))


def _dense_graph(weights, name="sat"):
    b = GraphBuilder(name)
    x = b.input("x", (1, weights.shape[1]))
    b.output(b.dense(x, weights.astype(np.float32), np.zeros(weights.shape[0], np.float32), name="fc"))
    return b.build()


def test_int16_pair_saturation_avx2_vs_vnni():
    # Channel 0 has weights +1, +1 (both quantize to +127) in adjacent K positions, channel 1 has +1, −1.
    # u8 codes near 255: 2·255·127 = 64770 saturates VPMADDUBSW's int16 sum (numerics B.1) on channel 0 only.
    g = _dense_graph(np.array([[1.0, 1.0], [1.0, -1.0]]))
    rng = np.random.default_rng(3)
    corners = [[1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]
    calib = np.concatenate([rng.uniform(0, 1, (32, 2)), corners]).astype(np.float32)
    x = np.array([[1.0, 1.0], [0.99, 0.98], [0.1, 0.2], [1.0, 0.0]], np.float32)
    rep = parity(g, _targets("intel_int8", "intel_int8_avx2"), inputs=x, calibration=calib)
    fc = rep.pair("intel_int8", "intel_int8_avx2").layers[-1]
    assert fc.tensor == "fc" and fc.method == "replay"
    assert fc.causes == {"saturation": 2}
    assert {e.index for e in fc.examples} == {(0, 0), (1, 0)}
    assert all(e.code_b < e.code_a for e in fc.examples)  # the saturated sum is smaller


def test_power_of_two_rescale_dpu_vs_tflite():
    # Inputs on k/64: both targets put the input on the grid 1/128 (DPU fix_pos 7, TFLite scale 1/128, zp 0),
    # so the input is identical; the conv output has a power-of-two scale on the DPU (C.1) and a float scale
    # on TFLite (A.1): differences there are local and caused by the scales.
    rng = np.random.default_rng(0)
    b = GraphBuilder("pow2")
    x = b.input("x", (1, 4, 4, 2))
    b.output(b.conv2d(x, rng.normal(0, 0.5, (3, 3, 3, 2)).astype(np.float32),
                      rng.normal(0, 0.1, 3).astype(np.float32), pads=[1, 1, 1, 1], name="conv"))
    g = b.build()
    calib = (rng.integers(-64, 64, (16, 4, 4, 2)) / 64).astype(np.float32)
    calib[0, 0, 0, :] = [-1.0, 127 / 128]
    xs = (rng.integers(-64, 64, (4, 4, 4, 2)) / 64).astype(np.float32)
    rep = parity(g, _targets("fpga_dpu", "arm_tflite"), inputs=xs, calibration=calib)
    assert rep.models["fpga_dpu"].act["x"].scale == rep.models["arm_tflite"].act["x"].scale == 1 / 128
    p = rep.pair("fpga_dpu", "arm_tflite")
    assert p.layers[0].differing == 0
    conv = p.layers[-1]
    assert p.first_divergent is conv and conv.method == "replay"
    assert set(conv.causes) == {"scale"} and conv.causes["scale"] == conv.differing > 0


def test_different_input_grids_make_everything_downstream_propagated():
    g = load_model(LENET)
    rep = parity(g, _targets("arm_tflite", "fpga_dpu"), limit=6)
    p = rep.pair("arm_tflite", "fpga_dpu")
    assert p.first_divergent.tensor == "image" and set(p.first_divergent.causes) == {"scale"}
    for lay in p.layers[2:]:
        assert lay.method == "receptive_field"
        assert set(lay.causes) <= {"propagated", "scale"}


def test_identical_numerics_are_identical():
    g = load_model(LENET)
    rep = parity(g, _targets("intel_int8", "intel_int8_xeon_8380"), limit=8)
    p = rep.pairs[0]
    assert p.identical and p.top1_agreement == 1.0 and p.flips == []
    assert all(lay.identical == lay.elements for lay in p.layers)


@pytest.fixture(scope="module")
def lenet_all():
    names = [i.name for i in list_targets()]
    eight_bit = [n for n in names if load_target(n).numerics.activations.format == "int"
                 and load_target(n).numerics.activations.bits == 8]
    return eight_bit, parity(load_model(LENET), _targets(*eight_bit), limit=12)


def test_lenet_parity_across_all_8bit_targets(lenet_all):
    names, rep = lenet_all
    assert len(names) >= 10 and [t.name for t in rep.targets] == names
    assert len(rep.pairs) == len(names) * (len(names) - 1) // 2
    for t in rep.targets:
        assert t.accuracy is not None and t.top1_vs_float is not None
    for p in rep.pairs:
        assert p.top1_agreement is not None and 0.0 <= p.topk_agreement <= 1.0
        for lay in p.layers:
            assert sum(lay.causes.values()) == lay.differing
            assert set(lay.causes) <= set(CAUSES)
            assert sum(lay.histogram.values()) == lay.elements
    # the AVX2 pair saturation is the local cause where the VNNI and AVX2 variants first diverge
    first = rep.pair("intel_int8", "intel_int8_avx2").first_divergent
    assert first.layer == "conv1+ReLU" and set(first.causes) == {"saturation"}
    # ... where the static check predicts it
    risky = {t.name: {c["layer"] for c in t.can_overflow} for t in rep.targets}
    assert "conv1+ReLU" in risky["intel_int8_avx2"] and risky["intel_int8"] == set()


def test_lenet_report_serialises(lenet_all, tmp_path):
    import json

    names, rep = lenet_all
    doc = json.loads(json.dumps(rep.to_dict()))
    assert len(doc["summary"]["pairs"]) == len(rep.pairs)
    out = rep.write_folder(tmp_path / "run")
    files = ["flips.csv", "layers.csv", "summary.json", "targets.yaml"]
    assert sorted(f.name for f in out.iterdir()) == files
    lines = (out / "layers.csv").read_text().splitlines()
    assert lines[0].startswith("a,b,depth,layer,tensor") and len(lines) > len(rep.pairs)


def test_flips_list_the_inputs_whose_class_changes():
    # Pre-quantized 2-class dense layer: logit 0 is 0, logit 1 = (x0 + x1) / 2. For x0 + x1 = 1 TFLite's
    # single rounding gives 1 (class 1, numerics A.3/section 7) and MLAS's RNE gives 0 (class 0 by arg-max).
    b = GraphBuilder("flip")
    x = b.input("x", (1, 2))
    b.param("w", np.array([[0, 0], [1, 1]], np.int8))
    b.param("bias", np.zeros(2, np.int32))
    b.output(b.dense(x, "w", "bias", name="fc"))
    b.quant("x", _spec(1.0))
    b.quant("w", _spec(0.5, axis=0, n=2))
    b.quant("bias", _spec(0.5, bits=32, axis=0, n=2))
    b.quant("fc", _spec(1.0))
    g = b.build()
    xs = np.array([[1, 0], [3, 3], [0, 1], [2, 2]], np.float32)
    rep = parity(g, _targets("arm_tflite", "intel_int8"), inputs=xs, labels=np.array([1, 1, 1, 1]))
    p = rep.pairs[0]
    assert p.flips == [0, 2] and p.top1_agreement == 0.5
    assert [r["index"] for r in rep.flip_rows()] == [0, 2]
    assert {t.name: t.accuracy for t in rep.targets} == {"arm_tflite": 1.0, "intel_int8": 0.5}
    assert p.layers[-1].causes == {"rounding_tie": 2}


@pytest.mark.parametrize("names, message", [
    (["arm_tflite"], "at least two"),
    (["arm_tflite", "arm_tflite"], "given twice"),
    (["arm_tflite", "arm_tflite_fp16"], "float"),
])
def test_bad_target_lists(names, message):
    with pytest.raises(HwsimError, match=message):
        parity(load_model(LENET), _targets(*names), limit=2)


def test_model_without_data_needs_inputs():
    g = _dense_graph(np.eye(2))
    with pytest.raises(HwsimError, match="no bundled evaluation data"):
        parity(g, _targets("arm_tflite", "intel_int8"))


def _grid_1_128_calibration(rng, shape):
    """Calibration data on k/64 whose extremes −1 and 127/128 give both the DPU (fix_pos 7) and TFLite
    (scale 1/128, zp 0) the same input grid, so that input differences cannot hide a local cause."""
    calib = (rng.integers(-64, 64, shape) / 64).astype(np.float32)
    calib.reshape(shape[0], -1)[0, :2] = [-1.0, 127 / 128]
    return calib


def test_clipping_at_the_output_range():
    # y = x0 + x1 calibrated on data where x1 ≈ −x0/2: x = (0.9, 0.9) lies far above both targets' output
    # ranges; the DPU's power-of-two range and TFLite's calibrated range end at different reals.
    rng = np.random.default_rng(1)
    b = GraphBuilder("clip")
    x = b.input("x", (1, 2))
    b.output(b.dense(x, np.array([[1.0, 1.0]], np.float32), np.zeros(1, np.float32), name="fc"))
    c = rng.integers(-64, 64, (32, 1)) / 64
    calib = np.concatenate([c, -c / 2], axis=1).astype(np.float32)
    calib[0] = [-1.0, 127 / 128]
    xs = np.array([[0.9, 0.9], [0.75, 0.75]], np.float32)
    rep = parity(b.build(), _targets("fpga_dpu", "arm_tflite"), inputs=xs, calibration=calib)
    fc = rep.pairs[0].layers[-1]
    assert fc.method == "replay" and fc.causes == {"clipping": 2}


def test_activation_approximation_dpu_leaky_relu_vs_float():
    # The DPU fuses LeakyReLU as 26/256 on the unrounded conv sum (numerics C.5, section 7); TFLite runs this
    # LeakyReLU as dequantize → float → quantize here. The input grid is shared, so the cause is local.
    rng = np.random.default_rng(1)
    b = GraphBuilder("leaky")
    x = b.input("x", (1, 3, 3, 2))
    y = b.conv2d(x, rng.normal(0, 0.5, (2, 1, 1, 2)).astype(np.float32), np.zeros(2, np.float32), name="conv")
    b.output(b.leaky_relu(y, alpha=26 / 256, name="leaky"))
    calib = _grid_1_128_calibration(rng, (16, 3, 3, 2))
    xs = (rng.integers(-64, 64, (4, 3, 3, 2)) / 64).astype(np.float32)
    rep = parity(b.build(), _targets("fpga_dpu", "arm_tflite"), inputs=xs, calibration=calib)
    p = rep.pairs[0]
    assert [lay.tensor for lay in p.layers] == ["x", "leaky"]  # the DPU never materialises 'conv'
    leaky = p.layers[-1]
    assert leaky.layer == "conv+LeakyReLU" and leaky.differing > 0
    assert leaky.causes == {"activation": leaky.differing}


def test_every_cause_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "parity.md").read_text(encoding="utf-8")
    for cause in CAUSES:
        assert f"`{cause}`" in doc, cause
