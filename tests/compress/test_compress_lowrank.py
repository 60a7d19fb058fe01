"""Low-rank factorisation by truncated SVD (hwsim.compress.lowrank)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.compress import CompressionError, factorize, max_rank, reconstruct
from hwsim.compress.lowrank import layer_matrix
from hwsim.emulate.float_ref import run_float
from hwsim.graph import Graph, GraphBuilder, load_model

LENET = Path(__file__).resolve().parents[2] / "examples" / "lenet5.npz"


@pytest.fixture(scope="module")
def lenet() -> Graph:
    return load_model(LENET)


def _weight(g: Graph, name: str) -> np.ndarray:
    return g.params[g.node(name).inputs[1]]


@pytest.mark.parametrize("mode", ["channel", "spatial"])
@pytest.mark.parametrize("setting", [{"energy": 0.9}, {"energy": 0.5}, {"ratio": 0.5}, {"ratio": 0.8}])
def test_reconstruction_error_is_the_discarded_energy(lenet, mode, setting):
    g = factorize(lenet, mode=mode, **setting)
    rec = g.metadata["compression"][-1]["layers"]
    assert any(r["factorised"] for r in rec.values())
    for name, r in rec.items():
        if not r["factorised"]:
            continue
        w = _weight(lenet, name).astype(np.float64)
        err = float(((reconstruct(g, name) - w) ** 2).sum())
        # Eckart-Young: ||W - W_r||_F^2 = sum of the discarded s_k^2 (float32 factors: relative 1e-6)
        s = np.linalg.svd(layer_matrix(w, lenet.node(name).op, r["mode"]), compute_uv=False)
        assert r["discarded_energy"] == pytest.approx(float((s[r["rank"]:] ** 2).sum()), rel=1e-12)
        assert err == pytest.approx(r["discarded_energy"], rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("setting", [{"energy": 1.0}, {"ratio": 0.0}])
@pytest.mark.parametrize("mode", ["channel", "spatial"])
def test_identity_settings_keep_the_original_layers_bitwise(lenet, setting, mode):
    g = factorize(lenet, mode=mode, **setting)
    assert [n.name for n in g.nodes] == [n.name for n in lenet.nodes]
    assert set(g.params) == set(lenet.params)
    assert all(g.params[k].tobytes() == lenet.params[k].tobytes() for k in lenet.params)
    assert all(not r["factorised"] and r["reason"] == "full rank"
               for r in g.metadata["compression"][-1]["layers"].values())


def test_lenet_half_the_parameters(lenet):
    g = factorize(lenet, ratio=0.5)
    rec = g.metadata["compression"][-1]["layers"]
    for name, r in rec.items():
        assert r["factorised"]
        assert r["params_after"] <= 0.5 * r["params_before"]
        first = g.producer(g.node(name).inputs[0])
        assert g.params[first.inputs[1]].size + _weight(g, name).size == r["params_after"]
    before = sum(_weight(lenet, n).size for n in rec)
    after = sum(r["params_after"] for r in rec.values())
    assert after <= 0.5 * before
    assert g.tensors["fc3"].shape == lenet.tensors["fc3"].shape
    assert g.macs() < lenet.macs()


@pytest.mark.parametrize("mode", ["channel", "spatial"])
def test_factorised_conv_computes_its_reconstructed_weight(mode):
    # A conv with asymmetric padding, strides and dilations: the two convolutions must equal one conv with the
    # reconstructed weight (exact algebra; float64 run).
    rng = np.random.default_rng(3)
    w = rng.standard_normal((8, 3, 5, 6)).astype(np.float32)
    b = GraphBuilder("c")
    x = b.input("x", (1, 17, 19, 6))
    y = b.conv2d(x, w, rng.standard_normal(8).astype(np.float32), strides=[2, 3], dilations=[2, 1],
                 pads=[1, 2, 0, 3], name="conv")
    b.output(y)
    g = b.build()
    f = factorize(g, ranks={"conv": 4}, mode=mode)
    assert len(f.nodes) == 2
    ref = g.copy()
    ref.params["conv.weight"] = reconstruct(f, "conv")
    xs = rng.standard_normal((2, 17, 19, 6))
    out = run_float(f, xs, dtype=np.float64)["conv"]
    expect = run_float(ref, xs, dtype=np.float64)["conv"]
    np.testing.assert_allclose(out, expect, rtol=1e-6, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 12), st.integers(2, 12), st.integers(0, 2**31 - 1), st.data())
def test_dense_factors_against_numpy_svd(n_out, n_in, seed, data):
    w = np.random.default_rng(seed).standard_normal((n_out, n_in)).astype(np.float32)
    full = min(n_out, n_in)
    r = data.draw(st.integers(1, full))
    b = GraphBuilder("d")
    x = b.input("x", (1, n_in))
    b.output(b.dense(x, w, name="fc"))
    g = factorize(b.build(), ranks={"fc": r})
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    expect = (u[:, :r] * s[:r]) @ vt[:r]
    rec = g.metadata["compression"][-1]["layers"]["fc"]
    if rec["factorised"]:
        np.testing.assert_allclose(reconstruct(g, "fc"), expect, rtol=1e-5, atol=1e-5)
    else:  # full rank or no smaller: the original layer stays, bitwise
        assert r == full or r * (n_in + n_out) >= n_in * n_out
        assert np.array_equal(g.params["fc.weight"], w)


def test_rank_larger_than_the_layer_allows(lenet):
    assert max_rank(lenet.params["fc3.weight"], "Dense") == 10
    with pytest.raises(CompressionError,
                       match=r"layer 'fc3': rank 11 is larger than the layer allows \(full rank 10"):
        factorize(lenet, ranks={"fc3": 11})
    with pytest.raises(CompressionError, match="rank must be a positive integer"):
        factorize(lenet, ranks={"fc3": 0})


@pytest.mark.parametrize("kwargs, message", [
    ({"ratio": 1.0}, r"ratio must be in \[0, 1\)"),
    ({"ratio": -0.5}, r"ratio must be in \[0, 1\)"),
    ({"energy": 0.0}, r"energy must be in \(0, 1\]"),
    ({"energy": 1.5}, r"energy must be in \(0, 1\]"),
    ({}, "give exactly one of energy or ratio"),
    ({"energy": 0.9, "ratio": 0.5}, "not both"),
    ({"ratio": 0.5, "mode": "diagonal"}, "mode must be"),
    ({"ratio": 0.5, "layers": ["pool1"]}, r"layer 'pool1' \(MaxPool\) cannot be factorised"),
])
def test_bad_requests(lenet, kwargs, message):
    with pytest.raises(CompressionError, match=message):
        factorize(lenet, **kwargs)
