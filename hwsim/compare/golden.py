"""Golden regression bundles: record every layer's integers once, check later runs against them.

A bundle is a folder (format in docs/golden.md)::

    DIR/manifest.json      what was recorded, hashes, the resolved target, the acceptance policy
    DIR/model.npz          the quantized model frozen (QuantizedModel.to_graph()), what a check simulates
    DIR/inputs.npy         float inputs (batch first)
    DIR/calibration.npy    calibration inputs (float models only; used by a check with --model)
    DIR/layers/NNN_name.npy  integer outputs of every layer, in execution order

:func:`record_golden` writes the bundle atomically (a temporary folder next to ``DIR``, then a rename) and
refuses to replace an existing folder unless ``update=True``. :func:`check_golden` re-simulates the frozen
model on the target and judges every layer with the bundle's :class:`Policy`; a change in the resolved
target description is a failure of its own. Exit-code contract of ``hwsim golden check``: 0 pass, 1 fail
(a layer outside the policy, a golden file that no longer matches its recorded hash, a changed target),
2 the check could not run (:class:`BundleError` or another :class:`hwsim.errors.HwsimError`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwsim import __version__
from hwsim.emulate.data import resolve_data
from hwsim.emulate.simulator import QuantizedModel, quantize_for_target, simulate_all
from hwsim.errors import HwsimError
from hwsim.graph import Graph, load_model, save_model
from hwsim.targets import Target, load_target

BUNDLE_FORMAT = "hwsim-golden"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
# Keys of the resolved target that do not change integers: not compared by a check.
_TARGET_IGNORED = ("source", "description", "cost")


class BundleError(HwsimError):
    """A golden bundle cannot be used: missing, incomplete, malformed, or a file it simulates is corrupt."""


# ------------------------------------------------------------------------------------------------------
# Hashes


def array_sha256(a: np.ndarray) -> str:
    """SHA-256 of an integer array's elements: C order, little-endian, the array's own dtype width.

    The npy header is not part of the hash, so the hash names the integers, not the file.
    """
    a = np.ascontiguousarray(a)
    return hashlib.sha256(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()).hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------------
# Differences and acceptance policies


def histogram_text(hist: dict[int, int], limit: int = 8) -> str:
    """``{-1: 3, +1: 5}`` as text, at most ``limit`` most frequent entries (in order of Δ)."""
    top = sorted(sorted(hist.items(), key=lambda kv: -kv[1])[:limit])
    more = f", ... {len(hist) - len(top)} more" if len(hist) > len(top) else ""
    return ", ".join(f"{d:+d}: {n}" for d, n in top) + more


@dataclass(frozen=True)
class DiffSummary:
    """How an actual integer tensor differs from the expected one (Δ = actual − expected, in LSB)."""

    elements: int
    differing: int
    max_abs_diff: int
    at_one_lsb: int
    beyond_one_lsb: int
    histogram: dict[int, int]  # Δ → count, Δ ≠ 0 (the 16 most frequent values)
    first_index: tuple[int, ...] | None
    first_expected: int | None
    first_actual: int | None

    @property
    def percent_differing(self) -> float:
        return 100.0 * self.differing / self.elements if self.elements else 0.0

    def describe(self) -> str:
        if self.differing == 0:
            return f"all {self.elements} elements identical"
        hist = histogram_text(self.histogram)
        return (f"{self.differing} of {self.elements} elements differ ({self.percent_differing:.3g}%), "
                f"max |Δ| {self.max_abs_diff} LSB, Δ histogram {{{hist}}}; first at index {list(self.first_index)}: "
                f"expected {self.first_expected}, got {self.first_actual}")

    def to_dict(self) -> dict[str, Any]:
        return {"elements": self.elements, "differing": self.differing, "max_abs_diff": self.max_abs_diff,
                "at_one_lsb": self.at_one_lsb, "beyond_one_lsb": self.beyond_one_lsb,
                "histogram": {str(k): v for k, v in sorted(self.histogram.items())},
                "first_index": None if self.first_index is None else list(self.first_index),
                "first_expected": self.first_expected, "first_actual": self.first_actual}


_HIST_MAX = 16


def diff_summary(actual: np.ndarray, expected: np.ndarray) -> DiffSummary:
    """Element-wise comparison of two integer tensors of the same shape."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        raise ValueError(f"shapes differ: actual {actual.shape}, expected {expected.shape}")
    delta = actual.astype(np.int64) - expected.astype(np.int64)
    nz = np.flatnonzero(delta)
    if nz.size == 0:
        return DiffSummary(int(delta.size), 0, 0, 0, 0, {}, None, None, None)
    values, counts = np.unique(delta.ravel()[nz], return_counts=True)
    if values.size > _HIST_MAX:  # keep the most frequent differences
        keep = np.sort(np.argsort(-counts, kind="stable")[:_HIST_MAX])
        values, counts = values[keep], counts[keep]
    absd = np.abs(delta.ravel()[nz])
    first = np.unravel_index(int(nz[0]), delta.shape)
    return DiffSummary(int(delta.size), int(nz.size), int(absd.max()), int(np.count_nonzero(absd == 1)),
                       int(np.count_nonzero(absd > 1)), {int(v): int(c) for v, c in zip(values, counts)},
                       tuple(int(i) for i in first), int(expected[first]), int(actual[first]))


