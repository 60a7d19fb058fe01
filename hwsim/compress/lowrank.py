"""Low-rank factorisation of Dense and Conv2D layers by truncated SVD.

* **Dense** ``W [out, in] ≈ B·A`` with ``A = S_r·V_rᵀ [r, in]`` and ``B = U_r [out, r]``: two Dense layers
  ``in → r → out`` (the bias stays on the second).
* **Conv2D, mode "channel"** (groups 1): ``W`` as a matrix ``[O, KH·KW·I]`` (one row per filter)
  ``≈ U_r·(S_r·V_rᵀ)``:
  a KH×KW convolution with ``r`` filters (same strides, pads, dilations) followed by a 1×1 convolution
  ``r → O`` carrying the bias.
* **Conv2D, mode "spatial"** (groups 1, KH > 1 and KW > 1): ``W`` as a matrix ``M[(i, kh), (o, kw)]``
  ``≈ Σ_k s_k u_k v_kᵀ``: a KH×1 convolution with ``r`` filters (vertical stride, dilation and padding)
  followed by a 1×KW convolution ``r → O`` (horizontal ones) carrying the bias. Exact for the zero padding,
  because the first convolution has no bias. Dense and 1×1 layers fall back to the channel split.

The rank of each layer is the smallest one keeping a fraction ``energy`` of ``Σ s_k²`` (retained energy), or
the largest one whose two factors hold at most ``(1 − ratio)`` of the layer's parameters, or given per layer.
The Frobenius error of a factorised weight is exactly the discarded energy, ``‖W − W_r‖²_F = Σ_{k≥r} s_k²``
(Eckart–Young). A layer whose chosen rank is its full rank is **kept as it is** (so ``energy=1`` or
``ratio=0`` return a bitwise-identical model), and so is a layer whose factors would not be smaller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from hwsim.compress._common import (CompressionError, all_names, check_fraction, log_step, refuse_clustered,
                                    refuse_quantized, select_layers, unique_name, weighted_nodes)
from hwsim.graph import Graph, Node

__all__ = ["factorize", "layer_matrix", "max_rank", "reconstruct"]


def layer_matrix(w: np.ndarray, op: str, mode: str) -> np.ndarray:
    """The matrix whose SVD factorises weight ``w`` (float64)."""
    w = w.astype(np.float64)
    if op == "Dense":
        return w
    o, kh, kw, i = w.shape
    if mode == "spatial":
        return w.transpose(3, 1, 0, 2).reshape(i * kh, o * kw)  # rows (i, kh), columns (o, kw)
    return w.reshape(o, kh * kw * i)


def _mode_for(node: Node, w: np.ndarray, mode: str) -> str:
    if node.op == "Dense" or mode == "channel":
        return "channel"
    return "spatial" if w.shape[1] > 1 and w.shape[2] > 1 else "channel"


def max_rank(w: np.ndarray, op: str, mode: str = "channel") -> int:
    """The full rank a factorisation of ``w`` can have (``min`` of the matrix dimensions)."""
    return min(layer_matrix(w, op, mode).shape)


def _factor_params(w: np.ndarray, op: str, mode: str, r: int) -> int:
    m = layer_matrix(w, op, mode)
    return r * (m.shape[0] + m.shape[1])


def factorize(graph: Graph, *, energy: float | None = None, ratio: float | None = None,
              ranks: Mapping[str, int] | None = None, mode: str = "channel",
              layers: Iterable[str] | None = None) -> Graph:
    """Factorise Dense and Conv2D (groups 1) layers into two thinner layers by truncated SVD.

    Parameters
    ----------
    graph : Graph
        A float model (not changed).
    energy : float, optional
        Retained-energy threshold in (0, 1]: the smallest rank with ``Σ_{k<r} s_k² ≥ energy · Σ s_k²``.
    ratio : float, optional
        Target compression in [0, 1): the largest rank whose factors hold at most ``(1 − ratio)`` of the
        layer's weight parameters (at least rank 1).
    ranks : mapping of str to int, optional
        Explicit rank per layer name (overrides energy/ratio for those layers; the others use energy/ratio,
        or stay as they are when neither is given). A rank above the layer's full rank is an error.
    mode : {"channel", "spatial"}
        How convolutions split (module docstring).
    layers : iterable of str, optional
        Layers to consider (default: every Conv2D with groups 1 and every Dense).

    Returns
    -------
    Graph
        The factorised copy. ``metadata["compression"]`` records per layer the rank, full rank, retained and
        discarded energy, and parameters before and after.
    """
    if mode not in ("channel", "spatial"):
        raise CompressionError(f"mode must be 'channel' or 'spatial', got {mode!r}")
    if energy is not None and ratio is not None:
        raise CompressionError("give energy or ratio, not both")
    if energy is None and ratio is None and not ranks:
        raise CompressionError("give exactly one of energy or ratio (or explicit ranks)")
    if energy is not None:
        energy = check_fraction(energy, "energy", low_open=True, high_open=False)
    if ratio is not None:
        ratio = check_fraction(ratio, "ratio")
    refuse_quantized(graph, "low-rank factorisation")
    refuse_clustered(graph, "low-rank factorisation")
    candidates = [n for n in weighted_nodes(graph) if n.op == "Dense" or n.attrs["groups"] == 1]
    if layers is not None:
        for name in layers:
            if any(n.name == name for n in graph.nodes) and graph.node(name).op == "Conv2D" \
                    and graph.node(name).attrs["groups"] != 1:
                raise CompressionError(f"layer '{name}' cannot be factorised: it is a grouped/depthwise "
                                       f"convolution (groups={graph.node(name).attrs['groups']})")
    nodes = select_layers(graph, candidates, layers, "factorised")
    ranks = dict(ranks or {})
    names = {n.name for n in nodes}
    for name in ranks:
        if name not in names:
            select_layers(graph, candidates, [name], "factorised")
            raise CompressionError(f"layer '{name}': has an explicit rank but is not among the selected "
                                   f"layers")
    users: dict[str, int] = {}
    for n in graph.nodes:
        for t in n.inputs:
            users[t] = users.get(t, 0) + 1

    g = graph.copy()
    taken = all_names(g)
    record: dict[str, Any] = {}
    new_nodes: list[Node] = []
    replace: dict[str, list[Node]] = {}
    for node in nodes:
        wname = node.inputs[1]
        w = graph.params[wname]
        m_mode = _mode_for(node, w, mode)
        mat = layer_matrix(w, node.op, m_mode)
        full = min(mat.shape)
        u, s, vt = np.linalg.svd(mat, full_matrices=False)
        e = s * s
        total = float(e.sum())
        if node.name in ranks:
            r = ranks[node.name]
            if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1:
                raise CompressionError(f"layer '{node.name}': rank must be a positive integer, got {r!r}")
            if r > full:
                raise CompressionError(f"layer '{node.name}': rank {r} is larger than the layer allows "
                                       f"(full rank {full} for its {mat.shape[0]}x{mat.shape[1]} "
                                       f"{m_mode} matrix)")
        elif energy is not None:
            cum = np.cumsum(e) / total if total > 0 else np.ones_like(e)
            r = full if energy >= 1.0 else int(np.searchsorted(cum, energy - 1e-12) + 1)
            r = min(max(r, 1), full)
        elif ratio is not None:
            if ratio == 0:
                r = full
            else:
                r = int(np.floor((1.0 - ratio) * w.size / (mat.shape[0] + mat.shape[1])))
                r = min(max(r, 1), full)
        else:
            continue
        params_before = int(w.size)
        params_after = _factor_params(w, node.op, m_mode, r)
        entry = {"mode": m_mode, "rank": int(r), "full_rank": int(full),
                 "retained_energy": float(e[:r].sum() / total) if total > 0 else 1.0,
                 "discarded_energy": float(e[r:].sum()), "params_before": params_before}
        if r >= full or params_after >= params_before or users.get(wname, 0) > 1:
            why = ("full rank" if r >= full else "weight shared with another node" if users.get(wname, 0) > 1
                   else "factors would not be smaller")
            entry.update({"factorised": False, "reason": why, "params_after": params_before})
            record[node.name] = entry
            continue
        entry.update({"factorised": True, "params_after": params_after})
        record[node.name] = entry
        replace[node.name] = _split(g, node, u[:, :r], s[:r], vt[:r], m_mode, taken)
    for n in g.nodes:
        if n.name in replace:
            new_nodes.extend(replace[n.name])
            g.params.pop(n.inputs[1], None)
        else:
            new_nodes.append(n)
    g.nodes = new_nodes
    g.validate()
    log_step(g, {"method": "lowrank", "mode": mode, "energy": energy, "ratio": ratio,
                 "ranks": {k: int(v) for k, v in ranks.items()}, "layers": record})
    return g


def _split(g: Graph, node: Node, u: np.ndarray, s: np.ndarray, vt: np.ndarray, mode: str,
           taken: set[str]) -> list[Node]:
    """The two nodes replacing ``node`` (the second keeps its name and output tensor)."""
    r = s.size
    w = g.params[node.inputs[1]]
    first = unique_name(taken, f"{node.name}.lowrank")
    mid = unique_name(taken, f"{node.name}.lowrank_out")
    wa = unique_name(taken, f"{node.name}.weight_a")
    wb = unique_name(taken, f"{node.name}.weight_b")
    bias = node.inputs[2:]
    if node.op == "Dense":
        g.params[wa] = np.ascontiguousarray((s[:, None] * vt).astype(np.float32))  # [r, in]
        g.params[wb] = np.ascontiguousarray(u.astype(np.float32))                 # [out, r]
        return [Node(first, "Dense", [node.inputs[0], wa], [mid], {}),
                Node(node.name, "Dense", [mid, wb, *bias], list(node.outputs), {})]
    o, kh, kw, i = w.shape
    a = dict(node.attrs)
    if mode == "channel":
        g.params[wa] = np.ascontiguousarray((s[:, None] * vt).reshape(r, kh, kw, i).astype(np.float32))
        g.params[wb] = np.ascontiguousarray(u.reshape(o, 1, 1, r).astype(np.float32))
        a1 = dict(a)
        a2 = {"strides": [1, 1], "dilations": [1, 1], "pads": [0, 0, 0, 0], "groups": 1}
    else:
        # M[(i, kh), (o, kw)] = Σ_k u[(i, kh), k] s_k vt[k, (o, kw)]
        g.params[wa] = np.ascontiguousarray((u * s).reshape(i, kh, r).transpose(2, 1, 0)
                                            .reshape(r, kh, 1, i).astype(np.float32))
        g.params[wb] = np.ascontiguousarray(vt.reshape(r, o, kw).transpose(1, 2, 0)
                                            .reshape(o, 1, kw, r).astype(np.float32))
        t, left, b, rt = a["pads"]
        a1 = {"strides": [a["strides"][0], 1], "dilations": [a["dilations"][0], 1], "pads": [t, 0, b, 0],
              "groups": 1}
        a2 = {"strides": [1, a["strides"][1]], "dilations": [1, a["dilations"][1]], "pads": [0, left, 0, rt],
              "groups": 1}
    return [Node(first, "Conv2D", [node.inputs[0], wa], [mid], a1),
            Node(node.name, "Conv2D", [mid, wb, *bias], list(node.outputs), a2)]


def reconstruct(graph: Graph, name: str) -> np.ndarray:
    """The dense weight a factorised layer ``name`` computes (float64), in the original layout."""
    second = graph.node(name)
    first = graph.producer(second.inputs[0])
    wa = graph.params[first.inputs[1]].astype(np.float64)
    wb = graph.params[second.inputs[1]].astype(np.float64)
    if second.op == "Dense":
        return wb @ wa
    r = wa.shape[0]
    if wb.shape[2] > 1:
        # spatial: W[o, kh, kw, i] = Σ_k wb[o, 0, kw, k] · wa[k, kh, 0, i]
        return np.einsum("owk,khi->ohwi", wb[:, 0], wa[:, :, 0])
    return (wb.reshape(-1, r) @ wa.reshape(r, -1)).reshape((wb.shape[0],) + wa.shape[1:])
