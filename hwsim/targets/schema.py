"""The target description schema (``schema_version: 1``): allowed keys, values, defaults, and validation.

A target file is YAML read with ``yaml.safe_load``. After ``extends:`` has been applied (see
:mod:`hwsim.targets.registry`), :func:`build_target` checks the merged mapping against the tables in this
module and turns it into frozen dataclasses. The tables are the single source of truth: the simulator and
the cost model read :class:`Target`, and ``docs/targets.md`` documents the same keys.

Every error is a :class:`hwsim.errors.TargetError` whose message starts with the file and the key path,
for example ``targets/foo.yaml: numerics.weights.rounding: 'HALF_EVEN' is not one of HALF_TO_EVEN, ...``.

Nothing here knows a target's name: behaviour is chosen by enum values (rounding modes, requantization
schemes, kernel names), never by which target is loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, Mapping

from hwsim.errors import TargetError

SCHEMA_VERSION = 1

# --------------------------------------------------------------------------------------------------
# Enumerations. Each value has a one-line exact definition; docs/targets.md repeats them.
# --------------------------------------------------------------------------------------------------

#: Rounding of a real value x to an integer (numerics.md section 0).
ROUNDING_MODES: Mapping[str, str] = MappingProxyType({
    "HALF_TO_EVEN": "nearest integer, ties to the even one (RNE; rint, lrintf, np.round)",
    "HALF_AWAY_FROM_ZERO": "nearest integer, ties away from zero (RHAZ; std::round, TfLiteRound)",
    "HALF_UP": "nearest integer, ties toward +infinity (RHUP; floor(x + 0.5), Xilinx DPU_ROUND)",
    "HALF_DOWN": "nearest integer, ties toward -infinity (RHDN; ceil(x - 0.5))",
    "HALF_TOWARD_ZERO": "nearest integer, ties toward zero (RHTZ; ap_fixed AP_RND_ZERO)",
    "FLOOR": "largest integer <= x (arithmetic right shift, ap_fixed AP_TRN)",
    "TRUNCATE": "integer part, toward zero (C integer cast and division)",
    "STOCHASTIC": "floor(x) or floor(x) + 1, the latter with probability x - floor(x)",
})

#: What happens when a value leaves the integer range of its container.
OVERFLOW_MODES: Mapping[str, str] = MappingProxyType({
    "SATURATE": "clamp to [qmin, qmax]",
    "WRAP": "keep the low bits, two's complement (plain integer overflow)",
})

FAMILIES = ("intel", "tflite", "dpu", "generic")
FORMATS = ("int", "float")
GRANULARITIES = ("per_tensor", "per_channel", "per_group")
SCALE_KINDS = ("float", "pow2", "fixed_point")
ZERO_POINTS = ("zero", "midpoint", "free")
SYMMETRIC_DENOMINATORS = ("qmax", "half_span")
QUANTIZE_FORMULAS = ("divide", "multiply_reciprocal", "fma_reciprocal", "pow2_exact")
PRECISIONS = ("float32", "float64")
OBSERVERS = ("minmax", "moving_average_minmax", "histogram", "percentile", "mse", "kl",
             "pow2_overflow_free", "pow2_diffs")
FIX_POS_STATISTICS = ("mode", "last")
GEMM_MODES = ("exact", "avx2_pairs")
DEPTHWISE_SATURATIONS = ("none", "fbgemm_dw3x3_pairs")
FALLBACKS = ("float", "cpu")
STATUSES = ("exact", "derived", "approximate")
#: Engine rule that turns an observed range into (scale, zero point) or fix_pos; the same names as
#: hwsim.quant.scheme.PARAMS_RULES.
PARAMS_RULES = ("generic", "torch", "onnxruntime", "tflite", "pow2_diffs", "pow2_overflow_free")
FUSABLE_OPS = ("ReLU", "ReLU6", "LeakyReLU", "HardSigmoid", "HardSwish")

#: The op kinds of the IR that a target maps to implementations (DepthwiseConv2D is a Conv2D whose
#: groups equal its input channels). ``default`` covers any op kind without its own entry.
OP_KINDS = (
    "Conv2D", "DepthwiseConv2D", "Dense", "MatMul", "Add", "Mul", "Concat", "MaxPool", "AvgPool",
    "GlobalAvgPool", "Softmax", "LayerNorm", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "LeakyReLU",
    "SELU", "SiLU", "Mish", "GELU", "ReLU", "ReLU6", "Pad", "Reshape", "Flatten", "Transpose", "BatchNorm",
)

_UNARY_ACTIVATIONS = ("Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "LeakyReLU", "SELU", "SiLU", "Mish",
                      "GELU", "ReLU", "ReLU6")

_REQUIRED = object()


@dataclass(frozen=True)
class Key:
    """Specification of one key: its type, default, allowed values or bounds, and documentation."""

    kind: str  # "int", "float", "bool", "str", "enum", "enum_list", "pair_table"
    default: Any = _REQUIRED
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False
    doc: str = ""


def _enum(choices, default=_REQUIRED, doc=""):
    return Key("enum", default, tuple(choices), doc=doc)


# --------------------------------------------------------------------------------------------------
# Key tables
# --------------------------------------------------------------------------------------------------

TOP_KEYS: Mapping[str, Key] = MappingProxyType({
    "schema_version": Key("int", doc="must be 1"),
    "name": Key("str", doc="target name; equals the file name without .yaml"),
    "description": Key("str", doc="one line shown by `hwsim targets`"),
    "family": _enum(FAMILIES, doc="numerics family"),
    "extends": Key("str", None, nullable=True, doc="name of the parent target"),
    "override": Key("bool", False, doc="a user target may replace a target of the same name"),
    "numerics": Key("map"),
    "ops": Key("map"),
    "cost": Key("map", None, nullable=True),
})

ROLE_KEYS: Mapping[str, Key] = MappingProxyType({
    "format": _enum(FORMATS, "int", "int: integer codes with a scale; float: IEEE float of `bits` bits"),
    "bits": Key("int", minimum=1, maximum=64, doc="width of the integer (or float) values"),
    "signed": Key("bool", True, doc="two's-complement signed or unsigned"),
    "narrow": Key("bool", False, doc="signed: drop -2^(bits-1); unsigned: drop 2^bits - 1"),
    "reduce_range": Key("bool", False,
                        doc="calibrate to [qmin // 2, qmax // 2]; kernels still clamp to [qmin, qmax]"),
    "quant_range": Key("int_pair", None, nullable=True,
                       doc="[lo, hi] used for qparams and constants instead of the (reduced) range"),
    "granularity": _enum(GRANULARITIES, "per_tensor"),
    "group_size": Key("int", None, minimum=1, nullable=True, doc="elements per group (per_group only)"),
    "symmetric": Key("bool", False, doc="scale from max|x| and a fixed zero point"),
    "zero_point": _enum(ZERO_POINTS, None, "zero, midpoint (2^(bits-1), unsigned only) or free"),
    "scale_kind": _enum(SCALE_KINDS, "float"),
    "symmetric_denominator": _enum(SYMMETRIC_DENOMINATORS, "qmax",
                                   "symmetric scale = max|x| / qmax, or / ((qmax - qmin) / 2)"),
    "rounding": _enum(ROUNDING_MODES, "HALF_TO_EVEN", "rounding of float -> integer quantization"),
    "quantize_formula": _enum(QUANTIZE_FORMULAS, "divide", "how x / scale is formed in float"),
    "overflow": _enum(OVERFLOW_MODES, "SATURATE"),
    "params_rule": _enum(PARAMS_RULES, "generic", "engine rule: observed range -> (scale, zp) or fix_pos"),
})
_FLOAT_ROLE_KEYS = ("format", "bits", "rounding")
_FLOAT_BITS = (16, 32, 64)

ACCUMULATOR_KEYS: Mapping[str, Key] = MappingProxyType({
    "format": _enum(FORMATS, "int"),
    "bits": Key("int", minimum=8, maximum=64),
    "overflow": _enum(OVERFLOW_MODES, "WRAP"),
})

CALIBRATION_KEYS: Mapping[str, Key] = MappingProxyType({
    "observer": _enum(OBSERVERS, "minmax", "activation range observer"),
    "weight_observer": _enum(OBSERVERS, "minmax", "weight range observer"),
    "percentile": Key("float", 99.99, minimum=50.0, maximum=100.0, doc="for observer: percentile"),
    "zero_point_rounding": _enum(ROUNDING_MODES, "HALF_TO_EVEN", "zp = qmin - round(min / scale)"),
    "fix_pos_scope": Key("int", 5, minimum=1, doc="pow2_diffs: candidates p0 .. p0 + scope - 1"),
    "input_fix_pos_scope": Key("int", 1, minimum=1, doc="pow2_diffs scope for graph inputs"),
    "fix_pos_max": Key("int", None, nullable=True, minimum=-64, maximum=64, doc="cap on fix_pos"),
    "fix_pos_all_zero": Key("int", 18, minimum=-64, maximum=64, doc="fix_pos of an all-zero tensor"),
    "fix_pos_statistic": _enum(FIX_POS_STATISTICS, "mode",
                               "how per-batch activation fix_pos combine (mode: smallest on ties)"),
})

REQUANT_SCHEMES: Mapping[str, Mapping[str, Key]] = MappingProxyType({
    "none": MappingProxyType({}),
    "float_scale": MappingProxyType({
        "precision": _enum(PRECISIONS, "float32", "type of acc * multiplier"),
        "scale_precision": _enum(PRECISIONS, "float32", "type in which s_in * s_w / s_out is computed"),
        "apply": _enum(("multiply", "divide"), "multiply",
                       "acc * (s_in s_w / s_out) or acc / (s_out / (s_in s_w))"),
        "bias_stage": _enum(("int32_in_accumulator", "float_in_accumulator_units", "float_after_scale"),
                            "int32_in_accumulator"),
        "clamp": _enum(("before_round", "after_round"), "before_round"),
        "rounding": _enum(ROUNDING_MODES, "HALF_TO_EVEN"),
    }),
    "fixed_point_double": MappingProxyType({
        "scale_precision": _enum(PRECISIONS, "float64"),
    }),
    "fixed_point_single": MappingProxyType({
        "scale_precision": _enum(PRECISIONS, "float64"),
    }),
    # The int64 overload of MultiplyByQuantizedMultiplier that TFLite's 16x8 kernels call (numerics.md A.3):
    # the int32 mantissa is reduced to 16 bits and the product rounds once, half up.
    "fixed_point_int64": MappingProxyType({
        "scale_precision": _enum(PRECISIONS, "float64"),
    }),
    "fixed_point_float_scale": MappingProxyType({
        "scale_precision": _enum(PRECISIONS, "float64"),
        "rounding": _enum(ROUNDING_MODES, "HALF_AWAY_FROM_ZERO"),
    }),
    "pow2_shift": MappingProxyType({
        "rounding": _enum(ROUNDING_MODES, "HALF_UP"),
        "shift_cut_min": Key("int", 0, minimum=-32, maximum=32),
        "shift_cut_max": Key("int", 16, minimum=-32, maximum=32),
        "shift_bias_min_offset": Key("int", -16, minimum=-64, maximum=64,
                                     doc="shift_bias >= min(0, shift_cut + offset)"),
        "shift_bias_max": Key("int", 16, minimum=-32, maximum=32),
    }),
})


@dataclass(frozen=True)
class KernelSpec:
    """An integer kernel: which op kinds it runs, its parameters, and whether it takes a requant map."""

    op_kinds: tuple[str, ...]
    params: Mapping[str, Key] = field(default_factory=lambda: MappingProxyType({}))
    requant: str = "forbidden"  # "required", "optional", "forbidden"
    doc: str = ""


def _params(**keys: Key) -> Mapping[str, Key]:
    return MappingProxyType(dict(keys))


KERNELS: Mapping[str, KernelSpec] = MappingProxyType({
    "conv2d": KernelSpec(("Conv2D",), requant="required", doc="integer convolution, int accumulator"),
    "depthwise_conv2d": KernelSpec(("DepthwiseConv2D",), requant="required"),
    "fully_connected": KernelSpec(("Dense", "MatMul"), requant="required"),
    "matmul": KernelSpec(("MatMul",), requant="required", doc="both operands are activations"),
    "tflite_add": KernelSpec(("Add",), _params(left_shift=Key("int", 20, minimum=0, maximum=30)),
                             requant="required",
                             doc="three multiplier calls: each input, then the sum (numerics.md A.5)"),
    "dpu_add": KernelSpec(("Add",), requant="required",
                          doc="align inputs to the largest fix_pos exactly, sum, shift once (C.8)"),
    "mul": KernelSpec(("Mul",), requant="required", doc="(a - zp_a)(b - zp_b), then requantize"),
    "concat": KernelSpec(("Concat",), requant="optional", doc="each input requantized to the output"),
    "max_pool": KernelSpec(("MaxPool",), requant="optional", doc="max of in-bounds taps"),
    "tflite_avg_pool": KernelSpec(
        ("AvgPool", "GlobalAvgPool"),
        _params(rounding=_enum(ROUNDING_MODES, "HALF_AWAY_FROM_ZERO"),
                count=_enum(("in_bounds", "kernel_size"), "in_bounds")),
        doc="sum of raw q (zp included) divided by the count with rounding (A.6)"),
    "dpu_avg_pool": KernelSpec(
        ("AvgPool", "GlobalAvgPool"),
        _params(factor_table=Key("pair_table", MappingProxyType({}), doc="'KHxKW': [multiplier, shift]"),
                count=_enum(("in_bounds", "kernel_size"), "kernel_size"),
                square_only=Key("bool", True)),
        requant="required", doc="sum * multiplier / 2^shift approximates 1/k (C.7)"),
    "tflite_mean": KernelSpec(("GlobalAvgPool",), requant="required", doc="MEAN with N folded in (A.10)"),
    "torch_avg_pool": KernelSpec(("GlobalAvgPool",), doc="PyTorch quantized adaptive_avg_pool2d to 1x1: "
                                 "RNE(float32(sum of raw codes) * float32(1/N)), (s, zp) kept (measured)"),
    "lut": KernelSpec(
        _UNARY_ACTIVATIONS,
        _params(function_precision=_enum(PRECISIONS, "float32"),
                scale_apply=_enum(("multiply_reciprocal", "divide"), "multiply_reciprocal"),
                rounding=_enum(ROUNDING_MODES, "HALF_AWAY_FROM_ZERO")),
        doc="256-entry table: f(s_in (v - zp_in)) * (1 / s_out), rounded, + zp_out, clamped (A.7)"),
    "tflite_softmax": KernelSpec(
        ("Softmax",),
        _params(algorithm=_enum(("float_table", "fixed_point"), "float_table",
                                "float_table: optimized kernel (A.9 first bullet); fixed_point: reference "
                                "kernel, gemmlowp exp and reciprocal, output (1/256, type minimum) (A.9)"),
                table_precision=_enum(PRECISIONS, "float32"),
                rounding=_enum(ROUNDING_MODES, "HALF_AWAY_FROM_ZERO")),
        doc="float exp table, sequential float sum, reciprocal; or gemmlowp fixed point (A.9)"),
    "tflite_hard_swish": KernelSpec(("HardSwish",), doc="int16 fixed point, truncating product (A.8)"),
    "tflite_leaky_relu": KernelSpec(
        ("LeakyReLU",),
        _params(arithmetic=_enum(("multiplier", "fixed_point_8bit"), "multiplier",
                                 "multiplier: MBQM by the requant scheme (reference, A.7); fixed_point_8bit: "
                                 "zp + ((d m + 128) >> 8), m = rint(256 ratio) (XNNPACK, measured)")),
        requant="optional", doc="identity and alpha multipliers by sign of q - zp (A.7)"),
    "xnnpack_add": KernelSpec(
        ("Add",), _params(multiplier_bits=Key("int", 20, minimum=1, maximum=30)),
        doc="m_i = rint(s_i/s_out 2^k), k = bits - floor(log2 max ratio); one rounding (measured)"),
    "ort_qlinear_add": KernelSpec(
        ("Add",), doc="onnxruntime QLinearAdd (MLAS x86): rA = sa/sc, rB = sb/sc, "
                      "t = fma(a, rA, fma(b, rB, zpc - (rA zpa + rB zpb))) in float32, RNE, clamped (measured)"),
    "ort_qlinear_global_avg_pool": KernelSpec(
        ("GlobalAvgPool",), doc="onnxruntime QLinearGlobalAveragePool (MLAS x86): RNE(float32(sum q - N zp_in) "
                                "* float32(s_in / (s_out N))) clamped in float first, + zp_out (MLAS source)"),
    "dpu_leaky_relu": KernelSpec(
        ("LeakyReLU",),
        _params(alpha_numerator=Key("int", 26, minimum=1), alpha_denominator=Key("int", 256, minimum=1)),
        requant="required", doc="x < 0: x * numerator / denominator on the unrounded value (C.5)"),
    "dpu_hsigmoid": KernelSpec(
        ("HardSigmoid",),
        _params(multiplier=Key("int", 2731, minimum=1), shift=Key("int", 14, minimum=0),
                min_output_fix_pos=Key("int", 7), min_input_fix_pos=Key("int", 0)),
        requant="required", doc="relu6(x + 3) * multiplier / 2^shift (C.6)"),
    "dpu_hswish": KernelSpec(
        ("HardSwish",),
        _params(multiplier=Key("int", 2731, minimum=1), shift=Key("int", 14, minimum=0),
                internal_fix_pos=Key("int", 7), min_input_fix_pos=Key("int", 0),
                max_output_fix_pos_above_input=Key("int", 7)),
        requant="required", doc="x * fq(hsigmoid(x), internal_fix_pos) (C.6)"),
    "clamp": KernelSpec(("ReLU", "ReLU6"),
                        _params(bound_rounding=_enum(ROUNDING_MODES, "HALF_AWAY_FROM_ZERO")),
                        requant="optional", doc="clamp to [zp + round(lo/s), zp + round(hi/s)]"),
    "pad": KernelSpec(("Pad",), doc="pad with the zero point (real 0)"),
    "copy": KernelSpec(("Reshape", "Flatten"), doc="no arithmetic"),
    "transpose": KernelSpec(("Transpose",), doc="no arithmetic"),
    "float32": KernelSpec(OP_KINDS, doc="float32 computation is the implementation (float targets)"),
})

_FALLBACK_KEYS = ("fallback", "output_params", "note")
OP_KEYS: Mapping[str, Key] = MappingProxyType({
    "kernel": _enum(KERNELS, None, "integer kernel (exclusive with fallback)"),
    "fallback": _enum(FALLBACKS, None,
                      "float: dequantize, float32 op, quantize; cpu: the same, off the accelerator"),
    "requant": Key("map", None, nullable=True),
    "gemm": _enum(GEMM_MODES, "exact"),
    "depthwise_saturation": _enum(DEPTHWISE_SATURATIONS, "none"),
    "output_params": Key("output_params", None, nullable=True),
    "fuse": Key("enum_list", (), FUSABLE_OPS, doc="activations that fold into this op's output"),
    "params": Key("map", None, nullable=True),
    "status": _enum(STATUSES, "exact"),
    "note": Key("str", "", doc="free text shown in reports"),
})
_GEMM_KERNELS = ("conv2d", "depthwise_conv2d", "fully_connected", "matmul")

COST_KEYS: Mapping[str, Key] = MappingProxyType({
    "clock_mhz": Key("float", None, minimum=0.0),
    "cores": Key("int", None, minimum=1),
    "pixel_parallel": Key("int", None, minimum=1),
    "input_channel_parallel": Key("int", None, minimum=1),
    "output_channel_parallel": Key("int", None, minimum=1),
    "int8_macs_per_cycle_per_core": Key("float", None, minimum=0.0),
    "fp32_macs_per_cycle_per_core": Key("float", None, minimum=0.0),
    "dram_gbps": Key("float", None, minimum=0.0, doc="usable DRAM bandwidth, 10^9 bytes/s"),
    "sram_kib": Key("float", None, minimum=0.0, doc="on-chip buffer per core, KiB"),
    "l2_kib": Key("float", None, minimum=0.0, doc="L2 cache per core, KiB"),
    "l3_kib": Key("float", None, minimum=0.0, doc="shared last-level cache, KiB"),
    "bank_depth_words": Key("int", None, minimum=1, doc="DPU feature-map bank depth"),
    "per_inference_overhead_ms": Key("float", None, minimum=0.0),
    "per_subgraph_overhead_ms": Key("float", None, minimum=0.0),
    # Added for the cost model (hwsim/cost, docs/cost.md); all optional.
    "per_layer_overhead_us": Key("float", None, minimum=0.0,
                                 doc="fixed time per executed layer (dispatch, sync, pipeline fill), us"),
    "conv_efficiency": Key("float", None, minimum=0.0, maximum=1.0,
                           doc="DPU: fraction of the ideal PP x ICP x OCP conv cycles achieved"),
    "feature_map_onchip_kib": Key("float", None, minimum=0.0,
                                  doc="DPU: largest intermediate feature map kept on chip, KiB"),
    "board_dram_gbps": Key("float", None, minimum=0.0,
                           doc="DRAM bandwidth shared by all cores of the board, 10^9 bytes/s"),
    "host_cores": Key("int", None, minimum=1, doc="application CPU cores that run CPU-fallback ops"),
    "host_clock_mhz": Key("float", None, minimum=0.0, doc="application CPU clock, MHz"),
    "host_fp32_macs_per_cycle_per_core": Key("float", None, minimum=0.0,
                                             doc="application CPU fp32 FMAs per cycle per core"),
    "host_dram_gbps": Key("float", None, minimum=0.0, doc="application CPU DRAM bandwidth, 10^9 bytes/s"),
    "int8_gemm_macs_per_cycle_per_core": Key("float", None, minimum=0.0,
                                             doc="int8 MACs per cycle per core of the runtime's GEMM loop"),
    "gemm_efficiency": Key("float", None, minimum=0.0, maximum=1.0,
                           doc="CPU: fraction of the GEMM peak reached by conv / dense layers"),
    "depthwise_efficiency": Key("float", None, minimum=0.0, maximum=1.0,
                                doc="CPU: fraction of the GEMM peak reached by depthwise convolutions"),
    "latency_cores": Key("int", None, minimum=1, doc="cores one inference uses in latency mode"),
    "w4_mac_speedup": Key("float", None, minimum=1.0, doc="MACs per cycle multiplier for <= 4-bit weights"),
    "w2_mac_speedup": Key("float", None, minimum=1.0, doc="MACs per cycle multiplier for <= 2-bit weights"),
})

# --------------------------------------------------------------------------------------------------
# Resolved target: frozen dataclasses
# --------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, (Mapping, MappingProxyType)):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


class _ToDict:
    def to_dict(self) -> dict[str, Any]:
        """Plain dict (str, int, float, bool, None, list, dict) for YAML or JSON output."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class TensorRole(_ToDict):
    """How one tensor role (activations, weights or bias) is quantized and stored."""

    role: str
    format: str
    bits: int
    signed: bool = True
    narrow: bool = False
    reduce_range: bool = False
    quant_range: tuple[int, int] | None = None
    granularity: str = "per_tensor"
    group_size: int | None = None
    symmetric: bool = False
    zero_point: str | None = None
    scale_kind: str = "float"
    symmetric_denominator: str = "qmax"
    rounding: str = "HALF_TO_EVEN"
    quantize_formula: str = "divide"
    overflow: str = "SATURATE"
    params_rule: str = "generic"

    @property
    def qmin(self) -> int:
        """Smallest code of the storage range; kernels saturate to [qmin, qmax] (int format only)."""
        return self.storage_range()[0]

    @property
    def qmax(self) -> int:
        """Largest code of the storage range (int format only)."""
        return self.storage_range()[1]

    @property
    def quant_min(self) -> int:
        """Smallest code used to compute qparams and to quantize constants (reduced or explicit range)."""
        return self.calibration_range()[0]

    @property
    def quant_max(self) -> int:
        """Largest code used to compute qparams and to quantize constants."""
        return self.calibration_range()[1]

    def calibration_range(self) -> tuple[int, int]:
        """``quant_range`` if given, else the storage range, halved if ``reduce_range``."""
        if self.quant_range is not None:
            return self.quant_range
        lo, hi = self.storage_range()
        if self.reduce_range:
            lo, hi = lo // 2, hi // 2
        return lo, hi

    def storage_range(self) -> tuple[int, int]:
        """[qmin, qmax] from bits, signed and narrow."""
        if self.format != "int":
            raise TargetError(f"numerics.{self.role}: a float role has no integer range")
        if self.signed:
            lo, hi = -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1
            if self.narrow:
                lo += 1
        else:
            lo, hi = 0, (1 << self.bits) - 1
            if self.narrow:
                hi -= 1
        return lo, hi

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        del data["role"]
        if self.format == "int":
            data["qmin"], data["qmax"] = self.qmin, self.qmax
            data["quant_min"], data["quant_max"] = self.quant_min, self.quant_max
        return data


