"""Pruning: unstructured magnitude pruning and structured (filter/channel) pruning with graph surgery.

**Unstructured** pruning zeroes the smallest-magnitude weights of Conv2D/Dense layers, either with one
threshold over all selected layers (``scope="global"``) or the same sparsity in each (``scope="layer"``).
Shapes do not change; whether zeros save time depends on the target (see :mod:`hwsim.compress.report`).

**Structured** pruning removes whole output channels (filters of a Conv2D, output features of a Dense) and
rewrites every node that reads them, so the pruned model is smaller and needs fewer MACs on any target.
Channels are tracked one by one through the graph (:class:`ChannelAnalysis`):

* a Conv2D with ``groups == 1`` or a Dense *produces* channels and *adapts* to pruned input channels (the
  matching input slices of its weight are dropped);
* BatchNorm, pooling, unary activations and Pad (on other axes) pass channels through, and their
  per-channel parameters are sliced;
* a depthwise Conv2D (``groups == C``) follows its input channels: output channel ``k`` reads input channel
  ``k // multiplier``, so pruning an input channel removes its ``multiplier`` outputs and ``groups`` shrinks;
* Add and Mul tie the channels of their inputs together: channel ``c`` of every branch is one *group*,
  removed from all branches or from none (residual connections stay consistent); a per-channel parameter
  operand is sliced;
* Concat along the channel axis places its inputs' channels at their offsets, so each input's groups stay
  independent;
* Flatten and a Reshape that keeps the batch axis map a channel to the features it becomes (the following
  Dense drops those columns);
* everything else (MatMul, Softmax, LayerNorm, Transpose, grouped convolutions, graph outputs, graph inputs,
  parameters shared between nodes) *pins* the channels it reads: they are never pruned.

Filters are ranked by the L1 or L2 norm of their weights as the target sees them (a BatchNorm that follows
is folded in: ``|γ / sqrt(var + ε)| · ‖w‖``), normalised by the layer's mean norm so that tied layers of
different scales weigh equally; a group's score is the mean over its member filters.

**Statistics correction (no training).** Removing channel ``c`` from the input of a consumer removes
``Σ W[:, .., c] · a_c`` from its pre-activation, and earlier pruning shifts the channels it keeps. With
calibration data, every Conv2D/Dense downstream of a pruned channel is corrected in execution order, on the
pruned model as corrected so far, so that each kept output channel's pre-activation ``z`` has its original
statistics over the calibration set:

* ``correction="mean"``: ``b += E[z]_original − E[z]_pruned`` (bias correction: the mean contribution of the
  removed channels and the upstream shift folded into the bias);
* ``correction="affine"`` (default): also ``w_o ·= s_o`` with ``s_o = std[z_o]_original / std[z_o]_pruned``
  and ``b_o = s_o·(b_o − E[z_o]_pruned) + E[z_o]_original``. For a layer followed by a BatchNorm this is the
  BatchNorm re-estimation pruning papers use, folded into the layer.

On the bundled LeNet-5 digits, pruning every layer by 50% gives 90.3% float accuracy uncorrected, 78.6% with
``mean`` (the logits keep their mean but lose their spread, and the constant per-class offset then decides
the argmax) and 95.8% with ``affine`` (97.8% unpruned); docs/compression.md has the full table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwsim.compress._common import (CompressionError, check_fraction, log_step, refuse_clustered,
                                    refuse_quantized, select_layers, weighted_nodes)
from hwsim.graph import Graph, Node

__all__ = ["ChannelAnalysis", "analyze_channels", "prune_structured", "prune_unstructured", "sparsity_of"]

_UNARY = {"ReLU", "ReLU6", "LeakyReLU", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "SELU", "SiLU", "Mish",
          "GELU", "MaxPool", "AvgPool", "GlobalAvgPool"}


# ----------------------------------------------------------------------------------------------------
# Unstructured


def prune_unstructured(graph: Graph, sparsity: float, *, scope: str = "global",
                       layers: Iterable[str] | None = None) -> Graph:
    """Zero the smallest-magnitude weights of Conv2D and Dense layers.

    Parameters
    ----------
    graph : Graph
        A float model (not changed).
    sparsity : float
        Fraction of weights to zero, in [0, 1). ``0`` returns a bitwise-identical copy.
    scope : {"global", "layer"}
        One magnitude threshold over all selected layers, or ``sparsity`` in each layer.
    layers : iterable of str, optional
        Names of the Conv2D/Dense nodes to prune (default: all).

    Returns
    -------
    Graph
        The pruned copy; ``metadata["compression"]`` gains a record with each layer's achieved sparsity.

    Ties are broken by position (stable sort), so the result is deterministic. Biases are not pruned.
    """
    sparsity = check_fraction(sparsity, "sparsity")
    if scope not in ("global", "layer"):
        raise CompressionError(f"scope must be 'global' or 'layer', got {scope!r}")
    refuse_quantized(graph, "pruning")
    refuse_clustered(graph, "pruning")
    nodes = select_layers(graph, weighted_nodes(graph), layers, "pruned")
    g = graph.copy()
    weights = list(dict.fromkeys(n.inputs[1] for n in nodes))
    if sparsity > 0 and weights:
        if scope == "layer":
            for w in weights:
                _zero_smallest([g.params[w]], sparsity)
        else:
            _zero_smallest([g.params[w] for w in weights], sparsity)
    g.validate()
    per_layer = {n.name: {"weight": n.inputs[1], "size": int(g.params[n.inputs[1]].size),
                          "sparsity": sparsity_of(g.params[n.inputs[1]])} for n in nodes}
    log_step(g, {"method": "prune_unstructured", "sparsity": sparsity, "scope": scope, "layers": per_layer})
    return g


def _zero_smallest(arrays: list[np.ndarray], sparsity: float) -> None:
    """Zero, in place, the ``floor(sparsity · total)`` smallest |values| across ``arrays``."""
    flat = np.concatenate([np.abs(a.astype(np.float64)).ravel() for a in arrays])
    k = int(np.floor(sparsity * flat.size))
    if k == 0:
        return
    drop = np.zeros(flat.size, bool)
    drop[np.argsort(flat, kind="stable")[:k]] = True
    start = 0
    for a in arrays:
        m = drop[start:start + a.size].reshape(a.shape)
        a[m] = 0
        start += a.size


def sparsity_of(w: np.ndarray) -> float:
    """Fraction of exactly-zero elements."""
    return float(np.count_nonzero(w == 0) / w.size) if w.size else 0.0


# ----------------------------------------------------------------------------------------------------
# Channel analysis


@dataclass
class ChannelAnalysis:
    """Where every channel of a graph comes from and which channels must be removed together.

    Attributes
    ----------
    ids : dict of str to numpy.ndarray
        Per tensor, one channel id per element of its last axis.
    owner : list of (str or None, int)
        Per channel id, the producing Conv2D/Dense node and the output channel, or (None, -1).
    pinned : dict of int to str
        Channel ids that must not be pruned, with the first reason found.
    parent : numpy.ndarray
        Union-find forest over channel ids (ids tied by Add/Mul/Concat share a root).
    producers : list of str
        Nodes that produce prunable channels (Conv2D groups == 1 and Dense with their own float weight).
    """

    graph: Graph
    ids: dict[str, np.ndarray] = field(default_factory=dict)
    owner: list[tuple[str | None, int]] = field(default_factory=list)
    pinned: dict[int, str] = field(default_factory=dict)
    parent: list[int] = field(default_factory=list)
    producers: list[str] = field(default_factory=list)
    reshapes: dict[str, bool] = field(default_factory=dict)
    sliced_params: dict[str, str] = field(default_factory=dict)  # param -> tensor whose channels it follows

    # -- union-find ---------------------------------------------------------------------------------
    def fresh(self, n: int, owner: str | None = None, reason: str | None = None) -> np.ndarray:
        start = len(self.owner)
        for c in range(n):
            self.owner.append((owner, c if owner else -1))
            self.parent.append(start + c)
            if reason is not None:
                self.pinned[start + c] = reason
        return np.arange(start, start + n, dtype=np.int64)

    def find(self, i: int) -> int:
        p = self.parent
        root = i
        while p[root] != root:
            root = p[root]
        while p[i] != root:
            p[i], i = root, p[i]
        return root

    def union(self, a: np.ndarray, b: np.ndarray) -> None:
        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            rx, ry = self.find(x), self.find(y)
            if rx != ry:
                self.parent[max(rx, ry)] = min(rx, ry)

    def pin(self, ids: np.ndarray, reason: str) -> None:
        for i in ids.tolist():
            self.pinned.setdefault(i, reason)

    # -- groups -------------------------------------------------------------------------------------
    def groups(self) -> dict[int, list[int]]:
        """Root id -> member channel ids."""
        out: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return out

    def pin_reason(self, members: list[int]) -> str | None:
        for m in members:
            if m in self.pinned:
                return self.pinned[m]
        return None


def _param_users(graph: Graph, p: str) -> int:
    return sum(n.inputs.count(p) for n in graph.nodes)


def _exclusive(graph: Graph, node: Node, params: list[str]) -> bool:
    return all(p in graph.params and graph.params[p].dtype.kind == "f" and _param_users(graph, p) == 1
               for p in params)


def analyze_channels(graph: Graph) -> ChannelAnalysis:
    """Track every channel through ``graph`` (see the module docstring for the rules per op)."""
    a = ChannelAnalysis(graph)
    t = graph.tensors
    for spec in graph.inputs:
        a.ids[spec.name] = a.fresh(spec.shape[-1] if spec.shape else 1, reason=f"graph input '{spec.name}'")
    for node in graph.nodes:
        out = node.outputs[0]
        oshape = t[out].shape
        acts = [i for i in node.inputs if i not in graph.params]
        where = f"{node.op} node '{node.name}'"
        op = node.op
        if op in ("Conv2D", "Dense"):
            x = node.inputs[0]
            w = graph.params.get(node.inputs[1])
            own = _exclusive(graph, node, node.inputs[1:])
            c_in = t[x].shape[-1]
            groups = node.attrs.get("groups", 1) if op == "Conv2D" else 1
            if w is None or not own:
                a.pin(a.ids[x], f"{where} shares or lacks its float weight")
                a.ids[out] = a.fresh(oshape[-1], reason=f"output of {where} (shared or non-float weight)")
            elif groups == 1:
                a.ids[out] = a.fresh(oshape[-1], owner=node.name)
                a.producers.append(node.name)
            elif groups == c_in and w.shape[-1] == 1:
                a.ids[out] = np.repeat(a.ids[x], w.shape[0] // c_in)
            else:
                a.pin(a.ids[x], f"grouped convolution '{node.name}' (groups={groups})")
                a.ids[out] = a.fresh(oshape[-1], reason=f"output of grouped convolution '{node.name}'")
        elif op == "BatchNorm":
            if _exclusive(graph, node, node.inputs[1:]):
                a.ids[out] = a.ids[node.inputs[0]]
                for p in node.inputs[1:]:
                    a.sliced_params[p] = node.inputs[0]
            else:
                a.pin(a.ids[node.inputs[0]], f"{where} shares its parameters")
                a.ids[out] = a.fresh(oshape[-1], reason=f"output of {where}")
        elif op in _UNARY:
            a.ids[out] = a.ids[node.inputs[0]]
        elif op == "Pad" and node.attrs["pads"][-1] == [0, 0]:
            a.ids[out] = a.ids[node.inputs[0]]
        elif op in ("Add", "Mul"):
            _elementwise(a, graph, node, where)
        elif op == "Concat":
            rank = len(oshape)
            axis = node.attrs["axis"] % rank
            if axis == rank - 1:
                a.ids[out] = np.concatenate([a.ids[i] for i in node.inputs])
            else:
                for i in node.inputs[1:]:
                    a.union(a.ids[node.inputs[0]], a.ids[i])
                a.ids[out] = a.ids[node.inputs[0]]
        elif op in ("Flatten", "Reshape"):
            mapped = _reshape_map(a, graph, node)
            if mapped is None:
                a.pin(a.ids[node.inputs[0]], f"{where} does not keep channels on the last axis")
                a.ids[out] = a.fresh(oshape[-1] if oshape else 1, reason=f"output of {where}")
            else:
                a.ids[out] = mapped
        else:
            for i in acts:
                a.pin(a.ids[i], f"{where} reads them")
            a.ids[out] = a.fresh(oshape[-1] if oshape else 1, reason=f"output of {where}")
    for o in graph.outputs:
        if o in a.ids:
            a.pin(a.ids[o], f"graph output '{o}'")
    return a


def _elementwise(a: ChannelAnalysis, graph: Graph, node: Node, where: str) -> None:
    out = node.outputs[0]
    c = graph.tensors[out].shape[-1] if graph.tensors[out].shape else 1
    full, bcast = [], []
    for i in node.inputs:
        s = graph.tensors[i].shape
        last = s[-1] if s else 1
        if i in graph.params:
            if last == c and c > 1:
                if _param_users(graph, i) == 1 and graph.params[i].dtype.kind == "f":
                    a.sliced_params[i] = out
                else:
                    bcast.append(None)  # a shared per-channel constant: pin below
                    a.sliced_params.pop(i, None)
                    full.append(None)
            continue
        (full if last == c else bcast).append(i)
    acts = [i for i in full if i is not None]
    if None in full or not acts:
        for i in acts:
            a.pin(a.ids[i], f"{where} has a shared per-channel constant")
        a.ids[out] = a.fresh(c, reason=f"output of {where}")
        return
    for i in acts[1:]:
        a.union(a.ids[acts[0]], a.ids[i])
    a.ids[out] = a.ids[acts[0]]


def _reshape_map(a: ChannelAnalysis, graph: Graph, node: Node) -> np.ndarray | None:
    """Channel ids of a Flatten/Reshape output, or None when channels do not stay on the last axis."""
    x = node.inputs[0]
    ins, outs = graph.tensors[x].shape, graph.tensors[node.outputs[0]].shape
    if len(ins) < 2 or len(outs) < 2 or ins[0] != outs[0]:
        return None
    if node.op == "Reshape":
        shape = node.attrs["shape"]
        if len(shape) != len(outs) or shape[-1] == 0:
            return None
    grid = np.broadcast_to(a.ids[x], ins[1:]).reshape(-1, outs[-1])
    if not (grid == grid[0]).all():
        return None
    if node.op == "Reshape":
        a.reshapes[node.name] = True
    return np.ascontiguousarray(grid[0])


# ----------------------------------------------------------------------------------------------------
# Structured


def _filter_norms(graph: Graph, node: Node, norm: str) -> np.ndarray:
    w = graph.params[node.inputs[1]].astype(np.float64).reshape(graph.params[node.inputs[1]].shape[0], -1)
    v = np.abs(w).sum(1) if norm == "l1" else np.sqrt((w * w).sum(1))
    users = graph.consumers(node.outputs[0])
    if len(users) == 1 and users[0].op == "BatchNorm" and node.outputs[0] not in graph.outputs:
        bn = users[0]
        gamma, var = (graph.params.get(bn.inputs[i]) for i in (1, 4))
        if gamma is not None and var is not None:
            v = v * np.abs(gamma.astype(np.float64)) / np.sqrt(var.astype(np.float64) + bn.attrs["epsilon"])
    return v


def prune_structured(graph: Graph, ratio: float, *, norm: str = "l1", layers: Iterable[str] | None = None,
                     calibration: np.ndarray | None = None, correction: str = "affine",
                     calibration_limit: int | None = 64, channel_multiple: int = 1) -> Graph:
    """Remove ``ratio`` of the output channels of each prunable layer (or tied group of layers).

    Parameters
    ----------
    graph : Graph
        A float model (not changed).
    ratio : float
        Fraction of channels to remove, in [0, 1); ``round(ratio · n)`` of the ``n`` prunable channel groups
        of each layer cluster (layers tied by residual Adds form one cluster), always keeping at least one
        channel per layer. ``0`` returns a bitwise-identical copy.
    norm : {"l1", "l2"}
        Filter ranking criterion.
    layers : iterable of str, optional
        Producer layers to prune (default: every layer with prunable channels). A layer tied to others by an
        Add prunes the whole cluster. A name that is not a prunable layer is an error naming it and why.
    calibration : numpy.ndarray, optional
        Inputs for the bias correction (default: the model's bundled ``calibration`` set, if any).
    correction : {"affine", "mean", "none"}
        Restore the per-channel statistics of every downstream layer from calibration data (module
        docstring): mean and spread (``affine``), mean only (``mean``), or nothing. Without calibration data
        nothing is corrected. The calibration set runs as one batch.
    calibration_limit : int or None
        Use at most this many calibration samples for the correction (None: all).
    channel_multiple : int
        Round the number of channel groups each cluster keeps up to a multiple of this (e.g. 16, a DPU's
        input/output channel parallelism), so that pruned layers still fill the MAC array.

    Returns
    -------
    Graph
        The pruned, validated copy; ``metadata["compression"]`` records the channels kept per layer.
    """
    ratio = check_fraction(ratio, "ratio")
    if norm not in ("l1", "l2"):
        raise CompressionError(f"norm must be 'l1' or 'l2', got {norm!r}")
    if isinstance(channel_multiple, bool) or not isinstance(channel_multiple, (int, np.integer)) \
            or channel_multiple < 1:
        raise CompressionError(f"channel_multiple must be a positive integer, got {channel_multiple!r}")
    if correction not in ("affine", "mean", "none"):
        raise CompressionError(f"correction must be 'affine', 'mean' or 'none', got {correction!r}")
    refuse_quantized(graph, "pruning")
    refuse_clustered(graph, "pruning")
    a = analyze_channels(graph)
    groups = a.groups()
    # Clusters of producers tied together through shared groups.
    cluster_of: dict[str, str] = {p: p for p in a.producers}

    def cfind(p: str) -> str:
        while cluster_of[p] != p:
            p = cluster_of[p]
        return p

    for members in groups.values():
        owners = sorted({a.owner[m][0] for m in members if a.owner[m][0] is not None})
        for o in owners[1:]:
            ra, rb = cfind(owners[0]), cfind(o)
            if ra != rb:
                cluster_of[rb] = ra
    clusters: dict[str, list[str]] = {}
    for p in a.producers:
        clusters.setdefault(cfind(p), []).append(p)
    groups_of: dict[str, list[int]] = {}
    for root, members in groups.items():
        owners = {a.owner[m][0] for m in members}
        if None in owners:
            continue  # mixes with a graph input or a non-producer: pinned anyway
        groups_of.setdefault(cfind(next(iter(owners))), []).append(root)

    if layers is None:
        chosen = [c for c in clusters if any(a.pin_reason(groups[r]) is None for r in groups_of.get(c, []))]
    else:
        chosen = []
        for name in layers:
            _check_prunable(graph, a, groups, groups_of, cfind, name)
            if cfind(name) not in chosen:
                chosen.append(cfind(name))

    norms = {p: _filter_norms(graph, graph.node(p), norm) for p in a.producers}
    pruned: set[int] = set()
    record: dict[str, Any] = {}
    for c in chosen:
        roots = [r for r in groups_of.get(c, []) if a.pin_reason(groups[r]) is None]
        scores = []
        for r in roots:
            s = [norms[a.owner[m][0]][a.owner[m][1]] / (norms[a.owner[m][0]].mean() or 1.0)
                 for m in groups[r]]
            scores.append(float(np.mean(s)))
        target = int(np.floor(ratio * len(roots) + 0.5))
        if channel_multiple > 1 and target:
            # Keep a multiple of the hardware's channel parallelism (rounding the kept count up).
            kept = len(roots) - target
            target = max(0, len(roots) - min(len(roots), -(-kept // channel_multiple) * channel_multiple))
        remaining = {p: int(a.ids[graph.node(p).outputs[0]].size) for p in clusters[c]}
        removed = 0
        for k in np.argsort(np.asarray(scores), kind="stable"):
            if removed >= target:
                break
            members = groups[roots[int(k)]]
            hit: dict[str, int] = {}
            for m in members:
                hit[a.owner[m][0]] = hit.get(a.owner[m][0], 0) + 1
            if any(remaining[p] - n < 1 for p, n in hit.items()):
                continue
            for p, n in hit.items():
                remaining[p] -= n
            pruned.update(members)
            removed += 1
        for p in clusters[c]:
            before = int(a.ids[graph.node(p).outputs[0]].size)
            gone = sorted(a.owner[m][1] for m in pruned if a.owner[m][0] == p)
            record[p] = {"channels_before": before, "channels_after": remaining[p],
                         "tied_with": [q for q in clusters[c] if q != p], "pruned_channels": gone}

    if ratio == 0 or not pruned:
        g = graph.copy()
        g.validate()
        log_step(g, {"method": "prune_structured", "ratio": ratio, "norm": norm,
                     "channel_multiple": channel_multiple, "correction": "none", "corrected_layers": [],
                     "layers": record})
        return g

    pruned_mask = np.zeros(len(a.owner), bool)
    pruned_mask[sorted(pruned)] = True
    g = _surgery(graph, a, pruned_mask)
    corrected: list[str] = []
    if correction != "none":
        if calibration is None:
            calibration = graph.data.get("calibration", {}).get("x")
        if calibration is not None:
            calibration = np.asarray(calibration, np.float32)
            if calibration_limit is not None:
                calibration = calibration[:calibration_limit]
            corrected = _correct_statistics(graph, g, a, pruned_mask, calibration, correction)
    log_step(g, {"method": "prune_structured", "ratio": ratio, "norm": norm,
                 "channel_multiple": channel_multiple, "correction": correction if corrected else "none",
                 "corrected_layers": corrected, "layers": record})
    return g


def _check_prunable(graph: Graph, a: ChannelAnalysis, groups, groups_of, cfind, name: str) -> None:
    names = {n.name for n in graph.nodes}
    if name not in names:
        raise CompressionError(f"layer '{name}': no such node in model '{graph.name}'")
    if name not in a.producers:
        node = graph.node(name)
        if node.op == "Conv2D" and node.attrs["groups"] > 1:
            raise CompressionError(f"layer '{name}' cannot be pruned: it is a grouped/depthwise convolution, "
                                   f"whose channels follow its input channels (prune the layer feeding it)")
        if node.op in ("Conv2D", "Dense"):
            raise CompressionError(f"layer '{name}' cannot be pruned: its weight is shared with another node "
                                   f"or is not a float parameter")
        raise CompressionError(f"layer '{name}' ({node.op}) cannot be pruned: only Conv2D (groups=1) and "
                               f"Dense layers produce prunable channels")
    roots = groups_of.get(cfind(name), [])
    mine = [r for r in roots if any(a.owner[m][0] == name for m in groups[r])]
    free = [r for r in mine if a.pin_reason(groups[r]) is None]
    if not free:
        reason = a.pin_reason(groups[mine[0]]) if mine else "no channels"
        raise CompressionError(f"layer '{name}' cannot be pruned: its output channels are pinned by {reason}")


def _walk(graph: Graph, x: np.ndarray, hook) -> None:
    """Run ``graph`` node by node in float32 on one batch, calling ``hook(node, env)`` before each node
    (the hook may change the node's parameters); tensors are dropped after their last use."""
    from hwsim.emulate.float_ref import KERNELS

    last: dict[str, int] = {}
    for i, n in enumerate(graph.nodes):
        for t in n.inputs:
            last[t] = i
    env: dict[str, np.ndarray] = {graph.inputs[0].name: np.asarray(x, np.float32)}
    with np.errstate(over="ignore", under="ignore"):
        for i, node in enumerate(graph.nodes):
            hook(node, env)
            args = [env[t] if t in env else graph.params[t].astype(np.float32) for t in node.inputs]
            env[node.outputs[0]] = np.asarray(KERNELS[node.op](node.attrs, *args), np.float32)
            for t in node.inputs:
                if last.get(t) == i and t in env:
                    del env[t]


def _pre_activation(node: Node, env: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> np.ndarray:
    """The node's output on the current batch as [rows, channels] float64 (before any activation)."""
    from hwsim.emulate.float_ref import KERNELS

    args = [env[t] if t in env else params[t].astype(np.float32) for t in node.inputs]
    z = np.asarray(KERNELS[node.op](node.attrs, *args), np.float64)
    return z.reshape(-1, z.shape[-1])


def _correct_statistics(orig: Graph, g: Graph, a: ChannelAnalysis, pruned: np.ndarray,
                        calibration: np.ndarray, kind: str) -> list[str]:
    """Restore, in execution order, the per-channel statistics of every Conv2D/Dense downstream of a pruned
    channel (module docstring): ``mean`` shifts the bias, ``affine`` also rescales the filter so that mean and
    standard deviation over the calibration set match the original model."""
    keep = {t: ~pruned[ids] for t, ids in a.ids.items()}
    affected: set[str] = set()
    for node in orig.nodes:
        out = node.outputs[0]
        if any(t in affected for t in node.inputs) or (out in keep and not keep[out].all()):
            affected.add(out)
    names = {n.name for n in orig.nodes if n.name in a.producers and n.inputs[0] in affected}
    if not names:
        return []
    want: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def record(node: Node, env: dict[str, np.ndarray]) -> None:
        if node.name in names:
            z = _pre_activation(node, env, orig.params)
            want[node.name] = (z.mean(0), z.std(0))

    _walk(orig, calibration, record)

    def correct(node: Node, env: dict[str, np.ndarray]) -> None:
        if node.name not in names:
            return
        z = _pre_activation(node, env, g.params)
        k = keep[node.outputs[0]]
        mean_o, std_o = want[node.name][0][k], want[node.name][1][k]
        mean_p, std_p = z.mean(0), z.std(0)
        scale = np.ones_like(mean_p)
        if kind == "affine":
            # A channel that became constant cannot get its spread back; one that was constant stays so.
            scale = np.where(std_p > 1e-12, std_o / np.maximum(std_p, 1e-12), 1.0)
            w = g.params[node.inputs[1]].astype(np.float64)
            g.params[node.inputs[1]] = (w * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
        if len(node.inputs) > 2:
            b = g.params[node.inputs[2]].astype(np.float64)
        else:
            b = np.zeros(mean_p.size)
            bname, i = node.name + ".bias", 2
            while bname in g.params or bname in g.tensors:
                bname, i = f"{node.name}.bias_{i}", i + 1
            node.inputs.append(bname)
        g.params[node.inputs[2]] = (scale * (b - mean_p) + mean_o).astype(np.float32)

    _walk(g, calibration, correct)
    g.validate()
    return [n.name for n in orig.nodes if n.name in names]


def _surgery(graph: Graph, a: ChannelAnalysis, pruned: np.ndarray) -> Graph:
    g = graph.copy()
    keep = {t: ~pruned[ids] for t, ids in a.ids.items()}
    for node in g.nodes:
        op = node.op
        out = node.outputs[0]
        if op in ("Conv2D", "Dense") and node.name in a.producers:
            x, wname = node.inputs[0], node.inputs[1]
            w = g.params[wname].astype(np.float32)
            kin, kout = keep[x], keep[out]
            if not kin.all():
                w = w[..., kin] if op == "Conv2D" else w[:, kin]
            g.params[wname] = np.ascontiguousarray(w[kout], dtype=np.float32)
            if len(node.inputs) > 2:
                g.params[node.inputs[2]] = np.ascontiguousarray(g.params[node.inputs[2]][kout])
        elif op == "Conv2D" and node.inputs[1] in g.params and node.attrs["groups"] > 1 and out in keep \
                and node.inputs[0] in keep and not keep[node.inputs[0]].all():
            # depthwise: follows its input channels
            kout = keep[out]
            g.params[node.inputs[1]] = np.ascontiguousarray(g.params[node.inputs[1]][kout])
            if len(node.inputs) > 2:
                g.params[node.inputs[2]] = np.ascontiguousarray(g.params[node.inputs[2]][kout])
            node.attrs["groups"] = int(keep[node.inputs[0]].sum())
        elif op == "Reshape" and a.reshapes.get(node.name) and not keep[out].all():
            shape = list(node.attrs["shape"])
            if shape[-1] != -1:
                shape[-1] = int(keep[out].sum())
            node.attrs["shape"] = shape
    for p, tensor in a.sliced_params.items():
        k = keep[tensor]
        if not k.all():
            arr = g.params[p]
            g.params[p] = np.ascontiguousarray(arr[..., k])
    g.validate()
    return g
