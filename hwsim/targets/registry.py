"""Find target descriptions, apply ``extends:``, and load resolved targets.

Sources, all read with ``yaml.safe_load``:

1. built-in targets, the ``*.yaml`` files of the package ``hwsim._builtin_targets`` (``targets/`` in the
   source tree);
2. folders the caller names (``extra_dirs``; on the command line ``--target-dir DIR``, repeatable);
3. the entry-point group ``hwsim.targets``: each entry point loads an object that is a path, a list of
   paths, or a callable returning one of those; a path is a folder (its ``*.yaml`` files) or a YAML file.

A target's name is its file name without ``.yaml`` and must equal its ``name:`` key. A name defined by two
sources is an error, unless exactly one of the definitions is a non-built-in file with ``override: true``,
which then replaces the other one. Nothing here reads environment variables.
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

from hwsim.errors import TargetError
from hwsim.targets.schema import Target, build_target, check_top_level

ENTRY_POINT_GROUP = "hwsim.targets"
BUILTIN_PACKAGE = "hwsim._builtin_targets"
_YAML_SUFFIXES = (".yaml", ".yml")
# Keys that belong to one file and are never inherited through extends.
_OWN_KEYS = ("name", "description", "extends", "override")
# A child map that changes one of these keys replaces the parent's map instead of merging into it.
_DISCRIMINATORS = ("kernel", "fallback", "scheme", "format")


@dataclass(frozen=True)
class TargetInfo:
    """One available target, as listed by :func:`list_targets`.

    Attributes
    ----------
    name, family, description : str
        From the resolved target.
    source : str
        ``builtin``, ``user`` or ``entry_point``.
    origin : str
        The folder or entry point it came from (``builtin`` for built-in targets).
    path : str
        The YAML file.
    extends : str or None
        Direct parent.
    """

    name: str
    family: str
    description: str
    source: str
    origin: str
    path: str
    extends: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class _File:
    source: str  # builtin | user | entry_point
    origin: str
    path: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class _Candidate:
    """A target file found but not yet parsed (parsing is the slow part, so it happens on demand)."""

    source: str
    origin: str
    path: str
    read: Callable[[], str]

    def parse(self) -> _File:
        try:
            raw = yaml.safe_load(self.read())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise TargetError(f"{self.path}:{where}: invalid YAML: {problem}") from None
        data = check_top_level(self.path, raw)
        stem = _stem(self.path)
        if data["name"] != stem:
            raise TargetError(f"{self.path}: name: {data['name']!r} must equal the file name {stem!r}")
        return _File(self.source, self.origin, self.path, data)


def _stem(path: str) -> str:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0]


def _file_candidate(path: Path, source: str, origin: str) -> _Candidate:
    return _Candidate(source, origin, str(path), lambda: path.read_text(encoding="utf-8"))


def _builtin_candidates() -> list[_Candidate]:
    from importlib import resources

    out = []
    for entry in sorted(resources.files(BUILTIN_PACKAGE).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(_YAML_SUFFIXES):
            path = str(entry) if isinstance(entry, Path) else f"{BUILTIN_PACKAGE}/{entry.name}"
            out.append(_Candidate("builtin", "builtin", path,
                                  lambda entry=entry: entry.read_text(encoding="utf-8")))
    return out


def _path_candidates(path: Path, source: str, origin: str) -> list[_Candidate]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in _YAML_SUFFIXES and p.is_file())
    elif path.is_file() and path.suffix in _YAML_SUFFIXES:
        files = [path]
    else:
        raise TargetError(f"{origin}: {str(path)!r} is not a folder or a .yaml file")
    return [_file_candidate(f, source, origin) for f in files]


def _entry_point_candidates() -> list[_Candidate]:
    out = []
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        origin = f"entry point {ep.name} ({ep.value})"
        try:
            obj = ep.load()
            if callable(obj):
                obj = obj()
        except Exception as exc:  # a broken plug-in must not hide which one it was
            raise TargetError(f"{origin}: could not load: {type(exc).__name__}: {exc}") from exc
        items = obj if isinstance(obj, (list, tuple)) else [obj]
        for item in items:
            if not isinstance(item, (str, os.PathLike)):
                raise TargetError(f"{origin}: expected a folder path, a YAML path or a list of them, "
                                  f"got {item!r}")
            out.extend(_path_candidates(Path(item), "entry_point", origin))
    return out


class _Catalog:
    """Every target file found, by name; files are parsed when first needed (no state outlives a call)."""

    def __init__(self, extra_dirs: Iterable[str | os.PathLike]):
        found = _builtin_candidates()
        for folder in extra_dirs:
            path = Path(folder)
            if not path.is_dir():
                raise TargetError(f"--target-dir: {str(folder)!r} is not a folder")
            found.extend(_path_candidates(path, "user", str(path)))
        found.extend(_entry_point_candidates())
        self.candidates: dict[str, list[_Candidate]] = {}
        for c in found:
            self.candidates.setdefault(_stem(c.path), []).append(c)
        self._files: dict[str, _File] = {}

    def names(self) -> list[str]:
        return sorted(self.candidates)

    def add(self, f: _File) -> None:
        """Use ``f`` for its name, in place of any file found (a target loaded by path)."""
        self.candidates[f.data["name"]] = []
        self._files[f.data["name"]] = f

    def get(self, name: str) -> _File | None:
        if name in self._files:
            return self._files[name]
        if name not in self.candidates:
            return None
        files = [c.parse() for c in self.candidates[name]]
        chosen = files[0]
        for f in files[1:]:
            new_overrides = f.source != "builtin" and f.data.get("override") is True
            old_overrides = chosen.source != "builtin" and chosen.data.get("override") is True
            if new_overrides == old_overrides:
                hint = ("both set override: true" if new_overrides
                        else "rename one, or set override: true in the user file to replace the other")
                raise TargetError(f"{f.path}: name: target {name!r} is also defined in {chosen.path}; {hint}")
            if new_overrides:
                chosen = f
        self._files[name] = chosen
        return chosen


def _merge(parent: Any, child: Any) -> Any:
    """Deep-merge ``child`` into ``parent``: maps merge key by key, lists and scalars are replaced,
    ``null`` removes a key, and a map whose discriminator changes is replaced whole."""
    if not (isinstance(parent, dict) and isinstance(child, dict)):
        return child
    for key in _DISCRIMINATORS:
        if key in child and key in parent and child[key] != parent[key]:
            return {k: v for k, v in child.items() if v is not None}
    if ("kernel" in child and "fallback" in parent) or ("fallback" in child and "kernel" in parent):
        return {k: v for k, v in child.items() if v is not None}
    out = dict(parent)
    for key, value in child.items():
        if value is None:
            out.pop(key, None)
        elif key in out:
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _resolve_raw(f: _File, table: _Catalog, chain: tuple[str, ...]) -> dict[str, Any]:
    data = dict(f.data)
    parent_name = data.get("extends")
    if parent_name is None:
        return data
    if parent_name in chain or parent_name == data["name"]:
        cycle = " -> ".join((*chain, data["name"], parent_name))
        raise TargetError(f"{f.path}: extends: cycle {cycle}")
    parent = table.get(parent_name)
    if parent is None:
        raise TargetError(f"{f.path}: extends: unknown target {parent_name!r}; available: "
                          f"{', '.join(table.names())}")
    base = _resolve_raw(parent, table, (*chain, data["name"]))
    base = {k: v for k, v in base.items() if k not in _OWN_KEYS}
    own = {k: v for k, v in data.items() if k in _OWN_KEYS}
    merged = _merge(base, {k: v for k, v in data.items() if k not in _OWN_KEYS})
    merged.update(own)
    return merged


def _build(f: _File, table: _Catalog) -> Target:
    # Parents are built (validated) first, so an error is always reported in the file that causes it.
    _resolve_raw(f, table, ())  # raises on cycles and unknown parents before recursing
    parent = f.data.get("extends")
    if parent is not None:
        _build(table.get(parent), table)
    merged = _resolve_raw(f, table, ())
    origin = f.source if f.source == "builtin" else f"{f.source}: {f.origin}"
    return build_target(f.path, merged, source=origin)


def list_targets(extra_dirs: Iterable[str | os.PathLike] = ()) -> list[TargetInfo]:
    """All available targets, resolved and validated, sorted by name.

    Parameters
    ----------
    extra_dirs : iterable of path
        User folders of ``*.yaml`` target files, in addition to the built-in ones and entry points.

    Raises
    ------
    TargetError
        Any file is invalid, or a name is defined twice without ``override: true``.
    """
    table = _Catalog(tuple(extra_dirs))
    out = []
    for name in table.names():
        f = table.get(name)
        target = _build(f, table)
        out.append(TargetInfo(name=name, family=target.family, description=target.description,
                              source=f.source, origin=f.origin, path=f.path, extends=target.extends))
    return out


def load_target(name_or_path: str | os.PathLike, extra_dirs: Iterable[str | os.PathLike] = ()) -> Target:
    """Load one resolved target (``extends:`` applied, defaults filled, validated).

    Parameters
    ----------
    name_or_path : str or path
        A target name (built-in, from ``extra_dirs`` or from an entry point), or the path of a YAML file;
        a file's ``extends:`` resolves against the available targets.
    extra_dirs : iterable of path
        User folders of ``*.yaml`` target files.

    Raises
    ------
    TargetError
        Unknown name (the message lists the available ones), or an invalid description.
    """
    table = _Catalog(tuple(extra_dirs))
    text = os.fspath(name_or_path)
    if text.endswith(_YAML_SUFFIXES) or os.sep in text or (os.altsep and os.altsep in text):
        path = Path(text)
        if not path.is_file():
            raise TargetError(f"{text}: no such target file")
        f = _file_candidate(path, "user", str(path.parent)).parse()
        table.add(f)
        return _build(f, table)
    f = table.get(text)
    if f is None:
        raise TargetError(f"unknown target {text!r}; available: {', '.join(table.names())}")
    return _build(f, table)
