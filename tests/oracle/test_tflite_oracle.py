"""TFLite interpreter (ai-edge-litert) oracle: the committed .tflite models, imported by
hwsim.frontends.tflite and simulated by hwsim.emulate.simulator on their own quantization parameters (no
calibration), give the interpreter's integers tensor by tensor.

* ``arm_tflite`` against the reference kernels: op resolver ``BUILTIN_REF`` with
  ``experimental_preserve_all_tensors=True``, so every intermediate int8 tensor is readable and compared.
* ``arm_tflite_xnnpack`` against the default resolver (XNNPACK delegate applied). The interpreter then
  keeps only the graph's input and output tensors (``experimental_preserve_all_tensors`` would switch the
  default delegates off), so each model is repacked with every activation tensor declared a graph output
  (the delegated computation is unchanged: the original output is checked against the unmodified file)
  and compared tensor by tensor too.

Inputs: seeded samples drawn uniformly from each model's representative range (the range its converter
calibrated on, tools/gen_tflite_models.py, listed in tests/data/tflite/PROVENANCE.md), plus wider ones: for
int8-input models uniformly random int8 codes over the whole int8 range (saturating inputs), for the
float-input model 1.25 times the range (QUANTIZE clamps). At least 2^16 input values per model.
Per the pre-quantized contract, a model with an int8 input gets the codes q and hwsim gets (q − zp)·s,
which hwsim's entry QUANTIZE maps back to q exactly.
"""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from hwsim import _core, numerics
from hwsim.emulate.float_ref import run_float
from hwsim.emulate.simulator import ActQuant, quantize_for_target, quantize_tensor, simulate
from hwsim.frontends.tflite import import_tflite
from hwsim.targets import load_target
from tflite_engine import mismatches as _mismatches
from tflite_engine import run_interpreter

pytestmark = pytest.mark.oracle

DATA = Path(__file__).resolve().parents[1] / "data" / "tflite"

# Representative (calibration) range of each full-integer model (tools/gen_tflite_models.py, PROVENANCE.md).
RANGES = {
    "conv_valid": (-1.0, 1.0), "conv_same_relu": (-1.0, 1.0), "conv_s2_same_relu6": (-1.0, 1.0),
    "conv_s2_valid_relu": (-1.0, 1.0), "dw_same_relu6": (-1.0, 1.0), "dw_s2_valid": (-1.0, 1.0),
    "dw_mult2_same": (-1.0, 1.0), "fc": (-1.0, 1.0), "fc_relu": (-1.0, 1.0), "add": (-1.0, 1.0),
    "add_relu": (-1.0, 1.0), "avg_pool_valid": (-1.0, 1.0), "avg_pool_same": (-1.0, 1.0),
    "max_pool_same": (-1.0, 1.0), "logistic": (-6.0, 6.0), "tanh": (-3.0, 3.0), "softmax": (-4.0, 4.0),
    "hard_swish": (-5.0, 5.0), "leaky_relu": (-2.0, 2.0), "concat": (-1.0, 1.0), "mean": (-1.0, 1.0),
    "mini_net_float_io": (-1.0, 1.0), "mean_keepdims": (-2.0, 2.0), "pad_conv_reshape_fc": (-1.0, 1.0),
    "mul": (-1.0, 1.0), "conv_dilated_same_relu": (-1.0, 1.0),
}
QUANTIZED_MODELS = sorted(RANGES)
MIN_SAMPLES, MIN_VALUES = 64, 1 << 16
# SOFTMAX rounding ties are rare (the reference and the optimized kernel differ on 2 of 200,000 outputs):
# more rows for it.
MORE_VALUES = {"softmax": 1 << 18}

# Known gaps in code this test does not own (simulator kernels, target descriptions), each reproduced by an
# engine-fact test at the end of this file; strict, so that a fix shows up as XPASS. None open at present.
KNOWN_GAPS: dict[tuple[str, str], str] = {}


def _case(name: str, target: str):
    reason = KNOWN_GAPS.get((name, target))
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(name, marks=marks, id=name)


