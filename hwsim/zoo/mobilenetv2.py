"""MobileNetV2 1.0 at 224x224 in torchvision's layout: 0.30 GMAC (conv + fully connected).

conv 3x3/2 -> 32, BN, ReLU6; 17 inverted-residual blocks (expand 1x1 + BN + ReLU6 when the expansion t > 1,
depthwise 3x3 + BN + ReLU6, linear projection 1x1 + BN, identity residual when stride 1 and channels match);
conv 1x1 -> 1280, BN, ReLU6; global average pool; fully connected 1000. Padding is symmetric (k // 2), as in
torchvision; depthwise convolutions are Conv2D with groups == channels. The projection BatchNorm of a residual
block has gamma near 0.25 (see ``NetBuilder.bn``).
"""

from __future__ import annotations

from hwsim.zoo._common import NetBuilder

#: (expansion t, output channels c, repeats n, first stride s), from the MobileNetV2 paper, Table 2
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
            (6, 320, 1, 1)]


def _conv_bn(net: NetBuilder, x: str, name: str, cin: int, cout: int, k: int, stride: int = 1,
             groups: int = 1, relu6: bool = True, gamma_scale: float = 1.0) -> str:
    x = net.conv(x, f"{name}.conv", cin, cout, k, stride=stride, groups=groups)
    x = net.bn(x, f"{name}.bn", cout, gamma_scale=gamma_scale)
    if relu6:
        x = net.op("ReLU6", x, f"{name}.relu6")
    return x


def build(seed: int, size: int = 224, batch: int = 1) -> NetBuilder:
    """MobileNetV2 1.0 on [batch, size, size, 3]; returns the builder (graph not built yet)."""
    net = NetBuilder("mobilenetv2", seed)
    x = net.b.input("input", [batch, size, size, 3])
    x = _conv_bn(net, x, "features.0", 3, 32, 3, stride=2)
    cin, idx = 32, 1
    for t, c, n, s in SETTINGS:
        for i in range(n):
            stride = s if i == 0 else 1
            name = f"features.{idx}"
            hidden = cin * t
            y = x
            if t != 1:
                y = _conv_bn(net, y, f"{name}.expand", cin, hidden, 1)
            y = _conv_bn(net, y, f"{name}.dw", hidden, hidden, 3, stride=stride, groups=hidden)
            residual = stride == 1 and cin == c
            y = _conv_bn(net, y, f"{name}.project", hidden, c, 1, relu6=False,
                         gamma_scale=0.25 if residual else 1.0)
            x = net.op("Add", [x, y], f"{name}.add") if residual else y
            cin, idx = c, idx + 1
    x = _conv_bn(net, x, f"features.{idx}", cin, 1280, 1)
    x = net.op("GlobalAvgPool", x, "avgpool")
    x = net.op("Flatten", x, "flatten", axis=1)
    x = net.dense(x, "classifier", 1280, 1000, init="xavier")
    net.b.output(x)
    return net
