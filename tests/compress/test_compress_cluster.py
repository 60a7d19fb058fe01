"""Weight sharing by k-means (hwsim.compress.cluster): codebook + indices, npz round trip, quantization."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.compress import (CompressionError, check_clustered, cluster_weights, clustered_weights,
                            expand_clustered, kmeans_1d, prune_structured)
from hwsim.emulate.float_ref import run_float
from hwsim.emulate.simulator import quantize_for_target
from hwsim.graph import Graph, load_model, save_model
from hwsim.targets import load_target

LENET = Path(__file__).resolve().parents[2] / "examples" / "lenet5.npz"


@pytest.fixture(scope="module")
def lenet() -> Graph:
    return load_model(LENET)


def _weights(g: Graph) -> list[str]:
    return [n.inputs[1] for n in g.nodes if n.op in ("Conv2D", "Dense")]


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("per_channel", [False, True])
def test_distinct_values_per_layer_at_most_2_to_the_bits(lenet, bits, per_channel):
    g = cluster_weights(lenet, bits, per_channel=per_channel)
    table = clustered_weights(g)
    assert set(table) == set(_weights(lenet))
    for w in _weights(g):
        arr = g.params[w]
        if per_channel:
            assert max(np.unique(row).size for row in arr.reshape(arr.shape[0], -1)) <= 2 ** bits
        else:
            assert np.unique(arr).size <= 2 ** bits
        idx = g.params[table[w]["indices"]]
        assert idx.dtype == np.uint8 and idx.shape == arr.shape and int(idx.max()) < 2 ** bits
    check_clustered(g)


def test_indices_and_codebooks_round_trip_through_the_npz(lenet, tmp_path):
    g = cluster_weights(lenet, 4, per_channel=True)
    save_model(g, tmp_path / "c.npz")
    back = load_model(tmp_path / "c.npz")
    assert clustered_weights(back) == clustered_weights(g)
    for k, v in g.params.items():
        assert back.params[k].dtype == v.dtype and np.array_equal(back.params[k], v)
    check_clustered(back)
    expanded = expand_clustered(back)
    for w in _weights(g):
        assert expanded.params[w].tobytes() == g.params[w].tobytes()


def test_clusters_at_least_distinct_values_is_bitwise_identity(lenet):
    # Weights on a grid with fewer than 2^b distinct values per layer: the codebook is exactly those values.
    grid = lenet.copy()
    for w in _weights(grid):
        grid.params[w] = (np.round(grid.params[w] / np.float32(0.05)) * np.float32(0.05)).astype(np.float32)
        assert np.unique(grid.params[w]).size <= 256
    g = cluster_weights(grid, 8)
    for w in _weights(grid):
        assert g.params[w].tobytes() == grid.params[w].tobytes()
    x = lenet.data["evaluation"]["x"][:16]
    assert np.array_equal(run_float(g, x)["fc3"], run_float(grid, x)["fc3"])


def test_kmeans_is_deterministic_and_seeded(lenet):
    w = lenet.params["fc1.weight"]
    a = kmeans_1d(w, 16)
    b = kmeans_1d(w, 16)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = kmeans_1d(w, 16, init="kmeans++", seed=5)
    d = kmeans_1d(w, 16, init="kmeans++", seed=5)
    assert np.array_equal(c[0], d[0])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-100, 100, allow_nan=False, width=32), min_size=1, max_size=200),
       st.integers(1, 16))
def test_kmeans_is_a_lloyd_fixed_point(values, k):
    v = np.asarray(values, np.float64)
    c, lab = kmeans_1d(v, k)
    assert c.size <= k and np.all(np.diff(c) >= 0)
    # every value sits with its nearest centroid
    dist = np.abs(v[:, None] - c[None, :])
    assert np.all(dist[np.arange(v.size), lab] <= dist.min(1) + 1e-9 * (1 + np.abs(v)))
    if np.unique(v.view(np.uint64)).size <= k:
        assert c[lab].tobytes() == v.tobytes()  # bitwise, signed zeros included
    else:  # every centroid is the mean of its members
        for j in range(c.size):
            assert c[j] == pytest.approx(v[lab == j].mean(), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("target", ["fpga_dpu", "intel_int8", "arm_tflite", "fpga_dpu_w4a8"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_quantizing_a_clustered_layer_quantizes_its_codebook(lenet, target, per_channel):
    g = cluster_weights(lenet, 3, per_channel=per_channel)
    t = load_target(target)
    qm = quantize_for_target(g, t, lenet.data["calibration"]["x"][:32])
    # One weight scale per tensor or per output channel: the integer codebook is per tensor or per row.
    by_row = per_channel or t.numerics.weights.granularity == "per_channel"
    table = clustered_weights(g)
    seen = 0
    for p in qm.plans:
        if "w_int" not in p.consts:
            continue
        w = p.node.inputs[1]
        q = p.consts["w_int"].astype(np.int64)
        idx = g.params[table[w]["indices"]].astype(np.int64)
        rows = q.shape[0] if by_row else 1
        qr, ir = q.reshape(rows, -1), idx.reshape(rows, -1)
        for r in range(rows):
            for j in np.unique(ir[r]):
                assert np.unique(qr[r][ir[r] == j]).size == 1  # one integer per shared value
        assert max(np.unique(qr[r]).size for r in range(rows)) <= 8
        seen += 1
    assert seen == 5


def test_expand_rebuilds_an_edited_codebook(lenet):
    g = cluster_weights(lenet, 2)
    cb = table_cb = clustered_weights(g)["fc3.weight"]["codebook"]
    g.params[cb] = (g.params[table_cb] * np.float32(2)).astype(np.float32)
    with pytest.raises(CompressionError, match="differs from its codebook"):
        check_clustered(g)
    e = expand_clustered(g)
    check_clustered(e)
    assert np.array_equal(e.params["fc3.weight"], g.params[cb][g.params["fc3.weight.indices"]])


def test_inconsistent_clustering_is_an_error(lenet):
    g = cluster_weights(lenet, 2)
    g.params["fc3.weight.indices"] = np.full_like(g.params["fc3.weight.indices"], 7)
    with pytest.raises(CompressionError, match=r"clustered weight 'fc3.weight': index 7 is out of range"):
        expand_clustered(g)


@pytest.mark.parametrize("bits", [0, 9, 2.5, True, "4"])
def test_bad_bits(lenet, bits):
    with pytest.raises(CompressionError, match="bits must be an integer in 1..8"):
        cluster_weights(lenet, bits)


def test_cluster_after_pruning_is_fine_but_not_before(lenet):
    g = cluster_weights(prune_structured(lenet, 0.3), 4)
    check_clustered(g)
    with pytest.raises(CompressionError, match="apply pruning before clustering"):
        prune_structured(g, 0.3)
    with pytest.raises(CompressionError, match="already clustered"):
        cluster_weights(g, 4)


def test_a_shared_weight_is_clustered_once():
    from hwsim.zoo import build_model

    g = build_model("transformer_tiny", seed=0)
    c = cluster_weights(g, 4)
    check_clustered(c)
    rec = c.metadata["compression"][-1]["layers"]
    assert rec["layer3.mlp.fc2"] == {"weight": "shared.mlp.fc2.weight", "shared_with": "layer0.mlp.fc2"}
    assert len(clustered_weights(c)) == len({n.inputs[1] for n in g.nodes if n.op == "Dense"})
