"""TFLite 16x8 oracle: the committed 16x8 models (int16 activations, int8 weights, int64 bias; converter op set
EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8), imported by hwsim.frontends.tflite and simulated
on ``arm_tflite_int16x8`` with their own quantization parameters, give the interpreter's reference kernels'
integers (op resolver ``BUILTIN_REF``, every tensor preserved) tensor by tensor.

Inputs: seeded samples drawn uniformly from each model's representative range (tools/gen_tflite_models.py,
tests/data/tflite/PROVENANCE.md) plus a quarter wider: uniformly random codes over the whole int16 range for
int16-input models (saturating accumulators and clamps), 1.25 times the range for the float-input models
(QUANTIZE clamps). An int16-input model also gets every int16 code once (all 65,536, in as many samples as
its input needs: one for the LOGISTIC/TANH models). At least 2^16 input values per model. An int16-input model gets the codes q, hwsim gets
q·s, which hwsim's entry QUANTIZE maps back to q exactly (zero point 0).

The int16 activation kernels (LOGISTIC, TANH, SOFTMAX) and the requantizing QUANTIZE are then checked on
their own against the engine at other input scales (the model rewritten), on every int16 code, and against
the real functions. The next part runs hwsim's own quantizer (float model -> arm_tflite_int16x8) on the bundled LeNet-5 and
checks the accuracy the command line reports; the third checks errors on bad input.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from hwsim.emulate import op_kernels
from hwsim.emulate.simulator import quantize_for_target, simulate
from hwsim.errors import GraphError, HwsimError, ModelFormatError
from hwsim.frontends.tflite import import_tflite
from hwsim.graph import load_model
from hwsim.quant import scheme as qs
from hwsim.targets import load_target
from tflite_engine import mismatches as _mismatches
from tflite_engine import run_interpreter

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
    "logistic16": (-6.0, 6.0), "tanh16": (-3.0, 3.0), "softmax16": (-4.0, 4.0), "concat16": (-1.0, 1.0),
    "act_net16_float_io": (-1.0, 1.0), "mul16": (-1.0, 1.0), "leaky_relu16": (-2.0, 2.0),
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
    # every int16 code once (shuffled, padded with random codes to whole samples), then random codes
    size = int(np.prod(shape))
    every = rng.permutation(np.arange(-32768, 32768)).astype(np.int16)
    every = np.concatenate([every, rng.integers(-32768, 32768, size=-every.size % size).astype(np.int16)])
    q = np.concatenate([every.reshape(-1, *shape), q,
                        rng.integers(-32768, 32768, size=(n_wide, *shape)).astype(np.int16)])
    return [q[i:i + 1] for i in range(len(q))], q.astype(np.float32) * np.float32(scale)


def _run_reference(name: str, feeds: list[np.ndarray]) -> dict[int, np.ndarray]:
    return run_interpreter(DATA / f"{name}.tflite", feeds, reference=True)


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
        if not name.startswith(("avg", "max", "mean", "logistic", "tanh", "softmax", "leaky")):
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
# int16 LOGISTIC / TANH / SOFTMAX and the requantizing QUANTIZE, kernel by kernel against the engine

# Input scales for the single-op checks: the model's own (None), exact powers of two (LOGISTIC's and TANH's
# shift-only paths at 2^-12, TANH's at 2^-11 too), scales within CheckedLog2's 1e-3 of a power of two (taken as
# one) and just outside it, a range past the table's end (saturation, 40/32767 -> |x| up to 40), tiny and
# huge scales.
ACT_SCALES = [None, 2.0**-12, 2.0**-11, 2.0**-10, 2.0**-13, 2.0**-12 * 1.0005, 2.0**-11 * 0.9995,
              2.0**-12 * 1.002, 12 / 32767, 40 / 32767, 1e-6, 3.3e-5, 1.3]
INT16_ACT = {"logistic16": ("logistic", op_kernels.logistic_int16, lambda v: 1.0 / (1.0 + np.exp(-v))),
             "tanh16": ("tanh", op_kernels.tanh_int16, np.tanh)}
ALL_CODES = op_kernels.all_codes(np.int16)


def _rewritten(name: str, input_scale: float | None = None, output_scale: float | None = None,
               only: int | None = None) -> bytes:
    """The model's flatbuffer with its first operator's input/output scale replaced, optionally cut down to the
    operator of builtin code ``only`` (its tensors become the graph's input and output)."""
    m = schema.ModelT.InitFromPackedBuf((DATA / f"{name}.tflite").read_bytes(), 0)
    sg = m.subgraphs[0]
    if only is not None:
        (op,) = [o for o in sg.operators if m.operatorCodes[o.opcodeIndex].builtinCode == only]
        sg.operators, sg.inputs, sg.outputs = [op], np.array(op.inputs, np.int32), np.array(op.outputs, np.int32)
    op = sg.operators[0]
    if input_scale is not None:
        sg.tensors[op.inputs[0]].quantization.scale = [float(input_scale)]
    if output_scale is not None:
        sg.tensors[op.outputs[0]].quantization.scale = [float(output_scale)]
    b = flatbuffers.Builder(4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _engine_flat(content: bytes, codes: np.ndarray, reference: bool = True) -> tuple[np.ndarray, dict, dict]:
    """Run ``codes`` (flat, padded to whole inputs by repeating) through a one-input model; flat outputs."""
    kwargs = {"experimental_op_resolver_type": OpResolverType.BUILTIN_REF} if reference else {}
    it = Interpreter(model_content=content, num_threads=1, **kwargs)
    it.allocate_tensors()
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    size = int(np.prod(inp["shape"]))
    x = np.resize(codes, -(-codes.size // size) * size)
    got = []
    for k in range(0, x.size, size):
        it.set_tensor(inp["index"], x[k:k + size].reshape(inp["shape"]))
        it.invoke()
        got.append(it.get_tensor(out["index"]).ravel().copy())
    return np.concatenate(got)[:codes.size], inp, out


@pytest.mark.parametrize("reference", [True, False], ids=["BUILTIN_REF", "default"])
@pytest.mark.parametrize("scale", ACT_SCALES, ids=lambda s: "model" if s is None else f"{s:.4g}")
@pytest.mark.parametrize("name", sorted(INT16_ACT))
def test_int16_activation_all_codes(name, scale, reference):
    """Every int16 code through int16 LOGISTIC/TANH: hwsim's kernel (op_kernels.logistic_int16/tanh_int16 with
    int16_activation_params) equals the interpreter's reference kernel (reference_integer_ops), output
    (2^-15, 0) as the converter writes it. The 513-entry LUTPopulate table numerics.md A.7 names for int16 is
    not what the interpreter uses for these ops. The default resolver runs the same kernel except at
    power-of-two input scales (input multiplier 0), where it switches to optimized_ops::Logistic/Tanh (gemmlowp
    fixed point, not simulated: arm_tflite_int16x8 models BUILTIN_REF); there the two differ."""
    fn, kernel, _ = INT16_ACT[name]
    content = _rewritten(name, None if scale is None else np.float32(scale))
    engine, inp, out = _engine_flat(content, ALL_CODES, reference)
    assert out["quantization"] == (2.0**-15, 0) and inp["quantization"][1] == 0
    prm = op_kernels.int16_activation_params(fn, inp["quantization"][0])
    msg = _mismatches(kernel(ALL_CODES, **prm), engine)
    if not reference and prm["input_multiplier"] == 0:
        assert msg != ""
    else:
        assert msg == ""


# Largest |hwsim - exact| in output steps (2^-15) over every int16 code at the ACT_SCALES and the models' own
# scales (measured; the 8-bit tables stay within 1 step, tests/oracle/test_tflite_oracle.py::test_lut_exhaustive).
# The int16 kernels do not: LOGISTIC up to 1.39 steps, TANH up to 2.80, from the 256-entry table's
# interpolation and from the truncated input multiplier (trunc(s_in·12288·2^l), up to 2^-14 relative). A scale
# within CheckedLog2's tolerance (1e-3 in log2) of a power of two is run as that power of two, so the exact
# function is taken at the power of two there; against the stored scale the error is larger (4.6 steps for
# LOGISTIC, 8.7 for TANH at 0.05 % off 2^-12 / 2^-11). Bounds with a small margin:
INT16_ACT_FLOAT_BOUND = {"logistic16": 1.4, "tanh16": 2.85}


@pytest.mark.parametrize("name", sorted(INT16_ACT))
def test_int16_activation_tables_near_float(name):
    fn, kernel, exact = INT16_ACT[name]
    worst = 0.0
    for scale in ACT_SCALES[1:] + [6 / 32767, 3 / 32767, 4 / 32767]:
        s = np.float32(scale)
        prm = op_kernels.int16_activation_params(fn, s)
        ours = kernel(ALL_CODES, **prm).astype(np.float64)
        if prm["input_multiplier"] == 0:  # run as the power of two CheckedLog2 rounded it to
            s = 2.0 ** op_kernels.checked_log2(float(s))[0]
        with np.errstate(over="ignore"):
            ideal = exact(ALL_CODES.astype(np.float64) * np.float64(s)) * 32768.0
        worst = max(worst, float(np.max(np.abs(ours - np.minimum(ideal, 32767.0)))))
    assert 1.0 < worst <= INT16_ACT_FLOAT_BOUND[name]


def _softmax_rows(scale: float, rows: int, depth: int, seed: int) -> np.ndarray:
    """Rows of int16 codes: uniform over the whole int16 range, then normal with sigma 1 in real units."""
    rng = np.random.default_rng(seed)
    wide = rng.integers(-32768, 32768, size=(rows // 2, depth))
    near = np.round(rng.normal(0.0, 1.0, size=(rows - rows // 2, depth)) / np.float32(scale))
    return np.clip(np.concatenate([wide, near]), -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("reference", [True, False], ids=["BUILTIN_REF", "default"])
@pytest.mark.parametrize("scale", [None, 1 / 32767, 10 / 32767, 2.0**-12, 1e-5, 1e-3])
def test_int16_softmax_against_engine(scale, reference):
    """int16 SOFTMAX (numerics A.9 last bullet), 4,096 rows of 16 at several input scales, both resolvers:
    op_kernels.softmax_int16 with the exp table of softmax_int16_params equals the interpreter's
    reference_ops::SoftmaxInt16 (the int32 MBQM of the rescaled difference rounds twice, numerics A.3)."""
    content = _rewritten("softmax16", None if scale is None else np.float32(scale))
    probe = Interpreter(model_content=content)
    s_in = probe.get_input_details()[0]["quantization"][0]
    q = _softmax_rows(s_in, 4096, 16, 11)
    engine, _, out = _engine_flat(content, q.ravel(), reference)
    assert out["quantization"] == (2.0**-15, 0)
    table = op_kernels.softmax_int16_exp_table(**op_kernels.softmax_int16_params(s_in))
    assert _mismatches(op_kernels.softmax_int16(q, table).ravel(), engine) == ""


def test_int16_softmax_near_float():
    """Measured accuracy of int16 SOFTMAX (the engine's arithmetic): within 4.2 output steps (2^-15) of the real
    softmax while every difference to the row maximum stays inside the exp table's [-10, 0]; beyond it the
    table's clamp gives each such element exp(-10) (about 1.5 steps), which adds up in long rows (tens of
    steps at 16 values)."""
    rng = np.random.default_rng(5)
    for scale in (1 / 32767, 4 / 32767, 2.0**-12):
        s = np.float32(scale)
        table = op_kernels.softmax_int16_exp_table(**op_kernels.softmax_int16_params(s))
        for depth in (2, 10, 16, 100):
            x = rng.uniform(-5.0, 5.0, size=(2000, depth))  # spread below 10
            q = np.clip(np.round(x / s), -32768, 32767).astype(np.int16)
            real = q.astype(np.float64) * np.float64(s)
            e = np.exp(real - real.max(-1, keepdims=True))
            ideal = np.minimum(e / e.sum(-1, keepdims=True) * 32768.0, 32767.0)
            assert np.max(np.abs(op_kernels.softmax_int16(q, table) - ideal)) <= 4.2, (scale, depth)


# (input scale, output scale) pairs for the requantizing QUANTIZE: the model's own, ratio 1/3 (double rounding
# differs from a single rounding on a third of the codes), ratios above 1, power-of-two ratios (ties), equal.
REQUANT_SCALES = [(None, None), (1.0, 3.0), (3.0, 1.0), (1.0, 2.0), (5.0, 2.0), (2.0**-10, 3 * 2.0**-11),
                  (0.7, 0.7)]


@pytest.mark.parametrize("reference", [True, False], ids=["BUILTIN_REF", "default"])
@pytest.mark.parametrize("scales", REQUANT_SCALES, ids=lambda p: "model" if p[0] is None else f"{p[0]:g}-{p[1]:g}")
def test_int16_requantize_all_codes(scales, reference):
    """The int16 -> int16 QUANTIZE the converter writes before CONCATENATION, cut out of concat16, on every
    int16 code: zp_out + MBQM(q − zp_in, QuantizeMultiplier(s_in/s_out)) with the int32 MBQM, double rounding
    (numerics A.3), clamped, is the interpreter's Requantize on every code. Neither one rounding nor float
    requantization (x·s_in/s_out, rounded) is."""
    s_in, s_out = scales
    content = _rewritten("concat16", s_in, s_out, only=schema.BuiltinOperator.QUANTIZE)
    engine, inp, out = _engine_flat(content, ALL_CODES, reference)
    (si, zi), (so, zo) = inp["quantization"], out["quantization"]
    assert inp["dtype"] == out["dtype"] == np.int16 and zi == zo == 0

    def ours(variant):
        return op_kernels.requantize_tflite(ALL_CODES, si, zi, so, zo, -32768, 32767, np.int16, variant=variant)

    assert _mismatches(ours("double"), engine) == ""
    if (s_in, s_out) == (1.0, 3.0):
        exact = np.clip(np.round(ALL_CODES / 3.0), -32768, 32767)
        assert np.count_nonzero(exact != engine) > ALL_CODES.size // 4


def test_requantizing_quantize_imports_as_a_one_input_concat():
    """How the importer maps QUANTIZE int16 -> int16: a Concat of the one input under the QUANTIZE output's
    name and spec, which arm_tflite_int16x8 runs in integer form (the Concat declares fixed_point_double)."""
    g = import_tflite(DATA / "concat16.tflite")
    (req,) = [n for n in g.nodes if n.op == "Concat" and len(n.inputs) == 1]
    assert req.outputs[0].endswith("_requantized") and req.outputs[0] in g.metadata["tflite"]["tensors"]
    assert g.quant[req.outputs[0]].bits == 16
    assert g.quant[req.outputs[0]].scale[0] != g.quant[req.inputs[0]].scale[0]
    qm = quantize_for_target(g, load_target(TARGET))
    assert not qm.fallbacks and load_target(TARGET).op("Concat").requant.scheme == "fixed_point_double"


def test_int8_requantizing_quantize_is_reported(tmp_path):
    """A QUANTIZE inside the graph that is not int16 -> int16 (here made int16 -> int8) has no mapping: the
    importer names it instead of guessing an arithmetic."""
    m = schema.ModelT.InitFromPackedBuf((DATA / "concat16.tflite").read_bytes(), 0)
    sg = m.subgraphs[0]
    (op,) = [o for o in sg.operators if m.operatorCodes[o.opcodeIndex].builtinCode == schema.BuiltinOperator.QUANTIZE]
    sg.tensors[op.outputs[0]].type = schema.TensorType.INT8
    b = flatbuffers.Builder(4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path = tmp_path / "quantize_int8.tflite"
    path.write_bytes(bytes(b.Output()))
    with pytest.raises(GraphError, match="QUANTIZE"):
        import_tflite(path)


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
