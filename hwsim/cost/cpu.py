"""CPU roofline (Intel AVX2 / AVX-512 VNNI / AMX, ARM NEON / dot-product).

Per layer on ``c`` cores:

    compute = work / (c x rate x clock x efficiency)
    memory  = DRAM bytes / dram_gbps
    time    = max(compute, memory) + per_layer_overhead_us

``rate`` is ``int8_gemm_macs_per_cycle_per_core`` (the runtime's int8 GEMM loop; defaults to the ISA figure
``int8_macs_per_cycle_per_core``) for convolution, fully-connected and matmul layers, with
``gemm_efficiency``;
depthwise convolutions use ``depthwise_efficiency``; element-wise, pooling and normalisation ops count
:data:`hwsim.cost.estimate.ELEMENT_OPS` vector operations per element at ``fp32_macs_per_cycle_per_core``.
Float targets (activations ``format: float``) use the fp32 rate for every layer. DRAM bytes: the weights when
the model's weights do not fit in the last-level cache (``l3_kib``, else ``l2_kib`` x cores; without either,
always), and every activation tensor larger than that cache. Without ``dram_gbps`` memory time is not modelled
(a note says so). Latency runs one inference on ``latency_cores``; throughput with N threads gives each thread
``cores // N`` cores (at least one) and ``dram_gbps / N``.
"""

from __future__ import annotations

import math

__all__ = ["CpuContext", "cost_layers", "totals"]

_GEMM = ("Conv2D", "Dense", "MatMul")


class CpuContext:
    """Parameters of one estimate."""

    def __init__(self, params, w_bits: int, float_compute: bool, weight_total: int) -> None:
        self.p = params
        self.clock_hz = float(params["clock_mhz"]) * 1e6
        self.cores = int(params["cores"])
        self.latency_cores = min(int(params["latency_cores"]), self.cores)
        fp32 = float(params["fp32_macs_per_cycle_per_core"])
        self.float_compute = float_compute
        self.gemm_rate = fp32 if float_compute else float(params["int8_gemm_macs_per_cycle_per_core"])
        self.isa_rate = fp32 if float_compute else float(params["int8_macs_per_cycle_per_core"])
        self.elem_rate = fp32
        self.gemm_eff = float(params["gemm_efficiency"]) or 1.0
        self.dw_eff = float(params["depthwise_efficiency"]) or 1.0
        self.ovh_ms = float(params["per_layer_overhead_us"]) / 1000.0
        self.inference_ovh_ms = float(params["per_inference_overhead_ms"])
        self.bw = (params.get("dram_gbps") or 0.0) * 1e9
        l3, l2 = params.get("l3_kib"), params.get("l2_kib")
        self.llc = (l3 * 1024) if l3 else ((l2 * 1024 * self.cores) if l2 else 0.0)
        self.weights_from_dram = weight_total > self.llc
        self.speedup = 1.0
        if not float_compute and w_bits <= 2:
            self.speedup = float(params["w2_mac_speedup"])
        elif not float_compute and w_bits <= 4:
            self.speedup = float(params["w4_mac_speedup"])


def _core_ms(layer, graph, ctx: CpuContext) -> float:
    from hwsim.cost.estimate import ELEMENT_OPS

    e = layer.entry
    if layer.kind in _GEMM:
        return e.macs / (ctx.gemm_rate * ctx.speedup * ctx.clock_hz * ctx.gemm_eff) * 1e3
    if layer.kind == "DepthwiseConv2D":
        return e.macs / (ctx.gemm_rate * ctx.clock_hz * ctx.dw_eff) * 1e3
    out_el = graph.tensors[layer.node.outputs[0]].size
    if layer.kind in ("MaxPool", "AvgPool"):
        kh, kw = layer.node.attrs["kernel"]
        work = out_el * kh * kw
    elif layer.kind == "GlobalAvgPool":
        work = graph.tensors[layer.node.inputs[0]].size
    else:
        work = out_el * ELEMENT_OPS.get(layer.kind, 1)
    return work / (ctx.elem_rate * ctx.clock_hz) * 1e3


