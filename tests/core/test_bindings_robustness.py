"""No Python input may crash the process: every numerics/ops binding, fed wrong dtypes, shapes,
empty, 0-d and non-contiguous arrays, None and out-of-range scalars, either works or raises
TypeError/ValueError (OverflowError for Python ints that do not fit a C integer)."""

import itertools

import numpy as np
import pytest

from hwsim import _core

RM = _core.RoundingMode
OK_ERRORS = (TypeError, ValueError, OverflowError)

BAD_VALUES = [
    None, 0, -1, 1 << 70, 0.5, np.nan, "x", [], [[1, 2], [3, 4]], np.zeros(0, np.int32), np.zeros((0, 3), np.int8),
    np.array(5, np.int32), np.arange(12, dtype=np.int64).reshape(3, 4)[:, ::2], np.ones(5, np.float32),
    np.ones(3, np.float64) * np.inf, np.ones((2, 2, 2, 2), np.int8), np.ones(7, np.uint8), np.ones(4, np.int16),
    np.array([True, False]), RM.HALF_UP,
]

CALLS = {
    "round_float": (np.ones(4), RM.HALF_UP),
    "rounding_right_shift": (np.ones(4, np.int64), 3, RM.FLOOR),
    "saturating_rounding_doubling_high_mul": (np.ones(4, np.int32), np.ones(4, np.int32)),
    "saturating_doubling_high_mul": (np.ones(4, np.int16), np.ones(4, np.int16)),
    "rounding_divide_by_pot": (np.ones(4, np.int32), 2),
    "quantize_multiplier": (0.3,),
    "multiply_by_quantized_multiplier": (np.ones(4, np.int32), 1 << 30, -2),
    "requantize_float": (np.ones((2, 3), np.int32), 0.1, 0, -128, 127),
    "requantize_fixed_point": (np.ones((2, 3), np.int32), 1 << 30, -2, 0, -128, 127),
    "requantize_pow2": (np.ones((2, 3), np.int32), 2),
    "quantize": (np.ones((2, 3), np.float32), 0.1, 0, -128, 127),
    "dequantize": (np.ones((2, 3), np.int8), 0.1, 0),
    "pack_bits": (np.ones(5, np.int8), 4),
    "unpack_bits": (np.ones(3, np.uint8), 4, 5),
    "add_float_scale": (np.ones(4, np.int8), np.ones(4, np.int8), 0.1, 0, 0.1, 0, 0.2, 0),
    "mul_float_scale": (np.ones(4, np.int8), np.ones(4, np.int8), 0.1, 0, 0.1, 0, 0.2, 0),
    "eltwise_add_dpu": (np.ones(4, np.int8), np.ones(4, np.int8), 3, 4, 2),
    "hard_sigmoid_dpu": (np.ones(4, np.int8), 4, 7),
    "max_pool2d": (np.ones((1, 4, 4, 2), np.int8), 2),
    "avg_pool2d_tflite": (np.ones((1, 4, 4, 2), np.int8), 2),
    "avg_pool2d_dpu": (np.ones((1, 4, 4, 2), np.int8), 2),
    "dpu_avgpool_factor": (3, 3),
    "apply_lut": (np.ones(4, np.int8), np.zeros(256, np.int8)),
    "lut_tflite_int8": ("logistic", 0.1, 0, 1 / 256, -128),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_valid_call_works(name):
    getattr(_core, name)(*CALLS[name])


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_bad_argument_is_a_python_error(name):
    args = CALLS[name]
    fn = getattr(_core, name)
    for position, bad in itertools.product(range(len(args)), BAD_VALUES):
        trial = list(args)
        trial[position] = bad
        try:
            fn(*trial)
        except OK_ERRORS:
            pass


def test_tflite_ops_with_bad_keywords():
    a = np.ones(4, np.int8)
    base = dict(input1_offset=0, input1_multiplier=1 << 30, input1_shift=0, input2_offset=0,
                input2_multiplier=1 << 30, input2_shift=0, output_multiplier=1 << 30, output_shift=0, output_offset=0)
    _core.add_int8_tflite(a, a, **base)
    for key, bad in itertools.product(base, [None, 1 << 40, -(1 << 40), 0.5, "x", np.ones(3, np.int32)]):
        with pytest.raises(OK_ERRORS):
            _core.add_int8_tflite(a, a, **{**base, key: bad})


def test_extreme_shifts_saturate_instead_of_overflowing():
    a = np.array([127, -128], np.int16)
    # p_out - p_in = 64: a left shift by 64 saturates.
    np.testing.assert_array_equal(_core.eltwise_add_dpu(a, a, -32, -32, 32), [32767, -32768])
    acc = np.array([[(1 << 31) - 1, -(1 << 31)]], np.int32)
    np.testing.assert_array_equal(_core.requantize_pow2(acc, -32, 0, -128, 127, bias=np.array([1, -1], np.int32),
                                                        shift_bias=32), [[127, -128]])
