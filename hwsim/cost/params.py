"""Cost parameters of a target, with defaults for what the target leaves unstated and where each came from.

Nothing here knows a target's name: the model family is chosen by ``target.family`` (``dpu`` is the
accelerator model, every other family the CPU roofline), and every number comes from the target's
``cost:`` section (units in the key names, docs/targets.md section 6).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hwsim.errors import TargetError

__all__ = ["CostParamsError", "ResolvedParams", "resolve_params", "REQUIRED_DPU", "REQUIRED_CPU"]


class CostParamsError(TargetError):
    """The target lacks the cost parameters the model needs (no ``cost:`` section, or required keys)."""


#: Keys the DPU model cannot do without.
REQUIRED_DPU = ("clock_mhz", "pixel_parallel", "input_channel_parallel", "output_channel_parallel",
                "dram_gbps")
#: Keys the CPU model cannot do without (the int8 MAC rate may also come from
#: int8_gemm_macs_per_cycle_per_core).
REQUIRED_CPU = ("clock_mhz", "cores", "int8_macs_per_cycle_per_core")

# (key, default, why) for keys the model can do without; a default is reported in the notes.
_DPU_DEFAULTS = (
    ("cores", 1, "one core"),
    ("conv_efficiency", 1.0, "ideal PP x ICP x OCP schedule (an upper bound on speed)"),
    ("feature_map_onchip_kib", 0.0, "every feature map goes through DDR"),
    ("per_layer_overhead_us", 0.0, "no fixed time per layer"),
    ("per_subgraph_overhead_ms", 0.0, "no time per subgraph call"),
    ("per_inference_overhead_ms", 0.0, "no runtime overhead per inference"),
    ("w4_mac_speedup", 1.0, "4-bit weights computed in 8-bit lanes"),
    ("w2_mac_speedup", 1.0, "2-bit weights computed in 8-bit lanes"),
)
_CPU_DEFAULTS = (
    ("gemm_efficiency", 1.0, "the GEMM peak is reached (an upper bound on speed)"),
    ("per_layer_overhead_us", 0.0, "no fixed time per layer"),
    ("per_inference_overhead_ms", 0.0, "no runtime overhead per inference"),
    ("w4_mac_speedup", 1.0, "4-bit weights computed in 8-bit lanes"),
    ("w2_mac_speedup", 1.0, "2-bit weights computed in 8-bit lanes"),
)


@dataclass
class ResolvedParams:
    """Cost parameters after defaults: ``values[key]``, ``source[key]`` (``target`` or ``default: why``)."""

    values: dict[str, Any]
    source: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        v = self.values.get(key)
        return default if v is None else v

    def to_dict(self) -> dict[str, Any]:
        return {k: {"value": v, "source": self.source.get(k, "target")}
                for k, v in sorted(self.values.items()) if v is not None}

    def defaulted(self) -> list[str]:
        return [f"{k} = {self.values[k]} ({s})" for k, s in sorted(self.source.items())
                if s.startswith("default")]


def _costed_relatives(target) -> str:
    """", e.g. A, B": the built-in targets of the same family that carry a cost: section (a hint)."""
    from hwsim.targets import list_targets, load_target

    names = []
    for info in list_targets():
        if info.name == target.name:
            continue
        try:
            other = load_target(info.name)
        except Exception:  # a broken user target must not hide the original error
            continue
        if other.family == target.family and other.cost is not None:
            names.append(other.name)
    return f" (same family, with costs: {', '.join(names)})" if names else ""


def resolve_params(target) -> ResolvedParams:
    """The cost parameters of ``target`` with the model's defaults filled in.

    Raises
    ------
    CostParamsError
        If the target has no ``cost:`` section or lacks a required key; the message names the target, its
        file and the missing keys.
    """
    where = f"target '{target.name}'" + (f" ({target.source})" if getattr(target, "source", "") else "")
    if target.cost is None:
        raise CostParamsError(f"{where} has no cost: section, so it cannot be estimated; add one "
                              f"(docs/targets.md section 6) or extend a target that has one"
                              + _costed_relatives(target))
    raw = {k: v for k, v in target.cost.to_dict().items() if v is not None}
    values: dict[str, Any] = dict(raw)
    source = {k: "target" for k in raw}
    if target.family == "dpu":
        required, defaults = REQUIRED_DPU, _DPU_DEFAULTS
    else:
        required, defaults = REQUIRED_CPU, _CPU_DEFAULTS
        if "int8_macs_per_cycle_per_core" not in raw and "int8_gemm_macs_per_cycle_per_core" in raw:
            values["int8_macs_per_cycle_per_core"] = raw["int8_gemm_macs_per_cycle_per_core"]
            source["int8_macs_per_cycle_per_core"] = "default: int8_gemm_macs_per_cycle_per_core"
    missing = [k for k in required if values.get(k) is None]
    if missing:
        model = "DPU" if target.family == "dpu" else "CPU"
        raise CostParamsError(f"{where}: cost: lacks {', '.join(missing)}, which the {model} cost model "
                              f"needs (docs/cost.md)")
    for key, default, why in defaults:
        if values.get(key) is None:
            values[key] = default
            source[key] = f"default: {why}"
    if target.family != "dpu":
        if values.get("int8_gemm_macs_per_cycle_per_core") is None:
            values["int8_gemm_macs_per_cycle_per_core"] = values["int8_macs_per_cycle_per_core"]
            source["int8_gemm_macs_per_cycle_per_core"] = "default: int8_macs_per_cycle_per_core"
        if values.get("depthwise_efficiency") is None:
            values["depthwise_efficiency"] = values["gemm_efficiency"]
            source["depthwise_efficiency"] = "default: gemm_efficiency"
        if values.get("latency_cores") is None:
            values["latency_cores"] = values["cores"]
            source["latency_cores"] = "default: cores"
        if values.get("fp32_macs_per_cycle_per_core") is None:
            values["fp32_macs_per_cycle_per_core"] = values["int8_macs_per_cycle_per_core"] / 4.0
            source["fp32_macs_per_cycle_per_core"] = "default: int8_macs_per_cycle_per_core / 4"
    return ResolvedParams(values, source)
