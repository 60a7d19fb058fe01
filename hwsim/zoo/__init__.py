"""hwsim's model zoo: reference networks as hwsim graphs.

``lenet5`` is trained for real (on scikit-learn's digits, by ``tools/train_lenet5.py``) and ships with its
calibration and evaluation sets. The others have the exact layer shapes, and so the MAC counts and memory
footprints, of well-known networks, with seeded random weights (He-normal) and BatchNorm statistics measured
on random inputs so that activations stay normalised; their metadata says
"untrained: for numerics and cost, not accuracy".

>>> from hwsim.zoo import list_models, build_model
>>> graph = build_model("resnet50", seed=0)
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from hwsim.errors import HwsimError
from hwsim.zoo._common import UNTRAINED, NetBuilder, calibrate_batchnorm, input_images

__all__ = ["build_model", "list_models"]

# Images used to measure BatchNorm statistics (standard normal, like mean/std-normalised ImageNet inputs).
_CALIB_BATCH = 2


def _image_model(module_name: str, description: str, figure: str) -> Callable[[int], object]:
    def build(seed: int):
        import importlib

        module = importlib.import_module(f"hwsim.zoo.{module_name}")
        net: NetBuilder = module.build(seed)
        graph = net.b.build()
        if net.bn_nodes:
            size = graph.inputs[0].shape[1]
            calibrate_batchnorm(graph, input_images(seed + 1, _CALIB_BATCH, size))
        graph.metadata.update({
            "description": description,
            "trained": False,
            "weights": UNTRAINED,
            "init": f"He-normal weights from numpy default_rng({seed}); BatchNorm mean/var measured on "
                    f"{_CALIB_BATCH} standard-normal images (seed {seed + 1})" if net.bn_nodes
                    else f"He-normal weights from numpy default_rng({seed})",
            "seed": seed,
            "reference_macs": figure,
            "produced_by": f"hwsim.zoo.build_model({module_name!r}, seed={seed})",
        })
        return graph

    return build


def _transformer(seed: int):
    from hwsim.zoo import transformer

    graph = transformer.build(seed).b.build()
    graph.metadata.update({
        "description": _DESCRIPTIONS["transformer_tiny"],
        "trained": False,
        "weights": UNTRAINED,
        "init": f"normal(0, 1/fan_in) weights from numpy default_rng({seed}); "
                "one weight set shared by all layers",
        "seed": seed,
        "produced_by": f"hwsim.zoo.build_model('transformer_tiny', seed={seed})",
    })
    return graph


def _lenet5(seed: int):
    from hwsim.zoo import lenet5

    return lenet5.load(seed)


_DESCRIPTIONS = {
    "lenet5": "LeNet-5 trained on scikit-learn digits (32x32x1, 10 classes), with calibration and evaluation "
              "sets",
    "resnet50": "ResNet-50 v1 (Caffe layout, stride in branch2a), 224x224x3, 3.86 GMAC, untrained",
    "mobilenetv2": "MobileNetV2 1.0 (torchvision layout, ReLU6), 224x224x3, 0.30 GMAC, untrained",
    "googlenet": "GoogLeNet / Inception v1 (Caffe bvlc_googlenet, no aux heads, no LRN), 224x224x3, "
                 "1.58 GMAC, untrained",
    "transformer_tiny": "4-layer encoder, seq 16, d_model 64, 4 heads, one weight set shared by all layers, "
                        "untrained",
}

_BUILDERS: dict[str, Callable[[int], object]] = {
    "lenet5": _lenet5,
    "resnet50": _image_model("resnet50", _DESCRIPTIONS["resnet50"], "3.86 GMAC (Vitis AI zoo: 7.7 GOP)"),
    "mobilenetv2": _image_model("mobilenetv2", _DESCRIPTIONS["mobilenetv2"], "0.30 GMAC (torchvision)"),
    "googlenet": _image_model("googlenet", _DESCRIPTIONS["googlenet"], "1.58 GMAC (Caffe: 3.16 GOP)"),
    "transformer_tiny": _transformer,
}


def list_models() -> list[tuple[str, str]]:
    """Names and one-line descriptions of the zoo's models, in a stable order."""
    return [(name, _DESCRIPTIONS[name]) for name in _BUILDERS]


def build_model(name: str, *, seed: int = 0):
    """Build zoo model ``name`` as a :class:`hwsim.graph.Graph`.

    Parameters
    ----------
    name : str
        One of the names from :func:`list_models`.
    seed : int
        Seed of the random weights (ignored by ``lenet5``, whose weights are trained). The same seed gives
        the same graph.

    Raises
    ------
    HwsimError
        If ``name`` is not a zoo model; the message lists the available ones.
    """
    builder = _BUILDERS.get(name) if isinstance(name, str) else None
    if builder is None:
        raise HwsimError(f"unknown zoo model {name!r} (available: {', '.join(_BUILDERS)})")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise HwsimError(f"zoo model seed must be a non-negative integer, got {seed!r}")
    return builder(int(seed))
