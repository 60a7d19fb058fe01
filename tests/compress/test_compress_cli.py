"""`hwsim compress prune|lowrank|cluster|sweep`: tables, --json, --out, CSV, and clear errors (exit 2, nothing
written)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hwsim.cli import cli
from hwsim.compress import check_clustered, clustered_weights
from hwsim.graph import load_model

LENET = str(Path(__file__).resolve().parents[2] / "examples" / "lenet5.npz")
FAST = ["--targets", "fpga_dpu,intel_int8_i7_1185g7", "--limit", "16"]


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_prune_table_model_and_folder(tmp_path):
    out, folder = tmp_path / "p.npz", tmp_path / "rep"
    r = _run("compress", "prune", LENET, "-o", out, "--ratio", 0.3, "--target", "fpga_dpu", "--out", folder,
             *FAST)
    assert r.exit_code == 0, r.output
    assert "prune_structured" in r.output and "accuracy on fpga_dpu" in r.output and "fpga_dpu" in r.output
    g = load_model(out)
    assert g.params["conv1.weight"].shape[0] == 4
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["after"]["macs"] == g.macs() and summary["sim_target"] == "fpga_dpu"
    rows = list(csv.DictReader(open(folder / "targets.csv")))
    assert {r["target"] for r in rows} == {"fpga_dpu", "intel_int8_i7_1185g7"}
    assert {r["which"] for r in rows} == {"before", "after"}
    layers = list(csv.DictReader(open(folder / "layers.csv")))
    assert [r["layer"] for r in layers] == ["conv1", "conv2", "fc1", "fc2"]


def test_unstructured_json_says_no_speedup(tmp_path):
    r = _run("compress", "prune", LENET, "-o", tmp_path / "u.npz", "--ratio", 0.5, "--mode", "unstructured",
             "--sparse", "--json", *FAST)
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["after"]["weight_sparsity"] == pytest.approx(0.5, abs=1e-3)
    for row in rep["targets"]:
        assert row["sparse_speedup_possible"] is False and row["sparse_note"].startswith("no:")
        assert row["after"]["cycles"] == row["before"]["cycles"]


def test_lowrank_and_cluster(tmp_path):
    r = _run("compress", "lowrank", LENET, "-o", tmp_path / "l.npz", "--ratio", 0.5, "--json", *FAST)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["after"]["params"] < 0.55 * json.loads(r.output)["before"]["params"]
    r = _run("compress", "lowrank", LENET, "-o", tmp_path / "l2.npz", "--rank", "fc1=20", "--mode", "spatial",
             *FAST)
    assert r.exit_code == 0, r.output
    assert load_model(tmp_path / "l2.npz").params["fc1.weight_a"].shape == (20, 400)
    r = _run("compress", "cluster", LENET, "-o", tmp_path / "c.npz", "--bits", 4, "--per-channel", *FAST)
    assert r.exit_code == 0, r.output
    assert "codebook + packed indices" in " ".join(r.output.split())
    c = load_model(tmp_path / "c.npz")
    check_clustered(c)
    assert set(clustered_weights(c)) == {f"{n}.weight" for n in ("conv1", "conv2", "fc1", "fc2", "fc3")}


@pytest.mark.parametrize("method, values, column", [("prune", ["--ratios", "0.1,0.3,0.5"], "ratio"),
                                                    ("lowrank", ["--ratios", "0.5"], "ratio"),
                                                    ("cluster", ["--bits", "2,4"], "bits")])
def test_sweep_prints_and_writes_csv(tmp_path, method, values, column):
    dest = tmp_path / "s.csv"
    r = _run("compress", "sweep", LENET, "--method", method, *values, "--target", "fpga_dpu", "--limit", 16,
             "--csv", dest)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(dest)))
    assert rows[0]["method"] == "original" and all(x["setting"] == column for x in rows)
    assert len(rows) == 1 + len(values[1].split(","))
    assert all(float(x["accuracy_sim"]) >= 0 and float(x["e2e_latency_ms"]) > 0 for x in rows)
    if method == "prune":
        macs = [int(x["macs"]) for x in rows]
        assert macs == sorted(macs, reverse=True)


@pytest.mark.parametrize("args, message", [
    (["prune", "--ratio", "1.5"], r"ratio must be in \[0, 1\), got 1.5"),
    (["prune", "--ratio", "-0.1", "--mode", "unstructured"], r"sparsity must be in \[0, 1\)"),
    (["prune", "--ratio", "0.3", "--layer", "pool1"], r"layer 'pool1' \(MaxPool\) cannot be pruned"),
    (["prune", "--ratio", "0.3", "--layer", "fc3"],
     r"layer 'fc3' cannot be pruned: its output channels are pinned"),
    (["lowrank", "--rank", "fc1=500"],
     r"layer 'fc1': rank 500 is larger than the layer allows \(full rank 120"),
    (["lowrank", "--rank", "fc1"], r"expected LAYER=RANK"),
    (["lowrank", "--ratio", "1"], r"ratio must be in \[0, 1\)"),
    (["cluster", "--bits", "9"], r"bits must be an integer in 1..8"),
    (["prune", "--ratio", "0.3", "--target", "no_such_target"], r"no_such_target"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, args, message):
    import re

    out, folder = tmp_path / "x.npz", tmp_path / "rep"
    r = _run("compress", args[0], LENET, "-o", out, "--out", folder, *args[1:], *FAST)
    assert r.exit_code == 2, r.output
    assert re.search(message, r.output), r.output
    assert r.output.startswith("error: ") and "Traceback" not in r.output
    assert not out.exists() and not folder.exists()


@pytest.mark.parametrize("args, message", [
    (["--method", "prune", "--ratios", "0.1,1.2"], r"ratios must be in \[0, 1\), got 1.2"),
    (["--method", "prune", "--ratios", "0.1,abc"], r"'abc' is not a valid number"),
    (["--method", "cluster", "--ratios", "0.5"], r"takes --bits"),
    (["--method", "cluster", "--bits", "0,4"], r"bits must be integers in 1..8"),
    (["--method", "lowrank"], r"takes --ratios"),
])
def test_sweep_bad_input(tmp_path, args, message):
    import re

    dest = tmp_path / "s.csv"
    r = _run("compress", "sweep", LENET, *args, "--target", "fpga_dpu", "--csv", dest, "--limit", 8)
    assert r.exit_code == 2, r.output
    assert re.search(message, r.output), r.output
    assert not dest.exists()


def test_refuses_to_overwrite_its_input(tmp_path):
    import shutil

    model = tmp_path / "m.npz"
    shutil.copy(LENET, model)
    before = model.read_bytes()
    r = _run("compress", "prune", model, "-o", model, "--ratio", 0.3, *FAST)
    assert r.exit_code == 2 and "refusing to overwrite" in r.output
    assert model.read_bytes() == before
    assert np.isfinite(load_model(model).params["fc1.weight"]).all()