@dataclass(frozen=True)
class Accumulator(_ToDict):
    """Accumulator of the integer kernels."""

    format: str
    bits: int
    overflow: str


@dataclass(frozen=True)
class Calibration(_ToDict):
    """Calibration defaults the quantizer uses on this target."""

    observer: str = "minmax"
    weight_observer: str = "minmax"
    percentile: float = 99.99
    zero_point_rounding: str = "HALF_TO_EVEN"
    fix_pos_scope: int = 5
    input_fix_pos_scope: int = 1
    fix_pos_max: int | None = None
    fix_pos_all_zero: int = 18
    fix_pos_statistic: str = "mode"


@dataclass(frozen=True)
class Numerics(_ToDict):
    """Tensor roles, accumulator and calibration defaults."""

    activations: TensorRole
    weights: TensorRole
    bias: TensorRole
    accumulator: Accumulator
    calibration: Calibration


@dataclass(frozen=True)
class Requant(_ToDict):
    """Requantization scheme from the accumulator to the output, with its parameters (defaults filled)."""

    scheme: str
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, **_plain(self.params)}


@dataclass(frozen=True)
class OutputParams(_ToDict):
    """Fixed output quantization of an op: ``same_as_input`` or an explicit (scale, zero_point)."""

    same_as_input: bool = False
    scale: float | None = None
    zero_point: int | None = None

    def to_dict(self) -> Any:
        if self.same_as_input:
            return "same_as_input"
        return {"scale": self.scale, "zero_point": self.zero_point}


