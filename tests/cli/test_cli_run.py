"""`hwsim run`: the README's main job, its run folder, --json, and bad input (exit 2, one line, no traceback)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from hwsim.cli import cli

LENET = "examples/lenet5.npz"


def _run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_main_job_prints_layer_table_and_summary():
    r = _run("run", "--target", "fpga_dpu", LENET, "--limit", "40")
    assert r.exit_code == 0, r.output
    assert "conv1+ReLU" in r.output and "summary:" in r.output and "8 integer layers, 0 float fallbacks" in r.output


def test_run_folder_has_stable_files(tmp_path):
    out = tmp_path / "run"
    r = _run("run", "-t", "arm_tflite", LENET, "--limit", "40", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["layers.csv", "summary.json", "target.yaml"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["target"] == "arm_tflite" and summary["samples"] == 40
    header = (out / "layers.csv").read_text().splitlines()[0]
    assert header.startswith("name,op,op_kind,output,shape,mode")


def test_json_output_is_one_document():
    r = CliRunner().invoke(cli, ["run", "-t", "intel_int8", LENET, "--limit", "20", "--json"])
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["summary"]["samples"] == 20 and len(doc["layers"]) == 8


def test_explicit_input_and_labels(tmp_path):
    from hwsim.graph import load_model

    g = load_model(LENET)
    np.save(tmp_path / "x.npy", g.data["evaluation"]["x"][:10])
    np.save(tmp_path / "y.npy", g.data["evaluation"]["y"][:10])
    r = _run("run", "-t", "fpga_dpu", LENET, "--input", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"))
    assert r.exit_code == 0, r.output
    assert "accuracy float" in r.output


@pytest.mark.parametrize("args, fragment", [
    (["run", "-t", "no_such_target", LENET], "no_such_target"),
    (["run", "-t", "fpga_dpu", "missing.npz"], "missing.npz"),
    (["run", "-t", "fpga_dpu", LENET, "--input", "nope.npy"], "nope.npy"),
])
def test_bad_input_is_one_line_exit_2(args, fragment):
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2
    assert fragment in r.output and "Traceback" not in r.output


def test_wrong_input_shape_names_the_input(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 28, 28, 1), np.float32))
    r = CliRunner().invoke(cli, ["run", "-t", "fpga_dpu", LENET, "--input", str(tmp_path / "x.npy")])
    assert r.exit_code == 2 and "expected shape (N, 32, 32, 1)" in r.output


def test_pickled_input_is_refused(tmp_path):
    # Writing a pickle needs the flag; hwsim itself never sets it when reading.
    np.save(tmp_path / "x.npy", np.array([{"a": 1}], dtype=object), **{"allow_pickle": True})
    r = CliRunner().invoke(cli, ["run", "-t", "fpga_dpu", LENET, "--input", str(tmp_path / "x.npy")])
    assert r.exit_code == 2 and "x.npy" in r.output


@pytest.mark.parametrize("content", [b"", b"not numpy at all"])
def test_unreadable_input_file_is_named(tmp_path, content):
    bad = tmp_path / "x.npy"
    bad.write_bytes(content)
    r = CliRunner().invoke(cli, ["run", "-t", "fpga_dpu", LENET, "--input", str(bad)])
    assert r.exit_code == 2 and "x.npy" in r.output and "Traceback" not in r.output


def test_npz_archive_as_input_is_refused(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    r = CliRunner().invoke(cli, ["run", "-t", "fpga_dpu", LENET, "--input", str(tmp_path / "x.npz")])
    assert r.exit_code == 2 and "archive" in r.output


def test_tflite_file_runs_directly():
    from hwsim.frontends import load_any

    g = load_any("tests/data/tflite/mini_net_float_io.tflite")
    assert g.quant  # pre-quantized: simulated on its own parameters
