"""``hwsim info``: tables and a documented JSON document; bad files give exit code 2 and one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hwsim.cli import cli
from hwsim.graph import GraphBuilder, QuantSpec, save_model


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    b = GraphBuilder("tiny-net")
    x = b.input("x", (1, 8, 8, 3))
    y = b.conv2d(x, np.ones((4, 3, 3, 3), np.float32), np.zeros(4, np.float32), pads=[1, 1, 1, 1],
                 name="conv")
    y = b.relu(y, name="relu")
    y = b.flatten(y, name="flat")
    w = b.param("shared", np.ones((256, 256), np.float32))
    y = b.dense(y, w, name="fc1")
    y = b.dense(y, w, name="fc2")
    b.output(y)
    path = tmp_path / "m.npz"
    save_model(b.build(), path)
    return path


def test_table(model_path: Path) -> None:
    result = CliRunner().invoke(cli, ["info", str(model_path)], terminal_width=160)
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("tiny-net", "conv", "Conv2D", "1x8x8x4", "6,912", "112", "448", "Dense", "fc2",
                 "total"):
        assert text in out
    # shared parameter: counted once in the total (112 + 65,536), per layer for each reader
    assert "65,648" in out
    assert "x 1x8x8x3 float32" in out


def test_json(model_path: Path) -> None:
    result = CliRunner().invoke(cli, ["info", str(model_path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert set(doc) == {"file", "name", "format_version", "inputs", "outputs", "layers", "totals",
                        "quantized",
                        "data", "metadata"}
    assert doc["name"] == "tiny-net" and doc["format_version"] == 1 and doc["quantized"] is False
    assert doc["inputs"] == [{"name": "x", "shape": [1, 8, 8, 3], "dtype": "float32"}]
    assert doc["outputs"] == [{"name": "fc2", "shape": [1, 256]}]
    conv = doc["layers"][0]
    assert conv == {"name": "conv", "op": "Conv2D", "inputs": ["x", "conv.weight", "conv.bias"],
                    "output": "conv", "output_shape": [1, 8, 8, 4], "params": 112, "param_bytes": 448,
                    "macs": 1 * 8 * 8 * 4 * 3 * 3 * 3,
                    "attrs": {"strides": [1, 1], "dilations": [1, 1], "pads": [1, 1, 1, 1], "groups": 1}}
    assert [layer["macs"] for layer in doc["layers"]] == [6912, 0, 0, 65536, 65536]
    assert doc["totals"] == {"layers": 5, "params": 112 + 65536, "param_bytes": 4 * (112 + 65536),
                             "macs": 6912 + 2 * 65536}


def test_quantized_model_is_flagged(tmp_path: Path) -> None:
    b = GraphBuilder("q")
    x = b.input("x", (1, 4))
    w = b.param("w", np.ones((2, 4), np.int8))
    b.quant(w, QuantSpec(8, True, scale=np.array([0.1])))
    b.output(b.dense(x, w, name="fc"))
    save_model(b.build(), tmp_path / "q.npz")
    doc = json.loads(CliRunner().invoke(cli, ["info", str(tmp_path / "q.npz"), "--json"]).output)
    assert doc["quantized"] is True and doc["totals"]["param_bytes"] == 8
    table = CliRunner().invoke(cli, ["info", str(tmp_path / "q.npz")], terminal_width=160).output
    assert "pre-quantized" in table


@pytest.mark.parametrize("content", [b"not a model", b"PK\x03\x04truncated", b""])
def test_corrupt_file_exits_2_with_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    result = CliRunner().invoke(cli, ["info", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]


def test_invalid_graph_exits_2(tmp_path: Path, model_path: Path) -> None:
    with np.load(model_path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    doc = json.loads(arrays["__graph__.json"].tobytes())
    doc["nodes"][1]["op"] = "Relu"
    arrays["__graph__.json"] = np.frombuffer(json.dumps(doc).encode(), np.uint8)
    np.savez(tmp_path / "bad.npz", **arrays)
    result = CliRunner().invoke(cli, ["info", str(tmp_path / "bad.npz")])
    assert result.exit_code == 2
    assert "node 'relu': unknown op 'Relu'" in result.output and "Traceback" not in result.output


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["info", str(tmp_path / "absent.npz")])
    assert result.exit_code == 2 and "no such file" in result.output