@dataclass(frozen=True)
class OpImpl(_ToDict):
    """How a target runs one op kind: an integer kernel with its requantization, or an explicit fallback.

    ``source`` says where the entry came from (``ops.Conv2D`` or ``ops.default``) so that reports can
    say when the default was used.
    """

    op_kind: str
    source: str
    kernel: str | None = None
    fallback: str | None = None
    requant: Requant | None = None
    gemm: str | None = None
    depthwise_saturation: str | None = None
    output_params: OutputParams | None = None
    fuse: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    status: str | None = "exact"
    note: str = ""

    @property
    def is_fallback(self) -> bool:
        """True when the op does not run as an integer kernel on this target."""
        return self.fallback is not None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in super().to_dict().items() if v not in (None, [], {}, "")}


@dataclass(frozen=True)
class CostParams(_ToDict):
    """Cost-model parameters; units are in the names. ``None`` means the target does not state it."""

    clock_mhz: float | None = None
    cores: int | None = None
    pixel_parallel: int | None = None
    input_channel_parallel: int | None = None
    output_channel_parallel: int | None = None
    int8_macs_per_cycle_per_core: float | None = None
    fp32_macs_per_cycle_per_core: float | None = None
    dram_gbps: float | None = None
    sram_kib: float | None = None
    l2_kib: float | None = None
    l3_kib: float | None = None
    bank_depth_words: int | None = None
    per_inference_overhead_ms: float | None = None
    per_subgraph_overhead_ms: float | None = None
    per_layer_overhead_us: float | None = None
    conv_efficiency: float | None = None
    feature_map_onchip_kib: float | None = None
    board_dram_gbps: float | None = None
    host_cores: int | None = None
    host_clock_mhz: float | None = None
    host_fp32_macs_per_cycle_per_core: float | None = None
    host_dram_gbps: float | None = None
    int8_gemm_macs_per_cycle_per_core: float | None = None
    gemm_efficiency: float | None = None
    depthwise_efficiency: float | None = None
    latency_cores: int | None = None
    w4_mac_speedup: float | None = None
    w2_mac_speedup: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in super().to_dict().items() if v is not None}


