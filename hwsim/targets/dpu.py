"""DPU (``family: dpu``) behaviour that a YAML table cannot state: the average-pooling factor search.

The target file carries the fixed factor table (numerics.md C.7); kernel sizes missing from it use the
search below, which is an algorithm rather than data.
"""

from __future__ import annotations

import math
from typing import Mapping

from hwsim.errors import TargetError


def avgpool_factor(kernel_h: int, kernel_w: int,
                   factor_table: Mapping[str, tuple[int, int]]) -> tuple[int, int]:
    """Multiplier F and shift S with F / 2^S approximating 1 / (kernel_h * kernel_w) on the DPU.

    The table (``ops.AvgPool.params.factor_table`` of the target) wins. Otherwise, for k = kernel_h *
    kernel_w, try S = 0 ... ceil(log2(k * 128)) - 1 with F = round(2^S / k) and keep the first S with the
    strictly smallest |F / 2^S - 1 / k| (numerics.md C.7, ``get_avgpool_dpu_factors``). The quantizer
    rounds with Python's ``round`` (ties to even) and the C++ op with ``std::round``; C.7 found the same
    winner for the sizes it computed, and this function follows the quantizer.

    Parameters
    ----------
    kernel_h, kernel_w : int
        Pooling window, each >= 1.
    factor_table : mapping
        ``'KHxKW' -> (F, S)`` from the target.

    Returns
    -------
    (int, int)
        (F, S).

    Examples
    --------
    >>> avgpool_factor(3, 3, {"3x3": (7, 6)})
    (7, 6)
    >>> avgpool_factor(3, 3, {})
    (57, 9)
    >>> avgpool_factor(9, 9, {})
    (101, 13)
    """
    if kernel_h < 1 or kernel_w < 1:
        raise TargetError(f"kernel: avg-pool window must be at least 1x1, got {kernel_h}x{kernel_w}")
    key = f"{kernel_h}x{kernel_w}"
    if key in factor_table:
        multiplier, shift = factor_table[key]
        return int(multiplier), int(shift)
    k = kernel_h * kernel_w
    best: tuple[int, int] | None = None
    best_error = math.inf
    for shift in range(math.ceil(math.log2(k * 128))):
        multiplier = round(2**shift / k)
        error = abs(multiplier / 2**shift - 1 / k)
        if error < best_error:
            best, best_error = (multiplier, shift), error
    assert best is not None
    return best