@dataclass(frozen=True)
class Verdict:
    """A policy's judgement of one tensor."""

    passed: bool
    reason: str = ""


class Policy:
    """An acceptance policy: decides whether an actual integer tensor is close enough to the golden one."""

    spec: str = ""

    def judge(self, actual: np.ndarray, expected: np.ndarray, summary: DiffSummary, *,
              is_output: bool) -> Verdict:  # pragma: no cover - abstract
        raise NotImplementedError

    def __str__(self) -> str:
        return self.spec


@dataclass(frozen=True)
class BitExact(Policy):
    """Every element identical (the default)."""

    @property
    def spec(self) -> str:  # type: ignore[override]
        return "bit-exact"

    def judge(self, actual, expected, summary, *, is_output):
        return Verdict(summary.differing == 0, "" if summary.differing == 0 else "not bit-exact")


@dataclass(frozen=True)
class LsbTolerance(Policy):
    """At most ``max_percent`` % of the elements at ±1 LSB, and none further off."""

    max_percent: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_percent <= 100.0:
            raise HwsimError(f"policy lsb1: percentage must be in [0, 100], got {self.max_percent}")

    @property
    def spec(self) -> str:  # type: ignore[override]
        return f"lsb1:{self.max_percent:g}%"

    def judge(self, actual, expected, summary, *, is_output):
        if summary.beyond_one_lsb:
            return Verdict(False, f"{summary.beyond_one_lsb} elements beyond ±1 LSB (max |Δ| {summary.max_abs_diff})")
        pct = 100.0 * summary.at_one_lsb / summary.elements if summary.elements else 0.0
        if pct > self.max_percent:
            return Verdict(False, f"{pct:.3g}% of elements at ±1 LSB, more than {self.max_percent:g}%")
        return Verdict(True)


@dataclass(frozen=True)
class TopKAgreement(Policy):
    """Graph outputs: for at least ``min_percent`` % of the rows (last axis = classes) the set of the k
    largest codes equals the golden one (ties: the lower index ranks first). Other layers are reported,
    not judged."""

    k: int
    min_percent: float

    def __post_init__(self) -> None:
        if self.k < 1:
            raise HwsimError(f"policy top-k: k must be >= 1, got {self.k}")
        if not 0.0 <= self.min_percent <= 100.0:
            raise HwsimError(f"policy top-k: percentage must be in [0, 100], got {self.min_percent}")

    @property
    def spec(self) -> str:  # type: ignore[override]
        return f"top{self.k}:{self.min_percent:g}%"

    def agreement(self, actual: np.ndarray, expected: np.ndarray) -> float:
        """Fraction of rows whose top-k index sets agree."""
        c = actual.shape[-1]
        k = min(self.k, c)
        a = np.sort(np.argsort(-actual.reshape(-1, c).astype(np.int64), axis=1, kind="stable")[:, :k], axis=1)
        e = np.sort(np.argsort(-expected.reshape(-1, c).astype(np.int64), axis=1, kind="stable")[:, :k], axis=1)
        return float(np.mean(np.all(a == e, axis=1))) if a.shape[0] else 1.0

    def judge(self, actual, expected, summary, *, is_output):
        if not is_output:
            return Verdict(True, "not judged (a top-k policy judges graph outputs)" if summary.differing else "")
        pct = 100.0 * self.agreement(actual, expected)
        if pct + 1e-9 < self.min_percent:
            return Verdict(False, f"top-{self.k} agreement {pct:.4g}%, below {self.min_percent:g}%")
        return Verdict(True)


