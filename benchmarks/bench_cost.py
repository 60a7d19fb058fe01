"""Speed of hwsim's cost model: time to estimate whole networks (issue 6: ResNet-50 well under a second).

Builds each network once (shapes only, hwsim/cost/models.py), then times ``hwsim.cost.estimate`` alone
(median and min over ``--repeats`` runs, after one warm-up). The structural BatchNorm fold is included:
the zoo graphs carry their BatchNorms.

Usage:  python benchmarks/bench_cost.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from hwsim.cost import estimate
from hwsim.cost.models import build
from hwsim.targets import load_target

CASES = [("resnet50", "fpga_dpu_zcu104"), ("resnet50", "intel_int8_i7_1185g7"),
         ("mobilenetv2", "fpga_dpu_zcu104"), ("mobilenetv2", "arm_tflite_pixel3"),
         ("resnet50_v15", "intel_int8_xeon_8380")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    cpu = platform.processor() or platform.machine()
    print(f"# hwsim cost-model speed, {cpu}, python {platform.python_version()}")
    print("| model | target | nodes | median ms | min ms |")
    print("|---|---|---|---|---|")
    graphs = {}
    for model, target_name in CASES:
        g = graphs.setdefault(model, build(model))
        target = load_target(target_name)
        estimate(g, target)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            estimate(g, target)
            times.append((time.perf_counter() - t0) * 1e3)
        med, best = statistics.median(times), min(times)
        print(f"| {model} | {target_name} | {len(g.nodes)} | {med:.1f} | {best:.1f} |")


if __name__ == "__main__":
    main()
