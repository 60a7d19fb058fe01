"""TFLite 16x8 oracle: the committed 16x8 models (int16 activations, int8 weights, int64 bias; converter op set
EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8), imported by hwsim.frontends.tflite and simulated
on ``arm_tflite_int16x8`` with their own quantization parameters, give the interpreter's reference kernels'
integers (op resolver ``BUILTIN_REF``, every tensor preserved) tensor by tensor.

Inputs: seeded samples drawn uniformly from each model's representative range (tools/gen_tflite_models.py,
tests/data/tflite/PROVENANCE.md) plus a quarter wider: uniformly random codes over the whole int16 range for
int16-input models (saturating accumulators and clamps), 1.25 times the range for the float-input model
(QUANTIZE clamps). At least 2^16 input values per model. An int16-input model gets the codes q, hwsim gets
q·s, which hwsim's entry QUANTIZE maps back to q exactly (zero point 0).

The second part runs hwsim's own quantizer (float model -> arm_tflite_int16x8) on the bundled LeNet-5 and
checks the accuracy the command line reports; the third checks errors on bad input.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from hwsim.emulate.simulator import quantize_for_target, simulate
from hwsim.errors import HwsimError, ModelFormatError
from hwsim.frontends.tflite import import_tflite
from hwsim.graph import load_model
from hwsim.quant import scheme as qs
from hwsim.targets import load_target

pytestmark = pytest.mark.oracle

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "tflite" / "int16x8"
TARGET = "arm_tflite_int16x8"

# Representative range of each 16x8 model (tools/gen_tflite_models.py, PROVENANCE.md).
RANGES = {
    "conv16_same_relu": (-1.0, 1.0), "conv16_s2_valid_relu6": (-1.0, 1.0), "dw16_same_relu6": (-1.0, 1.0),
    "dw16_mult2_s2_valid": (-1.0, 1.0), "fc16": (-1.0, 1.0), "fc16_relu": (-1.0, 1.0), "add16": (-1.0, 1.0),
    "add16_relu": (-1.0, 1.0), "avg_pool16_same": (-1.0, 1.0), "max_pool16_same": (-1.0, 1.0),
    "mean16_keepdims": (-2.0, 2.0), "pad_conv_reshape_fc16": (-1.0, 1.0), "mini_net16_float_io": (-1.0, 1.0),
}
MODELS = sorted(RANGES)
MIN_SAMPLES, MIN_VALUES = 64, 1 << 16


def _inputs(name: str, detail: dict) -> tuple[list[np.ndarray], np.ndarray]:
    """(engine feeds, one per sample, batch 1) and the float batch hwsim gets."""
    rng = np.random.default_rng(20261125 + sum(map(ord, name)))
    shape = tuple(int(d) for d in detail["shape"][1:])
    n = max(MIN_SAMPLES, -(-MIN_VALUES // int(np.prod(shape))))
    n_wide = n // 4
    lo, hi = RANGES[name]
    x = rng.uniform(lo, hi, size=(n - n_wide, *shape)).astype(np.float32)
    if detail["dtype"] == np.float32:
        wide = rng.uniform(1.25 * lo, 1.25 * hi, size=(n_wide, *shape)).astype(np.float32)
        x = np.concatenate([x, wide])
        return [x[i:i + 1] for i in range(len(x))], x
    assert detail["dtype"] == np.int16, detail["dtype"]
    scale, zp = detail["quantization"]
    assert zp == 0  # 16x8 activations are symmetric (numerics.md A.1)
    q = np.clip(np.round(x / np.float32(scale)), -32768, 32767).astype(np.int16)
    q = np.concatenate([q, rng.integers(-32768, 32768, size=(n_wide, *shape)).astype(np.int16)])
    return [q[i:i + 1] for i in range(len(q))], q.astype(np.float32) * np.float32(scale)


def _run_reference(name: str, feeds: list[np.ndarray]) -> dict[int, np.ndarray]:
    it = Interpreter(model_path=str(DATA / f"{name}.tflite"),
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                     experimental_preserve_all_tensors=True, num_threads=1)
    it.allocate_tensors()
    (inp,) = it.get_input_details()
    wanted = [d["index"] for d in it.get_tensor_details()]
    got: dict[int, list[np.ndarray]] = {}
    for feed in feeds:
        it.set_tensor(inp["index"], feed)
        it.invoke()
        for idx in wanted:
            try:
                got.setdefault(idx, []).append(it.get_tensor(idx).copy())
            except ValueError:  # a tensor the interpreter does not keep
                pass
    return {idx: np.concatenate(v) for idx, v in got.items() if v[0].ndim and v[0].shape[0] == 1}


def _mismatches(ours: np.ndarray, engine: np.ndarray) -> str:
    if ours.shape != engine.shape:
        return f"shape {ours.shape} vs engine {engine.shape}"
    d = ours.astype(np.int64) - engine.astype(np.int64)
    bad = np.flatnonzero(d)
    if not bad.size:
        return ""
    i = np.unravel_index(bad[0], d.shape)
    return (f"{bad.size}/{d.size} differ (max |diff| {np.abs(d).max()}), first at {tuple(map(int, i))}: "
            f"hwsim {int(ours[i])}, engine {int(engine[i])}")


@pytest.mark.parametrize("name", MODELS)
def test_reference_kernels_tensor_by_tensor(name):
    g = import_tflite(DATA / f"{name}.tflite")
    qm = quantize_for_target(g, load_target(TARGET))
    assert not qm.fallbacks, [(p.node.name, p.reason) for p in qm.fallbacks]
    probe = Interpreter(model_path=str(DATA / f"{name}.tflite"))
    feeds, x = _inputs(name, probe.get_input_details()[0])
    engine = _run_reference(name, feeds)
    ours = simulate(qm, x, keep_intermediates=True).integers
    compared, bad = [], []
    for tensor, idx in g.metadata["tflite"]["tensors"].items():
        if tensor not in ours or idx not in engine or engine[idx].dtype.kind not in "iu":
            continue
        assert engine[idx].dtype == np.int16 and ours[tensor].dtype == np.int16, (tensor, engine[idx].dtype)
        compared.append(tensor)
        msg = _mismatches(ours[tensor], engine[idx])
        if msg:
            bad.append(f"'{tensor}': {msg}")
    assert set(g.outputs) <= set(compared), f"outputs not compared: {compared}"
    assert len(compared) >= 2
    assert not bad, (f"{name}: {len(bad)} of {len(compared)} tensors differ from BUILTIN_REF:\n" + "\n".join(bad))


def test_models_are_16x8():
    """Every model above is a real 16x8 file: int16 activations, and int8 weights with int64 biases in the
    weighted layers."""
    for name in MODELS:
        it = Interpreter(model_path=str(DATA / f"{name}.tflite"))
        types = {np.dtype(d["dtype"]) for d in it.get_tensor_details()}
        assert np.dtype(np.int16) in types and np.dtype(np.uint8) not in types, (name, types)
        if not name.startswith(("avg", "max", "mean")):
            assert {np.dtype(np.int8), np.dtype(np.int64)} <= types, (name, types)


def test_fully_connected_rounds_once_with_the_full_multiplier():
    """Engine fact behind the target's Dense entry: 16x8 FULLY_CONNECTED does not use the 16-bit int64
    MultiplyByQuantizedMultiplier overload of CONV_2D (numerics.md A.3) but (acc·M + 2^(30−e)) >> (31 − e)
    with the 31-bit M; the 16-bit form differs on a sizeable share of outputs."""
    from hwsim import _core

    name = "fc16"
    it = Interpreter(model_path=str(DATA / f"{name}.tflite"),
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                     experimental_preserve_all_tensors=True, num_threads=1)
    it.allocate_tensors()
    det = {d["name"]: d for d in it.get_tensor_details()}
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    w_d = next(d for d in det.values() if d["dtype"] == np.int8)
    b_d = next(d for d in det.values() if d["dtype"] == np.int64)
    w, b = it.get_tensor(w_d["index"]).astype(np.int64), it.get_tensor(b_d["index"]).astype(np.int64)
    s_x = np.float32(inp["quantization_parameters"]["scales"][0])
    s_y = np.float32(out["quantization_parameters"]["scales"][0])
    s_w = w_d["quantization_parameters"]["scales"].astype(np.float64)
    x = np.random.default_rng(7).integers(-32768, 32768, size=(400, w.shape[1])).astype(np.int16)
    engine = []
    for row in x:
        it.set_tensor(inp["index"], row[None])
        it.invoke()
        engine.append(it.get_tensor(out["index"])[0].astype(np.int64))
    engine = np.array(engine)
    acc = x.astype(np.int64) @ w.T + b
    m, e = _core.quantize_multiplier(np.float64(s_x) * s_w / np.float64(s_y))
    m, e = np.asarray(m, np.int64), np.asarray(e, np.int64)
    n = 31 - e
    single = np.clip((acc * m + (np.int64(1) << (n - 1))) >> n, -32768, 32767)
    m16 = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
    reduced = np.clip((acc * m16 + (np.int64(1) << (14 - e))) >> (15 - e), -32768, 32767)
    np.testing.assert_array_equal(single, engine)
    assert np.count_nonzero(reduced != engine) > engine.size // 50


def test_activation_scale_rule_matches_the_converter():
    """The converter's int16 activation scale is float32(max|x|) / 32767 (zero point 0): the input scale of
    each int16-input model equals hwsim's rule on that model's representative data (same seeds as the
    generator: default_rng(20262125 + index), 64 samples)."""
    tool = ROOT / "tools" / "gen_tflite_models.py"
    text = tool.read_text()
    cases = [line.split('"')[1] for line in text.splitlines() if line.strip().startswith('"') and '": (' in line]
    role = load_target(TARGET).numerics.activations
    sch = qs.QuantScheme(bits=role.bits, signed=role.signed, narrow=role.narrow, symmetric=role.symmetric,
                         rounding=role.rounding.lower(), params_rule=role.params_rule)
    for name in ("conv16_same_relu", "fc16", "mean16_keepdims"):
        index = cases.index(name)
        it = Interpreter(model_path=str(DATA / f"{name}.tflite"))
        (inp,) = it.get_input_details()
        lo, hi = RANGES[name]
        calib = np.random.default_rng(20262125 + index).uniform(lo, hi, size=(64, *inp["shape"][1:]))
        calib = calib.astype(np.float32)
        params = qs.params_from_range(sch, float(calib.min()), float(calib.max()))
        assert np.float32(params.scale.ravel()[0]) == np.float32(inp["quantization"][0]), name
        assert int(params.zero_point.ravel()[0]) == 0 == inp["quantization"][1]


# ------------------------------------------------------------------------------------------------------
# hwsim's own quantizer on a float model


def test_lenet_float_model_on_int16x8_keeps_float_accuracy():
    out = subprocess.run([sys.executable, "-m", "hwsim", "run", "--target", TARGET,
                          str(ROOT / "examples" / "lenet5.npz"), "--json"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    summary = json.loads(out.stdout)["summary"]
    assert summary["target"] == TARGET
    assert summary["fallback_layers"] == [] and summary["integer_layers"] == summary["layers"]
    assert abs(summary["accuracy_sim"] - summary["accuracy_float"]) <= 0.01
    assert summary["output_sqnr_db"] > 40  # int16 activations: far above the int8 targets' SQNR


def test_quantizer_gives_int16_symmetric_activations_and_int64_bias():
    g = load_model(ROOT / "examples" / "lenet5.npz")
    x = g.data["evaluation"]["x"]
    qm = quantize_for_target(g, load_target(TARGET), g.data["calibration"]["x"][:64].astype(np.float32))
    for t, a in qm.act.items():
        assert (a.zero_point, a.qmin, a.qmax, a.dtype) == (0, -32768, 32767, np.dtype(np.int16)), t
    weighted = [p for p in qm.plans if "w_int" in p.consts]
    assert weighted and all(p.consts["bias"].dtype == np.int64 and p.consts["w_int"].dtype == np.int8
                            and p.consts["w_int"].min() >= -127 for p in weighted)
    res = simulate(qm, x[:8].astype(np.float32))
    assert all(v.dtype == np.int16 for v in res.integers.values())
    # the float model -> pre-quantized graph round trip gives the same integers
    again = simulate(quantize_for_target(qm.to_graph(), load_target(TARGET)), x[:8].astype(np.float32))
    for name in g.outputs:
        np.testing.assert_array_equal(again.integers[name], res.integers[name])


# ------------------------------------------------------------------------------------------------------
# bad input


def test_int16_model_on_an_8bit_target_is_refused_or_exact(tmp_path):
    """A 16x8 model simulated on the int8 target must not be silently run with 8-bit arithmetic: its int64
    biases and int16 codes are refused with an error that names the layer."""
    g = import_tflite(DATA / "conv16_same_relu.tflite")
    with pytest.raises(HwsimError):
        qm = quantize_for_target(g, load_target("arm_tflite"))
        simulate(qm, np.zeros((1, 9, 9, 3), np.float32))


def test_truncated_16x8_file_names_the_file(tmp_path):
    bad = tmp_path / "fc16_truncated.tflite"
    bad.write_bytes((DATA / "fc16.tflite").read_bytes()[:600])
    with pytest.raises(ModelFormatError, match="fc16_truncated.tflite"):
        import_tflite(bad)


def test_wrong_input_shape_is_an_error():
    qm = quantize_for_target(import_tflite(DATA / "fc16.tflite"), load_target(TARGET))
    with pytest.raises(HwsimError, match="expected shape"):
        simulate(qm, np.zeros((2, 31), np.float32))
