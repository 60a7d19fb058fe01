"""ResNet-50 v1 as in the Caffe model (Kaiming He's ResNet-50-deploy.prototxt) that the Vitis AI zoo measures.

Differences from torchvision's v1.5 layout (4.09 GMAC): the stride 2 of a downsampling bottleneck sits in its
FIRST 1x1 convolution (``branch2a``) and in the projection shortcut (``branch1``), not in the 3x3; pool1 is a
3x3/2 max pool in Caffe ceil mode, written here with one row/column of end padding so that 112 -> 56.
Total: 3.86 GMAC (7.72 GOP) of convolution and fully-connected work at 224x224. Layer names follow the Caffe
model (conv1, res2a_branch2a, bn2a_branch2a, ..., fc1000); convolutions have no bias (BatchNorm follows).
The last BatchNorm of each residual branch (bn*_branch2c) has gamma near 0.25, as in trained ResNets.
"""

from __future__ import annotations

from hwsim.zoo._common import NetBuilder, caffe_pool_pads

#: (stage name, blocks, bottleneck width, output channels, stride of the first block)
STAGES = [("2", 3, 64, 256, 1), ("3", 4, 128, 512, 2), ("4", 6, 256, 1024, 2), ("5", 3, 512, 2048, 2)]


def build(seed: int, size: int = 224, batch: int = 1) -> NetBuilder:
    """ResNet-50 v1 (Caffe) on [batch, size, size, 3]; returns the builder (graph not built yet)."""
    net = NetBuilder("resnet50", seed)
    x = net.b.input("data", [batch, size, size, 3])
    x = net.conv(x, "conv1", 3, 64, 7, stride=2, pad=3)
    x = net.bn(x, "bn_conv1", 64)
    x = net.op("ReLU", x, "conv1_relu")
    h = (size + 6 - 7) // 2 + 1
    b, e = caffe_pool_pads(h, 3, 2)
    x = net.op("MaxPool", x, "pool1", kernel=[3, 3], strides=[2, 2], pads=[b, b, e, e])
    cin = 64
    for stage, blocks, width, cout, first_stride in STAGES:
        for i in range(blocks):
            blk = f"{stage}{chr(ord('a') + i)}"
            stride = first_stride if i == 0 else 1
            if i == 0:
                sc = net.conv(x, f"res{blk}_branch1", cin, cout, 1, stride=stride, pad=0)
                sc = net.bn(sc, f"bn{blk}_branch1", cout)
            else:
                sc = x
            y = net.conv(x, f"res{blk}_branch2a", cin, width, 1, stride=stride, pad=0)
            y = net.bn(y, f"bn{blk}_branch2a", width)
            y = net.op("ReLU", y, f"res{blk}_branch2a_relu")
            y = net.conv(y, f"res{blk}_branch2b", width, width, 3, pad=1)
            y = net.bn(y, f"bn{blk}_branch2b", width)
            y = net.op("ReLU", y, f"res{blk}_branch2b_relu")
            y = net.conv(y, f"res{blk}_branch2c", width, cout, 1, pad=0)
            y = net.bn(y, f"bn{blk}_branch2c", cout, gamma_scale=0.25)
            x = net.op("Add", [sc, y], f"res{blk}")
            x = net.op("ReLU", x, f"res{blk}_relu")
            cin = cout
    x = net.op("GlobalAvgPool", x, "pool5")
    x = net.op("Flatten", x, "pool5_flatten", axis=1)
    x = net.dense(x, "fc1000", 2048, 1000, init="xavier")
    net.b.output(x)
    return net
