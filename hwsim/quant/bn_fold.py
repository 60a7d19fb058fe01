"""Fold inference BatchNorm into the Conv2D / Dense that feeds it.

``BN(y) = (y - mean) · γ / sqrt(var + ε) + β`` is affine per output channel, so after
``y = conv(x, w) + b`` it can be absorbed: with ``k = γ / sqrt(var + ε)``,
``w'[o, ...] = w[o, ...] · k[o]`` and ``b' = (b - mean) · k + β``. The output channel is axis 0 of the
weight for Conv2D (OHWI, grouped and depthwise alike: a depthwise weight is ``[C·mult, KH, KW, 1]``) and
Dense (``[out, in]``), and the last axis of the BN's NHWC input. The arithmetic is float64 and the results
are stored as float32 (what every engine quantizes from). Folding is what PyTorch (``fuse_conv_bn_weights``),
the TFLite converter and vai_q do before choosing weight scales, so hwsim must fold before calibration too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from hwsim.errors import GraphError

if TYPE_CHECKING:
    from hwsim.graph import Graph

__all__ = ["FoldReport", "fold_batchnorm", "fold_batchnorm_into_conv", "why_not_foldable"]


def fold_batchnorm_into_conv(weight: np.ndarray, bias: np.ndarray | None, gamma: np.ndarray, beta: np.ndarray,
                             mean: np.ndarray, var: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Folded ``(weight, bias)`` as float32, for a weight whose output channels run along axis 0.

    Parameters
    ----------
    weight : numpy.ndarray
        Conv2D OHWI ``[O, KH, KW, I/groups]`` or Dense ``[out, in]`` weight.
    bias : numpy.ndarray or None
        ``[O]`` bias, None for none (treated as zeros).
    gamma, beta, mean, var : numpy.ndarray
        BatchNorm parameters, each ``[O]``.
    eps : float
        BatchNorm epsilon.
    """
    w = np.asarray(weight, dtype=np.float64)
    o = w.shape[0]
    b = np.zeros(o) if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
    vecs = {"bias": b}
    for name, v in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)):
        vecs[name] = np.asarray(v, dtype=np.float64).reshape(-1)
    for name, v in vecs.items():
        if v.shape != (o,):
            raise GraphError(f"{name}: has {v.size} values, the weight has {o} output channels")
    denom = vecs["var"] + float(eps)
    if np.any(denom <= 0):
        raise GraphError(f"var: var + epsilon must be > 0 (minimum {denom.min()})")
    k = vecs["gamma"] / np.sqrt(denom)
    w_folded = w * k.reshape((o,) + (1,) * (w.ndim - 1))
    b_folded = (vecs["bias"] - vecs["mean"]) * k + vecs["beta"]
    return w_folded.astype(np.float32), b_folded.astype(np.float32)


@dataclass
class FoldReport:
    """What :func:`fold_batchnorm` did: ``folded`` lists (producer node, BN node) pairs; ``kept`` lists
    (BN node, reason) for every BatchNorm left in the graph."""

    folded: list[tuple[str, str]] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"folded {bn} into {prod}" for prod, bn in self.folded]
        lines += [f"kept {bn}: {why}" for bn, why in self.kept]
        return "\n".join(lines) if lines else "no BatchNorm"


def _param_users(graph, pname: str) -> int:
    return sum(n.inputs.count(pname) for n in graph.nodes)


def _why_not(graph, bn, producer) -> str | None:
    if producer is None:
        return f"its input '{bn.inputs[0]}' is not produced by a node"
    if producer.op not in ("Conv2D", "Dense"):
        return f"its input comes from a {producer.op} node '{producer.name}', not Conv2D/Dense"
    y = producer.outputs[0]
    others = [n.name for n in graph.consumers(y) if n is not bn]
    if others:
        return f"'{y}' is also read by {', '.join(repr(o) for o in others)}"
    if y in graph.outputs:
        return f"'{y}' is a graph output"
    for role, t in zip(("gamma", "beta", "mean", "var"), bn.inputs[1:]):
        if t not in graph.params:
            return f"{role} '{t}' is not a parameter"
        if graph.params[t].dtype.kind != "f":
            return f"{role} '{t}' is not a float array"
    for t in producer.inputs[1:]:
        if t not in graph.params:
            return f"'{t}' of '{producer.name}' is not a parameter"
        if graph.params[t].dtype.kind != "f" or t in graph.quant:
            return f"'{t}' of '{producer.name}' is already quantized"
    if y in graph.quant:
        return f"'{y}' carries quantization parameters"
    return None


