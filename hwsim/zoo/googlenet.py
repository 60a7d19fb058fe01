"""GoogLeNet (Inception v1) as in Caffe's bvlc_googlenet, without the auxiliary heads: 1.58 GMAC (3.16 GOP).

Caffe's channel counts, including its 5x5 convolutions in the second reduction branch (torchvision's layout
uses 3x3 there and has 1.50 GMAC). Every convolution has a bias and a ReLU, there is no BatchNorm. The two
LocalResponseNormalization layers (after pool1 and after conv2/3x3) are omitted: hwsim has no LRN op, and they
hold no MACs. Max pools between stages use Caffe's ceil mode, written as end padding
(112 -> 56 -> 28 -> 14 -> 7); pool5 (7x7 average) is a global average pool; dropout is an identity at
inference and is left out.
"""

from __future__ import annotations

from hwsim.zoo._common import NetBuilder, caffe_pool_pads

#: name: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection), from bvlc_googlenet's deploy.prototxt
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def _conv_relu(net: NetBuilder, x: str, name: str, cin: int, cout: int, k: int, stride: int = 1) -> str:
    x = net.conv(x, name, cin, cout, k, stride=stride, bias=True)
    return net.op("ReLU", x, f"{name}_relu")


def _pool(net: NetBuilder, x: str, name: str, size: int) -> tuple[str, int]:
    b, e = caffe_pool_pads(size, 3, 2)
    x = net.op("MaxPool", x, name, kernel=[3, 3], strides=[2, 2], pads=[b, b, e, e])
    return x, (size + b + e - 3) // 2 + 1


def _inception(net: NetBuilder, x: str, name: str, cin: int) -> tuple[str, int]:
    c1, c3r, c3, c5r, c5, cp = INCEPTION[name]
    p = f"inception_{name}"
    b1 = _conv_relu(net, x, f"{p}/1x1", cin, c1, 1)
    b2 = _conv_relu(net, x, f"{p}/3x3_reduce", cin, c3r, 1)
    b2 = _conv_relu(net, b2, f"{p}/3x3", c3r, c3, 3)
    b3 = _conv_relu(net, x, f"{p}/5x5_reduce", cin, c5r, 1)
    b3 = _conv_relu(net, b3, f"{p}/5x5", c5r, c5, 5)
    b4 = net.op("MaxPool", x, f"{p}/pool", kernel=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    b4 = _conv_relu(net, b4, f"{p}/pool_proj", cin, cp, 1)
    return net.op("Concat", [b1, b2, b3, b4], f"{p}/output", axis=-1), c1 + c3 + c5 + cp


def build(seed: int, size: int = 224, batch: int = 1) -> NetBuilder:
    """GoogLeNet (bvlc_googlenet, no aux heads, no LRN) on [batch, size, size, 3]."""
    net = NetBuilder("googlenet", seed)
    x = net.b.input("data", [batch, size, size, 3])
    x = _conv_relu(net, x, "conv1/7x7_s2", 3, 64, 7, stride=2)
    s = (size + 6 - 7) // 2 + 1
    x, s = _pool(net, x, "pool1/3x3_s2", s)
    x = _conv_relu(net, x, "conv2/3x3_reduce", 64, 64, 1)
    x = _conv_relu(net, x, "conv2/3x3", 64, 192, 3)
    x, s = _pool(net, x, "pool2/3x3_s2", s)
    c = 192
    for name in ("3a", "3b"):
        x, c = _inception(net, x, name, c)
    x, s = _pool(net, x, "pool3/3x3_s2", s)
    for name in ("4a", "4b", "4c", "4d", "4e"):
        x, c = _inception(net, x, name, c)
    x, s = _pool(net, x, "pool4/3x3_s2", s)
    for name in ("5a", "5b"):
        x, c = _inception(net, x, name, c)
    x = net.op("GlobalAvgPool", x, "pool5/7x7_s1")
    x = net.op("Flatten", x, "pool5/flatten", axis=1)
    x = net.dense(x, "loss3/classifier", c, 1000, init="xavier")
    net.b.output(x)
    return net
