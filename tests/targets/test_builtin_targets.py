"""Built-in targets: every one loads and validates, every IR op kind resolves, and the numbers taken from
numerics.md / perf-anchors.md are the ones the sections cite (the section is named in each test)."""

from __future__ import annotations

import functools
import json
from fractions import Fraction
from importlib import resources

import pytest
import yaml

from hwsim.graph import OPS
from hwsim.quant.scheme import PARAMS_RULES, onnxruntime_qrange, torch_qrange
from hwsim.targets import OP_KINDS, Target, list_targets
from hwsim.targets import load_target as _load_target
from hwsim.targets import schema
from hwsim.targets.dpu import avgpool_factor

# Targets are immutable, so the tests share one load per name.
load_target = functools.lru_cache(maxsize=None)(_load_target)

BUILTIN_NAMES = sorted(
    e.name.rsplit(".", 1)[0] for e in resources.files("hwsim._builtin_targets").iterdir()
    if e.name.endswith(".yaml"))

EXPECTED_BUILTINS = {
    "intel_int8", "intel_int8_avx2", "intel_int8_avx2_reduce_range", "intel_int8_fbgemm", "arm_tflite",
    "arm_tflite_xnnpack", "arm_tflite_fp16", "fpga_dpu", "fpga_dpu_w4a8", "fpga_dpu_w4a4", "fpga_dpu_w2a8",
    "fpga_dpu_b1152", "fpga_dpu_zcu102", "fpga_dpu_zcu104", "intel_int8_i7_1185g7", "intel_int8_xeon_8380",
    "intel_int8_avx2_i3_8100", "arm_tflite_pixel3", "arm_tflite_pixel4", "arm_tflite_int16x8",
}


def test_the_builtin_set_is_the_documented_one():
    assert set(BUILTIN_NAMES) == EXPECTED_BUILTINS
    assert [i.name for i in list_targets()] == BUILTIN_NAMES
    assert {i.source for i in list_targets()} == {"builtin"}


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_builtin_target_loads_and_prints_as_plain_data(name):
    target = load_target(name)
    assert isinstance(target, Target) and target.name == name and target.schema_version == 1
    data = target.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert yaml.safe_load(yaml.safe_dump(data, sort_keys=False)) == data


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_builtin_yaml_cites_its_sources(name):
    text = (resources.files("hwsim._builtin_targets") / f"{name}.yaml").read_text()
    assert "[" in text and "#" in text  # every file carries bracketed section citations in comments
    if "numerics:" in text and "extends:" not in text:
        assert "numerics.md" in text


def test_ir_op_kinds_are_the_target_op_kinds():
    # DepthwiseConv2D is a Conv2D with groups == C in the IR; targets give it its own entry.
    assert set(OP_KINDS) == set(OPS) | {"DepthwiseConv2D"}


def test_params_rules_are_the_quantizers():
    assert set(schema.PARAMS_RULES) == set(PARAMS_RULES)


@pytest.mark.parametrize("name", BUILTIN_NAMES)
@pytest.mark.parametrize("op_kind", OP_KINDS)
def test_every_op_kind_resolves_to_a_kernel_or_an_explicit_fallback(name, op_kind):
    impl = load_target(name).op(op_kind)
    assert impl.op_kind == op_kind
    assert (impl.kernel is None) != (impl.fallback is None)
    assert impl.source in (f"ops.{op_kind}", "ops.default")
    if impl.kernel is not None:
        assert op_kind in schema.KERNELS[impl.kernel].op_kinds
        if schema.KERNELS[impl.kernel].requant == "required":
            assert impl.requant is not None


# ---------------------------------------------------------------------------------------------------------
# fpga_dpu: numerics.md part C; perf-anchors.md section 2


def test_dpu_tensors_are_8bit_symmetric_pow2_full_range():
    # C.2: symmetric, per_tensor, poweroftwo, narrow_range rejected ("Not support narrow_range in DPU device")
    n = load_target("fpga_dpu").numerics
    for role in (n.activations, n.weights, n.bias):  # C.2: bias is also 8-bit with its own fix_pos
        assert (role.bits, role.signed, role.symmetric, role.scale_kind) == (8, True, True, "pow2")
        assert (role.granularity, role.narrow, role.qmin, role.qmax) == ("per_tensor", False, -128, 127)


