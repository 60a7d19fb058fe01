"""model.npz v1: exact round trips, atomic writes, and one clear error for every kind of bad file."""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hwsim.errors import GraphError, HwsimError, ModelFormatError
from hwsim.graph import FORMAT_VERSION, Graph, GraphBuilder, QuantSpec, load_model, save_model
from hwsim.graph.npz import GRAPH_KEY


def float_model(rng: np.random.Generator) -> Graph:
    b = GraphBuilder("float model")
    x = b.input("x", (2, 6, 6, 3))
    y = b.conv2d(x, rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
                 rng.standard_normal(4).astype(np.float32),
                 pads=[1, 1, 1, 1], name="conv1")
    y = b.batch_norm(y, *(rng.random(4).astype(np.float32) + 0.5 for _ in range(4)), name="bn1")
    y = b.relu6(y)
    y = b.depthwise_conv2d(y, rng.standard_normal((8, 3, 3, 1)).astype(np.float32), strides=[2, 2],
                           pads=[0, 0, 1, 1], name="dw")
    y = b.global_avg_pool(y)
    y = b.reshape(y, [0, -1])
    shared = b.param("fc/shared weight", rng.standard_normal((8, 8)))  # float64, unsafe key characters
    y = b.dense(y, shared, name="fc_a")
    y = b.dense(y, shared, name="fc_b")
    y = b.gelu(y, "tanh")
    b.output(y)
    b.output("bn1")
    b.data("calibration", x=rng.standard_normal((3, 6, 6, 3)).astype(np.float32))
    b.data("evaluation", x=rng.standard_normal((2, 6, 6, 3)).astype(np.float32), y=np.array([1, 7], np.int64))
    b.metadata.update({"source": "test", "accuracy": {"top1": 0.5}, "ünïcode": "✓"})
    return b.build()


def quantized_model() -> Graph:
    b = GraphBuilder("prequantized")
    x = b.input("x", (1, 4, 4, 8), "int8")
    b.quant(x, QuantSpec(8, True, scale=np.array([0.05], np.float32), zero_point=np.array([-3], np.int8)))
    w = b.param("w", np.arange(-64, 64, dtype=np.int8).reshape(16, 1, 1, 8))
    b.quant(w, QuantSpec(8, True, scale=np.linspace(0.01, 0.02, 16), axis=0, narrow=True))
    bias = b.param("bias", np.arange(16, dtype=np.int32) * 1000)
    b.quant(bias, QuantSpec(32, True, scale=np.full(16, 5e-4), axis=0))
    y = b.conv2d(x, w, bias, name="conv")
    w4 = b.param("w4", (np.arange(16 * 16, dtype=np.int8) % 16 - 8).reshape(16, 16))
    b.quant(w4, QuantSpec(4, True, scale=np.full((16, 2), 0.1, np.float32), axis=1, group_size=8))
    y = b.dense(y, w4, name="fc")
    b.quant(y, QuantSpec(8, False, scale=np.array([0.25]), fix_pos=np.array([2]), scale_kind="pow2"))
    b.output(y)
    return b.build()


def graph_json(path: Path) -> str:
    with np.load(path, allow_pickle=False) as z:
        return z[GRAPH_KEY].tobytes().decode("utf-8")


def assert_same_graph(a: Graph, b: Graph) -> None:
    assert a.name == b.name and a.inputs == b.inputs and a.outputs == b.outputs and a.nodes == b.nodes
    assert a.params.keys() == b.params.keys()
    for k in a.params:
        assert a.params[k].dtype == b.params[k].dtype
        assert a.params[k].tobytes() == b.params[k].tobytes()  # bit-identical
    assert a.quant == b.quant
    assert a.data.keys() == b.data.keys()
    for s in a.data:
        assert a.data[s].keys() == b.data[s].keys()
        for k in a.data[s]:
            assert a.data[s][k].dtype == b.data[s][k].dtype and np.array_equal(a.data[s][k], b.data[s][k])
    assert a.metadata == b.metadata
    assert a.tensors == b.tensors


@pytest.mark.parametrize("make", [float_model, lambda rng: quantized_model()], ids=["float", "quantized"])
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_is_exact(tmp_path: Path, rng, make: Callable, compress: bool) -> None:
    g = make(rng)
    p1, p2 = tmp_path / "a.npz", tmp_path / "b.npz"
    save_model(g, p1, compress=compress)
    g2 = load_model(p1)
    assert_same_graph(g, g2)
    save_model(g2, p2, compress=compress)
    assert graph_json(p1) == graph_json(p2)
    assert [n.macs for n in g.nodes] == [n.macs for n in g2.nodes]


