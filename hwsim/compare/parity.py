"""Portability parity: do several targets give the same answers for one model, and where and why not?

:func:`parity` quantizes one graph for every target (a float model is calibrated on the same calibration
data for each; a pre-quantized one is used as it is), simulates the same inputs on each and compares every
pair of targets tensor by tensor. The method (common grid, LSB histogram, cause labels, propagation) is
described in docs/parity.md; the short version:

* Two codes are **identical** when their dequantized values (q − zp)·s, in float64, agree within
  1e-6 relative: |a − b| ≤ 1e-6·max(|a|, |b|). Codes on grids that share a point (equal scales with any
  zero points, or one scale a multiple of the other) compare equal there.
* Differences are counted in **LSBs of the coarser grid**: (a − b) / max(s_A, s_B), rounded to the
  nearest integer for the histogram.
* Each differing element gets **one cause**: ``propagated`` when an input in its receptive field already
  differs (decided by replaying target B's layer on target A's input integers when the two targets'
  input grids coincide, else by the receptive field); otherwise the first that applies of ``saturation``,
  ``activation``, ``clipping``, ``scale``, ``weights``, ``rounding_tie``, ``arithmetic``, ``unexplained``
  (see :data:`CAUSES`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import yaml

from hwsim import __version__
from hwsim._io import atomic_write_text, csv_text, json_safe, make_run_folder
from hwsim.compare.overflow import check_overflow
from hwsim.emulate import simulator as sim
from hwsim.emulate.data import resolve_data
from hwsim.emulate.float_ref import KERNELS as FLOAT_KERNELS
from hwsim.emulate.float_ref import run_float
from hwsim.emulate.simulator import (
    ActQuant,
    LayerPlan,
    QuantizedModel,
    graph_batch_limit,
    quantize_for_target,
)
from hwsim.errors import HwsimError
from hwsim.graph import Graph, Node
from hwsim.targets import Target

#: Cause labels of a differing element, in the order they are tried (the first that applies wins).
CAUSES: dict[str, str] = {
    "propagated": "an input of this layer (in the element's receptive field) already differs between the "
                  "targets",
    "saturation": "an int16 pair (VPMADDUBSW, fbgemm depthwise) saturated on one target: its accumulator "
                  "differs from the exact sum",
    "activation": "the targets implement the activation differently (LUT, DPU 26/256 or hard-sigmoid, float)",
    "clipping": "one target clamps the value at its output range while the other represents it",
    "scale": "the targets' output scales differ (e.g. power-of-two vs float): the two grids do not coincide",
    "weights": "the targets hold different weight or bias values for this output channel",
    "rounding_tie": "the exact value before rounding sits at .5 of the output step on one target and the "
                    "targets round ties differently",
    "arithmetic": "same inputs, scales and weights, no exact tie: the requantization arithmetic differs "
                  "(fixed-point vs float multiplier, double vs single rounding, divide vs reciprocal)",
    "unexplained": "none of the above could be established",
}

_REL_TOL = 1e-6
_HIST_LIMIT = 16
_WEIGHTED = ("Conv2D", "DepthwiseConv2D", "Dense")
_CLAMPS = ("ReLU", "ReLU6")
_ACTIVATIONS = ("Sigmoid", "Tanh", "LeakyReLU", "HardSigmoid", "HardSwish", "SiLU", "GELU", "Mish", "SELU",
                "Softmax")
_ELEMENTWISE = _CLAMPS + _ACTIVATIONS[:-1]  # Softmax mixes its axis
_BINARY = ("Add", "Mul")
_WINDOWED = ("Conv2D", "Dense", "MaxPool", "AvgPool", "GlobalAvgPool", "Reshape", "Flatten", "Transpose",
             "Concat", "Pad")


# ------------------------------------------------------------------------------------------------------
# Results


@dataclass
class ElementExample:
    """One differing element, for the report: where, what each target holds, and why."""

    index: tuple[int, ...]
    code_a: int
    code_b: int
    value_a: float
    value_b: float
    cause: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": list(self.index), "code_a": self.code_a, "code_b": self.code_b,
                "value_a": self.value_a, "value_b": self.value_b, "cause": self.cause}


@dataclass
class LayerParity:
    """One tensor present on both targets of a pair."""

    depth: int
    layer: str  # the node (``conv+ReLU`` for a fused activation) that writes the tensor on target A
    tensor: str
    op: str
    elements: int
    identical: int
    max_lsb: float
    mean_lsb: float
    sqnr_db: float  # target B against target A
    coarse_scale: float
    histogram: dict[str, int]
    causes: dict[str, int]
    method: str  # how propagated vs local was decided: input | replay | receptive_field | identical
    examples: list[ElementExample] = field(default_factory=list)

    @property
    def differing(self) -> int:
        return self.elements - self.identical

    @property
    def share_identical(self) -> float:
        return self.identical / self.elements if self.elements else 1.0

    @property
    def local(self) -> int:
        return self.differing - self.causes.get("propagated", 0)

    def to_dict(self) -> dict[str, Any]:
        return {"depth": self.depth, "layer": self.layer, "tensor": self.tensor, "op": self.op,
                "elements": self.elements, "identical": self.identical,
                "share_identical": self.share_identical,
                "max_lsb": self.max_lsb, "mean_lsb": self.mean_lsb, "sqnr_db": json_safe(self.sqnr_db),
                "coarse_scale": self.coarse_scale, "histogram": self.histogram, "causes": self.causes,
                "method": self.method, "examples": [e.to_dict() for e in self.examples]}


@dataclass
class PairParity:
    """Target A against target B: per layer, first divergence, end-to-end agreement and flipped inputs."""

    a: str
    b: str
    layers: list[LayerParity]
    top1_agreement: float | None
    topk_agreement: float | None
    flips: list[int]

    @property
    def first_divergent(self) -> LayerParity | None:
        return next((x for x in self.layers if x.differing), None)

    @property
    def identical(self) -> bool:
        return self.first_divergent is None

    def causes(self) -> dict[str, int]:
        """Differing elements per cause over all layers."""
        total: dict[str, int] = {}
        for x in self.layers:
            for k, v in x.causes.items():
                total[k] = total.get(k, 0) + v
        return {k: total[k] for k in CAUSES if k in total}

    def summary(self) -> dict[str, Any]:
        fd = self.first_divergent
        out = self.layers[-1] if self.layers else None
        return {"a": self.a, "b": self.b, "identical": self.identical,
                "first_divergent_layer": None if fd is None else fd.layer,
                "first_divergent_tensor": None if fd is None else fd.tensor,
                "first_divergent_causes": None if fd is None else fd.causes,
                "output_share_identical": None if out is None else out.share_identical,
                "top1_agreement": self.top1_agreement, "topk_agreement": self.topk_agreement,
                "flips": len(self.flips), "causes": self.causes()}


@dataclass
class TargetOutcome:
    """One target's own results: accuracy, agreement with float, float fallbacks."""

    name: str
    family: str
    accuracy: float | None
    top1_vs_float: float | None
    fallbacks: list[str]
    can_overflow: list[dict[str, Any]] = field(default_factory=list)  # static check (compare.overflow)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "accuracy": self.accuracy,
                "top1_vs_float": self.top1_vs_float, "fallbacks": self.fallbacks,
                "can_overflow": self.can_overflow}


