"""The DPU target's convolution against the formula of numerics.md C.4, written out independently:
y = sat8(floor((Σ x·w + b·2^shift_bias) / 2^shift_cut + 1/2)), shift_cut = p_in + p_w − p_out,
shift_bias = p_in + p_w − p_b; activations rounded half up (DPU_ROUND), weights and bias half away from zero."""

import numpy as np
import pytest

from hwsim.emulate.simulator import quantize_for_target, simulate
from hwsim.graph import GraphBuilder
from hwsim.targets import load_target


def _dpu_round(v: np.ndarray) -> np.ndarray:
    return np.floor(v + 0.5)  # exact on these dyadic values


def _conv_nhwc(x, w, pads):
    n, h, wd, c = x.shape
    o, kh, kw, _ = w.shape
    t, l, b, r = pads
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))
    out = np.zeros((n, h + t + b - kh + 1, wd + l + r - kw + 1, o), np.int64)
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            patch = xp[:, i:i + kh, j:j + kw, :].astype(np.int64)
            out[:, i, j, :] = np.einsum("nhwc,ohwc->no", patch, w.astype(np.int64))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dpu_conv_matches_shift_formula(seed):
    rng = np.random.default_rng(seed)
    b = GraphBuilder("one_conv")
    x = b.input("x", (1, 6, 6, 3))
    w = rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)
    bias = rng.normal(0, 0.2, 4).astype(np.float32)
    b.output(b.conv2d(x, w, bias, pads=[1, 1, 1, 1], name="conv"))
    g = b.build()
    target = load_target("fpga_dpu")
    calib = rng.normal(0, 1, (8, 6, 6, 3)).astype(np.float32)
    qm = quantize_for_target(g, target, calib)
    plan = next(p for p in qm.plans if p.node.name == "conv")
    c = plan.consts
    p_in, p_out = qm.act["x"].fix_pos, qm.act[plan.output].fix_pos
    assert c["shift_cut"] == p_in + c["fix_pos_w"] - p_out
    assert c["shift_bias"] == p_in + c["fix_pos_w"] - c["fix_pos_b"]

    xs = rng.normal(0, 1, (2, 6, 6, 3)).astype(np.float32)
    got = simulate(qm, xs).integers[plan.output]

    xq = np.clip(_dpu_round(xs.astype(np.float64) * 2.0**p_in), -128, 127)
    acc = _conv_nhwc(xq, c["w_int"], (1, 1, 1, 1)).astype(np.float64)
    acc += c["bias"].astype(np.float64) * 2.0 ** c["shift_bias"]
    want = np.clip(_dpu_round(acc / 2.0 ** c["shift_cut"]), -128, 127)
    np.testing.assert_array_equal(got, want.astype(np.int8))
    # weights follow half-away-from-zero at 2^-p_w (numerics C.2)
    wq = np.clip(np.sign(w) * np.floor(np.abs(w.astype(np.float64)) * 2.0 ** c["fix_pos_w"] + 0.5), -128, 127)
    np.testing.assert_array_equal(c["w_int"], wq.astype(np.int8))


def test_dpu_leaky_relu_uses_26_over_256_on_the_unrounded_sum():
    rng = np.random.default_rng(7)
    b = GraphBuilder("conv_leaky")
    x = b.input("x", (1, 5, 5, 2))
    w = rng.normal(0, 0.5, (3, 1, 1, 2)).astype(np.float32)
    y = b.conv2d(x, w, np.zeros(3, np.float32), name="conv")
    b.output(b.leaky_relu(y, alpha=26 / 256, name="leaky"))
    g = b.build()
    qm = quantize_for_target(g, load_target("fpga_dpu"), rng.normal(0, 1, (8, 5, 5, 2)).astype(np.float32))
    plan = next(p for p in qm.plans if p.node.name == "conv")
    assert plan.fused_activation is not None and plan.fused_activation.name == "leaky"
    c = plan.consts
    xs = rng.normal(0, 1, (1, 5, 5, 2)).astype(np.float32)
    got = simulate(qm, xs).integers["leaky"]
    p_in = qm.act["x"].fix_pos
    xq = np.clip(np.floor(xs.astype(np.float64) * 2.0**p_in + 0.5), -128, 127)
    acc = np.einsum("nhwc,oc->nhwo", xq, c["w_int"][:, 0, 0, :].astype(np.float64))
    acc = np.where(acc < 0, acc * 26 / 256, acc)
    want = np.clip(np.floor(acc / 2.0 ** c["shift_cut"] + 0.5), -128, 127)
    np.testing.assert_array_equal(got, want.astype(np.int8))


