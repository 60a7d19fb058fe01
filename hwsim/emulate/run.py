"""The main job as a library call: quantize a float model for a target, simulate it, compare with float.

``hwsim run`` is a thin presentation of :func:`run_model`; everything a report shows is in the returned
:class:`RunReport`, and :meth:`RunReport.write_folder` writes the stable-named run folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from hwsim import __version__, _core
from hwsim._io import atomic_write_text, csv_text, json_safe, make_run_folder
from hwsim.compare.metrics import TensorComparison, compare_tensor, top1_agreement
from hwsim.compare.overflow import OverflowReport, check_overflow
from hwsim.cost import CostReport, estimate
from hwsim.cost.params import CostParamsError
from hwsim.emulate.data import resolve_data
from hwsim.emulate.float_ref import run_float
from hwsim.emulate.simulator import (
    LayerOverride,
    ParamChange,
    QuantizedModel,
    in_batches,
    quantize_for_target,
    requantize_for_target,
    simulate,
    simulate_all,
)
from hwsim.errors import HwsimError
from hwsim.graph import Graph
from hwsim.targets import Target


@dataclass
class LayerReport:
    """One simulated node: what ran, at which precision, and how far it is from float."""

    name: str
    op: str
    op_kind: str
    output: str
    shape: tuple[int, ...]
    mode: str  # integer | fallback
    note: str
    weight_bits: int | None
    activation_bits: int
    scale: float
    zero_point: int
    comparison: TensorComparison | None
    cycles: float | None = None  # from the target's cost model (None: no cost parameters)
    time_ms: float | None = None
    headroom_bits: int | None = None  # smallest accumulator / int16-pair headroom (static bound; < 0 can overflow)

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("name", "op", "op_kind", "output", "mode", "note", "weight_bits",
                                           "activation_bits", "scale", "zero_point", "cycles", "time_ms",
                                           "headroom_bits")}
        d["shape"] = list(self.shape)
        d.update(self.comparison.to_dict() if self.comparison else {})
        return d


@dataclass
class RunReport:
    """Everything ``hwsim run`` reports: per-layer comparison and end-to-end agreement."""

    model: str
    target: Target
    samples: int
    calibration_samples: int
    layers: list[LayerReport]
    top1_agreement: float | None
    accuracy_float: float | None
    accuracy_sim: float | None
    output_sqnr_db: float
    folded_batchnorms: list[tuple[str, str]]
    quantized: QuantizedModel | None = field(repr=False)
    requantized: list[ParamChange] = field(default_factory=list)
    cost: CostReport | None = None
    cost_note: str = ""
    overflow: OverflowReport | None = None

    @property
    def fallbacks(self) -> list[LayerReport]:
        """Layers a target meant to run in integer form but that ran in float (float targets have none)."""
        return [layer for layer in self.layers if layer.mode == "fallback"]

    def summary(self) -> dict[str, Any]:
        """The ``summary`` object of ``--json`` and ``summary.json`` (a stable contract, see docs/run.md)."""
        return {
            "hwsim_version": __version__,
            "model": self.model,
            "target": self.target.name,
            "samples": self.samples,
            "calibration_samples": self.calibration_samples,
            "layers": len(self.layers),
            "integer_layers": sum(1 for x in self.layers if x.mode == "integer"),
            "float_layers": sum(1 for x in self.layers if x.mode == "float"),
            "fallback_layers": [{"name": x.name, "op": x.op, "reason": x.note} for x in self.fallbacks],
            "folded_batchnorms": [{"into": a, "batchnorm": b} for a, b in self.folded_batchnorms],
            "requantized_tensors": len(self.requantized),
            "cost": None if self.cost is None else {k: json_safe(v) for k, v in self.cost.totals.items()},
            "cost_note": self.cost_note,
            "can_overflow": [] if self.overflow is None else sorted({c.layer for c in self.overflow.overflowing}),
            "output_sqnr_db": json_safe(self.output_sqnr_db),
            "top1_agreement": self.top1_agreement,
            "accuracy_float": self.accuracy_float,
            "accuracy_sim": self.accuracy_sim,
        }

    def to_dict(self) -> dict[str, Any]:
        d = {"summary": self.summary(),
             "layers": [{k: json_safe(v) for k, v in x.to_dict().items()} for x in self.layers]}
        if self.requantized:
            d["requantized"] = [c.to_dict() for c in self.requantized]
        return d

    def write_folder(self, out_dir: str | os.PathLike) -> Path:
        """Write ``summary.json``, ``layers.csv`` and ``target.yaml`` into ``out_dir`` (created if needed).

        Each file is written to a temporary name and renamed, so a reader never sees half a file.
        """
        out = make_run_folder(out_dir)
        atomic_write_text(out / "summary.json", json.dumps(self.summary(), indent=2) + "\n")
        rows = [{**x.to_dict(), "shape": "x".join(map(str, x.shape))} for x in self.layers]
        columns = ["name", "op", "op_kind", "output", "shape", "mode", "note", "weight_bits", "activation_bits",
                   "scale", "zero_point", "sqnr_db", "cosine", "max_abs_error", "max_lsb_error", "mean_abs_error",
                   "cycles", "time_ms", "headroom_bits"]
        atomic_write_text(out / "layers.csv", csv_text(columns, rows))
        atomic_write_text(out / "target.yaml", yaml.safe_dump(self.target.to_dict(all_ops=True), sort_keys=False))
        if self.cost is not None:
            self.cost.write_folder(out)
        if self.requantized:
            rows = [c.to_dict() for c in self.requantized]
            cols = ["tensor", "role", "old_bits", "new_bits", "old_scale", "new_scale", "scale_ratio",
                    "old_zero_point", "new_zero_point", "old_range", "new_range"]
            atomic_write_text(out / "requantized.csv", csv_text(cols, rows))
        return out


def run_model(graph: Graph, target: Target, *, inputs: np.ndarray | None = None,
              calibration: np.ndarray | None = None, labels: np.ndarray | None = None,
              observer: str | None = None, limit: int | None = None, threads: int = 1, requantize: bool = False,
              dynamic: bool = False, overrides: dict[str, LayerOverride] | None = None,
              progress: Callable[[str, int, int], None] | None = None) -> RunReport:
    """Quantize ``graph`` for ``target`` (static calibration), simulate it bit-exactly and compare with float.

    Parameters
    ----------
    graph : Graph
        A float model.
    target : Target
        The resolved target.
    inputs : numpy.ndarray, optional
        Evaluation inputs, batch first; default: the model's bundled ``evaluation`` set.
    calibration : numpy.ndarray, optional
        Calibration inputs; default: the bundled ``calibration`` set, else the evaluation inputs.
    labels : numpy.ndarray, optional
        Class labels for ``inputs``; default: the bundled evaluation labels when ``inputs`` is the bundled set.
    observer : str, optional
        Override of the target's calibration observer.
    limit : int, optional
        Use at most this many evaluation (and calibration) samples.
    threads : int
        Threads for the integer kernels.
    requantize : bool
        For a pre-quantized model: map its quantization onto the target's rules (keeping each tensor's real
        range) instead of simulating its own parameters; the report lists what changed per tensor.
    dynamic : bool
        Dynamic quantization: every input sample's activation ranges are observed on that sample itself at
        run time (weights as in static quantization); no calibration set is used.
    overrides : dict, optional
        Per-node :class:`~hwsim.emulate.simulator.LayerOverride` (float, or another weight bit width).
    progress : callable, optional
        ``progress(phase, done, total)`` with phase ``"calibration"`` or ``"evaluation"``.
    """
    rd = resolve_data(graph, inputs=inputs, calibration=calibration, labels=labels, limit=limit)
    inputs, calibration, labels = rd.inputs, rd.calibration, rd.labels
    if target.numerics.activations.format == "float":
        return _run_float_target(graph, target, inputs, labels, threads)
    if dynamic:
        if graph.quant:
            raise HwsimError(f"model '{graph.name}': --dynamic quantizes a float model; this one is pre-quantized")
        return _run_dynamic(graph, target, inputs, labels, observer, overrides, threads, progress)
    ncal = calibration.shape[0]
    changes: list[ParamChange] = []
    if requantize:
        qm, changes = requantize_for_target(graph, target)
        ncal = 0
    else:
        qm = quantize_for_target(graph, target, calibration, observer=observer, overrides=overrides,
                                 progress=None if progress is None else lambda d: progress("calibration", d, ncal))
        if graph.quant:
            ncal = 0
    g = qm.graph
    integers = simulate_all(qm, inputs, threads=threads,
                            progress=None if progress is None else lambda d: progress("evaluation", d, len(inputs)))
    ref = in_batches(g, inputs, lambda xb: run_float(g, {g.inputs[0].name: xb}, keep_intermediates=True))

    layers: list[LayerReport] = []
    for p in qm.plans:
        if p.mode == "fused":
            continue
        q = qm.act[p.output]
        layers.append(_layer_report(g, target, p, p.reason, q.scale, q.zero_point,
                                    compare_tensor(ref[p.output], q.dequantize(integers[p.output]), q.scale)))
    out = g.outputs[0]
    e2e = _end_to_end(ref[out], qm.act[out].dequantize(integers[out]), labels, qm.act[out].scale)
    report = RunReport(graph.name, target, int(len(inputs)), int(ncal), layers, *e2e, list(qm.folded_batchnorms),
                       qm, changes)
    _attach_cost(report, qm.graph, [p.node.name for p in qm.plans if p.mode != "fused"])
    report.overflow = check_overflow(qm)
    for layer, p in zip(report.layers, [p for p in qm.plans if p.mode != "fused"]):
        checks = report.overflow.for_layer(p.node.name)
        if checks:
            layer.headroom_bits = min(c.headroom_bits for c in checks)
    return report


def _layer_report(g: Graph, target: Target, p, note: str, scale: float, zero_point: int,
                  comparison: TensorComparison) -> LayerReport:
    """The report row of one simulated (non-fused) plan."""
    weighted = p.op_kind in ("Conv2D", "DepthwiseConv2D", "Dense") and p.mode == "integer"
    wbits = p.consts.get("weight_bits", target.numerics.weights.bits) if weighted else None
    name = p.node.name if p.fused_activation is None else f"{p.node.name}+{p.fused_activation.op}"
    return LayerReport(name, p.node.op, p.op_kind, p.output, tuple(g.tensors[p.output].shape), p.mode, note, wbits,
                       target.numerics.activations.bits, scale, zero_point, comparison)


def _end_to_end(ref_out: np.ndarray, sim_out: np.ndarray, labels: np.ndarray | None,
                scale: float) -> tuple[float | None, float | None, float | None, float]:
    """(top-1 agreement, float accuracy, simulated accuracy, output SQNR) of the graph output."""
    agreement = top1_agreement(ref_out, sim_out) if ref_out.ndim >= 2 and ref_out.shape[-1] > 1 else None
    acc_f = acc_s = None
    if labels is not None:
        y = np.asarray(labels).reshape(-1)
        acc_f = float(np.mean(ref_out.reshape(len(y), -1).argmax(-1) == y))
        acc_s = float(np.mean(sim_out.reshape(len(y), -1).argmax(-1) == y))
    return agreement, acc_f, acc_s, compare_tensor(ref_out, sim_out, scale).sqnr_db


def _attach_cost(report: RunReport, graph: Graph, node_names: list[str]) -> None:
    """Per-layer cycles and time, and the totals, from the target's cost model (when it has parameters)."""
    try:
        cost = estimate(graph, report.target)
    except CostParamsError as exc:
        report.cost_note = str(exc)
        return
    report.cost = cost
    for layer, name in zip(report.layers, node_names):
        try:
            lc = cost.layer(name)
        except (KeyError, HwsimError):
            continue
        layer.cycles, layer.time_ms = lc.cycles, lc.time_ms


