"""Conversions between hwsim graphs and other model formats (no arithmetic here).

- :func:`hwsim.frontends.onnx_import.import_onnx`: ONNX (float, QDQ, QOperator) → graph; NCHW converted to
  NHWC once at the edge.
- :func:`hwsim.frontends.tflite.import_tflite`: TFLite (int8 full-integer, float16, float) → graph.
- :func:`hwsim.frontends.onnx_export.export_onnx`: float graph → ONNX.
- :func:`load_any`: a model file of any supported kind, by suffix.

Optional dependencies (onnx, ai-edge-litert) are imported only when a conversion runs; without them the error
names the extra to install.
"""

from __future__ import annotations

import os
from pathlib import Path

from hwsim.errors import HwsimError

MODEL_SUFFIXES = (".npz", ".onnx", ".tflite")


def load_any(path: str | os.PathLike, *, input_shapes: dict[str, tuple[int, ...]] | None = None):
    """Read ``path`` as an hwsim graph: ``.npz`` (hwsim's format), ``.onnx`` or ``.tflite`` (imported).

    Parameters
    ----------
    path : path-like
        The model file.
    input_shapes : dict, optional
        Concrete shapes for dynamic ONNX inputs, in the model's own layout.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        from hwsim.frontends.onnx_import import import_onnx

        if not p.is_file():
            raise HwsimError(f"{p}: no such file")
        return import_onnx(p, input_shapes=input_shapes)
    if input_shapes:
        raise HwsimError("input shapes apply to ONNX models only")
    if suffix == ".tflite":
        from hwsim.frontends.tflite import import_tflite

        if not p.is_file():
            raise HwsimError(f"{p}: no such file")
        return import_tflite(p)
    from hwsim.graph import load_model

    return load_model(p)
