"""Run tb_dense_pow2.sv on one Dense layer's vectors with Icarus Verilog (iverilog + vvp).

    hwsim export-vectors --target fpga_dpu --layers fc3 --format hex --word-bits 32 examples/lenet5.npz -o VEC
    python examples/rtl/run_tb.py VEC fc3

Reads VEC/manifest.json for the layer's sizes, bit widths and shifts, compiles the testbench with them and
prints the simulator's verdict; exit status 0 only when every output matched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def iverilog_command(vec: Path, layer: str, out: Path) -> list[str]:
    doc = json.loads((vec / "manifest.json").read_text())
    entry = next((e for e in doc["layers"] if e["name"] == layer), None)
    if entry is None:
        raise SystemExit(f"{vec}: no layer {layer!r}")
    p, f = entry["params"], entry["files"]
    if entry["op_kind"] != "Dense" or p.get("scheme") != "pow2_shift":
        raise SystemExit(f"layer {layer}: the example testbench takes a Dense layer with pow2_shift requantization")
    if any(f[r]["format"] != "hex" or f[r]["word_bits"] != 32 for r in "xwby") or f["x"]["shape"][0] != 1:
        raise SystemExit("export with --format hex --word-bits 32 --limit 1")
    folder = (vec / f["x"]["file"]).parent
    prm = {"IN": f["x"]["shape"][-1], "OUT": f["y"]["shape"][-1], "XB": f["x"]["bits"], "WB": f["w"]["bits"],
           "BB": f["b"]["bits"], "YB": f["y"]["bits"], "SHIFT_CUT": p["shift_cut"], "SHIFT_BIAS": p["shift_bias"],
           "ACT_MIN": p["act_min"], "ACT_MAX": p["act_max"]}
    cmd = ["iverilog", "-g2012", "-o", str(out)]
    cmd += [f"-Ptb_dense_pow2.{k}={v}" for k, v in prm.items()]
    cmd += [f'-Ptb_dense_pow2.DIR="{folder}"', str(HERE / "tb_dense_pow2.sv"), str(HERE / "dense_pow2.sv")]
    return cmd


def run(vec: str | Path, layer: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as tmp:
        sim = Path(tmp) / "tb.vvp"
        subprocess.run(iverilog_command(Path(vec), layer, sim), check=True)
        return subprocess.run(["vvp", "-n", str(sim)], check=False, capture_output=True, text=True)


if __name__ == "__main__":
    result = run(sys.argv[1], sys.argv[2])
    print(result.stdout, end="")
    sys.exit(0 if result.returncode == 0 and "PASS" in result.stdout else 1)