@dataclass(frozen=True)
class Target(_ToDict):
    """A resolved target (``extends:`` applied, defaults filled, validated)."""

    name: str
    family: str
    description: str
    numerics: Numerics
    ops: Mapping[str, OpImpl]
    cost: CostParams | None = None
    extends: str | None = None
    source: str = ""
    schema_version: int = SCHEMA_VERSION

    def op(self, op_kind: str) -> OpImpl:
        """Implementation of ``op_kind`` on this target; the ``default`` entry if it has none of its own.

        Parameters
        ----------
        op_kind : str
            An op kind of the IR, e.g. ``"Conv2D"``.

        Returns
        -------
        OpImpl
            Always an integer kernel or an explicit fallback; ``source`` tells which entry applied.
        """
        impl = self.ops.get(op_kind)
        if impl is not None:
            return impl
        return replace(self.ops["default"], op_kind=op_kind)

    def resolved_ops(self) -> dict[str, OpImpl]:
        """The implementation of every op kind of :data:`OP_KINDS`, defaults applied."""
        return {kind: self.op(kind) for kind in OP_KINDS}

    def to_dict(self, all_ops: bool = False) -> dict[str, Any]:
        """Plain dict for YAML/JSON output.

        Parameters
        ----------
        all_ops : bool
            List every op kind with the entry that applies to it (and that entry's ``source``) instead of
            only the entries the target states.
        """
        if all_ops:
            ops = {k: {kk: vv for kk, vv in v.to_dict().items() if kk != "op_kind"}
                   for k, v in self.resolved_ops().items()}
        else:
            ops = {k: {kk: vv for kk, vv in v.to_dict().items() if kk not in ("op_kind", "source")}
                   for k, v in self.ops.items()}
        data: dict[str, Any] = {
            "schema_version": self.schema_version, "name": self.name, "family": self.family,
            "description": self.description, "extends": self.extends, "source": self.source,
            "numerics": self.numerics.to_dict(), "ops": ops,
        }
        if self.cost is not None:
            data["cost"] = self.cost.to_dict()
        return data


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