@dataclass
class ParityReport:
    """Everything ``hwsim parity`` reports."""

    model: str
    samples: int
    calibration_samples: int
    top_k: int
    targets: list[TargetOutcome]
    pairs: list[PairParity]
    predictions: dict[str, np.ndarray]  # top-1 class per target (end to end)
    accuracy_float: float | None
    targets_resolved: list[Target] = field(default_factory=list, repr=False)
    models: dict[str, QuantizedModel] = field(default_factory=dict, repr=False)

    def pair(self, a: str, b: str) -> PairParity:
        """The comparison of targets ``a`` and ``b`` (in either order)."""
        for p in self.pairs:
            if (p.a, p.b) in ((a, b), (b, a)):
                return p
        raise KeyError(f"{a} vs {b}")

    def flip_rows(self) -> list[dict[str, Any]]:
        """Inputs whose predicted class is not the same on every target."""
        if not self.predictions:
            return []
        names = [t.name for t in self.targets]
        preds = np.stack([self.predictions[n] for n in names])
        rows = []
        for i in np.flatnonzero((preds != preds[0]).any(axis=0)):
            rows.append({"index": int(i), **{n: int(preds[j, i]) for j, n in enumerate(names)}})
        return rows

    def summary(self) -> dict[str, Any]:
        return {"hwsim_version": __version__, "model": self.model, "samples": self.samples,
                "calibration_samples": self.calibration_samples, "top_k": self.top_k,
                "identical_definition": f"|a - b| <= {_REL_TOL:g} * max(|a|, |b|) after dequantization",
                "lsb_unit": "one step of the coarser of the two grids",
                "accuracy_float": self.accuracy_float,
                "targets": [t.to_dict() for t in self.targets],
                "pairs": [p.summary() for p in self.pairs],
                "flipped_inputs": len(self.flip_rows())}

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(),
                "pairs": [{"a": p.a, "b": p.b, "layers": [x.to_dict() for x in p.layers], "flips": p.flips}
                          for p in self.pairs],
                "flips": self.flip_rows(),
                "causes": CAUSES}

    def layer_rows(self) -> list[dict[str, Any]]:
        rows = []
        for p in self.pairs:
            for x in p.layers:
                row = {"a": p.a, "b": p.b, "depth": x.depth, "layer": x.layer, "tensor": x.tensor, "op": x.op,
                       "elements": x.elements, "identical": x.identical,
                       "share_identical": f"{x.share_identical:.6f}", "max_lsb": x.max_lsb,
                       "mean_lsb": f"{x.mean_lsb:.6g}", "sqnr_db": json_safe(x.sqnr_db), "method": x.method,
                       "histogram": " ".join(f"{k}:{v}" for k, v in x.histogram.items())}
                row.update({f"cause_{k}": x.causes.get(k, 0) for k in CAUSES})
                rows.append(row)
        return rows

    def write_folder(self, out_dir: str | os.PathLike) -> Path:
        """Write summary.json, layers.csv (one row per pair and layer), flips.csv and targets.yaml."""
        out = make_run_folder(out_dir)
        atomic_write_text(out / "summary.json", json.dumps(self.summary(), indent=2) + "\n")
        cols = ["a", "b", "depth", "layer", "tensor", "op", "elements", "identical", "share_identical",
                "max_lsb", "mean_lsb", "sqnr_db", "method", "histogram", *[f"cause_{k}" for k in CAUSES]]
        atomic_write_text(out / "layers.csv", csv_text(cols, self.layer_rows()))
        names = [t.name for t in self.targets]
        atomic_write_text(out / "flips.csv", csv_text(["index", *names], self.flip_rows()))
        atomic_write_text(out / "targets.yaml", yaml.safe_dump({t.name: t.to_dict(all_ops=True)
                                                           for t in self.targets_resolved}, sort_keys=False))
        return out


