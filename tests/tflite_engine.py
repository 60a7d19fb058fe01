"""Running the TFLite interpreter for oracle tests, and describing where hwsim and the engine differ.

Shared by tests/oracle/test_tflite_oracle.py (int8) and test_tflite_int16x8_oracle.py (16x8).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType


def run_interpreter(path: Path | str, feeds: list[np.ndarray], *, reference: bool) -> dict[int, np.ndarray]:
    """Every readable tensor (``reference``: BUILTIN_REF kernels, all tensors preserved) or the outputs (the
    default resolver, XNNPACK applied), one feed (batch 1) at a time, samples stacked on axis 0."""
    if reference:
        it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                         experimental_preserve_all_tensors=True, num_threads=1)
    else:
        it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    (inp,) = it.get_input_details()
    wanted = [d["index"] for d in (it.get_tensor_details() if reference else it.get_output_details())]
    got: dict[int, list[np.ndarray]] = {}
    for feed in feeds:
        it.set_tensor(inp["index"], feed)
        it.invoke()
        for idx in wanted:
            try:
                got.setdefault(idx, []).append(it.get_tensor(idx).copy())
            except ValueError:  # a tensor the interpreter does not keep (scratch, folded constants)
                pass
    return {idx: np.concatenate(v) for idx, v in got.items() if v[0].ndim and v[0].shape[0] == 1}


def mismatches(ours: np.ndarray, engine: np.ndarray) -> str:
    """"" when the integers are identical, else how many differ, by how much and the first place."""
    if ours.shape != engine.shape:
        return f"shape {ours.shape} vs engine {engine.shape}"
    d = ours.astype(np.int64) - engine.astype(np.int64)
    bad = np.flatnonzero(d)
    if not bad.size:
        return ""
    i = np.unravel_index(bad[0], d.shape)
    return (f"{bad.size}/{d.size} differ (max |diff| {np.abs(d).max()}), first at {tuple(map(int, i))}: "
            f"hwsim {int(ours[i])}, engine {int(engine[i])}")