class _Checker:
    """Validates values against Key specs; every error names the file and the key path."""

    def __init__(self, file: str):
        self.file = file

    def fail(self, path: str, message: str) -> TargetError:
        return TargetError(f"{self.file}: {path}: {message}" if path else f"{self.file}: {message}")

    def mapping(self, path: str, value: Any) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {type(value).__name__} {value!r}")
        for key in value:
            if not isinstance(key, str):
                raise self.fail(path, f"keys must be strings, got {key!r}")
        return value

    def keys(self, path: str, value: dict, allowed) -> None:
        for key in value:
            if key not in allowed:
                raise self.fail(_join(path, key),
                                f"unknown key {key!r}; allowed keys: {', '.join(allowed) or '(none)'}")

    def value(self, path: str, raw: Any, spec: Key) -> Any:
        if raw is None:
            if spec.nullable or spec.default is None:
                return None
            raise self.fail(path, "must not be null")
        kind = spec.kind
        if kind == "enum":
            if not isinstance(raw, str) or raw not in spec.choices:
                raise self.fail(path, f"{raw!r} is not one of {', '.join(spec.choices)}")
            return raw
        if kind == "enum_list":
            if not isinstance(raw, list):
                raise self.fail(path, f"expected a list of {', '.join(spec.choices)}, got {raw!r}")
            for i, item in enumerate(raw):
                if not isinstance(item, str) or item not in spec.choices:
                    raise self.fail(f"{path}[{i}]", f"{item!r} is not one of {', '.join(spec.choices)}")
            return tuple(raw)
        if kind == "bool":
            if not isinstance(raw, bool):
                raise self.fail(path, f"expected true or false, got {raw!r}")
            return raw
        if kind == "str":
            if not isinstance(raw, str):
                raise self.fail(path, f"expected a string, got {raw!r}")
            return raw
        if kind in ("int", "float"):
            ok = isinstance(raw, int) if kind == "int" else isinstance(raw, (int, float))
            if isinstance(raw, bool) or not ok:
                what = "an integer" if kind == "int" else "a number"
                raise self.fail(path, f"expected {what}, got {raw!r}")
            if spec.minimum is not None and raw < spec.minimum:
                raise self.fail(path, f"{raw!r} is below the minimum {spec.minimum:g}")
            if spec.maximum is not None and raw > spec.maximum:
                raise self.fail(path, f"{raw!r} is above the maximum {spec.maximum:g}")
            return float(raw) if kind == "float" else raw
        if kind == "map":
            return self.mapping(path, raw)
        if kind == "int_pair":
            ints = isinstance(raw, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in raw)
            if not ints or len(raw) != 2 or raw[0] >= raw[1]:
                raise self.fail(path, f"expected [lo, hi] with integers lo < hi, got {raw!r}")
            return tuple(raw)
        if kind == "pair_table":
            table = self.mapping(path, raw)
            out = {}
            for size, pair in table.items():
                if not re.fullmatch(r"[1-9][0-9]*x[1-9][0-9]*", size):
                    raise self.fail(_join(path, size), "kernel sizes are written 'KHxKW', e.g. '3x3'")
                if (not isinstance(pair, list) or len(pair) != 2
                        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in pair)):
                    raise self.fail(_join(path, size),
                                    f"expected [multiplier, shift] (non-negative integers), got {pair!r}")
                out[size] = tuple(pair)
            return MappingProxyType(out)
        raise AssertionError(kind)  # pragma: no cover

    def section(self, path: str, raw: Any, specs: Mapping[str, Key], allowed=None) -> dict[str, Any]:
        """Check a mapping against specs; fill defaults; required keys must be present."""
        data = self.mapping(path, raw)
        self.keys(path, data, tuple(allowed if allowed is not None else specs))
        out: dict[str, Any] = {}
        for key, spec in specs.items():
            if allowed is not None and key not in allowed:
                continue
            if key not in data:
                if spec.default is _REQUIRED:
                    raise self.fail(path, f"missing required key {key!r}")
                out[key] = spec.default
            else:
                out[key] = self.value(_join(path, key), data[key], spec)
        return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _role(chk: _Checker, path: str, raw: Any, role: str) -> TensorRole:
    data = chk.mapping(path, raw)
    fmt = chk.value(_join(path, "format"), data.get("format", "int"), ROLE_KEYS["format"])
    if fmt == "float":
        chk.keys(path, data, _FLOAT_ROLE_KEYS)
        vals = chk.section(path, data, ROLE_KEYS, allowed=_FLOAT_ROLE_KEYS)
        if vals["bits"] not in _FLOAT_BITS:
            raise chk.fail(_join(path, "bits"), f"{vals['bits']!r} is not one of 16, 32, 64 (float format)")
        return TensorRole(role=role, format="float", bits=vals["bits"], rounding=vals["rounding"],
                          signed=True, zero_point=None)
    vals = chk.section(path, data, ROLE_KEYS)
    # int64 biases exist (TFLite 16x8, numerics.md A.1); activations and weights stop at 32 bits.
    max_bits = 64 if role == "bias" else 32
    if vals["bits"] > max_bits:
        raise chk.fail(_join(path, "bits"), f"{vals['bits']} is above the maximum {max_bits} for integer "
                                            f"{'biases' if role == 'bias' else 'tensors'}")
    if (vals["granularity"] == "per_group") != (vals["group_size"] is not None):
        raise chk.fail(_join(path, "group_size"), "group_size is required with granularity per_group "
                                                  "and allowed only there")
    zp = vals["zero_point"]
    if zp is None:
        zp = ("zero" if vals["signed"] else "midpoint") if vals["symmetric"] else "free"
    if vals["symmetric"] and zp == "free":
        raise chk.fail(_join(path, "zero_point"),
                       "'free' contradicts symmetric: true; allowed: zero, midpoint")
    if not vals["symmetric"] and zp != "free":
        raise chk.fail(_join(path, "zero_point"), f"{zp!r} contradicts symmetric: false; allowed: free")
    if zp == "midpoint" and vals["signed"]:
        raise chk.fail(_join(path, "zero_point"),
                       "'midpoint' applies to unsigned tensors only; allowed: zero")
    if vals["scale_kind"] == "pow2" and vals["quantize_formula"] not in ("pow2_exact",):
        raise chk.fail(_join(path, "quantize_formula"),
                       f"{vals['quantize_formula']!r} does not apply to scale_kind pow2; allowed: pow2_exact")
    if vals["scale_kind"] != "pow2" and vals["quantize_formula"] == "pow2_exact":
        raise chk.fail(_join(path, "quantize_formula"),
                       "'pow2_exact' needs scale_kind pow2; "
                       "allowed: divide, multiply_reciprocal, fma_reciprocal")
    vals["zero_point"] = zp
    out = TensorRole(role=role, **vals)
    if out.quant_range is not None and not out.qmin <= out.quant_range[0] < out.quant_range[1] <= out.qmax:
        raise chk.fail(_join(path, "quant_range"), f"{list(out.quant_range)} is outside the storage range "
                                                   f"[{out.qmin}, {out.qmax}] of {out.bits}-bit "
                                                   f"{'signed' if out.signed else 'unsigned'} values")
    return out


