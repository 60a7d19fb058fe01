"""Report files: written so that a reader never sees half a file, with inf/nan spelled out."""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path`` and rename it into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_safe(v: Any) -> Any:
    """A float that JSON cannot hold (inf, nan) as the strings "inf", "-inf", "nan"; anything else as is."""
    if isinstance(v, float) and not math.isfinite(v):
        return "inf" if v > 0 else "-inf" if v < 0 else "nan"
    return v


def csv_text(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """CSV with a header of ``columns`` (keys missing from a row are empty, others ignored); inf/nan as text."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: json_safe(r.get(k, "")) for k in columns})
    return buf.getvalue()


def make_run_folder(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir`` (and parents) for a run folder, or raise one HwsimError naming it."""
    from hwsim.errors import HwsimError

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HwsimError(f"--out {out}: cannot create the run folder: {exc.strerror}") from None
    return out