# ------------------------------------------------------------------------------------------------------
# One target's run


@dataclass
class _TargetRun:
    target: Target
    qm: QuantizedModel
    ints: dict[str, np.ndarray]
    x: np.ndarray  # float inputs (for the input quantization analysis)
    by_output: dict[str, LayerPlan]
    _deq_cache: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.target.name

    def deq(self, t: str, q: np.ndarray | None = None) -> np.ndarray:
        """Dequantized values in float64 (exact: an 8/16-bit code times a float32 scale)."""
        if q is None and t in self._deq_cache:
            return self._deq_cache[t]
        a = self.qm.act[t]
        codes = self.ints[t] if q is None else q
        v = (codes.astype(np.float64) - a.zero_point) * float(np.float32(a.scale))
        if q is None:
            self._deq_cache[t] = v
        return v


def _tie_of_weighted(p: LayerPlan, acc: np.ndarray) -> np.ndarray:
    """Where the requantization's exact input sits at .5 of the output step (per element of ``acc``)."""
    c = p.consts
    scheme = p.impl.requant.scheme if p.impl.requant is not None else None
    acc = acc.astype(np.int64)
    if scheme == "pow2_shift":
        sb = int(c["shift_bias"])
        b = c["bias"].astype(np.int64)
        total = acc + (b << sb if sb >= 0 else b >> -sb)
        n = int(c["shift_cut"])
        if p.fused_activation is not None and p.fused_activation.op == "LeakyReLU":
            total, n = np.where(total < 0, total * 26, total * 256), n + 8
        return _dyadic_tie(total, np.int64(n))
    if scheme in ("fixed_point_double", "fixed_point_single"):
        v = acc + c["bias"].astype(np.int64)
        fits = np.abs(v) < 2**31  # then |v·M| < 2^62: exact in int64
        num = np.where(fits, v, 0) * c["M"].astype(np.int64)
        return fits & _dyadic_tie(num, 31 - c["shift"].astype(np.int64))
    if scheme == "float_scale":
        rp = dict(p.impl.requant.params)
        ft = np.float32 if rp.get("precision", "float32") == "float32" else np.float64
        v = (acc + c["bias"].astype(np.int64)).astype(ft)
        m = np.asarray(c["multiplier"]).astype(ft)
        # the value the engine rounds: one float32 (or float64) operation, as the simulator's kernel does
        r = (v / m if rp.get("apply", "multiply") == "divide" else v * m).astype(np.float64)
        return (r - np.floor(r)) == 0.5
    return np.zeros(acc.shape, bool)


