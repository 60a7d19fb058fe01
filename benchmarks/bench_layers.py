"""Per-layer speed of hwsim's fused convolution + requantization against onnxruntime's QLinearConv.

Every layer is one single-node ONNX model (QLinearConv, uint8 activations with a non-zero zero point,
int8 per-channel symmetric weights, int32 bias), run by onnxruntime (ORT_ENABLE_ALL, the given threads)
and by hwsim (``conv2d_requantize_float`` with weights packed once, or ``depthwise_conv2d_requantize_float``
for groups == C), batch 1, on the same data. Both are timed in alternation; the figure is the median of
the repeats. ``same`` says whether both produced identical integers (they should: that is hwsim's job).

The shapes are MobileNetV2's and ResNet-50's (inputs HWC, ``pw`` = 1x1, ``dw`` = depthwise 3x3 pad 1,
``conv`` = 3x3 pad 1,
``stem`` = full convolution; ``--only resnet`` runs ResNet-50's shapes). GOPS counts 2 operations per multiply-accumulate.

Usage::

    python benchmarks/bench_layers.py [--threads 2] [--repeats 30] [--only pw|dw|stem|conv|resnet|mobilenet]
                                      [--isa auto] [--pool]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from hwsim import _core


@dataclass(frozen=True)
class Layer:
    kind: str  # "pw", "dw" or "stem"
    h: int
    w: int
    c: int
    o: int
    k: int = 1
    stride: int = 1
    pad: int = 0

    @property
    def name(self) -> str:
        s = f"{self.kind} {self.h}x{self.w}x{self.c}->{self.o}"
        if self.kind != "pw" or self.stride != 1:
            s += f" k{self.k} s{self.stride}"
        return s

    def out_hw(self) -> tuple[int, int]:
        oh = (self.h + 2 * self.pad - self.k) // self.stride + 1
        ow = (self.w + 2 * self.pad - self.k) // self.stride + 1
        return oh, ow

    def macs(self) -> int:
        oh, ow = self.out_hw()
        per_out = self.k * self.k * (1 if self.kind == "dw" else self.c)
        return oh * ow * self.o * per_out


MOBILENET_PW = [(112, 32, 16), (112, 16, 96), (56, 96, 24), (56, 24, 144), (56, 144, 24), (28, 144, 32),
                (28, 32, 192), (28, 192, 32), (14, 192, 64), (14, 64, 384), (14, 384, 64), (14, 384, 96),
                (14, 96, 576), (14, 576, 96), (7, 576, 160), (7, 160, 960), (7, 960, 160), (7, 960, 320),
                (7, 320, 1280)]
RESNET_PW = [(56, 64, 256), (56, 256, 64), (28, 512, 128), (14, 1024, 256), (7, 2048, 512)]
# The rest of ResNet-50 (v1, Caffe layout: the stride-2 convolutions are 1x1 stride 2): (H, C, O, stride)
RESNET_PW_MORE = [(56, 64, 64, 1), (56, 256, 128, 2), (56, 256, 512, 2), (28, 128, 512, 1), (28, 512, 256, 2),
                  (28, 512, 1024, 2), (14, 256, 1024, 1), (14, 1024, 512, 2), (14, 1024, 2048, 2),
                  (7, 512, 2048, 1)]
RESNET_3X3 = [(56, 64), (28, 128), (14, 256), (7, 512)]
DEPTHWISE = [(112, 32, 1), (112, 96, 2), (56, 144, 1), (56, 144, 2), (28, 192, 1), (28, 192, 2), (14, 384, 1),
             (14, 576, 1), (14, 576, 2), (7, 960, 1)]

LAYERS = ([Layer("pw", s, s, c, o) for s, c, o in MOBILENET_PW + RESNET_PW]
          + [Layer("pw", s, s, c, o, 1, st) for s, c, o, st in RESNET_PW_MORE]
          + [Layer("conv", s, s, c, c, 3, 1, 1) for s, c in RESNET_3X3]
          + [Layer("dw", s, s, c, c, 3, st, 1) for s, c, st in DEPTHWISE]
          + [Layer("stem", 224, 224, 3, 32, 3, 2, 1), Layer("stem", 224, 224, 3, 64, 7, 2, 3)])


def make_case(layer: Layer, rng: np.random.Generator) -> dict:
    """Random quantized operands of one layer (the same numbers go to both engines)."""
    cg = 1 if layer.kind == "dw" else layer.c
    w = rng.integers(-127, 128, (layer.o, layer.k, layer.k, cg), dtype=np.int8)  # OHWI
    x = rng.integers(0, 256, (1, layer.h, layer.w, layer.c), dtype=np.uint8)  # NHWC
    x_scale, y_scale = np.float32(0.02), np.float32(0.05 * np.sqrt(layer.k * layer.k * cg))
    w_scale = rng.uniform(0.001, 0.01, layer.o).astype(np.float32)
    bias = rng.integers(-5000, 5000, layer.o, dtype=np.int32)
    return {"x": x, "w": w, "x_zp": 117, "x_scale": x_scale, "w_scale": w_scale, "y_scale": y_scale,
            "y_zp": 131, "bias": bias}


def ort_runner(layer: Layer, case: dict, threads: int):
    """A callable running the layer as a one-node QLinearConv model in onnxruntime; returns NHWC uint8."""
    groups = layer.c if layer.kind == "dw" else 1
    w_oihw = np.ascontiguousarray(case["w"].transpose(0, 3, 1, 2))
    inits = [
        helper.make_tensor("xs", TensorProto.FLOAT, [], [float(case["x_scale"])]),
        helper.make_tensor("xz", TensorProto.UINT8, [], [case["x_zp"]]),
        onnx.numpy_helper.from_array(w_oihw, "w"),
        onnx.numpy_helper.from_array(case["w_scale"], "ws"),
        onnx.numpy_helper.from_array(np.zeros(layer.o, np.int8), "wz"),
        helper.make_tensor("ys", TensorProto.FLOAT, [], [float(case["y_scale"])]),
        helper.make_tensor("yz", TensorProto.UINT8, [], [case["y_zp"]]),
        onnx.numpy_helper.from_array(case["bias"], "b"),
    ]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                            kernel_shape=[layer.k, layer.k], strides=[layer.stride] * 2, pads=[layer.pad] * 4,
                            group=groups)
    oh, ow = layer.out_hw()
    graph = helper.make_graph([node], "layer",
                              [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, layer.c, layer.h, layer.w])],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, layer.o, oh, ow])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feed = {"x": np.ascontiguousarray(case["x"].transpose(0, 3, 1, 2))}
    return lambda: sess.run(None, feed)[0].transpose(0, 2, 3, 1)


def hwsim_runner(layer: Layer, case: dict, threads, isa: str):
    """A callable running the layer through hwsim's fused kernels (as the simulator calls them)."""
    scale = (np.float32(case["x_scale"]) * case["w_scale"] / np.float32(case["y_scale"])).astype(np.float32)
    fused = {"scale": scale, "zero_point": case["y_zp"], "qmin": 0, "qmax": 255, "bias": case["bias"],
             "out_dtype": np.uint8}
    x = case["x"]
    pads = [layer.pad] * 4
    if layer.kind == "dw":
        w = case["w"]
        return lambda: _core.depthwise_conv2d_requantize_float(
            x, w, [layer.stride] * 2, [1, 1], pads, depth_multiplier=1, x_zero_point=case["x_zp"],
            threads=threads, **fused)
    packed = _core.pack_conv_weights(case["w"])
    return lambda: _core.conv2d_requantize_float(
        x, packed, x_zero_point=case["x_zp"], strides=(layer.stride,) * 2, pads=tuple(pads), isa=isa,
        threads=threads, **fused)


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--only", choices=["pw", "dw", "stem", "conv", "resnet", "mobilenet"], default=None)
    ap.add_argument("--isa", default="auto", help="hwsim GEMM isa for pw/stem layers")
    ap.add_argument("--pool", action="store_true", help="hwsim runs on a persistent _core.Workers pool")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    resnet = {Layer("pw", s, s, c, o) for s, c, o in RESNET_PW}
    resnet |= {layer for layer in LAYERS if layer.kind == "conv" or (layer.kind == "pw" and layer.stride != 1)}
    resnet |= {Layer("pw", s, s, c, o, 1, st) for s, c, o, st in RESNET_PW_MORE}

    def wanted(layer: Layer) -> bool:
        if args.only is None:
            return True
        if args.only == "resnet":
            return layer in resnet
        if args.only == "mobilenet":
            return layer.k == 3 if layer.kind == "stem" else layer not in resnet
        return layer.kind == args.only

    layers = [layer for layer in LAYERS if wanted(layer)]
    pool = _core.Workers(args.threads) if args.pool else None
    print(f"threads={args.threads} repeats={args.repeats} isa={args.isa} pool={args.pool}")
    print(f"{'layer':32s} {'hwsim ms':>9s} {'ort ms':>8s} {'hw GOPS':>8s} {'ort GOPS':>9s} {'ort/hw':>7s} same")
    totals = {}
    for layer in layers:
        case = make_case(layer, rng)
        run_h = hwsim_runner(layer, case, pool if args.pool else args.threads, args.isa)
        run_o = ort_runner(layer, case, args.threads)
        same = bool(np.array_equal(run_h(), run_o()))
        th, to = [], []
        for _ in range(3):  # alternate, so both see the same machine load
            th.append(median_ms(run_h, max(1, args.repeats // 3)))
            to.append(median_ms(run_o, max(1, args.repeats // 3)))
        h_ms, o_ms = min(th), min(to)
        ops = 2 * layer.macs()
        print(f"{layer.name:32s} {h_ms:9.3f} {o_ms:8.3f} {ops / h_ms / 1e6:8.1f} {ops / o_ms / 1e6:9.1f} "
              f"{o_ms / h_ms:7.2f} {same}")
        tot = totals.setdefault(layer.kind, [0.0, 0.0])
        tot[0] += h_ms
        tot[1] += o_ms
    for kind, (h_ms, o_ms) in totals.items():
        print(f"total {kind:26s} {h_ms:9.3f} {o_ms:8.3f} {'':8s} {'':9s} {o_ms / h_ms:7.2f}")


if __name__ == "__main__":
    main()
