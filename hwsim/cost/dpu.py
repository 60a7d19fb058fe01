"""DPUCZDX8G (B512 ... B4096) cycle and DDR model.

Convolution engine (perf-anchors 1.2 "(derived)", 2.1): per output row, ``ceil(OW / PP)`` pixel groups, each
taking ``ceil(IC / ICP) x KH x KW`` input-channel steps for each of ``ceil(OC / OCP)`` output-channel groups:

    cycles = N x OH x ceil(OW / PP) x ceil(IC / ICP) x KH x KW x ceil(OC / OCP)

With channel augmentation (PG338: "improving the efficiency ... when handling input channels much lower than
the available channel parallelism"), a layer with IC < ICP packs kernel columns into the input-channel lanes:
``ceil(IC x KW / ICP) x KH`` replaces ``ceil(IC / ICP) x KH x KW`` (perf-anchors 1.2, conv1: 88k cycles).
Depthwise convolution, pooling and element-wise ops use PP x ICP lanes (one channel group per cycle, no
output-channel parallelism; derived, unconfirmed). Every engine's cycles are divided by ``conv_efficiency``,
the one fitted constant of the compute side. Memory: every byte loaded (weights and bias at their bit widths,
input feature maps that live in DDR) or stored (outputs that live in DDR) at ``dram_gbps`` per core; a feature
map stays on chip between two layers of one subgraph when it is at most ``feature_map_onchip_kib``. A layer
takes ``max(compute, memory) + per_layer_overhead_us``; a subgraph call adds ``per_subgraph_overhead_ms``.
"""

from __future__ import annotations

import math

__all__ = ["conv_cycles", "depthwise_cycles", "dense_cycles", "pool_cycles", "elementwise_cycles",
           "limit_violation"]


