"""Integer GEMM / conv throughput of hwsim against established int8 engines, measured in one run.

Shapes: square 1024^3 and the ResNet-50 conv layers as GEMMs (M x K x N, from
/work/shared/research/peer-speeds.md), plus one convolution (ResNet-50 layer1 3x3, 56x56x64 -> 64).
hwsim runs with isa="auto" (AMX on Sapphire Rapids) and with isa="avx512_vnni" (the VPDPBUSD kernel the
goals refer to). Peers: onnxruntime MatMulInteger (u8 x s8 -> s32, in-memory model, B a constant initializer),
PyTorch fbgemm quantized linear (u8 x s8 -> u8, prepacked weights), numpy int32 matmul (measured once).
GOPS = 2 * M * N * K / median time [from the best time, in brackets]. The int8 peak is measured
(independent VPDPBUSD chains on the same threads) and also computed from an assumption (cores x 64
MACs/cycle x /proc/cpuinfo clock, the Zen 4 figure of peer-speeds.md); both are printed.

Usage:  python benchmarks/bench_gemm.py [--threads 2] [--repeats 30] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Callable

import numpy as np

from hwsim import _core

SHAPES = [  # (M, K, N, label)
    (1024, 1024, 1024, "square 1024^3"),
    (3136, 576, 64, "resnet50 layer1 conv2 3x3"),
    (784, 1152, 128, "resnet50 layer2 conv2 3x3"),
    (49, 4608, 512, "resnet50 layer4 conv2 3x3"),
    (3136, 64, 256, "resnet50 layer1 conv3 1x1"),
]


def median_seconds(
    fns: dict[str, Callable[[], object]], repeats: int, rounds: int = 5
) -> dict[str, tuple[float, float]]:
    """Median wall time of each callable over `repeats` calls, taken in `rounds` rounds; within a round each
    engine runs its share back to back after one warm-up call. Engines alternate between rounds, so slow
    phases of a shared machine hit all of them, while no engine's idle worker threads (OpenMP, ORT) are
    left spinning in the middle of another engine's timed calls. Returns (median, min) per engine."""
    per_round = max(1, -(-repeats // rounds))
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            fn()
            for _ in range(per_round):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return {name: (statistics.median(v), min(v)) for name, v in times.items()}


def gops(m: int, k: int, n: int, seconds: float) -> float:
    return 2.0 * m * n * k / seconds / 1e9


def cpu_description() -> tuple[str, float | None]:
    model, mhz = platform.processor() or "unknown", None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("", "unknown", platform.processor()):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("cpu MHz") and mhz is None:
                    mhz = float(line.split(":", 1)[1])
    except OSError:
        pass
    return model, mhz


def ort_matmulinteger(a: np.ndarray, b_nk: np.ndarray, threads: int) -> Callable[[], object]:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    m, k = a.shape
    n = b_nk.shape[0]
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])],
        "mmi",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])],
        initializer=[numpy_helper.from_array(np.ascontiguousarray(b_nk.T), "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = min(model.ir_version, 10)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No busy-waiting between runs: spinning threads would steal the cores from the other engines.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    onnx.checker.check_model(model)
    feed = {"A": a}
    return lambda: sess.run(None, feed)


def fbgemm_linear(a: np.ndarray, b_nk: np.ndarray, threads: int) -> Callable[[], object]:
    import warnings

    import torch

    warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
    torch.backends.quantized.engine = "fbgemm"
    torch.set_num_threads(threads)
    x = torch._make_per_tensor_quantized_tensor(torch.from_numpy(a), 0.02, 0)
    w = torch._make_per_tensor_quantized_tensor(torch.from_numpy(b_nk), 0.01, 0)
    packed = torch.ops.quantized.linear_prepack(w, None)
    return lambda: torch.ops.quantized.linear(x, packed, 1.0, 0)


def fbgemm_conv(x_nhwc: np.ndarray, w_ohwi: np.ndarray, pad: int, threads: int) -> Callable[[], object]:
    import warnings

    import torch

    warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
    torch.backends.quantized.engine = "fbgemm"
    torch.set_num_threads(threads)
    o, kh, kw, c = w_ohwi.shape
    xq = torch._make_per_tensor_quantized_tensor(torch.from_numpy(x_nhwc), 0.02, 0).permute(0, 3, 1, 2)
    wq = torch._make_per_tensor_quantized_tensor(torch.from_numpy(w_ohwi), 0.01, 0).permute(0, 3, 1, 2)
    conv = torch.ao.nn.quantized.Conv2d(c, o, (kh, kw), padding=pad, bias=False)
    conv.set_weight_bias(wq.contiguous(memory_format=torch.channels_last), None)
    conv.scale, conv.zero_point = 1.0, 0
    xq = xq.contiguous(memory_format=torch.channels_last)
    return lambda: conv(xq)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no numpy")
    args = parser.parse_args()
    threads, repeats = args.threads, (5 if args.quick else args.repeats)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    rng = np.random.default_rng(0)
    feats = _core.cpu_features()
    model, mhz = cpu_description()
    cores = threads
    print(f"machine: {model}; {os.cpu_count()} logical CPUs; /proc/cpuinfo cpu MHz = {mhz}")
    print(f"load average before the run (other processes share these CPUs): {os.getloadavg()}")
    print(f"hwsim cpu_features: auto_isa = {feats['auto_isa']}, isas = {feats['gemm_isas']}; "
          f"threads = {threads}")
    peak_assumed = cores * 64 * (mhz or 0) * 1e6 * 2 / 1e9
    peak_measured = None
    if "avx512_vnni" in feats["gemm_isas"]:
        peak_measured = max(_core.measure_vpdpbusd_peak(threads, 10_000_000) for _ in range(7)) * 2 / 1e9
        print(f"int8 peak, measured (VPDPBUSD zmm chains on {threads} threads): {peak_measured:.0f} GOPS")
    print(f"int8 peak, assumed ({cores} cores x 64 MACs/cycle x {mhz} MHz): {peak_assumed:.0f} GOPS")
    print()

    vnni_isa = "avx512_vnni" if "avx512_vnni" in feats["gemm_isas"] else feats["auto_isa"]
    header = (
        f"| M x K x N | shape | hwsim {feats['auto_isa']} GOPS | hwsim {vnni_isa} GOPS (% VPDPBUSD peak) "
        "| ORT MatMulInteger GOPS (hwsim/ORT) | fbgemm linear GOPS (hwsim/fbgemm) "
        "| numpy int32 GOPS (hwsim/numpy) "
        "| hwsim 4-bit | hwsim 2-bit | hwsim avx2_pairs |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for m, k, n, label in SHAPES:
        a = rng.integers(0, 256, size=(m, k), dtype=np.uint8)
        b = rng.integers(-128, 128, size=(n, k), dtype=np.int8)
        packed = _core.pack_weights(b)
        a4, p4 = (a >> 4).astype(np.uint8), _core.pack_weights((b >> 4).astype(np.int8))  # u4 x s4 values
        a2, p2 = (a >> 6).astype(np.uint8), _core.pack_weights((b >> 6).astype(np.int8))  # u2 x s2 values
        t = median_seconds(
            {
                "hwsim": lambda: _core.gemm_s32(a, packed, threads=threads),
                "vnni": lambda: _core.gemm_s32(a, packed, threads=threads, isa=vnni_isa),
                "hwsim4": lambda: _core.gemm_s32(a4, p4, threads=threads),
                "hwsim2": lambda: _core.gemm_s32(a2, p2, threads=threads),
                "pairs": lambda: _core.gemm_s32(a, packed, mode="avx2_pairs", threads=threads),
                "ort": ort_matmulinteger(a, b, threads),
                "fbgemm": fbgemm_linear(a, b, threads),
            },
            repeats,
        )
        g = {name: gops(m, k, n, sec[0]) for name, sec in t.items()}
        best = {name: gops(m, k, n, sec[1]) for name, sec in t.items()}
        g_h, g_v, g_4, g_2, g_p, g_o, g_f = (
            g[x] for x in ("hwsim", "vnni", "hwsim4", "hwsim2", "pairs", "ort", "fbgemm")
        )
        if args.quick:
            numpy_cell = "skipped"
        else:
            a32, b32 = a.astype(np.int32), np.ascontiguousarray(b.T.astype(np.int32))
            t0 = time.perf_counter()
            a32 @ b32
            g_n = gops(m, k, n, time.perf_counter() - t0)
            numpy_cell = f"{g_n:.2f} ({g_h / g_n:.0f}x)"
        pct = f"{100 * g_v / peak_measured:.0f}%" if peak_measured else "n/a"
        print(
            f"| {m}x{k}x{n} | {label} | {g_h:.0f} [{best['hwsim']:.0f}] "
            f"| {g_v:.0f} [{best['vnni']:.0f}] ({pct}) | {g_o:.0f} [{best['ort']:.0f}] ({g_h / g_o:.2f}) "
            f"| {g_f:.0f} [{best['fbgemm']:.0f}] ({g_h / g_f:.2f}) "
            f"| {numpy_cell} | {g_4:.0f} | {g_2:.0f} | {g_p:.0f} |",
            flush=True,
        )

    # One convolution: ResNet-50 layer1 conv2, 3x3 pad 1, 56x56x64 -> 64 (GEMM 3136 x 576 x 64, im2col on
    # the fly).
    x = rng.integers(0, 256, size=(1, 56, 56, 64), dtype=np.uint8)
    w = rng.integers(-128, 128, size=(64, 3, 3, 64), dtype=np.int8)
    pw = _core.pack_conv_weights(w)
    t = median_seconds(
        {
            "hwsim": lambda: _core.conv2d_s32(x, pw, pads=(1, 1, 1, 1), threads=threads),
            "fbgemm": fbgemm_conv(x, w, 1, threads),
        },
        repeats,
    )
    t_c, t_fc = t["hwsim"][0], t["fbgemm"][0]
    m, k, n = 56 * 56, 576, 64
    print()
    print(
        f"conv 3x3 56x56x64->64 pad 1 (GEMM {m}x{k}x{n}): hwsim conv2d_s32 {gops(m, k, n, t_c):.0f} GOPS "
        f"({t_c * 1e3:.3f} ms); fbgemm quantized Conv2d {gops(m, k, n, t_fc):.0f} GOPS "
        f"({t_fc * 1e3:.3f} ms); "
        f"hwsim/fbgemm {t_fc / t_c:.2f}"
    )
    print(f"load average after the run: {os.getloadavg()}")


if __name__ == "__main__":
    main()