def _dyadic_tie(num: np.ndarray, n: np.ndarray | np.int64) -> np.ndarray:
    """num / 2^n has fractional part exactly 1/2 (n broadcasts over the last axis)."""
    n = np.broadcast_to(np.asarray(n, np.int64), num.shape)
    ok = (n >= 1) & (n <= 62)
    nn = np.where(ok, n, 1)
    rem = np.mod(num, np.left_shift(np.int64(1), nn))
    return ok & (rem == np.left_shift(np.int64(1), nn - 1))


def _quantize_tie(y: np.ndarray, q: ActQuant, formula: str) -> np.ndarray:
    """Where quantizing float ``y`` to ``q`` meets an exact .5 (the target's quantize formula, float32)."""
    y = np.asarray(y, np.float32)
    s = np.float32(q.scale)
    if formula == "divide":
        r = (y / s).astype(np.float64)
    elif formula == "fma_reciprocal":
        r = y.astype(np.float64) * np.float64(np.float32(1.0) / s)
        r = r.astype(np.float32).astype(np.float64)
    else:  # multiply_reciprocal, pow2_exact
        r = (y * (np.float32(1.0) / s)).astype(np.float64)
    return (r - np.floor(r)) == 0.5


# ------------------------------------------------------------------------------------------------------
# Receptive fields


def _propagate_mask(node: Node, graph: Graph, masks: list[np.ndarray],
                    out_shape: tuple[int, ...]) -> np.ndarray:
    """Which output elements of ``node`` read at least one True element of its activation inputs."""
    n = out_shape[0]
    try:
        if node.op in _ELEMENTWISE:
            res = masks[0]
        elif node.op in _BINARY:
            res = np.zeros(out_shape, bool)
            for m in masks:
                res = res | np.broadcast_to(m, out_shape)
        elif node.op in _WINDOWED:
            args: list[np.ndarray] = []
            it = iter(masks)
            for t in node.inputs:
                if t in graph.params:
                    args.append(np.ones_like(graph.params[t], dtype=np.float32) if len(args) == 1
                                else np.zeros_like(graph.params[t], dtype=np.float32))
                else:
                    args.append(next(it).astype(np.float32))
            res = FLOAT_KERNELS[node.op](node.attrs, *args) > 0.5
        elif node.op in ("Softmax", "LayerNorm"):
            axis = node.attrs.get("axis", -1)
            res = np.broadcast_to(masks[0].any(axis=axis, keepdims=True), out_shape)
        else:
            raise KeyError(node.op)
        if res.shape == out_shape:
            return np.asarray(res, bool)
    except (KeyError, ValueError, TypeError, IndexError):
        pass
    # Unknown op: every output of a sample depends on every input of that sample.
    any_in = np.zeros(n, bool)
    for m in masks:
        any_in |= m.reshape(m.shape[0], -1).any(axis=1)
    return np.broadcast_to(any_in.reshape(n, *([1] * (len(out_shape) - 1))), out_shape).copy()


# ------------------------------------------------------------------------------------------------------
# Pair comparison


def _identical(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b) <= _REL_TOL * np.maximum(np.abs(a), np.abs(b))


def _hist(d_lsb: np.ndarray) -> dict[str, int]:
    r = np.clip(np.rint(d_lsb), -_HIST_LIMIT, _HIST_LIMIT).astype(np.int64)
    vals, counts = np.unique(r, return_counts=True)
    out = {}
    for v, c in zip(vals.tolist(), counts.tolist()):
        key = f"<={v}" if v == -_HIST_LIMIT else f">={v}" if v == _HIST_LIMIT else str(v)
        out[key] = int(c)
    return out


def _layer_name(p: LayerPlan | None, tensor: str) -> str:
    if p is None:
        return tensor
    return p.node.name if p.fused_activation is None else f"{p.node.name}+{p.fused_activation.op}"


def _same_scale(a: ActQuant, b: ActQuant) -> bool:
    return float(np.float32(a.scale)) == float(np.float32(b.scale))