_WEIGHT_OPS = ("Conv2D", "Dense")


def float_weights_graph(graph: Graph, bits: int) -> Graph:
    """``graph`` with the weights and biases of Conv2D/Dense layers rounded to float16 (RNE) and widened back to
    float32, as TFLite's float16 post-training quantization stores them (the converter stores biases as
    float16 too: measured on TF 2.21, tests/frontends/test_tflite_import.py); the constant DEQUANTIZE to float32
    is exact (numerics A.1)."""
    if bits != 16:
        raise HwsimError(f"float target: only float16 weights are simulated, got {bits}-bit float weights")
    g = graph.copy()
    for node in g.nodes:
        if node.op in _WEIGHT_OPS:
            for p in node.inputs[1:3]:
                g.params[p] = g.params[p].astype(np.float16).astype(np.float32)
    return g


def _run_float_target(graph: Graph, target: Target, inputs: np.ndarray, labels: np.ndarray | None,
                      threads: int) -> RunReport:
    """Float targets (e.g. arm_tflite_fp16): reduced-precision weights, float32 compute, compared with float."""
    g = float_weights_graph(graph, target.numerics.weights.bits)
    ref = in_batches(graph, inputs, lambda xb: run_float(graph, {graph.inputs[0].name: xb}, keep_intermediates=True))
    sim = in_batches(g, inputs, lambda xb: run_float(g, {g.inputs[0].name: xb}, keep_intermediates=True))
    layers = []
    for node in g.nodes:
        t = node.outputs[0]
        scale = float(np.max(np.abs(ref[t]))) / 127.0 or 1.0  # "LSB" of an 8-bit grid over the tensor's range
        wbits = target.numerics.weights.bits if node.op in _WEIGHT_OPS else None
        layers.append(LayerReport(node.name, node.op, node.op, t, tuple(g.tensors[t].shape), "float",
                                  "float32 compute", wbits, 32, scale, 0, compare_tensor(ref[t], sim[t], scale)))
    out = g.outputs[0]
    report = RunReport(graph.name, target, int(len(inputs)), 0, layers, *_end_to_end(ref[out], sim[out], labels, 1.0),
                       [], None)
    _attach_cost(report, g, [n.name for n in g.nodes])
    return report