_SPEC = re.compile(r"^(?:(?P<exact>bit-?exact)|lsb1:(?P<lsb>[0-9.]+)%?|top(?P<k>[0-9]+):(?P<top>[0-9.]+)%?)$")


def parse_policy(spec: str | Policy) -> Policy:
    """Policy from its text form: ``bit-exact``, ``lsb1:N%`` (≤ N % of elements at ±1 LSB, none beyond) or
    ``topK:X%`` (top-K agreement of the graph outputs ≥ X %)."""
    if isinstance(spec, Policy):
        return spec
    m = _SPEC.match(str(spec).strip().lower())
    if m is None:
        raise HwsimError(f"policy {spec!r}: expected 'bit-exact', 'lsb1:N%' or 'topK:X%'")
    try:
        if m["exact"]:
            return BitExact()
        if m["lsb"] is not None:
            return LsbTolerance(float(m["lsb"]))
        return TopKAgreement(int(m["k"]), float(m["top"]))
    except ValueError:
        raise HwsimError(f"policy {spec!r}: bad number") from None


# ------------------------------------------------------------------------------------------------------
# Simulation shared by record and check


@dataclass
class LayerOutput:
    """One recorded tensor: a layer's integer output (or the quantized graph input)."""

    name: str  # node name (graph input: the input tensor name)
    tensor: str
    op: str
    fused_activation: str | None
    is_output: bool
    values: np.ndarray


def layer_outputs(qm: QuantizedModel, x: np.ndarray, *, threads: int = 1) -> list[LayerOutput]:
    """Every integer tensor of a simulation of ``qm`` on ``x``, in execution order (graph inputs first)."""
    ints = simulate_all(qm, x, threads=threads)
    g = qm.graph
    out = [LayerOutput(t.name, t.name, "Quantize", None, t.name in g.outputs, ints[t.name]) for t in g.inputs]
    for p in qm.plans:
        if p.mode == "fused":
            continue
        out.append(LayerOutput(p.node.name, p.output, p.node.op,
                               p.fused_activation.op if p.fused_activation is not None else None,
                               p.output in g.outputs, ints[p.output]))
    return out


def _check_integer_target(target: Target) -> None:
    if target.numerics.activations.format != "int":
        raise HwsimError(f"target {target.name}: golden bundles record integers; this target computes in float")


def target_description(target: Target) -> dict[str, Any]:
    """The resolved target as stored in a manifest (``Target.to_dict(all_ops=True)``, JSON-safe)."""
    return json.loads(json.dumps(target.to_dict(all_ops=True)))