def _act_impl(run: _TargetRun, node: Node) -> tuple:
    """How a target implements an activation node: standalone kernel, float fallback or fused."""
    for p in run.qm.plans:
        if p.fused_activation is not None and p.fused_activation.name == node.name:
            return ("fused", p.impl.requant.scheme if p.impl.requant else None)
        if p.node.name == node.name:
            return (p.mode, p.impl.kernel if p.mode == "integer" else "float")
    return ("absent",)


def _bounds(run: _TargetRun, t: str) -> tuple[int, int]:
    p = run.by_output.get(t)
    if p is not None and p.mode == "integer":
        if "act_min" in p.consts:
            return int(p.consts["act_min"]), int(p.consts["act_max"])
        if "bounds" in p.consts:
            return tuple(int(v) for v in p.consts["bounds"])  # type: ignore[return-value]
    a = run.qm.act[t]
    return a.qmin, a.qmax


def _clipped(run: _TargetRun, t: str, q: np.ndarray, other_real: np.ndarray) -> np.ndarray:
    """Where ``run`` holds its range bound while the other target's value lies beyond that bound."""
    lo, hi = _bounds(run, t)
    a = run.qm.act[t]
    s = float(np.float32(a.scale))
    lo_r, hi_r = (lo - a.zero_point) * s, (hi - a.zero_point) * s
    tol = _REL_TOL * max(abs(lo_r), abs(hi_r), s)
    return ((q == hi) & (other_real > hi_r + tol)) | ((q == lo) & (other_real < lo_r - tol))


def _real_weights(run: _TargetRun, p: LayerPlan) -> tuple[np.ndarray, np.ndarray]:
    c = p.consts
    w = c["w_int"].reshape(c["w_int"].shape[0], -1).astype(np.float64)
    if c.get("fix_pos_w") is not None:
        ws = np.full(w.shape[0], 2.0 ** -c["fix_pos_w"])
        bias = c["bias"].astype(np.float64) * 2.0 ** -c["fix_pos_b"]
    else:
        ws = c["w_scale"].astype(np.float64)
        x_s = float(np.float32(run.qm.act[p.node.inputs[0]].scale))
        bias = c["bias"].astype(np.float64) * x_s * ws
    return w * ws[:, None], np.broadcast_to(bias, (w.shape[0],))


def _weights_differ(ra: _TargetRun, pa: LayerPlan, rb: _TargetRun, pb: LayerPlan) -> np.ndarray | None:
    """Per output channel: do the two targets' real weights or biases differ? None when not comparable."""
    if pa.op_kind not in _WEIGHTED or pb.op_kind not in _WEIGHTED or "w_int" not in pa.consts \
            or "w_int" not in pb.consts or pa.consts["w_int"].shape != pb.consts["w_int"].shape:
        return None
    wa, ba = _real_weights(ra, pa)
    wb, bb = _real_weights(rb, pb)
    dw = ~_identical(wa, wb).all(axis=1)
    db = ~_identical(ba, bb)
    return dw | db


class _LayerAnalysis:
    """Per-target quantities on given input integers: accumulator saturation and exact ties."""

    def __init__(self, run: _TargetRun, t: str, p: LayerPlan | None, ints: dict[str, np.ndarray]) -> None:
        self.sat: np.ndarray | None = None
        self.tie: np.ndarray | None = None
        qm = run.qm
        role = qm.target.numerics.activations
        if p is None:  # graph input: the target's QUANTIZE of the float input
            self.tie = _quantize_tie(run.x, qm.act[t], sim.quantize_method(role))
            return
        if p.mode == "integer" and p.op_kind in _WEIGHTED and "w_int" in p.consts:
            x = ints[p.node.inputs[0]]
            acc = sim.accumulate(qm, p, x, exact=False)
            exact_needed = (p.impl.gemm or "exact") != "exact" or \
                p.impl.depthwise_saturation not in (None, "none")
            if exact_needed:
                self.sat = acc != sim.accumulate(qm, p, x, exact=True)
            self.tie = _tie_of_weighted(p, acc)
        elif p.mode == "fallback":
            args = []
            for name in p.node.inputs:
                args.append(qm.graph.params[name].astype(np.float32) if name in qm.graph.params
                            else qm.act[name].dequantize(ints[name]))
            y = FLOAT_KERNELS[p.node.op](p.node.attrs, *args).astype(np.float32)
            self.tie = _quantize_tie(y, qm.act[p.output], sim.quantize_method(role))


