"""Generate the small ``.tflite`` models that hwsim's TFLite importer and oracle tests read.

This is a development tool: it needs TensorFlow, which is not a dependency of hwsim. Run it from the
repository root in a separate virtual environment::

    python3 -m venv /work/venv-tf && /work/venv-tf/bin/pip install tensorflow
    /work/venv-tf/bin/python tools/gen_tflite_models.py            # writes tests/data/tflite/

Every model is converted by ``tf.lite.TFLiteConverter.from_concrete_functions`` from a ``tf.function``
written with plain ``tf.nn`` ops (no Keras, so the op set does not depend on Keras' own lowering), with
weights drawn from a generator seeded per model (``SEED + index``) and a representative data set of
``CALIB_SAMPLES`` samples drawn from another seeded generator. The representative range of each model is
written into PROVENANCE.md (tests/oracle/test_tflite_oracle.py repeats it in ``RANGES`` and draws its
inputs from it).

Input/output type
    The 16x8 models (kinds ``int16x8`` and ``int16x8_float_io``) use the op set
    ``EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8`` (int16 activations, int8 weights, int64
    bias), with int16 input and output for the single-op ones and float32 ends for ``mini_net16_float_io``;
    they are written to the subfolder ``int16x8/`` (tests/oracle/test_tflite_int16x8_oracle.py reads them).
    The int16 LOGISTIC/TANH models take 65,536 values, so one input holds every int16 code exactly once;
    ``concat16`` and ``act_net16_float_io`` join branches of different scales, for which the converter writes
    requantizing int16 -> int16 QUANTIZE ops before the CONCATENATION.
    The single-op models are converted with ``inference_input_type = inference_output_type = tf.int8``:
    the model's input and output tensors are int8 and hold no QUANTIZE/DEQUANTIZE op, so a test feeds
    the engine integer codes directly (for LOGISTIC/TANH all 256 of them). The whole network
    ``mini_net_float_io`` keeps the converter's default float32 input and output, so the importer's
    handling of the QUANTIZE at the input and the DEQUANTIZE at the output is exercised by a real file.
    ``fp16_conv_fc`` is float16-quantized (``target_spec.supported_types = [tf.float16]``): weights are
    stored as float16 and dequantized by DEQUANTIZE ops, all arithmetic is float32.

Determinism
    Two runs with the same TensorFlow version write byte-identical files (the script checks this itself
    with ``--check``: it regenerates into a temporary folder and compares the bytes).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

SEED = 20261125
CALIB_SAMPLES = 64
OUT_DIR = Path("tests/data/tflite")
# kind -> subfolder of OUT_DIR (with its trailing slash); other kinds live in OUT_DIR itself
SUBDIRS = {"int16x8": "int16x8/", "int16x8_float_io": "int16x8/"}


def _w(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> tf.Variable:
    return tf.Variable(rng.normal(0.0, std, size=shape).astype(np.float32))


def _conv(x, w, b, stride, padding, act=None):
    y = tf.nn.bias_add(tf.nn.conv2d(x, w, strides=stride, padding=padding), b)
    return _act(y, act)


def _dw(x, w, b, stride, padding, act=None):
    y = tf.nn.bias_add(tf.nn.depthwise_conv2d(x, w, strides=[1, stride, stride, 1], padding=padding), b)
    return _act(y, act)


def _act(y, act):
    if act == "relu":
        return tf.nn.relu(y)
    if act == "relu6":
        return tf.nn.relu6(y)
    return y


# ---------------------------------------------------------------------------------------------------------
# One builder per case: (rng) -> (function of x, input shape, representative range (lo, hi), int8 io?)


def conv_case(kernel: int, stride: int, padding: str, act: str | None, cin: int = 3, cout: int = 8,
              hw: int = 9):
    def build(rng):
        w = _w(rng, (kernel, kernel, cin, cout), 0.3)  # TF HWIO
        b = _w(rng, (cout,), 0.2)
        return (lambda x: _conv(x, w, b, stride, padding, act)), (1, hw, hw, cin), (-1.0, 1.0)
    return build


def dw_case(stride: int, padding: str, act: str | None, mult: int = 1, c: int = 6, hw: int = 9):
    def build(rng):
        w = _w(rng, (3, 3, c, mult), 0.4)  # TF [KH, KW, C, multiplier]
        b = _w(rng, (c * mult,), 0.2)
        return (lambda x: _dw(x, w, b, stride, padding, act)), (1, hw, hw, c), (-1.0, 1.0)
    return build


def fc_case(act: str | None):
    def build(rng):
        w = _w(rng, (32, 16), 0.25)
        b = _w(rng, (16,), 0.2)
        return (lambda x: _act(tf.matmul(x, w) + b, act)), (1, 32), (-1.0, 1.0)
    return build


def add_case(act: str | None):
    # A residual add of two int8 activations (x and a 1x1 conv of x): ADD with its two inputs at
    # different scales, the graph keeps a single input.
    def build(rng):
        w = _w(rng, (1, 1, 8, 8), 0.5)
        b = _w(rng, (8,), 0.2)
        return (lambda x: _act(x + _conv(x, w, b, 1, "VALID"), act)), (1, 6, 6, 8), (-1.0, 1.0)
    return build


def pool_case(kind: str, kernel: int, stride: int, padding: str):
    def build(rng):
        fn = tf.nn.avg_pool2d if kind == "avg" else tf.nn.max_pool2d
        return (lambda x: fn(x, kernel, stride, padding)), (1, 9, 9, 4), (-1.0, 1.0)
    return build


def unary_case(fn, shape=(1, 8, 8, 4), rng_range=(-4.0, 4.0)):
    def build(rng):
        return fn, shape, rng_range
    return build


def concat_case():
    def build(rng):
        w1 = _w(rng, (1, 1, 4, 4), 0.5)
        b1 = _w(rng, (4,), 0.2)
        w2 = _w(rng, (3, 3, 4, 6), 0.3)
        b2 = _w(rng, (6,), 0.2)
        def fn(x):
            a, b = _conv(x, w1, b1, 1, "SAME", "relu"), _conv(x, w2, b2, 1, "SAME", "relu")
            return tf.concat([a, b], axis=3)
        return fn, (1, 6, 6, 4), (-1.0, 1.0)
    return build


def mean_case():
    def build(rng):
        w = _w(rng, (3, 3, 3, 8), 0.3)
        b = _w(rng, (8,), 0.2)
        return (lambda x: tf.reduce_mean(_conv(x, w, b, 1, "SAME", "relu"), axis=[1, 2])), (1, 7, 7, 3), \
            (-1.0, 1.0)
    return build


def mini_net(softmax: bool = True):
    def build(rng):
        w1, b1 = _w(rng, (3, 3, 3, 8), 0.3), _w(rng, (8,), 0.1)
        wd, bd = _w(rng, (3, 3, 8, 1), 0.3), _w(rng, (8,), 0.1)
        w2, b2 = _w(rng, (1, 1, 8, 8), 0.3), _w(rng, (8,), 0.1)
        w3, b3 = _w(rng, (3, 3, 8, 16), 0.2), _w(rng, (16,), 0.1)
        wf, bf = _w(rng, (16, 10), 0.3), _w(rng, (10,), 0.1)

        def fn(x):
            y = _conv(x, w1, b1, 2, "SAME", "relu6")                       # 16 -> 8
            r = _dw(y, wd, bd, 1, "SAME", "relu6")
            r = _conv(r, w2, b2, 1, "VALID")
            y = y + r                                                      # residual ADD
            y = tf.nn.max_pool2d(y, 2, 2, "VALID")                         # 8 -> 4
            y = _conv(y, w3, b3, 1, "SAME", "relu")
            y = tf.nn.avg_pool2d(y, 2, 2, "VALID")                         # 4 -> 2
            y = tf.reduce_mean(y, axis=[1, 2])                             # MEAN -> [1, 16]
            logits = tf.matmul(y, wf) + bf
            return tf.nn.softmax(logits) if softmax else logits
        return fn, (1, 16, 16, 3), (-1.0, 1.0)
    return build


def act_net():
    # 16x8 network through the int16 activation kernels: conv -> TANH and conv -> LOGISTIC branches joined by
    # CONCATENATION (different input scales: requantizing QUANTIZE ops), conv, MEAN, FULLY_CONNECTED, SOFTMAX
    def build(rng):
        w1, b1 = _w(rng, (3, 3, 3, 6), 0.4), _w(rng, (6,), 0.1)
        w2, b2 = _w(rng, (1, 1, 3, 4), 0.6), _w(rng, (4,), 0.1)
        w3, b3 = _w(rng, (3, 3, 10, 8), 0.3), _w(rng, (8,), 0.1)
        wf, bf = _w(rng, (8, 6), 0.5), _w(rng, (6,), 0.1)

        def fn(x):
            a = tf.tanh(_conv(x, w1, b1, 1, "SAME"))
            b = tf.sigmoid(_conv(x, w2, b2, 1, "SAME"))
            y = tf.concat([a, b], axis=3)
            y = _conv(y, w3, b3, 2, "SAME", "relu")                        # 8 -> 4
            y = tf.reduce_mean(y, axis=[1, 2])                             # MEAN -> [1, 8]
            return tf.nn.softmax(tf.matmul(y, wf) + bf)
        return fn, (1, 8, 8, 3), (-1.0, 1.0)
    return build


def fp16_case():
    def build(rng):
        w1, b1 = _w(rng, (3, 3, 3, 8), 0.3), _w(rng, (8,), 0.1)
        wf, bf = _w(rng, (8, 5), 0.3), _w(rng, (5,), 0.1)

        def fn(x):
            y = _conv(x, w1, b1, 1, "VALID", "relu")
            y = tf.reduce_mean(y, axis=[1, 2])
            return tf.matmul(y, wf) + bf
        return fn, (1, 6, 6, 3), (-1.0, 1.0)
    return build


def pad_reshape_case():
    # explicit PAD (asymmetric), a VALID conv on the padded tensor, RESHAPE to [1, -1], FULLY_CONNECTED
    def build(rng):
        w = _w(rng, (3, 3, 4, 6), 0.3)
        b = _w(rng, (6,), 0.1)
        wf, bf = _w(rng, (6 * 6 * 6, 8), 0.1), _w(rng, (8,), 0.1)

        def fn(x):
            y = tf.pad(x, [[0, 0], [1, 2], [2, 1], [0, 0]])
            y = _conv(y, w, b, 1, "VALID", "relu")
            return tf.matmul(tf.reshape(y, [1, -1]), wf) + bf
        return fn, (1, 5, 5, 4), (-1.0, 1.0)
    return build


def dilated_case():
    def build(rng):
        w = _w(rng, (3, 3, 3, 6), 0.3)
        b = _w(rng, (6,), 0.1)
        return (lambda x: tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w, 1, "SAME", dilations=2), b))), \
            (1, 10, 10, 3), (-1.0, 1.0)
    return build


def mul_case():
    # MUL of two int8 activations (x and a 1x1 conv of x), single graph input
    def build(rng):
        w = _w(rng, (1, 1, 4, 4), 0.5)
        b = _w(rng, (4,), 0.2)
        return (lambda x: x * _conv(x, w, b, 1, "VALID")), (1, 6, 6, 4), (-1.0, 1.0)
    return build


def _hard_swish(x):
    return x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0)


# name -> (builder, kind) with kind "int8" (int8 io), "int8_float_io" or "fp16"
CASES: dict[str, tuple] = {
    "conv_valid": (conv_case(3, 1, "VALID", None), "int8"),
    "conv_same_relu": (conv_case(3, 1, "SAME", "relu"), "int8"),
    "conv_s2_same_relu6": (conv_case(3, 2, "SAME", "relu6"), "int8"),
    "conv_s2_valid_relu": (conv_case(5, 2, "VALID", "relu", hw=11), "int8"),
    "dw_same_relu6": (dw_case(1, "SAME", "relu6"), "int8"),
    "dw_s2_valid": (dw_case(2, "VALID", None), "int8"),
    "dw_mult2_same": (dw_case(1, "SAME", None, mult=2, c=3), "int8"),
    "fc": (fc_case(None), "int8"),
    "fc_relu": (fc_case("relu"), "int8"),
    "add": (add_case(None), "int8"),
    "add_relu": (add_case("relu"), "int8"),
    "avg_pool_valid": (pool_case("avg", 2, 2, "VALID"), "int8"),
    "avg_pool_same": (pool_case("avg", 3, 2, "SAME"), "int8"),
    "max_pool_same": (pool_case("max", 3, 2, "SAME"), "int8"),
    "logistic": (unary_case(tf.sigmoid, rng_range=(-6.0, 6.0)), "int8"),
    "tanh": (unary_case(tf.tanh, rng_range=(-3.0, 3.0)), "int8"),
    "softmax": (unary_case(tf.nn.softmax, shape=(1, 10), rng_range=(-4.0, 4.0)), "int8"),
    "hard_swish": (unary_case(_hard_swish, rng_range=(-5.0, 5.0)), "int8"),
    "leaky_relu": (unary_case(lambda x: tf.nn.leaky_relu(x, alpha=0.2), rng_range=(-2.0, 2.0)), "int8"),
    "concat": (concat_case(), "int8"),
    "mean": (mean_case(), "int8"),
    "mini_net_float_io": (mini_net(), "int8_float_io"),
    "fp16_conv_fc": (fp16_case(), "fp16"),
    # appended after the first set so that the seeds (SEED + index) of the cases above stay as they were
    "mean_keepdims": (unary_case(lambda x: tf.reduce_mean(x, axis=[1, 2], keepdims=True), shape=(1, 7, 7, 5),
                                 rng_range=(-2.0, 2.0)), "int8"),
    "pad_conv_reshape_fc": (pad_reshape_case(), "int8"),
    "mul": (mul_case(), "int8"),
    "conv_dilated_same_relu": (dilated_case(), "int8"),
    # 16x8 quantization (int16 activations, int8 weights, int64 bias), appended so the seeds above stay
    "conv16_same_relu": (conv_case(3, 1, "SAME", "relu"), "int16x8"),
    "conv16_s2_valid_relu6": (conv_case(5, 2, "VALID", "relu6", hw=11), "int16x8"),
    "dw16_same_relu6": (dw_case(1, "SAME", "relu6"), "int16x8"),
    "dw16_mult2_s2_valid": (dw_case(2, "VALID", None, mult=2, c=3), "int16x8"),
    "fc16": (fc_case(None), "int16x8"),
    "fc16_relu": (fc_case("relu"), "int16x8"),
    "add16": (add_case(None), "int16x8"),
    "add16_relu": (add_case("relu"), "int16x8"),
    "avg_pool16_same": (pool_case("avg", 3, 2, "SAME"), "int16x8"),
    "max_pool16_same": (pool_case("max", 3, 2, "SAME"), "int16x8"),
    "mean16_keepdims": (unary_case(lambda x: tf.reduce_mean(x, axis=[1, 2], keepdims=True), shape=(1, 7, 7, 5),
                                   rng_range=(-2.0, 2.0)), "int16x8"),
    "pad_conv_reshape_fc16": (pad_reshape_case(), "int16x8"),
    "mini_net16_float_io": (mini_net(softmax=False), "int16x8_float_io"),
    # 16x8 activations, requantizing QUANTIZE before CONCATENATION and a network using them (appended so the
    # seeds above stay); the activation models hold 65,536 values so one input can carry every int16 code
    "logistic16": (unary_case(tf.sigmoid, shape=(1, 64, 64, 16), rng_range=(-6.0, 6.0)), "int16x8"),
    "tanh16": (unary_case(tf.tanh, shape=(1, 64, 64, 16), rng_range=(-3.0, 3.0)), "int16x8"),
    "softmax16": (unary_case(tf.nn.softmax, shape=(1, 64, 16), rng_range=(-4.0, 4.0)), "int16x8"),
    "concat16": (concat_case(), "int16x8"),
    "act_net16_float_io": (act_net(), "int16x8_float_io"),
    # 16x8 MUL and LEAKY_RELU (appended so the seeds above stay; leaky_relu16 holds every int16 code). There is
    # no 16x8 HARD_SWISH: TF 2.21's converter refuses it ("Quantization to 16x8-bit not yet supported for op:
    # 'HARD_SWISH'").
    "mul16": (mul_case(), "int16x8"),
    "leaky_relu16": (unary_case(lambda x: tf.nn.leaky_relu(x, alpha=0.2), shape=(1, 64, 64, 16),
                                rng_range=(-2.0, 2.0)), "int16x8"),
}


def convert(name: str, index: int) -> tuple[bytes, dict]:
    """Convert one case; returns the flatbuffer and the facts PROVENANCE.md records."""
    builder, kind = CASES[name]
    rng = np.random.default_rng(SEED + index)
    fn, shape, (lo, hi) = builder(rng)
    module = tf.Module()
    module.f = tf.function(fn, input_signature=[tf.TensorSpec(shape, tf.float32, name="x")])
    concrete = module.f.get_concrete_function()
    calib_seed = SEED + 1000 + index
    calib = np.random.default_rng(calib_seed).uniform(lo, hi, size=(CALIB_SAMPLES, *shape[1:]))
    calib = calib.astype(np.float32)

    def representative():
        for i in range(CALIB_SAMPLES):
            yield [calib[i:i + 1]]

    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "fp16":
        conv.target_spec.supported_types = [tf.float16]
    elif kind.startswith("int16x8"):
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        if kind == "int16x8":
            conv.inference_input_type = tf.int16
            conv.inference_output_type = tf.int16
    else:
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if kind == "int8":
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
    data = conv.convert()
    facts = {"kind": kind, "input_shape": shape, "range": (lo, hi), "weight_seed": SEED + index,
             "calib_seed": calib_seed if kind != "fp16" else None}
    return data, facts


def model_path(out: Path, name: str) -> Path:
    """Where a case's file lives: 16x8 models in the subfolder ``int16x8/`` (their own test reads them)."""
    return out / SUBDIRS.get(CASES[name][1], "") / f"{name}.tflite"


