"""Accuracy vs size vs latency over a range of compression settings (``hwsim compress sweep``)."""

from __future__ import annotations

import csv
import io
from typing import Any

from hwsim.compress._common import CompressionError
from hwsim.compress.report import compare_models
from hwsim.graph import Graph

__all__ = ["SWEEP_COLUMNS", "apply_method", "sweep", "sweep_csv"]

#: Columns of the sweep table and CSV.
SWEEP_COLUMNS = ("method", "setting", "value", "params", "nonzero_weights", "macs", "weight_bytes",
                 "stored_bytes", "cycles", "e2e_latency_ms", "speedup", "accuracy_float", "accuracy_sim")


def apply_method(graph: Graph, method: str, value: float | int, **options: Any) -> Graph:
    """One compression: ``prune`` (value = ratio; ``mode`` structured/unstructured), ``lowrank`` (value =
    parameter ratio) or ``cluster`` (value = bits)."""
    from hwsim.compress import cluster_weights, factorize, prune_structured, prune_unstructured

    if method == "prune":
        opts = dict(options)
        mode = opts.pop("mode", "structured")
        if mode == "structured":
            return prune_structured(graph, value, **opts)
        if mode == "unstructured":
            return prune_unstructured(graph, value, **opts)
        raise CompressionError(f"prune mode must be 'structured' or 'unstructured', got {mode!r}")
    if method == "lowrank":
        return factorize(graph, ratio=value, **options)
    if method == "cluster":
        return cluster_weights(graph, value, **options)
    raise CompressionError(f"method must be 'prune', 'lowrank' or 'cluster', got {method!r}")


def sweep(graph: Graph, method: str, values: list, target, *, limit: int | None = None,
          sparse: bool = False, **options: Any) -> list[dict[str, Any]]:
    """Compress ``graph`` once per value and report each against ``target`` (first row: the original).

    Every value is checked before any compression runs, so a bad value fails before any work is done.
    """
    if not values:
        raise CompressionError("sweep: no values given")
    setting = "bits" if method == "cluster" else "ratio"
    for v in values:
        if method == "cluster":
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 8:
                raise CompressionError(f"sweep: bits must be integers in 1..8, got {v!r}")
        elif not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v < 1:
            raise CompressionError(f"sweep: ratios must be in [0, 1), got {v!r}")
    models = [(None, graph)] + [(v, apply_method(graph, method, v, **options)) for v in values]
    rows = []
    for v, g in models:
        rep = compare_models(graph, g, targets=[target], sim_target=target, limit=limit, sparse=sparse)
        a, t = rep["after"], rep["targets"][0]
        cost = t["after"]
        rows.append({"method": method if v is not None else "original", "setting": setting,
                     "value": "" if v is None else v, "params": a["params"],
                     "nonzero_weights": a["nonzero_weights"], "macs": a["macs"],
                     "weight_bytes": cost.get("weight_bytes"), "stored_bytes": cost.get("stored_bytes"),
                     "cycles": cost.get("cycles"), "e2e_latency_ms": cost.get("e2e_latency_ms"),
                     "speedup": t["speedup"], "accuracy_float": a["accuracy_float"],
                     "accuracy_sim": a["accuracy_sim"], "note": cost.get("error", "")})
    return rows


def sweep_csv(rows: list[dict[str, Any]]) -> str:
    """The sweep table as CSV (columns :data:`SWEEP_COLUMNS`)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(SWEEP_COLUMNS), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in SWEEP_COLUMNS})
    return buf.getvalue()
