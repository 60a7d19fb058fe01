"""Float reference executor: runs a Graph in float32 or float64 with numpy only.

This is the "what the model means" side of every comparison: the simulator's integers are judged against
these values. It follows the op definitions in :mod:`hwsim.graph.ops` directly, any batch size. Parameters
of a pre-quantized model (integer arrays with a QuantSpec) are dequantized (``scale * (q - zero_point)``)
first; activation QuantSpecs are ignored here.

Conv2D is an im2col + one matrix product (grouped convolutions batch the product over groups; depthwise
accumulates one multiply per kernel tap), which runs ResNet-50 at 224x224 in a few seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hwsim.errors import GraphError
from hwsim.graph import Graph
from hwsim.graph.ops import NodeView, reshape_target

__all__ = ["run_float", "erf", "dequantized_params"]


# ----------------------------------------------------------------------------------------------------
# erf in float64 without scipy


def erf(x: np.ndarray) -> np.ndarray:
    """The error function in float64, to within a few ulp of ``math.erf``.

    For ``|x| < 3`` it sums the everywhere-convergent series with only positive terms
    ``erf(z) = 2/sqrt(pi) · z · exp(-z²) · Σ (2z²)^n / (1·3·…·(2n+1))`` (no cancellation); for
    ``|x| >= 3`` it evaluates the continued fraction of ``erfc`` (depth 80) and returns ``1 - erfc``.
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    ax = np.abs(x)
    small = ax < 3.0
    z = ax[small]
    if z.size:
        z2 = 2.0 * z * z
        term = np.ones_like(z)
        total = np.ones_like(z)
        n = 0
        while True:
            n += 1
            term *= z2 / (2 * n + 1)
            total += term
            if np.all(term <= 1e-17 * total) or n > 200:
                break
        out[small] = (2.0 / math.sqrt(math.pi)) * z * np.exp(-z * z) * total
    large = ~small & ~np.isnan(ax)
    z = ax[large]
    if z.size:
        with np.errstate(under="ignore"):
            # erfc(z) = exp(-z²)/sqrt(pi) / (z + (1/2)/(z + 1/(z + (3/2)/(z + ...)))), evaluated bottom-up.
            f = z.copy()
            for k in range(80, 0, -1):
                f = z + (k / 2.0) / f
            out[large] = 1.0 - np.exp(-z * z) / (math.sqrt(math.pi) * f)
    out[np.isnan(ax)] = np.nan
    return np.copysign(out, x)


# ----------------------------------------------------------------------------------------------------
# Kernels. Each takes the node's attributes and input arrays (already in the run dtype) and returns the
# output array in that dtype.