def write_all(out: Path, names: list[str]) -> dict[str, tuple[bytes, dict]]:
    out.mkdir(parents=True, exist_ok=True)
    done = {}
    for name in names:
        data, facts = convert(name, list(CASES).index(name))
        path = model_path(out, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        done[name] = (data, facts)
        print(f"{name}.tflite  {len(data)} bytes", file=sys.stderr)
    return done


def provenance(done: dict[str, tuple[bytes, dict]]) -> str:
    lines = [
        "# Provenance of the committed .tflite files",
        "",
        "Generated by `tools/gen_tflite_models.py` (read its docstring for the conventions) with",
        f"TensorFlow {tf.__version__} (numpy {np.__version__}, Python {sys.version.split()[0]}), command:",
        "",
        "```",
        f"python3 -m venv /work/venv-tf && /work/venv-tf/bin/pip install tensorflow=={tf.__version__}",
        "/work/venv-tf/bin/python tools/gen_tflite_models.py           # writes this folder",
        "/work/venv-tf/bin/python tools/gen_tflite_models.py --check   # regenerates, compares bytes",
        "```",
        "",
        f"Seeds: weights `default_rng({SEED} + index)`, representative data",
        f"`default_rng({SEED + 1000} + index)`, {CALIB_SAMPLES} samples drawn uniformly from the range below",
        "(none for the fp16 model); index is the case's position in `CASES`.",
        "Kinds: `int8` = full-integer model with int8 input and output; `int8_float_io` = full-integer model",
        "with float32 input/output (QUANTIZE/DEQUANTIZE at the ends); `fp16` = float16-quantized weights;",
        "`int16x8` = 16x8 model (op set EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8: int16",
        "activations, int8 weights, int64 bias) with int16 input and output; `int16x8_float_io` = the same with",
        "float32 input/output. The 16x8 files live in the subfolder `int16x8/`.",
        "",
        "| file | kind | input shape | representative range | weight seed | bytes | sha256 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (data, f) in done.items():
        lo, hi = f["range"]
        lines.append(f"| {SUBDIRS.get(f['kind'], '')}{name}.tflite | {f['kind']} | {list(f['input_shape'])} | [{lo}, {hi}] "
                     f"| {f['weight_seed']} | {len(data)} | `{hashlib.sha256(data).hexdigest()}` |")
    lines.append("")
    lines.append(f"Total: {sum(len(d) for d, _ in done.values())} bytes.")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--only", nargs="*", help="case names (default: all)")
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temporary folder and compare the bytes with --out")
    args = ap.parse_args(argv)
    names = args.only or list(CASES)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            done = write_all(Path(tmp), names)
        bad = [n for n, (d, _) in done.items() if model_path(args.out, n).read_bytes() != d]
        print("identical" if not bad else f"differ: {', '.join(bad)}")
        return 1 if bad else 0
    done = write_all(args.out, names)
    if not args.only:
        (args.out / "PROVENANCE.md").write_text(provenance(done))
    return 0


if __name__ == "__main__":
    sys.exit(main())
