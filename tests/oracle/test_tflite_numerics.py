"""TFLite (ai-edge-litert) oracle for the element-wise numerics: LOGISTIC/TANH lookup tables (all 256
codes; reference, builtin optimized and default XNNPACK resolvers), ADD (three MBQM) and MUL (builtin
reference and optimized kernels), run on the committed models in tests/data/tflite (PROVENANCE.md)."""

from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from hwsim import _core, numerics

pytestmark = pytest.mark.oracle

DATA = Path(__file__).resolve().parents[1] / "data" / "tflite"
RESOLVERS = {
    "reference": OpResolverType.BUILTIN_REF,
    "optimized": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    "xnnpack": OpResolverType.AUTO,
}


def _interpreter(name, resolver, preserve=False):
    # preserve_all_tensors (needed to read an op's inputs inside a model) keeps XNNPACK from taking
    # the graph, so the XNNPACK resolver is only used without it.
    it = Interpreter(model_path=str(DATA / f"{name}.tflite"), experimental_op_resolver_type=RESOLVERS[resolver],
                     experimental_preserve_all_tensors=preserve, num_threads=1)
    it.allocate_tensors()
    return it


def _quant(it, index):
    scale, zp = next(d for d in it.get_tensor_details() if d["index"] == index)["quantization"]
    return float(scale), int(zp)


@pytest.mark.parametrize("resolver", sorted(RESOLVERS))
@pytest.mark.parametrize("fn", ["logistic", "tanh"])
def test_lut_activation_all_codes(fn, resolver):
    """numerics.md A.7 item 1: LUTPopulateInt8 in float32 with libm expf/tanhf, RHAZ of y * (1/s_out)."""
    it = _interpreter(fn, resolver)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    x = np.arange(-128, 128, dtype=np.int8).reshape(inp["shape"])
    it.set_tensor(inp["index"], x)
    it.invoke()
    want = it.get_tensor(out["index"])
    s_in, zp_in = _quant(it, inp["index"])
    s_out, zp_out = _quant(it, out["index"])
    table = _core.lut_tflite_int8(fn, s_in, zp_in, s_out, zp_out)
    np.testing.assert_array_equal(_core.apply_lut(x, table), want)


def _binary_op(name, resolver, rng):
    """Runs the model on random codes; returns (a, b, out, (s_a, zp_a), (s_b, zp_b), (s_o, zp_o)) of its last op."""
    it = _interpreter(name, resolver, preserve=True)
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], rng.integers(-128, 128, inp["shape"]).astype(np.int8))
    it.invoke()
    op = it._get_ops_details()[-1]
    a_i, b_i = op["inputs"]
    o_i = op["outputs"][0]
    return (it.get_tensor(a_i), it.get_tensor(b_i), it.get_tensor(o_i), _quant(it, a_i), _quant(it, b_i),
            _quant(it, o_i))


@pytest.mark.parametrize("resolver", ["reference", "optimized"])
@pytest.mark.parametrize("name,relu", [("add", False), ("add_relu", True)])
def test_add(name, relu, resolver, rng):
    """numerics.md A.5: TFLite ADD builtin kernels, three MBQM with double rounding."""
    for _ in range(4):
        a, b, want, (sa, za), (sb, zb), (so, zo) = _binary_op(name, resolver, rng)
        p = numerics.tflite_add_params(sa, za, sb, zb, so, zo)
        got = _core.add_int8_tflite(a, b, act_min=zo if relu else -128, act_max=127, **p)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("resolver", ["reference", "optimized"])
def test_mul_builtin_kernels(resolver, rng):
    """TFLite MUL builtin kernels: zp_o + MBQM((q1 - zp1)(q2 - zp2), M, e), double rounding."""
    for _ in range(4):
        a, b, want, (sa, za), (sb, zb), (so, zo) = _binary_op("mul", resolver, rng)
        p = numerics.tflite_mul_params(sa, za, sb, zb, so, zo)
        np.testing.assert_array_equal(_core.mul_int8_tflite(a, b, **p), want)


def _same_padding(size, kernel, stride):
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


# Pool geometries as written in tools/gen_tflite_models.py (CASES): kernel, stride, TF padding.
POOLS = {"avg_pool_valid": (2, 2, "VALID"), "avg_pool_same": (3, 2, "SAME"), "max_pool_same": (3, 2, "SAME")}


@pytest.mark.parametrize("resolver", sorted(RESOLVERS))
@pytest.mark.parametrize("name", sorted(POOLS))
def test_pooling(name, resolver, rng):
    """numerics.md A.6: average of raw codes over in-bounds taps, rounded half away from zero; max of raw codes."""
    kernel, stride, pad = POOLS[name]
    it = _interpreter(name, resolver)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    x = rng.integers(-128, 128, inp["shape"]).astype(np.int8)
    it.set_tensor(inp["index"], x)
    it.invoke()
    want = it.get_tensor(out["index"])
    padding = (0, 0, 0, 0)
    if pad == "SAME":
        padding = _same_padding(x.shape[1], kernel, stride) + _same_padding(x.shape[2], kernel, stride)
    pool = _core.max_pool2d if name.startswith("max") else _core.avg_pool2d_tflite
    np.testing.assert_array_equal(pool(x, kernel, stride, padding), want)
