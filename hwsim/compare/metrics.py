"""Metrics between a float reference tensor and a simulated (dequantized) one."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TensorComparison:
    """How far a simulated tensor is from its float reference.

    Attributes
    ----------
    sqnr_db : float
        10·log10(Σ ref² / Σ (ref − sim)²); ``inf`` when identical, ``-inf`` when the reference is all zero
        and the simulation is not.
    cosine : float
        Cosine similarity of the flattened tensors (1.0 when both are all zero).
    max_abs_error : float
        max |ref − sim| in real units.
    max_lsb_error : float
        ``max_abs_error`` in steps of the simulated tensor's scale.
    mean_abs_error : float
        mean |ref − sim| in real units.
    """

    sqnr_db: float
    cosine: float
    max_abs_error: float
    max_lsb_error: float
    mean_abs_error: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def compare_tensor(reference: np.ndarray, simulated: np.ndarray, scale: float) -> TensorComparison:
    """Compare ``simulated`` (dequantized, same shape) with ``reference``; ``scale`` is one output LSB."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    sim = np.asarray(simulated, dtype=np.float64).ravel()
    if ref.shape != sim.shape:
        raise ValueError(f"shape mismatch: reference {reference.shape} vs simulated {simulated.shape}")
    err = ref - sim
    signal = float(np.dot(ref, ref))
    noise = float(np.dot(err, err))
    if noise == 0.0:
        sqnr = math.inf
    elif signal == 0.0:
        sqnr = -math.inf
    else:
        sqnr = 10.0 * math.log10(signal / noise)
    nr, ns = math.sqrt(signal), float(np.linalg.norm(sim))
    if nr == 0.0 and ns == 0.0:
        cos = 1.0
    elif nr == 0.0 or ns == 0.0:
        cos = 0.0
    else:
        cos = float(np.dot(ref, sim) / (nr * ns))
    max_abs = float(np.max(np.abs(err))) if err.size else 0.0
    mean_abs = float(np.mean(np.abs(err))) if err.size else 0.0
    return TensorComparison(sqnr, cos, max_abs, max_abs / float(scale), mean_abs)


def top1_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of rows whose arg-max over the last axis is the same in ``a`` and ``b``."""
    a2 = np.asarray(a).reshape(-1, np.asarray(a).shape[-1])
    b2 = np.asarray(b).reshape(-1, np.asarray(b).shape[-1])
    return float(np.mean(a2.argmax(-1) == b2.argmax(-1)))
