"""Networks the validation anchors measure, built for costing (layer shapes only, zero weights).

The cost model reads shapes, never weight values, so these graphs carry zero parameters (no random draws, no
BatchNorm calibration) and build in a few milliseconds. BatchNorm is left out: every network here folds it
into the convolution before deployment, which is what the cost model estimates anyway.

- ``resnet50``, ``mobilenetv2``: the zoo's layouts (:mod:`hwsim.zoo.resnet50`, :mod:`hwsim.zoo.mobilenetv2`:
  Caffe ResNet-50 v1, 3.86 GMAC, the model the Vitis AI zoo measures; torchvision MobileNetV2, 0.30 GMAC),
  built by the zoo's own builders.
- ``resnet50_v15``: torchvision's ResNet-50 v1.5 (stride in the 3x3 convolution, 4.09 GMAC), what OpenVINO's
  benchmark table (perf-anchors 4) runs.
- ``resnet18``: ResNet-18 (1.82 GMAC), Vitis AI's cf_resnet18 (3.65 GOP, perf-anchors 1.1).
- ``mobilenet_v1_1.0``, ``mobilenet_v1_0.5``: MobileNet v1 at 224x224 (0.57 / 0.15 GMAC), TFLite's hosted
  quantized models (perf-anchors 3).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from hwsim.errors import HwsimError

__all__ = ["build", "MODELS"]


class _B:
    def __init__(self, name: str, size: int = 224) -> None:
        from hwsim.graph import GraphBuilder

        self.b = GraphBuilder(name)
        self.x = self.b.input("input", [1, size, size, 3])

    def conv(self, x: str, name: str, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
             act: str | None = "ReLU", pad: int | None = None) -> str:
        p = k // 2 if pad is None else pad
        w = self.b.param(f"{name}.weight", np.zeros((cout, k, k, cin // groups), np.float32))
        bias = self.b.param(f"{name}.bias", np.zeros((cout,), np.float32))
        attrs = {"strides": [stride, stride], "pads": [p] * 4, "groups": groups}
        y = self.b.node("Conv2D", [x, w, bias], attrs, name=name)
        if act:
            y = self.b.node(act, [y], name=f"{name}_{act.lower()}")
        return y

    def head(self, x: str, cin: int, classes: int = 1000) -> None:
        x = self.b.node("GlobalAvgPool", [x], name="pool")
        x = self.b.node("Flatten", [x], {"axis": 1}, name="flatten")
        w = self.b.param("fc.weight", np.zeros((classes, cin), np.float32))
        bias = self.b.param("fc.bias", np.zeros((classes,), np.float32))
        self.b.output(self.b.node("Dense", [x, w, bias], name="fc"))


def _resnet(name: str, blocks: list[int], bottleneck: bool):
    m = _B(name)
    x = m.conv(m.x, "conv1", 3, 64, 7, stride=2)
    x = m.b.node("MaxPool", [x], {"kernel": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, name="pool1")
    cin = 64
    for s, n in enumerate(blocks):
        width = 64 * 2 ** s
        cout = width * 4 if bottleneck else width
        for i in range(n):
            stride = 2 if (i == 0 and s > 0) else 1
            p = f"layer{s + 1}.{i}"
            sc = x
            if stride != 1 or cin != cout:
                sc = m.conv(x, f"{p}.downsample", cin, cout, 1, stride=stride, act=None)
            if bottleneck:  # v1.5: the stride sits in the 3x3
                y = m.conv(x, f"{p}.conv1", cin, width, 1)
                y = m.conv(y, f"{p}.conv2", width, width, 3, stride=stride)
                y = m.conv(y, f"{p}.conv3", width, cout, 1, act=None)
            else:
                y = m.conv(x, f"{p}.conv1", cin, width, 3, stride=stride)
                y = m.conv(y, f"{p}.conv2", width, width, 3, act=None)
            x = m.b.node("Add", [sc, y], name=f"{p}.add")
            x = m.b.node("ReLU", [x], name=f"{p}.relu")
            cin = cout
    m.head(x, cin)
    return m.b.build()


def _mobilenet_v1(alpha: float):
    m = _B(f"mobilenet_v1_{alpha}")
    c = lambda n: int(n * alpha)  # noqa: E731
    x = m.conv(m.x, "conv0", 3, c(32), 3, stride=2, act="ReLU6")
    cin = c(32)
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5
    plan += [(1024, 2), (1024, 1)]
    for i, (cout, s) in enumerate(plan, 1):
        x = m.conv(x, f"conv{i}_dw", cin, cin, 3, stride=s, groups=cin, act="ReLU6")
        x = m.conv(x, f"conv{i}_pw", cin, c(cout), 1, act="ReLU6")
        cin = c(cout)
    m.head(x, cin)
    return m.b.build()


def _zoo(module: str):
    def build():
        import importlib

        return importlib.import_module(f"hwsim.zoo.{module}").build(0).b.build()

    return build


MODELS: dict[str, Callable[[], object]] = {
    "resnet50": _zoo("resnet50"),
    "mobilenetv2": _zoo("mobilenetv2"),
    "resnet50_v15": lambda: _resnet("resnet50_v15", [3, 4, 6, 3], True),
    "resnet18": lambda: _resnet("resnet18", [2, 2, 2, 2], False),
    "mobilenet_v1_1.0": lambda: _mobilenet_v1(1.0),
    "mobilenet_v1_0.5": lambda: _mobilenet_v1(0.5),
}


def build(name: str):
    """The graph of anchor model ``name`` (a key of :data:`MODELS`)."""
    if name not in MODELS:
        raise HwsimError(f"unknown anchor model {name!r} (known: {', '.join(MODELS)})")
    return MODELS[name]()
