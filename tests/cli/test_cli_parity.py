"""`hwsim parity` and `hwsim check-overflow`: tables, --json, run folders, bad input (exit 2, one line)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from hwsim.cli import cli
from hwsim.graph import GraphBuilder, load_model, save_model

LENET = "examples/lenet5.npz"


def _run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def bare_model(tmp_path_factory):
    """A float model with no bundled data."""
    b = GraphBuilder("bare")
    x = b.input("x", (1, 4))
    b.output(b.dense(x, np.eye(4, dtype=np.float32), np.zeros(4, np.float32), name="fc"))
    path = tmp_path_factory.mktemp("bare") / "bare.npz"
    save_model(b.build(), path)
    return str(path)


def test_parity_prints_targets_pairs_and_depth_tables():
    r = _run("parity", "--targets", "intel_int8,intel_int8_avx2,arm_tflite", LENET, "--limit", "12")
    assert r.exit_code == 0, r.output
    for fragment in ("intel_int8_avx2", "first divergent layer", "divergence by depth", "conv1+ReLU",
                     "saturation", "predicted class flips"):
        assert fragment in r.output


def test_parity_json_is_one_document():
    r = CliRunner().invoke(cli, ["parity", "-t", "intel_int8,fpga_dpu", LENET, "--limit", "8", "--json"])
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["summary"]["samples"] == 8 and len(doc["summary"]["pairs"]) == 1
    pair = doc["pairs"][0]
    assert pair["a"] == "intel_int8" and pair["b"] == "fpga_dpu"
    assert pair["layers"][0]["tensor"] == "image" and "causes" in pair["layers"][0]
    assert set(doc["causes"]) >= {"propagated", "rounding_tie", "saturation", "scale"}


def test_parity_run_folder(tmp_path):
    out = tmp_path / "run"
    r = _run("parity", "-t", "arm_tflite,fpga_dpu,intel_int8", LENET, "--limit", "8", "--out", str(out))
    assert r.exit_code == 0, r.output
    files = ["flips.csv", "layers.csv", "summary.json", "targets.yaml"]
    assert sorted(p.name for p in out.iterdir()) == files
    summary = json.loads((out / "summary.json").read_text())
    assert [t["name"] for t in summary["targets"]] == ["arm_tflite", "fpga_dpu", "intel_int8"]
    rows = (out / "layers.csv").read_text().splitlines()
    assert rows[0].startswith("a,b,depth,layer,tensor,op,elements,identical,share_identical")
    assert len(rows) == 1 + 3 * 9  # 3 pairs × 9 common tensors (input + 8 layers)


def test_parity_explicit_input_labels_and_calibration(tmp_path):
    g = load_model(LENET)
    np.save(tmp_path / "x.npy", g.data["evaluation"]["x"][:6])
    np.save(tmp_path / "y.npy", g.data["evaluation"]["y"][:6])
    np.save(tmp_path / "c.npy", g.data["calibration"]["x"][:20])
    r = _run("parity", "-t", "arm_tflite,arm_tflite_xnnpack", LENET, "--input", str(tmp_path / "x.npy"),
             "--labels", str(tmp_path / "y.npy"), "--calib", str(tmp_path / "c.npy"), "--json")
    doc = json.loads(r.stdout)
    assert doc["summary"]["samples"] == 6 and doc["summary"]["calibration_samples"] == 20
    assert all(t["accuracy"] is not None for t in doc["summary"]["targets"])


@pytest.mark.parametrize("args, fragment", [
    (["parity", "-t", "arm_tflite,no_such_target", LENET], "no_such_target"),
    (["parity", "-t", "arm_tflite", LENET], "at least two"),
    (["parity", "-t", "arm_tflite,fpga_dpu", "missing.npz"], "missing.npz"),
    (["parity", "-t", "arm_tflite,fpga_dpu", LENET, "--input", "nope.npy"], "nope.npy"),
    (["parity", "-t", "arm_tflite,arm_tflite_fp16", LENET, "--limit", "2"], "arm_tflite_fp16"),
    (["check-overflow", "-t", "no_such_target", LENET], "no_such_target"),
    (["check-overflow", "-t", "arm_tflite_fp16", LENET], "float"),
    (["check-overflow", "-t", "intel_int8", LENET, "--calib", "nope.npy"], "nope.npy"),
])
def test_bad_input_is_one_line_exit_2(args, fragment):
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2, r.output
    assert fragment in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_model_without_data_and_no_input_is_one_line_exit_2(bare_model):
    for args in (["parity", "-t", "arm_tflite,intel_int8", bare_model],
                 ["check-overflow", "-t", "intel_int8", bare_model]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 2, r.output
        assert "no bundled" in r.output and len(r.output.strip().splitlines()) == 1


def test_model_without_data_runs_with_input(bare_model, tmp_path):
    x = np.random.default_rng(0).uniform(-1, 1, (16, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = _run("parity", "-t", "arm_tflite,intel_int8", bare_model, "--input", str(tmp_path / "x.npy"),
             "--json")
    assert json.loads(r.stdout)["summary"]["samples"] == 16
    r = _run("check-overflow", "-t", "intel_int8", bare_model, "--calib", str(tmp_path / "x.npy"), "--json")
    assert json.loads(r.stdout)["can_overflow"] == []


def test_check_overflow_table_and_strict_exit_code():
    r = _run("check-overflow", "-t", "intel_int8_avx2", LENET, "--limit", "16")
    assert r.exit_code == 0, r.output
    assert "int16_pairs" in r.output and "CAN OVERFLOW" in r.output and "5 layer(s) can overflow" in r.output
    assert CliRunner().invoke(cli, ["check-overflow", "-t", "intel_int8_avx2", LENET, "--limit", "16",
                                    "--strict"]).exit_code == 1
    ok = _run("check-overflow", "-t", "intel_int8", LENET, "--limit", "16", "--strict")
    assert ok.exit_code == 0 and "no layer can overflow" in ok.output


def test_check_overflow_json_acc_bits_and_folder(tmp_path):
    r = _run("check-overflow", "-t", "arm_tflite", LENET, "--limit", "16", "--acc-bits", "16", "--json",
             "--out", str(tmp_path / "o"))
    doc = json.loads(r.stdout)
    assert doc["accumulator_bits"] == 16 and len(doc["can_overflow"]) == 5
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["overflow.csv", "overflow.json"]


def test_check_overflow_observed_ranges():
    r = _run("check-overflow", "-t", "intel_int8_avx2", LENET, "--limit", "16", "--observed", "--json")
    doc = json.loads(r.stdout)
    assert doc["range_source"] == "observed"
