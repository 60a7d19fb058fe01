"""C co-simulation through include/hwsim_kernel.h: the example kernels, compiled with ``cc -shared -fPIC``."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from golden_helpers import LENET, ROOT

from hwsim.cli import cli
from hwsim.cosim import ABI_VERSION, CosimError, _cffi, cosim_layer, load_kernel
from hwsim.emulate.simulator import quantize_for_target, simulate
from hwsim.graph import load_model
from hwsim.targets import load_target

INCLUDE = ROOT / "include"
EXAMPLES = ROOT / "examples" / "cosim"


def compile_library(src, out, *flags: str):
    cmd = ["cc", "-O1", "-shared", "-fPIC", "-Wall", "-Werror", f"-I{INCLUDE}", f"-I{EXAMPLES}", *flags,
           str(src), "-o", str(out), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


@pytest.fixture(scope="module")
def libs(tmp_path_factory):
    d = tmp_path_factory.mktemp("kernels")
    good = compile_library(EXAMPLES / "ref_layer.c", d / "libref_layer.so")
    wrong = compile_library(EXAMPLES / "ref_layer_wrong.c", d / "libref_layer_wrong.so")
    (d / "old_abi.c").write_text('#include "hwsim_kernel.h"\nint hwsim_kernel_abi_version(void) { return 99; }\n'
                                 "int hwsim_kernel_run(const hwsim_layer *l) { (void)l; return 0; }\n")
    (d / "no_run.c").write_text('#include "hwsim_kernel.h"\n'
                                "int hwsim_kernel_abi_version(void) { return HWSIM_KERNEL_ABI_VERSION; }\n")
    old = compile_library(d / "old_abi.c", d / "libold.so")
    no_run = compile_library(d / "no_run.c", d / "libnorun.so")
    return {"good": good, "wrong": wrong, "old": old, "no_run": no_run, "dir": d}


@pytest.fixture(scope="module")
def lenet():
    return load_model(LENET)


def _qm(lenet, target):
    return quantize_for_target(lenet, load_target(target), lenet.data["calibration"]["x"][:32])


@pytest.mark.parametrize("target", ["arm_tflite", "intel_int8", "fpga_dpu", "fpga_dpu_w4a4"])
@pytest.mark.parametrize("layer", ["conv1", "conv2", "fc1", "fc2", "fc3"])
def test_example_kernel_is_bit_exact(libs, lenet, target, layer):
    res = cosim_layer(load_kernel(libs["good"]), _qm(lenet, target), layer, lenet.data["evaluation"]["x"][:6])
    assert res.matches, res.describe()
    assert res.diff.elements > 0


def test_wrong_kernel_reports_the_first_differing_element(libs, lenet):
    qm = _qm(lenet, "arm_tflite")
    x = lenet.data["evaluation"]["x"][:8]
    res = cosim_layer(load_kernel(libs["wrong"]), qm, "conv1", x)
    assert not res.matches
    # The first difference, found here independently: single rounding of the same accumulator.
    from hwsim import _core

    ints = simulate(qm, x).integers
    plan = next(p for p in qm.plans if p.node.name == "conv1")
    c = plan.consts
    acc = _core.conv2d_s32(ints["image"], c["w_int"], x_zero_point=c["x_zero_point"], strides=(1, 1),
                           dilations=(1, 1), pads=tuple(plan.node.attrs["pads"]), groups=1, mode="exact")
    single = _core.requantize_fixed_point(acc, c["M"], c["shift"], qm.act[plan.output].zero_point, c["act_min"],
                                          c["act_max"], bias=c["bias"], rounding="single", out_dtype=np.int8)
    expected = ints[plan.output]
    diff = np.argwhere(single != expected)
    assert len(diff) == res.diff.differing > 0
    first = tuple(int(i) for i in diff[0])
    assert res.diff.first_index == first
    assert (res.diff.first_expected, res.diff.first_actual) == (int(expected[first]), int(single[first]))
    assert res.diff.max_abs_diff == 1
    assert f"first differing element at index {list(first)}" in res.describe()


def test_cli_cosim_exit_codes(libs):
    ok = CliRunner().invoke(cli, ["cosim", "--kernel", str(libs["good"]), "--layer", "conv2", "-t", "arm_tflite",
                                  str(LENET), "--limit", "4"])
    assert ok.exit_code == 0 and "bit-exact" in ok.output, ok.output
    bad = CliRunner().invoke(cli, ["cosim", "--kernel", str(libs["wrong"]), "--layer", "conv1", "-t", "arm_tflite",
                                   str(LENET), "--json"])
    assert bad.exit_code == 1
    doc = json.loads(bad.output)
    assert doc["matches"] is False and doc["diff"]["first_index"] is not None


@pytest.mark.parametrize("which, message", [
    ("old", f"ABI version 99, this hwsim speaks version {ABI_VERSION}"),
    ("no_run", "symbol 'hwsim_kernel_run' is missing"),
    ("not_elf", "not a loadable shared library"),
    ("missing", "no such file"),
])
def test_bad_kernel_library_is_exit_2(libs, which, message):
    path = libs.get(which)
    if which == "not_elf":
        path = libs["dir"] / "libtext.so"
        path.write_text("not a library")
    elif which == "missing":
        path = libs["dir"] / "libnothere.so"
    r = CliRunner().invoke(cli, ["cosim", "--kernel", str(path), "--layer", "conv1", "-t", "arm_tflite", str(LENET)])
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: --kernel") and message in r.output
    with pytest.raises(CosimError):
        load_kernel(path)


def test_layer_errors_are_exit_2(libs):
    for layer, message in (("pool1", "cannot be co-simulated"), ("nope", "no such layer"),
                           ("relu1", "fused into its producer")):
        r = CliRunner().invoke(cli, ["cosim", "--kernel", str(libs["good"]), "--layer", layer, "-t", "arm_tflite",
                                     str(LENET)])
        assert r.exit_code == 2 and message in r.output, r.output


def test_kernel_status_is_reported(libs, lenet):
    """The example does not model the AVX2 int16 pair saturation: it says so, and hwsim reports the code."""
    with pytest.raises(CosimError, match="HWSIM_E_UNSUPPORTED"):
        cosim_layer(load_kernel(libs["good"]), _qm(lenet, "intel_int8_avx2"), "conv1",
                    lenet.data["evaluation"]["x"][:2])


def test_cdef_matches_the_compiled_header(tmp_path):
    """Every struct size and field offset of the cffi declarations equals the C compiler's."""
    ffi = _cffi()
    fields = {s: [f for f, _ in ffi.typeof(s).fields] for s in ("hwsim_tensor", "hwsim_quant", "hwsim_layer")}
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "hwsim_kernel.h"', "int main(void) {"]
    for s, names in fields.items():
        lines.append(f'  printf("{s} %zu\\n", sizeof({s}));')
        lines += [f'  printf("{s}.{n} %zu\\n", offsetof({s}, {n}));' for n in names]
    lines += ['  printf("abi %d\\n", HWSIM_KERNEL_ABI_VERSION);', "  return 0;", "}"]
    (tmp_path / "layout.c").write_text("\n".join(lines) + "\n")
    subprocess.run(["cc", f"-I{INCLUDE}", str(tmp_path / "layout.c"), "-o", str(tmp_path / "layout")], check=True)
    out = dict(line.rsplit(" ", 1) for line in subprocess.run([str(tmp_path / "layout")], capture_output=True,
                                                               text=True, check=True).stdout.splitlines())
    assert int(out.pop("abi")) == ABI_VERSION
    for key, value in out.items():
        if "." in key:
            s, n = key.split(".")
            assert ffi.offsetof(s, n) == int(value), key
        else:
            assert ffi.sizeof(key) == int(value), key


