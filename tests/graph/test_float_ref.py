"""Float reference executor: every op against a straightforward loop over scalars (Python math, float64)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.emulate.float_ref import erf, run_float
from hwsim.errors import GraphError
from hwsim.graph import GraphBuilder, QuantSpec


def run_one(op: str, x: np.ndarray, params: list[np.ndarray], attrs: dict | None = None,
            dtype=np.float64, extra_inputs: list[np.ndarray] | None = None) -> np.ndarray:
    b = GraphBuilder(op)
    xs = [b.input("x", x.shape)]
    feeds = {"x": x}
    for i, e in enumerate(extra_inputs or []):
        xs.append(b.input(f"x{i}", e.shape))
        feeds[f"x{i}"] = e
    names = [b.param(f"p{i}", p) for i, p in enumerate(params)]
    y = b.node(op, xs + names, attrs, name="node")
    b.output(y)
    out = run_float(b.build(), feeds, dtype=dtype)[y]
    assert out.dtype == dtype
    return out


def close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-12) -> None:
    assert got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max(initial=0)))
    np.testing.assert_allclose(got, want, rtol=0, atol=rtol * scale)


# ----------------------------------------------------------------------------------------------------
# Loop references


def conv_loops(x, w, b, strides, pads, dilations, groups):
    n, h, wd, c = x.shape
    o, kh, kw, cg = w.shape
    t, lft, bo, r = pads
    oh = (h + t + bo - dilations[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (wd + lft + r - dilations[1] * (kw - 1) - 1) // strides[1] + 1
    og = o // groups
    y = np.zeros((n, oh, ow, o))
    for ni, i, j, oc in itertools.product(range(n), range(oh), range(ow), range(o)):
        g = oc // og
        acc = 0.0 if b is None else float(b[oc])
        for ki, kj, ci in itertools.product(range(kh), range(kw), range(cg)):
            hi = i * strides[0] + ki * dilations[0] - t
            wi = j * strides[1] + kj * dilations[1] - lft
            if 0 <= hi < h and 0 <= wi < wd:
                acc += float(x[ni, hi, wi, g * cg + ci]) * float(w[oc, ki, kj, ci])
        y[ni, i, j, oc] = acc
    return y


def pool_loops(x, kernel, strides, pads, kind, count_include_pad=False):
    n, h, w, c = x.shape
    t, lft, bo, r = pads
    oh = (h + t + bo - kernel[0]) // strides[0] + 1
    ow = (w + lft + r - kernel[1]) // strides[1] + 1
    y = np.zeros((n, oh, ow, c))
    for ni, i, j, ch in itertools.product(range(n), range(oh), range(ow), range(c)):
        vals = []
        for ki, kj in itertools.product(range(kernel[0]), range(kernel[1])):
            hi, wi = i * strides[0] + ki - t, j * strides[1] + kj - lft
            if 0 <= hi < h and 0 <= wi < w:
                vals.append(float(x[ni, hi, wi, ch]))
        if kind == "max":
            y[ni, i, j, ch] = max(vals)
        else:
            y[ni, i, j, ch] = sum(vals) / (kernel[0] * kernel[1] if count_include_pad else len(vals))
    return y


SCALAR = {
    "ReLU": ({}, lambda v: max(v, 0.0)),
    "ReLU6": ({}, lambda v: min(max(v, 0.0), 6.0)),
    "LeakyReLU": ({"alpha": 0.1}, lambda v: v if v >= 0 else 0.1 * v),
    "Sigmoid": ({}, lambda v: 1 / (1 + math.exp(-v))),
    "Tanh": ({}, math.tanh),
    "HardSigmoid": ({}, lambda v: min(max(v / 6 + 0.5, 0.0), 1.0)),
    "HardSwish": ({}, lambda v: v * min(max(v + 3, 0.0), 6.0) / 6),
    "SELU": ({}, lambda v: 1.0507009873554805 * (v if v > 0 else 1.6732632423543772 * (math.exp(v) - 1))),
    "SiLU": ({}, lambda v: v / (1 + math.exp(-v))),
    "Mish": ({}, lambda v: v * math.tanh(math.log1p(math.exp(v)))),
    "GELU": ({}, lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2)))),
    "GELU-tanh": ({"approximate": "tanh"},
                  lambda v: 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))),
}


@pytest.mark.parametrize("name", sorted(SCALAR))
def test_activations(name: str, rng) -> None:
    attrs, fn = SCALAR[name]
    edges = [0.0, -0.0, 1e-8, -1e-8, 3, -3]
    x = np.concatenate([np.linspace(-8, 8, 161), rng.standard_normal(64) * 3, edges])
    x = x.reshape(1, -1)
    want = np.vectorize(fn)(x)
    close(run_one(name.split("-")[0], x, [], attrs), want)
    got32 = run_one(name.split("-")[0], x.astype(np.float32), [], attrs, dtype=np.float32)
    close(got32.astype(np.float64), want, rtol=2e-6)


@pytest.mark.parametrize("shape,w,strides,pads,dil,groups", [
    ((1, 5, 5, 3), (4, 3, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    ((2, 7, 6, 2), (3, 2, 3, 2), (2, 1), (0, 1, 1, 0), (1, 1), 1),
    ((1, 8, 8, 4), (6, 3, 3, 2), (1, 2), (2, 2, 2, 2), (2, 2), 2),
    ((1, 6, 6, 3), (3, 3, 3, 1), (1, 1), (1, 1, 1, 1), (1, 1), 3),   # depthwise
    ((2, 6, 5, 3), (6, 3, 3, 1), (2, 2), (0, 0, 1, 1), (1, 2), 3),   # depthwise, multiplier 2
    ((1, 4, 4, 1), (5, 1, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),   # single input channel
    ((2, 7, 7, 4), (5, 1, 1, 4), (2, 2), (0, 0, 1, 1), (1, 1), 1),   # pointwise, strided, padded
    ((1, 5, 5, 4), (6, 1, 1, 2), (1, 1), (0, 0, 0, 0), (1, 1), 2),   # grouped pointwise
])
def test_conv2d(rng, shape, w, strides, pads, dil, groups) -> None:
    x = rng.standard_normal(shape)
    wt = rng.standard_normal(w)
    bias = rng.standard_normal(w[0])
    attrs = {"strides": list(strides), "pads": list(pads), "dilations": list(dil), "groups": groups}
    close(run_one("Conv2D", x, [wt, bias], attrs), conv_loops(x, wt, bias, strides, pads, dil, groups))
    close(run_one("Conv2D", x, [wt], attrs), conv_loops(x, wt, None, strides, pads, dil, groups))


def test_dense_and_matmul(rng) -> None:
    x = rng.standard_normal((2, 3, 5))
    w, b = rng.standard_normal((4, 5)), rng.standard_normal(4)
    want = np.array([[[sum(x[i, j, k] * w[o, k] for k in range(5)) + b[o] for o in range(4)]
                      for j in range(3)] for i in range(2)])
    close(run_one("Dense", x, [w, b]), want)
    a = rng.standard_normal((2, 1, 3, 5))
    bm = rng.standard_normal((4, 5, 6))
    want = np.zeros((2, 4, 3, 6))
    for i, j, m, n in itertools.product(range(2), range(4), range(3), range(6)):
        want[i, j, m, n] = sum(a[i, 0, m, k] * bm[j, k, n] for k in range(5))
    close(run_one("MatMul", a, [bm]), want)
    bt = np.ascontiguousarray(bm.transpose(0, 2, 1))
    close(run_one("MatMul", a, [bt], {"transpose_b": True}), want)
    # activation x activation (attention scores)
    q = rng.standard_normal((2, 3, 4))
    k = rng.standard_normal((2, 3, 4))
    want = np.array([[[sum(q[i, m, d] * k[i, n, d] for d in range(4)) for n in range(3)] for m in range(3)]
                     for i in range(2)])
    close(run_one("MatMul", q, [], {"transpose_b": True}, extra_inputs=[k]), want)


def test_batchnorm_and_layernorm(rng) -> None:
    x = rng.standard_normal((2, 3, 4, 5))
    g, be, mu = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal(5)
    var = rng.random(5) + 0.1
    want = np.empty_like(x)
    for idx in itertools.product(*map(range, x.shape)):
        c = idx[-1]
        want[idx] = (x[idx] - mu[c]) / math.sqrt(var[c] + 1e-3) * g[c] + be[c]
    close(run_one("BatchNorm", x, [g, be, mu, var], {"epsilon": 1e-3}), want)
    for axis in (-1, 2):
        norm_shape = x.shape[axis:] if axis >= 0 else x.shape[-1:]
        gm, bt = rng.standard_normal(norm_shape), rng.standard_normal(norm_shape)
        want = np.empty_like(x)
        lead = x.shape[: x.ndim - len(norm_shape)]
        for idx in itertools.product(*map(range, lead)):
            vals = x[idx].ravel().tolist()
            mean = sum(vals) / len(vals)
            v = sum((t - mean) ** 2 for t in vals) / len(vals)
            want[idx] = ((x[idx] - mean) / math.sqrt(v + 1e-5)) * gm + bt
        close(run_one("LayerNorm", x, [gm, bt], {"axis": axis}), want)


@pytest.mark.parametrize("kernel,strides,pads", [
    ((2, 2), (2, 2), (0, 0, 0, 0)), ((3, 3), (2, 2), (1, 1, 1, 1)), ((3, 2), (1, 2), (0, 1, 2, 0)),
])
def test_pools(rng, kernel, strides, pads) -> None:
    x = rng.standard_normal((2, 7, 6, 3)) - 3  # mostly negative: padding must never win a max
    attrs = {"kernel": list(kernel), "strides": list(strides), "pads": list(pads)}
    close(run_one("MaxPool", x, [], attrs), pool_loops(x, kernel, strides, pads, "max"))
    for include in (False, True):
        close(run_one("AvgPool", x, [], {**attrs, "count_include_pad": include}),
              pool_loops(x, kernel, strides, pads, "avg", include))
    want = np.array([[[[sum(x[n, i, j, c] for i in range(7) for j in range(6)) / 42 for c in range(3)]]]
                     for n in range(2)])
    close(run_one("GlobalAvgPool", x, []), want)


def test_elementwise_and_layout_ops(rng) -> None:
    x = rng.standard_normal((2, 3, 4))
    p = rng.standard_normal(4)
    close(run_one("Add", x, [p]), np.array([[[x[i, j, k] + p[k] for k in range(4)] for j in range(3)]
                                            for i in range(2)]))
    close(run_one("Mul", x, [p]), np.array([[[x[i, j, k] * p[k] for k in range(4)] for j in range(3)]
                                            for i in range(2)]))
    y = rng.standard_normal((2, 3, 2))
    cat = run_one("Concat", x, [], {"axis": -1}, extra_inputs=[y])
    close(cat, np.array([[list(x[i, j]) + list(y[i, j]) for j in range(3)] for i in range(2)]))
    pad = run_one("Pad", x, [], {"pads": [[0, 1], [2, 0], [1, 1]], "value": -2.5})
    assert pad.shape == (3, 5, 6)
    for i, j, k in itertools.product(range(3), range(5), range(6)):
        inside = i < 2 and j >= 2 and 1 <= k < 5
        assert pad[i, j, k] == (x[i, j - 2, k - 1] if inside else -2.5)
    flat = x.ravel().tolist()  # row-major order over (N, ..., C)
    assert run_one("Reshape", x, [], {"shape": [0, -1]}).ravel().tolist() == flat
    assert run_one("Reshape", x, [], {"shape": [0, -1]}).shape == (2, 12)
    assert run_one("Flatten", x, [], {"axis": 1}).tolist() == [flat[:12], flat[12:]]
    tr = run_one("Transpose", x, [], {"perm": [2, 0, 1]})
    for i, j, k in itertools.product(range(2), range(3), range(4)):
        assert tr[k, i, j] == x[i, j, k]
    for axis in (-1, 1):
        sm = run_one("Softmax", x, [], {"axis": axis})
        want = np.empty_like(x)
        for idx in itertools.product(*map(range, x.shape)):
            line = [x[idx[:axis % 3] + (t,) + idx[axis % 3 + 1:]] for t in range(x.shape[axis])]
            want[idx] = math.exp(x[idx]) / sum(math.exp(v) for v in line)
        close(sm, want)


# ----------------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-40, max_value=40, allow_nan=False))
def test_erf_matches_math_erf(v: float) -> None:
    got = float(erf(np.array([v]))[0])
    want = math.erf(v)
    assert abs(got - want) <= 2e-15 * max(abs(want), 1e-300) + 1e-300  # a few ulp


def test_erf_grid() -> None:
    xs = np.concatenate([np.linspace(-7, 7, 20001), np.geomspace(1e-200, 1, 200), [0.0, np.inf, -np.inf]])
    want = np.array([math.erf(v) for v in xs])
    rel = np.abs(erf(xs) - want) / np.maximum(np.abs(want), 1e-300)
    assert rel.max() < 1e-14
    assert np.isnan(erf(np.array([np.nan]))[0])


def small_model() -> GraphBuilder:
    b = GraphBuilder("m")
    x = b.input("x", (1, 4, 4, 2))
    y = b.conv2d(x, np.ones((3, 3, 3, 2)), pads=[1, 1, 1, 1], name="conv")
    y = b.relu(y, name="relu")
    y = b.reshape(y, [0, -1], name="flat")
    b.output(b.softmax(y, name="prob"))
    return b


def test_any_batch_and_intermediates(rng) -> None:
    g = small_model().build()
    x = rng.standard_normal((5, 4, 4, 2)).astype(np.float32)
    all_out = run_float(g, x, keep_intermediates=True)
    assert set(all_out) == {"x", "conv", "relu", "flat", "prob"}
    assert all_out["prob"].shape == (5, 48) and all_out["prob"].dtype == np.float32
    one = run_float(g, {"x": x[2:3]})
    np.testing.assert_allclose(one["prob"], all_out["prob"][2:3], rtol=1e-6)
    assert list(one) == ["prob"]


def test_input_errors(rng) -> None:
    g = small_model().build()
    with pytest.raises(GraphError, match=r"input 'x' has shape \[1, 4, 4, 3\], expected \[batch, 4, 4, 2\]"):
        run_float(g, np.zeros((1, 4, 4, 3)))
    with pytest.raises(GraphError, match="'y' is not an input of graph 'm'"):
        run_float(g, {"x": np.zeros((1, 4, 4, 2)), "y": np.zeros(1)})
    with pytest.raises(GraphError, match="input 'x' of graph 'm' is missing"):
        run_float(g, {})
    with pytest.raises(GraphError, match="dtype must be float32 or float64"):
        run_float(g, np.zeros((1, 4, 4, 2)), dtype=np.float16)


def test_fixed_batch_reshape_names_the_node() -> None:
    b = GraphBuilder("m")
    x = b.input("x", (1, 2, 3))
    b.output(b.reshape(x, [1, 6], name="fixed"))
    g = b.build()
    assert run_float(g, np.zeros((1, 2, 3)))["fixed"].shape == (1, 6)
    message = (r"run_float: node 'fixed' \(Reshape\) cannot run on inputs of shape \[2, 2, 3\]: "
               r"cannot reshape \[2, 2, 3\] \(12 elements\) to \[1, 6\]")
    with pytest.raises(GraphError, match=message):
        run_float(g, np.zeros((2, 2, 3)))


def test_prequantized_parameters_are_dequantized(rng) -> None:
    q = rng.integers(-127, 128, size=(3, 1, 1, 2)).astype(np.int8)
    scale = np.array([0.5, 0.25, 0.125])
    b = GraphBuilder("q")
    x = b.input("x", (1, 2, 2, 2))
    w = b.param("w", q)
    b.quant(w, QuantSpec(8, True, scale=scale, axis=0, narrow=True))
    b.output(b.conv2d(x, w, name="conv"))
    xin = rng.standard_normal((1, 2, 2, 2))
    got = run_float(b.build(), xin, dtype=np.float64)["conv"]
    wf = q.astype(np.float64) * scale[:, None, None, None]
    close(got, conv_loops(xin, wf, None, (1, 1), (0, 0, 0, 0), (1, 1), 1))


def test_group_quant_dequantize() -> None:
    q = np.arange(12, dtype=np.int8).reshape(2, 6)
    spec = QuantSpec(4, False, scale=np.array([[1.0, 2.0], [3.0, 4.0]]),
                     zero_point=np.array([[1, 2], [3, 4]]),
                     axis=1, group_size=4, dtype="uint8")
    want = np.array([[(q[r, c] - spec.zero_point[r, c // 4]) * spec.scale[r, c // 4] for c in range(6)]
                     for r in range(2)])
    np.testing.assert_array_equal(spec.dequantize(q), want)