def _run_dynamic(graph: Graph, target: Target, inputs: np.ndarray, labels: np.ndarray | None, observer: str | None,
                 overrides: dict[str, LayerOverride] | None, threads: int,
                 progress: Callable[[str, int, int], None] | None) -> RunReport:
    """Dynamic quantization: each sample is calibrated on itself, then simulated; metrics over all samples.

    Scales differ from sample to sample, so layers are compared on dequantized values, and "LSB" errors use
    each layer's largest scale over the samples.
    """
    ref = in_batches(graph, inputs, lambda xb: run_float(graph, {graph.inputs[0].name: xb}, keep_intermediates=True))
    sims: dict[str, list[np.ndarray]] = {}
    scales: dict[str, float] = {}
    qm = None
    workers = _core.Workers(threads) if threads != 1 else 1  # one pool for every sample
    for i in range(len(inputs)):
        xi = inputs[i:i + 1]
        qm = quantize_for_target(graph, target, xi, observer=observer, overrides=overrides)
        ints = simulate(qm, xi, keep_intermediates=True, threads=workers).integers
        for p in qm.plans:
            if p.mode != "fused":
                q = qm.act[p.output]
                sims.setdefault(p.output, []).append(q.dequantize(ints[p.output]))
                scales[p.output] = max(scales.get(p.output, 0.0), q.scale)
        if progress is not None:
            progress("evaluation", i + 1, len(inputs))
    assert qm is not None
    g = qm.graph
    layers: list[LayerReport] = []
    for p in qm.plans:
        if p.mode == "fused":
            continue
        simulated = np.concatenate(sims[p.output])
        layers.append(_layer_report(g, target, p, p.reason or "dynamic: ranges from each input", scales[p.output],
                                    qm.act[p.output].zero_point,
                                    compare_tensor(ref[p.output], simulated, scales[p.output])))
    out = g.outputs[0]
    e2e = _end_to_end(ref[out], np.concatenate(sims[out]), labels, scales[out])
    report = RunReport(graph.name, target, int(len(inputs)), 0, layers, *e2e, list(qm.folded_batchnorms), qm)
    _attach_cost(report, g, [p.node.name for p in qm.plans if p.mode != "fused"])
    return report
