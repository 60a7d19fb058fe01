"""Whole-model oracle: PyTorch eager int8 models on the fbgemm engine against hwsim's ``intel_int8_fbgemm`` target.

A small float network (conv+ReLU → depthwise 3×3 conv+ReLU → 1×1 conv → [global average pool] → flatten →
linear) is quantized with torch.ao.quantization (fuse, prepare, calibrate on seeded data, convert), translated
into a pre-quantized hwsim graph (prequant-contract: NHWC, OHWI int8 weights with their scales, activation
QuantSpecs from each quantized module's ``scale``/``zero_point``) and simulated. Every tensor that torch
materialises is read by running the quantized modules one at a time, and must equal hwsim's integer codes
exactly. The depthwise layer (C = 8, 3×3, stride 1, padding 1) is one that fbgemm routes to its
int16-pair-saturating kernel (tests/oracle/test_torch_gemm_conv.py), and the saturating case drives it into
saturation.

Exact: models with and without bias (per-channel and per-tensor weights, 7-bit and 8-bit activations; the
bias stays float, as fbgemm adds it) and with quantized adaptive average pooling, including input
quantization and pair saturation.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.ao import quantization as tq

from hwsim import numerics
from hwsim.emulate.simulator import accumulate, quantize_for_target, simulate
from hwsim.graph import GraphBuilder
from hwsim.graph.quant import QuantSpec
from hwsim.targets.registry import load_target

pytestmark = [pytest.mark.oracle, pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

H = W = 8
N_OUT = 10


@pytest.fixture(autouse=True)
def fbgemm_engine():
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = "fbgemm"
    yield
    torch.backends.quantized.engine = previous


class Net(nn.Module):
    def __init__(self, bias: bool, pool: bool) -> None:
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=bias)
        self.relu1 = nn.ReLU()
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=bias)  # routed to fbgemm's depthwise kernel
        self.relu2 = nn.ReLU()
        self.pw = nn.Conv2d(8, 8, 1, bias=bias)
        self.pool = nn.AdaptiveAvgPool2d(1) if pool else nn.Identity()
        self.fc = nn.Linear(8 if pool else 8 * H * W, N_OUT, bias=bias)
        self.dequant = tq.DeQuantStub()

    def stages(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every materialised tensor, by the hwsim tensor name it corresponds to."""
        t = {"x": self.quant(x)}
        t["conv1"] = self.relu1(self.conv1(t["x"]))
        t["dw"] = self.relu2(self.dw(t["conv1"]))
        t["pw"] = self.pw(t["dw"])
        t["pool"] = self.pool(t["pw"])
        t["fc"] = self.fc(torch.flatten(t["pool"], 1))
        return t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.stages(x)["fc"])


QCONFIGS = {
    # PyTorch's x86 default: HistogramObserver(reduce_range=True) activations, per-channel symmetric weights.
    "default_per_channel": lambda: tq.get_default_qconfig("fbgemm"),
    "per_tensor": lambda: tq.QConfig(activation=tq.HistogramObserver.with_args(reduce_range=True),
                                     weight=tq.default_weight_observer),
    # 8-bit activations (codes up to 255): the depthwise kernel's int16 pairs can saturate.
    "full_range": lambda: tq.QConfig(activation=tq.HistogramObserver.with_args(reduce_range=False),
                                     weight=tq.default_per_channel_weight_observer),
}


def _quantized_model(qconfig: str, bias: bool, pool: bool, saturating_dw: bool, seed: int):
    torch.manual_seed(seed)
    model = Net(bias, pool).eval()
    if saturating_dw:
        # Same-sign taps of full magnitude: quantized to ±127, so a pair of taps on codes near 255 exceeds int16.
        with torch.no_grad():
            sign = torch.tensor([1.0, -1.0] * 4).view(8, 1, 1, 1)
            model.dw.weight.copy_(sign * (0.5 + 0.5 * torch.rand(8, 1, 3, 3)))
            model.dw.weight[:, :, 1, 1] = sign.view(8, 1) * 1.0
    model.qconfig = QCONFIGS[qconfig]()
    tq.fuse_modules(model, [["conv1", "relu1"], ["dw", "relu2"]], inplace=True)
    tq.prepare(model, inplace=True)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(8, 3, H, W, generator=gen))
    tq.convert(model, inplace=True)
    return model


def _act_spec(scale: float, zero_point: int) -> QuantSpec:
    return QuantSpec(bits=8, signed=False, scale=np.array([scale], np.float32),
                     zero_point=np.array([zero_point], np.int64))


