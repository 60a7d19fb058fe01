"""Golden bundles: record → check, and every way a check must fail (docs/golden.md, "Golden bundles")."""
# ruff: noqa: F811  (pytest fixtures imported from golden_helpers are parameters here)

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from golden_helpers import LENET, bundle, recorded  # noqa: F401  (fixtures)

from hwsim.cli import cli
from hwsim.compare.golden import (
    BundleError,
    array_sha256,
    check_golden,
    file_sha256,
    load_bundle,
    record_golden,
)
from hwsim.emulate.simulator import quantize_for_target, simulate
from hwsim.graph import load_model
from hwsim.targets import load_target


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def manifest(b: Path) -> dict:
    return json.loads((b / "manifest.json").read_text())


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): file_sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def rewrite_layer(b: Path, name: str, values: np.ndarray) -> None:
    """Replace a layer's golden integers consistently (file and manifest hash): a recorded numerics change."""
    doc = manifest(b)
    e = next(e for e in doc["layers"] if e["name"] == name)
    np.save(b / e["file"], values)
    e["sha256"] = array_sha256(values)
    (b / "manifest.json").write_text(json.dumps(doc))


def test_record_then_check_passes(recorded):
    r = run("golden", "check", recorded)
    assert r.exit_code == 0, r.output
    assert "PASS" in r.output
    doc = manifest(recorded)
    assert doc["policy"] == "bit-exact"
    assert doc["model"]["sha256"] == file_sha256(LENET)
    assert doc["target"] == json.loads(json.dumps(load_target("arm_tflite").to_dict(all_ops=True)))
    assert [e["name"] for e in doc["layers"]] == ["image", "conv1", "pool1", "conv2", "pool2", "flatten", "fc1",
                                                "fc2", "fc3"]


def test_recorded_integers_are_the_simulators(recorded):
    """The files hold exactly what simulate() gives for the model calibrated as recorded (independent path)."""
    g = load_model(LENET)
    qm = quantize_for_target(g, load_target("arm_tflite"), g.data["calibration"]["x"][:4])
    ints = simulate(qm, g.data["evaluation"]["x"][:4]).integers
    for e in manifest(recorded)["layers"]:
        got = np.load(recorded / e["file"])
        np.testing.assert_array_equal(got, ints[e["tensor"]])
        assert e["sha256"] == array_sha256(got)


@pytest.mark.parametrize("layer", ["image", "conv1", "pool1", "conv2", "flatten", "fc1", "fc3"])
@pytest.mark.parametrize("consistent_hash", [False, True], ids=["file-only", "file-and-hash"])
def test_flipped_bit_fails_and_names_the_layer(bundle, layer, consistent_hash):
    e = next(e for e in manifest(bundle)["layers"] if e["name"] == layer)
    a = np.load(bundle / e["file"])
    flat = a.reshape(-1).copy()
    flat[7] ^= 1  # lowest bit of one element
    if consistent_hash:
        rewrite_layer(bundle, layer, flat.reshape(a.shape))
    else:
        np.save(bundle / e["file"], flat.reshape(a.shape))
    r = run("golden", "check", bundle)
    assert r.exit_code == 1, r.output
    assert f"first failing layer '{layer}'" in r.output
    idx = [int(i) for i in np.unravel_index(7, a.shape)]
    assert f"first at index {idx}" in r.output
    if not consistent_hash:
        assert "SHA-256 recorded in the manifest" in r.output


def test_changed_target_description_fails(tmp_path):
    yaml_path = tmp_path / "my_arm.yaml"
    yaml_path.write_text("schema_version: 1\nname: my_arm\nfamily: tflite\nextends: arm_tflite\n"
                         "description: test\n")
    out = tmp_path / "b"
    r = run("golden", "record", "-t", yaml_path, LENET, "-o", out, "--limit", "2")
    assert r.exit_code == 0, r.output
    assert run("golden", "check", out).exit_code == 0
    # Dense layers now round once more: a changed description (even where integers might agree).
    yaml_path.write_text(yaml_path.read_text() + "ops:\n  Dense:\n    kernel: fully_connected\n"
                         "    requant: {scheme: fixed_point_double}\n")
    r = run("golden", "check", out)
    assert r.exit_code == 1, r.output
    assert "target description changed" in r.output
    assert "ops.Dense.requant.scheme" in r.output