def _requant(chk: _Checker, path: str, raw: Any) -> Requant:
    data = chk.mapping(path, raw)
    scheme = chk.value(_join(path, "scheme"), data.get("scheme"), Key("enum", choices=tuple(REQUANT_SCHEMES)))
    specs = REQUANT_SCHEMES[scheme]
    chk.keys(path, data, ("scheme", *specs))
    params = chk.section(path, {k: v for k, v in data.items() if k != "scheme"}, specs)
    if scheme == "pow2_shift" and params["shift_cut_min"] > params["shift_cut_max"]:
        raise chk.fail(_join(path, "shift_cut_min"), "must not exceed shift_cut_max")
    return Requant(scheme=scheme, params=MappingProxyType(params))


def _output_params(chk: _Checker, path: str, raw: Any) -> OutputParams | None:
    if raw is None:
        return None
    if raw == "same_as_input":
        return OutputParams(same_as_input=True)
    if not isinstance(raw, dict):
        raise chk.fail(path, f"expected 'same_as_input' or {{scale, zero_point}}, got {raw!r}")
    vals = chk.section(path, raw, {"scale": Key("float", minimum=0.0), "zero_point": Key("int")})
    if vals["scale"] <= 0:
        raise chk.fail(_join(path, "scale"), "must be positive")
    return OutputParams(scale=vals["scale"], zero_point=vals["zero_point"])