def test_archive_layout(tmp_path: Path, rng) -> None:
    path = tmp_path / "m.npz"
    save_model(float_model(rng), path)
    doc = json.loads(graph_json(path))
    assert doc["format"] == "hwsim-model" and doc["format_version"] == FORMAT_VERSION == 1
    assert list(doc) == ["format", "format_version", "name", "inputs", "outputs", "nodes", "params", "quant",
                         "data", "metadata"]
    keys = {p["name"]: p["key"] for p in doc["params"]}
    assert keys["conv1.weight"] == "param/conv1.weight"
    assert keys["fc/shared weight"].startswith("param/#")
    assert doc["data"] == {"calibration": {"x": "data/calibration/x"},
                           "evaluation": {"x": "data/evaluation/x", "y": "data/evaluation/y"}}
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
    assert f"{GRAPH_KEY}.npy" in names and "param/conv1.weight.npy" in names
    with np.load(path, allow_pickle=False) as z:  # a plain numpy archive
        assert z[GRAPH_KEY].dtype == np.uint8
        assert z["param/conv1.weight"].shape == (4, 3, 3, 3)


def test_write_is_atomic(tmp_path: Path, rng, monkeypatch) -> None:
    path = tmp_path / "m.npz"
    save_model(float_model(rng), path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_model(float_model(rng), path)
    assert path.read_bytes() == before  # the old file is untouched
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]  # and no temporary file is left behind


def test_path_is_used_as_given(tmp_path: Path, rng) -> None:
    save_model(float_model(rng), tmp_path / "model.bin")
    assert os.listdir(tmp_path) == ["model.bin"]
    assert load_model(tmp_path / "model.bin").name == "float model"


# ----------------------------------------------------------------------------------------------------
# Bad files. Each case writes a broken archive and names what the error message must contain.


def write_archive(path: Path, doc: Any, arrays: dict[str, np.ndarray]) -> None:
    payload = dict(arrays)
    if doc is not None:
        text = doc if isinstance(doc, (str, bytes)) else json.dumps(doc)
        raw = text if isinstance(text, bytes) else text.encode()
        payload[GRAPH_KEY] = np.frombuffer(raw, np.uint8)
    np.savez(path, **payload)


def good_doc_and_arrays(tmp_path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    b = GraphBuilder("m")
    x = b.input("x", (1, 4, 4, 2))
    y = b.conv2d(x, np.ones((3, 3, 3, 2), np.float32), np.zeros(3, np.float32), pads=[1, 1, 1, 1],
                 name="conv")
    b.output(b.relu(y, name="relu"))
    path = tmp_path / "good.npz"
    save_model(b.build(), path)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != GRAPH_KEY}
        doc = json.loads(z[GRAPH_KEY].tobytes())
    return doc, arrays


