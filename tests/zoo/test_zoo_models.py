"""The model zoo: names, layer shapes, MAC totals against published figures, seeding, float runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwsim.emulate.float_ref import run_float
from hwsim.errors import HwsimError
from hwsim.graph import load_model
from hwsim.zoo import build_model, list_models

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["lenet5", "resnet50", "mobilenetv2", "googlenet", "transformer_tiny"]


@pytest.fixture(scope="module")
def models(zoo_model) -> dict:
    """Each zoo model (seed 0), built once per session."""
    return {name: zoo_model(name) for name in NAMES}


def conv_fc_macs(graph) -> int:
    """Conv2D and Dense MACs recomputed from tensor shapes (independent of the IR's own MAC function)."""
    total = 0
    for n in graph.nodes:
        out = graph.tensors[n.outputs[0]].shape
        w = graph.params[n.inputs[1]].shape if n.op in ("Conv2D", "Dense") else None
        if n.op == "Conv2D":  # N*OH*OW*O * KH*KW*(I/groups)
            total += int(np.prod(out)) * w[1] * w[2] * w[3]
        elif n.op == "Dense":  # rows * out * in
            total += int(np.prod(out)) * w[1]
    return total


def test_list_models_names_and_descriptions():
    listed = list_models()
    assert [name for name, _ in listed] == NAMES
    assert all(isinstance(d, str) and d for _, d in listed)


@pytest.mark.parametrize("bad", ["resnet", "", "LeNet5"])
def test_unknown_model_lists_the_available_ones(bad):
    with pytest.raises(HwsimError) as info:
        build_model(bad)
    assert all(name in str(info.value) for name in NAMES)


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_bad_seed_is_an_hwsim_error(seed):
    with pytest.raises(HwsimError, match="seed"):
        build_model("transformer_tiny", seed=seed)


# Sources: ResNet-50 (Caffe v1) 7.7 GOP = 3.86 GMAC and MobileNetV2 0.59 GOP (perf-anchors.md 1.1, Vitis AI
# zoo; vaitrace measures 7.718 GOP, perf-anchors.md 1.2); MobileNetV2 0.30 GMAC (peer-speeds.md "MAC counts":
# 300,774,272 counted from torchvision); GoogLeNet (Caffe bvlc_googlenet) 3.16 GOP = 1.58 GMAC.
@pytest.mark.parametrize("name, gmac, tolerance", [
    ("resnet50", 3.86, 0.01),
    ("mobilenetv2", 0.30, 0.03),
    ("googlenet", 1.58, 0.01),
])
def test_mac_totals_match_published_figures(models, name, gmac, tolerance):
    macs = conv_fc_macs(models[name])
    assert abs(macs / 1e9 - gmac) <= tolerance * gmac, f"{name}: {macs:,} MACs"
    assert models[name].macs() >= macs  # the IR's total also counts MatMul etc., never less


def test_mobilenetv2_matches_torchvision_exactly(models):
    # peer-speeds.md, "MAC counts": 299,494,272 conv + 1,280,000 FC, counted from torchvision's model
    assert conv_fc_macs(models["mobilenetv2"]) == 300_774_272


@pytest.mark.parametrize("name, input_shape, output_shape", [
    ("lenet5", (1, 32, 32, 1), (1, 10)),
    ("resnet50", (1, 224, 224, 3), (1, 1000)),
    ("mobilenetv2", (1, 224, 224, 3), (1, 1000)),
    ("googlenet", (1, 224, 224, 3), (1, 1000)),
    ("transformer_tiny", (1, 16, 64), (1, 16, 64)),
])
def test_input_and_output_shapes(models, name, input_shape, output_shape):
    g = models[name]
    assert [t.shape for t in g.inputs] == [input_shape]
    assert [g.tensors[o].shape for o in g.outputs] == [output_shape]


@pytest.mark.parametrize("tensor, shape", [
    ("conv1", (1, 112, 112, 64)),
    ("pool1", (1, 56, 56, 64)),            # Caffe ceil-mode pooling, written as end padding
    ("res2c_relu", (1, 56, 56, 256)),
    ("res3a_branch2a", (1, 28, 28, 128)),  # v1: the stride sits in the first 1x1
    ("res3a_branch1", (1, 28, 28, 512)),
    ("res4f_relu", (1, 14, 14, 1024)),
    ("res5c_relu", (1, 7, 7, 2048)),
    ("pool5", (1, 1, 1, 2048)),
])
def test_resnet50_caffe_layout(models, tensor, shape):
    assert models["resnet50"].tensors[tensor].shape == shape


def test_resnet50_downsampling_stride_is_in_branch2a(models):
    g = models["resnet50"]
    for blk in ("3a", "4a", "5a"):
        assert g.node(f"res{blk}_branch2a").attrs["strides"] == [2, 2]
        assert g.node(f"res{blk}_branch2b").attrs["strides"] == [1, 1]
        assert g.node(f"res{blk}_branch1").attrs["strides"] == [2, 2]


@pytest.mark.parametrize("tensor, shape", [
    ("pool1/3x3_s2", (1, 56, 56, 64)),
    ("pool2/3x3_s2", (1, 28, 28, 192)),
    ("inception_3b/output", (1, 28, 28, 480)),
    ("pool3/3x3_s2", (1, 14, 14, 480)),
    ("inception_4e/output", (1, 14, 14, 832)),
    ("pool4/3x3_s2", (1, 7, 7, 832)),
    ("inception_5b/output", (1, 7, 7, 1024)),
])
def test_googlenet_caffe_layout(models, tensor, shape):
    g = models["googlenet"]
    assert g.tensors[tensor].shape == shape
    assert g.params["inception_3a/5x5.weight"].shape == (32, 5, 5, 16)  # Caffe's 5x5, not torchvision's 3x3


def test_mobilenetv2_layout(models):
    g = models["mobilenetv2"]
    dw = [n for n in g.nodes if n.op == "Conv2D" and n.attrs["groups"] > 1]
    assert len(dw) == 17
    assert all(g.params[n.inputs[1]].shape[3] == 1 for n in dw)
    assert sum(n.op == "Add" for n in g.nodes) == 10
    assert sum(n.op == "ReLU6" for n in g.nodes) == 35
    assert g.tensors["features.18.relu6"].shape == (1, 7, 7, 1280)


def test_transformer_shares_one_weight_set_across_layers(models):
    g = models["transformer_tiny"]
    for pname in ("shared.attn.q.weight", "shared.mlp.fc1.weight", "shared.ln1.gamma"):
        readers = [n.name for n in g.nodes if pname in n.inputs]
        assert len(readers) == 4, (pname, readers)
    ops = {n.op for n in g.nodes}
    assert {"MatMul", "Softmax", "LayerNorm", "GELU", "Dense", "Reshape", "Transpose"} <= ops
    activation_matmuls = [n for n in g.nodes if n.op == "MatMul"
                          and not any(t in g.params for t in n.inputs)]
    assert len(activation_matmuls) == 8


@pytest.mark.parametrize("name", ["resnet50", "mobilenetv2", "googlenet", "transformer_tiny"])
def test_untrained_models_say_so(models, name):
    assert models[name].metadata["weights"] == "untrained: for numerics and cost, not accuracy"
    assert models[name].metadata["trained"] is False


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = (build_model("transformer_tiny", seed=s) for s in (0, 0, 1))
    assert a.params.keys() == b.params.keys() == c.params.keys()
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert not np.array_equal(a.params["shared.attn.q.weight"], c.params["shared.attn.q.weight"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "mobilenetv2", "googlenet"])
def test_224_models_run_and_batchnorm_keeps_activations_normalised(models, name):
    """One float run per 224x224 model: finite logits; BatchNorm outputs near zero mean, unit variance."""
    g = models[name]
    x = np.random.default_rng(7).standard_normal(g.inputs[0].shape).astype(np.float32)
    values = run_float(g, {g.inputs[0].name: x}, keep_intermediates=True)
    logits = values[g.outputs[0]]
    assert logits.shape == (1, 1000) and np.isfinite(logits).all() and np.std(logits) > 0
    for n in g.nodes:
        if n.op == "BatchNorm":
            y = values[n.outputs[0]]
            gamma, beta = g.params[n.inputs[1]], g.params[n.inputs[2]]
            z = (y - beta) / gamma  # the normalised value before the affine part
            assert abs(float(z.mean())) < 0.5 and 0.3 < float(z.std()) < 2.0, (n.name, z.mean(), z.std())


def test_transformer_runs(models):
    g = models["transformer_tiny"]
    x = np.random.default_rng(3).standard_normal((1, 16, 64)).astype(np.float32)
    y = run_float(g, {"tokens": x})[g.outputs[0]]
    assert y.shape == (1, 16, 64) and np.isfinite(y).all()


# ----------------------------------------------------------------------------------------------------
# LeNet-5: trained, shipped, with its data sets


def test_lenet5_is_shipped_in_the_package_and_as_the_example():
    packaged = ROOT / "hwsim" / "zoo" / "data" / "lenet5.npz"
    example = ROOT / "examples" / "lenet5.npz"
    assert packaged.read_bytes() == example.read_bytes()
    assert example.stat().st_size < 1_000_000


def test_lenet5_float_accuracy_on_its_evaluation_set(models):
    g = models["lenet5"]
    ev = g.data["evaluation"]
    assert ev["x"].shape[1:] == (32, 32, 1) and len(ev["x"]) == len(ev["y"]) >= 300
    assert g.data["calibration"]["x"].shape == (200, 32, 32, 1)
    logits = run_float(g, {g.inputs[0].name: ev["x"]})[g.outputs[0]]
    accuracy = float(np.mean(logits.argmax(axis=1) == ev["y"]))
    assert accuracy == pytest.approx(g.metadata["float_accuracy"], abs=1e-12)
    assert 0.97 <= accuracy <= 1.0
    assert g.metadata["produced_by"] == "tools/train_lenet5.py"


def test_lenet5_example_loads_like_the_zoo_model(models):
    g = load_model(ROOT / "examples" / "lenet5.npz")
    z = models["lenet5"]
    assert [n.op for n in g.nodes] == [n.op for n in z.nodes]
    assert all(np.array_equal(g.params[k], z.params[k]) for k in z.params)
