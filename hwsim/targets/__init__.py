"""Targets: hardware/runtime descriptions loaded from YAML (``targets/*.yaml``), validated and resolved.

Use :func:`load_target` and :func:`list_targets`; the schema and the dataclasses the simulator and the
cost model read live in :mod:`hwsim.targets.schema`. See ``docs/targets.md``.
"""

from hwsim.targets.registry import ENTRY_POINT_GROUP, TargetInfo, list_targets, load_target
from hwsim.targets.schema import (
    KERNELS,
    OP_KINDS,
    REQUANT_SCHEMES,
    ROUNDING_MODES,
    Accumulator,
    Calibration,
    CostParams,
    Numerics,
    OpImpl,
    OutputParams,
    Requant,
    Target,
    TensorRole,
)

__all__ = [
    "ENTRY_POINT_GROUP", "KERNELS", "OP_KINDS", "REQUANT_SCHEMES", "ROUNDING_MODES", "Accumulator",
    "Calibration", "CostParams", "Numerics", "OpImpl", "OutputParams", "Requant", "Target", "TargetInfo",
    "TensorRole", "list_targets", "load_target",
]
