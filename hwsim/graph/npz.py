"""The ``model.npz`` format, version 1: :func:`save_model` and :func:`load_model`.

A model file is a plain numpy archive (``np.savez``), read with ``allow_pickle=False``. The entry
``__graph__.json`` holds the graph as UTF-8 JSON in a uint8 array; every parameter, quantization array and
bundled data array is its own entry, named from the JSON. docs/format.md describes every field.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
import zlib
from typing import Any

import numpy as np

from hwsim.errors import GraphError, ModelFormatError
from hwsim.graph.ir import Graph, Node, TensorSpec
from hwsim.graph.quant import QuantSpec

FORMAT_NAME = "hwsim-model"
FORMAT_VERSION = 1
GRAPH_KEY = "__graph__.json"

_TOP_FIELDS = ("format", "format_version", "name", "inputs", "outputs", "nodes", "params", "quant", "data",
               "metadata")
_SAFE = re.compile(r"^[A-Za-z0-9_.:\-]+$")


# ----------------------------------------------------------------------------------------------------
# Writing


def _key(prefix: str, name: str, index: int) -> str:
    # Readable keys where the name is safe as a zip member name; otherwise the index (with a '#', which
    # never appears in a readable key, so the two kinds cannot collide).
    if _SAFE.match(name) and name not in (".", ".."):
        return f"{prefix}/{name}"
    return f"{prefix}/#{index}"


def graph_to_json(graph: Graph) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The ``__graph__.json`` document of ``graph`` and the archive arrays it refers to.

    The graph is validated first (so attributes carry their defaults and nodes are in topological order).
    """
    graph.validate()
    arrays: dict[str, np.ndarray] = {}
    params = []
    for i, (name, arr) in enumerate(graph.params.items()):
        key = _key("param", name, i)
        arrays[key] = arr
        params.append({"name": name, "key": key, "shape": list(arr.shape), "dtype": str(arr.dtype)})
    quant: dict[str, Any] = {}
    for i, (tensor, spec) in enumerate(graph.quant.items()):
        base = _key("quant", tensor, i)
        entry: dict[str, Any] = dict(spec.scalars())
        for field, arr in spec.arrays().items():
            arrays[f"{base}/{field}"] = arr
            entry[field] = f"{base}/{field}"
        entry.setdefault("fix_pos", None)
        quant[tensor] = entry
    data: dict[str, dict[str, str]] = {}
    for i, (set_name, set_arrays) in enumerate(graph.data.items()):
        base = _key("data", set_name, i)
        data[set_name] = {}
        for j, (aname, arr) in enumerate(set_arrays.items()):
            key = _key(base, aname, j)
            arrays[key] = arr
            data[set_name][aname] = key
    doc = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "name": graph.name,
        "inputs": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in graph.inputs],
        "outputs": list(graph.outputs),
        "nodes": [{"name": n.name, "op": n.op, "inputs": list(n.inputs), "outputs": list(n.outputs),
                   "attrs": n.attrs} for n in graph.nodes],
        "params": params,
        "quant": quant,
        "data": data,
        "metadata": graph.metadata,
    }
    return doc, arrays


def dumps_graph_json(doc: dict[str, Any]) -> bytes:
    """Serialise the JSON document the way :func:`save_model` writes it (deterministic, UTF-8).

    One top-level field per line and one list element (node, parameter, ...) per line, so the JSON of two
    versions of a model diffs line by line.
    """
    def one(v: Any) -> str:
        return json.dumps(v, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))

    lines = []
    for key, value in doc.items():
        if isinstance(value, list) and value:
            body = ",\n".join(f"  {one(v)}" for v in value)
            lines.append(f" {one(key)}: [\n{body}\n ]")
        elif isinstance(value, dict) and value and key in ("quant", "data"):
            body = ",\n".join(f"  {one(k)}: {one(v)}" for k, v in value.items())
            lines.append(f" {one(key)}: {{\n{body}\n }}")
        else:
            lines.append(f" {one(key)}: {one(value)}")
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode("utf-8")


def save_model(graph: Graph, path: str | os.PathLike, *, compress: bool = False) -> None:
    """Write ``graph`` to ``path`` in model.npz format v1, atomically.

    The archive is written to a temporary file in the same directory and moved over ``path`` with
    ``os.replace``, so readers never see a half-written file. ``path`` is used as given (no ``.npz`` is
    appended).

    Parameters
    ----------
    graph : Graph
        The model; validated before writing.
    path : str or PathLike
        Destination file.
    compress : bool
        Use ``np.savez_compressed`` (smaller, slower to load). Readers accept both.
    """
    path = os.fspath(path)
    doc, arrays = graph_to_json(graph)
    payload = {GRAPH_KEY: np.frombuffer(dumps_graph_json(doc), dtype=np.uint8)}
    payload.update({k: np.ascontiguousarray(v) for k, v in arrays.items()})
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            (np.savez_compressed if compress else np.savez)(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ----------------------------------------------------------------------------------------------------
# Reading

_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, RuntimeError)


