"""Validation of the cost model against published measurements (``anchors.yaml``, perf-anchors.md).

:func:`validate` estimates every anchor with the built-in targets as shipped and returns one
:class:`AnchorResult` per figure plus the per-layer DPU comparison; :func:`fit` redoes the fit of the fitted
constants (``fits:`` in anchors.yaml) so that anyone can check the YAML values come from the stated subset.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hwsim.cost.estimate import estimate
from hwsim.cost.models import build as build_model
from hwsim.errors import HwsimError

__all__ = ["AnchorResult", "PerLayerResult", "load_anchors", "validate", "fit", "spearman"]

ANCHORS_FILE = Path(__file__).with_name("anchors.yaml")


@dataclass
class AnchorResult:
    """One published figure against its estimate."""

    id: str
    model: str
    target: str
    metric: str
    threads: int
    measured: float
    estimated: float
    tolerance: float
    role: str
    source: str
    note: str = ""

    @property
    def error(self) -> float:
        """Relative error (estimate / measured - 1)."""
        return self.estimated / self.measured - 1.0

    @property
    def passed(self) -> bool:
        return abs(self.error) <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(error=self.error, passed=self.passed)
        return d


@dataclass
class PerLayerResult:
    """The per-layer DPU comparison (vaitrace debug mode)."""

    call_overhead_ms: float
    rows: list[dict[str, Any]]
    median_abs_error: float
    spearman: float
    goals: dict[str, float]
    source: str
    role: str
    overhead_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        g = self.goals
        return self.median_abs_error <= g["median_abs_error"] and self.spearman >= g["spearman"]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["passed"] = self.passed
        return d


def load_anchors(path: str | Path | None = None) -> dict[str, Any]:
    """The parsed anchors file (``hwsim/cost/anchors.yaml`` by default)."""
    p = Path(path) if path else ANCHORS_FILE
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise HwsimError(f"{p}: cannot read the anchors file: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != "hwsim-cost-anchors":
        raise HwsimError(f"{p}: not a hwsim-cost-anchors file")
    return data


@lru_cache(maxsize=None)
def _model(name: str):
    return build_model(name)


def _target(name: str, overrides: dict[str, float] | None = None):
    from hwsim.targets import load_target

    t = load_target(name)
    if overrides:
        t = dataclasses.replace(t, cost=dataclasses.replace(t.cost, **overrides))
    return t


def _estimate_anchor(a: dict[str, Any], overrides: dict[str, float] | None = None) -> float:
    report = estimate(_model(a["model"]), _target(a["target"], overrides), threads=int(a.get("threads", 1)))
    value = report.totals[a["metric"]]
    if value is None:
        raise HwsimError(f"anchor {a['id']}: the estimate has no {a['metric']}")
    return float(value)


def spearman(x, y) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    def ranks(v):
        v = np.asarray(v, dtype=float)
        order = np.argsort(v, kind="mergesort")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        for val in np.unique(v):
            idx = v == val
            r[idx] = r[idx].mean()
        return r
    rx, ry = ranks(x), ranks(y)
    return float(np.corrcoef(rx, ry)[0, 1])


def per_layer(data: dict[str, Any], overrides: dict[str, float] | None = None) -> PerLayerResult:
    """Per-layer DPU times (debug mode) against vaitrace's rows minus the call overhead."""
    spec = data["per_layer"]
    target = _target(spec["target"], overrides)
    report = estimate(_model(spec["model"]), target, per_layer_subgraphs=True)
    cost = target.cost

    def move_ms(mb: float) -> float:
        return mb * 1e6 / (cost.dram_gbps * 1e9) * 1e3 + (cost.per_layer_overhead_us or 0) / 1e3

    ovh_rows = [{"name": k, "measured_ms": ms, "memio_mb": mb, "model_move_ms": move_ms(mb),
                 "call_overhead_ms": ms - move_ms(mb)} for k, (ms, mb) in spec["overhead_rows"].items()]
    call = float(np.mean([r["call_overhead_ms"] for r in ovh_rows]))
    rows = []
    for name, (ms, mb) in spec["rows"].items():
        layer = report.layer(name)
        meas = ms - call
        rows.append({"name": name, "measured_ms": ms, "measured_minus_call_ms": meas,
                     "estimated_ms": layer.time_ms,
                     "error": layer.time_ms / meas - 1.0, "bound": layer.bound, "memio_mb": mb,
                     "estimated_ddr_mb": layer.ddr_bytes / 1e6})
    errs = [abs(r["error"]) for r in rows]
    rho = spearman([r["estimated_ms"] for r in rows], [r["measured_minus_call_ms"] for r in rows])
    return PerLayerResult(call, rows, float(np.median(errs)), rho, dict(spec["goals"]), spec["source"],
                          spec.get("role", "check"), ovh_rows)


def validate(path: str | Path | None = None) -> tuple[list[AnchorResult], PerLayerResult]:
    """Estimate every anchor of the anchors file with the shipped targets."""
    data = load_anchors(path)
    results = []
    for a in data["anchors"]:
        results.append(AnchorResult(
            id=a["id"], model=a["model"], target=a["target"], metric=a["metric"],
            threads=int(a.get("threads", 1)),
            measured=float(a["value"]), estimated=_estimate_anchor(a), tolerance=float(a["tolerance"]),
            role=a["role"], source=a["source"], note=a.get("note", "")))
    return results, per_layer(data)


def _solve(f, lo: float, hi: float, goal: float, iters: int) -> float:
    """x in [lo, hi] with f(x) = goal for a monotone f; the nearer end when goal is not bracketed."""
    flo, fhi = f(lo) - goal, f(hi) - goal
    if flo * fhi > 0:
        return lo if abs(flo) < abs(fhi) else hi
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        fm = f(mid) - goal
        if (fm > 0) == (flo > 0):
            lo, flo = mid, fm
        else:
            hi = mid
    return 0.5 * (lo + hi)


def fit(name: str, path: str | Path | None = None, iters: int = 16) -> dict[str, float]:
    """Redo fit ``name`` of the anchors file: the first key is solved for the first anchor, the second key
    (by an outer bisection) for the second anchor. Returns ``{key: value}``."""
    data = load_anchors(path)
    spec = next((f for f in data["fits"] if f["name"] == name), None)
    if spec is None:
        raise HwsimError(f"no fit named {name!r} (known: {', '.join(f['name'] for f in data['fits'])})")
    by_id = {a["id"]: a for a in data["anchors"]}
    (k1, (lo1, hi1)), (k2, (lo2, hi2)) = list(spec["keys"].items())
    a1, a2 = (by_id[i] for i in spec["fitted_on"])

    def inner(v2: float) -> float:
        return _solve(lambda v1: _estimate_anchor(a1, {k1: v1, k2: v2}), lo1, hi1, float(a1["value"]), iters)

    v2 = _solve(lambda v: _estimate_anchor(a2, {k1: inner(v), k2: v}), lo2, hi2, float(a2["value"]), iters)
    v1 = inner(v2)
    if not (math.isfinite(v1) and math.isfinite(v2)):
        raise HwsimError(f"fit {name} did not converge")
    return {k1: v1, k2: v2}
