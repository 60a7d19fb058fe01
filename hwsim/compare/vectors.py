"""RTL test vectors: per-layer integer inputs, weights, bias, requantization parameters and expected outputs.

Every tensor is written flattened in its layout's C order (activations NHWC, conv weights OHWI, depthwise
weights as stored ``[C·mult, KH, KW, 1]``, dense weights ``[out, in]``, per-channel vectors along the
channel), as two's-complement (signed) or plain binary (unsigned) elements of the tensor's bit width, packed
into words of ``word_bits`` bits: element ``i`` of a word sits at bits ``[i·b, (i+1)·b)`` (first element in
the lowest bits: "low nibble first" for 4-bit). The last word is padded with zero bits. Formats:

``hex``  one word per line, ``word_bits/4`` lower-case hex digits, nothing else ($readmemh).
``mem``  the same words after a ``//`` comment header and an ``@0`` address line ($readmemh, Xilinx .mem).
``bin``  the words as raw bytes, each word little-endian (so the byte stream is the low-first packing).
``npy``  the unpacked integer array with its shape (no packing).

``manifest.json`` lists, per layer, every file with shape, layout, bits, signedness, word size, word count
and SHA-256, plus the scalar parameters. :func:`read_vectors` parses the files back into exactly the
integer tensors. docs/golden.md is the long form of this.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwsim import __version__
from hwsim.compare.golden import _usual_permissions, file_sha256, layer_outputs
from hwsim.emulate.simulator import QuantizedModel
from hwsim.errors import HwsimError

VECTORS_FORMAT = "hwsim-vectors"
VECTORS_VERSION = 1
FORMATS = ("hex", "mem", "bin", "npy")
_WEIGHTED = ("Conv2D", "DepthwiseConv2D", "Dense")


class VectorsError(HwsimError):
    """A vector folder cannot be read: missing or edited file, malformed manifest."""


# ------------------------------------------------------------------------------------------------------
# Packing


def pack_words(values: np.ndarray, bits: int, word_bits: int) -> np.ndarray:
    """Pack integers of ``bits`` bits into ``word_bits``-bit words, first element in the lowest bits.

    Signed values are stored as two's complement in ``bits`` bits. Returns a 1-D uint64 array.
    """
    if not 1 <= bits <= 64 or word_bits not in (8, 16, 32, 64) or word_bits % bits:
        raise HwsimError(f"packing: element bits {bits} must divide the word size {word_bits} (8, 16, 32 or 64)")
    v = np.asarray(values).ravel().astype(np.int64)
    lo, hi = -(1 << (bits - 1)), (1 << bits) - 1
    if v.size and (v.min() < lo or v.max() > hi):
        raise HwsimError(f"packing: values in [{v.min()}, {v.max()}] do not fit {bits} bits")
    per = word_bits // bits
    n_words = -(-v.size // per)
    u = v.view(np.uint64) & np.uint64((1 << bits) - 1 if bits < 64 else 0xFFFFFFFFFFFFFFFF)
    u = np.concatenate([u, np.zeros(n_words * per - v.size, np.uint64)]).reshape(n_words, per)
    words = np.zeros(n_words, np.uint64)
    for j in range(per):
        words |= u[:, j] << np.uint64(j * bits)
    return words


def unpack_words(words: np.ndarray, bits: int, word_bits: int, count: int, signed: bool) -> np.ndarray:
    """Inverse of :func:`pack_words`: ``count`` elements as int64 (sign-extended when ``signed``)."""
    per = word_bits // bits
    w = np.asarray(words, dtype=np.uint64).reshape(-1, 1)
    shifts = (np.arange(per, dtype=np.uint64) * np.uint64(bits)).reshape(1, -1)
    mask = np.uint64((1 << bits) - 1 if bits < 64 else 0xFFFFFFFFFFFFFFFF)
    u = ((w >> shifts) & mask).ravel()[:count]
    if u.size < count:
        raise VectorsError(f"{u.size} elements in the words, {count} expected")
    v = u.astype(np.int64) if bits < 64 else u.view(np.int64)
    if signed and bits < 64:
        v = np.where(v >= (1 << (bits - 1)), v - (1 << bits), v)
    return v


def words_to_text(words: np.ndarray, word_bits: int) -> str:
    """One word per line in lower-case hex, ``word_bits/4`` digits."""
    digits = word_bits // 4
    return "".join(f"{int(w):0{digits}x}\n" for w in words)


def text_to_words(text: str, word_bits: int, where: str) -> np.ndarray:
    """Words of a hex/mem file (``//`` comments and ``@address`` lines allowed, address must be sequential)."""
    out: list[int] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        for tok in line.split():
            if tok.startswith("@"):
                if int(tok[1:], 16) != len(out):
                    raise VectorsError(f"{where}:{n}: address {tok} is not the next word ({len(out)})")
                continue
            if not re.fullmatch(r"[0-9a-fA-F]+", tok) or len(tok) > word_bits // 4:
                raise VectorsError(f"{where}:{n}: {tok!r} is not a {word_bits}-bit hex word")
            out.append(int(tok, 16))
    return np.array(out, dtype=np.uint64)


# ------------------------------------------------------------------------------------------------------
# Export


@dataclass
class _Tensor:
    role: str
    values: np.ndarray  # integers (float32 vectors are passed as their IEEE-754 bits, encoding "float32")
    bits: int
    signed: bool
    layout: str
    encoding: str = "int"


def _act_tensor(role: str, values: np.ndarray, q) -> _Tensor:
    layout = {4: "NHWC", 2: "NC"}.get(values.ndim, f"{values.ndim}-D, C order")
    return _Tensor(role, values, int(q.bits), q.qmin < 0, layout)


def _layer_tensors(qm: QuantizedModel, p, ints: dict[str, np.ndarray]) -> tuple[list[_Tensor], dict[str, Any]]:
    node, c, tgt = p.node, p.consts, qm.target
    tensors: list[_Tensor] = []
    data_inputs = [t for t in node.inputs if t in ints]
    for i, t in enumerate(data_inputs):
        tensors.append(_act_tensor("x" if len(data_inputs) == 1 else f"x{i}", ints[t], qm.act[t]))
    params: dict[str, Any] = {"attrs": node.attrs}
    if p.mode == "integer" and p.op_kind in _WEIGHTED and "w_int" in c:
        w = c["w_int"]
        layout = {"Conv2D": "OHWI", "DepthwiseConv2D": "OHWI (O = C*multiplier, I = 1)", "Dense": "OI"}[p.op_kind]
        tensors.append(_Tensor("w", w, int(tgt.numerics.weights.bits), True, layout))
        b_bits = 32 if c.get("fix_pos_b") is None else int(tgt.numerics.bias.bits)
        tensors.append(_Tensor("b", c["bias"], b_bits, True, "C"))
        scheme = p.impl.requant.scheme
        rp = dict(p.impl.requant.params)
        params.update(scheme=scheme, requant=rp, x_zero_point=int(c["x_zero_point"]) if "x_zero_point" in c else 0,
                      y_zero_point=int(qm.act[p.output].zero_point), act_min=int(c["act_min"]),
                      act_max=int(c["act_max"]),
                      fused_activation=None if p.fused_activation is None else p.fused_activation.op)
        if scheme in ("fixed_point_double", "fixed_point_single"):
            tensors.append(_Tensor("multiplier", c["M"], 32, True, "C"))
            tensors.append(_Tensor("shift", c["shift"], 32, True, "C"))
        elif scheme == "float_scale":
            m = np.asarray(c["multiplier"], np.float32)
            tensors.append(_Tensor("scale", m.view(np.uint32).astype(np.int64), 32, False, "C", "float32"))
        elif scheme == "pow2_shift":
            params.update(shift_cut=int(c["shift_cut"]), shift_bias=int(c["shift_bias"]),
                          fix_pos_w=int(c["fix_pos_w"]), fix_pos_b=int(c["fix_pos_b"]))
    elif p.mode == "integer" and "params" in c:
        params["kernel_params"] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in c["params"].items()}
    params["quant"] = {t: qm.act[t].to_dict() for t in [*data_inputs, p.output]}
    tensors.append(_act_tensor("y", ints[p.output], qm.act[p.output]))
    return tensors, params