def test_dpu_rounding_activations_half_up_weights_and_bias_half_away():
    # C.2 method 2 (half_up) for activations, method 3 (std::round) for weights and bias; section 7 measured
    n = load_target("fpga_dpu").numerics
    assert n.activations.rounding == "HALF_UP"
    assert n.weights.rounding == n.bias.rounding == "HALF_AWAY_FROM_ZERO"


def test_dpu_fix_pos_search_defaults():
    # C.3: scope 5 (inputs 1), max_fix_position 12, all-zero sentinel 18, mode of per-batch positions
    c = load_target("fpga_dpu").numerics.calibration
    assert (c.fix_pos_scope, c.input_fix_pos_scope, c.fix_pos_max, c.fix_pos_all_zero) == (5, 1, 12, 18)
    assert c.fix_pos_statistic == "mode"


def test_dpu_conv_requant_is_a_half_up_shift_with_the_quantizer_shift_ranges():
    # C.4: shift_cut in [0, 16]; shift_bias in [min(0, shift_cut - 16), 16]; DPU_ROUND
    conv = load_target("fpga_dpu").op("Conv2D")
    assert conv.requant.scheme == "pow2_shift"
    assert dict(conv.requant.params) == {"rounding": "HALF_UP", "shift_cut_min": 0, "shift_cut_max": 16,
                                         "shift_bias_min_offset": -16, "shift_bias_max": 16}
    assert {"ReLU", "ReLU6", "LeakyReLU"} <= set(conv.fuse)  # section 7: no rounding in between


def test_dpu_leaky_relu_slope_is_26_over_256():
    # C.5: the DPU supports only alpha = 26/256 = 0.1015625
    p = load_target("fpga_dpu").op("LeakyReLU").params
    assert Fraction(p["alpha_numerator"], p["alpha_denominator"]) == Fraction(26, 256) == Fraction(0.1015625)


def test_dpu_hsigmoid_constant_is_2731_over_2_pow_14():
    # C.6: relu6(x + 3) * 2731 / 16384, output fix_pos >= 7, input fix_pos >= 0; hswish quantizes at p = 7
    p = load_target("fpga_dpu").op("HardSigmoid").params
    assert (p["multiplier"], p["shift"], p["min_output_fix_pos"], p["min_input_fix_pos"]) == (2731, 14, 7, 0)
    assert load_target("fpga_dpu").op("HardSwish").params["internal_fix_pos"] == 7


@pytest.mark.parametrize("size, factor", [("3x3", Fraction(7, 64)), ("5x5", Fraction(10, 256)),
                                          ("6x6", Fraction(7, 256)), ("7x7", Fraction(21, 1024)),
                                          ("14x14", Fraction(21, 4096))])
@pytest.mark.parametrize("op_kind", ["AvgPool", "GlobalAvgPool"])
def test_dpu_avgpool_factor_table(op_kind, size, factor):
    # C.7 fixed table (section 5 test vectors); section 7: global/adaptive pooling uses the same factors
    impl = load_target("fpga_dpu").op(op_kind)
    multiplier, shift = impl.params["factor_table"][size]
    assert Fraction(multiplier, 2**shift) == factor
    assert impl.params["count"] == "kernel_size"


@pytest.mark.parametrize("op_kind", ["Softmax", "Sigmoid", "Tanh", "LayerNorm", "GELU", "SiLU", "MatMul"])
def test_dpu_sends_unsupported_ops_to_the_cpu(op_kind):
    # C.8: tanh/sigmoid/softmax run on the CPU after partitioning (quant_input_output)
    assert load_target("fpga_dpu").op(op_kind).fallback == "cpu"


def test_dpu_b4096_cost_parameters():
    # perf-anchors 2.1 (PP 8, ICP 16, OCP 16), 1.2 (0.13 ms per subgraph call, ~6-6.5 GB/s), 2.2, 2.4
    c = load_target("fpga_dpu").cost
    assert (c.pixel_parallel, c.input_channel_parallel, c.output_channel_parallel) == (8, 16, 16)
    macs = c.pixel_parallel * c.input_channel_parallel * c.output_channel_parallel
    assert c.int8_macs_per_cycle_per_core == macs
    assert (c.clock_mhz, c.cores, c.bank_depth_words) == (300, 1, 2048)
    assert c.per_subgraph_overhead_ms == 0.13 and 6.0 <= c.dram_gbps <= 6.5
    assert c.sram_kib == 255 * 36 * 1024 / 8 / 1024


