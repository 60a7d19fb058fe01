"""RTL test vectors: packing, formats and the round trip export → read_vectors (docs/golden.md, "Test vectors")."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from golden_helpers import LENET
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import _core
from hwsim.cli import cli
from hwsim.compare.golden import layer_outputs
from hwsim.compare.vectors import (
    FORMATS,
    VectorsError,
    export_vectors,
    pack_words,
    read_vectors,
    text_to_words,
    unpack_words,
    words_to_text,
)
from hwsim.emulate.simulator import quantize_for_target
from hwsim.errors import HwsimError
from hwsim.graph import load_model
from hwsim.targets import load_target


def _ref_pack(values, bits, word_bits):
    """Plain-Python reference: a little-endian bit string, element i at bits [i*b, (i+1)*b)."""
    stream = 0
    for i, v in enumerate(values):
        stream |= (int(v) & ((1 << bits) - 1)) << (i * bits)
    per = word_bits // bits
    n_words = -(-len(values) // per)
    return [(stream >> (w * word_bits)) & ((1 << word_bits) - 1) for w in range(n_words)]


@settings(max_examples=200, deadline=None)
@given(bits=st.sampled_from([2, 4, 8, 16, 32]), word_bits=st.sampled_from([8, 16, 32, 64]), signed=st.booleans(),
       n=st.integers(0, 37), data=st.data())
def test_pack_round_trip_and_reference(bits, word_bits, signed, n, data):
    if word_bits % bits:
        return
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    values = np.array(data.draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n)), dtype=np.int64)
    words = pack_words(values, bits, word_bits)
    assert [int(w) for w in words] == _ref_pack(values, bits, word_bits)
    np.testing.assert_array_equal(unpack_words(words, bits, word_bits, n, signed), values)
    np.testing.assert_array_equal(text_to_words(words_to_text(words, word_bits), word_bits, "t"), words)


@pytest.mark.parametrize("bits", [2, 4])
@pytest.mark.parametrize("n", [1, 3, 7, 8, 33])
def test_sub_byte_bin_stream_is_low_first_packing(rng, bits, n):
    """bin files are the little-endian words; for 4/2-bit that is _core.pack_bits(order='low_first')."""
    values = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), n).astype(np.int8)
    stream = pack_words(values, bits, 32).astype("<u4").tobytes()
    packed = _core.pack_bits(values, bits, order="low_first").tobytes()
    assert stream[:len(packed)] == packed
    assert set(stream[len(packed):]) <= {0}


def test_pack_rejects_values_out_of_range():
    with pytest.raises(HwsimError, match="do not fit 4 bits"):
        pack_words(np.array([8, -9]), 4, 32)
    with pytest.raises(HwsimError, match="must divide"):
        pack_words(np.array([1]), 3, 32)


def test_hex_text_format():
    words = pack_words(np.array([1, -1, 2, -8, 7]), 4, 16)
    # nibbles from the lowest: 1, f (-1), 2, 8 (-8) → 0x82f1; 7 alone in the padded second word
    assert words_to_text(words, 16) == "82f1\n0007\n"


@pytest.fixture(scope="module")
def lenet():
    return load_model(LENET)


@pytest.mark.parametrize("target", ["arm_tflite", "intel_int8", "fpga_dpu", "fpga_dpu_w4a4", "fpga_dpu_w2a8"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_export_read_round_trip(tmp_path, lenet, target, fmt):
    qm = quantize_for_target(lenet, load_target(target), lenet.data["calibration"]["x"][:8])
    x = lenet.data["evaluation"]["x"][:3]
    export_vectors(qm, x, tmp_path / "v", fmt=fmt, word_bits=32 if fmt != "mem" else 16)
    back = read_vectors(tmp_path / "v")
    ints = {lo.tensor: lo.values for lo in layer_outputs(qm, x)}
    ran = [p for p in qm.plans if p.mode != "fused"]
    assert list(back) == [p.node.name for p in ran]
    for p in ran:
        lv = back[p.node.name]
        np.testing.assert_array_equal(lv.tensors["x"], ints[p.node.inputs[0]])
        np.testing.assert_array_equal(lv.tensors["y"], ints[p.output])
        assert lv.tensors["y"].shape == ints[p.output].shape
        c = p.consts
        if "w_int" in c:
            np.testing.assert_array_equal(lv.tensors["w"], c["w_int"])
            np.testing.assert_array_equal(lv.tensors["b"], c["bias"])
            for role, key in (("multiplier", "M"), ("shift", "shift"), ("scale", "multiplier")):
                if role in lv.tensors:
                    np.testing.assert_array_equal(lv.tensors[role], c[key])
            if lv.params["scheme"] == "pow2_shift":
                assert (lv.params["shift_cut"], lv.params["shift_bias"]) == (c["shift_cut"], c["shift_bias"])


def test_weights_use_the_target_bit_width(tmp_path, lenet):
    qm = quantize_for_target(lenet, load_target("fpga_dpu_w2a8"), lenet.data["calibration"]["x"][:8])
    doc = export_vectors(qm, lenet.data["evaluation"]["x"][:1], tmp_path / "v", layers=["conv1"], fmt="hex")
    w = doc["layers"][0]["files"]["w"]
    assert (w["bits"], w["word_bits"], w["elements_per_word"]) == (2, 32, 16)
    assert w["words"] == -(-150 // 16)  # 6*5*5*1 weights, 16 per word, last one padded
    lines = (tmp_path / "v" / w["file"]).read_text().splitlines()
    assert len(lines) == w["words"] and all(len(s) == 8 for s in lines)


def test_every_file_hash_is_in_the_manifest_and_checked(tmp_path, lenet):
    qm = quantize_for_target(lenet, load_target("arm_tflite"), lenet.data["calibration"]["x"][:8])
    doc = export_vectors(qm, lenet.data["evaluation"]["x"][:1], tmp_path / "v", fmt="mem")
    files = [f for e in doc["layers"] for f in e["files"].values()]
    written = sorted(p.relative_to(tmp_path / "v").as_posix() for p in (tmp_path / "v").rglob("*.mem"))
    assert sorted(f["file"] for f in files) == written
    target = tmp_path / "v" / files[1]["file"]
    target.write_text(target.read_text().replace("@0\n", "@0\n0", 1))
    with pytest.raises(VectorsError, match="SHA-256"):
        read_vectors(tmp_path / "v")


def test_cli_export_vectors(tmp_path):
    r = CliRunner().invoke(cli, ["export-vectors", "-t", "fpga_dpu_w4a4", str(LENET), "-o", str(tmp_path / "v"),
                                 "--layers", "conv1,fc3", "--format", "bin", "--limit", "2"])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "v" / "manifest.json").read_text())
    assert [e["name"] for e in doc["layers"]] == ["conv1", "fc3"] and doc["samples"] == 2
    assert doc["layers"][0]["files"]["x"]["bits"] == 4
    back = read_vectors(tmp_path / "v")
    assert back["conv1"].tensors["x"].shape == (2, 32, 32, 1)
    r = CliRunner().invoke(cli, ["export-vectors", "-t", "fpga_dpu", str(LENET), "-o", str(tmp_path / "v")])
    assert r.exit_code == 2 and "--overwrite" in r.output
    r = CliRunner().invoke(cli, ["export-vectors", "-t", "fpga_dpu", str(LENET), "-o", str(tmp_path / "w"),
                                 "--layers", "nope"])
    assert r.exit_code == 2 and "no layer 'nope'" in r.output