def _inputs_in(rb: _TargetRun, ra: _TargetRun, names: list[str]) -> dict[str, np.ndarray] | None:
    """Target A's input integers expressed in target B's codes, when both grids coincide; else None."""
    out = {}
    for n in names:
        if n not in ra.ints or n not in rb.qm.act or n not in ra.qm.act:
            return None
        qa, qb = ra.qm.act[n], rb.qm.act[n]
        if not _same_scale(qa, qb):
            return None
        codes = ra.ints[n].astype(np.int64) - qa.zero_point + qb.zero_point
        if codes.size and (codes.min() < qb.qmin or codes.max() > qb.qmax):
            return None
        out[n] = codes.astype(qb.dtype)
    return out


def _compare_layer(depth: int, t: str, ra: _TargetRun, rb: _TargetRun, graph: Graph, diff_t: np.ndarray,
                   dep_of: Callable[[str], np.ndarray | None], examples: int) -> LayerParity:
    qa, qb = ra.qm.act[t], rb.qm.act[t]
    va, vb = ra.deq(t), rb.deq(t)
    diff = diff_t
    coarse = max(float(np.float32(qa.scale)), float(np.float32(qb.scale)))
    pa, pb = ra.by_output.get(t), rb.by_output.get(t)
    node_t = graph.producer(t)
    op = pa.op_kind if pa is not None else node_t.op if node_t is not None else "Input"
    if not diff.any():  # the common case between close targets: nothing to label
        d_max = float(np.abs(va - vb).max()) / coarse if va.size else 0.0
        return LayerParity(depth, _layer_name(pa, t), t, op, int(va.size), int(va.size), d_max, 0.0, math.inf,
                           coarse, {"0": int(va.size)}, {}, "input" if pa is None else "identical", [])
    d_lsb = (va - vb) / coarse
    causes = np.full(va.shape, -1, np.int8)
    names = list(CAUSES)
    method = "input" if pa is None else "receptive_field"
    local = diff.copy()
    b_ints, b_vals, b_codes = rb.ints, vb, rb.ints[t]
    replay_inputs = None
    if pa is not None and pb is not None and pa.node.name == pb.node.name:
        replay_inputs = _inputs_in(rb, ra, [n for n in pa.node.inputs if n not in graph.params])
    if replay_inputs is not None:
        # Target B's layer on target A's input integers: what B's arithmetic alone does differently.
        method = "replay"
        b_ints = {**rb.ints, **replay_inputs}
        b_codes = sim.run_plan(rb.qm, pb, b_ints)
        b_vals = rb.deq(t, b_codes)
        local = diff & ~_identical(va, b_vals)
    elif pa is not None:
        dep = dep_of(t)
        if dep is not None:
            local = diff & ~dep
    causes[diff & ~local] = names.index("propagated")
    if local.any():
        _label_local(causes, local, t, ra, pa, ra.ints, rb, pb, b_ints, ra.ints[t], b_codes, va, b_vals,
                     graph)
    counts = {names[i]: int(c) for i, c in zip(*np.unique(causes[causes >= 0], return_counts=True))}
    counts = {k: counts[k] for k in CAUSES if k in counts}
    ex = []
    for idx in np.argwhere(diff)[:examples]:
        i = tuple(int(v) for v in idx)
        ex.append(ElementExample(i, int(ra.ints[t][i]), int(rb.ints[t][i]), float(va[i]), float(vb[i]),
                                 names[causes[i]]))
    err = (va - vb).ravel()
    signal, noise = float(np.dot(va.ravel(), va.ravel())), float(np.dot(err, err))
    sqnr = math.inf if noise == 0 else -math.inf if signal == 0 else 10.0 * math.log10(signal / noise)
    return LayerParity(depth, _layer_name(pa, t), t, op, int(va.size), int(va.size - diff.sum()),
                       float(np.abs(d_lsb).max()) if d_lsb.size else 0.0,
                       float(np.abs(d_lsb).mean()) if d_lsb.size else 0.0, sqnr, coarse, _hist(d_lsb),
                       counts, method, ex)


