"""Which inputs a run uses: explicit arrays, or the data sets bundled in the model file."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError
from hwsim.graph import Graph


@dataclass(frozen=True)
class RunData:
    """Evaluation inputs (batch first), calibration inputs and optional labels, all checked against the graph."""

    inputs: np.ndarray
    calibration: np.ndarray
    labels: np.ndarray | None


def resolve_data(graph: Graph, *, inputs: np.ndarray | None = None, calibration: np.ndarray | None = None,
                 labels: np.ndarray | None = None, limit: int | None = None) -> RunData:
    """Evaluation and calibration inputs for a single-input ``graph``.

    Defaults: the bundled ``evaluation`` set (with its labels, when ``inputs`` is not given) and the bundled
    ``calibration`` set, else the evaluation inputs. ``limit`` keeps the first N samples of each. Shapes are
    checked against the graph's input; errors name the array and the expected shape.
    """
    if len(graph.inputs) != 1:
        raise HwsimError(f"model '{graph.name}': needs a single-input graph, got {len(graph.inputs)} inputs")
    data = graph.data or {}
    if inputs is None:
        ev = data.get("evaluation")
        if ev is None or "x" not in ev:
            raise HwsimError(f"model '{graph.name}': has no bundled evaluation data; pass --input x.npy")
        inputs = ev["x"]
        if labels is None:
            labels = ev.get("y")
    if calibration is None:
        cal = data.get("calibration")
        calibration = cal["x"] if cal is not None and "x" in cal else inputs
    inputs = np.asarray(inputs, dtype=np.float32)
    calibration = np.asarray(calibration, dtype=np.float32)
    if limit is not None:
        inputs, calibration = inputs[:limit], calibration[:limit]
        labels = None if labels is None else np.asarray(labels)[:limit]
    expect = tuple(graph.inputs[0].shape[1:])
    for what, arr in (("input", inputs), ("calibration", calibration)):
        if arr.ndim != len(expect) + 1 or tuple(arr.shape[1:]) != expect or len(arr) == 0:
            raise HwsimError(f"{what}: expected shape (N, {', '.join(map(str, expect))}) with N >= 1 for input "
                             f"'{graph.inputs[0].name}', got {tuple(arr.shape)}")
    if labels is not None and len(labels) != len(inputs):
        raise HwsimError(f"labels: {len(labels)} labels for {len(inputs)} inputs")
    return RunData(inputs, calibration, None if labels is None else np.asarray(labels))
