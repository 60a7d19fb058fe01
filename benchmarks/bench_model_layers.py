"""Per-layer times inside a whole network: hwsim's simulation against onnxruntime's own profile.

Single-node models (bench_layers.py) mislead for small layers: onnxruntime's per-call overhead (session
run, output copies) is then part of its figure, and in a network each layer finds its input where the
previous one left it (which core's cache) and its code cold after the big layers. This script times both
engines inside the same QDQ network that bench_models.py builds, on the same input:

- onnxruntime: ORT_ENABLE_ALL, the given threads, its built-in profiler (``enable_profiling``); per node
  the median of its ``*_kernel_time`` events (the profiler's own cost is included);
- hwsim: ``simulate`` on a caller-owned pool, each plan's runner timed with ``perf_counter``.

Both medians skip the first runs. Nodes are matched by name (onnxruntime's fused nodes keep the name
of the node they replace). Prints one row per node and totals per op kind.

Usage::

    python benchmarks/bench_model_layers.py [--model mobilenetv2] [--threads 2] [--runs 60] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import bench_models  # noqa: E402  (the benchmark's model builder)


def ort_node_times(path: Path, threads: int, runs: int, warm: int, x: np.ndarray, workdir: Path) -> dict[str, float]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_profiling = True
    so.profile_file_prefix = str(workdir / "ort_profile")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    for _ in range(runs):
        sess.run(None, {name: x})
    events = json.loads(Path(sess.end_profiling()).read_text())
    per_node: dict[str, list[float]] = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            node = e["name"][: -len("_kernel_time")].split("_token_")[0]
            per_node[node].append(float(e["dur"]))
    return {n: statistics.median(v[warm:] or v) for n, v in per_node.items()}


def hwsim_node_times(qm, x: np.ndarray, threads: int, runs: int, warm: int) -> tuple[dict[str, float], dict[str, str]]:
    from hwsim import _core
    from hwsim.emulate import simulator as sim

    pool = _core.Workers(threads) if threads != 1 else 1
    runners = sim._bound_runners(qm)
    times: dict[str, list[float]] = collections.defaultdict(list)

    def timed(plan, run):
        def call(ints, t, p):
            t0 = time.perf_counter()
            y = run(ints, t, p)
            times[plan.node.name].append(1e6 * (time.perf_counter() - t0))
            return y
        return call

    qm._runners = [None if r is None else timed(p, r) for p, r in zip(qm.plans, runners)]
    try:
        for _ in range(runs):
            sim.simulate(qm, x, keep_intermediates=False, threads=pool)
    finally:
        qm._runners = runners
    kinds = {p.node.name: p.op_kind for p in qm.plans}
    return {n: statistics.median(v[warm:] or v) for n, v in times.items()}, kinds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mobilenetv2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--workdir", default=None, help="cache folder for the ONNX files (default: a temp dir)")
    args = ap.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="hwsim-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    path = bench_models.build_qdq(args.model, workdir)
    graph, qm = bench_models.hwsim_model(path)
    # the input as bench_models.py makes it: in onnxruntime's layout, then hwsim's (NHWC)
    x_ort = np.random.default_rng(1).normal(0, 1, bench_models.ort_session(path, 1).get_inputs()[0].shape)
    x_ort = x_ort.astype(np.float32)
    x_nhwc = x_ort if x_ort.shape == tuple(graph.inputs[0].shape) else np.ascontiguousarray(x_ort.transpose(0, 2, 3, 1))
    warm = min(10, args.runs // 4)
    ort_t = ort_node_times(path, args.threads, args.runs, warm, x_ort, workdir)
    sim_t, kinds = hwsim_node_times(qm, x_nhwc, args.threads, args.runs, warm)
    print(f"{args.model}: {args.threads} threads, median of {args.runs - warm} runs per node (microseconds)")
    print(f"{'node':<36} {'op':<18} {'hwsim':>8} {'onnxruntime':>12} {'ratio':>7}")
    totals: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0])
    for node, t in sim_t.items():
        o = ort_t.get(node, float("nan"))
        print(f"{node:<36} {kinds[node]:<18} {t:8.1f} {o:12.1f} {t / o if o == o and o > 0 else float('nan'):7.2f}")
        tot = totals[kinds[node]]
        tot[0] += t
        tot[1] += o if o == o else 0.0
        tot[2] += 1
    print(f"\n{'op kind':<22} {'nodes':>5} {'hwsim':>9} {'onnxruntime':>12} {'ratio':>7}")
    for kind, (t, o, n) in sorted(totals.items(), key=lambda kv: -kv[1][0]):
        print(f"{kind:<22} {n:5d} {t:9.0f} {o:12.0f} {t / o if o else float('nan'):7.2f}")
    s, o = sum(v[0] for v in totals.values()), sum(v[1] for v in totals.values())
    print(f"{'all':<22} {sum(v[2] for v in totals.values()):5d} {s:9.0f} {o:12.0f} {s / o if o else float('nan'):7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