BAD_DOCS: list[tuple[str, Callable[[dict, dict], Any], type, str]] = [
    ("missing field", lambda d, a: d.pop("nodes"), ModelFormatError, "field 'nodes' is missing"),
    ("wrong type", lambda d, a: d.update(outputs="relu"), ModelFormatError, "field 'outputs' must be a list"),
    ("bool as int", lambda d, a: d.update(format_version=True), ModelFormatError,
     "field 'format_version' must be an integer, got boolean"),
    ("node field type", lambda d, a: d["nodes"][0].update(op=3), ModelFormatError,
     r"field 'nodes\[0\] \(node 'conv'\).op' must be a string"),
    ("node input type", lambda d, a: d["nodes"][1].update(inputs=["conv", 1]), ModelFormatError,
     r"field 'nodes\[1\] \(node 'relu'\).inputs\[1\]' must be a string"),
    ("unknown node field", lambda d, a: d["nodes"][0].update(attributes={}), ModelFormatError,
     "unknown field 'attributes'"),
    ("input shape type", lambda d, a: d["inputs"][0].update(shape=[1, 4, "4", 2]), ModelFormatError,
     r"field 'inputs\[0\].shape\[2\]' must be an integer"),
    ("unknown top-level", lambda d, a: d.update(extra=1), ModelFormatError,
     "unknown top-level field 'extra'"),
    ("wrong format name", lambda d, a: d.update(format="onnx"), ModelFormatError, "field 'format' must be"),
    ("newer version", lambda d, a: d.update(format_version=2), ModelFormatError,
     "field 'format_version' is 2, newer than this hwsim reads \\(1\\); upgrade hwsim"),
    ("version 0", lambda d, a: d.update(format_version=0), ModelFormatError, "must be >= 1"),
    ("missing parameter entry", lambda d, a: a.pop("param/conv.bias"), ModelFormatError,
     "parameter 'conv.bias': archive entry 'param/conv.bias' is missing"),
    ("parameter not listed", lambda d, a: (d["params"].pop(1), a.pop("param/conv.bias")), GraphError,
     r"node 'conv' \(Conv2D\): input 'conv.bias' is not a graph input, parameter or node output"),
    ("parameter wrong shape vs JSON", lambda d, a: a.update({"param/conv.bias": np.zeros(4, np.float32)}),
     ModelFormatError, r"parameter 'conv.bias': archive entry 'param/conv.bias' is float32 \[4\] but field "
                       r"'params\[1\] \(parameter 'conv.bias'\)' declares float32 \[3\]"),
    ("parameter wrong shape for op",
     lambda d, a: (a.update({"param/conv.bias": np.zeros(4, np.float32)}), d["params"][1].update(shape=[4])),
     GraphError, r"node 'conv' \(Conv2D\): bias 'conv.bias' must have shape \[3\]"),
    ("weight channels", lambda d, a: (a.update({"param/conv.weight": np.ones((3, 3, 3, 1), np.float32)}),
                                      d["params"][0].update(shape=[3, 3, 3, 1])),
     GraphError, r"node 'conv' \(Conv2D\): input 'x' has 2 channels but weight 'conv.weight' expects 1"),
    ("unknown op", lambda d, a: d["nodes"][1].update(op="Frobnicate"), GraphError,
     r"node 'relu': unknown op 'Frobnicate'"),
    ("unknown attribute", lambda d, a: d["nodes"][0]["attrs"].update(padding="same"), GraphError,
     r"node 'conv' \(Conv2D\): unknown attribute 'padding'"),
    ("attribute type", lambda d, a: d["nodes"][0]["attrs"].update(groups="1"), GraphError,
     r"node 'conv' \(Conv2D\): attribute 'groups' must be an int"),
    ("cycle", lambda d, a: d["nodes"][0].update(inputs=["relu", "conv.weight", "conv.bias"]), GraphError,
     "nodes form a cycle"),
    ("nan weight", lambda d, a: a["param/conv.weight"].__setitem__((0, 0, 0, 0), np.nan), GraphError,
     r"parameter 'conv.weight' contains nan at index \[0, 0, 0, 0\]"),
    ("inf weight", lambda d, a: a["param/conv.bias"].__setitem__(2, -np.inf), GraphError,
     r"parameter 'conv.bias' contains -inf at index \[2\]"),
    ("unsupported dtype", lambda d, a: (a.update({"param/conv.bias": np.zeros(3, np.complex64)}),
                                        d["params"][1].update(dtype="complex64")),
     GraphError, "parameter 'conv.bias': unsupported dtype complex64"),
    ("input dtype", lambda d, a: d["inputs"][0].update(dtype="str"), GraphError,
     "input 'x': unsupported dtype 'str'"),
    ("unreferenced entry", lambda d, a: a.update({"param/stray": np.zeros(1, np.float32)}), ModelFormatError,
     "archive entry 'param/stray' is not referenced"),
    ("duplicate parameter", lambda d, a: d["params"].append(dict(d["params"][0])), ModelFormatError,
     "parameter 'conv.weight' is listed twice"),
    ("missing output", lambda d, a: d.update(outputs=["nope"]), GraphError,
     "graph output 'nope' is not a tensor"),
    ("quant missing field", lambda d, a: (d["quant"].update(relu={"bits": 8}),), ModelFormatError,
     "field 'quant.relu.signed' is missing"),
    ("quant bad bits",
     lambda d, a: (d["quant"].update(relu={"bits": 1, "signed": True, "narrow": False, "axis": None,
                                           "group_size": None, "scale_kind": "float", "dtype": "int8",
                                           "scale": "quant/relu/scale",
                                           "zero_point": "quant/relu/zero_point"}),
                   a.update({"quant/relu/scale": np.ones(1), "quant/relu/zero_point": np.zeros(1, np.int8)})),
     ModelFormatError, "quant spec for 'relu': field 'bits' must be in 2..16 or 32, got 1"),
    ("data set type", lambda d, a: d.update(data={"calibration": "data/x"}), ModelFormatError,
     "field 'data.calibration' must be an object"),
]


