"""Weight sharing: k-means clustering of weights into ``2^b`` shared values per layer or per output channel.

**Representation.** The IR has no codebook concept, so a clustered weight ``W`` is stored with two extra,
ordinary parameters and a metadata table, and the dense weight itself stays in the graph:

* ``<W>.codebook``: float32, ``[K]`` (per tensor) or ``[O, K]`` (per output channel, axis 0), ``K ≤ 2^b``;
* ``<W>.indices``: uint8 with the shape of ``W`` (one index per element, values ``< K``);
* ``<W>``: float32, exactly ``codebook[indices]`` (``codebook[o, indices[o, ...]]`` per channel);
* ``metadata["clustered_weights"][<W>] = {"codebook", "indices", "bits", "granularity", "clusters"}``.

No node reads the codebook or the indices, so every v1 reader loads the file as it is, and the float
reference, the simulator and the cost model run it unchanged: the dense weight holds at most ``2^b``
distinct values (per channel). :func:`expand_clustered` rebuilds the dense weights from codebooks and
indices (after someone edited a codebook, or to check a file) and :func:`check_clustered` verifies the
invariant. Quantizing a clustered layer quantizes its codebook: quantization is element-wise with one scale
per tensor (or channel), so ``q(codebook[idx]) = q(codebook)[idx]``; :func:`quantized_codebook` gives the
integer codebook for a scale.

**k-means.** One-dimensional Lloyd iterations on float64 values, initialised linearly between the minimum
and maximum (Han et al., *Deep Compression*, found linear initialisation best for weight sharing;
``init="kmeans++"`` draws seeded k-means++ centres instead). Deterministic: the same input, bits and seed
give the same codebook. When a tensor (or channel) has at most ``2^b`` distinct values, the codebook is
exactly those values, so clustering is the identity, bitwise. Empty clusters are dropped (``K`` may be
less than ``2^b``; per-channel codebooks are padded by repeating their last centroid).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from hwsim.compress._common import (CLUSTER_KEY, CompressionError, all_names, log_step, refuse_quantized,
                                    select_layers, weighted_nodes)
from hwsim.graph import Graph

__all__ = ["check_clustered", "cluster_weights", "clustered_weights", "expand_clustered", "kmeans_1d",
           "quantized_codebook"]

_MAX_ITER = 100


def kmeans_1d(values: np.ndarray, k: int, *, init: str = "linear",
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cluster 1-D ``values`` into at most ``k`` centroids.

    Returns
    -------
    (centroids, labels)
        ``centroids`` sorted ascending (float64, no empty cluster), ``labels`` the index of each value's
        centroid. With at most ``k`` distinct values (bit patterns: ``-0.0`` and ``+0.0`` count as two) the
        centroids are exactly those values.
    """
    v = np.ascontiguousarray(values, dtype=np.float64).ravel()
    # Distinct bit patterns, so that -0.0 and +0.0 stay apart and a small enough tensor comes back bitwise.
    patterns, inverse = np.unique(v.view(np.uint64), return_inverse=True)
    if patterns.size <= k:
        vals = patterns.view(np.float64)
        order = np.argsort(vals, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        return vals[order], rank[inverse.ravel()]
    distinct = np.unique(v)
    if init == "linear":
        c = np.linspace(distinct[0], distinct[-1], k)
    elif init == "kmeans++":
        c = _kmeans_pp(v, k, np.random.default_rng(seed))
    else:
        raise CompressionError(f"init must be 'linear' or 'kmeans++', got {init!r}")
    for _ in range(_MAX_ITER):
        c = np.sort(c)
        labels = _assign(v, c)
        counts = np.bincount(labels, minlength=c.size)
        sums = np.bincount(labels, weights=v, minlength=c.size)
        keep = counts > 0
        new = sums[keep] / counts[keep]
        if new.size == c.size and np.array_equal(new, c):
            break
        c = new
    c = np.sort(c)
    return c, _assign(v, c)


def _assign(v: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (ties to the lower one) for sorted centroids ``c``."""
    if c.size == 1:
        return np.zeros(v.size, np.int64)
    mid = (c[1:] + c[:-1]) / 2
    return np.searchsorted(mid, v, side="right")


def _kmeans_pp(v: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = [v[rng.integers(v.size)]]
    d2 = (v - centres[0]) ** 2
    for _ in range(1, k):
        total = d2.sum()
        if total <= 0:
            break
        centres.append(v[rng.choice(v.size, p=d2 / total)])
        d2 = np.minimum(d2, (v - centres[-1]) ** 2)
    return np.unique(np.asarray(centres))


def cluster_weights(graph: Graph, bits: int, *, per_channel: bool = False,
                    layers: Iterable[str] | None = None,
                    init: str = "linear", seed: int = 0) -> Graph:
    """Replace each selected layer's weight by ``2^bits`` shared values (k-means): codebook + indices.

    Parameters
    ----------
    graph : Graph
        A float model (not changed).
    bits : int
        Index width, 1..8: at most ``2^bits`` distinct values per tensor (or per output channel).
    per_channel : bool
        One codebook per output channel (axis 0 of the weight) instead of one per tensor.
    layers : iterable of str, optional
        Conv2D/Dense layers to cluster (default: all).
    init : {"linear", "kmeans++"}
        Centroid initialisation; ``seed`` seeds k-means++.
    seed : int
        Seed for ``init="kmeans++"``.

    Returns
    -------
    Graph
        The clustered copy (representation in the module docstring).
    """
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 8:
        raise CompressionError(f"bits must be an integer in 1..8 (indices are stored as uint8), got {bits!r}")
    if init not in ("linear", "kmeans++"):
        raise CompressionError(f"init must be 'linear' or 'kmeans++', got {init!r}")
    refuse_quantized(graph, "clustering")
    nodes = select_layers(graph, weighted_nodes(graph), layers, "clustered")
    g = graph.copy()
    table = dict(g.metadata.get(CLUSTER_KEY, {}))
    taken = all_names(g)
    k = 2 ** int(bits)
    record: dict[str, Any] = {}
    done: dict[str, str] = {}  # weight -> first layer that clustered it in this call (shared weights)
    for node in nodes:
        wname = node.inputs[1]
        if wname in done:
            record[node.name] = {"weight": wname, "shared_with": done[wname]}
            continue
        if wname in table:
            raise CompressionError(f"layer '{node.name}': weight '{wname}' is already clustered")
        done[wname] = node.name
        w = g.params[wname]
        cb_name, idx_name = f"{wname}.codebook", f"{wname}.indices"
        for n in (cb_name, idx_name):
            if n in taken:
                raise CompressionError(f"layer '{node.name}': cannot store the clustering, the name '{n}' "
                                       f"is taken")
        if per_channel:
            rows = w.reshape(w.shape[0], -1)
            books, labels = [], []
            for row in rows:
                c, lab = kmeans_1d(row, k, init=init, seed=seed)
                books.append(c.astype(np.float32))
                labels.append(lab)
            width = max(b.size for b in books)
            codebook = np.stack([np.concatenate([b, np.full(width - b.size, b[-1], np.float32)])
                                 for b in books])
            indices = np.stack(labels).astype(np.uint8).reshape(w.shape)
            flat = indices.reshape(w.shape[0], -1).astype(np.int64)
            dense = np.take_along_axis(codebook, flat, 1).reshape(w.shape)
            clusters = [int(b.size) for b in books]
        else:
            c, lab = kmeans_1d(w, k, init=init, seed=seed)
            codebook = c.astype(np.float32)
            indices = lab.astype(np.uint8).reshape(w.shape)
            dense = codebook[indices]
            clusters = int(codebook.size)
        g.params[wname] = np.ascontiguousarray(dense, dtype=np.float32)
        g.params[cb_name] = np.ascontiguousarray(codebook)
        g.params[idx_name] = np.ascontiguousarray(indices)
        taken.update((cb_name, idx_name))
        table[wname] = {"codebook": cb_name, "indices": idx_name, "bits": int(bits),
                        "granularity": "per_channel" if per_channel else "per_tensor"}
        err = float(((dense.astype(np.float64) - w.astype(np.float64)) ** 2).sum())
        record[node.name] = {"weight": wname, "clusters": clusters, "squared_error": err}
    g.metadata[CLUSTER_KEY] = table
    g.validate()
    log_step(g, {"method": "cluster", "bits": int(bits), "per_channel": per_channel, "init": init,
                 "seed": seed, "layers": record})
    return g


def clustered_weights(graph: Graph) -> dict[str, dict[str, Any]]:
    """The clustered-weight table of ``graph`` (weight name -> codebook, indices, bits, granularity)."""
    return dict(graph.metadata.get(CLUSTER_KEY, {}))


def _dense_from(graph: Graph, wname: str, entry: dict[str, Any]) -> np.ndarray:
    where = f"clustered weight '{wname}'"
    try:
        cb = graph.params[entry["codebook"]]
        idx = graph.params[entry["indices"]]
        bits = int(entry["bits"])
        gran = entry["granularity"]
    except (KeyError, TypeError, ValueError) as exc:
        raise CompressionError(f"{where}: metadata entry is incomplete or names a missing parameter "
                               f"({exc})") from None
    if idx.dtype != np.uint8:
        raise CompressionError(f"{where}: indices '{entry['indices']}' must be uint8, got {idx.dtype}")
    if cb.dtype.kind != "f":
        raise CompressionError(f"{where}: codebook '{entry['codebook']}' must be float, got {cb.dtype}")
    k = cb.shape[-1] if cb.ndim else 0
    if k > 2 ** bits:
        raise CompressionError(f"{where}: codebook has {k} entries, more than 2^{bits}")
    if idx.size and int(idx.max()) >= k:
        raise CompressionError(f"{where}: index {int(idx.max())} is out of range for a codebook of "
                               f"{k} entries")
    if gran == "per_tensor":
        if cb.ndim != 1:
            raise CompressionError(f"{where}: a per-tensor codebook must be 1-D, got shape {list(cb.shape)}")
        return cb[idx].astype(np.float32)
    if gran == "per_channel":
        if cb.ndim != 2 or cb.shape[0] != idx.shape[0]:
            raise CompressionError(f"{where}: a per-channel codebook must be [{idx.shape[0]}, K], got "
                                   f"{list(cb.shape)}")
        flat = idx.reshape(idx.shape[0], -1).astype(np.int64)
        return np.take_along_axis(cb, flat, 1).reshape(idx.shape).astype(np.float32)
    raise CompressionError(f"{where}: granularity must be 'per_tensor' or 'per_channel', got {gran!r}")


def expand_clustered(graph: Graph) -> Graph:
    """A copy of ``graph`` whose clustered weights are rebuilt as ``codebook[indices]``.

    Graphs without clustered weights come back as a plain copy. Raises CompressionError naming the weight
    when an entry is inconsistent (missing parameter, wrong dtype, index out of range, shape mismatch).
    """
    g = graph.copy()
    for wname, entry in clustered_weights(g).items():
        dense = _dense_from(g, wname, entry)
        if wname in g.params and g.params[wname].shape != dense.shape:
            raise CompressionError(f"clustered weight '{wname}': indices have shape {list(dense.shape)} "
                                   f"but the weight has {list(g.params[wname].shape)}")
        g.params[wname] = np.ascontiguousarray(dense)
    g.validate()
    return g


def check_clustered(graph: Graph) -> None:
    """Raise CompressionError unless every clustered weight equals ``codebook[indices]`` bitwise."""
    for wname, entry in clustered_weights(graph).items():
        dense = _dense_from(graph, wname, entry)
        w = graph.params.get(wname)
        same = w is not None and w.dtype == np.float32 and w.shape == dense.shape \
            and np.array_equal(w.view(np.uint32), dense.view(np.uint32))
        if not same:
            raise CompressionError(f"clustered weight '{wname}' differs from its codebook[indices]; run "
                                   f"hwsim.compress.expand_clustered")


def quantized_codebook(codebook: np.ndarray, scale: np.ndarray | float, qmin: int, qmax: int) -> np.ndarray:
    """The integer codebook for weight scale(s) ``scale``: round-half-to-even ``codebook / scale`` clipped to
    ``[qmin, qmax]`` (per-channel codebooks take one scale per row). The simulator's own rounding of the
    expanded weight gives ``q(codebook)[indices]`` for its target's rounding rule; this helper is for
    reports."""
    cb = np.asarray(codebook, np.float64)
    s = np.asarray(scale, np.float64)
    if cb.ndim == 2:
        s = s.reshape(-1, 1)
    return np.clip(np.rint(cb / s), qmin, qmax).astype(np.int64)
