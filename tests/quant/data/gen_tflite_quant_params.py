"""Record what the TFLite converter chooses as quantization parameters, for tests/quant/test_tflite_params.py.

Development tool: needs TensorFlow, which is not a dependency of hwsim. Run from the repository root in a
separate environment (the one tools/gen_tflite_models.py uses)::

    /work/venv-tf/bin/python tests/quant/data/gen_tflite_quant_params.py   # writes tflite_quant_params.npz

Each case is one Conv2D (+ bias) converted with ``tf.lite.TFLiteConverter.from_concrete_functions``,
``optimizations = [DEFAULT]``, a representative data set and ``TFLITE_BUILTINS_INT8`` (full-integer post-
training quantization, float input/output). For every case the archive holds the float weight (OHWI, as
TFLite stores it), the float bias, the calibration data, and what the converter wrote: the input tensor's
scale / zero point, the per-channel weight scales and int8 weights, the bias scales and int32 bias.
Arrays only (``np.load(..., allow_pickle=False)``); keys are ``<case>/<field>``; ``meta/tf_version``
records the converter version.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

OUT = Path(__file__).with_name("tflite_quant_params.npz")


def cases():
    """(name, weight HWIO, bias, calibration batches); seeded."""
    out = []
    for seed in range(8):
        rng = np.random.default_rng(1000 + seed)
        cin, cout = 3, 5
        w = (rng.standard_normal((3, 3, cin, cout)) * rng.uniform(0.05, 1.0)).astype(np.float32)
        if seed == 3:
            w[..., 2] = 0.0                      # an all-zero output channel
        if seed == 5:
            w[..., 1] *= np.float32(1e-7)        # a channel whose range is below 1e-6
        b = (rng.standard_normal(cout) * 0.3).astype(np.float32)
        shift = rng.uniform(-1.0, 1.0)
        data = [(rng.standard_normal((1, 6, 6, cin)) * rng.uniform(0.5, 3.0) + shift).astype(np.float32)
                for _ in range(8)]
        if seed == 4:
            data = [np.abs(d) for d in data]     # non-negative input: zero point = qmin
        out.append((f"conv{seed}", w, b, data))
    # input ranges chosen to hit the converter's special cases (the conv is then irrelevant)
    ones = np.ones((3, 3, 2, 2), np.float32)
    zeros_b = np.zeros(2, np.float32)
    for name, value in (("zeros", [0.0, 0.0]), ("tiny", [3e-7, 3e-7]), ("tinyneg", [-2e-7, -2e-7]),
                        ("tie25", [-0.625, 63.125]), ("tie35", [-0.875, 62.875])):
        x = np.resize(np.array(value, np.float32), (1, 6, 6, 2))
        out.append((name, ones, zeros_b, [x, x]))
    return out


def convert(w, b, data):
    wv, bv = tf.constant(w), tf.constant(b)
    shape = data[0].shape

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
    def f(x):
        return tf.nn.bias_add(tf.nn.conv2d(x, wv, strides=1, padding="VALID"), bv)

    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([d] for d in data)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    interp = tf.lite.Interpreter(model_content=conv.convert())
    interp.allocate_tensors()
    return interp


def main() -> int:
    arrays = {"meta/tf_version": np.array(tf.__version__)}
    for name, w, b, data in cases():
        interp = convert(w, b, data)
        found = {}
        for t in interp.get_tensor_details():
            qp = t["quantization_parameters"]
            if t["name"] == "tfl.quantize":
                found["input_scale"] = qp["scales"].astype(np.float32)
                found["input_zero_point"] = qp["zero_points"].astype(np.int64)
            elif t["dtype"] == np.int8 and len(t["shape"]) == 4 and t["shape"][0] == w.shape[3] \
                    and t["shape"][3] == w.shape[2] and qp["scales"].size == w.shape[3]:
                found["weight_scale"] = qp["scales"].astype(np.float32)
                found["weight_q"] = interp.get_tensor(t["index"]).astype(np.int64)
            elif t["dtype"] == np.int32:
                found["bias_scale"] = qp["scales"].astype(np.float32)
                found["bias_q"] = interp.get_tensor(t["index"]).astype(np.int64)
        missing = {"input_scale", "weight_scale", "weight_q", "bias_scale", "bias_q"} - set(found)
        if missing:
            print(f"{name}: converter output lacks {sorted(missing)}", file=sys.stderr)
            return 1
        arrays.update({f"{name}/{k}": v for k, v in found.items()})
        arrays[f"{name}/weight_ohwi"] = np.ascontiguousarray(w.transpose(3, 0, 1, 2))
        arrays[f"{name}/bias"] = b
        arrays[f"{name}/data"] = np.stack(data)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({len(arrays)} arrays, TensorFlow {tf.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
