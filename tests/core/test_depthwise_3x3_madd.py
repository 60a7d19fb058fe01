"""The AVX-512 3x3 depthwise kernel sums tap pairs with VPMADDWD (x' = x or zp on padding taps, minus
zp * sum(w)): it must give exactly the integers of the plain sum of (x - zp) * (w - w_zp) at the extremes of
the 8-bit ranges, on every channel tail, stride and padding."""

import numpy as np
import pytest

from hwsim import _core

# every path this CPU has (the AVX-512 one is the VPMADDWD kernel; the others must agree with it elsewhere)
ISAS = [isa for isa in ("scalar", "avx2", "avx512") if _core.depthwise_isa_available(isa)]


def reference(x, w, strides, pads, x_zp, w_zp):
    """Plain int64 sum over the 9 taps, padding taps holding the zero point."""
    n, h, wd, c = x.shape
    xp = np.full((n, h + pads[0] + pads[2], wd + pads[1] + pads[3], c), x_zp, np.int64)
    xp[:, pads[0]:pads[0] + h, pads[1]:pads[1] + wd] = x
    oh = (h + pads[0] + pads[2] - 3) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - 3) // strides[1] + 1
    wk = w[..., 0].astype(np.int64) - (0 if w_zp is None else np.asarray(w_zp, np.int64)[:, None, None])
    acc = np.zeros((n, oh, ow, c), np.int64)
    for i in range(3):
        for j in range(3):
            tap = xp[:, i:i + strides[0] * oh:strides[0], j:j + strides[1] * ow:strides[1]] - x_zp
            acc += tap * wk[:, i, j]
    return acc


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("channels", [1, 15, 16, 17, 33, 144])
@pytest.mark.parametrize("strides,pads", [((1, 1), (1, 1, 1, 1)), ((2, 2), (0, 1, 1, 0)), ((2, 1), (0, 0, 0, 0))])
@pytest.mark.parametrize("extreme", [False, True])
@pytest.mark.parametrize("isa", ISAS)
def test_madd_pairs_equal_plain_sum(isa, dtype, channels, strides, pads, extreme):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(channels * 7 + strides[0])
    if extreme:  # the largest |products| and pair sums: x and zp at opposite ends, w at -128 / 127
        x = rng.choice([info.min, info.max], size=(2, 7, 9, channels)).astype(dtype)
        w = rng.choice([-128, 127], size=(channels, 3, 3, 1)).astype(np.int8)
        x_zp = int(info.max if rng.integers(2) else info.min)
        w_zp = rng.choice([-128, 127], size=channels).astype(np.int32)
    else:
        x = rng.integers(info.min, info.max + 1, size=(2, 7, 9, channels)).astype(dtype)
        w = rng.integers(-128, 128, size=(channels, 3, 3, 1)).astype(np.int8)
        x_zp = int(rng.integers(info.min, info.max + 1))
        w_zp = None
    got = _core.depthwise_conv2d_s32(x, w, strides, (1, 1), pads, x_zero_point=x_zp, w_zero_point=w_zp,
                                     isa=isa, threads=2)
    np.testing.assert_array_equal(got.astype(np.int64), reference(x, w, strides, pads, x_zp, w_zp))
