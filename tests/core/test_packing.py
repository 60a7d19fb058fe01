"""4-bit / 2-bit packing: low-first is the TFLite/ONNX/FBGEMM convention (numerics.md A.1, D.6, D.7)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import _core
from hwsim.emulate import ref_numerics as ref


def test_int2_byte_0x12_unpacks_low_first():
    """numerics.md A.1: int2 byte 0x12 unpacks to {2, 0, 1, 0} (unsigned crumbs, LSBs first)."""
    np.testing.assert_array_equal(_core.unpack_bits(np.array([0x12], np.uint8), 2, 4, signed=False), [2, 0, 1, 0])


def test_int4_low_nibble_first_and_sign_extension():
    """numerics.md A.1/D.7: element 2i in the low nibble, sign-extended; an odd tail sits in a low nibble."""
    packed = _core.pack_bits(np.array([-8, 7, -1], np.int8), 4)
    np.testing.assert_array_equal(packed, [0x78, 0x0F])
    np.testing.assert_array_equal(_core.unpack_bits(packed, 4, 3), [-8, 7, -1])
    high = _core.pack_bits(np.array([-8, 7, -1], np.int8), 4, "high_first")
    np.testing.assert_array_equal(high, [0x87, 0xF0])
    np.testing.assert_array_equal(_core.unpack_bits(high, 4, 3, True, "high_first"), [-8, 7, -1])


@pytest.mark.parametrize("bits", [2, 4])
@pytest.mark.parametrize("order", ["low_first", "high_first"])
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("count", [0, 1, 2, 3, 5, 8, 101])
def test_pack_unpack_round_trip_equals_twin(bits, order, signed, count, rng):
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    v = rng.integers(lo, hi, count, endpoint=True).astype(np.int8 if signed else np.uint8)
    packed = _core.pack_bits(v, bits, order)
    np.testing.assert_array_equal(packed, ref.pack_bits(v, bits, order))
    assert packed.size == (count * bits + 7) // 8
    out = _core.unpack_bits(packed, bits, count, signed, order)
    np.testing.assert_array_equal(out, v)
    np.testing.assert_array_equal(out, ref.unpack_bits(packed, bits, count, signed, order))


@settings(max_examples=100, deadline=None)
@given(data=st.binary(min_size=0, max_size=64), bits=st.sampled_from([2, 4]), signed=st.booleans())
def test_unpack_then_pack_is_identity_on_bytes(data, bits, signed):
    b = np.frombuffer(data, dtype=np.uint8)
    count = b.size * 8 // bits
    np.testing.assert_array_equal(_core.pack_bits(_core.unpack_bits(b, bits, count, signed), bits), b)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: _core.pack_bits(np.array([16], np.int8), 4), ValueError, r"values\[0\] = 16"),
    (lambda: _core.pack_bits(np.array([-9], np.int16), 4), ValueError, "does not fit"),
    (lambda: _core.pack_bits(np.array([1], np.int8), 3), ValueError, "bits must be 2 or 4"),
    (lambda: _core.pack_bits(np.array([1.0]), 4), TypeError, "values"),
    (lambda: _core.pack_bits(np.zeros((2, 2), np.int8), 4), ValueError, "1-D"),
    (lambda: _core.pack_bits(np.array([1], np.int8), 4, "middle"), ValueError, "order"),
    (lambda: _core.unpack_bits(np.zeros(1, np.uint8), 4, 3), ValueError, "count = 3 needs 2 bytes"),
    (lambda: _core.unpack_bits(np.zeros(1, np.uint8), 4, -1), ValueError, "count"),
    (lambda: _core.unpack_bits(np.zeros(1, np.int8), 4, 2), TypeError, "data"),
])
def test_packing_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
