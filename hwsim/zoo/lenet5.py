"""LeNet-5 for 32x32 grey images, trained on scikit-learn's digits by ``tools/train_lenet5.py``.

conv 5x5 -> 6, ReLU, max pool 2x2/2, conv 5x5 -> 16, ReLU, max pool 2x2/2, flatten (H, W, C order, 400),
dense 120, ReLU, dense 84, ReLU, dense 10 (logits). :func:`lenet5_graph` builds the graph from parameter
arrays (used by the training script); the zoo loads the trained model shipped as
``hwsim/zoo/data/lenet5.npz``.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np


def data_path():
    """Path of the shipped trained model inside the installed package."""
    return resources.files("hwsim.zoo").joinpath("data", "lenet5.npz")


def load(seed: int = 0):
    """The trained LeNet-5 shipped with hwsim (``seed`` is ignored: the weights are trained, not drawn)."""
    from hwsim.graph import load_model

    with resources.as_file(data_path()) as path:
        return load_model(path)


def lenet5_graph(params: dict[str, np.ndarray], *, calibration: np.ndarray | None = None,
                 evaluation: tuple[np.ndarray, np.ndarray] | None = None,
                 metadata: dict[str, Any] | None = None, batch: int = 1):
    """Build LeNet-5 from hwsim-layout parameters (conv OHWI, dense [out, in], flatten in H, W, C order).

    Parameters
    ----------
    params : dict
        ``conv1.weight`` [6, 5, 5, 1], ``conv1.bias``, ``conv2.weight`` [16, 5, 5, 6], ``conv2.bias``,
        ``fc1.weight`` [120, 400], ``fc1.bias``, ``fc2.weight`` [84, 120], ``fc2.bias``, ``fc3.weight``
        [10, 84], ``fc3.bias``.
    calibration : ndarray, optional
        [N, 32, 32, 1] images bundled as the calibration set.
    evaluation : (ndarray, ndarray), optional
        Images and integer labels bundled as the evaluation set.
    metadata : dict, optional
        Stored in ``graph.metadata``.
    batch : int
        Batch size of the graph input.
    """
    from hwsim.graph import GraphBuilder

    b = GraphBuilder("lenet5")
    p = {k: b.param(k, np.ascontiguousarray(v, dtype=np.float32)) for k, v in params.items()}
    x = b.input("image", [batch, 32, 32, 1])
    x = b.node("Conv2D", [x, p["conv1.weight"], p["conv1.bias"]], name="conv1")
    x = b.node("ReLU", [x], name="relu1")
    x = b.node("MaxPool", [x], {"kernel": [2, 2], "strides": [2, 2]}, name="pool1")
    x = b.node("Conv2D", [x, p["conv2.weight"], p["conv2.bias"]], name="conv2")
    x = b.node("ReLU", [x], name="relu2")
    x = b.node("MaxPool", [x], {"kernel": [2, 2], "strides": [2, 2]}, name="pool2")
    x = b.node("Flatten", [x], {"axis": 1}, name="flatten")
    x = b.node("Dense", [x, p["fc1.weight"], p["fc1.bias"]], name="fc1")
    x = b.node("ReLU", [x], name="relu3")
    x = b.node("Dense", [x, p["fc2.weight"], p["fc2.bias"]], name="fc2")
    x = b.node("ReLU", [x], name="relu4")
    x = b.node("Dense", [x, p["fc3.weight"], p["fc3.bias"]], name="fc3")
    b.output(x)
    if calibration is not None:
        b.data("calibration", x=np.ascontiguousarray(calibration, dtype=np.float32))
    if evaluation is not None:
        b.data("evaluation", x=np.ascontiguousarray(evaluation[0], dtype=np.float32),
               y=np.ascontiguousarray(evaluation[1], dtype=np.int64))
    b.metadata.update(metadata or {})
    return b.build()