def _label_local(causes: np.ndarray, local: np.ndarray, t: str, ra: _TargetRun, pa: LayerPlan | None,
                 a_ints: dict[str, np.ndarray], rb: _TargetRun, pb: LayerPlan | None,
                 b_ints: dict[str, np.ndarray], a_codes: np.ndarray, b_codes: np.ndarray, va: np.ndarray,
                 vb: np.ndarray, graph: Graph) -> None:
    names = list(CAUSES)
    open_ = local.copy()

    def assign(mask: np.ndarray | None, cause: str) -> None:
        nonlocal open_
        if mask is None:
            return
        m = open_ & np.broadcast_to(mask, open_.shape)
        causes[m] = names.index(cause)
        open_ &= ~m

    an_a = _LayerAnalysis(ra, t, pa, a_ints)
    an_b = _LayerAnalysis(rb, t, pb, b_ints)
    for an in (an_a, an_b):
        if an.sat is not None and an.sat.shape == open_.shape:
            assign(an.sat, "saturation")
    node = graph.producer(t)
    if node is not None and node.op in _ACTIVATIONS and _act_impl(ra, node) != _act_impl(rb, node):
        assign(np.ones_like(open_), "activation")
    assign(_clipped(ra, t, a_codes, vb) | _clipped(rb, t, b_codes, va), "clipping")
    if not _same_scale(ra.qm.act[t], rb.qm.act[t]):
        assign(np.ones_like(open_), "scale")
    if pa is not None and pb is not None:
        wd = _weights_differ(ra, pa, rb, pb)
        if wd is not None and wd.shape[0] == open_.shape[-1]:
            assign(wd, "weights")
    for an in (an_a, an_b):
        if an.tie is not None and an.tie.shape == open_.shape:
            assign(an.tie, "rounding_tie")
    computes = pa is None or pa.mode == "fallback" or pa.op_kind in _WEIGHTED or \
        pa.impl.kernel in ("tflite_add", "dpu_add", "lut", "tflite_avg_pool", "dpu_avg_pool", "concat")
    assign(np.ones_like(open_), "arithmetic" if computes else "unexplained")


