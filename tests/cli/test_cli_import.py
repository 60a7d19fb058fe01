"""`hwsim import MODEL -o model.npz`: ONNX (float, QDQ, QOperator) and TFLite by suffix; bad input exits 2."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from hwsim.cli import cli
from hwsim.graph import load_model

_TOOLS = Path(__file__).resolve().parents[2] / "tools" / "gen_onnx_models.py"
_spec = importlib.util.spec_from_file_location("gen_onnx_models", _TOOLS)
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx")
    float_model = gen.torch_model("small_convnet")
    onnx.save(float_model, str(d / "small_convnet.onnx"))
    onnx.save(gen.quantize(float_model, per_channel=True), str(d / "small_convnet_qdq.onnx"))
    onnx.save(gen.quantize(float_model, per_channel=False, fmt="qop"), str(d / "small_convnet_qop.onnx"))
    return d


@pytest.mark.parametrize("stem, kind", [("small_convnet", "float"), ("small_convnet_qdq", "pre-quantized"),
                                        ("small_convnet_qop", "pre-quantized")])
def test_import_writes_a_model_file(models, tmp_path, stem, kind):
    out = tmp_path / "m.npz"
    r = _run("import", models / f"{stem}.onnx", "-o", out)
    assert r.exit_code == 0, r.output
    assert f"wrote {out}" in r.output and kind in r.output and "input [1, 16, 16, 3]" in r.output
    g = load_model(out)
    assert g.name == stem and g.inputs[0].shape == (1, 16, 16, 3)
    assert bool(g.quant) == (kind == "pre-quantized")


def test_imported_quantized_model_runs(models, tmp_path):
    out = tmp_path / "q.npz"
    assert _run("import", models / "small_convnet_qdq.onnx", "-o", out).exit_code == 0
    x = tmp_path / "x.npy"
    np.save(x, gen.images(1, 2).transpose(0, 2, 3, 1))
    r = _run("run", "--target", "intel_int8", out, "--input", x)
    assert r.exit_code == 0, r.output


def test_input_shape_fixes_dynamic_dimensions(tmp_path):
    model = gen.torch_model("small_convnet")
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "h", "w"
    path = tmp_path / "dyn.onnx"
    onnx.save(model, str(path))
    r = _run("import", path, "-o", tmp_path / "a.npz")
    assert r.exit_code == 2 and "--input-shape input=1,3,h,w" in r.output
    r = _run("import", path, "-o", tmp_path / "a.npz", "--input-shape", "input=1,3,16,16")
    assert r.exit_code == 0, r.output
    assert load_model(tmp_path / "a.npz").inputs[0].shape == (1, 16, 16, 3)


@pytest.mark.parametrize("args, message", [
    (["import", "{d}/nothere.onnx", "-o", "{t}/a.npz"], "no such file"),
    (["import", "{d}/small_convnet.onnx", "-o", "{t}/no/dir/a.npz"], "does not exist"),
    (["import", "{t}/model.pb", "-o", "{t}/a.npz"], "unknown model type '.pb'"),
    (["import", "{t}/broken.onnx", "-o", "{t}/a.npz"], "corrupt or truncated"),
    (["import", "{d}/small_convnet.onnx", "-o", "{t}/a.npz", "--input-shape", "input"], "NAME=D1,D2"),
    (["import", "{d}/small_convnet.onnx", "-o", "{t}/a.npz", "--input-shape", "other=1,2"], "unknown input"),
])
def test_bad_input_exits_2_with_one_line(models, tmp_path, args, message):
    (tmp_path / "model.pb").write_bytes(b"x")
    (tmp_path / "broken.onnx").write_bytes((models / "small_convnet.onnx").read_bytes()[:500])
    r = _run(*[a.format(d=models, t=tmp_path) for a in args])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_tflite_suffix_goes_to_the_tflite_importer(tmp_path):
    path = tmp_path / "x.tflite"
    path.write_bytes(b"not a flatbuffer")
    r = _run("import", path, "-o", tmp_path / "a.npz")
    assert r.exit_code == 2 and "x.tflite" in r.output