def _json_safe(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def _write_tensor(folder: Path, rel: str, t: _Tensor, fmt: str, word_bits: int, header: str) -> dict[str, Any]:
    path = folder / rel
    entry: dict[str, Any] = {"role": t.role, "shape": list(t.values.shape), "layout": t.layout, "bits": t.bits,
                             "signed": t.signed, "encoding": t.encoding, "format": fmt, "file": rel,
                             "count": int(t.values.size)}
    if fmt == "npy":
        arr = t.values
        if t.encoding == "float32":
            arr = np.asarray(arr, np.int64).astype(np.uint32).view(np.float32)
        np.save(path, np.ascontiguousarray(arr))
        entry["dtype"] = str(arr.dtype)
    else:
        wb = max(word_bits, t.bits if t.bits in (8, 16, 32, 64) else word_bits)
        words = pack_words(t.values, t.bits, wb)
        entry.update(word_bits=wb, words=int(words.size), elements_per_word=wb // t.bits,
                     bit_order="element i of a word at bits [i*bits, (i+1)*bits), first element lowest")
        if fmt == "bin":
            entry["byte_order"] = "little-endian words"
            path.write_bytes(words.astype(f"<u{wb // 8}").tobytes())
        else:
            text = words_to_text(words, wb)
            if fmt == "mem":
                text = header + "@0\n" + text
            path.write_text(text, encoding="ascii")
    entry["sha256"] = file_sha256(path)
    return entry


def export_vectors(qm: QuantizedModel, inputs: np.ndarray, out_dir: str | os.PathLike, *,
                   layers: Sequence[str] | None = None, fmt: str = "hex", word_bits: int = 32,
                   overwrite: bool = False, threads: int = 1, model_sha256: str | None = None) -> dict[str, Any]:
    """Simulate ``qm`` on ``inputs`` and write per-layer test vectors into ``out_dir`` (atomically).

    Parameters
    ----------
    qm : QuantizedModel
        The quantized model (from :func:`hwsim.emulate.simulator.quantize_for_target`).
    inputs : numpy.ndarray
        Float inputs, batch first.
    out_dir : path
        Destination folder, written as a temporary folder next to it and renamed into place.
    layers : sequence of str, optional
        Node names to export; default: every layer that runs (fused activations belong to their producer).
    fmt : str
        ``hex``, ``mem``, ``bin`` or ``npy``.
    word_bits : int
        Word size of packed formats (8, 16, 32, 64); tensors with wider elements use their element width.
    overwrite : bool
        Replace an existing ``out_dir`` that holds vectors.
    threads : int
        Threads of the integer kernels.
    model_sha256 : str, optional
        SHA-256 of the model file, recorded in the manifest.

    Returns
    -------
    dict
        The manifest written.
    """
    if fmt not in FORMATS:
        raise HwsimError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if word_bits not in (8, 16, 32, 64):
        raise HwsimError(f"--word-bits {word_bits}: expected 8, 16, 32 or 64")
    if qm.target.numerics.activations.format != "int":
        raise HwsimError(f"target {qm.target.name}: test vectors need an integer target")
    plans = [p for p in qm.plans if p.mode != "fused"]
    names = [p.node.name for p in plans]
    if layers:
        unknown = [n for n in layers if n not in names]
        if unknown:
            raise HwsimError(f"--layers: no layer {unknown[0]!r}; layers: {', '.join(names)}")
        plans = [p for p in plans if p.node.name in layers]
    ints = {lo.tensor: lo.values for lo in layer_outputs(qm, np.asarray(inputs, np.float32), threads=threads)}
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise VectorsError(f"{out}: already exists; pass --overwrite to replace it")
    if out.exists() and not (out / "manifest.json").is_file():
        raise VectorsError(f"{out}: exists and is not a vector folder; not replaced")
    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        entries = []
        for i, p in enumerate(plans):
            tensors, params = _layer_tensors(qm, p, ints)
            sub = f"{i:03d}_{re.sub(r'[^A-Za-z0-9_.-]', '_', p.node.name)[:60]}"
            (tmp / sub).mkdir()
            files = {}
            for t in tensors:
                header = (f"// hwsim {__version__} test vector: layer {p.node.name}, {t.role}, shape "
                          f"{list(t.values.shape)} {t.layout}, {t.bits}-bit {'signed' if t.signed else 'unsigned'}"
                          f"{' float32 bits' if t.encoding == 'float32' else ''}, low element first\n")
                files[t.role] = _write_tensor(tmp, f"{sub}/{t.role}.{fmt}", t, fmt, word_bits, header)
            entries.append({"name": p.node.name, "op": p.node.op, "op_kind": p.op_kind, "mode": p.mode,
                            "kernel": p.impl.kernel, "output": p.output, "files": files,
                            "params": _json_safe(params)})
        manifest = {"format": VECTORS_FORMAT, "format_version": VECTORS_VERSION, "hwsim_version": __version__,
                    "model": {"name": qm.graph.name, "sha256": model_sha256}, "target": qm.target.name,
                    "samples": len(inputs), "vector_format": fmt, "word_bits": word_bits,
                    "layers": entries}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        _usual_permissions(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


# ------------------------------------------------------------------------------------------------------
# Reading back


@dataclass
class LayerVectors:
    """One layer's vectors as integer tensors (``scale`` vectors as float32), plus its scalar parameters."""

    name: str
    op_kind: str
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


def read_tensor(folder: str | os.PathLike, entry: dict[str, Any]) -> np.ndarray:
    """One vector file back as its integer tensor (verifying the SHA-256 of the file)."""
    path = Path(folder) / entry["file"]
    if not path.is_file():
        raise VectorsError(f"{path}: missing")
    if file_sha256(path) != entry["sha256"]:
        raise VectorsError(f"{path}: SHA-256 differs from the manifest (edited or corrupted)")
    shape, count, bits, signed = tuple(entry["shape"]), int(entry["count"]), int(entry["bits"]), bool(entry["signed"])
    if entry["format"] == "npy":
        arr = np.load(path, allow_pickle=False)
        return arr.reshape(shape)
    wb = int(entry["word_bits"])
    if entry["format"] == "bin":
        words = np.frombuffer(path.read_bytes(), dtype=f"<u{wb // 8}").astype(np.uint64)
    else:
        words = text_to_words(path.read_text(encoding="ascii"), wb, str(path))
    if words.size != int(entry["words"]):
        raise VectorsError(f"{path}: {words.size} words, the manifest says {entry['words']}")
    v = unpack_words(words, bits, wb, count, signed).reshape(shape)
    if entry.get("encoding") == "float32":
        return v.astype(np.uint32).view(np.float32)
    return v.astype(integer_dtype(bits, signed))


def integer_dtype(bits: int, signed: bool) -> np.dtype:
    """The numpy type :func:`read_vectors` returns: the narrowest of the signedness holding ``bits`` bits."""
    width = next(w for w in (8, 16, 32, 64) if w >= bits)
    return np.dtype(f"{'i' if signed else 'u'}{width // 8}")


def read_vectors(folder: str | os.PathLike) -> dict[str, LayerVectors]:
    """Parse a vector folder back into integer tensors, layer by layer (in export order)."""
    folder = Path(folder)
    mf = folder / "manifest.json"
    try:
        doc = json.loads(mf.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VectorsError(f"{mf}: cannot be read ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != VECTORS_FORMAT:
        raise VectorsError(f"{mf}: field 'format' must be {VECTORS_FORMAT!r}")
    if int(doc.get("format_version", 0)) > VECTORS_VERSION:
        raise VectorsError(f"{mf}: format_version {doc.get('format_version')} is newer than this hwsim reads")
    out: dict[str, LayerVectors] = {}
    for e in doc.get("layers", []):
        lv = LayerVectors(e["name"], e["op_kind"], params=e.get("params", {}))
        for role, fe in e["files"].items():
            lv.tensors[role] = read_tensor(folder, fe)
        out[e["name"]] = lv
    return out