def _conv2d(a: dict, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    n, h, wd, c = x.shape
    o, kh, kw, cg = w.shape
    groups = a["groups"]
    sh, sw = a["strides"]
    dh, dw = a["dilations"]
    t, left, bot, r = a["pads"]
    if t or left or bot or r:
        x = np.pad(x, ((0, 0), (t, bot), (left, r), (0, 0)))
    ekh, ekw = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    oh = (x.shape[1] - ekh) // sh + 1
    ow = (x.shape[2] - ekw) // sw + 1
    m = n * oh * ow
    if cg == 1 and groups == c:
        # Depthwise: output channel k reads input channel k // mult; one multiply-add per kernel tap.
        mult = o // c
        out = np.zeros((n, oh, ow, o), dtype=x.dtype)
        tmp = np.empty_like(out)
        for i in range(kh):
            for j in range(kw):
                tap = x[:, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw, :]
                if mult > 1:
                    tap = np.repeat(tap, mult, axis=-1)
                np.multiply(tap, w[:, i, j, 0], out=tmp)
                out += tmp
    elif kh == 1 and kw == 1 and groups == 1:
        # Pointwise: a plain matrix product, no window gathering.
        xs = x[:, : sh * (oh - 1) + 1: sh, : sw * (ow - 1) + 1: sw, :]
        out = (xs.reshape(m, c) @ w.reshape(o, c).T).reshape(n, oh, ow, o)
    else:
        win = sliding_window_view(x, (ekh, ekw), axis=(1, 2))  # [N, H', W', C, EKH, EKW]
        win = win[:, : sh * (oh - 1) + 1: sh, : sw * (ow - 1) + 1: sw, :, ::dh,
                  ::dw]  # [N, OH, OW, C, KH, KW]
        if groups == 1:
            # Columns in (KH, KW, C) order match the OHWI weight flattened per output channel.
            cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(m, kh * kw * c)
            out = (cols @ w.reshape(o, kh * kw * c).T).reshape(n, oh, ow, o)
        else:
            og = o // groups
            cols = win.reshape(n, oh, ow, groups, cg, kh, kw).transpose(3, 0, 1, 2, 5, 6, 4)
            cols = cols.reshape(groups, m, kh * kw * cg)
            wg = w.reshape(groups, og, kh * kw * cg)
            out = np.matmul(cols, wg.transpose(0, 2, 1))  # [G, M, Og]
            out = out.transpose(1, 0, 2).reshape(n, oh, ow, o)
    if b is not None:
        out = out + b
    return np.ascontiguousarray(out)


def _dense(a: dict, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    y = x @ w.T
    return y + b if b is not None else y


def _matmul(a: dict, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.matmul(x, np.swapaxes(y, -1, -2) if a["transpose_b"] else y)


def _batchnorm(a: dict, x, gamma, beta, mean, var) -> np.ndarray:
    # Per-channel factor first (C values), then two passes over the tensor.
    factor = (gamma / np.sqrt(var + x.dtype.type(a["epsilon"]))).astype(x.dtype)
    return (x - mean) * factor + beta


def _window(x: np.ndarray, kernel: list[int], strides: list[int]) -> np.ndarray:
    kh, kw = kernel
    sh, sw = strides
    oh = (x.shape[1] - kh) // sh + 1
    ow = (x.shape[2] - kw) // sw + 1
    win = sliding_window_view(x, (kh, kw), axis=(1, 2))
    return win[:, : sh * (oh - 1) + 1: sh, : sw * (ow - 1) + 1: sw]  # [N, OH, OW, C, KH, KW]


def _maxpool(a: dict, x: np.ndarray) -> np.ndarray:
    t, left, b, r = a["pads"]
    if t or left or b or r:
        x = np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=-np.inf)
    return _window(x, a["kernel"], a["strides"]).max(axis=(-2, -1))


def _avgpool(a: dict, x: np.ndarray) -> np.ndarray:
    t, left, b, r = a["pads"]
    kh, kw = a["kernel"]
    padded = bool(t or left or b or r)
    xp = np.pad(x, ((0, 0), (t, b), (left, r), (0, 0))) if padded else x
    total = _window(xp, a["kernel"], a["strides"]).sum(axis=(-2, -1))
    if a["count_include_pad"] or not padded:
        return total / x.dtype.type(kh * kw)
    ones = np.pad(np.ones((1, x.shape[1], x.shape[2], 1), x.dtype), ((0, 0), (t, b), (left, r), (0, 0)))
    count = _window(ones, a["kernel"], a["strides"]).sum(axis=(-2, -1))
    return total / count


def _reshape(a: dict, x: np.ndarray) -> np.ndarray:
    view = NodeView("", "Reshape", a, [x.shape], ["x"])
    return x.reshape(reshape_target(view, x.shape, a["shape"]))


def _flatten(a: dict, x: np.ndarray) -> np.ndarray:
    axis = a["axis"] + x.ndim if a["axis"] < 0 else a["axis"]
    lead = int(np.prod(x.shape[:axis], dtype=np.int64))
    return x.reshape(lead, int(np.prod(x.shape[axis:], dtype=np.int64)))


def _softmax(a: dict, x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=a["axis"], keepdims=True))
    return e / e.sum(axis=a["axis"], keepdims=True)


def _layernorm(a: dict, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    axis = a["axis"] + x.ndim if a["axis"] < 0 else a["axis"]
    axes = tuple(range(axis, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    d = x - mean
    var = (d * d).mean(axis=axes, keepdims=True)
    return d / np.sqrt(var + x.dtype.type(a["epsilon"])) * gamma + beta


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def _gelu(a: dict, x: np.ndarray) -> np.ndarray:
    if a["approximate"] == "tanh":
        c = x.dtype.type(math.sqrt(2 / math.pi))
        return x.dtype.type(0.5) * x * (1 + np.tanh(c * (x + x.dtype.type(0.044715) * x * x * x)))
    phi = 0.5 * (1.0 + erf(x.astype(np.float64) / math.sqrt(2.0)))
    return (x.astype(np.float64) * phi).astype(x.dtype)


def _f(x: np.ndarray, v: float) -> Any:
    return x.dtype.type(v)


KERNELS: dict[str, Callable[..., np.ndarray]] = {
    "Conv2D": _conv2d,
    "Dense": _dense,
    "MatMul": _matmul,
    "BatchNorm": _batchnorm,
    "Add": lambda a, x, y: x + y,
    "Mul": lambda a, x, y: x * y,
    "Concat": lambda a, *xs: np.concatenate(xs, axis=a["axis"]),
    "Pad": lambda a, x: np.pad(x, a["pads"], constant_values=_f(x, a["value"])),
    "MaxPool": _maxpool,
    "AvgPool": _avgpool,
    "GlobalAvgPool": lambda a, x: x.mean(axis=(1, 2), keepdims=True),
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Transpose": lambda a, x: np.transpose(x, a["perm"]),
    "Softmax": _softmax,
    "LayerNorm": _layernorm,
    "ReLU": lambda a, x: np.maximum(x, _f(x, 0)),
    "ReLU6": lambda a, x: np.clip(x, _f(x, 0), _f(x, 6)),
    "LeakyReLU": lambda a, x: np.where(x >= 0, x, x * _f(x, a["alpha"])),
    "Sigmoid": lambda a, x: _sigmoid(x),
    "Tanh": lambda a, x: np.tanh(x),
    "HardSigmoid": lambda a, x: np.clip(x * _f(x, a["alpha"]) + _f(x, a["beta"]), _f(x, 0), _f(x, 1)),
    "HardSwish": lambda a, x: x * np.clip(x + _f(x, 3), _f(x, 0), _f(x, 6)) / _f(x, 6),
    "SELU": lambda a, x: _f(x, a["gamma"]) * np.where(x > 0, x,
                                                       _f(x, a["alpha"]) * np.expm1(np.minimum(x, 0))),
    "SiLU": lambda a, x: x * _sigmoid(x),
    "Mish": lambda a, x: x * np.tanh(np.logaddexp(_f(x, 0), x)),
    "GELU": _gelu,
}


# ----------------------------------------------------------------------------------------------------


def dequantized_params(graph: Graph, dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """Every parameter as a float array of ``dtype``; integer parameters with a QuantSpec are dequantized."""
    dtype = np.dtype(dtype)
    out = {}
    for name, arr in graph.params.items():
        spec = graph.quant.get(name)
        if spec is not None and arr.dtype.kind in "iu":
            out[name] = spec.dequantize(arr).astype(dtype)
        else:
            out[name] = arr.astype(dtype, copy=False)
    return out


def run_float(graph: Graph, inputs: dict[str, np.ndarray] | np.ndarray, *, dtype: Any = np.float32,
              keep_intermediates: bool = False) -> dict[str, np.ndarray]:
    """Run ``graph`` in floating point.

    Parameters
    ----------
    graph : Graph
        A validated graph.
    inputs : dict of str to numpy.ndarray, or numpy.ndarray
        Input arrays by input name; a bare array when the graph has exactly one input. Any batch size
        (first axis); the other dimensions must match the declared input shapes.
    dtype : numpy dtype
        ``np.float32`` (default) or ``np.float64``: every op computes in this type (GELU's erf in float64).
    keep_intermediates : bool
        Return every tensor (graph inputs and every node output) instead of only the graph outputs.

    Returns
    -------
    dict of str to numpy.ndarray
        Output arrays by tensor name.

    Raises
    ------
    GraphError
        Missing or unknown input names, or an input whose rank or non-batch dimensions differ from the
        graph's declaration.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise GraphError(f"run_float: dtype must be float32 or float64, got {dtype}")
    if isinstance(inputs, np.ndarray):
        if len(graph.inputs) != 1:
            raise GraphError(f"run_float: graph '{graph.name}' has {len(graph.inputs)} inputs "
                             f"({', '.join(t.name for t in graph.inputs)}); pass a dict by name")
        inputs = {graph.inputs[0].name: inputs}
    declared = {t.name: t for t in graph.inputs}
    unknown = sorted(set(inputs) - set(declared))
    if unknown:
        raise GraphError(f"run_float: '{unknown[0]}' is not an input of graph '{graph.name}' "
                         f"(inputs: {', '.join(declared)})")
    env: dict[str, np.ndarray] = {}
    for name, spec in declared.items():
        if name not in inputs:
            raise GraphError(f"run_float: input '{name}' of graph '{graph.name}' is missing")
        arr = np.asarray(inputs[name])
        if arr.dtype.kind not in "biuf":
            raise GraphError(f"run_float: input '{name}' must be numeric, got dtype {arr.dtype}")
        if arr.ndim != len(spec.shape) or tuple(arr.shape[1:]) != tuple(spec.shape[1:]):
            raise GraphError(f"run_float: input '{name}' has shape {list(arr.shape)}, expected "
                             f"[batch, {', '.join(str(d) for d in spec.shape[1:])}]")
        if arr.dtype.kind in "iu" and name in graph.quant:
            env[name] = graph.quant[name].dequantize(arr).astype(dtype)
        else:
            env[name] = arr.astype(dtype, copy=False)
    params = dequantized_params(graph, dtype)
    with np.errstate(over="ignore", under="ignore"):
        for node in graph.nodes:
            args = [env[i] if i in env else params[i] for i in node.inputs]
            try:
                env[node.outputs[0]] = np.asarray(KERNELS[node.op](node.attrs, *args), dtype=dtype)
            except (GraphError, ValueError) as exc:
                # Only a batch size the graph cannot take gets here (e.g. a Reshape to a fixed batch).
                shapes = ", ".join(str(list(a.shape)) for a in args)
                reason = str(exc).split("): ", 1)[-1]
                raise GraphError(f"run_float: node '{node.name}' ({node.op}) cannot run on inputs of shape "
                                 f"{shapes}: {reason}") from None
    if keep_intermediates:
        return env
    return {o: env[o] if o in env else params[o] for o in graph.outputs}