def target_differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Paths where two resolved target descriptions differ, ignoring keys that do not change integers."""
    diffs: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                if not path and k in _TARGET_IGNORED:
                    continue
                p = f"{path}.{k}" if path else k
                if k not in a:
                    diffs.append(f"{p}: not recorded, now {b[k]!r}")
                elif k not in b:
                    diffs.append(f"{p}: recorded {a[k]!r}, now absent")
                else:
                    walk(a[k], b[k], p)
        elif a != b:
            diffs.append(f"{path}: recorded {a!r}, now {b!r}")

    walk(recorded, current, "")
    return diffs


# ------------------------------------------------------------------------------------------------------
# Record


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:60] or "_"


def _read_manifest(path: Path) -> dict[str, Any]:
    mf = path / MANIFEST
    if not mf.is_file():
        raise BundleError(f"{path}: not a golden bundle ({MANIFEST} is missing)")
    try:
        doc = json.loads(mf.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{mf}: cannot be read as JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{mf}: field 'format' must be {BUNDLE_FORMAT!r}")
    version = doc.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise BundleError(f"{mf}: field 'format_version' must be a positive integer")
    if version > BUNDLE_VERSION:
        raise BundleError(f"{mf}: format_version {version} is newer than this hwsim reads ({BUNDLE_VERSION})")
    for key, typ in (("layers", list), ("files", dict), ("target", dict), ("policy", str)):
        if not isinstance(doc.get(key), typ):
            raise BundleError(f"{mf}: field '{key}' is missing or not a {typ.__name__}")
    return doc


def record_golden(model: str | os.PathLike, target: Target, out_dir: str | os.PathLike, *,
                  inputs: np.ndarray | None = None, calibration: np.ndarray | None = None,
                  limit: int | None = None, policy: str | Policy | None = None, update: bool = False,
                  threads: int = 1, target_arg: str | None = None) -> dict[str, Any]:
    """Record a golden bundle of ``model`` (a model.npz path) on ``target`` into ``out_dir``.

    Parameters
    ----------
    model : path
        A float or pre-quantized model.npz; its file hash goes into the manifest.
    target : Target
        The resolved target (must compute in integers).
    out_dir : path
        The bundle folder. Written into a temporary folder next to it and renamed into place.
    inputs : numpy.ndarray, optional
        Float inputs, batch first; default: the model's bundled ``evaluation`` set.
    calibration : numpy.ndarray, optional
        Calibration inputs of a float model; default: the bundled ``calibration`` set, else ``inputs``.
    limit : int, optional
        Keep at most this many inputs and calibration samples (the rule of ``hwsim run --limit``).
    policy : str or Policy, optional
        Acceptance policy stored in the manifest; default ``bit-exact`` (with ``update``: the replaced
        bundle's policy).
    update : bool
        Replace an existing bundle. Without it an existing ``out_dir`` is an error; with it, ``out_dir``
        must be a golden bundle (nothing else is ever replaced).
    threads : int
        Threads of the integer kernels.
    target_arg : str, optional
        How the target was named (name or YAML path), stored so a check can load it again.

    Returns
    -------
    dict
        The manifest written.
    """
    out = Path(out_dir)
    if out.exists() or out.is_symlink():
        if not update:
            raise BundleError(f"{out}: already exists; pass --update (update=True) to replace a golden bundle")
        old = _read_manifest(out)  # refuses to replace anything that is not a bundle
        if policy is None:
            policy = old["policy"]
    pol = parse_policy(policy or "bit-exact")
    _check_integer_target(target)
    model_path = Path(model)
    graph = load_model(model_path)
    rd = resolve_data(graph, inputs=inputs, calibration=calibration, limit=limit)
    inputs = rd.inputs
    cal = None if graph.quant else rd.calibration  # a pre-quantized model is not calibrated
    qm = quantize_for_target(graph, target, cal)
    f = qm.to_graph()
    # Bundled data sets stay in the source model; the bundle keeps its own inputs.
    frozen = Graph(f.name, f.inputs, f.outputs, f.nodes, f.params, f.quant, {}, f.metadata)

    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        save_model(frozen, tmp / "model.npz")
        # The golden integers come from the frozen file itself, so that a check simulates exactly what
        # was recorded; they must equal the integers of the model before freezing.
        fq = quantize_for_target(load_model(tmp / "model.npz"), target)
        layers = layer_outputs(fq, inputs, threads=threads)
        direct = {lo.tensor: lo.values for lo in layer_outputs(qm, inputs, threads=threads)}
        for lo in layers:
            if not np.array_equal(direct.get(lo.tensor), lo.values):
                raise HwsimError(f"layer '{lo.name}': the frozen model gives different integers than the model "
                                 "before freezing (QuantizedModel.to_graph is not faithful here); not recorded")
        np.save(tmp / "inputs.npy", inputs)
        files = {"model": {"path": "model.npz", "sha256": file_sha256(tmp / "model.npz")},
                 "inputs": {"path": "inputs.npy", "sha256": array_sha256(inputs), "shape": list(inputs.shape),
                            "dtype": "float32"}}
        if cal is not None:
            np.save(tmp / "calibration.npy", cal)
            files["calibration"] = {"path": "calibration.npy", "sha256": array_sha256(cal),
                                    "shape": list(cal.shape), "dtype": "float32"}
        (tmp / "layers").mkdir()
        entries = []
        for i, lo in enumerate(layers):
            rel = f"layers/{i:03d}_{_safe(lo.name)}.npy"
            np.save(tmp / rel, lo.values)
            entries.append({"name": lo.name, "tensor": lo.tensor, "op": lo.op,
                            "fused_activation": lo.fused_activation, "is_output": lo.is_output, "file": rel,
                            "shape": list(lo.values.shape), "dtype": str(lo.values.dtype),
                            "sha256": array_sha256(lo.values)})
        manifest = {
            "format": BUNDLE_FORMAT,
            "format_version": BUNDLE_VERSION,
            "hwsim_version": __version__,
            "model": {"name": graph.name, "file": model_path.name, "sha256": file_sha256(model_path),
                      "prequantized": bool(graph.quant)},
            "target_arg": target_arg or target.name,
            "policy": pol.spec,
            "check_uses": "frozen model (model.npz); --model re-quantizes with calibration.npy",
            "samples": len(inputs),
            "calibration_samples": 0 if cal is None else len(cal),
            "fingerprint": hashlib.sha256("".join(e["sha256"] for e in entries).encode()).hexdigest(),
            "files": files,
            "layers": entries,
            "target": target_description(target),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        _usual_permissions(tmp)
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _usual_permissions(folder: Path) -> None:
    # mkdtemp/mkstemp create owner-only entries; a bundle is shared like any file the user writes.
    umask = os.umask(0)
    os.umask(umask)
    for p in [folder, *folder.rglob("*")]:
        p.chmod((0o777 if p.is_dir() else 0o666) & ~umask)


def _move_into_place(tmp: Path, out: Path) -> None:
    if not out.exists():
        try:
            os.rename(tmp, out)
        except OSError as exc:  # another writer created it meanwhile
            raise BundleError(f"{out}: cannot move the new bundle into place ({exc.strerror})") from None
        return
    # Replace: move the old bundle aside first, so a failure leaves either the old or the new one.
    aside = Path(tempfile.mkdtemp(dir=out.absolute().parent, prefix=f".{out.name}.", suffix=".old"))
    os.rmdir(aside)
    os.rename(out, aside)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(aside, out)
        raise
    shutil.rmtree(aside, ignore_errors=True)


# ------------------------------------------------------------------------------------------------------
# Check


@dataclass
class LayerResult:
    """Judgement of one recorded tensor."""

    name: str
    tensor: str
    file: str
    passed: bool
    reason: str
    summary: DiffSummary | None

    def describe(self) -> str:
        parts = [f"layer '{self.name}' (tensor '{self.tensor}', {self.file}): {'pass' if self.passed else 'FAIL'}"]
        if self.reason:
            parts.append(self.reason)
        if self.summary is not None and self.summary.differing:
            parts.append(self.summary.describe())
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tensor": self.tensor, "file": self.file, "passed": self.passed,
                "reason": self.reason, "diff": None if self.summary is None else self.summary.to_dict()}


@dataclass
class CheckResult:
    """Outcome of :func:`check_golden`."""

    bundle: str
    target: str
    policy: str
    layers: list[LayerResult]
    target_changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.target_changes and all(r.passed for r in self.layers)

    @property
    def first_failure(self) -> LayerResult | None:
        return next((r for r in self.layers if not r.passed), None)

    def describe(self) -> str:
        """A short human summary: verdict, target changes, the first failing layer with its diff."""
        verdict = "PASS" if self.passed else "FAIL"
        passing = sum(r.passed for r in self.layers)
        head = (f"golden {self.bundle} on {self.target} (policy {self.policy}): {verdict}, {passing}/"
                f"{len(self.layers)} layers pass")
        lines = [head]
        if self.target_changes:
            lines.append(f"target description changed since recording ({len(self.target_changes)} differences):")
            lines += [f"  {d}" for d in self.target_changes[:10]]
        first = self.first_failure
        if first is not None:
            lines.append("first failing " + first.describe())
            others = [r.name for r in self.layers if not r.passed][1:]
            if others:
                lines.append(f"also failing: {', '.join(others)}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        first = self.first_failure
        return {"bundle": self.bundle, "target": self.target, "policy": self.policy, "passed": self.passed,
                "first_failing_layer": None if first is None else first.name,
                "target_changes": self.target_changes, "notes": self.notes,
                "layers": [r.to_dict() for r in self.layers]}


def _load_npy(path: Path, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise BundleError(f"{path}: {what} is missing (incomplete bundle)") from None
    except (ValueError, OSError, EOFError) as exc:
        raise BundleError(f"{path}: {what} cannot be read ({exc})") from None


def _inside(bundle: Path, rel: str, field_name: str) -> Path:
    # Manifest paths are relative and stay inside the bundle: a check never reads elsewhere.
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts:
        raise BundleError(f"{bundle / MANIFEST}: field '{field_name}' must be a path inside the bundle, got {rel!r}")
    return bundle / p


def _file_entry(doc: dict[str, Any], key: str, bundle: Path) -> tuple[Path, dict[str, Any]]:
    entry = doc["files"].get(key)
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not isinstance(entry.get("sha256"), str):
        raise BundleError(f"{bundle / MANIFEST}: field 'files.{key}' is missing or malformed")
    return _inside(bundle, entry["path"], f"files.{key}.path"), entry


def load_bundle(bundle_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a bundle's manifest: every listed file present, the model and inputs intact.

    Raises
    ------
    BundleError
        Missing manifest or file, malformed field, or a model/input file whose SHA-256 differs from the
        manifest (layer files are checked by :func:`check_golden`, where a mismatch fails that layer).
    """
    bundle = Path(bundle_dir)
    if not bundle.is_dir():
        raise BundleError(f"{bundle}: no such golden bundle folder")
    doc = _read_manifest(bundle)
    model_path, m = _file_entry(doc, "model", bundle)
    if not model_path.is_file():
        raise BundleError(f"{model_path}: frozen model is missing (incomplete bundle)")
    if file_sha256(model_path) != m["sha256"]:
        raise BundleError(f"{model_path}: SHA-256 differs from the manifest (corrupt or edited bundle)")
    for key in ("inputs", "calibration"):
        if key not in doc["files"]:
            if key == "inputs":
                raise BundleError(f"{bundle / MANIFEST}: field 'files.inputs' is missing")
            continue
        path, e = _file_entry(doc, key, bundle)
        if array_sha256(_load_npy(path, key)) != e["sha256"]:
            raise BundleError(f"{path}: SHA-256 of the {key} differs from the manifest (corrupt or edited bundle)")
    for i, e in enumerate(doc["layers"]):
        if not isinstance(e, dict) or not all(isinstance(e.get(k), str) for k in ("name", "tensor", "file", "sha256",
                                                                                   "dtype")):
            raise BundleError(f"{bundle / MANIFEST}: field 'layers[{i}]' is malformed")
        if not _inside(bundle, e["file"], f"layers[{i}].file").is_file():
            raise BundleError(f"{bundle / e['file']}: output of layer '{e['name']}' is missing (incomplete bundle)")
    return doc


def _resolve_target(doc: dict[str, Any], target: Target | str | None,
                    target_dirs: Iterable[str | os.PathLike]) -> Target:
    if isinstance(target, Target):
        return target
    name = target or doc.get("target_arg") or doc["target"].get("name")
    return load_target(str(name), extra_dirs=tuple(target_dirs))


def check_golden(bundle_dir: str | os.PathLike, *, target: Target | str | None = None,
                 model: str | os.PathLike | Graph | None = None, policy: str | Policy | None = None,
                 target_dirs: Sequence[str | os.PathLike] = (), threads: int = 1) -> CheckResult:
    """Re-simulate a golden bundle and judge every recorded layer.

    Parameters
    ----------
    bundle_dir : path
        The bundle folder.
    target : Target or str, optional
        Target to check on; default: the target the bundle was recorded on, loaded again by the name (or
        YAML path) recorded. Its resolved description is compared with the recorded one: any difference
        in numerics or ops fails the check.
    model : path or Graph, optional
        Check this model instead of the frozen one: a float model is re-quantized with the recorded
        calibration inputs, so calibration changes show up too.
    policy : str or Policy, optional
        Override of the bundle's acceptance policy.
    target_dirs : paths
        Extra folders of user target YAML files.
    threads : int
        Threads of the integer kernels.

    Raises
    ------
    BundleError
        The bundle cannot be used (see :func:`load_bundle`).
    """
    bundle = Path(bundle_dir)
    doc = load_bundle(bundle)
    pol = parse_policy(policy if policy is not None else doc["policy"])
    tgt = _resolve_target(doc, target, target_dirs)
    _check_integer_target(tgt)
    notes: list[str] = []
    if doc.get("hwsim_version") != __version__:
        notes.append(f"recorded with hwsim {doc.get('hwsim_version')}, checked with {__version__}")
    inputs = _load_npy(_file_entry(doc, "inputs", bundle)[0], "inputs")
    if model is None:
        graph = load_model(_file_entry(doc, "model", bundle)[0])
        qm = quantize_for_target(graph, tgt)
    else:
        graph = model if isinstance(model, Graph) else load_model(model)
        if not isinstance(model, Graph) and file_sha256(model) != doc.get("model", {}).get("sha256"):
            notes.append(f"model file {model} differs from the recorded one (SHA-256)")
        cal = None
        if not graph.quant:
            if "calibration" not in doc["files"]:
                raise BundleError(f"{bundle}: recorded from a pre-quantized model; it has no calibration inputs "
                                  "to re-quantize a float --model with")
            cal = _load_npy(_file_entry(doc, "calibration", bundle)[0], "calibration")
        qm = quantize_for_target(graph, tgt, cal)
    actual = {lo.tensor: lo for lo in layer_outputs(qm, inputs, threads=threads)}
    results: list[LayerResult] = []
    for e in doc["layers"]:
        path = bundle / e["file"]
        expected = _load_npy(path, f"output of layer '{e['name']}'")
        if str(expected.dtype) != e["dtype"] or list(expected.shape) != list(e.get("shape", [])):
            raise BundleError(f"{path}: layer '{e['name']}' is {expected.dtype} {list(expected.shape)}, the manifest "
                              f"says {e['dtype']} {e.get('shape')} (corrupt bundle)")
        reasons = []
        intact = array_sha256(expected) == e["sha256"]
        if not intact:
            reasons.append("golden file differs from the SHA-256 recorded in the manifest (edited or corrupted "
                           "after recording)")
        lo = actual.get(e["tensor"])
        if lo is None:
            results.append(LayerResult(e["name"], e["tensor"], e["file"], False,
                                       "; ".join(reasons + ["the model no longer produces this tensor"]), None))
            continue
        if lo.values.shape != expected.shape:
            results.append(LayerResult(e["name"], e["tensor"], e["file"], False, "; ".join(
                reasons + [f"shape {list(lo.values.shape)}, recorded {list(expected.shape)}"]), None))
            continue
        summary = diff_summary(lo.values, expected)
        verdict = pol.judge(lo.values, expected, summary, is_output=bool(e.get("is_output")))
        if verdict.reason:
            reasons.append(verdict.reason)
        results.append(LayerResult(e["name"], e["tensor"], e["file"], intact and verdict.passed, "; ".join(reasons),
                                   summary))
    changes = target_differences(doc["target"], target_description(tgt))
    return CheckResult(str(bundle), tgt.name, pol.spec, results, changes, notes)
