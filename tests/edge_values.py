"""The shared edge-value generator every integer test draws from (after gemmlowp's MakeTestVals).

For an integer width it gives every power of two and its ±1 and ±2 neighbours with both signs, the
type's min and max with their ±1 and ±2 neighbours (clipped to a representable container range), zero,
then seeded random values; sorted and unique.
"""

from __future__ import annotations

import numpy as np


def integer_edge_values(lo: int, hi: int, *, random_count: int = 1000, seed: int = 0) -> np.ndarray:
    """Edge values in the closed range [lo, hi] as int64, sorted and unique.

    Parameters
    ----------
    lo, hi : int
        Inclusive bounds; values outside are dropped (so "type max + 1" survives only when the
        container range allows it).
    random_count : int
        How many seeded uniform values in [lo, hi] to add.
    seed : int
        Seed of the random part; the same seed gives the same values.
    """
    values: set[int] = {0, lo, hi}
    for bit in range(0, 64):
        p = 1 << bit
        for v in (p, -p):
            for d in (-2, -1, 0, 1, 2):
                values.add(v + d)
    for bound in (lo, hi):
        for d in (-2, -1, 0, 1, 2):
            values.add(bound + d)
    rng = np.random.default_rng(seed)
    values.update(int(v) for v in rng.integers(lo, hi, size=random_count, endpoint=True, dtype=np.int64))
    return np.array(sorted(v for v in values if lo <= v <= hi), dtype=np.int64)


def int_type_range(bits: int, signed: bool) -> tuple[int, int]:
    """Full range of a two's-complement (signed) or plain binary (unsigned) integer of ``bits`` bits."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def ties(scale_exponent: int = 0, count: int = 8) -> np.ndarray:
    """Exact .5 ties ±(k + 0.5)·2^scale_exponent for k in [0, count), as float64 (all dyadic)."""
    k = np.arange(count, dtype=np.float64)
    half = (k + 0.5) * 2.0**scale_exponent
    return np.concatenate([-half[::-1], half])
