"""QuantSpec: integer ranges, granularities, scale kinds and the errors for malformed specs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.errors import GraphError
from hwsim.graph import QuantSpec


@pytest.mark.parametrize("bits,signed,narrow,qmin,qmax,dtype", [
    (8, True, False, -128, 127, "int8"),
    (8, True, True, -127, 127, "int8"),
    (8, False, False, 0, 255, "uint8"),
    (8, False, True, 1, 255, "uint8"),
    (4, True, False, -8, 7, "int8"),
    (4, True, True, -7, 7, "int8"),
    (2, True, False, -2, 1, "int8"),
    (2, False, False, 0, 3, "uint8"),
    (16, True, False, -32768, 32767, "int16"),
    (12, False, False, 0, 4095, "uint16"),
    (32, True, False, -2**31, 2**31 - 1, "int32"),
])
def test_ranges_and_default_storage(bits, signed, narrow, qmin, qmax, dtype) -> None:
    spec = QuantSpec(bits, signed, scale=[0.5], narrow=narrow)
    assert (spec.qmin, spec.qmax, spec.dtype) == (qmin, qmax, dtype)
    assert spec.granularity == "tensor"
    assert spec.zero_point.tolist() == [0]


def test_unsigned_low_bit_values_may_live_in_int8() -> None:
    assert QuantSpec(4, False, scale=[1.0], dtype="int8").qmax == 15
    with pytest.raises(GraphError, match="storage dtype uint8 cannot hold 8-bit signed values"):
        QuantSpec(8, True, scale=[1.0], dtype="uint8")
    with pytest.raises(GraphError, match="storage dtype int8 cannot hold 8-bit unsigned values"):
        QuantSpec(8, False, scale=[1.0], dtype="int8")
    with pytest.raises(GraphError, match="storage dtype int8 cannot hold 16-bit"):
        QuantSpec(16, True, scale=[1.0], dtype="int8")


def test_pow2_scale_and_fix_pos() -> None:
    spec = QuantSpec(8, True, fix_pos=np.array([7, 5, -1]), scale_kind="pow2", axis=0)
    np.testing.assert_array_equal(spec.scale, [2.0 ** -7, 2.0 ** -5, 2.0])
    assert spec.granularity == "channel"
    with pytest.raises(GraphError, match="scale == 2\\*\\*-fix_pos exactly"):
        QuantSpec(8, True, scale=[0.3], fix_pos=[2], scale_kind="pow2")
    with pytest.raises(GraphError, match="scale_kind 'pow2' needs field 'fix_pos'"):
        QuantSpec(8, True, scale=[0.25], scale_kind="pow2")
    with pytest.raises(GraphError, match="field 'fix_pos' is only for scale_kind 'pow2'"):
        QuantSpec(8, True, scale=[0.25], fix_pos=[2])


@pytest.mark.parametrize("kwargs,message", [
    ({"bits": 1, "signed": True, "scale": [1.0]}, "field 'bits' must be in 2..16 or 32, got 1"),
    ({"bits": 24, "signed": True, "scale": [1.0]}, "field 'bits' must be in 2..16 or 32, got 24"),
    ({"bits": 8.0, "signed": True, "scale": [1.0]}, "field 'bits' must be an int"),
    ({"bits": 8, "signed": 1, "scale": [1.0]}, "field 'signed' must be a bool"),
    ({"bits": 8, "signed": True}, "field 'scale' is required"),
    ({"bits": 8, "signed": True, "scale": [0.0]}, "field 'scale' must be finite and > 0"),
    ({"bits": 8, "signed": True, "scale": [np.inf]}, "field 'scale' must be finite and > 0"),
    ({"bits": 8, "signed": True, "scale": ["a"]}, "field 'scale' must be float32 or float64"),
    ({"bits": 8, "signed": True, "scale": [1.0], "zero_point": [0.5]}, "field 'zero_point' must be integers"),
    ({"bits": 8, "signed": True, "scale": [1.0, 2.0], "zero_point": [0]}, "field 'zero_point' shape"),
    ({"bits": 8, "signed": False, "scale": [1.0], "zero_point": [256]},
     r"field 'zero_point' outside \[0, 255\]"),
    ({"bits": 8, "signed": True, "scale": [1.0], "scale_kind": "log"}, "field 'scale_kind' must be one of"),
    ({"bits": 8, "signed": True, "scale": [1.0], "group_size": 4}, "field 'group_size' needs field 'axis'"),
    ({"bits": 8, "signed": True, "scale": [1.0], "axis": 0, "group_size": 0}, "field 'group_size' must be"),
    ({"bits": 8, "signed": True, "scale": [1.0], "dtype": "float32"}, "field 'dtype' must be one of"),
])
def test_malformed_specs(kwargs, message) -> None:
    with pytest.raises(GraphError, match=message):
        QuantSpec(**kwargs)


@pytest.mark.parametrize("shape,kwargs,ok", [
    ((16, 3, 3, 8), {"scale": [0.1]}, True),
    ((16, 3, 3, 8), {"scale": np.ones(16), "axis": 0}, True),
    ((16, 3, 3, 8), {"scale": np.ones(8), "axis": -1}, True),
    ((16, 3, 3, 8), {"scale": np.ones(8), "axis": 0}, False),
    ((16, 3, 3, 8), {"scale": np.ones(2)}, False),
    ((16, 3, 3, 8), {"scale": np.ones(16), "axis": 4}, False),
    ((10, 64), {"scale": np.ones((10, 2)), "axis": 1, "group_size": 32}, True),
    ((10, 70), {"scale": np.ones((10, 3)), "axis": 1, "group_size": 32}, True),   # last block partial
    ((10, 64), {"scale": np.ones((10, 4)), "axis": 1, "group_size": 32}, False),
])
def test_spec_fits_tensor(shape, kwargs, ok) -> None:
    spec = QuantSpec(8, True, **kwargs)
    if ok:
        spec.check_tensor(shape, "t")
    else:
        with pytest.raises(GraphError, match="t: "):
            spec.check_tensor(shape, "t")


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 16), st.booleans(), st.booleans(), st.integers(0, 2**31 - 1))
def test_dequantize_matches_elementwise_definition(bits: int, signed: bool, narrow: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    proto = QuantSpec(bits, signed, scale=[1.0], narrow=narrow)
    scale = rng.random(3) + 0.01
    zp = rng.integers(proto.qmin, proto.qmax + 1, size=3)
    spec = QuantSpec(bits, signed, scale=scale, zero_point=zp, axis=1, narrow=narrow)
    q = rng.integers(spec.qmin, spec.qmax + 1, size=(2, 3, 4)).astype(spec.dtype)
    spec.check_values(q, "q")
    got = spec.dequantize(q)
    for idx in np.ndindex(q.shape):
        assert got[idx] == (int(q[idx]) - int(zp[idx[1]])) * scale[idx[1]]


def test_equality_and_copy() -> None:
    a = QuantSpec(8, True, scale=np.array([0.5], np.float32))
    b = a.copy()
    assert a == b and a.scale is not b.scale
    assert a != QuantSpec(8, True, scale=np.array([0.5], np.float64))  # dtype is part of the spec
    assert a != QuantSpec(8, True, scale=np.array([0.5], np.float32), narrow=True)