def test_other_target_on_check_fails(recorded):
    r = run("golden", "check", recorded, "--target", "arm_tflite_xnnpack")
    assert r.exit_code == 1
    assert "target description changed" in r.output


def test_tolerance_policy_passes_one_lsb_and_fails_two(bundle):
    e = next(e for e in manifest(bundle)["layers"] if e["name"] == "conv2")
    a = np.load(bundle / e["file"])
    flat = a.reshape(-1).astype(np.int16)
    inside = np.flatnonzero((flat > -127) & (flat < 126))[:3]  # room for ±2 without leaving int8
    plus1 = flat.copy()
    plus1[inside] += np.array([1, -1, 1])
    rewrite_layer(bundle, "conv2", plus1.astype(a.dtype).reshape(a.shape))
    assert run("golden", "check", bundle).exit_code == 1  # the bundle's policy: bit-exact
    r = run("golden", "check", bundle, "--policy", "lsb1:1%")
    assert r.exit_code == 0, r.output
    r = run("golden", "check", bundle, "--policy", "lsb1:0.001%")  # 3 of 3200 elements is more
    assert r.exit_code == 1 and "at ±1 LSB" in r.output
    plus2 = plus1.copy()
    plus2[inside[0]] += 1
    rewrite_layer(bundle, "conv2", plus2.astype(a.dtype).reshape(a.shape))
    r = run("golden", "check", bundle, "--policy", "lsb1:1%")
    assert r.exit_code == 1
    assert "first failing layer 'conv2'" in r.output and "beyond ±1 LSB" in r.output


def test_topk_policy_judges_graph_outputs(bundle):
    e = next(e for e in manifest(bundle)["layers"] if e["name"] == "conv1")
    a = np.load(bundle / e["file"])
    changed = a.copy()
    changed.reshape(-1)[0] = changed.reshape(-1)[0] ^ 4
    rewrite_layer(bundle, "conv1", changed)
    assert run("golden", "check", bundle, "--policy", "top1:100%").exit_code == 0  # conv1 is not an output
    out = np.load(bundle / manifest(bundle)["layers"][-1]["file"])
    swapped = out.copy()
    top = out.argmax(-1)
    swapped[0, top[0]] = np.iinfo(out.dtype).min  # sample 0 now has another top-1 class
    rewrite_layer(bundle, "fc3", swapped)
    assert run("golden", "check", bundle, "--policy", "top1:75%").exit_code == 0  # 3 of 4 agree
    r = run("golden", "check", bundle, "--policy", "top1:80%")
    assert r.exit_code == 1 and "top-1 agreement 75%" in r.output


@pytest.mark.parametrize("damage", ["manifest", "model", "inputs", "layer_file", "manifest_json", "escaping_path"])
def test_incomplete_bundle_is_exit_2(bundle, damage):
    doc = manifest(bundle)
    if damage == "manifest":
        (bundle / "manifest.json").unlink()
    elif damage == "model":
        (bundle / "model.npz").unlink()
    elif damage == "inputs":
        (bundle / "inputs.npy").unlink()
    elif damage == "layer_file":
        (bundle / doc["layers"][3]["file"]).unlink()
    elif damage == "escaping_path":
        doc["layers"][2]["file"] = "../../etc/passwd"
        (bundle / "manifest.json").write_text(json.dumps(doc))
    else:
        (bundle / "manifest.json").write_text("{not json")
    before = snapshot(bundle)
    r = run("golden", "check", bundle)
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: ") and str(bundle) in r.output
    assert snapshot(bundle) == before


@pytest.mark.parametrize("what", ["model.npz", "inputs.npy"])
def test_hash_mismatch_of_what_is_simulated_is_exit_2(bundle, what):
    p = bundle / what
    data = bytearray(p.read_bytes())
    data[-3] ^= 0x10
    p.write_bytes(bytes(data))
    before = snapshot(bundle)
    r = run("golden", "check", bundle)
    assert r.exit_code == 2, r.output
    assert "SHA-256" in r.output and what in r.output
    assert snapshot(bundle) == before


