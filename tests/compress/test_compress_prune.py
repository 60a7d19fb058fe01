"""Pruning: unstructured magnitude pruning and structured pruning + graph surgery (hwsim.compress.prune)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.compress import (CompressionError, analyze_channels, prune_structured, prune_unstructured,
                            sparsity_of)
from hwsim.cost import estimate
from hwsim.emulate.float_ref import run_float
from hwsim.graph import Graph, GraphBuilder, load_model, save_model
from hwsim.targets import load_target
from hwsim.zoo import build_model

LENET = Path(__file__).resolve().parents[2] / "examples" / "lenet5.npz"


@pytest.fixture(scope="module")
def lenet() -> Graph:
    return load_model(LENET)


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


def _same_params(a: Graph, b: Graph) -> bool:
    return set(a.params) == set(b.params) and all(
        a.params[k].dtype == b.params[k].dtype and _bits(a.params[k]) == _bits(b.params[k]) for k in a.params)


def _accuracy(g: Graph) -> float:
    ev = g.data["evaluation"]
    y = run_float(g, ev["x"])[g.outputs[0]]
    return float(np.mean(y.argmax(-1) == ev["y"]))


# ----------------------------------------------------------------------------------------------------
# Unstructured


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_unstructured_sparsity_zero_is_bitwise_identity(lenet, scope):
    g = prune_unstructured(lenet, 0.0, scope=scope)
    assert _same_params(g, lenet)
    assert np.array_equal(run_float(g, lenet.data["evaluation"]["x"][:8])["fc3"],
                          run_float(lenet, lenet.data["evaluation"]["x"][:8])["fc3"])


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.9])
def test_unstructured_per_layer_sparsity_is_exact(lenet, sparsity):
    g = prune_unstructured(lenet, sparsity, scope="layer")
    for node in (n for n in g.nodes if n.op in ("Conv2D", "Dense")):
        w, w0 = g.params[node.inputs[1]], lenet.params[node.inputs[1]]
        assert np.count_nonzero(w == 0) == int(np.floor(sparsity * w.size))
        kept = w != 0
        assert np.array_equal(w[kept], w0[kept])  # survivors are untouched
        assert np.abs(w0[~kept]).max() <= np.abs(w0[kept]).min()
        assert np.array_equal(g.params[node.inputs[2]], lenet.params[node.inputs[2]])  # biases kept


def test_unstructured_global_uses_one_threshold(lenet):
    g = prune_unstructured(lenet, 0.6)
    weights = [n.inputs[1] for n in g.nodes if n.op in ("Conv2D", "Dense")]
    total = sum(g.params[w].size for w in weights)
    zeros = sum(int(np.count_nonzero(g.params[w] == 0)) for w in weights)
    assert zeros == int(np.floor(0.6 * total))
    dropped = np.concatenate([np.abs(lenet.params[w][g.params[w] == 0]) for w in weights])
    kept = np.concatenate([np.abs(lenet.params[w][g.params[w] != 0]) for w in weights])
    assert dropped.max() <= kept.min()
    rec = g.metadata["compression"][-1]
    assert rec["method"] == "prune_unstructured"
    assert rec["layers"]["fc1"]["sparsity"] == pytest.approx(sparsity_of(g.params["fc1.weight"]))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.integers(1, 9), st.floats(0, 0.99), st.integers(0, 2**31 - 1))
def test_unstructured_matches_plain_numpy_reference(n_out, n_in, sparsity, seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n_out, n_in)).astype(np.float32)
    w[rng.random(w.shape) < 0.2] = np.float32(0.5)  # ties
    b = GraphBuilder("d")
    x = b.input("x", (1, n_in))
    b.output(b.dense(x, w, name="fc"))
    g = prune_unstructured(b.build(), sparsity)
    k = int(np.floor(sparsity * w.size))
    ref = w.copy().ravel()
    ref[np.argsort(np.abs(ref), kind="stable")[:k]] = 0  # reference: the k smallest |w|, earliest first
    assert np.array_equal(g.params["fc.weight"].ravel(), ref)


# ----------------------------------------------------------------------------------------------------
# Structured on LeNet-5


def test_structured_ratio_zero_is_bitwise_identity(lenet):
    g = prune_structured(lenet, 0.0)
    assert _same_params(g, lenet)
    assert [n.inputs for n in g.nodes] == [n.inputs for n in lenet.nodes]


def test_structured_lenet_30_percent(lenet, tmp_path):
    g = prune_structured(lenet, 0.3)
    # round(0.3 * n) filters go: conv1 6 -> 4, conv2 16 -> 11, fc1 120 -> 84, fc2 84 -> 59; fc3 is the output
    shapes = {n.name: g.params[n.inputs[1]].shape for n in g.nodes if n.op in ("Conv2D", "Dense")}
    assert shapes == {"conv1": (4, 5, 5, 1), "conv2": (11, 5, 5, 4), "fc1": (84, 5 * 5 * 11), "fc2": (59, 84),
                      "fc3": (10, 59)}
    assert g.tensors["fc3"].shape == lenet.tensors["fc3"].shape
    rec = g.metadata["compression"][-1]
    assert rec["layers"]["conv2"]["channels_after"] == 11
    assert len(rec["layers"]["conv2"]["pruned_channels"]) == 5
    assert rec["correction"] == "affine" and rec["corrected_layers"] == ["conv2", "fc1", "fc2", "fc3"]
    acc = _accuracy(g)
    assert acc >= 0.95, acc  # 97.5% measured (97.8% unpruned)
    save_model(g, tmp_path / "p.npz")
    again = load_model(tmp_path / "p.npz")
    assert _same_params(again, g)


def test_structured_keeps_the_strongest_filters(lenet):
    g = prune_structured(lenet, 0.5, layers=["conv1"], correction="none")
    w0 = lenet.params["conv1.weight"]
    norms = np.abs(w0.reshape(6, -1)).sum(1)
    keep = np.sort(np.argsort(norms, kind="stable")[3:])
    assert np.array_equal(g.params["conv1.weight"], w0[keep])
    assert np.array_equal(g.params["conv2.weight"], lenet.params["conv2.weight"][..., keep])
    assert g.metadata["compression"][-1]["layers"]["conv1"]["pruned_channels"] == \
        sorted(set(range(6)) - set(keep.tolist()))


@pytest.mark.parametrize("multiple, expect", [(1, 84), (8, 88), (16, 96), (128, 120)])
def test_channel_multiple_rounds_the_kept_channels_up(lenet, multiple, expect):
    g = prune_structured(lenet, 0.3, layers=["fc1"], channel_multiple=multiple)
    assert g.params["fc1.weight"].shape[0] == expect


@pytest.mark.parametrize("correction", ["none", "mean", "affine"])
def test_structured_correction_restores_statistics(lenet, correction):
    cal = lenet.data["calibration"]["x"][:64]
    g = prune_structured(lenet, 0.5, correction=correction)
    zo = run_float(lenet, cal, dtype=np.float64)["fc3"]
    zp = run_float(g, cal, dtype=np.float64)["fc3"]
    if correction == "none":
        assert not np.allclose(zo.mean(0), zp.mean(0), atol=1e-3)
    else:  # the last layer's pre-activation keeps its mean (and spread) on the calibration set
        assert np.allclose(zo.mean(0), zp.mean(0), atol=1e-3)
    if correction == "affine":
        assert np.allclose(zo.std(0), zp.std(0), rtol=1e-3)


def test_structured_accuracy_with_and_without_correction(lenet):
    # Recorded in docs/compression.md: 50% of every layer's filters.
    none = _accuracy(prune_structured(lenet, 0.5, correction="none"))
    affine = _accuracy(prune_structured(lenet, 0.5))
    assert affine > none + 0.03, (none, affine)


# ----------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5, float("nan"), "0.3", True])
def test_ratio_out_of_range(lenet, ratio):
    with pytest.raises(CompressionError, match="ratio"):
        prune_structured(lenet, ratio)
    with pytest.raises(CompressionError, match="sparsity"):
        prune_unstructured(lenet, ratio)


@pytest.mark.parametrize("layer, message", [
    ("pool1", r"layer 'pool1' \(MaxPool\) cannot be pruned"),
    ("fc3", r"layer 'fc3' cannot be pruned: its output channels are pinned by graph output 'fc3'"),
    ("nope", r"layer 'nope': no such node"),
])
def test_unprunable_layers_are_named(lenet, layer, message):
    with pytest.raises(CompressionError, match=message):
        prune_structured(lenet, 0.3, layers=[layer])


def test_quantized_or_clustered_models_are_refused(lenet):
    from hwsim.compress import cluster_weights

    with pytest.raises(CompressionError, match="clustered weights"):
        prune_structured(cluster_weights(lenet, 4), 0.3)


# ----------------------------------------------------------------------------------------------------
# Residual networks


def _masked_original(g0: Graph, pruned: Graph) -> Graph:
    """The original with every pruned channel forced to exactly zero after its producer/BatchNorm."""
    a = analyze_channels(g0)
    rec = pruned.metadata["compression"][-1]["layers"]
    dead = np.zeros(len(a.owner), bool)
    for i, (owner, ch) in enumerate(a.owner):
        if owner in rec and ch in rec[owner]["pruned_channels"]:
            dead[i] = True
    groups = a.groups()
    for members in groups.values():  # a pruned group is pruned in every member
        if dead[members].any():
            assert dead[members].all()
    m = g0.copy()
    for node in m.nodes:
        out = node.outputs[0]
        mask = dead[a.ids[out]] if out in a.ids else None
        if mask is None or not mask.any():
            continue
        if node.op == "Conv2D" or node.op == "Dense":
            m.params[node.inputs[1]][mask] = 0
            if len(node.inputs) > 2:
                m.params[node.inputs[2]][mask] = 0
        elif node.op == "BatchNorm":
            m.params[node.inputs[1]][mask] = 0
            m.params[node.inputs[2]][mask] = 0
    return m


def _independent_macs(g: Graph, x: np.ndarray) -> dict[str, int]:
    """MACs of each Conv2D/Dense from the arrays the float reference produces and the weight shapes."""
    env = run_float(g, x, keep_intermediates=True)
    out = {}
    for n in g.nodes:
        if n.op == "Conv2D":
            w = g.params[n.inputs[1]]
            nb, oh, ow, o = env[n.outputs[0]].shape
            out[n.name] = oh * ow * o * w.shape[1] * w.shape[2] * w.shape[3] * g.inputs[0].shape[0]
        elif n.op == "Dense":
            w = g.params[n.inputs[1]]
            rows = int(np.prod(env[n.inputs[0]].shape[:-1])) // x.shape[0] * g.inputs[0].shape[0]
            assert env[n.inputs[0]].shape[-1] == w.shape[1]
            out[n.name] = rows * w.shape[0] * w.shape[1]
    return out


@pytest.fixture(scope="module", params=["resnet50", "mobilenetv2"])
def residual_net(request):
    g = build_model(request.param, seed=0)
    x = np.random.default_rng(1).standard_normal((2,) + g.inputs[0].shape[1:]).astype(np.float32)
    return g, x


def test_residual_networks_stay_consistent(residual_net):
    g0, x = residual_net
    p = prune_structured(g0, 0.3, correction="none")
    rec = p.metadata["compression"][-1]["layers"]
    tied = [name for name, r in rec.items() if r["tied_with"]]
    assert tied, "the residual stages must form tied clusters"
    for name in tied:  # every layer feeding one residual stream loses the same channels
        for other in rec[name]["tied_with"]:
            assert rec[other]["pruned_channels"] == rec[name]["pruned_channels"]
    for n in p.nodes:
        if n.op == "Add":
            assert p.tensors[n.inputs[0]].shape == p.tensors[n.inputs[1]].shape
        if n.op == "Conv2D" and n.attrs["groups"] > 1:  # depthwise follows its input channels
            assert n.attrs["groups"] == p.tensors[n.inputs[0]].shape[-1] == p.tensors[n.outputs[0]].shape[-1]
    assert p.tensors[p.outputs[0]].shape == g0.tensors[g0.outputs[0]].shape
    assert p.macs() < 0.6 * g0.macs()
    # Removing channels is the same as forcing them to zero in the original.
    y_ref = run_float(_masked_original(g0, p), x, dtype=np.float64)[g0.outputs[0]]
    y = run_float(p, x, dtype=np.float64)[p.outputs[0]]
    np.testing.assert_allclose(y, y_ref, rtol=1e-9, atol=1e-9 * np.abs(y_ref).max())


def test_cost_model_counts_pruned_macs(residual_net):
    g0, x = residual_net
    p = prune_structured(g0, 0.3, correction="none")
    independent = _independent_macs(p, x[:1])
    report = estimate(p, load_target("fpga_dpu"))
    by_layer = {e.name: e.macs for e in report.layers}
    for name, macs in independent.items():
        assert by_layer[name] == macs, name
    assert report.totals["macs"] == sum(independent.values())


def test_residual_correction_runs(residual_net):
    g0, x = residual_net
    p = prune_structured(g0, 0.3, calibration=x)
    assert p.metadata["compression"][-1]["corrected_layers"]
    y = run_float(p, x)[p.outputs[0]]
    assert np.isfinite(y).all()


def test_concat_network_keeps_offsets():
    # GoogLeNet: inception branches meet in channel Concats; each branch's channels keep their offsets.
    g0 = build_model("googlenet", seed=0)
    x = np.random.default_rng(2).standard_normal((1,) + g0.inputs[0].shape[1:]).astype(np.float32)
    p = prune_structured(g0, 0.3, correction="none")
    for n in p.nodes:
        if n.op == "Concat":
            assert p.tensors[n.outputs[0]].shape[-1] == sum(p.tensors[i].shape[-1] for i in n.inputs)
    y_ref = run_float(_masked_original(g0, p), x, dtype=np.float64)[g0.outputs[0]]
    y = run_float(p, x, dtype=np.float64)[p.outputs[0]]
    np.testing.assert_allclose(y, y_ref, rtol=1e-9, atol=1e-9 * np.abs(y_ref).max())


def test_shared_weights_are_pinned():
    # transformer_tiny shares one weight set between its layers: slicing it for one would break the others.
    g = build_model("transformer_tiny", seed=0)
    p = prune_structured(g, 0.5)
    assert p.metadata["compression"][-1]["layers"] == {}
    assert _same_params(p, g)