def _weight(module) -> tuple[np.ndarray, QuantSpec]:
    """int8 weights and their symmetric QuantSpec (per output channel or per tensor) of a quantized module."""
    wq = module.weight()
    w = wq.int_repr().numpy()
    if wq.qscheme() in (torch.per_channel_symmetric, torch.per_channel_affine):
        assert wq.q_per_channel_axis() == 0
        scale = wq.q_per_channel_scales().numpy().astype(np.float32)
        return w, QuantSpec(bits=8, signed=True, scale=scale, zero_point=np.zeros(scale.size, np.int64), axis=0)
    assert wq.q_zero_point() == 0
    return w, QuantSpec(bits=8, signed=True, scale=np.array([wq.q_scale()], np.float32),
                        zero_point=np.zeros(1, np.int64))


def _float_bias(module) -> np.ndarray | None:
    """fbgemm's bias stays float: the target adds it in accumulator units before the multiply (numerics B.2)."""
    b = module.bias()
    return None if b is None else b.detach().numpy().astype(np.float32)


def to_hwsim_graph(model: Net, batch: int):
    """The converted torch model as a pre-quantized hwsim graph (NHWC), tensor names as in ``Net.stages``."""
    b = GraphBuilder("torch_fbgemm_net")
    x = b.input("x", (batch, H, W, 3))
    b.quant(x, _act_spec(float(model.quant.scale), int(model.quant.zero_point)))
    scales = {"x": float(model.quant.scale)}

    def weighted(name: str, src: str, module, weight: np.ndarray | None, relu: bool, **conv) -> str:
        w, w_spec = _weight(module)
        if weight is not None:
            w = weight
        elif w.ndim == 4:
            w = w.transpose(0, 2, 3, 1)  # torch OIHW → OHWI
        w = np.ascontiguousarray(w)
        bias = _float_bias(module)
        node = name + "/pre_act" if relu else name
        if w.ndim == 4:
            out = b.conv2d(src, w, bias, name=node, **conv)
        else:
            out = b.dense(src, w, bias, name=node)
        b.quant(f"{node}.weight", w_spec)
        if relu:
            out = b.relu(out, name=name)
        b.quant(out, _act_spec(float(module.scale), int(module.zero_point)))
        scales[name] = float(module.scale)
        return out

    t = weighted("conv1", x, model.conv1, None, True, pads=(1, 1, 1, 1))
    t = weighted("dw", t, model.dw, None, True, pads=(1, 1, 1, 1), groups=8)
    t = weighted("pw", t, model.pw, None, False)
    fc_w = None
    if isinstance(model.pool, nn.AdaptiveAvgPool2d):
        # torch's quantized adaptive_avg_pool2d keeps the input's scale and zero point
        t = b.global_avg_pool(t, name="pool")
        b.quant(t, _act_spec(scales["pw"], int(model.pw.zero_point)))
    else:
        # torch flattens NCHW (c, h, w), hwsim NHWC (h, w, c): reorder the linear's input columns to match
        w_fc = model.fc.weight().int_repr().numpy()
        fc_w = w_fc.reshape(N_OUT, 8, H, W).transpose(0, 2, 3, 1).reshape(N_OUT, -1)
    t = b.flatten(t, name="flat")  # a copy: keeps its input's quantization
    scales["flat"] = scales["pw"]
    t = weighted("fc", t, model.fc, fc_w, False)
    b.output(t)
    return b.build()


def _torch_codes(model: Net, x: torch.Tensor) -> dict[str, np.ndarray]:
    with torch.no_grad():
        stages = model.stages(x)
    out = {}
    for name, q in stages.items():
        a = q.int_repr().numpy()
        out[name] = np.ascontiguousarray(a.transpose(0, 2, 3, 1)) if a.ndim == 4 else a
    return out


def _run_both(qconfig: str, bias: bool, pool: bool, saturating: bool, seed: int, batch: int):
    """(torch model, torch codes, hwsim model, hwsim codes) on seeded inputs (8× the calibration data when
    ``saturating``, so that conv1's output clips at 255)."""
    model = _quantized_model(qconfig, bias, pool, saturating, seed)
    gen = torch.Generator().manual_seed(seed + 2)
    x = torch.randn(batch, 3, H, W, generator=gen) * (8.0 if saturating else 1.0)
    want = _torch_codes(model, x)
    qm = quantize_for_target(to_hwsim_graph(model, batch), load_target("intel_int8_fbgemm"))
    got = simulate(qm, np.ascontiguousarray(x.numpy().transpose(0, 2, 3, 1))).integers
    return model, want, qm, got


def _compare(qconfig: str, bias: bool, pool: bool, saturating: bool = False, seed: int = 0, batch: int = 4):
    _, want, qm, got = _run_both(qconfig, bias, pool, saturating, seed, batch)
    names = ["x", "conv1", "dw", "pw"] + (["pool"] if pool else []) + ["fc"]
    for name in names:
        np.testing.assert_array_equal(got[name], want[name], err_msg=f"tensor '{name}'")
    return qm, got