class _Reader:
    """Reads one archive and turns every problem into a ModelFormatError naming the file and field."""

    def __init__(self, path: str, archive: Any) -> None:
        self.path = path
        self.archive = archive
        self.used: set[str] = {GRAPH_KEY}
        self.members = set(archive.files)

    def fail(self, message: str) -> ModelFormatError:
        return ModelFormatError(f"{self.path}: {message}")

    def array(self, key: Any, what: str) -> np.ndarray:
        if not isinstance(key, str):
            raise self.fail(f"{what}: archive key must be a string, got {key!r}")
        if key not in self.members:
            raise self.fail(f"{what}: archive entry '{key}' is missing")
        try:
            arr = self.archive[key]
        except _READ_ERRORS as exc:
            raise self.fail(f"{what}: archive entry '{key}' cannot be read ({_reason(exc)})") from None
        if arr.dtype.kind == "O":  # pragma: no cover - np.load refuses these with allow_pickle=False
            raise self.fail(f"{what}: archive entry '{key}' is an object array")
        self.used.add(key)
        return arr

    def field(self, obj: Any, name: str, types: type | tuple[type, ...], where: str, *,
              optional: bool = False, default: Any = None) -> Any:
        if not isinstance(obj, dict):
            raise self.fail(f"field '{where}' must be an object, got {_jtype(obj)}")
        if name not in obj:
            if optional:
                return default
            raise self.fail(f"field '{where}.{name}' is missing" if where else f"field '{name}' is missing")
        value = obj[name]
        label = f"{where}.{name}" if where else name
        if not _is_type(value, types):
            raise self.fail(f"field '{label}' must be {_tname(types)}, got {_jtype(value)} {value!r}"[:300])
        return value

    def str_list(self, obj: dict, name: str, where: str) -> list[str]:
        value = self.field(obj, name, list, where)
        for i, v in enumerate(value):
            if not isinstance(v, str):
                raise self.fail(f"field '{where + '.' if where else ''}{name}[{i}]' must be a string, "
                                f"got {_jtype(v)} {v!r}")
        return value

    def int_list(self, obj: dict, name: str, where: str) -> list[int]:
        value = self.field(obj, name, list, where)
        for i, v in enumerate(value):
            if not _is_type(v, int):
                raise self.fail(f"field '{where}.{name}[{i}]' must be an integer, got {_jtype(v)} {v!r}")
        return value


def _is_type(value: Any, types: type | tuple[type, ...]) -> bool:
    types = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool):
        return bool in types
    if type(None) in types and value is None:
        return True
    if float in types and isinstance(value, int):
        return True
    return isinstance(value, tuple(t for t in types if t is not bool))


def _tname(types: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list",
             dict: "an object", type(None): "null"}
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join(names[t] for t in types)


def _jtype(value: Any) -> str:
    return {str: "string", int: "integer", float: "number", bool: "boolean", list: "list", dict: "object",
            type(None): "null"}.get(type(value), type(value).__name__)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "allow_pickle" in text or "pickled" in text:
        return "it holds pickled Python objects, which hwsim never loads"
    return text


