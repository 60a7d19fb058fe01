"""Issue 5 item 4: a pre-quantized model mapped onto another target's rules keeps each tensor's real range and
reports what changed."""

import numpy as np
import pytest
from click.testing import CliRunner

from hwsim.cli import cli
from hwsim.emulate.simulator import quantize_for_target, requantize_for_target, simulate
from hwsim.errors import HwsimError
from hwsim.graph import load_model, save_model
from hwsim.targets import load_target


@pytest.fixture(scope="module")
def lenet():
    return load_model("examples/lenet5.npz")


@pytest.fixture(scope="module")
def tflite_frozen(lenet):
    return quantize_for_target(lenet, load_target("arm_tflite"), lenet.data["calibration"]["x"]).to_graph()


def _accuracy(qm, lenet):
    out = next(iter(simulate(qm, lenet.data["evaluation"]["x"]).outputs.values()))
    return float(np.mean(out.argmax(-1) == lenet.data["evaluation"]["y"]))


def test_same_family_keeps_every_scale(tflite_frozen):
    _, changes = requantize_for_target(tflite_frozen, load_target("arm_tflite"))
    for c in changes:
        assert c.scale_ratio == pytest.approx(1.0, rel=1e-6), c.tensor
        assert c.new_zero_point == c.old_zero_point, c.tensor


def test_mapping_onto_the_dpu_gives_power_of_two_scales_covering_the_range(tflite_frozen, lenet):
    qm, changes = requantize_for_target(tflite_frozen, load_target("fpga_dpu"))
    acts = [c for c in changes if c.role == "activation"]
    assert acts
    for c in acts:
        assert np.log2(c.new_scale) == int(np.log2(c.new_scale))  # a power of two
        assert c.new_zero_point == 0  # the DPU is symmetric (numerics C.2)
        lo, hi = c.old_range
        assert c.new_range[0] <= lo + 1e-9 and hi <= c.new_range[1] + c.new_scale  # overflow-free position (C.3)
    assert _accuracy(qm, lenet) >= 0.9778 - 0.01


def test_mapping_onto_intel_uses_uint8_with_the_same_real_range(tflite_frozen):
    _, changes = requantize_for_target(tflite_frozen, load_target("intel_int8"))
    for c in (c for c in changes if c.role == "activation"):
        assert c.new_range[0] <= 0.0 <= c.new_range[1]
        assert c.new_scale == pytest.approx(c.old_scale, rel=1e-3)


def test_float_model_cannot_be_requantized(lenet):
    with pytest.raises(HwsimError, match="no quantization parameters to map"):
        requantize_for_target(lenet, load_target("fpga_dpu"))


def test_cli_points_to_requantize_and_writes_the_change_table(tflite_frozen, tmp_path):
    path = tmp_path / "q.npz"
    save_model(tflite_frozen, path)
    r = CliRunner().invoke(cli, ["run", "-t", "fpga_dpu", str(path), "--limit", "20"])
    assert r.exit_code == 2 and "--requantize" in r.output
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["run", "-t", "fpga_dpu", str(path), "--limit", "20", "--requantize", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert (out / "requantized.csv").read_text().startswith("tensor,role,old_bits,new_bits")