def _op(chk: _Checker, path: str, op_kind: str, raw: Any) -> OpImpl:
    data = chk.mapping(path, raw)
    if ("kernel" in data) == ("fallback" in data):
        raise chk.fail(path, "give exactly one of 'kernel' (an integer implementation) or 'fallback' "
                             f"({', '.join(FALLBACKS)})")
    if "fallback" in data:
        chk.keys(path, data, _FALLBACK_KEYS)
        fallback = chk.value(_join(path, "fallback"), data["fallback"], Key("enum", choices=FALLBACKS))
        return OpImpl(op_kind=op_kind, source=path, status=None, fallback=fallback,
                      output_params=_output_params(chk, _join(path, "output_params"),
                                                   data.get("output_params")),
                      note=chk.value(_join(path, "note"), data.get("note", ""), OP_KEYS["note"]))
    kernel = chk.value(_join(path, "kernel"), data["kernel"], Key("enum", choices=tuple(KERNELS)))
    spec = KERNELS[kernel]
    if op_kind != "default" and op_kind not in spec.op_kinds:
        able = [k for k, s in KERNELS.items() if op_kind in s.op_kinds]
        raise chk.fail(_join(path, "kernel"), f"{kernel!r} cannot run {op_kind}; kernels for {op_kind}: "
                                              f"{', '.join(able)}")
    if op_kind == "default" and kernel != "float32":
        raise chk.fail(_join(path, "kernel"), f"{kernel!r} cannot be the default; the default must be a "
                                              f"fallback ({', '.join(FALLBACKS)}) or kernel 'float32'")
    allowed = ["kernel", "output_params", "fuse", "status", "note"]
    if spec.params:
        allowed.append("params")
    if spec.requant != "forbidden":
        allowed.append("requant")
    if kernel in _GEMM_KERNELS:
        allowed.append("gemm")
    if kernel == "depthwise_conv2d":
        allowed.append("depthwise_saturation")
    chk.keys(path, data, allowed)
    vals = chk.section(path, {k: v for k, v in data.items() if k not in ("kernel", "requant", "params",
                                                                           "output_params")},
                       OP_KEYS, allowed=[a for a in allowed if a not in ("kernel", "requant", "params",
                                                                         "output_params")])
    requant = None
    if spec.requant == "required" and data.get("requant") is None:
        raise chk.fail(path, f"kernel {kernel!r} needs a 'requant' map; "
                             f"schemes: {', '.join(REQUANT_SCHEMES)}")
    if data.get("requant") is not None:
        requant = _requant(chk, _join(path, "requant"), data["requant"])
    params = chk.section(_join(path, "params"), data.get("params"), spec.params)
    return OpImpl(op_kind=op_kind, source=path, kernel=kernel, requant=requant,
                  gemm=vals.get("gemm"), depthwise_saturation=vals.get("depthwise_saturation"),
                  output_params=_output_params(chk, _join(path, "output_params"), data.get("output_params")),
                  fuse=vals["fuse"], params=MappingProxyType(params), status=vals["status"],
                  note=vals["note"])


