"""Pieces shared by the compression methods: the error type, layer selection, the metadata log."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np

from hwsim.errors import HwsimError
from hwsim.graph import Graph, Node

#: Metadata key under which every compression step appends a record (method, settings, per-layer facts).
LOG_KEY = "compression"
#: Metadata key of the clustered-weight table (see :mod:`hwsim.compress.cluster`).
CLUSTER_KEY = "clustered_weights"


class CompressionError(HwsimError):
    """A compression request cannot be carried out: bad ratio, unknown or unprunable layer, rank too large."""


def check_fraction(value: Any, name: str, *, low_open: bool = False, high_open: bool = True) -> float:
    """``value`` as a float in [0, 1) (by default), else CompressionError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise CompressionError(f"{name} must be a number, got {value!r}")
    v = float(value)
    lo_ok = v > 0 if low_open else v >= 0
    hi_ok = v < 1 if high_open else v <= 1
    if not (np.isfinite(v) and lo_ok and hi_ok):
        lo = "(0" if low_open else "[0"
        hi = "1)" if high_open else "1]"
        raise CompressionError(f"{name} must be in {lo}, {hi}, got {value!r}")
    return v


def weighted_nodes(graph: Graph) -> list[Node]:
    """Conv2D and Dense nodes whose weight is a float parameter, in execution order."""
    out = []
    for n in graph.nodes:
        if n.op in ("Conv2D", "Dense") and n.inputs[1] in graph.params \
                and graph.params[n.inputs[1]].dtype.kind == "f":
            out.append(n)
    return out


def select_layers(graph: Graph, candidates: list[Node], layers: Iterable[str] | None,
                  what: str) -> list[Node]:
    """The candidates named in ``layers`` (all when None); unknown or ineligible names are errors."""
    if layers is None:
        return candidates
    names = list(layers)
    by_name = {n.name: n for n in candidates}
    all_names = {n.name for n in graph.nodes}
    for name in names:
        if name not in all_names:
            raise CompressionError(f"layer '{name}': no such node in model '{graph.name}'")
        if name not in by_name:
            op = graph.node(name).op
            raise CompressionError(f"layer '{name}' ({op}) cannot be {what}: only Conv2D and Dense layers "
                                   f"with float weights can")
    return [by_name[n] for n in names]


def refuse_quantized(graph: Graph, method: str) -> None:
    """Compression works on float models; a pre-quantized graph must be compressed before quantization."""
    if graph.quant:
        raise CompressionError(f"model '{graph.name}' is pre-quantized (it carries quant specs); {method} "
                               f"works on float models: compress first, then quantize")


def refuse_clustered(graph: Graph, method: str) -> None:
    """Changing weights under a codebook would leave it stale: cluster last."""
    if graph.metadata.get(CLUSTER_KEY):
        raise CompressionError(f"model '{graph.name}' has clustered weights; {method} would invalidate their "
                               f"codebooks: apply {method} before clustering")


def log_step(graph: Graph, record: dict[str, Any]) -> None:
    """Append ``record`` to ``graph.metadata['compression']`` (JSON-safe)."""
    steps = list(graph.metadata.get(LOG_KEY, []))
    steps.append(json.loads(json.dumps(record, default=_json_default)))
    graph.metadata[LOG_KEY] = steps


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON-serialisable: {type(v).__name__}")


def unique_name(taken: set[str], base: str) -> str:
    """``base`` or ``base_2``, ``base_3``, ... whichever is not in ``taken``; the result is added to it."""
    name, i = base, 2
    while name in taken:
        name = f"{base}_{i}"
        i += 1
    taken.add(name)
    return name


def all_names(graph: Graph) -> set[str]:
    """Every node, tensor and parameter name of the graph."""
    names = {t.name for t in graph.inputs} | set(graph.params)
    for n in graph.nodes:
        names.add(n.name)
        names.update(n.outputs)
    return names