@pytest.mark.parametrize("qconfig", ["default_per_channel", "per_tensor", "full_range"])
@pytest.mark.parametrize("seed", [0, 1])
def test_model_without_bias(qconfig, seed):
    """Input quantization, conv+ReLU, depthwise+ReLU (fbgemm's pair kernel), 1×1 conv, flatten, linear."""
    _compare(qconfig, bias=False, pool=False, seed=seed, batch=8)


def test_depthwise_pair_saturation():
    """Full-range activations near 255 into ±127 depthwise taps: fbgemm's int16 pairs saturate, hwsim follows."""
    qm, got = _compare("full_range", bias=False, pool=False, saturating=True)
    plan = next(p for p in qm.plans if p.node.name == "dw/pre_act")
    assert plan.op_kind == "DepthwiseConv2D"
    x = got["conv1"]
    assert np.mean(x == 255) > 0.05
    assert np.any(accumulate(qm, plan, x) != accumulate(qm, plan, x, exact=True)), "no pair saturated"


@pytest.mark.parametrize("qconfig", ["default_per_channel", "per_tensor"])
def test_model_with_float_bias(qconfig):
    _compare(qconfig, bias=True, pool=False, seed=0, batch=32)


@pytest.mark.parametrize("qconfig", ["default_per_channel", "per_tensor", "full_range"])
def test_float_bias_layers_follow_fbgemm_presets(qconfig):
    """What the simulator must do with a float bias, layer by layer on torch's own input codes: hwsim's
    accumulator (incl. the depthwise pair kernel) + requantize_float_preset with the float bias is exact."""
    model, want, qm, _ = _run_both(qconfig, bias=True, pool=False, saturating=False, seed=0, batch=32)
    inputs = {"conv1/pre_act": "x", "dw/pre_act": "conv1", "pw": "dw", "fc": "flat"}
    outputs = {"conv1/pre_act": "conv1", "dw/pre_act": "dw", "pw": "pw", "fc": "fc"}
    modules = {"conv1/pre_act": model.conv1, "dw/pre_act": model.dw, "pw": model.pw, "fc": model.fc}
    codes = dict(want)
    codes["flat"] = want["pw"].reshape(want["pw"].shape[0], -1)  # NHWC flatten, as in the hwsim graph
    for node, module in modules.items():
        plan = next(p for p in qm.plans if p.node.name == node)
        acc = accumulate(qm, plan, codes[inputs[node]])
        x_s = np.float32(qm.act[inputs[node]].scale)
        atws = (x_s * plan.consts["w_scale"]).astype(np.float32)
        y_s, y_zp = np.float32(module.scale), int(module.zero_point)
        per_channel = module.weight().qscheme() == torch.per_channel_symmetric
        lo = y_zp if node.endswith("/pre_act") else 0  # fused ReLU
        y = numerics.requantize_float_preset(
            acc, "fbgemm_float_bias" if per_channel else "fbgemm_float_bias_avx2", (atws / y_s).astype(np.float64),
            y_zp, lo, 255, bias=module.bias().detach().numpy().astype(np.float32),
            bias_scale=atws.astype(np.float64), out_dtype=np.uint8,
        )
        np.testing.assert_array_equal(y.reshape(want[outputs[node]].shape), want[outputs[node]], err_msg=node)


def test_model_with_adaptive_avg_pool():
    _compare("default_per_channel", bias=False, pool=True, seed=0, batch=32)


@pytest.mark.parametrize(("h", "w"), [(8, 8), (7, 7), (6, 10), (3, 4), (5, 6), (2, 2)])
def test_torch_adaptive_avg_pool_formula(h, w):
    """Measured: nn.AdaptiveAvgPool2d(1) on quint8 keeps (s, zp) and outputs RNE(float32(Σq)·float32(1/N)) of
    the raw codes, rounding halves to even on the raw mean (not on the zero-point-relative mean). This is
    the kernel a GlobalAvgPool entry of intel_int8_fbgemm needs; the tie-heavy inputs separate the two."""
    rng = np.random.default_rng(h * 16 + w)
    f32 = np.float32
    for s, zp in [(0.0046, 0), (0.1, 51), (1 / 3, 128), (0.02, 255)]:
        q = rng.integers(0, 256, size=(64, 16, h, w)).astype(np.uint8)
        q[:32] = rng.integers(max(zp - 3, 0), min(zp + 3, 255), size=(32, 16, h, w), endpoint=True)
        t = torch._make_per_tensor_quantized_tensor(torch.from_numpy(q), s, zp)
        y = nn.AdaptiveAvgPool2d(1)(t)
        assert (y.q_scale(), y.q_zero_point()) == (s, zp)
        raw = q.astype(np.int64).sum(axis=(2, 3))
        mult = f32(f32(f32(s) / f32(s)) / f32(h * w))
        want = np.clip(np.rint(raw.astype(f32) * mult), 0, 255)
        np.testing.assert_array_equal(y.int_repr().numpy()[..., 0, 0], want)
