"""hwsim's parameter rules against the engines that define them: PyTorch observers, onnxruntime.quantization
(compute_data_quant_params, HistogramCollector) and onnxruntime's DynamicQuantizeLinear kernel.

Scales are compared bit for bit (float32 bit patterns), zero points exactly.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper
from onnx import load as onnx_load
from onnxruntime.quantization.calibrate import HistogramCollector
from onnxruntime.quantization.quant_utils import compute_data_quant_params, compute_scale_zp_blocked

from hwsim.quant.observers import (
    KLObserver,
    OnnxruntimeEntropyObserver,
    OnnxruntimePercentileObserver,
    TorchHistogramObserver,
    dynamic_quantize_params_uint8,
)
from hwsim.quant.scheme import (
    QuantParams,
    QuantScheme,
    affine_params_onnxruntime,
    affine_params_torch,
    onnxruntime_qrange,
    params_from_range,
    params_from_tensor,
    quantize,
    symmetric_params_torch,
    torch_qrange,
)

pytestmark = pytest.mark.oracle

TORCH_WEIGHTS = QuantScheme(symmetric=True, granularity="per_channel", axis=0, params_rule="torch")


def _bits32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).reshape(-1).view(np.int32)


def _random_tensors(rng, count, size=64):
    """Mixed-sign, one-sided and tiny/huge-scale tensors (float32)."""
    out = []
    for k in range(count):
        x = rng.standard_normal(size) * 10.0 ** rng.uniform(-4, 3) + rng.uniform(-3, 3)
        if k % 5 == 1:
            x = np.abs(x)
        elif k % 5 == 2:
            x = -np.abs(x)
        out.append(x.astype(np.float32))
    return out


# ---------------------------------------------------------------------------------------------------------
# PyTorch observers (torch/ao/quantization/observer.py), numerics.md B.3

TORCH_CASES = [
    (torch.quint8, torch.per_tensor_affine, False),
    (torch.quint8, torch.per_tensor_affine, True),
    (torch.qint8, torch.per_tensor_affine, False),
    (torch.qint8, torch.per_tensor_affine, True),
    (torch.qint8, torch.per_tensor_symmetric, False),
    (torch.qint8, torch.per_tensor_symmetric, True),
    (torch.quint8, torch.per_tensor_symmetric, False),
]


@pytest.mark.parametrize("dtype,qscheme,reduce_range", TORCH_CASES)
def test_torch_minmax_observer(rng, dtype, qscheme, reduce_range):
    signed = dtype == torch.qint8
    qmin, qmax = torch_qrange(8, signed, reduce_range)
    for x in _random_tensors(rng, 300) + [np.zeros(4, np.float32)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obs = torch.ao.quantization.MinMaxObserver(dtype=dtype, qscheme=qscheme,
                                                       reduce_range=reduce_range)
        obs(torch.from_numpy(x))
        scale, zp = obs.calculate_qparams()
        if qscheme == torch.per_tensor_affine:
            s, z = affine_params_torch(x.min(), x.max(), qmin, qmax)
        else:
            s, z = symmetric_params_torch(x.min(), x.max(), qmin, qmax)
        np.testing.assert_array_equal(_bits32(scale.numpy()), _bits32(s))
        assert int(zp.item()) == int(z[0])


@pytest.mark.parametrize("qscheme", [torch.per_channel_symmetric, torch.per_channel_affine])
def test_torch_per_channel_observer_on_ohwi_weights(rng, qscheme):
    symmetric = qscheme == torch.per_channel_symmetric
    scheme = QuantScheme(symmetric=symmetric, granularity="per_channel", axis=0, params_rule="torch")
    for _ in range(50):
        w = (rng.standard_normal((16, 3, 3, 8)) * 10.0 ** rng.uniform(-3, 1)).astype(np.float32)
        w[3] = 0.0  # an all-zero output channel
        w[5] = np.abs(w[5])
        obs = torch.ao.quantization.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=qscheme)
        obs(torch.from_numpy(w))
        scale, zp = obs.calculate_qparams()
        p = params_from_tensor(scheme, w)
        np.testing.assert_array_equal(_bits32(scale.numpy()), _bits32(p.scale))
        np.testing.assert_array_equal(zp.numpy().astype(np.int64), p.zero_point)


def test_torch_default_weight_observer_quantizes_to_minus_128(rng):
    # default_per_channel_weight_observer (B.3): /127.5 over [-128, 127], so a row whose extreme is
    # -127.5·2^-k gets scale 2^-k exactly and that extreme quantizes (RNE) to -128, in torch and in hwsim.
    w = np.clip(rng.standard_normal((8, 32)), -0.9, 0.9).astype(np.float32)
    w[:, 0] = -127.5 * 2.0 ** -np.arange(7, 15)
    w[:, 1:] *= np.abs(w[:, :1]) / 1.0
    obs = torch.ao.quantization.default_per_channel_weight_observer()
    obs(torch.from_numpy(w))
    scale, zp = obs.calculate_qparams()
    p = params_from_tensor(TORCH_WEIGHTS, w)
    np.testing.assert_array_equal(_bits32(scale.numpy()), _bits32(p.scale))
    assert p.scale.tolist() == (2.0 ** -np.arange(7, 15)).tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = torch.quantize_per_channel(torch.from_numpy(w), scale.double(), zp, 0, torch.qint8)
    q = q.int_repr().numpy()
    assert q[:, 0].tolist() == [-128] * 8
    np.testing.assert_array_equal(quantize(w, p, "half_even"), q)


@pytest.mark.parametrize("dtype,qscheme,reduce_range", [
    (torch.quint8, torch.per_tensor_affine, True),    # the x86 / fbgemm default activation observer (B.3)
    (torch.quint8, torch.per_tensor_affine, False),
    (torch.qint8, torch.per_tensor_symmetric, False),
])
def test_torch_histogram_observer(dtype, qscheme, reduce_range):
    # Several batches whose range grows (histogram upsampling), one-sided data and a constant first batch.
    qmin, qmax = torch_qrange(8, dtype == torch.qint8, reduce_range)
    for seed in range(8):
        r = np.random.default_rng(seed)
        batches = [(r.standard_normal(2000) * (1 + r.uniform(0, 3)) + r.uniform(-1, 1)).astype(np.float32)
                   for _ in range(1 + seed % 4)]
        if seed % 4 == 1:
            batches = [np.maximum(b, 0) for b in batches]
        if seed == 6:
            batches = [np.full(10, 0.5, np.float32)] + batches
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obs = torch.ao.quantization.HistogramObserver(dtype=dtype, qscheme=qscheme,
                                                          reduce_range=reduce_range)
        ours = TorchHistogramObserver()
        for b in batches:
            obs(torch.from_numpy(b))
            ours.update(b)
        np.testing.assert_array_equal(obs.histogram.numpy(), ours.hist)
        scale, zp = obs.calculate_qparams()
        rule = affine_params_torch if qscheme == torch.per_tensor_affine else symmetric_params_torch
        s, z = rule(*ours.range(), qmin, qmax)
        np.testing.assert_array_equal(_bits32(scale.numpy()), _bits32(s))
        assert int(zp.item()) == int(z[0])


# ---------------------------------------------------------------------------------------------------------
# onnxruntime.quantization (quant_utils.py compute_scale_zp), numerics.md B.5

ORT_TYPES = [(TensorProto.UINT8, 8, False), (TensorProto.INT8, 8, True), (TensorProto.UINT16, 16, False),
             (TensorProto.INT16, 16, True), (TensorProto.INT4, 4, True), (TensorProto.UINT4, 4, False)]


@pytest.mark.parametrize("qtype,bits,signed", ORT_TYPES)
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("reduce_range", [False, True])
def test_onnxruntime_compute_scale_zp(rng, qtype, bits, signed, symmetric, reduce_range):
    scheme = QuantScheme(bits=bits, signed=signed, symmetric=symmetric, reduce_range=reduce_range,
                         params_rule="onnxruntime")
    assert scheme.qrange() == onnxruntime_qrange(bits, signed, symmetric, reduce_range)
    for x in _random_tensors(rng, 150) + [np.zeros(3, np.float32), np.full(3, 2.5, np.float32)]:
        zp, scale = compute_data_quant_params(x, qtype, symmetric, reduce_range)
        p = params_from_tensor(scheme, x)
        np.testing.assert_array_equal(_bits32(scale), _bits32(p.scale))
        assert int(zp) == int(p.zero_point[0])


def test_onnxruntime_min_real_range(rng):
    for x in _random_tensors(rng, 50, size=8):
        x = x * np.float32(1e-4)
        zp, scale = compute_data_quant_params(x, TensorProto.UINT8, False, False, min_real_range=1e-4)
        s, z = affine_params_onnxruntime(x.min(), x.max(), 0, 255, min_real_range=1e-4)
        np.testing.assert_array_equal(_bits32(scale), _bits32(s))
        assert int(zp) == int(z[0])


@pytest.mark.parametrize("qtype,bits,signed", [(TensorProto.INT8, 8, True), (TensorProto.UINT8, 8, False),
                                                (TensorProto.INT4, 4, True), (TensorProto.UINT4, 4, False)])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("group_size", [4, 7, 32])
def test_onnxruntime_blocked_scales(rng, qtype, bits, signed, symmetric, group_size):
    # compute_scale_zp_blocked: [out, in] weights, blocks along the input axis (D.6).
    scheme = QuantScheme(bits=bits, signed=signed, symmetric=symmetric, granularity="per_group", axis=1,
                         group_size=group_size, params_rule="onnxruntime")
    for k in range(20):
        w = (rng.standard_normal((6, 30)) * 10.0 ** rng.uniform(-3, 2)).astype(np.float32)
        w[0, :group_size] = 0.0   # a degenerate block
        if k % 3 == 1:
            w = np.abs(w)
        zp, scale = compute_scale_zp_blocked(w, qtype, 1, group_size, symmetric)
        p = params_from_tensor(scheme, w)
        assert p.scale.shape == scale.shape
        np.testing.assert_array_equal(_bits32(scale), _bits32(p.scale))
        np.testing.assert_array_equal(np.asarray(zp).astype(np.int64), p.zero_point)


# ---------------------------------------------------------------------------------------------------------
# DynamicQuantizeLinear (ONNX spec; onnxruntime's CPU kernel)


def _dynamic_session():
    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])
    graph = helper.make_graph(
        [node], "dql", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [None]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, []),
         helper.make_tensor_value_info("z", TensorProto.UINT8, [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_dynamic_quantize_linear_parameters(rng):
    sess = _dynamic_session()
    cases = _random_tensors(rng, 500, size=37) + [np.zeros(5, np.float32),
                                                    np.array([-2.5, 252.5], np.float32),
                                                    np.array([-3.5, 251.5], np.float32)]
    for x in cases:
        _, s, z = sess.run(None, {"x": x})
        p = dynamic_quantize_params_uint8(x)
        np.testing.assert_array_equal(_bits32(s), _bits32(p.scale))
        assert int(z) == int(p.zero_point[0])


# ---------------------------------------------------------------------------------------------------------
# Entropy calibration: onnxruntime's HistogramCollector ("entropy") vs hwsim


def _ort_entropy(batches, num_bins, num_quantized_bins=128):
    hc = HistogramCollector("entropy", False, num_bins, num_quantized_bins, None, None)
    for b in batches:
        hc.collect({"t": b})
    return hc.compute_collection_result()["t"][:2]


@pytest.mark.parametrize("num_bins", [128, 2048])
def test_onnxruntime_entropy_reimplementation_is_exact(rng, num_bins, capsys):
    for seed in range(3 if num_bins == 128 else 1):
        r = np.random.default_rng(seed)
        batches = [(r.standard_normal(4000) * (1 + k) + 0.3 * seed).astype(np.float32) for k in range(3)]
        lo, hi = _ort_entropy(batches, num_bins)
        obs = OnnxruntimeEntropyObserver(num_bins, 128)
        for b in batches:
            obs.update(b)
        assert obs.range() == (float(lo), float(hi))


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("percentile", [99.999, 99.0])
def test_onnxruntime_percentile_reimplementation_is_exact(symmetric, percentile):
    for seed in range(3):
        r = np.random.default_rng(seed)
        shift = 0.5 * seed - 0.5
        batches = [(r.standard_normal(3000) * (1 + k) + shift).astype(np.float32) for k in range(3)]
        if seed == 2:
            batches = [np.abs(b) for b in batches]  # one-sided data: the clip to the observed min shows
        hc = HistogramCollector("percentile", symmetric, 2048, None, percentile, None)
        obs = OnnxruntimePercentileObserver(percentile, symmetric, 2048)
        for b in batches:
            hc.collect({"t": b})
            obs.update(b)
        lo, hi = hc.compute_collection_result()["t"][:2]
        assert obs.range() == (float(lo), float(hi))


def test_tensorrt_kl_vs_onnxruntime_entropy(rng, capsys):
    """The two entropy calibrators are different algorithms; this records how far apart they land.

    hwsim's KLObserver is TensorRT's (|x| histogram, thresholds from bin 128 up, Q spread over non-empty
    bins); onnxruntime centres a signed histogram, truncates Q to integers and smooths both distributions.
    The check: both thresholds lie within the data, and on Gaussian data they agree within 35 % of max|x|.
    """
    diffs = []
    for seed in range(2):
        r = np.random.default_rng(100 + seed)
        batches = [(r.standard_normal(20_000) * (1 + 0.5 * k)).astype(np.float32) for k in range(3)]
        amax = max(float(np.abs(b).max()) for b in batches)
        lo, hi = _ort_entropy(batches, 2048)
        ort_t = max(-float(lo), float(hi))
        kl = KLObserver()
        for b in batches:
            kl.update(b)
        t = kl.threshold()
        assert 0 < t <= amax and 0 < ort_t <= amax
        diffs.append((t - ort_t) / amax)
    with capsys.disabled():
        print(f"\nKL (TensorRT) minus onnxruntime entropy threshold, fraction of max|x|: "
              f"{', '.join(f'{d:+.3f}' for d in diffs)}")
    assert max(abs(d) for d in diffs) < 0.35


# ---------------------------------------------------------------------------------------------------------
# End to end: onnxruntime.quantization.quantize_static on a one-Conv model (QDQ, per-channel int8 weights,
# uint8 activations, MinMax calibration). Every parameter it writes must be what hwsim computes.


def test_onnxruntime_quantize_static_conv(tmp_path, rng):
    from onnx import numpy_helper
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from hwsim.quant.observers import MinMaxObserver
    from hwsim.quant.scheme import bias_params_from_scales

    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)   # ONNX OIHW: output channel on axis 0 too
    b = rng.standard_normal(4).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "W", "B"], ["y"], pads=[1, 1, 1, 1])], "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 5, 5])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    src, dst = tmp_path / "m.onnx", tmp_path / "q.onnx"
    src.write_bytes(model.SerializeToString())
    batches = [(rng.standard_normal((1, 3, 5, 5)) * (1 + k) + 0.2 * k).astype(np.float32) for k in range(4)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": x} for x in batches])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    got = {i.name: numpy_helper.to_array(i) for i in onnx_load(dst).graph.initializer}

    opts = ort.SessionOptions()  # the calibrator runs its augmented model unoptimised; so must the reference
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    float_sess = ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])
    obs_x, obs_y = MinMaxObserver(), MinMaxObserver()
    for x in batches:
        obs_x.update(x)
        obs_y.update(float_sess.run(None, {"x": x})[0])
    act = QuantScheme(bits=8, signed=False, params_rule="onnxruntime")
    px, py = params_from_range(act, *obs_x.range()), params_from_range(act, *obs_y.range())
    for name, p in (("x", px), ("y", py)):
        np.testing.assert_array_equal(_bits32(got[f"{name}_scale"]), _bits32(p.scale))
        assert int(got[f"{name}_zero_point"]) == int(p.zero_point[0])

    wscheme = QuantScheme(symmetric=True, granularity="per_channel", axis=0, params_rule="onnxruntime")
    pw = params_from_tensor(wscheme, w)
    np.testing.assert_array_equal(_bits32(got["W_scale"]), _bits32(pw.scale))
    np.testing.assert_array_equal(got["W_zero_point"].astype(np.int64), pw.zero_point)
    qw = quantize(w, pw, "half_even", np.float32)
    np.testing.assert_array_equal(got["W_quantized"].astype(np.int64), qw)

    pb = bias_params_from_scales(px.scale, pw.scale, axis=0)
    np.testing.assert_array_equal(_bits32(got["B_quantized_scale"]), _bits32(pb.scale))
    qb = quantize(b, pb, "half_even", np.float64)
    np.testing.assert_array_equal(got["B_quantized"].astype(np.int64), qb)


# ---------------------------------------------------------------------------------------------------------
# End to end: PyTorch eager post-training quantization of a Conv (x86 engine, MinMax activations with
# reduce_range, default per-channel symmetric weights).


def test_torch_eager_ptq_conv(rng):
    import copy

    import torch.ao.quantization as tq
    from torch import nn

    from hwsim.quant.observers import MinMaxObserver

    torch.manual_seed(0)
    float_model = nn.Sequential(tq.QuantStub(), nn.Conv2d(3, 4, 3), tq.DeQuantStub()).eval()
    model = copy.deepcopy(float_model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.qconfig = tq.QConfig(activation=tq.MinMaxObserver.with_args(reduce_range=True),
                                   weight=tq.default_per_channel_weight_observer)
        tq.prepare(model, inplace=True)
        batches = [torch.from_numpy((rng.standard_normal((1, 3, 6, 6)) * (1 + k)).astype(np.float32))
                   for k in range(3)]
        obs_x, obs_y = MinMaxObserver(), MinMaxObserver()
        with torch.no_grad():
            for x in batches:
                model(x)
                obs_x.update(x.numpy())
                obs_y.update(float_model[1](x).numpy())
        tq.convert(model, inplace=True)

    act = QuantScheme(bits=8, signed=False, reduce_range=True, params_rule="torch")
    px, py = params_from_range(act, *obs_x.range()), params_from_range(act, *obs_y.range())
    assert act.qrange() == (0, 127)
    np.testing.assert_array_equal(_bits32(model[0].scale.numpy()), _bits32(px.scale))
    assert int(model[0].zero_point) == int(px.zero_point[0])
    np.testing.assert_array_equal(_bits32([model[1].scale]), _bits32(py.scale))
    assert int(model[1].zero_point) == int(py.zero_point[0])

    w = float_model[1].weight.detach().numpy().transpose(0, 2, 3, 1).copy()  # OIHW -> OHWI
    pw = params_from_tensor(TORCH_WEIGHTS, w)
    qw = model[1].weight()
    np.testing.assert_array_equal(_bits32(qw.q_per_channel_scales().numpy()), _bits32(pw.scale))
    got = qw.int_repr().numpy().transpose(0, 2, 3, 1).astype(np.int64)
    np.testing.assert_array_equal(got, quantize(w, pw, "half_even", np.float32, method="reciprocal_fma"))


@pytest.mark.parametrize("method,engine", [("divide", "onnxruntime"), ("reciprocal_fma", "torch")])
def test_quantize_methods_match_their_engines(rng, method, engine):
    # numerics.md section 7: onnxruntime QuantizeLinear divides; torch.quantize_per_tensor multiplies by the
    # float32 reciprocal with a fused add of the zero point. Ties are made likely by a scale with a long
    # mantissa and inputs that are near multiples of half a step.
    scale = np.float32(0.00214854861)
    zp = 3
    x = ((rng.integers(-300, 300, 20_000) + 0.5) * scale).astype(np.float32)
    x = np.concatenate([x, np.float32(0.273939937)[None]])  # the B.2 example: 127.5 vs 127.499992
    p = QuantParams(scale=np.array([scale]), zero_point=np.array([zp]), qmin=-128, qmax=127)
    ours = quantize(x, p, "half_even", np.float32, method=method)
    if engine == "torch":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = torch.quantize_per_tensor(torch.from_numpy(x), float(scale), zp, torch.qint8)
        ref = ref.int_repr().numpy()
    else:
        node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
        graph = helper.make_graph(
            [node], "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
            [helper.make_tensor_value_info("y", TensorProto.INT8, [None])],
            [helper.make_tensor("s", TensorProto.FLOAT, [], [float(scale)]),
             helper.make_tensor("z", TensorProto.INT8, [], [zp])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        ref = sess.run(None, {"x": x})[0]
    np.testing.assert_array_equal(ours, ref.astype(np.int64))
    # and the two methods do differ somewhere on this data (otherwise the test would prove nothing)
    other_method = "divide" if method != "divide" else "reciprocal_fma"
    other = quantize(x, p, "half_even", np.float32, method=other_method)
    assert np.any(other != ours)