def check_top_level(file: str, raw: Any) -> dict:
    """Check the keys of one file before merging: a mapping, known top-level keys, schema_version 1, name.

    Returns the mapping. Nested keys are checked after ``extends:`` is applied (:func:`build_target`).
    """
    chk = _Checker(file)
    data = chk.mapping("", raw)
    if not data:
        raise chk.fail("", "empty target file; expected a mapping with schema_version, name, ...")
    chk.keys("", data, tuple(TOP_KEYS))
    if "schema_version" not in data:
        raise chk.fail("", f"missing required key 'schema_version' (this hwsim reads {SCHEMA_VERSION})")
    version = chk.value("schema_version", data["schema_version"], TOP_KEYS["schema_version"])
    if version != SCHEMA_VERSION:
        raise chk.fail("schema_version", f"{version!r} is not supported; allowed: {SCHEMA_VERSION}")
    if "name" not in data:
        raise chk.fail("", "missing required key 'name'")
    name = chk.value("name", data["name"], TOP_KEYS["name"])
    if not _NAME_RE.match(name):
        raise chk.fail("name", f"{name!r} is not a valid name "
                               "(letters, digits, '_', '.', '-'; starts with a letter)")
    for key in ("extends", "override", "description"):
        if key in data:
            chk.value(key, data[key], TOP_KEYS[key])
    return data


def build_target(file: str, merged: Mapping[str, Any], source: str = "") -> Target:
    """Validate a merged target mapping and build the resolved :class:`Target`.

    Parameters
    ----------
    file : str
        File named in error messages (the file whose resolution is being built).
    merged : mapping
        The target's mapping after ``extends:`` has been applied.
    source : str
        Where the target came from (``builtin``, a folder, an entry point), kept in ``Target.source``.

    Raises
    ------
    TargetError
        Unknown key, invalid value or missing required key, naming ``file`` and the key path.
    """
    chk = _Checker(file)
    top = chk.section("", merged, TOP_KEYS)
    num = chk.mapping("numerics", top["numerics"])
    chk.keys("numerics", num, ("activations", "weights", "bias", "accumulator", "calibration"))
    roles = {}
    for role in ("activations", "weights", "bias"):
        if role not in num:
            raise chk.fail("numerics", f"missing required key {role!r}")
        roles[role] = _role(chk, f"numerics.{role}", num[role], role)
    if "accumulator" not in num:
        raise chk.fail("numerics", "missing required key 'accumulator'")
    acc = Accumulator(**chk.section("numerics.accumulator", num["accumulator"], ACCUMULATOR_KEYS))
    cal = Calibration(**chk.section("numerics.calibration", num.get("calibration"), CALIBRATION_KEYS))
    numerics = Numerics(accumulator=acc, calibration=cal, **roles)

    ops_raw = chk.mapping("ops", top["ops"])
    chk.keys("ops", ops_raw, ("default", *OP_KINDS))
    if "default" not in ops_raw:
        raise chk.fail("ops", "missing required key 'default' (a fallback for op kinds without an entry)")
    ops = {kind: _op(chk, f"ops.{kind}", kind, ops_raw[kind]) for kind in ("default", *OP_KINDS)
           if kind in ops_raw}
    act = numerics.activations
    for kind, impl in ops.items():
        out = impl.output_params
        if act.format == "int" and out is not None and out.zero_point is not None \
                and not act.qmin <= out.zero_point <= act.qmax:
            raise chk.fail(f"ops.{kind}.output_params.zero_point",
                           f"{out.zero_point} is outside the activation range [{act.qmin}, {act.qmax}]")
    cost = None
    if top["cost"] is not None:
        vals = chk.section("cost", top["cost"], COST_KEYS)
        cost = CostParams(**vals)
    return Target(name=top["name"], family=top["family"], description=top["description"],
                  numerics=numerics, ops=MappingProxyType(ops), cost=cost, extends=top["extends"],
                  source=source, schema_version=top["schema_version"])
