"""The result of a cost estimate: :class:`LayerCost` per layer, :class:`CostReport` for the model.

The JSON form (:meth:`CostReport.to_dict`) is a documented contract (docs/cost.md): key names carry their
units, a value the model could not estimate is ``null`` (never a silent zero), and ``totals.unestimated``
lists the layers concerned.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hwsim.errors import HwsimError

#: Version of the JSON contract of :meth:`CostReport.to_dict`.
COST_FORMAT_VERSION = 1

#: Columns of ``cost_layers.csv`` and the per-layer JSON entries, in order.
LAYER_FIELDS = (
    "name", "op", "unit", "subgraph", "fused_into", "macs", "cycles", "compute_ms", "memory_ms", "time_ms",
    "bound", "weight_bytes", "activation_bytes", "ddr_load_bytes", "ddr_store_bytes", "ddr_bytes",
    "buffer_bytes", "spill", "ops_per_s", "utilisation", "note",
)


@dataclass
class LayerCost:
    """Cost of one node of the graph.

    ``unit`` says where the node runs: ``"dpu"`` / ``"cpu"`` (the target's compute), ``"host"`` (the
    application CPU of an accelerator board, for CPU-fallback ops), ``"fused"`` (folded into ``fused_into``:
    a fused activation or a folded BatchNorm; no time of its own), ``"free"`` (a view: Reshape, Flatten) or
    ``"unestimated"`` (the cost model does not know the op; its time fields are ``None``). ``bound`` is
    ``"compute"``, ``"memory"`` or ``"overhead"`` (the fixed per-layer time dominates) for timed layers.
    Times are for one inference; ``cycles`` counts the clock of the unit that runs the layer.
    """

    name: str
    op: str
    unit: str
    subgraph: int | None = None
    fused_into: str | None = None
    macs: int = 0
    cycles: float | None = 0.0
    compute_ms: float | None = 0.0
    memory_ms: float | None = 0.0
    time_ms: float | None = 0.0
    bound: str = "-"
    weight_bytes: int = 0
    activation_bytes: int = 0
    ddr_load_bytes: int | None = 0
    ddr_store_bytes: int | None = 0
    ddr_bytes: int | None = 0
    buffer_bytes: int = 0
    spill: bool = False
    ops_per_s: float | None = None
    utilisation: float | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: d[k] for k in LAYER_FIELDS}


@dataclass
class CostReport:
    """Per-layer costs and totals of one model on one target.

    Attributes
    ----------
    model, target, family : str
        Graph name, target name and target family.
    threads : int
        Concurrent inference threads assumed for ``totals["throughput_fps"]``.
    layers : list of LayerCost
        One entry per graph node, in execution order (folded BatchNorms included as ``fused``).
    totals : dict
        The model's totals (keys in docs/cost.md), e.g. ``macs``, ``cycles``, ``device_latency_ms``,
        ``e2e_latency_ms``, ``ddr_bytes``, ``weight_bytes``, ``peak_activation_bytes``, ``throughput_fps``.
    params : dict
        The cost parameters used, defaults included, each with where it came from.
    notes : list of str
        Assumptions and warnings (missing parameters replaced by defaults, unestimated layers, spills).
    """

    model: str
    target: str
    family: str
    threads: int
    layers: list[LayerCost]
    totals: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every layer was estimated."""
        return not self.totals.get("unestimated")

    def layer(self, name: str) -> LayerCost:
        """The entry of node ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of docs/cost.md."""
        return {
            "format": "hwsim-cost", "version": COST_FORMAT_VERSION, "model": self.model,
            "target": self.target,
            "family": self.family, "threads": self.threads, "complete": self.complete,
            "totals": {k: _finite(v) for k, v in self.totals.items()},
            "layers": [{k: _finite(v) for k, v in layer.to_dict().items()} for layer in self.layers],
            "params": self.params, "notes": list(self.notes),
        }

    def write_folder(self, out_dir: str | Path) -> list[Path]:
        """Write ``cost.json``, ``cost_layers.csv`` and ``cost_totals.csv`` into ``out_dir``.

        Returns the paths written. The folder is created if its parent exists.
        """
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise HwsimError(f"--out {out}: exists and is not a directory")
        if not out.parent.is_dir():
            raise HwsimError(f"--out {out}: parent directory '{out.parent}' does not exist")
        out.mkdir(exist_ok=True)
        data = self.to_dict()
        paths = [out / "cost.json", out / "cost_layers.csv", out / "cost_totals.csv"]
        paths[0].write_text(json.dumps(data, indent=2) + "\n")
        with paths[1].open("w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(LAYER_FIELDS)
            for row in data["layers"]:
                w.writerow(["" if row[k] is None else row[k] for k in LAYER_FIELDS])
        with paths[2].open("w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(("key", "value"))
            for k, v in data["totals"].items():
                w.writerow((k, ";".join(v) if isinstance(v, list) else ("" if v is None else v)))
        return paths


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
