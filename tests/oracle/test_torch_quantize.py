"""PyTorch oracle: torch.quantize_per_tensor / quantize_per_channel (quint8, qint8, qint32) and
dequantize against hwsim's quantize(method="fma_reciprocal") / dequantize.

numerics.md section 7: torch rounds half to even of fma(x, fl(1/scale), zero_point) in float32.
Ties are built as x = (k + 0.5) * s so that x * (1/s) lands on or next to a half."""

import warnings

import numpy as np
import pytest
import torch
from edge_values import ties

from hwsim import _core, numerics

pytestmark = pytest.mark.oracle

TORCH_DTYPES = {torch.quint8: (np.uint8, 0, 255), torch.qint8: (np.int8, -128, 127),
                torch.qint32: (np.int32, -(1 << 31), (1 << 31) - 1)}


def _inputs(rng, n, scale, zp):
    x = (rng.normal(0, 90, n) * scale).astype(np.float32)
    k = np.arange(-150, 150)
    near_ties = ((k + 0.5) * scale).astype(np.float32)  # x/s at or next to a .5 tie
    x[: near_ties.size] = near_ties
    x[-6:] = [1e9, -1e9, 300 * scale, -300 * scale, 0.0, -0.0]
    return x


def _torch_q(x, scale, zp, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = torch.quantize_per_tensor(torch.from_numpy(x), scale, zp, dtype)
        return q.int_repr().numpy(), q.dequantize().numpy()


@pytest.mark.parametrize("dtype", [torch.quint8, torch.qint8])
@pytest.mark.parametrize("scale,zp", [(0.0123, 3), (0.00214854861, 0), (0.1, 100), (0.0625, 1), (0.37, -4), (2.0, 0)])
def test_quantize_per_tensor(dtype, scale, zp, rng):
    np_dtype, lo, hi = TORCH_DTYPES[dtype]
    zp = min(max(zp, lo), hi)
    x = _inputs(rng, 4000, scale, zp)
    want, want_deq = _torch_q(x, scale, zp, dtype)
    got = numerics.quantize_preset(x, "torch", scale, zp, lo, hi, out_dtype=np_dtype)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(_core.dequantize(got, scale, zp), want_deq)


@pytest.mark.parametrize("zp", [7, 0, -100])
def test_quantize_per_tensor_qint32(zp, rng):
    """torch's qint32 path is scalar: (x * (1/s)) + zp rounded twice in float32, then RNE, not the fma
    of the 8-bit path (measured here: the fma form differs on ties)."""
    x = _inputs(rng, 2000, 0.001, 0)
    want, _ = _torch_q(x, 0.001, zp, torch.qint32)
    got = numerics.quantize_preset(x, "torch_qint32", 0.001, zp, -(1 << 31), (1 << 31) - 1)
    np.testing.assert_array_equal(got, want)
    if zp != 0:  # with zp = 0 both forms are one rounding of x * (1/s)
        assert (_core.quantize(x, 0.001, zp, -(1 << 31), (1 << 31) - 1, method="fma_reciprocal") != want).any()


def test_torch_uses_fma_not_round_then_add(rng):
    """Find inputs where fma(x, 1/s, zp) and round(x * (1/s)) + zp disagree and check torch takes the fma side."""
    scale, zp = 0.0123, 100
    # Neighbours (within 64 ulps) of the float32 nearest to each tie (k + 0.5) * s.
    base = ((np.arange(-120, 120) + 0.5) * scale).astype(np.float32)
    x = base
    for _ in range(6):
        x = np.unique(np.concatenate([x, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf))]))
    assert x.dtype == np.float32
    fma = _core.quantize(x, scale, zp, 0, 255, method="fma_reciprocal")
    mul = _core.quantize(x, scale, zp, 0, 255, method="multiply_reciprocal")
    diff = fma != mul
    assert diff.any(), "no distinguishing input found"
    want, _ = _torch_q(x[diff], scale, zp, torch.quint8)
    np.testing.assert_array_equal(fma[diff], want)


@pytest.mark.parametrize("dtype", [torch.quint8, torch.qint8])
@pytest.mark.parametrize("axis", [0, 1])
def test_quantize_per_channel(dtype, axis, rng):
    np_dtype, lo, hi = TORCH_DTYPES[dtype]
    x = (rng.normal(0, 1, (6, 40))).astype(np.float32)
    D = x.shape[axis]
    scales = rng.uniform(0.005, 0.05, D)
    scales[0] = 0.0078125
    zps = rng.integers(lo + 20 if lo == 0 else -10, (lo + 40) if lo == 0 else 10, D)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(scales), torch.from_numpy(zps), axis,
                                       dtype)
        want, want_deq = q.int_repr().numpy(), q.dequantize().numpy()
    got = _core.quantize(x, scales.astype(np.float32), zps, lo, hi, axis=axis, method="fma_reciprocal",
                         out_dtype=np_dtype)
    np.testing.assert_array_equal(got, want)
    # Per-channel scales are a float64 tensor and torch dequantizes in double, then casts to float32
    # (measured: the float32 computation differs in the last bit on ~15% of elements).
    deq = _core.dequantize(got, scales, zps, axis=axis, precision="fp64").astype(np.float32)
    np.testing.assert_array_equal(deq, want_deq)


def test_ties_are_exercised():
    """Guard: the tie inputs used above really are float32 ties of x * (1/s) for a dyadic scale."""
    x = ties(-4, 8).astype(np.float32)  # (k + 0.5) / 16
    got = _core.quantize(x, 0.0625, 0, -128, 127, method="fma_reciprocal")
    np.testing.assert_array_equal(got, np.round(x * 16))
