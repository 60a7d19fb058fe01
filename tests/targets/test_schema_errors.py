"""Every invalid target description raises TargetError naming the file and the key path, and listing the
allowed keys or values."""

from __future__ import annotations

import pytest
from conftest import MINIMAL

from hwsim.errors import TargetError
from hwsim.targets import load_target
from hwsim.targets.schema import KERNELS, OP_KINDS, ROLE_KEYS, ROUNDING_MODES, TOP_KEYS

BASE = MINIMAL.format(name="bad")
ROUNDINGS = ", ".join(ROUNDING_MODES)

# (id, text replaced in the minimal target, replacement, expected "key.path: message" fragment)
CASES = [
    ("unknown top-level key", "family: generic", "family: generic\nfamly: dpu",
     f"famly: unknown key 'famly'; allowed keys: {', '.join(TOP_KEYS)}"),
    ("family", "family: generic", "family: nvidia",
     "family: 'nvidia' is not one of intel, tflite, dpu, generic"),
    ("schema version", "schema_version: 1", "schema_version: 2",
     "schema_version: 2 is not supported; allowed: 1"),
    ("name type", "name: bad", "name: [bad]", "name: expected a string, got ['bad']"),
    ("rounding", "narrow: true,", "narrow: true, rounding: HALF_EVEN,",
     f"numerics.weights.rounding: 'HALF_EVEN' is not one of {ROUNDINGS}"),
    ("unknown role key", "narrow: true,", "narrow: true, nbits: 4,",
     f"numerics.weights.nbits: unknown key 'nbits'; allowed keys: {', '.join(ROLE_KEYS)}"),
    ("unknown numerics key", "  accumulator:", "  outputs: {bits: 8}\n  accumulator:",
     "numerics.outputs: unknown key 'outputs'; "
     "allowed keys: activations, weights, bias, accumulator, calibration"),
    ("int type", "activations: {bits: 8,", "activations: {bits: eight,",
     "numerics.activations.bits: expected an integer, got 'eight'"),
    ("bool type", "activations: {bits: 8, signed: true", "activations: {bits: 8, signed: 1",
     "numerics.activations.signed: expected true or false, got 1"),
    ("bits range", "activations: {bits: 8,", "activations: {bits: 0,",
     "numerics.activations.bits: 0 is below the minimum 1"),
    ("granularity", "per_channel}", "per_row}",
     "numerics.weights.granularity: 'per_row' is not one of per_tensor, per_channel, per_group"),
    ("per_group without group_size", "per_channel}", "per_group}",
     "numerics.weights.group_size: group_size is required with granularity per_group"),
    ("zero point contradicts symmetric", "signed: true, symmetric: false}",
     "signed: true, symmetric: false, zero_point: zero}",
     "numerics.activations.zero_point: 'zero' contradicts symmetric: false; allowed: free"),
    ("quant_range outside storage", "narrow: true,", "narrow: true, quant_range: [-128, 127],",
     "numerics.weights.quant_range: [-128, 127] is outside the storage range [-127, 127]"),
    ("quant_range shape", "narrow: true,", "narrow: true, quant_range: [5],",
     "numerics.weights.quant_range: expected [lo, hi] with integers lo < hi, got [5]"),
    ("pow2 formula", "activations: {bits: 8,",
     "activations: {scale_kind: pow2, quantize_formula: divide, bits: 8,",
     "numerics.activations.quantize_formula: 'divide' does not apply to scale_kind pow2; "
     "allowed: pow2_exact"),
    ("float role key", "bias: {bits: 32, signed: true, symmetric: true}", "bias: {format: float, bits: 32, "
     "signed: true}", "numerics.bias.signed: unknown key 'signed'; allowed keys: format, bits, rounding"),
    ("float role bits", "bias: {bits: 32, signed: true, symmetric: true}", "bias: {format: float, bits: 8}",
     "numerics.bias.bits: 8 is not one of 16, 32, 64 (float format)"),
    ("overflow", "overflow: WRAP", "overflow: CLAMP",
     "numerics.accumulator.overflow: 'CLAMP' is not one of SATURATE, WRAP"),
    ("missing accumulator", "  accumulator: {bits: 32, overflow: WRAP}\n", "",
     "numerics: missing required key 'accumulator'"),
    ("calibration key", "  accumulator:", "  calibration: {observer: magic}\n  accumulator:",
     "numerics.calibration.observer: 'magic' is not one of minmax, moving_average_minmax"),
    ("unknown op kind", "  Conv2D:\n", "  Conv3D: {fallback: float}\n  Conv2D:\n",
     f"ops.Conv3D: unknown key 'Conv3D'; allowed keys: default, {', '.join(OP_KINDS)}"),
    ("missing default", "  default: {fallback: float}\n", "", "ops: missing required key 'default'"),
    ("fallback value", "default: {fallback: float}", "default: {fallback: gpu}",
     "ops.default.fallback: 'gpu' is not one of float, cpu"),
    ("default is an op-specific kernel", "default: {fallback: float}", "default: {kernel: max_pool}",
     "ops.default.kernel: 'max_pool' cannot be the default; the default must be a fallback (float, cpu)"),
    ("kernel for another op kind", "kernel: conv2d", "kernel: lut",
     "ops.Conv2D.kernel: 'lut' cannot run Conv2D; kernels for Conv2D: conv2d, float32"),
    ("unknown kernel", "kernel: conv2d", "kernel: conv3d",
     f"ops.Conv2D.kernel: 'conv3d' is not one of {', '.join(KERNELS)}"),
    ("kernel and fallback", "kernel: conv2d", "kernel: conv2d\n    fallback: float",
     "ops.Conv2D: give exactly one of 'kernel' (an integer implementation) or 'fallback' (float, cpu)"),
    ("missing requant", "    requant: {scheme: fixed_point_double}\n", "",
     "ops.Conv2D: kernel 'conv2d' needs a 'requant' map; schemes: none, float_scale, fixed_point_double"),
    ("unknown scheme", "scheme: fixed_point_double", "scheme: fixed_point",
     "ops.Conv2D.requant.scheme: 'fixed_point' is not one of none, float_scale, fixed_point_double, "
     "fixed_point_single, fixed_point_int64, fixed_point_float_scale, pow2_shift"),
    ("parameter of another scheme", "scheme: fixed_point_double}",
     "scheme: fixed_point_double, rounding: HALF_UP}",
     "ops.Conv2D.requant.rounding: unknown key 'rounding'; allowed keys: scheme, scale_precision"),
    ("float_scale parameter value", "scheme: fixed_point_double}", "scheme: float_scale, clamp: never}",
     "ops.Conv2D.requant.clamp: 'never' is not one of before_round, after_round"),
    ("gemm mode", "    fuse:", "    gemm: avx512\n    fuse:",
     "ops.Conv2D.gemm: 'avx512' is not one of exact, avx2_pairs"),
    ("key of another kernel", "    fuse:", "    depthwise_saturation: none\n    fuse:",
     "ops.Conv2D.depthwise_saturation: unknown key 'depthwise_saturation'; "
     "allowed keys: kernel, output_params, fuse, status, note, requant, gemm"),
    ("fuse list", "fuse: [ReLU, ReLU6]", "fuse: [ReLU, Sigmoid]",
     "ops.Conv2D.fuse[1]: 'Sigmoid' is not one of ReLU, ReLU6, LeakyReLU, HardSigmoid, HardSwish"),
    ("status", "    fuse:", "    status: maybe\n    fuse:",
     "ops.Conv2D.status: 'maybe' is not one of exact, derived, approximate"),
    ("kernel parameter", "  Conv2D:\n",
     "  AvgPool: {kernel: tflite_avg_pool, params: {rounding: NEAREST}}\n  Conv2D:\n",
     f"ops.AvgPool.params.rounding: 'NEAREST' is not one of {ROUNDINGS}"),
    ("unknown kernel parameter", "  Conv2D:\n",
     "  LeakyReLU:\n    kernel: dpu_leaky_relu\n    params: {alpha: 0.1}\n"
     "    requant: {scheme: pow2_shift}\n  Conv2D:\n",
     "ops.LeakyReLU.params.alpha: unknown key 'alpha'; allowed keys: alpha_numerator, alpha_denominator"),
    ("factor table", "  Conv2D:\n",
     "  AvgPool:\n    kernel: dpu_avg_pool\n    params: {factor_table: {3x3: 0.109}}\n"
     "    requant: {scheme: pow2_shift}\n  Conv2D:\n",
     "ops.AvgPool.params.factor_table.3x3: expected [multiplier, shift] (non-negative integers), got 0.109"),
    ("output params", "  Conv2D:\n",
     "  Sigmoid: {kernel: lut, output_params: {scale: 0.5, zp: 0}}\n  Conv2D:\n",
     "ops.Sigmoid.output_params.zp: unknown key 'zp'; allowed keys: scale, zero_point"),
    ("output zero point outside the activation range", "  Conv2D:\n",
     "  Sigmoid: {kernel: lut, output_params: {scale: 0.5, zero_point: 200}}\n  Conv2D:\n",
     "ops.Sigmoid.output_params.zero_point: 200 is outside the activation range [-128, 127]"),
    ("cost key", "ops:", "cost: {clock_ghz: 1.2}\nops:",
     "cost.clock_ghz: unknown key 'clock_ghz'; allowed keys: clock_mhz, cores, pixel_parallel"),
    ("cost value", "ops:", "cost: {dram_gbps: -1}\nops:", "cost.dram_gbps: -1 is below the minimum 0"),
    ("cost type", "ops:", "cost: {cores: 2.5}\nops:", "cost.cores: expected an integer, got 2.5"),
]