@pytest.mark.parametrize("case,change,error,message", BAD_DOCS, ids=[c[0] for c in BAD_DOCS])
def test_bad_model_files(tmp_path: Path, case: str, change: Callable, error: type, message: str) -> None:
    doc, arrays = good_doc_and_arrays(tmp_path)
    change(doc, arrays)
    path = tmp_path / "bad.npz"
    write_archive(path, doc, arrays)
    with pytest.raises(error, match=message) as info:
        load_model(path)
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)


def test_good_file_loads(tmp_path: Path) -> None:
    doc, arrays = good_doc_and_arrays(tmp_path)
    write_archive(tmp_path / "ok.npz", doc, arrays)
    assert [n.name for n in load_model(tmp_path / "ok.npz").nodes] == ["conv", "relu"]


def file_error(path: Path) -> str:
    with pytest.raises(ModelFormatError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    assert "no such file" in file_error(tmp_path / "absent.npz")


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "m.npz").write_text("hello")
    assert "not a model.npz archive (not a zip archive)" in file_error(tmp_path / "m.npz")
    (tmp_path / "e.npz").write_bytes(b"")
    assert "(empty)" in file_error(tmp_path / "e.npz")
    np.save(tmp_path / "a.npy", np.zeros(3))
    assert "a single .npy array" in file_error(tmp_path / "a.npy")


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_file(tmp_path: Path, rng, keep: float) -> None:
    path = tmp_path / "m.npz"
    save_model(float_model(rng), path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    assert "corrupt or truncated" in file_error(path)


def test_corrupted_member(tmp_path: Path, rng) -> None:
    path = tmp_path / "m.npz"
    save_model(float_model(rng), path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("param/conv1.weight.npy")
    at = info.header_offset + 30 + len(info.filename) + info.file_size - 4  # inside the weight's data
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    message = file_error(path)
    assert "parameter 'conv1.weight'" in message and "cannot be read" in message


def test_pickled_object_array(tmp_path: Path) -> None:
    doc, arrays = good_doc_and_arrays(tmp_path)
    arrays["param/conv.bias"] = np.array([1.0, "x", None], dtype=object)
    path = tmp_path / "bad.npz"
    np.savez(path, **{GRAPH_KEY: np.frombuffer(json.dumps(doc).encode(), np.uint8)}, **arrays)
    message = file_error(path)
    assert "parameter 'conv.bias'" in message and "pickled Python objects" in message


def test_missing_graph_entry(tmp_path: Path) -> None:
    np.savez(tmp_path / "m.npz", weights=np.zeros(3))
    assert "archive entry '__graph__.json' is missing" in file_error(tmp_path / "m.npz")


@pytest.mark.parametrize("raw,message", [
    (b"{not json", "is not valid UTF-8 JSON"),
    (b"\xff\xfe", "is not valid UTF-8 JSON"),
    (b"[1, 2]", "must hold a JSON object, got list"),
])
def test_bad_json(tmp_path: Path, raw: bytes, message: str) -> None:
    write_archive(tmp_path / "m.npz", raw, {})
    assert message in file_error(tmp_path / "m.npz")


def test_graph_entry_of_wrong_dtype(tmp_path: Path) -> None:
    np.savez(tmp_path / "m.npz", **{GRAPH_KEY: np.zeros(3, np.float32)})
    assert "must be a 1-D uint8 array" in file_error(tmp_path / "m.npz")


def test_errors_are_hwsim_errors() -> None:
    assert issubclass(ModelFormatError, HwsimError) and issubclass(GraphError, HwsimError)


def test_example_in_docs_loads(tmp_path: Path) -> None:
    """The example JSON in docs/format.md is a valid model once its arrays exist."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "format.md").read_text()
    block = text.split("### Example", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    doc = json.loads(block)
    arrays = {p["key"]: np.zeros(p["shape"], p["dtype"]) for p in doc["params"]}
    arrays["data/calibration/x"] = np.zeros((2, 8, 8, 3), np.float32)
    write_archive(tmp_path / "doc.npz", doc, arrays)
    g = load_model(tmp_path / "doc.npz")
    assert g.tensors["fc"].shape == (1, 10) and g.metadata == {"source": "example"}


def test_python_example_in_docs_runs(tmp_path: Path, monkeypatch) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "format.md").read_text()
    code = text.split("## 10. The same in Python", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/format.md", "exec"), namespace)
    assert (tmp_path / "tiny.npz").exists() and namespace["graph"].tensors["fc"].shape == (1, 10)