def test_missing_cffi_is_a_missing_extra_error(libs, monkeypatch):
    import sys

    from hwsim.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "cffi", None)  # import cffi now raises ImportError
    with pytest.raises(MissingExtraError, match=r"hwsim\[cosim\]"):
        load_kernel(libs["good"])
    r = CliRunner().invoke(cli, ["cosim", "--kernel", str(libs["good"]), "--layer", "conv1", "-t", "arm_tflite",
                                 str(LENET)])
    assert r.exit_code == 2 and "pip install 'hwsim[cosim]'" in r.output


def _conv_zoo_graph(rng):
    """Depthwise (multiplier 2, stride 2, asymmetric pads, dilation 2), grouped conv and a dense head."""
    from hwsim.graph import GraphBuilder

    b = GraphBuilder("convs")
    x = b.input("x", (1, 11, 9, 4))
    y = b.depthwise_conv2d(x, rng.normal(0, 0.5, (8, 3, 3, 1)).astype(np.float32),
                           rng.normal(0, 0.1, 8).astype(np.float32), strides=(2, 2), pads=(1, 2, 2, 0),
                           dilations=(2, 1), name="dw")
    y = b.relu6(y, name="dw_relu6")
    y = b.conv2d(y, rng.normal(0, 0.3, (6, 2, 3, 4)).astype(np.float32), rng.normal(0, 0.1, 6).astype(np.float32),
                 pads=(0, 1, 1, 1), groups=2, name="grouped")
    y = b.flatten(y, name="flat")
    n = int(np.prod(b.shape(y)[1:]))
    y = b.dense(y, rng.normal(0, 0.2, (5, n)).astype(np.float32), None, name="head")
    b.output(y)
    return b.build()


@pytest.mark.parametrize("target", ["arm_tflite", "fpga_dpu", "intel_int8"])
@pytest.mark.parametrize("layer", ["dw", "grouped", "head"])
def test_example_kernel_on_depthwise_grouped_and_biasless_layers(libs, rng, target, layer):
    g = _conv_zoo_graph(rng)
    x = rng.normal(0, 1, (5, 11, 9, 4)).astype(np.float32)
    qm = quantize_for_target(g, load_target(target), x)
    res = cosim_layer(load_kernel(libs["good"]), qm, layer, x)
    assert res.matches, res.describe()