def _layer_time(layer, ctx: CpuContext, cores: int, bw: float) -> tuple[float, float, float, str]:
    compute = layer.compute_core_ms / cores
    mem = layer.entry.ddr_bytes / bw * 1e3 if bw else 0.0
    core = max(compute, mem)
    bound = "compute" if compute >= mem else "memory"
    if ctx.ovh_ms > core:
        bound = "overhead"
    return core + ctx.ovh_ms, compute, mem, bound


def cost_layers(layers, graph, ctx: CpuContext, notes) -> None:
    """Fill the cost fields of every CPU layer (latency mode: ``latency_cores`` cores)."""
    if not ctx.bw:
        notes.append("memory time not modelled: the target states no dram_gbps")
    if not ctx.llc:
        notes.append("no cache size stated (l3_kib / l2_kib): every byte counts as DRAM traffic")
    peak = ctx.latency_cores * ctx.isa_rate * ctx.clock_hz
    for layer in layers:
        e = layer.entry
        if e.unit != "cpu":
            continue
        layer.compute_core_ms = _core_ms(layer, graph, ctx)
        load = e.weight_bytes if ctx.weights_from_dram else 0
        load += sum(b for b in layer.in_bytes if b > ctx.llc)
        store = layer.out_bytes if layer.out_bytes > ctx.llc else 0
        e.ddr_load_bytes, e.ddr_store_bytes, e.ddr_bytes = load, store, load + store
        e.time_ms, e.compute_ms, e.memory_ms, e.bound = _layer_time(layer, ctx, ctx.latency_cores, ctx.bw)
        e.cycles = e.time_ms * 1e-3 * ctx.clock_hz
        e.buffer_bytes = e.weight_bytes + sum(layer.in_bytes) + layer.out_bytes
        e.spill = bool(ctx.llc) and e.buffer_bytes > ctx.llc
        layer.peak_macs_per_s = peak
        if e.time_ms:
            e.ops_per_s = 2 * e.macs / (e.time_ms * 1e-3)
            e.utilisation = e.macs / (e.time_ms * 1e-3) / peak


def _sum_time(layers, ctx: CpuContext, cores: int, bw: float) -> float:
    return sum(_layer_time(la, ctx, cores, bw)[0] for la in layers if la.entry.unit == "cpu")


def totals(layers, timed, ctx: CpuContext, threads: int) -> dict:
    """Model totals; throughput with ``threads`` concurrent inferences splitting the cores."""
    dev = _sum_time(layers, ctx, ctx.latency_cores, ctx.bw)
    e2e = dev + ctx.inference_ovh_ms
    if threads == 1:
        fps, active, per = (1e3 / e2e if e2e else math.inf), 1, ctx.latency_cores
    else:
        active = min(threads, ctx.cores)
        per = max(1, ctx.cores // threads)
        stream = _sum_time(layers, ctx, per, ctx.bw / active) + ctx.inference_ovh_ms
        fps = active * 1e3 / stream if stream else math.inf
    ddr = [la.entry for la in timed if la.entry.unit == "cpu"]
    load = sum(e.ddr_load_bytes for e in ddr)
    store = sum(e.ddr_store_bytes for e in ddr)
    return {
        "cycles": dev * 1e-3 * ctx.clock_hz,
        "device_latency_ms": dev,
        "host_ms": 0.0,
        "overhead_ms": ctx.inference_ovh_ms,
        "e2e_latency_ms": e2e,
        "throughput_fps": fps,
        "cores_used": ctx.latency_cores if threads == 1 else active * per,
        "subgraphs": 0,
        "ddr_bytes": load + store,
        "ddr_load_bytes": load,
        "ddr_store_bytes": store,
        "host_ddr_bytes": 0,
        "ddr_gbps": (load + store) / (dev * 1e-3) / 1e9 if dev else None,
        "clock_mhz": ctx.clock_hz / 1e6,
        "_peak_macs_per_s": ctx.latency_cores * ctx.isa_rate * ctx.clock_hz,
    }