@pytest.mark.parametrize("old, new, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_names_file_and_key_path_and_lists_allowed_values(folder, old, new, expected):
    assert old in BASE
    path = folder.write("bad", BASE.replace(old, new, 1))
    with pytest.raises(TargetError) as err:
        load_target("bad", [folder.path])
    message = str(err.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message
    assert "\n" not in message


def test_the_minimal_target_is_valid(folder):
    folder.write("bad", BASE)
    assert load_target("bad", [folder.path]).name == "bad"


@pytest.mark.parametrize("text, expected", [
    ("name: [unclosed\n", "invalid YAML"),
    ("- just\n- a list\n", "expected a mapping, got list"),
    ("", "empty target file"),
    ("schema_version: 1\nfamily: dpu\n", "missing required key 'name'"),
    ("name: bad\n", "missing required key 'schema_version' (this hwsim reads 1)"),
    ("schema_version: 1\nname: other\n", "name: 'other' must equal the file name 'bad'"),
    ("schema_version: 1\nname: bad\noverride: yes please\n", "override: expected true or false"),
])
def test_file_level_errors(folder, text, expected):
    path = folder.write("bad", text)
    with pytest.raises(TargetError) as err:
        load_target("bad", [folder.path])
    assert str(err.value).startswith(str(path)) and expected in str(err.value)


def test_unknown_target_lists_the_available_ones():
    with pytest.raises(TargetError) as err:
        load_target("arm_tflit")
    assert str(err.value).startswith("unknown target 'arm_tflit'; available: arm_tflite, arm_tflite_fp16")


def test_missing_target_dir_is_an_error(tmp_path):
    with pytest.raises(TargetError, match="--target-dir: .* is not a folder"):
        load_target("fpga_dpu", [tmp_path / "nowhere"])
