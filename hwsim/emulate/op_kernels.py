"""Integer kernels of activation and reduction ops, keyed by the target's kernel name.

``PREPARE[kernel](graph, target, plan, act)`` derives the integer constants of one layer from the quantization
of its input and output (or turns the plan into a reported fallback); ``RUN[kernel](model, plan, ints,
threads)`` returns its output codes. The simulator (hwsim/emulate/simulator.py) dispatches to them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

PREPARE: dict[str, Callable[..., None]] = {}
RUN: dict[str, Callable[..., np.ndarray]] = {}