def test_dpu_b1152_and_board_configurations():
    # perf-anchors 2.1: B1152 = 4 x 12 x 12; 1.1: ZCU102 3 x B4096 @ 281 MHz, ZCU104 2 x B4096 @ 300 MHz
    b = load_target("fpga_dpu_b1152").cost
    assert (b.pixel_parallel, b.input_channel_parallel, b.output_channel_parallel) == (4, 12, 12)
    assert b.int8_macs_per_cycle_per_core == 576 and b.sram_kib == 121 * 4.5
    zcu102, zcu104 = load_target("fpga_dpu_zcu102").cost, load_target("fpga_dpu_zcu104").cost
    assert (zcu102.cores, zcu102.clock_mhz) == (3, 281)
    assert (zcu104.cores, zcu104.clock_mhz) == (2, 300)
    assert load_target("fpga_dpu_zcu102").numerics == load_target("fpga_dpu").numerics


@pytest.mark.parametrize("name, w_bits, a_bits", [("fpga_dpu_w4a8", 4, 8), ("fpga_dpu_w4a4", 4, 4),
                                                  ("fpga_dpu_w2a8", 2, 8)])
def test_hypothetical_dpu_bit_widths_change_only_bits(name, w_bits, a_bits):
    # C.9: no statement that DNNDK DPUs ran 4/2-bit; the variants say so in their description
    base, t = load_target("fpga_dpu"), load_target(name)
    assert (t.numerics.weights.bits, t.numerics.activations.bits) == (w_bits, a_bits)
    assert t.numerics.weights.qmin == -(2 ** (w_bits - 1))  # full signed range (D.7), narrow stays false
    assert t.numerics.weights.rounding == base.numerics.weights.rounding
    assert t.ops == base.ops and "Hypothetical" in t.description


# ---------------------------------------------------------------------------------------------------------
# arm_tflite, arm_tflite_xnnpack, arm_tflite_fp16: numerics.md part A and section 7


def test_tflite_quantization_spec():
    # A.1: int8 asymmetric per-tensor activations; symmetric per-channel weights in [-127, 127]; int32 bias
    n = load_target("arm_tflite").numerics
    a, w, b = n.activations, n.weights, n.bias
    assert (a.bits, a.signed, a.symmetric, a.granularity) == (8, True, False, "per_tensor")
    assert (a.qmin, a.qmax) == (-128, 127)
    assert (w.narrow, w.symmetric, w.zero_point, w.granularity, w.qmin, w.qmax) == (
        True, True, "zero", "per_channel", -127, 127)
    assert (b.bits, b.zero_point) == (32, "zero")
    assert a.rounding == "HALF_AWAY_FROM_ZERO" and a.quantize_formula == "divide"  # A.1 AffineQuantize


def test_tflite_rounds_conv_twice_and_fully_connected_once():
    # section 7: reference CONV_2D / DEPTHWISE_CONV_2D = double rounding, FULLY_CONNECTED = single rounding
    t = load_target("arm_tflite")
    assert t.op("Conv2D").requant.scheme == "fixed_point_double"
    assert t.op("DepthwiseConv2D").requant.scheme == "fixed_point_double"
    assert t.op("Dense").requant.scheme == "fixed_point_single"
    assert t.op("Conv2D").requant.params["scale_precision"] == "float64"  # A.2: scales widened to double


@pytest.mark.parametrize("op_kind, scale, zero_point", [
    ("Sigmoid", 1 / 256, -128), ("Softmax", 1 / 256, -128), ("Tanh", 1 / 128, 0)])
def test_tflite_fixed_output_params(op_kind, scale, zero_point):
    # A.1 spec table: LOGISTIC (1/256, -128), SOFTMAX (1/256, -128), TANH (1/128, 0)
    out = load_target("arm_tflite").op(op_kind).output_params
    assert (out.scale, out.zero_point) == (scale, zero_point)


