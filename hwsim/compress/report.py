"""What a compression gains on each target: size, MACs, cycles, latency and accuracy, before and after.

:func:`compare_models` is the library form of ``hwsim compress ... `` and ``hwsim compress sweep``. Cost
figures come from one function, :func:`cost_columns` (``hwsim.cost.estimate``), which sees structured pruning
and low-rank factorisation through the graph's shapes. Two gains are *not* visible in shapes and are stated
per target instead of being assumed:

* **Unstructured sparsity.** Zero weights keep their shape; a target gains time only if it has a sparse
  kernel.
  :func:`sparse_support` says, per target family, whether one exists (none of the integer targets has one:
  the DPU MAC array, MLAS/fbgemm int8 GEMM and TFLite's int8 kernels are dense; XNNPACK's sparse inference
  covers float 1×1 convolutions only). With ``sparse=True`` the eligible layers of a supporting target are
  costed at their nonzero MACs, which is an *upper bound* on the gain.
* **Clustering.** Targets compute with dense int8 (or 4/2-bit) weights: the codebook is expanded (and
  quantized) before it reaches the target, so runtime weight bytes and time do not change. The ``stored``
  column gives what the codebook + packed ``b``-bit indices take in a file or in flash, next to the target's
  runtime weight bytes.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from hwsim._io import atomic_write_text, make_run_folder
from hwsim.compress._common import LOG_KEY
from hwsim.compress.cluster import check_clustered, clustered_weights
from hwsim.emulate.float_ref import run_float
from hwsim.errors import HwsimError
from hwsim.graph import Graph

__all__ = ["TARGET_COLUMNS", "compare_models", "cost_columns", "layers_csv", "model_stats", "sparse_support",
           "stored_weight_bytes", "targets_csv", "write_folder"]

#: Columns of ``targets.csv`` (one row per target and model, "before" and "after").
TARGET_COLUMNS = ("target", "family", "weight_bits", "which", "weight_bytes", "stored_bytes", "macs",
                  "cycles", "device_latency_ms", "e2e_latency_ms", "speedup", "sparse_speedup_possible",
                  "note")


def sparse_support(target) -> tuple[bool, str]:
    """Whether ``target`` can turn unstructured zero weights into time, and why (one line).

    Decided from the target's family and numerics (hwsim's target YAML has no sparse-kernel key yet).
    """
    fam = target.family
    is_float = target.numerics.activations.format == "float"
    if fam == "dpu":
        return False, ("no: the DPU's MAC array is dense (pixel x input-channel x output-channel parallel); "
                       "zero weights still take their cycles")
    if fam == "intel":
        return False, "no: onnxruntime MLAS / fbgemm int8 GEMM and convolution kernels are dense"
    if fam == "tflite" and not is_float:
        return False, ("no: TFLite's int8 kernels (reference and XNNPACK) are dense; XNNPACK's sparse "
                       "inference "
                       "is float-only")
    if fam == "tflite" and is_float:
        return True, ("only through XNNPACK sparse inference: float 1x1 convolutions whose weights are "
                      ">= 2/3 zeros, in a model that fits XNNPACK's NCHW pattern; --sparse costs them at "
                      "their nonzero "
                      "MACs (an upper bound)")
    return False, f"no sparse kernel known for family '{fam}'"


def _sparse_view(graph: Graph) -> Graph:
    """A copy whose eligible layers (1x1 Conv2D, groups 1, >= 2/3 zero weights) count only nonzero MACs."""
    g = graph.copy()
    g.validate()
    for node in g.nodes:
        if node.op != "Conv2D" or node.attrs["groups"] != 1:
            continue
        w = g.params[node.inputs[1]]
        if w.shape[1:3] != (1, 1):
            continue
        density = np.count_nonzero(w) / w.size
        if density <= 1 / 3:
            node.macs = int(math.ceil(node.macs * density))
    return g


def cost_columns(graph: Graph, target, *, sparse: bool = False) -> dict[str, Any]:
    """Cost figures of ``graph`` on ``target`` from the cost model: ``macs``, ``cycles``,
    ``device_latency_ms``,
    ``e2e_latency_ms``, ``weight_bytes``; ``{"error": message}`` when the target cannot be estimated."""
    from hwsim.cost import estimate

    g = _sparse_view(graph) if sparse and sparse_support(target)[0] else graph
    try:
        rep = estimate(g, target, threads=1)
    except HwsimError as exc:
        return {"error": str(exc)}
    t = rep.totals
    return {k: t.get(k) for k in ("macs", "cycles", "device_latency_ms", "e2e_latency_ms", "weight_bytes")}


def _aux_params(graph: Graph) -> set[str]:
    aux = set()
    for entry in clustered_weights(graph).values():
        aux.update((entry.get("codebook"), entry.get("indices")))
    return aux


def model_stats(graph: Graph) -> dict[str, Any]:
    """Parameters the model computes with (codebooks and indices excluded), nonzero weights, MACs."""
    aux = _aux_params(graph)
    params = [a for k, a in graph.params.items() if k not in aux]
    weights = {n.inputs[1] for n in graph.nodes if n.op in ("Conv2D", "Dense", "MatMul") and len(n.inputs) > 1
               and n.inputs[1] in graph.params}
    n_w = sum(int(graph.params[w].size) for w in weights)
    nz = sum(int(np.count_nonzero(graph.params[w])) for w in weights)
    return {"params": int(sum(a.size for a in params)), "weights": n_w, "nonzero_weights": nz,
            "weight_sparsity": (1 - nz / n_w) if n_w else 0.0, "macs": int(graph.macs()),
            "clustered_layers": len(clustered_weights(graph))}


def stored_weight_bytes(graph: Graph, target, runtime_weight_bytes: int | None) -> int | None:
    """Weight bytes with clustered weights stored as packed b-bit indices plus a codebook at the target's
    weight bit width (other weights as the target stores them)."""
    if runtime_weight_bytes is None:
        return None
    table = clustered_weights(graph)
    if not table:
        return runtime_weight_bytes
    w_bits = int(target.numerics.weights.bits)
    stored = runtime_weight_bytes
    counted = set()
    for n in graph.nodes:
        w = n.inputs[1] if len(n.inputs) > 1 else None
        if w in table and w not in counted:
            counted.add(w)
            e = table[w]
            size = int(graph.params[w].size)
            dense = -(-size * w_bits // 8)
            packed = -(-size * int(e["bits"]) // 8) + -(-int(graph.params[e["codebook"]].size) * w_bits // 8)
            stored += packed - dense
    return stored


def _accuracy(graph: Graph, sim_target, limit: int | None) -> dict[str, Any]:
    ev = graph.data.get("evaluation", {})
    if "x" not in ev:
        return {"accuracy_float": None, "accuracy_sim": None, "samples": 0}
    if sim_target is not None:
        from hwsim.emulate.run import run_model

        rep = run_model(graph, sim_target, limit=limit)
        return {"accuracy_float": rep.accuracy_float, "accuracy_sim": rep.accuracy_sim,
                "samples": rep.samples}
    x = ev["x"][:limit] if limit else ev["x"]
    y = ev.get("y")
    if y is None:
        return {"accuracy_float": None, "accuracy_sim": None, "samples": int(len(x))}
    y = np.asarray(y)[:len(x)].reshape(-1)
    out = run_float(graph, {graph.inputs[0].name: np.asarray(x, np.float32)})[graph.outputs[0]]
    return {"accuracy_float": float(np.mean(out.reshape(len(y), -1).argmax(-1) == y)), "accuracy_sim": None,
            "samples": int(len(x))}


def compare_models(before: Graph, after: Graph, *, targets: list, sim_target=None, limit: int | None = None,
                   sparse: bool = False) -> dict[str, Any]:
    """Everything ``hwsim compress`` reports, as a JSON-able dict (docs/compression.md, section "Reports").

    Parameters
    ----------
    before, after : Graph
        The original and the compressed model.
    targets : list of Target
        Targets to cost (weight bytes at their bit widths, cycles, latency).
    sim_target : Target, optional
        Target to simulate for ``accuracy_sim`` (float accuracy is always reported when the model bundles
        evaluation data).
    limit : int, optional
        Evaluation (and calibration) samples for the accuracy figures.
    sparse : bool
        Cost unstructured sparsity on targets that support it (:func:`sparse_support`).
    """
    check_clustered(after)
    out: dict[str, Any] = {"model": before.name, "compression": (after.metadata.get(LOG_KEY) or [None])[-1],
                           "before": model_stats(before), "after": model_stats(after), "targets": []}
    out["before"].update(_accuracy(before, sim_target, limit))
    out["after"].update(_accuracy(after, sim_target, limit))
    out["sim_target"] = None if sim_target is None else sim_target.name
    for t in targets:
        ok, why = sparse_support(t)
        row: dict[str, Any] = {"target": t.name, "family": t.family,
                               "weight_bits": int(t.numerics.weights.bits),
                               "sparse_speedup_possible": ok, "sparse_note": why}
        for which, g in (("before", before), ("after", after)):
            c = cost_columns(g, t, sparse=sparse and which == "after")
            if "error" not in c:
                c["stored_bytes"] = stored_weight_bytes(g, t, c["weight_bytes"])
            row[which] = c
        b, a = row["before"], row["after"]
        row["speedup"] = (b["e2e_latency_ms"] / a["e2e_latency_ms"]
                          if "error" not in b and "error" not in a and a["e2e_latency_ms"] else None)
        out["targets"].append(row)
    return out


def targets_csv(report: dict[str, Any]) -> str:
    """``targets.csv``: one row per target and model ("before", "after")."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(TARGET_COLUMNS), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for row in report["targets"]:
        for which in ("before", "after"):
            c = row[which]
            w.writerow({"target": row["target"], "family": row["family"], "weight_bits": row["weight_bits"],
                        "which": which, **{k: c.get(k, "") for k in ("weight_bytes", "stored_bytes", "macs",
                                                                      "cycles", "device_latency_ms",
                                                                      "e2e_latency_ms")},
                        "speedup": row["speedup"] if which == "after" and row["speedup"] is not None else "",
                        "sparse_speedup_possible": row["sparse_speedup_possible"],
                        "note": c.get("error", "") or (row["sparse_note"] if which == "after" else "")})
    return buf.getvalue()


def layers_csv(report: dict[str, Any]) -> str:
    """``layers.csv``: the compression record, one row per layer."""
    rec = report.get("compression") or {}
    rows = [{"layer": name,
             **{k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in d.items()}}
            for name, d in (rec.get("layers") or {}).items()]
    cols: list[str] = ["layer"]
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n", restval="")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write_folder(report: dict[str, Any], out_dir: str | os.PathLike) -> Path:
    """Write ``summary.json``, ``targets.csv`` and ``layers.csv`` into ``out_dir`` (created if needed)."""
    out = make_run_folder(out_dir)
    atomic_write_text(out / "summary.json", json.dumps(report, indent=2, default=_default) + "\n")
    atomic_write_text(out / "targets.csv", targets_csv(report))
    atomic_write_text(out / "layers.csv", layers_csv(report))
    return out


def _default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(type(v).__name__)

