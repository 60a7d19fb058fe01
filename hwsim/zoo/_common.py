"""Shared pieces of the zoo's network builders: seeded initialisers and layer helpers over GraphBuilder.

The builders create parameters in a fixed order from one ``numpy.random.Generator``, so a network built twice
with the same seed (at any input size) has identical weights. Weights follow He (Kaiming) normal
initialisation, ``std = sqrt(2 / fan_in)``; BatchNorm statistics are set afterwards from observed activations
(:func:`calibrate_batchnorm`) so that every BatchNorm output is close to zero mean and unit variance, as in a
trained network.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

UNTRAINED = "untrained: for numerics and cost, not accuracy"


def caffe_pool_pads(size: int, kernel: int, stride: int, pad: int = 0) -> tuple[int, int]:
    """[begin, end] padding that makes floor-mode pooling give Caffe's ceil-mode output size.

    Caffe computes ``ceil((size + 2*pad - kernel) / stride) + 1`` outputs (and drops a last window that would
    start inside the padding only); hwsim, like ONNX with ``ceil_mode=0``, floors. Extra padding at the end
    (never selected by a max pool, excluded from an average with ``count_include_pad=False``) gives the same
    windows.
    """
    out = -(-(size + 2 * pad - kernel) // stride) + 1
    if (out - 1) * stride >= size + pad:  # Caffe's clip: the last window must start inside the image
        out -= 1
    end = (out - 1) * stride + kernel - size - pad
    return pad, max(end, pad)


class NetBuilder:
    """GraphBuilder plus a seeded generator and layer helpers that create their own parameters.

    Parameters
    ----------
    name : str
        Graph name.
    seed : int
        Seed of the generator every parameter is drawn from, in creation order.
    """

    def __init__(self, name: str, seed: int) -> None:
        from hwsim.graph import GraphBuilder

        self.b = GraphBuilder(name)
        self.rng = np.random.default_rng(seed)
        self.bn_nodes: list[str] = []

    # -- parameters -------------------------------------------------------------------------------

    def param(self, name: str, array: np.ndarray) -> str:
        return self.b.param(name, np.ascontiguousarray(array, dtype=np.float32))

    def he_normal(self, shape: Sequence[int], fan_in: int) -> np.ndarray:
        return self.rng.standard_normal(shape, dtype=np.float32) * np.float32(math.sqrt(2.0 / fan_in))

    def small(self, shape: Sequence[int], std: float = 0.05) -> np.ndarray:
        return self.rng.standard_normal(shape).astype(np.float32) * np.float32(std)

    # -- layers -----------------------------------------------------------------------------------

    def conv(self, x: str, name: str, cin: int, cout: int, k: int, *, stride: int = 1,
             pad: int | Sequence[int] | None = None, groups: int = 1, bias: bool = False) -> str:
        """Conv2D with He-normal OHWI weights; ``pad`` defaults to k // 2 on every side."""
        if pad is None:
            pad = k // 2
        pads = [pad] * 4 if isinstance(pad, int) else list(pad)
        fan_in = k * k * cin // groups
        inputs = [x, self.param(f"{name}.weight", self.he_normal((cout, k, k, cin // groups), fan_in))]
        if bias:
            inputs.append(self.param(f"{name}.bias", self.small((cout,))))
        return self.b.node("Conv2D", inputs, {"strides": [stride, stride], "pads": pads, "groups": groups},
                           name=name)

    def bn(self, x: str, name: str, c: int, gamma_scale: float = 1.0) -> str:
        """BatchNorm with gamma near ``gamma_scale``, small beta; mean/var are placeholders until calibrated.

        A residual branch's last BatchNorm takes a small ``gamma_scale``, as trained ResNets have: with
        gamma near 1 everywhere a random deep network amplifies every rounding difference layer after layer
        (BatchNorm at initialisation is chaotic), which no trained network does.
        """
        gamma = (gamma_scale * (1.0 + 0.1 * self.rng.standard_normal(c))).astype(np.float32)
        beta = self.small((c,), 0.1)
        inputs = [x, self.param(f"{name}.gamma", gamma), self.param(f"{name}.beta", beta),
                  self.param(f"{name}.mean", np.zeros(c, np.float32)),
                  self.param(f"{name}.var", np.ones(c, np.float32))]
        self.bn_nodes.append(name)
        return self.b.node("BatchNorm", inputs, {"epsilon": 1e-5}, name=name)

    def dense(self, x: str, name: str, cin: int, cout: int, *, bias: bool = True,
              init: str = "he") -> str:
        if init == "he":
            w = self.he_normal((cout, cin), cin)
        else:  # Xavier/Glorot normal, for layers not followed by a ReLU
            std = np.float32(math.sqrt(2.0 / (cin + cout)))
            w = self.rng.standard_normal((cout, cin), dtype=np.float32) * std
        inputs = [x, self.param(f"{name}.weight", w)]
        if bias:
            inputs.append(self.param(f"{name}.bias", self.small((cout,), 0.02)))
        return self.b.node("Dense", inputs, name=name)

    def op(self, op: str, inputs: str | Sequence[str], name: str, **attrs) -> str:
        if isinstance(inputs, str):
            inputs = [inputs]
        return self.b.node(op, list(inputs), attrs or None, name=name)


def calibrate_batchnorm(graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Set every BatchNorm's mean and var to the statistics of its input on ``x``; return the new arrays.

    One float pass in topological order: when a BatchNorm is reached, its input (computed with every
    earlier BatchNorm already calibrated) gives the per-channel mean and variance over all other axes, which
    are stored before the BatchNorm runs. So each BatchNorm output has zero mean and unit variance before its
    affine part, as in a trained network. Values are rounded to 4 significant digits so that tiny BLAS
    summation-order differences between machines do not change the model. The per-op kernels are the float
    reference's (``hwsim.emulate.float_ref.KERNELS``).
    """
    from hwsim.emulate.float_ref import KERNELS

    env: dict[str, np.ndarray] = {graph.inputs[0].name: np.asarray(x, dtype=np.float32)}
    updated: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        if node.op == "BatchNorm":
            act = env[node.inputs[0]].reshape(-1, graph.params[node.inputs[3]].shape[0])
            mean = act.mean(axis=0, dtype=np.float64)
            var = np.maximum(act.var(axis=0, dtype=np.float64), 1e-4)
            graph.params[node.inputs[3]] = updated[node.inputs[3]] = _round_sig(mean)
            graph.params[node.inputs[4]] = updated[node.inputs[4]] = _round_sig(var)
        args = [env[t] if t in env else graph.params[t] for t in node.inputs]
        env[node.outputs[0]] = np.asarray(KERNELS[node.op](node.attrs, *args), dtype=np.float32)
    return updated


def _round_sig(a: np.ndarray, digits: int = 4) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(divide="ignore"):
        exp = np.where(a == 0, 0, np.floor(np.log10(np.abs(a))))
    scale = 10.0 ** (digits - 1 - exp)
    return (np.round(a * scale) / scale).astype(np.float32)


def input_images(rng_seed: int, n: int, size: int) -> np.ndarray:
    """Standard-normal NHWC images, the distribution of mean/std-normalised ImageNet inputs."""
    return np.random.default_rng(rng_seed).standard_normal((n, size, size, 3)).astype(np.float32)
