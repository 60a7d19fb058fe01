"""Build the small ONNX models of hwsim's ONNX import and onnxruntime oracle tests.

Float models come from small seeded torch modules (``torch.onnx.export``, NCHW, opset 17) and from hwsim
graphs written by :func:`hwsim.frontends.onnx_export.export_onnx` (NHWC with Transposes around channel-first
ops); quantized models from ``onnxruntime.quantization.quantize_static`` (QDQ or QOperator, activations
uint8, weights int8, per-channel on or off) with a seeded calibration reader. Everything is generated in a
few seconds, so the tests build the models at test time (tests/data/onnx/PROVENANCE.md) rather than commit
them; run this script to write them to a folder for inspection::

    python tools/gen_onnx_models.py OUT_DIR
"""

from __future__ import annotations

import io
import sys
import warnings
from pathlib import Path

import numpy as np

IMAGE = (1, 3, 16, 16)


def _torch_modules():
    import torch
    from torch import nn

    class SmallConvNet(nn.Module):
        """conv-BN-ReLU, max pool, conv-ReLU, flatten of a 4×4 map (NCHW order matters), linear."""

        def __init__(self) -> None:
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
            self.c2 = nn.Conv2d(8, 8, 3, padding=1, stride=2)
            self.fc = nn.Linear(8 * 4 * 4, 10)

        def forward(self, x):
            y = torch.relu(self.b1(self.c1(x)))
            y = nn.functional.max_pool2d(y, 2)
            y = torch.relu(self.c2(y))
            return self.fc(torch.flatten(y, 1))

    class Basic(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
            self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = torch.relu(self.b1(self.c1(x)))
            y = self.b2(self.c2(y))
            return torch.relu(y + (x if self.down is None else self.down(x)))

    class ResNetStyle(nn.Module):
        """ResNet-18 shape, small: 7×7/2 stem, max pool, basic blocks with 1×1 downsampling, GAP, fc."""

        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 7, 2, 3, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                                      nn.MaxPool2d(3, 2, 1))
            self.layers = nn.Sequential(Basic(16, 16, 1), Basic(16, 32, 2))
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            y = self.layers(self.stem(x))
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))

    class InvertedResidual(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
            super().__init__()
            mid = cin * expand
            self.use_res = stride == 1 and cin == cout
            self.body = nn.Sequential(
                nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(),
                nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(),
                nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.body(x)
            return x + y if self.use_res else y

    class MobileNetV2Style(nn.Module):
        """MobileNetV2 shape, small: 3×3/2 stem, inverted residuals (ReLU6, depthwise), 1×1, GAP, fc."""

        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
            self.blocks = nn.Sequential(InvertedResidual(16, 8, 1, 1), InvertedResidual(8, 12, 2, 6),
                                        InvertedResidual(12, 12, 1, 6))
            self.head = nn.Sequential(nn.Conv2d(12, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6())
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            y = self.head(self.blocks(self.stem(x)))
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))

    class TransformerBlock(nn.Module):
        """Single-head attention (q·kᵀ/4, softmax), LayerNorm, GELU MLP (the erf pattern), SiLU."""

        def __init__(self) -> None:
            super().__init__()
            self.q, self.k, self.ln = nn.Linear(16, 16), nn.Linear(16, 16), nn.LayerNorm(16)
            self.ff = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))

        def forward(self, x):
            a = torch.softmax(self.q(x) @ self.k(x).transpose(1, 2) / 4.0, dim=-1) @ x
            y = self.ln(x + a)
            return nn.functional.silu(y + self.ff(y))

    return {"small_convnet": SmallConvNet, "resnet_style": ResNetStyle, "mobilenetv2_style": MobileNetV2Style,
            "transformer_block": TransformerBlock}


#: Image models (input [batch, 3, 16, 16]) used by the quantization oracle tests.
TORCH_MODELS = ("small_convnet", "resnet_style", "mobilenetv2_style")
#: Every torch model, including the sequence model (input [batch, 5, 16]).
ALL_TORCH_MODELS = (*TORCH_MODELS, "transformer_block")
INPUT_SHAPES = {"transformer_block": (1, 5, 16)}


def torch_model(name: str, seed: int = 0):
    """Float ONNX model (onnx.ModelProto) of one of :data:`TORCH_MODELS`, exported by torch.onnx.export."""
    import onnx
    import torch

    torch.manual_seed(seed)
    module = _torch_modules()[name]().eval()
    # Non-trivial BatchNorm statistics so that folding matters.
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(INPUT_SHAPES.get(name, IMAGE)),), buf, dynamo=False,
                          opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return onnx.load_from_string(buf.getvalue())


def images(seed: int, n: int, shape=IMAGE) -> np.ndarray:
    """Seeded standard-normal inputs, batch ``n``."""
    return np.random.default_rng(seed).standard_normal((n, *shape[1:])).astype(np.float32)


def quantize(model, *, per_channel: bool, fmt: str = "qdq", calibration_seed: int = 100, samples: int = 8,
             activation: str = "uint8", extra_options: dict | None = None):
    """``quantize_static`` of a float model (u8 activations, s8 weights); returns the quantized ModelProto.

    ``extra_options`` go to quantize_static as they are (e.g. ``{"QDQKeepRemovableActivations": True}``).
    """
    import tempfile

    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    name = model.graph.input[0].name
    dims = [d.dim_value or 1 for d in model.graph.input[0].type.tensor_type.shape.dim]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{name: images(calibration_seed + i, 1, dims)} for i in range(samples)])

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "quant.onnx"
        onnx.save(model, str(src))
        import logging

        logging.getLogger().setLevel(logging.ERROR)
        quantize_static(str(src), str(dst), Reader(),
                        quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                        activation_type=QuantType.QUInt8 if activation == "uint8" else QuantType.QInt8,
                        weight_type=QuantType.QInt8, per_channel=per_channel,
                        extra_options=dict(extra_options or {}))
        return onnx.load(str(dst))


def main(argv: list[str]) -> int:
    import onnx

    if len(argv) != 1:
        print(__doc__)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for name in ALL_TORCH_MODELS:
        m = torch_model(name)
        onnx.save(m, str(out / f"{name}.onnx"))
        for pc in (False, True):
            for fmt in ("qdq", "qop"):
                q = quantize(m, per_channel=pc, fmt=fmt)
                onnx.save(q, str(out / f"{name}_{fmt}_{'pc' if pc else 'pt'}.onnx"))
    print(f"wrote {len(list(out.glob('*.onnx')))} models to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
