"""BatchNorm folding (hwsim.quant.bn_fold): conv/dense + BN equals the folded conv/dense, and unfoldable BNs
stay with a reason."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.graph import GraphBuilder
from hwsim.quant.bn_fold import fold_batchnorm, fold_batchnorm_into_conv, why_not_foldable


def conv2d_nhwc(x, w, b, groups=1):
    """Plain float64 NHWC convolution, stride 1, no padding, OHWI weight [O, KH, KW, C/groups]."""
    n, h, wd, c = x.shape
    o, kh, kw, cg = w.shape
    og = o // groups
    out = np.zeros((n, h - kh + 1, wd - kw + 1, o))
    for g in range(groups):
        xs = x[..., g * cg:(g + 1) * cg]
        ws = w[g * og:(g + 1) * og]
        for i in range(kh):
            for j in range(kw):
                out[..., g * og:(g + 1) * og] += np.einsum("nhwc,oc->nhwo",
                                                           xs[:, i:i + out.shape[1], j:j + out.shape[2]],
                                                           ws[:, i, j, :])
    return out + (0 if b is None else b)


def batchnorm(y, gamma, beta, mean, var, eps):
    return (y - mean) / np.sqrt(var + eps) * gamma + beta


def _bn_params(rng, c):
    return (rng.uniform(0.2, 2.0, c) * rng.choice([-1, 1], c), rng.standard_normal(c),
            rng.standard_normal(c), rng.uniform(0.01, 3.0, c))


def test_fold_math_hand_case():
    # w' = w·γ/√(var+ε), b' = (b − mean)·γ/√(var+ε) + β; √(var+ε) = 2 (var 3.75, ε 0.25).
    w = np.array([[1.0, -2.0], [0.5, 4.0]])
    w2, b2 = fold_batchnorm_into_conv(w, np.array([1.0, 0.0]), gamma=np.array([2.0, -1.0]),
                                      beta=np.array([0.5, 0.25]), mean=np.array([3.0, -1.0]),
                                      var=np.array([3.75, 3.75]), eps=0.25)
    assert w2.dtype == np.float32 and b2.dtype == np.float32
    assert w2.tolist() == [[1.0, -2.0], [-0.25, -2.0]]
    assert b2.tolist() == [-1.5, -0.25]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), groups=st.sampled_from([1, 2, 4]), bias=st.booleans(),
       eps=st.sampled_from([1e-5, 1e-3, 0.1]))
def test_folded_conv_equals_conv_then_bn(seed, groups, bias, eps):
    rng = np.random.default_rng(seed)
    c, o = 4, 8
    x = rng.standard_normal((2, 6, 5, c))
    w = rng.standard_normal((o, 3, 2, c // groups))
    b = rng.standard_normal(o) if bias else None
    gamma, beta, mean, var = _bn_params(rng, o)
    ref = batchnorm(conv2d_nhwc(x, w, b, groups), gamma, beta, mean, var, eps)
    w2, b2 = fold_batchnorm_into_conv(w, b, gamma, beta, mean, var, eps)
    got = conv2d_nhwc(x, w2.astype(np.float64), b2.astype(np.float64), groups)
    # the float32 cast of w', b' is the only rounding: relative error ~1e-7 of the summed magnitudes
    scale = conv2d_nhwc(np.abs(x), np.abs(w2.astype(np.float64)), np.abs(b2.astype(np.float64)), groups)
    assert np.all(np.abs(got - ref) <= 1e-6 * scale)


def _conv_bn_graph(rng, *, relu_tap=False, dense=False, depthwise=False):
    b = GraphBuilder("t")
    if dense:
        x = b.input("x", (3, 6))
        w, bias = rng.standard_normal((5, 6)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
        y = b.dense(x, w, bias, name="fc")
        c = 5
    elif depthwise:
        x = b.input("x", (1, 5, 5, 4))
        y = b.depthwise_conv2d(x, rng.standard_normal((4, 3, 3, 1)).astype(np.float32), name="dw")
        c = 4
    else:
        x = b.input("x", (1, 5, 5, 3))
        y = b.conv2d(x, rng.standard_normal((4, 3, 3, 3)).astype(np.float32), name="conv")
        c = 4
    gamma, beta, mean, var = (a.astype(np.float32) for a in _bn_params(rng, c))
    z = b.batch_norm(y, gamma, beta, mean, var, epsilon=1e-3, name="bn")
    z = b.relu(z, name="relu")
    b.output(z)
    if relu_tap:
        b.output(b.relu(y, name="tap"))
    return b.build()


def _run(graph, x):
    """Float64 evaluation of the handful of ops these graphs use."""
    env = {graph.inputs[0].name: x.astype(np.float64)}
    p = {k: v.astype(np.float64) for k, v in graph.params.items()}
    for n in graph.nodes:
        args = [env[i] if i in env else p[i] for i in n.inputs]
        if n.op == "Conv2D":
            out = conv2d_nhwc(args[0], args[1], args[2] if len(args) > 2 else None, n.attrs["groups"])
        elif n.op == "Dense":
            out = args[0] @ args[1].T + (args[2] if len(args) > 2 else 0)
        elif n.op == "BatchNorm":
            out = batchnorm(*args, n.attrs["epsilon"])
        elif n.op == "ReLU":
            out = np.maximum(args[0], 0)
        else:
            raise AssertionError(n.op)
        env[n.outputs[0]] = out
    return [env[o] for o in graph.outputs]


@pytest.mark.parametrize("kind", ["conv", "dense", "depthwise"])
def test_fold_graph(rng, kind):
    g = _conv_bn_graph(rng, dense=kind == "dense", depthwise=kind == "depthwise")
    folded, report = fold_batchnorm(g)
    assert [n.op for n in folded.nodes] == [("Dense" if kind == "dense" else "Conv2D"), "ReLU"]
    assert len(report.folded) == 1 and report.kept == []
    assert not any(k.startswith("bn.") for k in folded.params)  # BN parameters are gone
    assert [n.op for n in g.nodes].count("BatchNorm") == 1       # the input graph is untouched
    x = rng.standard_normal(g.inputs[0].shape)
    (ref,), (got,) = _run(g, x), _run(folded, x)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())
    assert folded.outputs == g.outputs
    prod = folded.nodes[0]
    assert len(prod.inputs) == 3 and folded.params[prod.inputs[2]].dtype == np.float32


def test_bn_whose_input_has_another_reader_stays(rng):
    g = _conv_bn_graph(rng, relu_tap=True)
    folded, report = fold_batchnorm(g)
    assert [n.op for n in folded.nodes].count("BatchNorm") == 1
    assert report.folded == [] and report.kept[0][0] == "bn" and "also read by" in report.kept[0][1]


def test_bn_after_non_conv_stays(rng):
    b = GraphBuilder("t")
    x = b.input("x", (1, 4, 4, 3))
    y = b.relu(x, name="r")
    g_, be, m, v = (a.astype(np.float32) for a in _bn_params(rng, 3))
    b.output(b.batch_norm(y, g_, be, m, v, name="bn"))
    folded, report = fold_batchnorm(b.build())
    assert report.kept == [("bn", "its input comes from a ReLU node 'r', not Conv2D/Dense")]
    assert str(report).startswith("kept bn")


def test_shared_weight_gets_a_new_name(rng):
    b = GraphBuilder("t")
    x = b.input("x", (1, 4, 4, 3))
    w = b.param("shared_w", rng.standard_normal((3, 1, 1, 3)).astype(np.float32))
    y1 = b.conv2d(x, w, name="c1")
    g_, be, m, v = (a.astype(np.float32) for a in _bn_params(rng, 3))
    z = b.batch_norm(y1, g_, be, m, v, name="bn")
    y2 = b.conv2d(z, w, name="c2")
    b.output(y2)
    g = b.build()
    folded, report = fold_batchnorm(g)
    assert report.folded == [("c1", "bn")]
    c1, c2 = folded.node("c1"), folded.node("c2")
    assert c1.inputs[1] == "c1.weight_bnfold" and c2.inputs[1] == "shared_w"
    np.testing.assert_array_equal(folded.params["shared_w"], g.params["shared_w"])
    x0 = rng.standard_normal((1, 4, 4, 3))
    np.testing.assert_allclose(_run(folded, x0)[0], _run(g, x0)[0], rtol=1e-5, atol=1e-5)


def test_why_not_foldable_agrees_with_the_report(rng):
    for g in (_conv_bn_graph(rng), _conv_bn_graph(rng, relu_tap=True), _conv_bn_graph(rng, dense=True)):
        _, report = fold_batchnorm(g)
        kept = dict(report.kept)
        bn = g.node("bn")
        assert why_not_foldable(g, bn) == kept.get("bn")
    assert "not BatchNorm" in why_not_foldable(g, g.node("relu"))