def why_not_foldable(graph, bn) -> str | None:
    """Why :func:`fold_batchnorm` would keep the BatchNorm node ``bn`` of ``graph``; None if it would fold it.

    Structural checks only (producer kind, other readers, parameter kinds, quantization specs) plus the
    channel count; no arithmetic. For cost models and reports that must agree with the folding.
    """
    if bn.op != "BatchNorm":
        return f"'{bn.name}' is a {bn.op} node, not BatchNorm"
    producer = graph.producer(bn.inputs[0])
    why = _why_not(graph, bn, producer)
    if why is None and graph.params[bn.inputs[1]].size != graph.params[producer.inputs[1]].shape[0]:
        why = (f"{graph.params[bn.inputs[1]].size} BatchNorm channels but "
               f"{graph.params[producer.inputs[1]].shape[0]} output channels in '{producer.name}'")
    return why


def fold_batchnorm(graph: Graph) -> tuple[Graph, FoldReport]:
    """Fold every foldable BatchNorm into its producing Conv2D / Dense; returns ``(new_graph, report)``.

    A BatchNorm is folded when its input is the output of a Conv2D or Dense, that output is read by nothing
    else (and is not a graph output), and all the parameters involved are float arrays without quantization
    specs. The producer then writes the BN's output tensor (so consumers, graph outputs and any quant spec of
    that tensor are unchanged) and the BN node disappears. Folded weights and biases are written back under
    their own names when no other node reads them, else under new names ``<node>.weight_bnfold`` /
    ``<node>.bias_bnfold``; parameters nobody reads any more are dropped. Every BatchNorm that stays is listed
    in the report with the reason. The input graph is not modified.
    """
    from hwsim.graph import Graph  # noqa: F811  (run-time import; the IR is only needed here)

    g = graph.copy()
    report = FoldReport()
    removed: set[str] = set()
    for bn in [n for n in g.nodes if n.op == "BatchNorm"]:
        why = why_not_foldable(g, bn)
        if why is not None:
            report.kept.append((bn.name, why))
            continue
        producer = g.producer(bn.inputs[0])
        w_name = producer.inputs[1]
        b_name = producer.inputs[2] if len(producer.inputs) > 2 else None
        gamma, beta, mean, var = (g.params[t] for t in bn.inputs[1:])
        w = g.params[w_name]
        w_new, b_new = fold_batchnorm_into_conv(w, None if b_name is None else g.params[b_name],
                                                gamma, beta, mean, var, bn.attrs["epsilon"])
        new_w_name = w_name if _param_users(g, w_name) == 1 else _fresh(g, f"{producer.name}.weight_bnfold")
        if b_name is not None and _param_users(g, b_name) == 1:
            new_b_name = b_name
        else:
            stem = f"{producer.name}.bias" if b_name is None else f"{producer.name}.bias_bnfold"
            new_b_name = _fresh(g, stem)
        g.params[new_w_name] = w_new
        g.params[new_b_name] = b_new
        producer.inputs = [producer.inputs[0], new_w_name, new_b_name]
        producer.outputs = list(bn.outputs)
        removed.add(bn.name)
        report.folded.append((producer.name, bn.name))
    g.nodes = [n for n in g.nodes if n.name not in removed]
    used = {t for n in g.nodes for t in n.inputs}
    g.params = {k: v for k, v in g.params.items() if k in used}
    g.quant = {k: v for k, v in g.quant.items() if k in used or k in {o for n in g.nodes for o in n.outputs}
               or k in {t.name for t in g.inputs}}
    out = Graph(g.name, g.inputs, g.outputs, g.nodes, g.params, g.quant, g.data, g.metadata)
    return out, report


def _fresh(graph, stem: str) -> str:
    names = set(graph.params) | {o for n in graph.nodes for o in n.outputs} | {t.name for t in graph.inputs}
    name, k = stem, 1
    while name in names:
        name, k = f"{stem}_{k}", k + 1
    return name