def test_tflite_elementwise_and_pooling_kernels():
    t = load_target("arm_tflite")
    assert (t.op("Add").kernel, t.op("Add").params["left_shift"]) == ("tflite_add", 20)  # A.5
    pool = t.op("AvgPool")  # A.6: RHAZ of the raw sum over in-bounds taps, output params = input params
    assert (pool.kernel, pool.params["rounding"], pool.params["count"]) == (
        "tflite_avg_pool", "HALF_AWAY_FROM_ZERO", "in_bounds")
    assert pool.output_params.same_as_input and t.op("MaxPool").output_params.same_as_input
    lut = t.op("Sigmoid")  # A.7: float LUT, reciprocal multiply, RHAZ
    assert (lut.kernel, dict(lut.params)) == ("lut", {"function_precision": "float32",
                                                      "scale_apply": "multiply_reciprocal",
                                                      "rounding": "HALF_AWAY_FROM_ZERO"})
    assert t.op("HardSwish").kernel == "tflite_hard_swish"  # A.8
    assert t.op("Softmax").kernel == "tflite_softmax"  # A.9
    assert t.op("LeakyReLU").kernel == "tflite_leaky_relu"  # A.7
    assert t.op("GELU").fallback == "float"


def test_xnnpack_requantizes_in_float32_for_the_ops_it_takes():
    # A.3 xnn_qs8_requantize_fp32: float32 multiply, clamp in float, lrintf (RNE); section 7
    t, ref = load_target("arm_tflite_xnnpack"), load_target("arm_tflite")
    for op_kind in ("Conv2D", "DepthwiseConv2D", "Dense", "Mul", "LeakyReLU", "GlobalAvgPool"):
        r = t.op(op_kind).requant
        assert r.scheme == "float_scale" and r.params["rounding"] == "HALF_TO_EVEN"
        assert (r.params["precision"], r.params["clamp"]) == ("float32", "before_round")
    # measured (tests/oracle/test_tflite_oracle.py): LEAKY_RELU multiplies in 8-bit fixed point, ADD has its
    # own 20-bit multipliers; SOFTMAX is the optimized float table (BUILTIN_REF: gemmlowp fixed point)
    assert t.op("LeakyReLU").params["arithmetic"] == "fixed_point_8bit"
    assert (t.op("Add").kernel, t.op("Add").params["multiplier_bits"]) == ("xnnpack_add", 20)
    assert (t.op("Softmax").params["algorithm"], ref.op("Softmax").params["algorithm"]) == ("float_table",
                                                                                            "fixed_point")
    assert t.op("Sigmoid") == ref.op("Sigmoid")
    assert t.numerics.weights == ref.numerics.weights


def test_tflite_fp16_rounds_weights_to_float16_and_computes_in_float32():
    # A.1 float16 quantization: weights to fp16 with RNE, all math fp32
    t = load_target("arm_tflite_fp16")
    assert (t.numerics.weights.format, t.numerics.weights.bits, t.numerics.weights.rounding) == (
        "float", 16, "HALF_TO_EVEN")
    assert (t.numerics.activations.format, t.numerics.activations.bits) == ("float", 32)
    assert all(t.op(k).kernel == "float32" for k in OP_KINDS)


# ---------------------------------------------------------------------------------------------------------
# Intel: numerics.md part B and section 7


def test_onnxruntime_requant_is_float32_round_half_even():
    # B.5 MlasRequantizeOutput; section 7: round_half_even(float32(acc) * float32(scale))
    t = load_target("intel_int8")
    for op_kind in ("Conv2D", "DepthwiseConv2D", "Dense", "MatMul"):
        r = t.op(op_kind).requant
        assert (r.scheme, r.params["precision"], r.params["scale_precision"], r.params["rounding"]) == (
            "float_scale", "float32", "float32", "HALF_TO_EVEN")
        assert t.op(op_kind).gemm == "exact"  # VPDPBUSD (B.1)
    a, w = t.numerics.activations, t.numerics.weights
    assert (a.signed, a.symmetric, a.rounding, a.quantize_formula) == (False, False, "HALF_TO_EVEN", "divide")
    assert (w.qmin, w.qmax) == onnxruntime_qrange(8, True, symmetric=True)  # [-127, 127]
    assert t.op("Softmax").fallback == "float"  # unfused QDQ ops: DQ -> float -> Q (section 7)


def test_avx2_targets_saturate_pairs_and_reduce_range_reduces_the_weights():
    # B.1: VPMADDUBSW pair saturation; B.5: ORT's reduce_range is on the WEIGHTS
    avx2 = load_target("intel_int8_avx2")
    assert {avx2.op(k).gemm for k in ("Conv2D", "Dense", "MatMul")} == {"avx2_pairs"}
    assert avx2.op("Conv2D").requant == load_target("intel_int8").op("Conv2D").requant
    rr = load_target("intel_int8_avx2_reduce_range").numerics
    ort_reduced = onnxruntime_qrange(8, True, symmetric=True, reduce_range=True)
    assert (rr.weights.quant_min, rr.weights.quant_max) == ort_reduced
    assert 2 * 255 * rr.weights.quant_max <= 32767  # no pair can saturate (B.1)
    assert not rr.activations.reduce_range


