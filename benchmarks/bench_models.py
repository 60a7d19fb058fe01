"""Bit-exact whole-network simulation speed against onnxruntime running the same quantized model.

For each network: the zoo's float model is exported to ONNX, quantized by onnxruntime's own
``quantize_static`` (QDQ, uint8 activations, int8 per-channel weights, the default u8s8 format), and then

- onnxruntime runs it (ORT_ENABLE_ALL, the given threads): the peer;
- hwsim imports the same QDQ file and simulates it bit-exactly on ``intel_int8`` (pre-quantized, no
  calibration; intermediates freed as soon as they are dead), as onnxruntime loads it (QLinearConv,
  QLinearAdd, QLinearGlobalAveragePool, merged Q/DQ pairs). The script checks that both give the same
  output and exits with status 1 if they do not.

Each engine runs in its own fresh process (one per repeat, the two engines alternating): one untimed
inference, then ``BLOCK`` timed ones back to back; batch 1, median of all timed runs. Peak memory is the
largest peak RSS (``VmHWM``) of those processes, which import their runtime, load the model and run, so the
two engines do not share a high-water mark. The bit-exactness check runs both engines in this process.

Usage::

    python benchmarks/bench_models.py [--models resnet50,mobilenetv2] [--threads 2] [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


BLOCK = 10  # timed runs per engine process, after one untimed run (see main)


def build_qdq(name: str, workdir: Path) -> Path:
    """The zoo model ``name`` as a QDQ ONNX file quantized by onnxruntime (cached in ``workdir``)."""
    out = workdir / f"{name}_qdq.onnx"
    if out.exists():
        return out
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from hwsim.frontends.onnx_export import export_onnx
    from hwsim.quant.bn_fold import fold_batchnorm
    from hwsim.zoo import build_model

    # BatchNorm folded first, as a deployment flow does before quantizing (onnxruntime would otherwise
    # quantize the BatchNorm parameters themselves)
    graph, _ = fold_batchnorm(build_model(name))
    float_path = workdir / f"{name}.onnx"
    export_onnx(graph, str(float_path))
    shape = tuple(graph.inputs[0].shape)
    rng = np.random.default_rng(0)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = 4

        def get_next(self):
            if self.left == 0:
                return None
            self.left -= 1
            return {graph.inputs[0].name: rng.normal(0, 1, shape).astype(np.float32)}

    quantize_static(str(float_path), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def ort_session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def hwsim_model(path: Path):
    from hwsim.emulate.simulator import quantize_for_target
    from hwsim.frontends.onnx_import import import_onnx
    from hwsim.targets import load_target

    graph = import_onnx(path)
    return graph, quantize_for_target(graph, load_target("intel_int8"))


def time_runs(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def vm_hwm_mib() -> float:
    """This process's peak resident set (VmHWM): unlike ru_maxrss it is not inherited across exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


def engine_child(engine: str, path: Path, threads: int, runs: int) -> tuple[list[float], float]:
    """Times of ``runs`` back-to-back inferences (after one untimed run) and the peak RSS (MiB) of a fresh
    process that runs only ``engine`` ("ort" or "hwsim"): no other engine's threads share the CPUs."""
    code = f"""
import json, sys, numpy as np
sys.path.insert(0, {str(Path(__file__).parent)!r})
import bench_models as b
from pathlib import Path
p = Path({str(path)!r})
if {engine!r} == "ort":
    s = b.ort_session(p, {threads})
    name = s.get_inputs()[0].name
    x = np.random.default_rng(1).normal(0, 1, s.get_inputs()[0].shape).astype(np.float32)
    times = b.time_runs(lambda: s.run(None, {{name: x}}), {runs})
else:
    from hwsim import _core
    from hwsim.emulate.simulator import simulate
    g, qm = b.hwsim_model(p)
    x = np.random.default_rng(1).normal(0, 1, g.inputs[0].shape).astype(np.float32)
    # the worker pool lives as long as the model, like onnxruntime's thread pool lives with its session
    pool = _core.Workers({threads}) if {threads} != 1 else 1
    times = b.time_runs(lambda: simulate(qm, x, keep_intermediates=False, threads=pool), {runs})
print(json.dumps([times, b.vm_hwm_mib()]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    times, peak = json.loads(out.stdout.strip().splitlines()[-1])
    return times, float(peak)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet50,mobilenetv2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--workdir", default=None, help="cache folder for the ONNX files (default: a temp dir)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from hwsim.emulate.simulator import simulate

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="hwsim-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.models.split(","):
        path = build_qdq(name, workdir)
        sess = ort_session(path, args.threads)
        in_name = sess.get_inputs()[0].name
        x_nchw = np.random.default_rng(1).normal(0, 1, sess.get_inputs()[0].shape).astype(np.float32)
        graph, qm = hwsim_model(path)
        x_nhwc = x_nchw if x_nchw.shape == tuple(graph.inputs[0].shape) else x_nchw.transpose(0, 2, 3, 1)
        ort_t, sim_t, ort_peak, sim_peak = [], [], 0.0, 0.0
        for _ in range(args.repeats):  # alternate, so machine noise hits both alike
            # Each engine in its own fresh process, back-to-back inferences after one untimed run (the steady
            # state of an inference loop); in one process the other engine's spinning threads would steal the
            # 2 CPUs, and single runs after a pause measure how each engine wakes from idle on this VM.
            t, m = engine_child("ort", path, args.threads, BLOCK)
            ort_t, ort_peak = ort_t + t, max(ort_peak, m)
            t, m = engine_child("hwsim", path, args.threads, BLOCK)
            sim_t, sim_peak = sim_t + t, max(sim_peak, m)
        ort_ms, sim_ms = 1e3 * statistics.median(ort_t), 1e3 * statistics.median(sim_t)
        # The speed only counts if the integers are the engine's: both outputs are DequantizeLinear of the
        # last codes, so equal floats mean equal codes.
        want = sess.run(None, {in_name: x_nchw})[0]
        got = simulate(qm, x_nhwc, keep_intermediates=False, threads=args.threads).outputs[graph.outputs[0]]
        identical = bool(got.shape == want.shape and np.array_equal(got, want))
        rows.append({
            "model": name, "threads": args.threads, "onnxruntime_ms": ort_ms, "hwsim_ms": sim_ms,
            "ratio_hwsim_over_ort": sim_ms / ort_ms, "identical_output": identical,
            "onnxruntime_peak_mib": ort_peak, "hwsim_peak_mib": sim_peak,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"machine: {os.cpu_count()} CPUs; batch 1; median of {args.repeats} x {BLOCK} runs, one fresh process per engine and repeat; "
              f"{args.threads} threads")
        print(f"{'model':<12} {'onnxruntime ms':>15} {'hwsim ms':>10} {'hwsim/ORT':>10} {'ORT peak MiB':>13} "
              f"{'hwsim peak MiB':>15} {'identical output':>17}")
        for r in rows:
            print(f"{r['model']:<12} {r['onnxruntime_ms']:>15.2f} {r['hwsim_ms']:>10.2f} "
                  f"{r['ratio_hwsim_over_ort']:>10.2f} {r['onnxruntime_peak_mib']:>13.1f} {r['hwsim_peak_mib']:>15.1f} "
                  f"{'yes' if r['identical_output'] else 'NO':>17}")
    # a simulation that is not bit-exact has no speed worth reporting
    return 0 if all(r["identical_output"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