def _dependency_masks(graph: Graph, common: list[str], diff: dict[str, np.ndarray],
                      shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """For each common tensor: which elements read (through any chain of ops) an input that differs."""
    m: dict[str, np.ndarray] = {i.name: diff[i.name] for i in graph.inputs if i.name in diff}
    dep: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        ins = [t for t in node.inputs if t not in graph.params]
        if any(t not in m for t in ins):
            continue
        out = node.outputs[0]
        if out not in shapes:
            continue
        d = _propagate_mask(node, graph, [m[t] for t in ins], shapes[out])
        dep[out] = d
        m[out] = diff[out] if out in diff else d
    return dep


def _classifies(y: np.ndarray) -> bool:
    """End-to-end agreement is measured on class scores: a [N, classes] output with at least two classes."""
    return y.ndim == 2 and y.shape[-1] > 1


def _compare_pair(ra: _TargetRun, rb: _TargetRun, graph: Graph, *, top_k: int = 5,
                 examples: int = 3) -> PairParity:
    """Compare two simulated targets tensor by tensor and end to end."""
    order = [i.name for i in graph.inputs] + [p.output for p in ra.qm.plans if p.mode != "fused"]
    common = [t for t in order if t in ra.ints and t in rb.ints and t in ra.qm.act and t in rb.qm.act
              and ra.ints[t].shape == rb.ints[t].shape]
    diff = {t: ~_identical(ra.deq(t), rb.deq(t)) for t in common}
    shapes = {t: v.shape for t, v in ra.ints.items()}
    n = next(iter(ra.ints.values())).shape[0]
    # Tensors that exist on neither side (a producer fused on both) still route masks.
    for node in graph.nodes:
        shapes.setdefault(node.outputs[0], (n, *graph.tensors[node.outputs[0]].shape[1:]))
    cache: dict[str, dict[str, np.ndarray]] = {}

    def dep_of(t: str) -> np.ndarray | None:
        # Receptive-field masks are only needed where no replay is possible: computed once, on demand.
        if "dep" not in cache:
            cache["dep"] = _dependency_masks(graph, common, diff, shapes)
        return cache["dep"].get(t)

    layers = [_compare_layer(i, t, ra, rb, graph, diff[t], dep_of, examples) for i, t in enumerate(common)]
    out = graph.outputs[0]
    top1 = topk = None
    flips: list[int] = []
    if out in ra.ints and out in rb.ints:
        ya, yb = ra.deq(out), rb.deq(out)
        if _classifies(ya):
            ya2, yb2 = ya, yb
            pa_, pb_ = ya2.argmax(-1), yb2.argmax(-1)
            top1 = float(np.mean(pa_ == pb_))
            k = min(top_k, ya2.shape[-1])
            in_a = (np.argsort(-ya2, axis=-1, kind="stable")[:, :k] == pb_[:, None]).any(-1)
            in_b = (np.argsort(-yb2, axis=-1, kind="stable")[:, :k] == pa_[:, None]).any(-1)
            topk = float(np.mean(in_a & in_b))
            flips = [int(i) for i in np.flatnonzero(pa_ != pb_)]
    return PairParity(ra.name, rb.name, layers, top1, topk, flips)


# ------------------------------------------------------------------------------------------------------
# The library call


def parity(graph: Graph, targets: Sequence[Target], *, inputs: np.ndarray | None = None,
           calibration: np.ndarray | None = None, labels: np.ndarray | None = None,
           observer: str | None = None,
           limit: int | None = None, top_k: int = 5, examples: int = 3, threads: int = 1,
           progress: Callable[[str, int, int], None] | None = None) -> ParityReport:
    """Quantize ``graph`` for every target, simulate the same inputs and compare every pair of targets.

    Parameters
    ----------
    graph : Graph
        A float model (calibrated per target on the same data) or a pre-quantized one (used as it is).
    targets : sequence of Target
        At least two integer targets (float targets such as arm_tflite_fp16 have no integer grid to compare).
    inputs : numpy.ndarray, optional
        Evaluation inputs, batch first; default: the model's bundled ``evaluation`` set.
    calibration : numpy.ndarray, optional
        Calibration inputs; default: the bundled ``calibration`` set, else the evaluation inputs.
    labels : numpy.ndarray, optional
        Class labels of ``inputs``; default: the bundled labels when ``inputs`` is the bundled set.
    observer : str, optional
        Override of every target's activation observer.
    limit : int, optional
        Use at most this many evaluation (and calibration) samples.
    top_k : int
        k of the top-k agreement.
    examples : int
        Differing elements kept as examples per pair and layer.
    threads : int
        Threads for the integer kernels.
    progress : callable, optional
        ``progress(target_name, done, total)`` after each target is simulated.

    Returns
    -------
    ParityReport
    """
    if len(targets) < 2:
        raise HwsimError("--targets: parity needs at least two targets")
    names = [t.name for t in targets]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise HwsimError(f"--targets: {', '.join(dup)} given twice")
    for t in targets:
        if t.numerics.activations.format != "int":
            raise HwsimError(f"--targets: {t.name} computes in float; parity compares integer targets")
    if top_k < 1:
        raise HwsimError("--top-k: must be at least 1")
    rd = resolve_data(graph, inputs=inputs, calibration=calibration, labels=labels, limit=limit)
    inputs, calibration, labels = rd.inputs, rd.calibration, rd.labels

    runs: list[_TargetRun] = []
    for i, t in enumerate(targets):
        qm = quantize_for_target(graph, t, calibration, observer=observer)
        ints = sim.simulate_all(qm, inputs, threads=threads)
        runs.append(_TargetRun(t, qm, ints, inputs, {p.output: p for p in qm.plans if p.mode != "fused"}))
        if progress is not None:
            progress(t.name, i + 1, len(targets))
    g = runs[0].qm.graph
    out = g.outputs[0]
    ref = None
    if not graph.quant:
        chunk = graph_batch_limit(g) or len(inputs)
        ref = np.concatenate([run_float(g, {g.inputs[0].name: inputs[s:s + chunk]})[out]
                              for s in range(0, len(inputs), chunk)])
    y = None if labels is None else np.asarray(labels).reshape(-1)
    outcomes, preds = [], {}
    acc_float = None
    if ref is not None and y is not None and _classifies(ref) and len(ref) == len(y):
        acc_float = float(np.mean(ref.argmax(-1) == y))
    for r in runs:
        o = r.deq(out)
        classify = _classifies(o)
        pred = o.argmax(-1) if classify else None
        if pred is not None:
            preds[r.name] = pred
        acc = t1 = None
        if pred is not None and y is not None and len(y) == len(pred):
            acc = float(np.mean(pred == y))
        if ref is not None and classify:
            t1 = float(np.mean(ref.argmax(-1) == pred))
        risky = [{"layer": c.layer, "check": c.check, "headroom_bits": c.headroom_bits}
                 for c in check_overflow(r.qm).overflowing]
        outcomes.append(TargetOutcome(r.name, r.target.family, acc, t1,
                                      [_layer_name(p, p.output) for p in r.qm.fallbacks], risky))
    pairs = [_compare_pair(a, b, g, top_k=top_k, examples=examples) for a, b in combinations(runs, 2)]
    return ParityReport(graph.name, int(len(inputs)), 0 if graph.quant else int(len(calibration)), top_k,
                        outcomes, pairs, preds, acc_float, list(targets), {r.name: r.qm for r in runs})