def _inputs(name: str, detail: dict) -> tuple[list[np.ndarray], np.ndarray]:
    """(engine feeds, one per sample, batch 1) and the float batch hwsim gets.

    At least ``MIN_SAMPLES`` samples and at least ``MIN_VALUES`` input values, so that a model with a tiny
    input (SOFTMAX over 10 values, FC over 32) still sees enough rows to meet a rare rounding tie; three
    quarters from the representative range, one quarter wider (float input: 1.25x the range, so QUANTIZE
    clamps; int8 input: uniform codes over the whole int8 range).
    """
    rng = np.random.default_rng(20261125 + sum(map(ord, name)))
    shape = tuple(int(d) for d in detail["shape"][1:])
    n = max(MIN_SAMPLES, -(-MORE_VALUES.get(name, MIN_VALUES) // int(np.prod(shape))))
    n_wide = n // 4
    lo, hi = RANGES[name]
    x = rng.uniform(lo, hi, size=(n - n_wide, *shape)).astype(np.float32)
    if detail["dtype"] == np.float32:
        wide = rng.uniform(1.25 * lo, 1.25 * hi, size=(n_wide, *shape)).astype(np.float32)
        x = np.concatenate([x, wide])
        return [x[i:i + 1] for i in range(len(x))], x
    scale, zp = detail["quantization"]
    q = np.clip(np.floor(x / np.float32(scale) + 0.5) + zp, -128, 127).astype(np.int8)
    q = np.concatenate([q, rng.integers(-128, 128, size=(n_wide, *shape)).astype(np.int8)])
    return [q[i:i + 1] for i in range(len(q))], ((q.astype(np.float32) - zp) * np.float32(scale))


def _run_engine(name: str, feeds: list[np.ndarray], *, reference: bool) -> dict[int, np.ndarray]:
    return run_interpreter(DATA / f"{name}.tflite", feeds, reference=reference)


@pytest.mark.parametrize("name", [_case(n, "arm_tflite") for n in QUANTIZED_MODELS])
def test_reference_kernels_tensor_by_tensor(name):
    g = import_tflite(DATA / f"{name}.tflite")
    qm = quantize_for_target(g, load_target("arm_tflite"))
    probe = Interpreter(model_path=str(DATA / f"{name}.tflite"))
    feeds, x = _inputs(name, probe.get_input_details()[0])
    engine = _run_engine(name, feeds, reference=True)
    ours = simulate(qm, x, keep_intermediates=True).integers
    compared, bad = [], []
    for tensor, idx in g.metadata["tflite"]["tensors"].items():
        if tensor not in ours or idx not in engine or engine[idx].dtype.kind not in "iu":
            continue
        compared.append(tensor)
        msg = _mismatches(ours[tensor], engine[idx])
        if msg:
            bad.append(f"'{tensor}': {msg}")
    assert set(g.outputs) <= set(compared), f"outputs not compared: {compared}"
    assert not bad, (f"{name}: {len(bad)} of {len(compared)} tensors differ from BUILTIN_REF:\n"
                     + "\n".join(bad))


def _with_all_outputs(name: str, tensors: list[int], tmp_path: Path) -> Path:
    """The model with ``tensors`` declared as extra graph outputs (the delegate must then write them)."""
    m = schema.ModelT.InitFromPackedBuf((DATA / f"{name}.tflite").read_bytes(), 0)
    sg = m.subgraphs[0]
    sg.outputs = np.array(list(sg.outputs) + [t for t in tensors if t not in set(sg.outputs)], np.int32)
    b = flatbuffers.Builder(4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path = tmp_path / f"{name}_all_outputs.tflite"
    path.write_bytes(bytes(b.Output()))
    return path


@pytest.mark.parametrize("name", [_case(n, "arm_tflite_xnnpack") for n in QUANTIZED_MODELS])
def test_xnnpack_tensor_by_tensor(name, tmp_path):
    """Default resolver (XNNPACK applied). Intermediate tensors are readable only as graph outputs, so the
    model is repacked with every activation tensor declared an output; the original output must come out
    the same as from the unmodified file."""
    g = import_tflite(DATA / f"{name}.tflite")
    qm = quantize_for_target(g, load_target("arm_tflite_xnnpack"))
    probe = Interpreter(model_path=str(DATA / f"{name}.tflite"))
    probe.allocate_tensors()
    feeds, x = _inputs(name, probe.get_input_details()[0])
    (out,) = probe.get_output_details()
    mapping = g.metadata["tflite"]["tensors"]
    inputs = {d["index"] for d in probe.get_input_details()}
    path = _with_all_outputs(name, [i for i in mapping.values() if i not in inputs], tmp_path)
    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    (inp,) = it.get_input_details()
    got: dict[int, list[np.ndarray]] = {}
    for feed in feeds:
        it.set_tensor(inp["index"], feed)
        it.invoke()
        for d in it.get_output_details():
            got.setdefault(d["index"], []).append(it.get_tensor(d["index"]).copy())
    engine = {i: np.concatenate(v) for i, v in got.items()}
    np.testing.assert_array_equal(engine[out["index"]],
                                  _run_engine(name, feeds, reference=False)[out["index"]])
    ours = simulate(qm, x, keep_intermediates=True).integers
    compared, bad = [], []
    for tensor, idx in mapping.items():
        if tensor not in ours or idx not in engine:
            continue
        e = engine[idx]
        if e.dtype == np.float32:  # DEQUANTIZE at the output: back to the integer codes (exact inverse)
            spec = g.quant[tensor]
            e = np.rint(e / np.float64(spec.scale[0])).astype(np.int64) + int(spec.zero_point[0])
        compared.append(tensor)
        msg = _mismatches(ours[tensor], e)
        if msg:
            bad.append(f"'{tensor}': {msg}")
    assert set(g.outputs) <= set(compared), f"outputs not compared: {compared}"
    assert not bad, (f"{name}: {len(bad)} of {len(compared)} tensors differ from XNNPACK:\n"
                     + "\n".join(bad))


# ---------------------------------------------------------------------------------------------------------
# LOGISTIC / TANH: hwsim's 256-entry table against the interpreter on every int8 input (numerics A.7 item 1)

LUT_FUNCS = {"logistic": ("logistic", lambda v: 1.0 / (1.0 + np.exp(-v))), "tanh": ("tanh", np.tanh)}


@pytest.mark.parametrize("reference", [True, False], ids=["BUILTIN_REF", "default"])
@pytest.mark.parametrize("name", sorted(LUT_FUNCS))
def test_lut_exhaustive(name, reference):
    path = str(DATA / f"{name}.tflite")
    kwargs = {"experimental_op_resolver_type": OpResolverType.BUILTIN_REF} if reference else {}
    it = Interpreter(model_path=path, num_threads=1, **kwargs)
    it.allocate_tensors()
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    assert int(np.prod(inp["shape"])) == 256  # the model's input holds every int8 code exactly once
    codes = np.arange(-128, 128, dtype=np.int8)
    it.set_tensor(inp["index"], codes.reshape(inp["shape"]))
    it.invoke()
    engine = it.get_tensor(out["index"]).ravel()
    (s_in, zp_in), (s_out, zp_out) = inp["quantization"], out["quantization"]
    fn, exact = LUT_FUNCS[name]
    table = _core.lut_tflite_int8(fn, np.float32(s_in), zp_in, np.float32(s_out), zp_out)
    ours = _core.apply_lut(codes, table)
    np.testing.assert_array_equal(ours, engine)
    # within one step of the real function (the clamp at 127 of an exact 1.0 is that one step)
    real = exact((codes.astype(np.float64) - zp_in) * np.float64(np.float32(s_in)))
    ideal = real / np.float64(np.float32(s_out)) + zp_out
    assert np.max(np.abs(ours.astype(np.float64) - ideal)) <= 1.0


# ---------------------------------------------------------------------------------------------------------
# float16-quantized model: a float graph (weights widened exactly), compared in float


def test_float16_model_float_reference():
    name = "fp16_conv_fc"
    g = import_tflite(DATA / f"{name}.tflite")
    it = Interpreter(model_path=str(DATA / f"{name}.tflite"),
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                     experimental_preserve_all_tensors=True, num_threads=1)
    it.allocate_tensors()
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    x = np.random.default_rng(20261125).uniform(-1, 1, size=(8, *inp["shape"][1:])).astype(np.float32)
    engine = []
    for i in range(len(x)):
        it.set_tensor(inp["index"], x[i:i + 1])
        it.invoke()
        engine.append(it.get_tensor(out["index"]).copy())
    # the interpreter's DEQUANTIZE outputs (the float32 weights it computes with) are the imported parameters
    model = schema.ModelT.InitFromPackedBuf((DATA / f"{name}.tflite").read_bytes(), 0)
    sg = model.subgraphs[0]
    dequantize = [op for op in sg.operators
                  if model.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.DEQUANTIZE]
    # weights AND biases are stored as float16 (numerics.md A.1 names only the weights)
    assert {sg.tensors[op.inputs[0]].type for op in dequantize} == {schema.TensorType.FLOAT16}
    dequantized = {sg.tensors[op.outputs[0]].name.decode() for op in dequantize}
    layers = [n for n in g.nodes if n.op in ("Conv2D", "Dense")]
    assert dequantized == {t for n in layers for t in n.inputs[1:]}
    for op in dequantize:  # the parameter is named after the DEQUANTIZE output (the float32 tensor)
        param = g.params[sg.tensors[op.outputs[0]].name.decode()]
        assert param.dtype == np.float32
        np.testing.assert_array_equal(param, it.get_tensor(int(op.outputs[0])))
    ours = run_float(g, {g.inputs[0].name: x})[g.outputs[0]]
    # float32 arithmetic in a different summation order: agreement to float rounding, not bit for bit
    np.testing.assert_allclose(ours, np.concatenate(engine), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# Engine facts behind the simulator's kernels: each op's formula (numerics.md section, or the measured rule
# where numerics.md has none) against the interpreter, on every int8 input (pair) where that is cheap.
# These pin down what a TFLite kernel in hwsim has to compute; hwsim's own _core kernels are used where
# they exist.

ALL_CODES = np.arange(-128, 128, dtype=np.int8)
PAIRS_A, PAIRS_B = (a.ravel().astype(np.int8) for a in np.meshgrid(ALL_CODES, ALL_CODES, indexing="ij"))


def _two_input_model(name: str, tmp_path: Path) -> Path:
    """The committed ``add``/``mul`` model with its 1x1 conv removed: the binary op reads two graph inputs."""
    m = schema.ModelT.InitFromPackedBuf((DATA / f"{name}.tflite").read_bytes(), 0)
    sg = m.subgraphs[0]
    (op,) = [o for o in sg.operators if len(o.inputs) == 2]
    sg.operators, sg.inputs = [op], np.array(op.inputs, np.int32)
    b = flatbuffers.Builder(4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path = tmp_path / f"{name}_two_inputs.tflite"
    path.write_bytes(bytes(b.Output()))
    return path


def _run_flat(path: Path, inputs: list[np.ndarray], *, reference: bool):
    """Run a model on flat int8 arrays, chunked to its input size; returns (output, inputs, output detail)."""
    kwargs = {"experimental_op_resolver_type": OpResolverType.BUILTIN_REF} if reference else {}
    it = Interpreter(model_path=str(path), num_threads=1, **kwargs)
    it.allocate_tensors()
    ins, (out,) = it.get_input_details(), it.get_output_details()
    size = int(np.prod(ins[0]["shape"]))
    total = inputs[0].size
    got = []
    for k in range(0, total, size):
        for d, a in zip(ins, inputs):
            it.set_tensor(d["index"], np.resize(a[k:k + size], size).reshape(d["shape"]))
        it.invoke()
        got.append(it.get_tensor(out["index"]).ravel()[:min(size, total - k)].copy())
    return np.concatenate(got), ins, out


def _qparams(d: dict) -> tuple[np.float32, int]:
    scale, zp = d["quantization"]
    return np.float32(scale), int(zp)


def _mbqm(x: np.ndarray, real: float, variant: str = "double") -> np.ndarray:
    m, e = _core.quantize_multiplier(float(real), single_rounding=variant == "single")
    flat = np.ascontiguousarray(np.asarray(x, np.int64).reshape(-1, 1), dtype=np.int32)
    y = _core.multiply_by_quantized_multiplier(flat, np.array([m], np.int32), np.array([e], np.int32),
                                               variant=variant)
    return y.reshape(np.shape(x)).astype(np.int64)


def test_add_all_pairs(tmp_path):
    """ADD on all 65,536 int8 pairs. Reference: hwsim's add_int8_tflite (numerics A.5). XNNPACK: not the
    reference formula on every pair (2 of 65,536 differ at these scales); reproduced by 20-bit multipliers
    m = rint(float32(s_i / s_out) · 2^k), k = 20 − floor(log2(max ratio)), one rounding
    ((Σ (q_i − zp_i)·m_i + 2^(k−1)) >> k) + zp_out (measured; not in numerics.md)."""
    path = _two_input_model("add", tmp_path)
    ref, ins, out = _run_flat(path, [PAIRS_A, PAIRS_B], reference=True)
    xnn, _, _ = _run_flat(path, [PAIRS_A, PAIRS_B], reference=False)
    (sa, za), (sb, zb), (so, zo) = _qparams(ins[0]), _qparams(ins[1]), _qparams(out)
    prm = numerics.tflite_add_params(sa, za, sb, zb, so, zo)
    ours = _core.add_int8_tflite(PAIRS_A, PAIRS_B, **prm, act_min=-128, act_max=127)
    np.testing.assert_array_equal(ours, ref)
    ra, rb = np.float32(sa / so), np.float32(sb / so)
    k = 20 - int(np.floor(np.log2(max(ra, rb))))
    ma, mb = (int(np.rint(np.float64(r) * 2.0**k)) for r in (ra, rb))
    acc = (PAIRS_A.astype(np.int64) - za) * ma + (PAIRS_B.astype(np.int64) - zb) * mb + (1 << (k - 1))
    np.testing.assert_array_equal(np.clip((acc >> k) + zo, -128, 127), xnn)


def test_mul_all_pairs(tmp_path):
    """MUL on all 65,536 int8 pairs. Reference: hwsim's mul_int8_tflite (one MBQM, numerics A.3). XNNPACK:
    float32 requantization of the integer product (rint(float32(p) · float32(s_a·s_b/s_out)) + zp_out,
    clamped first), as arm_tflite_xnnpack.yaml says."""
    path = _two_input_model("mul", tmp_path)
    ref, ins, out = _run_flat(path, [PAIRS_A, PAIRS_B], reference=True)
    xnn, _, _ = _run_flat(path, [PAIRS_A, PAIRS_B], reference=False)
    (sa, za), (sb, zb), (so, zo) = _qparams(ins[0]), _qparams(ins[1]), _qparams(out)
    prm = numerics.tflite_mul_params(sa, za, sb, zb, so, zo)
    ours = _core.mul_int8_tflite(PAIRS_A, PAIRS_B, **prm, act_min=-128, act_max=127)
    np.testing.assert_array_equal(ours, ref)
    prod = (PAIRS_A.astype(np.int64) - za) * (PAIRS_B.astype(np.int64) - zb)
    v = np.clip(prod.astype(np.float32) * np.float32(sa * sb / so), -128 - zo, 127 - zo)
    np.testing.assert_array_equal(np.rint(v) + zo, xnn)


def test_leaky_relu_all_codes():
    """LEAKY_RELU (alpha 0.2) on every int8 code. Reference: numerics A.7, two double-rounding MBQMs with
    identity = s_in/s_out and alpha·s_in/s_out, each ratio computed in float32 (LeakyReluPrepare multiplies
    and divides the float scales, then widens; the float64 ratios give other multipliers here but the same
    integers on every code). XNNPACK: 8-bit fixed point,
    zp_out + floor(((q − zp_in)·m + 128) / 256) with m = rint(256·s_in/s_out) for q ≥ zp_in, else
    rint(256·alpha·s_in/s_out) (float32 scales; measured, not in numerics.md)."""
    path = DATA / "leaky_relu.tflite"
    ref, (inp,), out = _run_flat(path, [ALL_CODES], reference=True)
    xnn, _, _ = _run_flat(path, [ALL_CODES], reference=False)
    (si, zi), (so, zo) = _qparams(inp), _qparams(out)
    d = ALL_CODES.astype(np.int64) - zi
    alpha = np.float32(0.2)
    pos = _mbqm(d, np.float32(si / so))
    neg = _mbqm(d, np.float32(np.float32(si * alpha) / so))
    np.testing.assert_array_equal(np.clip(np.where(d >= 0, pos, neg) + zo, -128, 127), ref)
    m = np.where(d >= 0, np.rint(256 * np.float64(np.float32(si / so))),
                 np.rint(256 * np.float64(np.float32(alpha * si / so)))).astype(np.int64)
    np.testing.assert_array_equal(np.clip(zo + ((d * m + 128) >> 8), -128, 127), xnn)


def test_hard_swish_all_codes():
    """HARD_SWISH on every int8 code: numerics A.8 (int16 fixed point, truncating final product), built from
    hwsim's int16 primitives; XNNPACK gives the same integers."""
    path = DATA / "hard_swish.tflite"
    ref, (inp,), out = _run_flat(path, [ALL_CODES], reference=True)
    xnn, _, _ = _run_flat(path, [ALL_CODES], reference=False)
    (si, zi), (so, zo) = _qparams(inp), _qparams(out)
    hires = np.float32(si * np.float32(1 / 128))

    def m16(real):  # QuantizeMultiplier, then DownScaleInt32ToInt16Multiplier (A.8)
        m, e = _core.quantize_multiplier(float(real))
        return (32767 if m >= 2**31 - 1 - 2**15 else (m + 2**15) >> 16), e

    (mo, eo), (mr, er) = m16(np.float32(hires / so)), m16(np.float32(hires / np.float32(3 / 32768)))

    def i16(a):
        return np.ascontiguousarray(a, dtype=np.int16)

    def sat16(a):
        return np.clip(a, -32768, 32767)

    v = i16((ALL_CODES.astype(np.int64) - zi) * 128)
    pre = _core.saturating_rounding_doubling_high_mul(v, i16(np.full(v.shape, mo))).astype(np.int64)
    r = v.astype(np.int64)
    if er > 0:
        r = sat16(r * 2 ** (er - 1))
    r = _core.saturating_rounding_doubling_high_mul(i16(r), i16(np.full(v.shape, mr))).astype(np.int64)
    if er > 0:
        r = sat16(r * 2)
    elif er < 0:
        r = _core.rounding_divide_by_pot(i16(r), -er).astype(np.int64)
    r = (r + 32768) >> 1
    p = _core.saturating_doubling_high_mul(i16(r), i16(pre))
    ours = np.clip(_core.rounding_divide_by_pot(p, -eo).astype(np.int64) + zo, -128, 127)
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_array_equal(xnn, ref)


def test_mean_over_hw():
    """MEAN over H, W of [1, 7, 7, 5] (49 values). Reference: numerics A.10 (M' = (M·2^sh) // N, double
    rounding). XNNPACK: float32 requantization of the centred sum,
    rint(float32(Σq − N·zp_in) · float32(s_in / (N·s_out))) + zp_out, clamped first (measured;
    numerics.md has none)."""
    path = DATA / "mean_keepdims.tflite"
    rng = np.random.default_rng(20261125)
    x = rng.integers(-128, 128, size=400 * 245).astype(np.int8)
    ref, (inp,), out = _run_flat(path, [x], reference=True)
    xnn, _, _ = _run_flat(path, [x], reference=False)
    (si, zi), (so, zo) = _qparams(inp), _qparams(out)
    n = 49
    total = x.reshape(-1, 49, 5).astype(np.int64).sum(axis=1).ravel() - n * zi
    m, e = _core.quantize_multiplier(float(np.float64(si) / np.float64(so)))
    sh = min(int(np.floor(np.log2(n))), 32, 31 + e)
    m2, e2 = (int(m) << sh) // n, e - sh
    flat = np.ascontiguousarray(total.reshape(-1, 1), dtype=np.int32)
    ours = _core.multiply_by_quantized_multiplier(flat, np.array([m2], np.int32), np.array([e2], np.int32),
                                                  variant="double").ravel().astype(np.int64)
    np.testing.assert_array_equal(np.clip(ours + zo, -128, 127), ref)
    v = np.clip(total.astype(np.float32) * np.float32(si / (np.float32(n) * so)), -128 - zo, 127 - zo)
    np.testing.assert_array_equal(np.rint(v) + zo, xnn)


def _srdhm(a, b) -> np.ndarray:
    a, b = np.broadcast_arrays(np.asarray(a, np.int64), np.asarray(b, np.int64))
    return _core.saturating_rounding_doubling_high_mul(np.ascontiguousarray(a, np.int32),
                                                       np.ascontiguousarray(b, np.int32)).astype(np.int64)


def _rdbp(x, n) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT with a per-element exponent (ties away from zero)."""
    x, n = np.broadcast_arrays(np.asarray(x, np.int64), np.asarray(n, np.int64))
    mask = (np.int64(1) << n) - 1
    return (x >> n) + ((x & mask) > (mask >> 1) + (x < 0))


def _sat_shl(x, n: int) -> np.ndarray:
    return np.clip(np.asarray(x, np.int64) << n, -(2**31), 2**31 - 1)


def _exp_on_negative_values(a: np.ndarray, int_bits: int) -> np.ndarray:
    """gemmlowp exp(a) for a <= 0 in Q(int_bits).(31 - int_bits), result in Q0.31."""
    frac = 31 - int_bits
    quarter = 1 << (frac - 2)
    a_mod = (a & (quarter - 1)) - quarter  # in [-1/4, 0)
    x = _sat_shl(a_mod, int_bits) + (1 << 28)  # Q0.31, plus 1/8: the Taylor expansion is around -1/8
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4_over_4 = _rdbp(_srdhm(x2, x2), 2)
    poly = _rdbp(_srdhm(x4_over_4 + x3, 715827883) + x2, 1)  # 715827883 = 1/3 in Q0.31
    result = 1895147668 + _srdhm(1895147668, x + poly)  # 1895147668 = exp(-1/8) in Q0.31
    remainder = a_mod - a
    # exp(-2^k) in Q0.31 for k = -2..4: multiply in for every set bit of the remainder
    for k, mult in zip(range(-2, 5), (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)):
        if int_bits > k:
            result = np.where(remainder & (1 << (frac + k)), _srdhm(result, mult), result)
    return np.where(a == 0, 2**31 - 1, result)


def _one_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    """gemmlowp 1/(1 + a) for a in [0, 1) in Q0.31 (Newton-Raphson, three steps), result in Q0.31."""
    s = a + (2**31 - 1)
    half = np.where(s >= 0, (s + 1) // 2, -((1 - s) // 2))  # RoundingHalfSum(a, 1)
    x = 1515870810 + _srdhm(half, -1010580540)  # 48/17 - 32/17·d in Q2.29
    for _ in range(3):
        x = x + _sat_shl(_srdhm(x, (1 << 29) - _srdhm(half, x)), 2)
    return _sat_shl(x, 1)


def _softmax_int8_fixed_point(q: np.ndarray, input_scale: float) -> np.ndarray:
    """Softmax over the last axis, output (1/256, -128): numerics A.9 second bullet (gemmlowp fixed point,
    PreprocessSoftmaxScaling with 5 integer bits, a Q12.19 sum, GetReciprocal)."""
    int_bits, acc_bits = 5, 12
    real = min(float(input_scale) * (1 << (31 - int_bits)), (1 << 31) - 1.0)
    m, shift = _core.quantize_multiplier(real)  # QuantizeMultiplierGreaterThanOne: shift >= 0
    diff_min = -int(np.floor(((1 << int_bits) - 1) * (1 << (31 - int_bits)) / (1 << shift)))
    d = q.astype(np.int64) - q.max(axis=-1, keepdims=True)
    exps = _exp_on_negative_values(_srdhm(d << shift, m), int_bits)
    inside = d >= diff_min
    total = np.where(inside, _rdbp(exps, acc_bits), 0).sum(axis=-1, keepdims=True)
    # count leading zeros of the (positive) int32 sum
    headroom = 32 - np.array([int(v).bit_length() for v in total.ravel()]).reshape(total.shape)
    recip = _one_over_one_plus_x(((total << headroom) & 0xFFFFFFFF) - 2**31)
    out = _rdbp(_srdhm(recip, exps), acc_bits - headroom + 31 - 8) - 128
    return np.clip(np.where(inside, out, -128), -128, 127)


def _softmax_int8_float_table(q: np.ndarray, input_scale: float, output_scale: float, output_zp: int):
    """Softmax, numerics A.9 first bullet: float32 exp table, float32 sum in order, RHAZ."""
    table = np.exp(-np.float32(input_scale) * np.arange(256, dtype=np.float32)).astype(np.float32)
    e = table[q.max(axis=-1, keepdims=True).astype(np.int64) - q.astype(np.int64)]
    total = np.zeros(q.shape[:-1] + (1,), np.float32)
    for j in range(q.shape[-1]):  # sequential float32 sum
        total = (total + e[..., j:j + 1]).astype(np.float32)
    p = (e * (np.float32(1) / (total * np.float32(output_scale)))).astype(np.float32)
    return np.clip(np.trunc(p + np.copysign(np.float32(0.5), p)) + output_zp, -128, 127)


def test_softmax_reference_is_fixed_point_and_default_is_float_table():
    """SOFTMAX over 10 values, 20,000 random rows. BUILTIN_REF runs the gemmlowp fixed-point softmax (numerics
    A.9 second bullet, which numerics.md attributes to TFLM); the default resolver (XNNPACK does not take it)
    runs the float32 table of A.9's first bullet. The two differ on 2 of 200,000 outputs here."""
    path = DATA / "softmax.tflite"
    q = np.random.default_rng(2).integers(-128, 128, size=(20000, 10)).astype(np.int8)
    ref, (inp,), out = _run_flat(path, [q.ravel()], reference=True)
    default, _, _ = _run_flat(path, [q.ravel()], reference=False)
    (si, _), (so, zo) = _qparams(inp), _qparams(out)
    assert (so, zo) == (np.float32(1 / 256), -128)
    np.testing.assert_array_equal(_softmax_int8_fixed_point(q, si).ravel(), ref)
    np.testing.assert_array_equal(_softmax_int8_float_table(q, si, so, zo).ravel(), default)


@pytest.mark.parametrize("target, reference", [("arm_tflite", True), ("arm_tflite_xnnpack", False)])
def test_quantize_ties(target, reference, tmp_path):
    """QUANTIZE (float32 -> int8) at exact ties k/2·s and one float32 step either side, plus random values:
    the reference rounds x / s half away from zero (numerics A.1), XNNPACK rounds x · (1/s) half to even
    (section 7); hwsim's entry quantization with each target's activation role gives the same codes."""
    m = schema.ModelT.InitFromPackedBuf((DATA / "mini_net_float_io.tflite").read_bytes(), 0)
    sg = m.subgraphs[0]
    (quantize,) = [op for op in sg.operators
                   if m.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.QUANTIZE]
    sg.operators, sg.outputs = [quantize], np.array(quantize.outputs, np.int32)  # the QUANTIZE alone
    b = flatbuffers.Builder(4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path = tmp_path / "quantize.tflite"
    path.write_bytes(bytes(b.Output()))
    probe = Interpreter(model_path=str(path))
    (out,) = probe.get_output_details()
    scale, zp = _qparams(out)
    ties = ((np.arange(-140, 140) + 0.5).astype(np.float32) * scale).astype(np.float32)
    x = np.concatenate([ties, np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf)),
                        np.random.default_rng(0).uniform(-1.2, 1.2, 20000).astype(np.float32)])
    kwargs = {"experimental_op_resolver_type": OpResolverType.BUILTIN_REF} if reference else {}
    it = Interpreter(model_path=str(path), num_threads=1, **kwargs)
    it.allocate_tensors()
    (inp,) = it.get_input_details()
    size = int(np.prod(inp["shape"]))
    engine = []
    for k in range(0, x.size, size):
        it.set_tensor(inp["index"], np.resize(x[k:k + size], size).reshape(inp["shape"]))
        it.invoke()
        engine.append(it.get_tensor(out["index"]).ravel()[:min(size, x.size - k)].copy())
    role = load_target(target).numerics.activations
    ours = quantize_tensor(x, ActQuant(scale=float(scale), zero_point=zp, qmin=-128, qmax=127), role)
    np.testing.assert_array_equal(ours, np.concatenate(engine))