def test_fbgemm_reduces_the_activation_range_and_uses_full_range_weights():
    # B.3: quint8 activations reduce_range -> [0, 127]; qint8 per-channel symmetric weights [-128, 127],
    # scale max|w| / 127.5
    n = load_target("intel_int8_fbgemm").numerics
    assert (n.activations.quant_min, n.activations.quant_max) == torch_qrange(8, False, reduce_range=True)
    assert (n.activations.qmin, n.activations.qmax) == (0, 255)  # B.2 step 3 clamps to [0, 255]
    assert (n.weights.qmin, n.weights.qmax, n.weights.symmetric_denominator) == (-128, 127, "half_span")
    assert n.weights.granularity == "per_channel" and n.bias.format == "float"  # B.3: float bias
    assert n.activations.quantize_formula == "fma_reciprocal"  # section 7


def test_fbgemm_requant_and_depthwise_pair_saturation():
    # B.2: float bias divided into accumulator units, float32 multiply, lrintf after; section 7: dw3x3 pairs
    t = load_target("intel_int8_fbgemm")
    r = t.op("Conv2D").requant
    assert (r.params["bias_stage"], r.params["clamp"], r.params["rounding"]) == (
        "float_in_accumulator_units", "after_round", "HALF_TO_EVEN")
    assert t.op("DepthwiseConv2D").depthwise_saturation == "fbgemm_dw3x3_pairs"
    assert t.op("Conv2D").gemm == "exact"  # exact int32 on a VNNI host (section 7)


@pytest.mark.parametrize("name, parent, cores, macs", [
    ("intel_int8_i7_1185g7", "intel_int8", 4, 64), ("intel_int8_xeon_8380", "intel_int8", 80, 128),
    ("intel_int8_avx2_i3_8100", "intel_int8_avx2", 4, 21), ("arm_tflite_pixel3", "arm_tflite", 4, 32),
    ("arm_tflite_pixel4", "arm_tflite", 4, 32)])
def test_cost_validation_configurations(name, parent, cores, macs):
    # perf-anchors 3, 3.1, 4, 4.1
    t, p = load_target(name), load_target(parent)
    assert (t.cost.cores, t.cost.int8_macs_per_cycle_per_core) == (cores, macs)
    assert t.cost.clock_mhz > 0 and t.extends == parent
    assert t.numerics == p.numerics and t.ops == p.ops


@pytest.mark.parametrize("n, factor", [
    (2, Fraction(1, 4)), (4, Fraction(1, 16)), (8, Fraction(1, 64)), (9, Fraction(101, 8192)),
    (10, Fraction(41, 4096)), (11, Fraction(17, 2048)), (12, Fraction(57, 8192)), (13, Fraction(97, 16384)),
    (15, Fraction(73, 16384)), (16, Fraction(1, 256)),
    # the search alone; the target's table overrides these (C.7)
    (3, Fraction(57, 512)), (5, Fraction(41, 1024)), (6, Fraction(57, 2048)),
])
def test_dpu_avgpool_factor_search_for_sizes_outside_the_table(n, factor):
    # numerics.md C.7: "Our computed results" of the S search, and the search results the table overrides
    multiplier, shift = avgpool_factor(n, n, {})
    assert Fraction(multiplier, 2**shift) == factor


def test_dpu_avgpool_factor_table_wins_over_the_search():
    table = load_target("fpga_dpu").op("AvgPool").params["factor_table"]
    assert avgpool_factor(3, 3, table) == (7, 6) and avgpool_factor(3, 6, table) == (7, 8)  # C.7
    assert avgpool_factor(9, 9, table) == avgpool_factor(9, 9, {})


@pytest.mark.parametrize("name", ["fpga_dpu", "intel_int8"])
def test_all_ops_view_lists_every_op_kind_with_its_source(name):
    ops = load_target(name).to_dict(all_ops=True)["ops"]
    assert list(ops) == list(OP_KINDS)
    assert all(entry["source"] in (f"ops.{kind}", "ops.default") for kind, entry in ops.items())