def load_model(path: str | os.PathLike) -> Graph:
    """Read a model.npz file and return the validated Graph.

    Raises
    ------
    ModelFormatError
        The file is missing, not an npz archive, truncated or corrupt, holds pickled data, lacks
        ``__graph__.json``, has a JSON field missing or of the wrong type, a parameter whose array is
        missing or differs from its declared shape/dtype, an unreferenced entry, or a newer
        ``format_version``. The message names the file and the field.
    GraphError
        The graph itself is invalid (unknown op, bad attribute, cycle, shape mismatch, NaN/Inf in a
        parameter, ...). The message names the file and the node/tensor.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFormatError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if magic[:2] != b"PK":
        what = "a single .npy array" if magic == b"\x93NUM" else "empty" if not magic else "not a zip archive"
        raise ModelFormatError(f"{path}: not a model.npz archive ({what})")
    try:
        archive = np.load(path, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise ModelFormatError(f"{path}: corrupt or truncated model.npz archive ({_reason(exc)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ModelFormatError(f"{path}: is a single .npy array, not a model.npz archive")
    with archive:
        reader = _Reader(path, archive)
        if GRAPH_KEY not in reader.members:
            raise reader.fail(f"archive entry '{GRAPH_KEY}' is missing (not an hwsim model file)")
        raw = reader.array(GRAPH_KEY, "graph description")
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise reader.fail(f"archive entry '{GRAPH_KEY}' must be a 1-D uint8 array of UTF-8 JSON, got "
                              f"{raw.dtype} with shape {list(raw.shape)}")
        try:
            doc = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise reader.fail(f"archive entry '{GRAPH_KEY}' is not valid UTF-8 JSON ({exc})") from None
        return _graph_from_json(reader, doc)


def _graph_from_json(r: _Reader, doc: Any) -> Graph:
    if not isinstance(doc, dict):
        raise r.fail(f"'{GRAPH_KEY}' must hold a JSON object, got {_jtype(doc)}")
    fmt = r.field(doc, "format", str, "")
    if fmt != FORMAT_NAME:
        raise r.fail(f"field 'format' must be {FORMAT_NAME!r}, got {fmt!r}")
    version = r.field(doc, "format_version", int, "")
    if version > FORMAT_VERSION:
        raise r.fail(f"field 'format_version' is {version}, newer than this hwsim reads ({FORMAT_VERSION}); "
                     f"upgrade hwsim")
    if version < 1:
        raise r.fail(f"field 'format_version' must be >= 1, got {version}")
    unknown = sorted(set(doc) - set(_TOP_FIELDS))
    if unknown:
        raise r.fail(f"unknown top-level field '{unknown[0]}' (allowed: {', '.join(_TOP_FIELDS)})")

    name = r.field(doc, "name", str, "")
    inputs = []
    for i, item in enumerate(r.field(doc, "inputs", list, "")):
        where = f"inputs[{i}]"
        iname = r.field(item, "name", str, where)
        shape = r.int_list(item, "shape", where)
        dtype = r.field(item, "dtype", str, where)
        inputs.append(TensorSpec(iname, tuple(shape), dtype))
    outputs = r.str_list(doc, "outputs", "")

    nodes = []
    for i, item in enumerate(r.field(doc, "nodes", list, "")):
        where = f"nodes[{i}]"
        nname = r.field(item, "name", str, where)
        where = f"nodes[{i}] (node '{nname}')"
        op = r.field(item, "op", str, where)
        ins = r.str_list(item, "inputs", where)
        outs = r.str_list(item, "outputs", where)
        attrs = r.field(item, "attrs", dict, where, optional=True, default={})
        extra = sorted(set(item) - {"name", "op", "inputs", "outputs", "attrs"})
        if extra:
            raise r.fail(f"field '{where}': unknown field '{extra[0]}'")
        nodes.append(Node(nname, op, list(ins), list(outs), dict(attrs)))

    params: dict[str, np.ndarray] = {}
    for i, item in enumerate(r.field(doc, "params", list, "")):
        where = f"params[{i}]"
        pname = r.field(item, "name", str, where)
        where = f"params[{i}] (parameter '{pname}')"
        key = r.field(item, "key", str, where)
        shape = r.int_list(item, "shape", where)
        dtype = r.field(item, "dtype", str, where)
        if pname in params:
            raise r.fail(f"field '{where}': parameter '{pname}' is listed twice")
        arr = r.array(key, f"parameter '{pname}'")
        if list(arr.shape) != list(shape) or str(arr.dtype) != dtype:
            raise r.fail(f"parameter '{pname}': archive entry '{key}' is {arr.dtype} {list(arr.shape)} but "
                         f"field '{where}' declares {dtype} {list(shape)}")
        params[pname] = arr

    quant: dict[str, QuantSpec] = {}
    for tensor, item in r.field(doc, "quant", dict, "", optional=True, default={}).items():
        where = f"quant.{tensor}"
        kw: dict[str, Any] = {
            "bits": r.field(item, "bits", int, where),
            "signed": r.field(item, "signed", bool, where),
            "narrow": r.field(item, "narrow", bool, where),
            "axis": r.field(item, "axis", (int, type(None)), where),
            "group_size": r.field(item, "group_size", (int, type(None)), where),
            "scale_kind": r.field(item, "scale_kind", str, where),
            "dtype": r.field(item, "dtype", str, where),
        }
        for fname in ("scale", "zero_point", "fix_pos"):
            key = r.field(item, fname, (str, type(None)) if fname == "fix_pos" else str, where,
                          optional=fname == "fix_pos")
            kw[fname] = None if key is None else r.array(key, f"quant spec for '{tensor}' field '{fname}'")
        extra = sorted(set(item) - set(kw))
        if extra:
            raise r.fail(f"field '{where}': unknown field '{extra[0]}'")
        try:
            quant[tensor] = QuantSpec(**kw)
        except GraphError as exc:
            raise r.fail(f"quant spec for '{tensor}': {str(exc).removeprefix('QuantSpec: ')}") from None

    data: dict[str, dict[str, np.ndarray]] = {}
    for set_name, entries in r.field(doc, "data", dict, "", optional=True, default={}).items():
        if not isinstance(entries, dict):
            raise r.fail(f"field 'data.{set_name}' must be an object, got {_jtype(entries)}")
        data[set_name] = {}
        for aname, key in entries.items():
            data[set_name][aname] = r.array(key, f"data set '{set_name}' array '{aname}'")

    metadata = r.field(doc, "metadata", dict, "", optional=True, default={})
    leftover = sorted(r.members - r.used)
    if leftover:
        raise r.fail(f"archive entry '{leftover[0]}' is not referenced by '{GRAPH_KEY}'")
    try:
        return Graph(name, inputs, outputs, nodes, params, quant, data, metadata)
    except GraphError as exc:
        raise GraphError(f"{r.path}: {exc}") from None
