"""The example SystemVerilog testbench (examples/rtl) on exported vectors, run with Icarus Verilog.

CI installs iverilog (Debian package ``iverilog``); a missing simulator fails this test.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess

import pytest
from golden_helpers import LENET, ROOT

from hwsim.compare.vectors import export_vectors
from hwsim.emulate.simulator import quantize_for_target
from hwsim.graph import load_model
from hwsim.targets import load_target

spec = importlib.util.spec_from_file_location("run_tb", ROOT / "examples" / "rtl" / "run_tb.py")
run_tb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_tb)


@pytest.fixture(scope="module", params=["fpga_dpu", "fpga_dpu_w4a4"])
def vectors(request, tmp_path_factory):
    assert shutil.which("iverilog") and shutil.which("vvp"), "Icarus Verilog (apt-get install iverilog) is needed"
    g = load_model(LENET)
    qm = quantize_for_target(g, load_target(request.param), g.data["calibration"]["x"][:16])
    out = tmp_path_factory.mktemp("vec") / request.param
    export_vectors(qm, g.data["evaluation"]["x"][1:2], out, layers=["fc2", "fc3"], fmt="hex", word_bits=32)
    return out


@pytest.mark.parametrize("layer", ["fc2", "fc3"])
def test_testbench_passes_on_hwsim_vectors(vectors, layer):
    r = run_tb.run(vectors, layer)
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr


def test_testbench_fails_on_a_wrong_expected_output(vectors, tmp_path):
    copy = tmp_path / "v"
    shutil.copytree(vectors, copy)
    y = next(copy.glob("*_fc3")) / "y.hex"
    words = y.read_text().splitlines()
    words[0] = f"{int(words[0], 16) ^ 0x00000100:08x}"  # bit 8: lowest bit of element 8 / bits
    y.write_text("\n".join(words) + "\n")
    bits = json.loads((copy / "manifest.json").read_text())["layers"][-1]["files"]["y"]["bits"]
    r = run_tb.run(copy, "fc3")
    assert r.returncode != 0
    assert f"FAIL: first mismatch at output {8 // bits}" in r.stdout


def test_iverilog_is_the_debian_one():
    out = subprocess.run(["iverilog", "-V"], check=True, capture_output=True, text=True).stdout
    assert "Icarus Verilog" in out
