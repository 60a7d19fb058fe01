"""Issue 4: the zoo networks run end to end on every built-in target (the 224×224 networks take about
100 s for all targets together on the 2-core CI machine)."""

import numpy as np
import pytest

from hwsim.emulate.run import run_model
from hwsim.targets import list_targets, load_target
from hwsim.zoo import build_model

ALL_TARGETS = [t.name for t in list_targets()]


def _inputs(graph, n, seed=0):
    shape = tuple(graph.inputs[0].shape[1:])
    return np.random.default_rng(seed).normal(0, 1, (n,) + shape).astype(np.float32)


@pytest.fixture(scope="module")
def transformer():
    return build_model("transformer_tiny")


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_shared_weight_transformer_runs_on_every_target(transformer, target):
    x = _inputs(transformer, 3)
    t = load_target(target)
    report = run_model(transformer, t, inputs=x[:2], calibration=x)
    assert np.isfinite(report.output_sqnr_db)
    if t.numerics.weights.bits >= 4:  # 2-bit weights are reported as they are: no accuracy claim
        assert report.output_sqnr_db > 5
    # what did not run in integer form is listed with the reason, never silently wrong
    for layer in report.fallbacks:
        assert layer.note


_NETS: dict = {}


def _net(name):
    if name not in _NETS:
        _NETS[name] = build_model(name)
    return _NETS[name]


@pytest.mark.slow
@pytest.mark.parametrize("target", ALL_TARGETS)
@pytest.mark.parametrize("model", ["resnet50", "mobilenetv2", "googlenet"])
def test_224_networks_run_end_to_end_on_every_target(model, target):
    g = _net(model)
    x = _inputs(g, 1)
    t = load_target(target)
    report = run_model(g, t, inputs=x, calibration=x, threads=2)
    assert np.isfinite(report.output_sqnr_db)
    # every convolution and dense layer runs the target's integer arithmetic (float targets: float32 compute)
    convs = [layer for layer in report.layers if layer.op_kind in ("Conv2D", "DepthwiseConv2D", "Dense")]
    want = "float" if t.numerics.activations.format == "float" else "integer"
    assert convs and all(layer.mode == want for layer in convs)
    # 8-bit weights track float (PyTorch's default x86 histogram observer clips hard on one calibration
    # sample, hence the low bar); 4- and 2-bit weights are reported as they are, without an accuracy claim
    if t.numerics.weights.bits >= 8:
        assert report.output_sqnr_db > 5


@pytest.fixture(scope="module")
def mobilenetv2():
    return build_model("mobilenetv2")


@pytest.mark.parametrize("target", ["intel_int8", "intel_int8_avx2", "arm_tflite_xnnpack"])
def test_bound_runners_equal_the_general_path(mobilenetv2, target):
    # simulate() runs each plan through a runner with its arguments bound once (prepared core layers, a
    # view for Flatten, the pool for QLinearAdd); run_plan is the general path: the integers must agree.
    from hwsim.emulate import simulator as sim

    x = _inputs(mobilenetv2, 1)
    qm = sim.quantize_for_target(mobilenetv2, load_target(target), x)
    bound = [p for p in qm.plans if p.mode != "fused" and sim._bound_runner(qm, p) is not None]
    assert {p.op_kind for p in bound} >= {"Conv2D", "DepthwiseConv2D", "Dense"}
    got = sim.simulate(qm, x, keep_intermediates=True, threads=2).integers
    name = mobilenetv2.inputs[0].name
    ints = {name: sim.quantize_tensor(x, qm.act[name], qm.target.numerics.activations)}
    for p in qm.plans:
        if p.mode != "fused":
            ints[p.output] = sim.run_plan(qm, p, ints)
    assert set(got) == set(ints)
    for t, want in ints.items():
        np.testing.assert_array_equal(got[t], want, err_msg=t)
