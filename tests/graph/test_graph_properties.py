"""Property tests: shape inference agrees with execution and with a loop reference; files round-trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_float_ref import conv_loops, pool_loops  # pytest (prepend import mode) puts tests/graph on sys.path

from hwsim.emulate.float_ref import run_float
from hwsim.graph import GraphBuilder, load_model, save_model
from hwsim.graph.npz import GRAPH_KEY


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg = draw(st.integers(1, 3))
    og = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pads[0] - pads[2]), 9))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pads[1] - pads[3]), 9))
    n = draw(st.integers(1, 2))
    return (n, h, w, groups * cg), (groups * og, kh, kw, cg), [sh, sw], pads, [dh, dw], groups


@settings(max_examples=80, deadline=None)
@given(conv_cases(), st.integers(0, 2**31 - 1))
def test_conv_shape_execution_and_loops_agree(case, seed) -> None:
    xshape, wshape, strides, pads, dil, groups = case
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal(xshape), rng.standard_normal(wshape), rng.standard_normal(wshape[0])
    gb = GraphBuilder("conv")
    y = gb.conv2d(gb.input("x", xshape), w, b, strides=strides, pads=pads, dilations=dil, groups=groups)
    gb.output(y)
    g = gb.build()
    got = run_float(g, x, dtype=np.float64)[y]
    assert got.shape == g.tensors[y].shape
    want = conv_loops(x, w, b, strides, pads, dil, groups)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-11 * max(1.0, np.abs(want).max()))
    n, oh, ow, o = got.shape
    assert g.macs() == n * oh * ow * o * wshape[1] * wshape[2] * wshape[3]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
       st.lists(st.integers(0, 2), min_size=4, max_size=4), st.integers(0, 6), st.integers(0, 6),
       st.booleans(), st.integers(0, 2**31 - 1))
def test_pool_shape_execution_and_loops_agree(kh, kw, sh, sw, pads, eh, ew, include, seed) -> None:
    pads = [min(pads[0], kh - 1), min(pads[1], kw - 1), min(pads[2], kh - 1), min(pads[3], kw - 1)]
    shape = (2, kh + eh, kw + ew, 3)
    x = np.random.default_rng(seed).standard_normal(shape)
    gb = GraphBuilder("pool")
    xi = gb.input("x", shape)
    m = gb.max_pool(xi, [kh, kw], [sh, sw], pads, name="max")
    a = gb.avg_pool(xi, [kh, kw], [sh, sw], pads, count_include_pad=include, name="avg")
    gb.output(m)
    gb.output(a)
    g = gb.build()
    out = run_float(g, x, dtype=np.float64)
    assert out["max"].shape == out["avg"].shape == g.tensors["max"].shape
    np.testing.assert_array_equal(out["max"], pool_loops(x, [kh, kw], [sh, sw], pads, "max"))
    np.testing.assert_allclose(out["avg"], pool_loops(x, [kh, kw], [sh, sw], pads, "avg", include),
                               atol=1e-12)


float_arrays = st.sampled_from(["float16", "float32", "float64"]).flatmap(
    lambda dt: st.lists(st.floats(-1e4, 1e4, width=16 if dt == "float16" else 32 if dt == "float32" else 64),
                        min_size=1, max_size=12).map(lambda v: np.array(v, dtype=dt)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(float_arrays, min_size=1, max_size=4), st.text(min_size=1, max_size=12),
       st.dictionaries(st.text(max_size=5),
                       st.one_of(st.integers(-10, 10), st.text(max_size=5), st.booleans()),
                       max_size=3))
def test_save_load_round_trip_is_exact(tmp_path: Path, arrays, name, metadata) -> None:
    gb = GraphBuilder(name)
    acc = gb.input("in", (1, 12))
    for i, a in enumerate(arrays):
        p = gb.param(f"p{i} {name}", a)  # names with arbitrary characters
        acc = gb.add(acc, p) if a.size in (1, 12) else acc  # unused parameters are allowed too
    gb.output(acc)
    gb.metadata.update(metadata)
    g = gb.build()
    save_model(g, tmp_path / "m.npz")
    g2 = load_model(tmp_path / "m.npz")
    assert g2.name == name and g2.metadata == metadata
    for k, a in g.params.items():
        assert g2.params[k].dtype == a.dtype and g2.params[k].tobytes() == a.tobytes()
    save_model(g2, tmp_path / "m2.npz")
    with np.load(tmp_path / "m.npz") as z1, np.load(tmp_path / "m2.npz") as z2:
        assert z1[GRAPH_KEY].tobytes() == z2[GRAPH_KEY].tobytes()
