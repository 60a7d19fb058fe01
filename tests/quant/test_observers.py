"""Calibration observers of hwsim.quant.observers: streaming, bounded memory, ranges that make sense."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.errors import HwsimError
from hwsim.quant.observers import (
    KLObserver,
    MinMaxObserver,
    MSEObserver,
    OnnxruntimeEntropyObserver,
    OnnxruntimePercentileObserver,
    PercentileObserver,
    PerChannelMinMaxObserver,
    Pow2FixPosObserver,
    StreamingHistogram,
    TorchHistogramObserver,
    dynamic_quantize_params_uint8,
    kl_threshold,
)
from hwsim.quant.scheme import pow2_fix_pos_diffs


def _batches(rng, n=5, size=2000, grow=True):
    return [(rng.standard_normal(size) * (1 + (k if grow else 0))).astype(np.float32) for k in range(n)]


def test_minmax_is_the_running_extreme(rng):
    obs = MinMaxObserver()
    data = _batches(rng)
    for b in data:
        obs.update(b)
    allx = np.concatenate(data)
    assert obs.range() == (float(allx.min()), float(allx.max()))


def test_per_channel_minmax_along_axis0(rng):
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    obs = PerChannelMinMaxObserver(axis=0)
    obs.update(w[:, :, :, :1])
    obs.update(w[:, :, :, 1:])
    lo, hi = obs.range()
    np.testing.assert_array_equal(lo, w.reshape(4, -1).min(axis=1))
    np.testing.assert_array_equal(hi, w.reshape(4, -1).max(axis=1))


ALL_OBSERVERS = [MinMaxObserver, PercentileObserver, MSEObserver, KLObserver, TorchHistogramObserver,
                 OnnxruntimeEntropyObserver, OnnxruntimePercentileObserver]


@pytest.mark.parametrize("cls", ALL_OBSERVERS)
def test_no_data_is_an_error(cls):
    with pytest.raises(HwsimError, match="no calibration data"):
        cls().range()


@pytest.mark.parametrize("cls", ALL_OBSERVERS)
def test_nan_is_an_error(cls):
    with pytest.raises(HwsimError, match="NaN"):
        cls().update(np.array([1.0, np.nan]))


# ---------------------------------------------------------------------------------------------------------
# Streaming histogram: re-binning by powers of two is exact


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), absolute=st.booleans(), nb=st.sampled_from([8, 64, 2048]),
       scales=st.lists(st.floats(1e-3, 1e4), min_size=1, max_size=6))
def test_streaming_histogram_equals_one_shot_binning(seed, absolute, nb, scales):
    rng = np.random.default_rng(seed)
    batches = [rng.standard_normal(300) * s for s in scales]
    h = StreamingHistogram(nb, absolute=absolute)
    for b in batches:
        h.update(b)
    allx = np.concatenate(batches)
    assert h.total == allx.size
    assert h.limit >= np.abs(allx).max()
    v = np.abs(allx) if absolute else allx
    idx = np.floor(v / h.width).astype(np.int64) + (0 if absolute else nb // 2)
    expected = np.bincount(np.clip(idx, 0, nb - 1), minlength=nb)
    np.testing.assert_array_equal(h.counts, expected)


def test_histogram_keeps_leading_zero_batches():
    h = StreamingHistogram(16, absolute=False)
    h.update(np.zeros(10))
    h.update(np.array([-1.0, 1.0]))
    assert h.total == 12 and h.counts[8] == 10  # zeros sit in the bin right of 0


# ---------------------------------------------------------------------------------------------------------
# Percentile


def test_percentile_100_is_minmax(rng):
    obs = PercentileObserver(100.0)
    data = _batches(rng)
    for b in data:
        obs.update(b)
    allx = np.concatenate(data)
    assert obs.range() == (float(allx.min()), float(allx.max()))


@pytest.mark.parametrize("symmetric", [False, True])
def test_percentile_within_one_bin_of_numpy(rng, symmetric):
    data = _batches(rng, n=4, size=50_000)
    obs = PercentileObserver(99.0, symmetric=symmetric)
    for b in data:
        obs.update(b)
    allx = np.concatenate(data).astype(np.float64)
    lo, hi = obs.range()
    w = obs.hist.width
    if symmetric:
        t = np.percentile(np.abs(allx), 99.0)
        assert abs(hi - t) <= 1.01 * w and lo == -hi
    else:
        assert abs(hi - np.percentile(allx, 99.0)) <= 1.01 * w
        assert abs(lo - np.percentile(allx, 1.0)) <= 1.01 * w


def test_percentile_clips_outliers():
    x = np.concatenate([np.linspace(-1, 1, 100_000), [50.0]])
    obs = PercentileObserver(99.9)
    obs.update(x)
    lo, hi = obs.range()
    assert hi < 1.1 and lo > -1.1


# ---------------------------------------------------------------------------------------------------------
# MSE


def test_mse_keeps_the_full_range_for_uniform_data():
    obs = MSEObserver(bits=8, signed=False)
    obs.update(np.linspace(0.0, 1.0, 10_001))
    lo, hi = obs.range()
    assert lo == 0.0 and hi >= 0.98


def test_mse_clips_a_lone_outlier_at_low_bits(rng):
    x = np.concatenate([rng.standard_normal(100_000), [40.0]])
    obs = MSEObserver(bits=4, symmetric=True)
    obs.update(x)
    lo, hi = obs.range()
    assert hi < 10.0 and lo == -hi


# ---------------------------------------------------------------------------------------------------------
# KL (TensorRT entropy calibration)


def test_kl_threshold_hand_case():
    # 256 bins: all mass in the first 128 bins, one count per bin. Candidate i = 128 keeps every count
    # (nothing to clip, one bin per quantized bin): P == Q, KL = 0, the first candidate wins.
    counts = np.zeros(256)
    counts[:128] = 1
    edges = np.arange(257, dtype=np.float64)
    assert kl_threshold(counts, edges, 128) == 128.0


def test_kl_clips_a_heavy_tail(rng):
    obs = KLObserver()
    x = rng.laplace(size=200_000).astype(np.float32)
    obs.update(x)
    t = obs.threshold()
    assert 0.3 * np.abs(x).max() < t < np.abs(x).max()


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 1000), scale=st.floats(1e-3, 1e3), shift=st.floats(-2, 2), n=st.integers(1, 3000))
def test_kl_threshold_never_exceeds_max(seed, scale, shift, n):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) + shift) * scale
    obs = KLObserver()
    obs.update(x[: n // 2])
    obs.update(x[n // 2:])
    lo, hi = obs.range()
    assert obs.threshold() <= np.abs(x).max()
    assert x.min() <= lo <= 0 or lo == x.min()
    assert hi <= x.max()


def test_kl_nonnegative_tensor_gives_nonnegative_range(rng):
    obs = KLObserver()
    obs.update(np.maximum(rng.standard_normal(10_000), 0))
    lo, hi = obs.range()
    assert lo == 0.0 and hi > 0


# ---------------------------------------------------------------------------------------------------------
# Power-of-two activations (numerics.md C.3 step 4) and dynamic quantization (B.5)


def test_pow2_observer_takes_the_mode_of_batch_positions(rng):
    batches = [rng.standard_normal(500) * s for s in (1.0, 1.0, 4.0, 1.05)]
    obs = Pow2FixPosObserver()
    for b in batches:
        obs.update(b)
    positions = [pow2_fix_pos_diffs(b, 8, "half_up") for b in batches]
    assert obs.history == positions
    values, counts = np.unique(positions, return_counts=True)
    assert obs.fix_pos() == int(values[np.argmax(counts)])
    lo, hi = obs.range()
    assert (lo, hi) == (-128 * 2.0 ** -obs.fix_pos(), 127 * 2.0 ** -obs.fix_pos())


@pytest.mark.parametrize("x,scale,zp", [
    ([-1.0, 0.9921875], 2.0**-7, 128),               # width 255/128 -> scale 2^-7, zp = rne(1 / 2^-7)
    ([0.0, 255.0], 1.0, 0),                          # B.5: non-negative data, zp 0
    ([-255.0, 0.0], 1.0, 255),
    ([-2.5, 252.5], 1.0, 2),                         # zp = rne(2.5) = 2 (ties to even)
    ([-3.5, 251.5], 1.0, 4),                         # rne(3.5) = 4
    ([0.0, 0.0], 1.0, 0),                            # empty range (onnxruntime 1.32 behaviour)
])
def test_dynamic_quantize_params_uint8(x, scale, zp):
    p = dynamic_quantize_params_uint8(np.array(x, np.float32))
    assert float(p.scale[0]) == scale
    assert int(p.zero_point[0]) == zp and p.qmin == 0 and p.qmax == 255


def test_make_observer_by_name():
    from hwsim.quant.observers import OBSERVERS, make_observer

    assert isinstance(make_observer("percentile", percentile=99.9), PercentileObserver)
    assert set(OBSERVERS) >= {"minmax", "percentile", "mse", "kl", "torch_histogram"}
    with pytest.raises(HwsimError, match="unknown calibration method"):
        make_observer("entropy2")
    with pytest.raises(HwsimError, match="percentile"):
        make_observer("percentile", bins=3)
