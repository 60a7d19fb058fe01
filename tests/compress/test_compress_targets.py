"""Compressed LeNet-5 models run on every target (simulated accuracy reported); the report is per target."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwsim.compress import cluster_weights, factorize, prune_structured, prune_unstructured
from hwsim.compress.report import compare_models, sparse_support
from hwsim.emulate.run import run_model
from hwsim.graph import load_model
from hwsim.targets import list_targets, load_target

LENET = Path(__file__).resolve().parents[2] / "examples" / "lenet5.npz"
TARGETS = [t.name for t in list_targets()]
LIMIT = 16


@pytest.fixture(scope="module")
def models():
    g = load_model(LENET)
    return {"original": g, "prune30": prune_structured(g, 0.3), "lowrank50": factorize(g, ratio=0.5),
            "cluster4": cluster_weights(g, 4)}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("method", ["prune30", "lowrank50", "cluster4"])
def test_compressed_lenet_runs_on_every_target(models, method, target):
    g = models[method]
    g.validate()
    rep = run_model(g, load_target(target), limit=LIMIT)
    assert rep.samples == LIMIT
    assert rep.accuracy_float is not None and rep.accuracy_sim is not None
    assert rep.accuracy_float >= 0.75  # float accuracy of the compressed model on 16 digits
    # Simulated accuracy is reported, whatever it is: low-rank 50% with 2-bit weights (fpga_dpu_w2a8) falls to
    # 39% on the full evaluation set (docs/compression.md), which is the point of reporting it per target.
    assert 0.0 <= rep.accuracy_sim <= 1.0


def test_report_states_each_targets_gain(models):
    names = ("fpga_dpu", "intel_int8_i7_1185g7", "arm_tflite_pixel4", "arm_tflite")
    targets = [load_target(t) for t in names]
    rep = compare_models(models["original"], models["prune30"], targets=targets, sim_target=targets[0],
                         limit=LIMIT)
    assert rep["after"]["macs"] < rep["before"]["macs"] and rep["after"]["params"] < rep["before"]["params"]
    assert rep["after"]["accuracy_sim"] is not None and rep["sim_target"] == "fpga_dpu"
    rows = {r["target"]: r for r in rep["targets"]}
    for name in ("fpga_dpu", "intel_int8_i7_1185g7", "arm_tflite_pixel4"):
        b, a = rows[name]["before"], rows[name]["after"]
        assert a["macs"] == rep["after"]["macs"] and a["weight_bytes"] < b["weight_bytes"]
        assert a["cycles"] <= b["cycles"] and rows[name]["speedup"] >= 1.0
    assert "error" in rows["arm_tflite"]["before"]  # no cost section: said, not invented


def test_unstructured_sparsity_gains_nothing_on_integer_targets(models):
    sparse = prune_unstructured(models["original"], 0.8)
    for name in ("fpga_dpu", "intel_int8_i7_1185g7", "arm_tflite_pixel4"):
        t = load_target(name)
        ok, why = sparse_support(t)
        assert not ok and why.startswith("no:")
        rep = compare_models(models["original"], sparse, targets=[t], sparse=True)
        row = rep["targets"][0]
        assert row["after"]["cycles"] == row["before"]["cycles"]
        assert row["after"]["weight_bytes"] == row["before"]["weight_bytes"]
    assert sparse_support(load_target("arm_tflite_fp16"))[0]  # XNNPACK float sparse inference


def test_clustering_changes_storage_not_runtime(models):
    t = load_target("fpga_dpu")
    rep = compare_models(models["original"], models["cluster4"], targets=[t])
    row = rep["targets"][0]
    assert row["after"]["weight_bytes"] == row["before"]["weight_bytes"]
    assert row["after"]["cycles"] == row["before"]["cycles"]
    # 4-bit indices + at most 16 int8 centroids per layer instead of 8-bit weights
    c = models["cluster4"]
    layers = [n.inputs[1] for n in c.nodes if n.op in ("Conv2D", "Dense")]
    weights = sum(c.params[w].size for w in layers)
    packed = sum(-(-c.params[w].size * 4 // 8) + c.params[w + ".codebook"].size for w in layers)
    assert all(c.params[w + ".codebook"].size <= 16 for w in layers)
    assert row["before"]["stored_bytes"] - row["after"]["stored_bytes"] == weights - packed
    assert rep["after"]["params"] == rep["before"]["params"]  # codebooks/indices are not parameters
    assert np.isclose(rep["after"]["accuracy_float"], rep["before"]["accuracy_float"], atol=0.02)
