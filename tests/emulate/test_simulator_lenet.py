"""hwsim run's simulator on the bundled, really trained LeNet-5 (issue 4: "sim accuracy within 1 point of
float on every 8-bit target; report the 4-bit and 2-bit variants honestly")."""

import numpy as np
import pytest

from hwsim.emulate.run import run_model
from hwsim.emulate.simulator import quantize_for_target, simulate
from hwsim.graph import load_model
from hwsim.targets import load_target

EIGHT_BIT = ["intel_int8", "intel_int8_avx2", "intel_int8_fbgemm", "arm_tflite", "arm_tflite_xnnpack", "fpga_dpu",
             "fpga_dpu_b1152"]
SUB_8_BIT = ["fpga_dpu_w4a8", "fpga_dpu_w4a4", "fpga_dpu_w2a8"]


@pytest.fixture(scope="module")
def lenet():
    return load_model("examples/lenet5.npz")


@pytest.mark.parametrize("target", EIGHT_BIT)
def test_8bit_targets_stay_within_one_point_of_float(lenet, target):
    report = run_model(lenet, load_target(target))
    assert report.accuracy_float == pytest.approx(0.9778, abs=1e-3)  # metadata of tools/train_lenet5.py
    assert report.accuracy_sim >= report.accuracy_float - 0.01
    assert not report.fallbacks  # every LeNet op has an integer kernel on these targets


@pytest.mark.parametrize("target", SUB_8_BIT)
def test_sub_8bit_targets_run_and_report(lenet, target):
    report = run_model(lenet, load_target(target))
    assert 0.1 < report.accuracy_sim <= 1.0
    bits = load_target(target).numerics.weights.bits
    assert all(layer.weight_bits == bits for layer in report.layers if layer.op_kind in ("Conv2D", "Dense"))


def test_simulation_is_deterministic_and_batch_independent(lenet):
    target = load_target("arm_tflite")
    qm = quantize_for_target(lenet, target, lenet.data["calibration"]["x"])
    x = lenet.data["evaluation"]["x"][:16]
    whole = simulate(qm, x).integers
    for i in range(0, 16, 5):
        part = simulate(qm, x[i:i + 5]).integers
        for name, arr in part.items():
            np.testing.assert_array_equal(arr, whole[name][i:i + 5], err_msg=name)


def test_intermediates_are_freed_unless_kept(lenet):
    qm = quantize_for_target(lenet, load_target("fpga_dpu"), lenet.data["calibration"]["x"][:32])
    x = lenet.data["evaluation"]["x"][:4]
    kept = simulate(qm, x, keep_intermediates=True).integers
    lean = simulate(qm, x, keep_intermediates=False).integers
    assert set(lean) == set(lenet.outputs)
    for name in lean:
        np.testing.assert_array_equal(lean[name], kept[name])


def test_excluded_layer_runs_in_float_and_is_reported(lenet):
    from hwsim.emulate.simulator import LayerOverride

    report = run_model(lenet, load_target("fpga_dpu"), limit=40, overrides={"fc3": LayerOverride(float=True)})
    (fc3,) = [layer for layer in report.layers if layer.name == "fc3"]
    assert fc3.mode == "fallback" and "override" in fc3.note
    assert all(layer.mode == "integer" for layer in report.layers if layer.name != "fc3")


def test_weight_bits_override_changes_only_that_layer(lenet):
    from hwsim.emulate.simulator import LayerOverride

    qm_report = run_model(lenet, load_target("arm_tflite"), limit=40, overrides={"conv1": LayerOverride(weight_bits=4)})
    plans = {p.node.name: p for p in qm_report.quantized.plans}
    w1, w2 = plans["conv1"].consts["w_int"], plans["conv2"].consts["w_int"]
    assert w1.min() >= -7 and w1.max() <= 7  # TFLite's narrow rule at 4 bits: [-7, 7]
    assert w2.max() > 7 or w2.min() < -7


def test_dynamic_quantization_observes_each_input(lenet):
    report = run_model(lenet, load_target("arm_tflite"), limit=30, dynamic=True)
    assert report.calibration_samples == 0 and report.accuracy_sim >= report.accuracy_float - 0.05


@pytest.mark.parametrize("overrides, message", [
    ({"nope": {"float": True}}, "no node named 'nope'"),
    ({"conv1": {"bits": 4}}, "unknown key"),
    ({"conv1": {"weight_bits": 1}}, "weight_bits"),
    ({"pool1": {"weight_bits": 4}}, "applies to Conv2D/Dense"),
])
def test_bad_overrides_are_named(lenet, overrides, message):
    from hwsim.emulate.simulator import parse_overrides
    from hwsim.errors import HwsimError

    with pytest.raises(HwsimError, match=message):
        run_model(lenet, load_target("arm_tflite"), limit=8, overrides=parse_overrides(overrides))
