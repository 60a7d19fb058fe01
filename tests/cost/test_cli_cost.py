"""`hwsim estimate` and `hwsim validate-cost`: table, --json, --out, errors (exit 2, one line)."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from hwsim.cli import cli
from hwsim.graph import save_model

LENET = "examples/lenet5.npz"


def _run(*args):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def r50(tmp_path_factory):
    from hwsim.cost.models import build

    path = tmp_path_factory.mktemp("m") / "resnet50.npz"
    save_model(build("resnet50"), path)
    return str(path)


def test_table_and_totals(r50):
    r = _run("estimate", "--target", "fpga_dpu_zcu104", r50)
    assert r.exit_code == 0, r.output
    assert "res5a_branch2b" in r.output and "device latency 12.19" in r.output and "DDR traffic" in r.output
    assert "bn_conv1" not in r.output  # folded: only with --all-layers
    assert "bn_conv1" in _run("estimate", "-t", "fpga_dpu_zcu104", r50, "--all-layers").output


def test_json_is_the_documented_contract(r50):
    r = CliRunner().invoke(cli, ["estimate", "-t", "fpga_dpu_zcu102", r50, "--json", "--threads", "3"])
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["threads"] == 3 and doc["target"] == "fpga_dpu_zcu102"
    for key in ("macs", "cycles", "device_latency_ms", "e2e_latency_ms", "ddr_bytes", "weight_bytes",
                "peak_activation_bytes", "throughput_fps"):
        assert isinstance(doc["totals"][key], (int, float)), key
    assert doc["layers"][0]["name"] == "conv1" and doc["layers"][0]["unit"] == "dpu"


def test_out_folder_has_stable_files(tmp_path):
    out = tmp_path / "cost"
    r = _run("estimate", "-t", "arm_tflite_pixel4", LENET, "--out", str(out))
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["cost.json", "cost_layers.csv", "cost_totals.csv"]
    rows = list(csv.DictReader((out / "cost_layers.csv").open()))
    assert rows[0]["name"] and "time_ms" in rows[0] and "bound" in rows[0]
    totals = {row["key"]: row["value"] for row in csv.DictReader((out / "cost_totals.csv").open())}
    assert float(totals["e2e_latency_ms"]) > 0


@pytest.mark.parametrize("args, message", [
    (("estimate", "-t", "arm_tflite", LENET), "has no cost: section"),
    (("estimate", "-t", "no_such_target", LENET), "no_such_target"),
    (("estimate", "-t", "fpga_dpu", "missing.npz"), "missing.npz"),
])
def test_errors_exit_2_with_one_line(args, message):
    r = _run(*args)
    assert r.exit_code == 2 and message in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_unknown_op_warns_and_is_listed(monkeypatch):
    import hwsim.cli.estimate as cli_estimate
    from hwsim.graph import load_model

    g = load_model(LENET)
    g.nodes[-1].op = "FancyOp"  # an op kind the cost model has no function for
    monkeypatch.setattr(cli_estimate, "load_model", lambda path: g)
    r = CliRunner().invoke(cli, ["estimate", "-t", "fpga_dpu", LENET, "--json"])
    assert r.exit_code == 0
    assert f"warning: layer '{g.nodes[-1].name}' not estimated" in r.stderr
    doc = json.loads(r.stdout)
    assert doc["complete"] is False and doc["totals"]["unestimated"] == [g.nodes[-1].name]
    assert doc["layers"][-1]["time_ms"] is None


def test_validate_cost_reports_every_anchor():
    r = CliRunner().invoke(cli, ["validate-cost", "--json"])
    doc = json.loads(r.stdout)
    assert r.exit_code == (0 if doc["passed"] else 1)
    assert {a["role"] for a in doc["anchors"]} == {"fit", "check"}
    assert all("source" in a and "error" in a for a in doc["anchors"])
    text = _run("validate-cost")
    assert "dpu_resnet50_zcu104_device" in text.output and "per-layer: median" in text.output