def _dr(v: np.ndarray) -> np.ndarray:
    """The DPU golden model's intermediate rounding: half up, then saturate to int8."""
    return np.clip(_dpu_round(v), -128, 127)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("act", ["hard_sigmoid", "hard_swish"])
def test_dpu_conv_with_fused_hsigmoid_hswish_matches_the_golden_model(act, seed):
    """Vitis AI's CPU golden model of conv-fix with nonlinear HSIGMOID / HSWISH (vart cpu-runner conv fix(),
    read through the search corpus): tmp = (acc + b·2^shift_bias) / 2^shift_cut with shift_cut taken to the
    fix position hsigmoid_in, x = dr(tmp) (half up, saturated to int8), then
    HSIGMOID: DPURound(min(2^32, max(0, 2731·x + 3·2731·2^hsigmoid_in)) · 2^−shift_hsigmoid),
    HSWISH: h = dr(that at fix position 7), DPURound(x·h·2^−shift_hswish).
    hwsim runs the pair as two plans (the conv rounds and saturates to its own fix position, the activation is
    a table); with hsigmoid_in = the conv's output position that is the same arithmetic, checked here."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder("conv_nl")
    x = b.input("x", (1, 6, 6, 3))
    w = rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32)
    bias = rng.normal(0, 0.5, 4).astype(np.float32)
    y = b.conv2d(x, w, bias, pads=[1, 1, 1, 1], name="conv")
    b.output(getattr(b, act)(y, name="nl"))
    g = b.build()
    target = load_target("fpga_dpu")
    calib = rng.normal(0, 1.5, (8, 6, 6, 3)).astype(np.float32)
    qm = quantize_for_target(g, target, calib)
    conv = next(p for p in qm.plans if p.node.name == "conv")
    nl = next(p for p in qm.plans if p.node.name == "nl")
    assert conv.mode == "integer" and nl.mode == "integer"
    c = conv.consts
    p_in, hs_in, p_out = qm.act["x"].fix_pos, qm.act[conv.output].fix_pos, qm.act[nl.output].fix_pos

    xs = rng.normal(0, 2.0, (2, 6, 6, 3)).astype(np.float32)  # wide enough to saturate both ends
    got = simulate(qm, xs).integers[nl.output]

    xq = np.clip(_dpu_round(xs.astype(np.float64) * 2.0**p_in), -128, 127)
    acc = _conv_nhwc(xq, c["w_int"], (1, 1, 1, 1)).astype(np.float64)
    acc += c["bias"].astype(np.float64) * 2.0 ** c["shift_bias"]
    xv = _dr(acc / 2.0 ** (p_in + c["fix_pos_w"] - hs_in))
    t = np.minimum(2.0**32, np.maximum(0.0, xv * 2731 + 3 * 2731 * 2.0**hs_in))
    if act == "hard_sigmoid":
        want = _dr(t * 2.0 ** -(hs_in + 14 - p_out))
    else:
        h = _dr(t * 2.0 ** -(hs_in + 14 - 7))
        want = _dr(xv * h * 2.0 ** -(hs_in + 7 - p_out))
    np.testing.assert_array_equal(got, want.astype(np.int8))