def test_record_refuses_to_overwrite(bundle):
    before = snapshot(bundle)
    r = run("golden", "record", "-t", "arm_tflite", LENET, "-o", bundle, "--limit", "2")
    assert r.exit_code == 2 and "--update" in r.output
    assert snapshot(bundle) == before


def test_update_refuses_a_folder_that_is_not_a_bundle(tmp_path):
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    r = run("golden", "record", "-t", "arm_tflite", LENET, "-o", other, "--update")
    assert r.exit_code == 2 and "not a golden bundle" in r.output
    assert (other / "notes.txt").read_text() == "keep me" and len(list(other.iterdir())) == 1


def test_update_rerecords_and_keeps_the_policy(tmp_path):
    out = tmp_path / "b"
    assert run("golden", "record", "-t", "arm_tflite", LENET, "-o", out, "--limit", "2",
               "--policy", "lsb1:0.5%").exit_code == 0
    r = run("golden", "record", "-t", "arm_tflite", LENET, "-o", out, "--limit", "3", "--update")
    assert r.exit_code == 0, r.output
    doc = manifest(out)
    assert doc["samples"] == 3 and doc["policy"] == "lsb1:0.5%"
    assert run("golden", "check", out).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temporary or old folders left


def test_failed_record_leaves_nothing(tmp_path):
    bad = tmp_path / "x.npy"
    np.save(bad, np.zeros((2, 5, 5, 1), np.float32))
    r = run("golden", "record", "-t", "arm_tflite", LENET, "-o", tmp_path / "b", "--input", bad)
    assert r.exit_code == 2 and "expected shape" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_float_target_is_refused(tmp_path):
    r = run("golden", "record", "-t", "arm_tflite_fp16", LENET, "-o", tmp_path / "b", "--limit", "1")
    assert r.exit_code == 2 and "float" in r.output


def test_check_with_the_source_model(recorded):
    """--model re-quantizes the float model with the recorded calibration inputs: same integers."""
    res = check_golden(recorded, model=LENET)
    assert res.passed, res.describe()


def test_bundle_checks_on_other_families(tmp_path):
    for name in ("intel_int8", "fpga_dpu", "fpga_dpu_w4a4"):
        out = tmp_path / name
        record_golden(LENET, load_target(name), out, limit=2)
        res = check_golden(out)
        assert res.passed and res.target == name, res.describe()


def test_load_bundle_errors_are_bundle_errors(tmp_path):
    with pytest.raises(BundleError, match="no such golden bundle"):
        load_bundle(tmp_path / "nothing")
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "hwsim-golden", "format_version": 99}))
    with pytest.raises(BundleError, match="newer"):
        load_bundle(tmp_path)


def test_json_output(recorded):
    r = run("golden", "check", recorded, "--json")
    doc = json.loads(r.output)
    assert doc["passed"] is True and doc["first_failing_layer"] is None
    assert len(doc["layers"]) == 9


def test_bundle_files_are_readable_by_others(recorded):
    assert os.stat(recorded).st_mode & 0o055 == 0o055 & ~_umask()
    assert os.stat(recorded / "model.npz").st_mode & 0o044 == 0o044 & ~_umask()


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_frozen_model_records_the_same_fingerprint(recorded, tmp_path):
    """Recording the bundle's own frozen (pre-quantized) model on its inputs gives identical integers."""
    out = tmp_path / "again"
    r = run("golden", "record", "-t", "arm_tflite", recorded / "model.npz", "-o", out, "--input",
            recorded / "inputs.npy")
    assert r.exit_code == 0, r.output
    assert manifest(out)["fingerprint"] == manifest(recorded)["fingerprint"]
    assert "calibration" not in manifest(out)["files"]
    r = run("golden", "check", recorded, "--model", recorded / "model.npz")
    assert r.exit_code == 0, r.output


def test_check_with_a_changed_model_fails(recorded, tmp_path):
    from hwsim.graph import save_model

    g = load_model(LENET)
    g.params["fc3.weight"] = (g.params["fc3.weight"] * np.float32(1.25)).astype(np.float32)
    save_model(g, tmp_path / "changed.npz")
    r = run("golden", "check", recorded, "--model", tmp_path / "changed.npz")
    assert r.exit_code == 1, r.output
    assert "first failing layer 'fc3'" in r.output  # the layers before fc3 are untouched
    assert "differs from the recorded one (SHA-256)" in r.output
