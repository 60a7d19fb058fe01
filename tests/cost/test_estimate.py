"""hwsim.cost.estimate: the report contract, fusion and folding, memory, DPU subgraphs, threads, bad input."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.cost import CostParamsError, CostReport, estimate
from hwsim.cost.report import LAYER_FIELDS
from hwsim.errors import HwsimError, TargetError
from hwsim.graph import GraphBuilder
from hwsim.quant.bn_fold import fold_batchnorm
from hwsim.targets import load_target

TOTAL_KEYS = ("macs", "cycles", "device_latency_ms", "e2e_latency_ms", "ddr_bytes", "weight_bytes",
              "peak_activation_bytes", "throughput_fps", "unestimated")


def _with_cost(target, **kw):
    return dataclasses.replace(target, cost=dataclasses.replace(target.cost, **kw))


def _small(c_in=16, c_out=32, size=16, softmax=False, bn=False, seed=0):
    rng = np.random.default_rng(seed)
    b = GraphBuilder("small")
    x = b.input("x", [1, size, size, c_in])
    y = b.conv2d(x, rng.standard_normal((c_out, 3, 3, c_in)).astype(np.float32), np.zeros(c_out, np.float32),
                 pads=(1, 1, 1, 1), name="conv")
    if bn:
        ones, zeros = np.ones(c_out, np.float32), np.zeros(c_out, np.float32)
        y = b.batch_norm(y, ones, zeros, zeros, ones, name="bn")
    y = b.relu(y, name="relu")
    y = b.depthwise_conv2d(y, rng.standard_normal((c_out, 3, 3, 1)).astype(np.float32), pads=(1, 1, 1, 1),
                           name="dw")
    y = b.add(y, y, name="add")
    y = b.global_avg_pool(y, name="gap")
    y = b.flatten(y, name="flat")
    if softmax:
        y = b.softmax(y, name="softmax")
    y = b.dense(y, rng.standard_normal((10, c_out)).astype(np.float32), np.zeros(10, np.float32), name="fc")
    b.output(y)
    return b.build()


@pytest.mark.parametrize("target", ["fpga_dpu_zcu104", "intel_int8_i7_1185g7", "arm_tflite_pixel3"])
def test_report_contract(target, model):
    g = model("resnet50")
    r = estimate(g, load_target(target))
    assert isinstance(r, CostReport) and len(r.layers) == len(g.nodes)
    doc = json.loads(json.dumps(r.to_dict()))  # plain JSON
    assert doc["format"] == "hwsim-cost" and doc["version"] == 1 and doc["complete"] is True
    assert all(k in doc["totals"] for k in TOTAL_KEYS)
    assert all(tuple(layer) == LAYER_FIELDS for layer in doc["layers"])
    t = r.totals
    assert t["macs"] == g.macs() and t["e2e_latency_ms"] >= t["device_latency_ms"] > 0
    timed = [e for e in r.layers if e.unit in ("dpu", "cpu", "host")]
    assert math.isclose(sum(e.macs for e in timed), t["macs"])
    assert all(e.time_ms > 0 and e.bound in ("compute", "memory", "overhead") for e in timed)
    assert sum(e.ddr_bytes for e in timed) == t["ddr_bytes"] + t["host_ddr_bytes"]


def test_batchnorm_folding_matches_fold_batchnorm(model):
    from hwsim.zoo import resnet50

    g = resnet50.build(0).b.build()
    folded, report = fold_batchnorm(g)
    r = estimate(g, load_target("fpga_dpu"))
    fused_bn = {(e.fused_into, e.name) for e in r.layers if e.op == "BatchNorm" and e.unit == "fused"}
    assert fused_bn == set(report.folded)
    # estimating the folded graph gives the same totals
    r2 = estimate(folded, load_target("fpga_dpu"))
    for k in ("device_latency_ms", "ddr_bytes", "weight_bytes", "peak_activation_bytes"):
        assert r.totals[k] == pytest.approx(r2.totals[k], rel=1e-9), k


def test_a_batchnorm_that_stays_is_an_elementwise_layer():
    b = GraphBuilder("bn")
    x = b.input("x", [1, 8, 8, 4])
    ones, zeros = np.ones(4, np.float32), np.zeros(4, np.float32)
    b.output(b.batch_norm(x, ones, zeros, zeros, ones, name="bn"))
    r = estimate(b.build(), load_target("intel_int8_i7_1185g7"))
    assert r.layer("bn").unit == "cpu" and r.layer("bn").time_ms > 0


def test_fusion_and_views():
    r = estimate(_small(bn=True), load_target("fpga_dpu"))
    assert r.layer("bn").unit == "fused" and r.layer("bn").fused_into == "conv"
    assert r.layer("relu").unit == "fused" and r.layer("relu").fused_into == "conv"
    assert r.layer("flat").unit == "free" and r.layer("flat").time_ms == 0
    assert r.layer("dw").op == "DepthwiseConv2D" and r.layer("dw").unit == "dpu"


def test_cpu_fallback_splits_dpu_subgraphs_and_costs_the_host():
    r = estimate(_small(softmax=True), load_target("fpga_dpu"))
    sm = r.layer("softmax")
    assert sm.unit == "host" and sm.time_ms > 0 and "fallback" in sm.note
    assert r.layer("gap").subgraph == 0 and r.layer("fc").subgraph == 1 and r.totals["subgraphs"] == 2
    plain = estimate(_small(), load_target("fpga_dpu"))
    assert plain.totals["subgraphs"] == 1
    c = load_target("fpga_dpu").cost
    extra = r.totals["e2e_latency_ms"] - plain.totals["e2e_latency_ms"]
    assert extra >= c.per_subgraph_overhead_ms + sm.time_ms - 1e-9
    # the tensor crossing to the CPU goes through DDR
    assert r.layer("gap").ddr_store_bytes > 0 and plain.layer("gap").ddr_store_bytes == 0


def test_per_layer_subgraphs_send_every_feature_map_through_ddr(model):
    g = model("resnet50")
    normal = estimate(g, load_target("fpga_dpu"))
    debug = estimate(g, load_target("fpga_dpu"), per_layer_subgraphs=True)
    # 56x56x64 in and out, 3x3x64x64 weights and a folded bias (perf-anchors 1.2 MemIO: 0.438 MB)
    layer = debug.layer("res2a_branch2b")
    assert layer.ddr_bytes == 2 * 56 * 56 * 64 + 64 * 9 * 64 + 64
    assert debug.totals["subgraphs"] == sum(e.unit == "dpu" for e in debug.layers)
    assert debug.totals["ddr_bytes"] > normal.totals["ddr_bytes"]
    with pytest.raises(HwsimError, match="DPU targets only"):
        estimate(g, load_target("intel_int8_i7_1185g7"), per_layer_subgraphs=True)


@pytest.mark.parametrize("name, w_bits", [("fpga_dpu_w4a8", 4), ("fpga_dpu_w2a8", 2)])
def test_low_bit_weights_pack_and_cut_weight_traffic(name, w_bits, model):
    g = model("resnet50")
    base, low = estimate(g, load_target("fpga_dpu")), estimate(g, load_target(name))
    sizes = [int(g.params[n.inputs[1]].size) for n in g.nodes if n.op in ("Conv2D", "Dense")]
    saved = sum(n - math.ceil(n * w_bits / 8) for n in sizes)  # each weight tensor packed on its own
    assert base.totals["weight_bytes"] - low.totals["weight_bytes"] == saved
    assert low.totals["ddr_bytes"] < base.totals["ddr_bytes"]
    assert low.totals["device_latency_ms"] <= base.totals["device_latency_ms"]
    # where the target says so, MACs per cycle scale too
    key = "w4_mac_speedup" if w_bits == 4 else "w2_mac_speedup"
    fast = estimate(g, _with_cost(load_target(name), **{key: 2.0}))
    conv = "res3b_branch2b"
    assert fast.layer(conv).compute_ms == pytest.approx(low.layer(conv).compute_ms / 2)


def test_weight_bytes_use_the_real_bit_widths():
    g = _small()
    r = estimate(g, load_target("fpga_dpu"))  # 8-bit weights and 8-bit bias (numerics.md C.2)
    assert r.layer("conv").weight_bytes == 32 * 9 * 16 + 32
    r = estimate(g, load_target("intel_int8_i7_1185g7"))  # int32 bias
    assert r.layer("conv").weight_bytes == 32 * 9 * 16 + 4 * 32
    w4 = estimate(g, load_target("fpga_dpu_w4a4"))
    assert w4.layer("conv").weight_bytes == 32 * 9 * 16 // 2 + 32
    assert w4.layer("conv").activation_bytes == (16 * 16 * 16 + 16 * 16 * 32) // 2


def _peak_reference(g, bytes_per_el=1):
    """Plain liveness over the graph's nodes with ReLU in place and views aliased (the estimate's rule)."""
    alias = {}
    for n in g.nodes:
        if n.op in ("ReLU", "Flatten", "Reshape"):
            alias[n.outputs[0]] = alias.get(n.inputs[0], n.inputs[0])
    base = lambda t: alias.get(t, t)  # noqa: E731
    steps = [n for n in g.nodes if n.op not in ("ReLU", "Flatten", "Reshape")]
    last = {}
    for i, n in enumerate(steps):
        for t in n.inputs:
            if t not in g.params:
                last[base(t)] = i
    for t in g.outputs:
        last[base(t)] = len(steps)
    born = {t.name: 0 for t in g.inputs} | {n.outputs[0]: i for i, n in enumerate(steps)}
    out_of = {n.outputs[0]: n for n in steps}
    peak = 0
    for i in range(len(steps) + 1):
        live = 0
        for t, b in born.items():
            if b <= i <= last.get(t, b):
                live += g.tensors[t].size * bytes_per_el
        peak = max(peak, live)
    return peak


def test_peak_activation_memory_from_liveness():
    g = _small()
    r = estimate(g, load_target("fpga_dpu"))
    # by hand: while 'add' runs, dw's output (16x16x32) and add's output are live; the input is dead
    assert r.totals["peak_activation_bytes"] == _peak_reference(g) == 2 * 16 * 16 * 32


def test_threads_raise_throughput_with_shared_ddr(model):
    g = model("resnet50")
    t = load_target("fpga_dpu_zcu102")  # 3 cores
    fps = [estimate(g, t, threads=n).totals["throughput_fps"] for n in (1, 2, 3, 4)]
    assert fps[0] < fps[1] < fps[2] <= fps[3]
    # a fourth thread only hides CPU-side work: never more than three DPU cores' worth
    dev3 = estimate(g, t, threads=3)
    assert fps[3] <= 3 * 1e3 / (dev3.totals["device_latency_ms"]) * 1.0001
    single = estimate(g, _with_cost(t, board_dram_gbps=None), threads=1).totals["throughput_fps"]
    assert fps[2] < 3 * single * 1.0001
    starved = estimate(g, _with_cost(t, board_dram_gbps=6.5), threads=3).totals["throughput_fps"]
    assert starved < fps[2]  # three cores on one core's bandwidth
    cpu = load_target("intel_int8_i3_8100".replace("i3", "avx2_i3"))
    lat = estimate(model("resnet50_v15"), cpu)
    thr = estimate(model("resnet50_v15"), cpu, threads=4)
    assert thr.totals["throughput_fps"] > lat.totals["throughput_fps"]
    assert thr.totals["e2e_latency_ms"] == lat.totals["e2e_latency_ms"]  # latency is one inference


def test_estimating_resnet50_takes_well_under_a_second(model):
    import time

    g, t = model("resnet50"), load_target("fpga_dpu_zcu104")
    estimate(g, t)
    start = time.perf_counter()
    estimate(g, t)
    assert time.perf_counter() - start < 0.5


# ---- bad input -------------------------------------------------------------------------------------------

def test_target_without_cost_parameters_is_a_clear_error():
    with pytest.raises(CostParamsError, match=r"target 'arm_tflite' .*has no cost: section"):
        estimate(_small(), load_target("arm_tflite"))
    assert issubclass(CostParamsError, TargetError)


@pytest.mark.parametrize("target, key", [("fpga_dpu", "pixel_parallel"), ("intel_int8_i7_1185g7", "cores")])
def test_missing_required_keys_are_named(target, key):
    t = _with_cost(load_target(target), **{key: None})
    with pytest.raises(CostParamsError, match=rf"lacks {key}"):
        estimate(_small(), t)


def test_unknown_op_is_listed_as_unestimated_never_zero():
    g = _small()
    g.node("gap").op = "FancyPool"  # an op kind the cost model has no function for
    r = estimate(g, load_target("fpga_dpu"))
    e = r.layer("gap")
    assert e.unit == "unestimated" and e.time_ms is None and e.cycles is None and e.ddr_bytes is None
    assert r.totals["unestimated"] == ["gap"] and not r.complete
    assert r.to_dict()["layers"][[x.name for x in r.layers].index("gap")]["time_ms"] is None
    assert any("not estimated" in n for n in r.notes)


def test_missing_host_parameters_leave_cpu_layers_unestimated():
    t = _with_cost(load_target("fpga_dpu"), host_cores=None)
    r = estimate(_small(softmax=True), t)
    assert r.layer("softmax").unit == "unestimated" and r.totals["unestimated"] == ["softmax"]


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_threads_must_be_positive(threads):
    with pytest.raises(HwsimError, match="threads"):
        estimate(_small(), load_target("fpga_dpu"), threads=threads)


# ---- properties ------------------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(c_in=st.integers(1, 40), c_out=st.integers(1, 40), size=st.integers(1, 12),
       target=st.sampled_from(["fpga_dpu", "fpga_dpu_b1152", "intel_int8_i7_1185g7", "arm_tflite_pixel4"]),
       factor=st.floats(1.1, 4.0))
def test_faster_hardware_never_takes_longer(c_in, c_out, size, target, factor):
    g = _small(c_in, c_out, size)
    t = load_target(target)
    r = estimate(g, t)
    assert all(e.time_ms >= 0 for e in r.layers) and r.totals["device_latency_ms"] > 0
    assert r.totals["ddr_bytes"] >= 0 and r.totals["peak_activation_bytes"] > 0
    faster = estimate(g, _with_cost(t, clock_mhz=t.cost.clock_mhz * factor,
                                    dram_gbps=(t.cost.dram_gbps or 0) * factor or None))
    assert faster.totals["device_latency_ms"] <= r.totals["device_latency_ms"] * (1 + 1e-12)
    for e in r.layers:
        if e.unit in ("dpu", "cpu"):
            assert e.utilisation is None or 0 <= e.utilisation <= 1 + 1e-9
