"""Cost estimation: cycles, latency, memory and DDR traffic of a graph on a target (docs/cost.md).

>>> from hwsim.cost import estimate
>>> report = estimate(graph, load_target("fpga_dpu_zcu104"), threads=1)
>>> report.totals["e2e_latency_ms"], report.layers[0].time_ms, report.to_dict()["totals"]["ddr_bytes"]

Per-op cycle functions are driven only by the target's ``cost:`` parameters; the DPU model is in
:mod:`hwsim.cost.dpu`, the CPU roofline in :mod:`hwsim.cost.cpu`; :mod:`hwsim.cost.validation` checks the
estimates against published measurements (``anchors.yaml``).
"""

from hwsim.cost.estimate import ELEMENT_OPS, estimate, op_kind
from hwsim.cost.params import CostParamsError, ResolvedParams, resolve_params
from hwsim.cost.report import COST_FORMAT_VERSION, LAYER_FIELDS, CostReport, LayerCost

__all__ = [
    "COST_FORMAT_VERSION", "CostParamsError", "CostReport", "ELEMENT_OPS", "LAYER_FIELDS", "LayerCost",
    "ResolvedParams", "estimate", "op_kind", "resolve_params",
]
