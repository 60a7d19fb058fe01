"""Per-layer cycles, latency, memory and DDR traffic of a graph on a target.

The estimate runs in three steps.

1. **Layers.** Walk the nodes in execution order. A BatchNorm that :func:`hwsim.quant.bn_fold.fold_batchnorm`
   would fold (the same rule, checked without touching the weights) is ``fused`` into its producer; an
   activation listed in the producer's ``fuse`` (target ``ops:``) and read by nothing else is ``fused`` too;
   Reshape and Flatten are ``free`` views. Every other node is a timed layer that runs on the target's compute
   (``dpu`` / ``cpu``) or, for an op the target sends to the CPU (``fallback: cpu``) or beyond a DPU limit,
   on the board's application CPU (``host``). Each host island ends a DPU subgraph.
2. **Memory.** Weights at the target's weight bit width (4- and 2-bit values packed); activations at the
   activation bit width; peak live activation memory from each tensor's first and last use in execution
   order; DDR traffic from where each tensor lives (on-chip when the DPU can keep it, otherwise stored once
   and loaded by every consumer).
3. **Time.** Per layer, ``max(compute, memory) + fixed per-layer time`` (loads and stores overlap with
   compute); per model, the layers plus per-subgraph and per-inference overheads.

The DPU formulas are in :mod:`hwsim.cost.dpu`, the CPU roofline in :mod:`hwsim.cost.cpu`; docs/cost.md
states every formula and constant with its source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hwsim.cost import cpu as cpu_model
from hwsim.cost import dpu as dpu_model
from hwsim.cost.params import ResolvedParams, resolve_params
from hwsim.cost.report import CostReport, LayerCost
from hwsim.errors import HwsimError

__all__ = ["estimate", "ELEMENT_OPS", "op_kind"]

#: Vector operations per output element of element-wise and normalisation ops on a CPU (a transcendental
#: function counts as a short polynomial). Rough counts of the arithmetic steps (derived, not measured); they
#: matter only for CPU-fallback and float ops, which are small next to the convolutions.
ELEMENT_OPS = {
    "Add": 1, "Mul": 1, "ReLU": 1, "ReLU6": 2, "LeakyReLU": 2, "Pad": 1, "Concat": 1, "Transpose": 1,
    "BatchNorm": 2, "HardSigmoid": 3, "HardSwish": 4, "Sigmoid": 8, "Tanh": 8, "SELU": 8, "SiLU": 9,
    "Mish": 12, "GELU": 12, "Softmax": 10, "LayerNorm": 8, "MaxPool": 1, "AvgPool": 1, "GlobalAvgPool": 1,
}
_GEMM = ("Conv2D", "Dense", "MatMul")
_FREE = ("Reshape", "Flatten")
_FUSABLE = ("ReLU", "ReLU6", "LeakyReLU", "HardSigmoid", "HardSwish")
_KNOWN = set(_GEMM) | set(_FREE) | set(ELEMENT_OPS) | {"DepthwiseConv2D"}


def op_kind(node, graph) -> str:
    """The op kind a target maps: ``DepthwiseConv2D`` for a Conv2D with groups == input channels > 1."""
    if node.op == "Conv2D":
        groups = node.attrs.get("groups", 1)
        if groups > 1 and groups == graph.tensors[node.inputs[0]].shape[-1]:
            return "DepthwiseConv2D"
    return node.op


@dataclass
class _Layer:
    """A timed layer under construction (the root of a fusion chain)."""

    entry: LayerCost
    node: object
    kind: str
    inputs: list[str]
    output: str
    out_bytes: int = 0
    in_bytes: list[int] = field(default_factory=list)
    compute_core_ms: float = 0.0   # compute time on one core (CPU) or one DPU core
    peak_macs_per_s: float = 0.0   # of the unit that runs the layer (utilisation)
    extra_bias: int = 0            # bias elements a folded BatchNorm adds to a producer without one


def _bits_bytes(count: int, bits: int) -> int:
    return -(-count * bits // 8)


def _role_bits(target, role: str) -> int:
    r = getattr(target.numerics, role)
    return int(r.bits)


def _structural_bn_fold(graph) -> dict[str, str]:
    """BatchNorm node name -> producer name, for every BN that fold_batchnorm would fold (no arithmetic)."""
    from hwsim.quant.bn_fold import _why_not

    folded = {}
    for bn in graph.nodes:
        if bn.op != "BatchNorm":
            continue
        producer = graph.producer(bn.inputs[0])
        if _why_not(graph, bn, producer) is None:
            folded[bn.name] = producer.name
    return folded


def estimate(graph, target, *, threads: int = 1, per_layer_subgraphs: bool = False) -> CostReport:
    """Estimate cycles, latency, memory and DDR traffic of ``graph`` on ``target``.

    Parameters
    ----------
    graph : hwsim.graph.Graph
        A validated graph, float or quantized; BatchNorms are treated as folded where
        :func:`hwsim.quant.bn_fold.fold_batchnorm` would fold them (the graph is not changed).
    target : hwsim.targets.Target
        A target with a ``cost:`` section (``family: dpu`` uses the DPU model, any other family the CPU
        roofline).
    threads : int
        Concurrent inference threads for ``totals["throughput_fps"]`` (DPU: one inference per DPU core, cores
        sharing the board's DDR; CPU: the cores split between the threads). Latencies are always one
        inference on an idle device.
    per_layer_subgraphs : bool
        DPU only: run every layer as its own subgraph, every feature map through DDR (what vaitrace's debug
        mode measures, perf-anchors 1.2).

    Returns
    -------
    CostReport
        ``.layers`` (one :class:`LayerCost` per node), ``.totals``, ``.to_dict()`` (docs/cost.md).

    Raises
    ------
    hwsim.cost.params.CostParamsError
        If the target has no cost parameters or lacks ones the model needs.
    hwsim.errors.HwsimError
        If ``threads`` is not a positive integer or the graph has not been validated.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise HwsimError(f"threads must be a positive integer, got {threads!r}")
    if not graph.tensors:
        raise HwsimError(f"graph '{graph.name}' has not been validated (no tensor shapes); "
                         f"call graph.validate()")
    params = resolve_params(target)
    dpu = target.family == "dpu"
    if per_layer_subgraphs and not dpu:
        raise HwsimError("per_layer_subgraphs applies to DPU targets only")
    w_bits, b_bits, a_bits = (_role_bits(target, r) for r in ("weights", "bias", "activations"))
    irrelevant = () if w_bits <= 4 else ("w4_mac_speedup", "w2_mac_speedup")
    notes: list[str] = [f"default {d}" for d in params.defaulted() if not d.startswith(irrelevant)]
    float_compute = target.numerics.activations.format == "float"
    folded = _structural_bn_fold(graph)
    consumers: dict[str, list[str]] = {}
    for n in graph.nodes:
        for t in n.inputs:
            consumers.setdefault(t, []).append(n.name)

    def act_bytes(t: str) -> int:
        return _bits_bytes(graph.tensors[t].size, a_bits)

    entries: list[LayerCost] = []
    layers: list[_Layer] = []
    writer: dict[str, _Layer] = {}      # materialised tensor -> layer that writes it
    root_of: dict[str, _Layer] = {}     # any tensor written by a fusion chain -> its root layer
    alias: dict[str, str] = {}          # view tensor -> base tensor

    def base(t: str) -> str:
        while t in alias:
            t = alias[t]
        return t

    for node in graph.nodes:
        kind = op_kind(node, graph)
        macs = int(node.macs)
        entry = LayerCost(name=node.name, op=kind, unit="", macs=macs)
        entries.append(entry)
        src = node.inputs[0] if node.inputs else None
        if node.name in folded:
            root = root_of[src]
            if len(root.node.inputs) < 3:
                root.extra_bias = int(graph.tensors[node.inputs[1]].size)
            _fuse(entry, root, node, writer, root_of, "BatchNorm folded into the producer's weights")
            continue
        if kind in _FREE:
            entry.unit, entry.note = "free", "view of its input (no data movement)"
            entry.cycles = entry.compute_ms = entry.memory_ms = entry.time_ms = 0.0
            alias[node.outputs[0]] = base(src)
            continue
        unit, why = _placement(node, kind, graph, target, params, dpu)
        if kind in _FUSABLE and src in root_of and consumers.get(src, []) == [node.name] \
                and src not in graph.outputs:
            root = root_of[src]
            if root.output == src and root.entry.unit == unit and kind in target.op(root.kind).fuse:
                _fuse(entry, root, node, writer, root_of, f"fused into {root.entry.name}")
                continue
        if kind not in _KNOWN:
            entry.unit = "unestimated"
            entry.cycles = entry.compute_ms = entry.memory_ms = entry.time_ms = None
            entry.ddr_load_bytes = entry.ddr_store_bytes = entry.ddr_bytes = None
            entry.note = f"the cost model does not know op '{kind}'"
            layer = _Layer(entry, node, kind, [base(t) for t in node.inputs if t not in graph.params],
                           node.outputs[0])
            writer[node.outputs[0]] = root_of[node.outputs[0]] = layer
            layers.append(layer)
            continue
        entry.unit, entry.note = unit, why
        layer = _Layer(entry, node, kind, [base(t) for t in node.inputs if t not in graph.params],
                       node.outputs[0])
        writer[node.outputs[0]] = root_of[node.outputs[0]] = layer
        layers.append(layer)

    # ---- memory: bytes per tensor, liveness, weights -------------------------------------------------
    weight_total = 0
    counted: set[str] = set()
    for layer in layers:
        wb = 0
        for i, t in enumerate(layer.node.inputs):
            if t not in graph.params:
                continue
            n_el = int(graph.params[t].size)
            if layer.kind in _GEMM + ("DepthwiseConv2D",) and i == 1:
                b = _bits_bytes(n_el, w_bits)
            elif layer.kind in _GEMM + ("DepthwiseConv2D",) and i == 2:
                b = _bits_bytes(n_el, b_bits)
            else:
                b = _bits_bytes(n_el, a_bits)
            wb += b
            if t not in counted:
                counted.add(t)
                weight_total += b
        if layer.extra_bias:  # folding a BatchNorm gives the producer a bias (fold_batchnorm)
            b = _bits_bytes(layer.extra_bias, b_bits)
            wb += b
            weight_total += b
        layer.entry.weight_bytes = wb
        layer.in_bytes = [act_bytes(t) for t in layer.inputs]
        layer.out_bytes = act_bytes(layer.output)
        layer.entry.activation_bytes = sum(layer.in_bytes) + layer.out_bytes
    for e in entries:
        if e.unit == "fused" and e.fused_into is not None:
            e.activation_bytes = 0

    order = {id(layer): i for i, layer in enumerate(layers)}
    last_use: dict[str, int] = {}
    readers: dict[str, list[_Layer]] = {}
    for i, layer in enumerate(layers):
        for t in layer.inputs:
            last_use[t] = i
            readers.setdefault(t, []).append(layer)
    end = len(layers)
    for t in graph.outputs:
        last_use[base(t)] = end
    live_from = {t.name: 0 for t in graph.inputs}
    for layer in layers:
        live_from[layer.output] = order[id(layer)]
    peak_act = 0
    if layers:
        delta = [0] * (end + 2)
        for t, start in live_from.items():
            stop = last_use.get(t, start)
            size = act_bytes(t)
            delta[start] += size
            delta[stop + 1] -= size
        run = 0
        for d in delta:
            run += d
            peak_act = max(peak_act, run)
    activation_total = sum(act_bytes(t) for t in live_from)

    # ---- time ------------------------------------------------------------------------------------------
    if dpu:
        ctx = dpu_model.DpuContext(params, w_bits, per_layer_subgraphs)
        dpu_model.assign_subgraphs(layers, per_layer_subgraphs)
        dpu_model.cost_layers(layers, graph, ctx, readers, writer, base, act_bytes, notes)
    else:
        ctx = cpu_model.CpuContext(params, w_bits, float_compute, weight_total)
        cpu_model.cost_layers(layers, graph, ctx, notes)

    # ---- totals ----------------------------------------------------------------------------------------
    timed = [la for la in layers if la.entry.unit not in ("unestimated",)]
    unestimated = [la.entry.name for la in layers if la.entry.unit == "unestimated"]
    if unestimated:
        notes.append(f"{len(unestimated)} layer(s) not estimated (unknown op): {', '.join(unestimated)}; "
                     f"totals cover the other layers only")
    spills = [la.entry.name for la in layers if la.entry.spill]
    if dpu:
        totals = dpu_model.totals(layers, timed, ctx, threads)
    else:
        totals = cpu_model.totals(layers, timed, ctx, threads)
    macs_total = sum(e.macs for e in entries)
    device_ms = totals["device_latency_ms"]
    totals.update({
        "macs": macs_total,
        "ops": 2 * macs_total,
        "weight_bytes": weight_total,
        "peak_activation_bytes": peak_act,
        "activation_bytes": activation_total,
        "compute_bound_layers": sum(1 for la in timed if la.entry.bound == "compute"),
        "memory_bound_layers": sum(1 for la in timed if la.entry.bound == "memory"),
        "overhead_bound_layers": sum(1 for la in timed if la.entry.bound == "overhead"),
        "spill_layers": spills,
        "unestimated": unestimated,
        "threads": threads,
        "ops_per_s": (2 * macs_total / (device_ms * 1e-3)) if device_ms else None,
    })
    peak = totals.pop("_peak_macs_per_s", None)
    totals["utilisation"] = (macs_total / (device_ms * 1e-3) / peak) if device_ms and peak else None
    if spills:
        notes.append(f"{len(spills)} layer(s) need more than the on-chip buffer at once and are tiled "
                     f"through DRAM (spill column)")
    return CostReport(model=graph.name, target=target.name, family=target.family, threads=threads,
                      layers=entries, totals=totals, params=params.to_dict(), notes=notes)


def _fuse(entry: LayerCost, root: _Layer, node, writer, root_of, note: str) -> None:
    entry.unit, entry.fused_into, entry.note = "fused", root.entry.name, note
    entry.cycles = entry.compute_ms = entry.memory_ms = entry.time_ms = 0.0
    entry.subgraph = None
    writer.pop(root.output, None)
    root.output = node.outputs[0]
    writer[root.output] = root
    root_of[root.output] = root


def _placement(node, kind: str, graph, target, params: ResolvedParams, dpu: bool) -> tuple[str, str]:
    """Where a layer runs and why: the target's compute, or the host CPU for a fallback."""
    impl = target.op(kind)
    if not dpu:
        return "cpu", ("float fallback (dequantize, float op, quantize)" if impl.fallback else "")
    if impl.fallback is not None:
        return "host", f"CPU fallback ({impl.source or 'ops'}: fallback {impl.fallback}), ends a DPU subgraph"
    limit = dpu_model.limit_violation(node, kind, graph, params)
    if limit:
        return "host", f"beyond a DPU limit ({limit}), runs on the CPU"
    return "dpu", ""
