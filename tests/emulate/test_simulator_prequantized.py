"""Pre-quantized graphs are simulated on their own parameters: freezing a quantized model into a graph and
simulating that graph gives back exactly the same integers, on every numerics family."""

import numpy as np
import pytest

from hwsim.emulate.simulator import quantize_for_target, simulate
from hwsim.errors import HwsimError
from hwsim.graph import Graph, load_model, save_model
from hwsim.targets import load_target


@pytest.fixture(scope="module")
def lenet():
    return load_model("examples/lenet5.npz")


@pytest.mark.parametrize("target", ["arm_tflite", "arm_tflite_xnnpack", "intel_int8", "intel_int8_avx2",
                                    "fpga_dpu", "fpga_dpu_w4a4"])
def test_frozen_model_simulates_to_the_same_integers(lenet, target, tmp_path):
    t = load_target(target)
    qm = quantize_for_target(lenet, t, lenet.data["calibration"]["x"])
    frozen = qm.to_graph()
    save_model(frozen, tmp_path / "q.npz")
    again = quantize_for_target(load_model(tmp_path / "q.npz"), t)  # no calibration: parameters as given
    x = lenet.data["evaluation"]["x"][:40]
    want, got = simulate(qm, x).integers, simulate(again, x).integers
    assert set(want) <= set(got)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_missing_activation_spec_is_named(lenet):
    qm = quantize_for_target(lenet, load_target("arm_tflite"), lenet.data["calibration"]["x"][:16])
    frozen = qm.to_graph()
    quant = {k: v for k, v in frozen.quant.items() if k not in ("fc1", "relu3")}  # fc1+ReLU's output
    broken = Graph(frozen.name, frozen.inputs, frozen.outputs, frozen.nodes, frozen.params, quant)
    with pytest.raises(HwsimError, match="has no quantization parameters"):
        quantize_for_target(broken, load_target("arm_tflite"))


def test_float_model_without_calibration_is_refused(lenet):
    with pytest.raises(HwsimError, match="needs calibration data"):
        quantize_for_target(lenet, load_target("arm_tflite"))