def _c(a: int, b: int) -> int:
    return -(-int(a) // int(b))


def conv_cycles(n: int, oh: int, ow: int, oc: int, kh: int, kw: int, ic: int, groups: int,
                pp: int, icp: int, ocp: int, channel_augmentation: bool = True) -> int:
    """Ideal cycles of a (grouped) convolution; ``ic`` and ``oc`` are per group."""
    if channel_augmentation and ic < icp:
        k_steps = _c(ic * kw, icp) * kh
    else:
        k_steps = _c(ic, icp) * kh * kw
    return n * oh * _c(ow, pp) * k_steps * _c(oc, ocp) * groups


def depthwise_cycles(n: int, oh: int, ow: int, c: int, kh: int, kw: int, pp: int, icp: int) -> int:
    """Ideal cycles of a depthwise convolution with ``c`` output channels."""
    return n * oh * _c(ow, pp) * _c(c, icp) * kh * kw


def dense_cycles(rows: int, k: int, m: int, pp: int, icp: int, ocp: int) -> int:
    """Ideal cycles of a fully-connected layer: ``rows`` vectors of ``k`` inputs, ``m`` outputs."""
    return _c(rows, pp) * _c(k, icp) * _c(m, ocp)


def pool_cycles(n: int, oh: int, ow: int, c: int, kh: int, kw: int, pp: int, icp: int) -> int:
    """Ideal cycles of a max / average pool."""
    return n * oh * _c(ow, pp) * _c(c, icp) * kh * kw


def elementwise_cycles(elements: int, pp: int, icp: int) -> int:
    """Ideal cycles of an element-wise op over ``elements`` outputs."""
    return _c(elements, pp * icp)


def limit_violation(node, kind: str, graph, params) -> str:
    """The UG1414 DPUCZDX8G limit a convolution breaks (perf-anchors 2.4), or ``""``."""
    if kind == "LeakyReLU":
        # only alpha = 26/256 runs on the DPU (numerics.md C.5; vai_q turns 0.1 into it)
        alpha = float(node.attrs.get("alpha", 0.01))
        return "" if abs(alpha - 26 / 256) <= 0.002 else f"LeakyReLU alpha {alpha:g} is not 26/256"
    if kind not in ("Conv2D", "DepthwiseConv2D"):
        return ""
    o, kh, kw, icg = graph.params[node.inputs[1]].shape if node.inputs[1] in graph.params else \
        graph.tensors[node.inputs[1]].shape
    sh, sw = node.attrs.get("strides", [1, 1])
    cp = params["input_channel_parallel"]
    if not (1 <= kh <= 16 and 1 <= kw <= 16):
        return f"kernel {kh}x{kw} outside 1..16"
    if not (1 <= sh <= 8 and 1 <= sw <= 8):
        return f"stride {sh}x{sw} outside 1..8"
    depth = params.get("bank_depth_words")
    if kind == "Conv2D" and depth and kh * kw * _c(icg, cp) > depth:
        return f"kernel_w x kernel_h x ceil(ic / {cp}) = {kh * kw * _c(icg, cp)} > bank depth {depth}"
    if kind == "Conv2D" and o // node.attrs.get("groups", 1) > 256 * cp:
        return f"output channels {o} > 256 x {cp}"
    return ""


class DpuContext:
    """Parameters of one estimate."""

    def __init__(self, params, w_bits: int, per_layer_subgraphs: bool) -> None:
        self.p = params
        self.pp = int(params["pixel_parallel"])
        self.icp = int(params["input_channel_parallel"])
        self.ocp = int(params["output_channel_parallel"])
        self.clock_hz = float(params["clock_mhz"]) * 1e6
        self.bw = float(params["dram_gbps"]) * 1e9
        self.eff = float(params["conv_efficiency"]) or 1.0
        self.onchip = 0 if per_layer_subgraphs else float(params["feature_map_onchip_kib"]) * 1024
        self.layer_ovh_ms = float(params["per_layer_overhead_us"]) / 1000.0
        self.subgraph_ovh_ms = float(params["per_subgraph_overhead_ms"])
        self.inference_ovh_ms = float(params["per_inference_overhead_ms"])
        self.cores = int(params["cores"])
        macs = params.get("int8_macs_per_cycle_per_core") or self.pp * self.icp * self.ocp
        self.peak = float(macs) * self.clock_hz
        self.speedup = 1.0
        if w_bits <= 2:
            self.speedup = float(params["w2_mac_speedup"])
        elif w_bits <= 4:
            self.speedup = float(params["w4_mac_speedup"])
        self.sram = (params.get("sram_kib") or 0) * 1024
        self.host = all(params.get(k) for k in ("host_cores", "host_clock_mhz",
                                                 "host_fp32_macs_per_cycle_per_core"))
        if self.host:
            self.host_rate = (params["host_cores"] * params["host_clock_mhz"] * 1e6
                              * params["host_fp32_macs_per_cycle_per_core"])
            self.host_bw = (params.get("host_dram_gbps") or 0) * 1e9


def assign_subgraphs(layers, per_layer: bool) -> None:
    """Number DPU subgraphs: a new one after every host island (or for every layer in debug mode)."""
    sg, prev_host = -1, True
    for layer in layers:
        e = layer.entry
        if e.unit == "dpu":
            if prev_host or per_layer:
                sg += 1
            e.subgraph = sg
            prev_host = False
        elif e.unit in ("host", "unestimated"):
            prev_host = True


def compute_cycles(layer, graph, ctx: DpuContext) -> float:
    """Ideal cycles of ``layer`` on one DPU core, before ``conv_efficiency`` and low-bit speedups."""
    node, kind = layer.node, layer.kind
    out = graph.tensors[node.outputs[0]].shape
    pp, icp, ocp = ctx.pp, ctx.icp, ctx.ocp
    if kind in ("Conv2D", "DepthwiseConv2D"):
        n, oh, ow, oc = out
        _, kh, kw, icg = graph.tensors[node.inputs[1]].shape
        g = node.attrs.get("groups", 1)
        if kind == "DepthwiseConv2D":
            return depthwise_cycles(n, oh, ow, oc, kh, kw, pp, icp)
        return conv_cycles(n, oh, ow, oc // g, kh, kw, icg, g, pp, icp, ocp)
    if kind == "Dense":
        x = graph.tensors[node.inputs[0]].shape
        rows = math.prod(x[:-1])
        m, k = graph.tensors[node.inputs[1]].shape
        return dense_cycles(rows, k, m, pp, icp, ocp)
    if kind == "MatMul":
        a = graph.tensors[node.inputs[0]].shape
        batch = math.prod(out[:-2])
        return batch * dense_cycles(a[-2], a[-1], out[-1], pp, icp, ocp)
    if kind in ("MaxPool", "AvgPool"):
        n, oh, ow, c = out
        kh, kw = node.attrs["kernel"]
        return pool_cycles(n, oh, ow, c, kh, kw, pp, icp)
    if kind == "GlobalAvgPool":
        n, h, w, c = graph.tensors[node.inputs[0]].shape
        return n * _c(h * w, pp) * _c(c, icp)
    return elementwise_cycles(math.prod(out), pp, icp)


def _time(compute_ms: float, mem_bytes: int, bw: float, ovh_ms: float) -> tuple[float, float, str]:
    mem_ms = mem_bytes / bw * 1e3 if bw else 0.0
    core = max(compute_ms, mem_ms)
    bound = "compute" if compute_ms >= mem_ms else "memory"
    if ovh_ms > core:
        bound = "overhead"
    return core + ovh_ms, mem_ms, bound


def cost_layers(layers, graph, ctx: DpuContext, readers, writer, base, act_bytes, notes) -> None:
    """Fill the cost fields of every DPU and host layer."""
    outputs = {base(t) for t in graph.outputs}

    def onchip(t: str) -> bool:
        w = writer.get(t)
        if w is None or w.entry.unit != "dpu" or t in outputs or act_bytes(t) > ctx.onchip:
            return False
        return all(r.entry.unit == "dpu" and r.entry.subgraph == w.entry.subgraph for r in readers.get(t, []))

    host_missing = False
    for layer in layers:
        e = layer.entry
        if e.unit == "dpu":
            cyc = compute_cycles(layer, graph, ctx)
            if layer.kind in ("Conv2D", "DepthwiseConv2D", "Dense", "MatMul"):
                cyc /= ctx.speedup
            cyc /= ctx.eff
            compute_ms = cyc / ctx.clock_hz * 1e3
            load = e.weight_bytes + sum(b for t, b in zip(layer.inputs, layer.in_bytes) if not onchip(t))
            store = 0 if onchip(layer.output) else layer.out_bytes
            layer.compute_core_ms = compute_ms
            e.time_ms, e.memory_ms, e.bound = _time(compute_ms, load + store, ctx.bw, ctx.layer_ovh_ms)
            e.compute_ms = compute_ms
            e.cycles = e.time_ms * 1e-3 * ctx.clock_hz
            e.ddr_load_bytes, e.ddr_store_bytes, e.ddr_bytes = load, store, load + store
            # on chip at once: the weights and the feature maps kept on chip (DDR ones stream through)
            kept = sum(b for t, b in zip(layer.inputs, layer.in_bytes) if onchip(t))
            e.buffer_bytes = e.weight_bytes + kept + (layer.out_bytes if onchip(layer.output) else 0)
            e.spill = bool(ctx.sram) and e.buffer_bytes > ctx.sram
            layer.peak_macs_per_s = ctx.peak
        elif e.unit == "host":
            if not ctx.host:
                host_missing = True
                e.unit = "unestimated"
                e.cycles = e.compute_ms = e.memory_ms = e.time_ms = None
                e.ddr_load_bytes = e.ddr_store_bytes = e.ddr_bytes = None
                e.note += "; not estimated: the target states no host_cores / host_clock_mhz / " \
                          "host_fp32_macs_per_cycle_per_core for its CPU"
                continue
            out_el = graph.tensors[layer.node.outputs[0]].size
            work = e.macs if e.macs else out_el * _element_ops(layer)
            compute_ms = work / ctx.host_rate * 1e3
            load = e.weight_bytes + sum(layer.in_bytes)
            store = layer.out_bytes
            e.time_ms, e.memory_ms, e.bound = _time(compute_ms, load + store, ctx.host_bw, 0.0)
            e.compute_ms = compute_ms
            e.cycles = e.time_ms * 1e-3 * ctx.p["host_clock_mhz"] * 1e6
            e.ddr_load_bytes, e.ddr_store_bytes, e.ddr_bytes = load, store, load + store
            e.buffer_bytes = e.weight_bytes + sum(layer.in_bytes) + layer.out_bytes
            layer.peak_macs_per_s = ctx.host_rate
        _rates(e, layer)
    if host_missing:
        notes.append("CPU-fallback layers are unestimated: the target states no host_* cost parameters")


def _element_ops(layer) -> int:
    from hwsim.cost.estimate import ELEMENT_OPS

    if layer.kind in ("MaxPool", "AvgPool"):
        kh, kw = layer.node.attrs["kernel"]
        return kh * kw
    return ELEMENT_OPS.get(layer.kind, 1)


def _rates(e, layer) -> None:
    if e.time_ms:
        e.ops_per_s = 2 * e.macs / (e.time_ms * 1e-3)
        peak = layer.peak_macs_per_s
        e.utilisation = (e.macs / (e.time_ms * 1e-3) / peak) if peak else None


def device_ms(layers, ctx: DpuContext, bw: float) -> tuple[float, int]:
    """DPU time of one inference at per-core bandwidth ``bw`` (bytes/s), and the subgraph count."""
    total, sgs = 0.0, set()
    for layer in layers:
        e = layer.entry
        if e.unit != "dpu":
            continue
        t, _, _ = _time(e.compute_ms, e.ddr_bytes, bw, ctx.layer_ovh_ms)
        total += t
        sgs.add(e.subgraph)
    return total + len(sgs) * ctx.subgraph_ovh_ms, len(sgs)


def totals(layers, timed, ctx: DpuContext, threads: int) -> dict:
    """Model totals, throughput with ``threads`` inference threads on ``cores`` DPU cores sharing DDR."""
    dev, n_sg = device_ms(layers, ctx, ctx.bw)
    host_ms = sum(la.entry.time_ms for la in timed if la.entry.unit == "host")
    dpu_layers = [la.entry for la in timed if la.entry.unit == "dpu"]
    load = sum(e.ddr_load_bytes for e in dpu_layers)
    store = sum(e.ddr_store_bytes for e in dpu_layers)
    host_ddr = sum(la.entry.ddr_bytes for la in timed if la.entry.unit == "host")
    e2e = dev + host_ms + ctx.inference_ovh_ms
    active = min(threads, ctx.cores)
    bw = ctx.bw
    board = ctx.p.get("board_dram_gbps")
    if board:
        bw = min(bw, board * 1e9 / active)
    dev_n, _ = device_ms(layers, ctx, bw)
    e2e_n = dev_n + host_ms + ctx.inference_ovh_ms
    fps = min(threads * 1e3 / e2e_n, active * 1e3 / dev_n if dev_n else math.inf)
    host_busy = host_ms + ctx.inference_ovh_ms
    if ctx.p.get("host_cores") and host_busy > 0:
        fps = min(fps, ctx.p["host_cores"] * 1e3 / host_busy)
    return {
        "cycles": dev * 1e-3 * ctx.clock_hz,
        "device_latency_ms": dev,
        "host_ms": host_ms,
        "overhead_ms": ctx.inference_ovh_ms + n_sg * ctx.subgraph_ovh_ms,
        "e2e_latency_ms": e2e,
        "throughput_fps": fps,
        "cores_used": active,
        "subgraphs": n_sg,
        "ddr_bytes": load + store,
        "ddr_load_bytes": load,
        "ddr_store_bytes": store,
        "host_ddr_bytes": host_ddr,
        "ddr_gbps": (load + store) / (dev * 1e-3) / 1e9 if dev else None,
        "clock_mhz": ctx.clock_hz / 1e6,
        "_peak_macs_per_s": ctx.peak,
    }
