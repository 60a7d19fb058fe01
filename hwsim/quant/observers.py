"""Calibration observers: stream batches of activations, return a real range ``(min, max)``.

Every observer has ``update(batch)`` (called once per calibration batch, memory bounded by the number of
bins, never by the number of batches) and ``range()``. The range goes to a rule of :mod:`hwsim.quant.scheme`
(:func:`~hwsim.quant.scheme.params_from_range`) which turns it into (scale, zero point) for a scheme.

Histogram observers share :class:`StreamingHistogram`: the first batch with a non-zero value fixes the
histogram range ``T`` to that batch's extreme times ``1 + 2^-10`` (the margin keeps every value strictly
inside, so none sits on the top edge where a later merge would misplace it); when a later batch comes within
the margin of ``T`` or beyond, the range grows by the smallest power of two ``k`` that restores the margin and
every ``k`` adjacent bins are merged into one. Because 0 is
always a bin edge and ``k`` is a power of two, old bins fall exactly inside new bins: re-binning loses no
count and puts none in the wrong place, and the number of bins stays fixed.

Observers that clip (percentile, MSE, KL) never return a bound beyond the observed min / max.
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.errors import HwsimError
from hwsim.quant.scheme import QuantParams, pow2_fix_pos_diffs, pow2_fix_pos_mode, qrange, round_with

__all__ = [
    "KLObserver",
    "MSEObserver",
    "MinMaxObserver",
    "OBSERVERS",
    "OnnxruntimeEntropyObserver",
    "OnnxruntimePercentileObserver",
    "PercentileObserver",
    "PerChannelMinMaxObserver",
    "Pow2FixPosObserver",
    "StreamingHistogram",
    "TorchHistogramObserver",
    "dynamic_quantize_params_uint8",
    "kl_threshold",
    "make_observer",
    "onnxruntime_entropy_threshold",
]


def _as_batch(x, name: str = "batch") -> np.ndarray:
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise HwsimError(f"{name}: calibration data contains NaN or inf")
    return x


class MinMaxObserver:
    """Running minimum and maximum over all batches (the MinMax calibrators of PyTorch, onnxruntime and the
    TFLite converter, without moving averages)."""

    def __init__(self) -> None:
        self.min: float | None = None
        self.max: float | None = None

    def update(self, batch) -> None:
        x = _as_batch(batch)
        if x.size == 0:
            return
        lo, hi = float(x.min()), float(x.max())
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)

    def range(self) -> tuple[float, float]:
        if self.min is None:
            raise HwsimError("observer: no calibration data was observed")
        return self.min, self.max


class PerChannelMinMaxObserver:
    """Per-slice running min / max along ``axis`` (weights: axis 0 of OHWI / [out, in])."""

    def __init__(self, axis: int = 0) -> None:
        self.axis = axis
        self.min: np.ndarray | None = None
        self.max: np.ndarray | None = None

    def update(self, batch) -> None:
        x = _as_batch(batch)
        if not -x.ndim <= self.axis < x.ndim:
            raise HwsimError(f"axis: {self.axis} is out of range for a {x.ndim}-d tensor")
        ax = self.axis % x.ndim
        other = tuple(i for i in range(x.ndim) if i != ax)
        lo, hi = x.min(axis=other).astype(np.float64), x.max(axis=other).astype(np.float64)
        if self.min is not None and self.min.shape != lo.shape:
            raise HwsimError(f"batch: axis {self.axis} has {lo.size} channels, "
                             f"earlier batches had {self.min.size}")
        self.min = lo if self.min is None else np.minimum(self.min, lo)
        self.max = hi if self.max is None else np.maximum(self.max, hi)

    def range(self) -> tuple[np.ndarray, np.ndarray]:
        if self.min is None:
            raise HwsimError("observer: no calibration data was observed")
        return self.min.copy(), self.max.copy()


_MARGIN = 1.0 + 2.0**-10


class StreamingHistogram:
    """Fixed-size histogram whose range grows by powers of two (see the module docstring).

    ``absolute=True`` bins ``|x|`` over ``[0, T]`` with ``num_bins`` bins; otherwise ``x`` over ``[-T, T]``
    with ``num_bins`` (even) bins, ``num_bins / 2`` on each side of 0. Also tracks the exact observed min and
    max.
    """

    def __init__(self, num_bins: int = 2048, absolute: bool = False) -> None:
        if num_bins < 2 or (not absolute and num_bins % 2):
            raise HwsimError(f"num_bins: need an even count >= 2, got {num_bins}")
        self.num_bins = num_bins
        self.absolute = absolute
        self.counts = np.zeros(num_bins, dtype=np.int64)
        self.width: float | None = None  # bin width; None until a non-zero value was seen
        self.zero_count = 0  # zeros seen before the range was set
        self.min: float | None = None
        self.max: float | None = None

    @property
    def _half(self) -> int:
        return self.num_bins if self.absolute else self.num_bins // 2

    @property
    def limit(self) -> float:
        """Current histogram bound ``T``."""
        return 0.0 if self.width is None else self.width * self._half

    def edges(self) -> np.ndarray:
        """Bin edges (``num_bins + 1`` values)."""
        if self.width is None:
            return np.zeros(self.num_bins + 1)
        start = 0 if self.absolute else -self._half
        return (np.arange(self.num_bins + 1) + start) * self.width

    def centers(self) -> np.ndarray:
        e = self.edges()
        return 0.5 * (e[:-1] + e[1:])

    def _bin(self, v: np.ndarray) -> np.ndarray:
        # The width is a power-of-two multiple of the first width, so v / width here equals the first batch's
        # v / width0 divided by 2^m exactly: bins stay consistent with the merged ones.
        idx = np.floor(v / self.width).astype(np.int64)
        if not self.absolute:
            idx += self._half
        return np.clip(idx, 0, self.num_bins - 1)

    def update(self, batch) -> None:
        x = _as_batch(batch).astype(np.float64, copy=False).ravel()
        if x.size == 0:
            return
        lo, hi = float(x.min()), float(x.max())
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)
        v = np.abs(x) if self.absolute else x
        amax = float(np.abs(x).max())
        if amax == 0.0 and self.width is None:
            self.zero_count += x.size
            return
        need = amax * _MARGIN
        if self.width is None:
            self.width = need / self._half
            if self.zero_count:
                self.counts[self._bin(np.zeros(1))[0]] += self.zero_count
                self.zero_count = 0
        elif need > self.limit:
            k = 1 << max(0, math.ceil(math.log2(need / self.limit)))
            while self.limit * k < need:  # guard log2 rounding
                k <<= 1
            self._grow(k)
        self.counts += np.bincount(self._bin(v), minlength=self.num_bins)

    def _grow(self, k: int) -> None:
        # Old bin with signed offset o (o = index - half) lies in new bin half + floor(o / k).
        offsets = np.arange(self.num_bins) - (0 if self.absolute else self._half)
        new_idx = np.floor_divide(offsets, k) + (0 if self.absolute else self._half)
        merged = np.zeros(self.num_bins, dtype=np.int64)
        np.add.at(merged, new_idx, self.counts)
        self.counts = merged
        self.width *= k

    @property
    def total(self) -> int:
        return int(self.counts.sum()) + self.zero_count


def _clip_to_observed(lo: float, hi: float, h: StreamingHistogram) -> tuple[float, float]:
    return max(lo, h.min), min(hi, h.max)


class _StreamingHistogramObserver:
    """Base of the observers that stream a histogram (``self.hist``) and read their range off it."""

    hist: StreamingHistogram

    def update(self, batch) -> None:
        self.hist.update(batch)

    def _histogram(self) -> StreamingHistogram | None:
        """The histogram, or None when every observed value was the same (a zero-width histogram)."""
        if self.hist.min is None:
            raise HwsimError("observer: no calibration data was observed")
        return None if self.hist.width is None else self.hist


class PercentileObserver(_StreamingHistogramObserver):
    """Range from percentiles of the data, read off a streaming histogram.

    ``symmetric=False``: min = the ``(100 - p)``-th percentile, max = the ``p``-th percentile (each tail holds
    ``100 - p`` percent; onnxruntime's PercentileCalibrater instead cuts ``(100 - p) / 2`` percent per side).
    ``symmetric=True``: ``t`` = the ``p``-th percentile of ``|x|`` and the range is ``(-t, t)``. A percentile
    is the upper edge of the first bin where the cumulative count reaches it (the lower edge for the min),
    so it is resolved to one bin width (``T / 1024`` with the default 2048 bins). Bounds are clipped to the
    observed min / max.
    """

    def __init__(self, percentile: float = 99.99, symmetric: bool = False, num_bins: int = 2048) -> None:
        if not 0.0 < percentile <= 100.0:
            raise HwsimError(f"percentile: must be in (0, 100], got {percentile}")
        self.percentile = percentile
        self.symmetric = symmetric
        self.hist = StreamingHistogram(num_bins, absolute=symmetric)

    def range(self) -> tuple[float, float]:
        h = self._histogram()
        if h is None:
            return 0.0, 0.0
        cdf = np.cumsum(h.counts) / h.counts.sum()
        edges = h.edges()
        frac = self.percentile / 100.0
        i_hi = int(np.searchsorted(cdf, frac - 1e-12))
        hi = float(edges[min(i_hi + 1, h.num_bins)])
        if self.symmetric:
            return _clip_to_observed(-hi, hi, h)
        i_lo = int(np.searchsorted(cdf, 1.0 - frac + 1e-12, side="left"))
        lo = float(edges[min(i_lo, h.num_bins - 1)])
        return _clip_to_observed(lo, hi, h)


class MSEObserver(_StreamingHistogramObserver):
    """Clipping range minimising the quantization mean squared error, estimated on a streaming histogram.

    Candidate ranges shrink the observed range uniformly: ``(a·min, a·max)`` for ``a = k / grid``,
    ``k = 1 .. grid`` (default 100 candidates, 1 % steps), ``(-a·amax, a·amax)`` when ``symmetric``. For
    each candidate the scale and zero point follow the generic affine / symmetric rule for
    ``bits``/``signed``, and the error is ``Σ count_i · (c_i - fq(c_i))²`` over bin centres ``c_i``
    (values inside a bin are represented by its centre). The first candidate with the smallest error wins.
    """

    def __init__(self, bits: int = 8, signed: bool = True, symmetric: bool = False, grid: int = 100,
                 num_bins: int = 2048, rounding: str = "half_even") -> None:
        self.bits, self.signed, self.symmetric, self.grid = bits, signed, symmetric, grid
        self.rounding = rounding
        self.hist = StreamingHistogram(num_bins, absolute=False)

    def range(self) -> tuple[float, float]:
        h = self._histogram()
        if h is None:
            return 0.0, 0.0
        qmin, qmax = qrange(self.bits, self.signed)
        c = h.centers()
        w = h.counts.astype(np.float64)
        keep = w > 0
        c, w = c[keep], w[keep]
        lo0, hi0 = min(h.min, 0.0), max(h.max, 0.0)
        if self.symmetric:
            amax = max(-lo0, hi0)
            lo0, hi0 = -amax, amax
        alphas = np.arange(1, self.grid + 1) / self.grid
        los, his = alphas * lo0, alphas * hi0
        if self.symmetric:
            half = qmax if self.signed else (qmax - qmin) / 2.0
            scale = his / half
            zp = np.full_like(scale, 0.0 if self.signed else (qmin + qmax + 1) // 2)
        else:
            scale = (his - los) / (qmax - qmin)
            zp = np.clip(qmin - np.rint(los / scale), qmin, qmax)
        q = np.clip(round_with(c[None, :] / scale[:, None], self.rounding) + zp[:, None], qmin, qmax)
        err = ((c[None, :] - (q - zp[:, None]) * scale[:, None]) ** 2 * w[None, :]).sum(axis=1)
        best = int(np.argmin(err))
        return _clip_to_observed(float(los[best]), float(his[best]), h)


def kl_threshold(counts: np.ndarray, edges: np.ndarray, num_quantized_bins: int = 128) -> float:
    """TensorRT's entropy calibration threshold on a histogram of ``|x|``.

    Source: S. Migacz, "8-bit Inference with TensorRT", GTC 2017 (the algorithm NVIDIA's
    pytorch-quantization ``HistogramCalibrator`` "entropy" method and MXNet follow). For every candidate
    ``i`` from ``num_quantized_bins`` to the number of bins: the reference distribution ``P`` is
    ``counts[:i]`` with all counts beyond ``i`` added to its last bin (clipping); the candidate ``Q`` merges
    ``counts[:i]`` into ``num_quantized_bins`` groups (bin ``j`` goes to group ``floor(j·nq / i)``) and
    spreads each group's total evenly over the group's non-empty bins (empty bins stay empty). Both are
    normalised and ``KL(P || Q) = Σ P log(P / Q)`` over ``P > 0`` (infinite if some ``Q = 0`` where
    ``P > 0``). The threshold is the upper edge of bin ``i - 1`` of the first candidate with the smallest
    divergence.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.size
    nq = num_quantized_bins
    if n < nq:
        return float(edges[-1])
    suffix = np.concatenate([np.cumsum(counts[::-1])[::-1], [0.0]])  # suffix[i] = sum(counts[i:])
    best_i, best_kl = n, math.inf
    for i in range(nq, n + 1):
        p = counts[:i].copy()
        p[-1] += suffix[i]
        total = p.sum()
        if total == 0:
            continue
        group = (np.arange(i) * nq) // i
        sums = np.bincount(group, weights=counts[:i], minlength=nq)
        nonzero = np.bincount(group, weights=(counts[:i] > 0).astype(np.float64), minlength=nq)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_bin = np.where(nonzero > 0, sums / nonzero, 0.0)
        q = np.where(counts[:i] > 0, per_bin[group], 0.0)
        qs = q.sum()
        if qs == 0:
            continue
        pn, qn = p / total, q / qs
        mask = pn > 0
        if np.any(qn[mask] == 0):
            continue
        kl = float(np.sum(pn[mask] * np.log(pn[mask] / qn[mask])))
        if kl < best_kl:
            best_i, best_kl = i, kl
    return float(edges[best_i])


class KLObserver(_StreamingHistogramObserver):
    """Entropy (KL-divergence) calibration, TensorRT style (:func:`kl_threshold`).

    Streams a 2048-bin histogram of ``|x|`` and searches thresholds from bin 128 (``num_quantized_bins``)
    upward. The range is ``(-t, t)`` clipped to the observed min / max, so a non-negative tensor gives
    ``(0, t)``. The threshold never exceeds ``max|x|``.
    """

    def __init__(self, num_bins: int = 2048, num_quantized_bins: int = 128) -> None:
        self.num_quantized_bins = num_quantized_bins
        self.hist = StreamingHistogram(num_bins, absolute=True)

    def threshold(self) -> float:
        h = self._histogram()
        if h is None:
            return 0.0
        t = kl_threshold(h.counts, h.edges(), self.num_quantized_bins)
        return min(t, max(-h.min, h.max))

    def range(self) -> tuple[float, float]:
        t = self.threshold()
        return _clip_to_observed(-t, t, self.hist)


def _ort_smooth(p: np.ndarray, eps: float = 1e-4) -> np.ndarray | None:
    zeros = p == 0
    n_zeros = int(zeros.sum())
    n_nonzeros = p.size - n_zeros
    if n_nonzeros == 0:
        return None
    eps1 = eps * float(n_zeros) / float(n_nonzeros)
    out = p.astype(np.float32)
    out += eps * zeros.astype(np.float32) + (-eps1) * (~zeros).astype(np.float32)
    return out


def _ort_kl(p: np.ndarray, q: np.ndarray) -> float:
    p = p.astype(np.float32)
    p = 1.0 * p / p.sum()
    q = q.astype(np.float32)
    q = 1.0 * q / q.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        vec = np.where(p > 0, p * np.log(p / q), np.where(p == 0, 0.0, np.inf))
    return float(np.sum(vec))


def onnxruntime_entropy_threshold(counts: np.ndarray, edges: np.ndarray, num_quantized_bins: int = 128,
                                  ) -> tuple[float, float]:
    """onnxruntime's entropy threshold on its symmetric histogram (``calibrate.py``,
    ``HistogramCollector.get_entropy_threshold``, ORT 1.32), re-implemented for comparison.

    Differences from :func:`kl_threshold`: the histogram holds signed values over ``[-T, T]``; candidate
    windows are centred on the middle bin and grow one bin per side; outliers of both sides go to the end
    bins of ``P``; ``Q``'s per-bin share is truncated to an integer (it is stored in an int64 array); both
    distributions are smoothed (zeros become 1e-4, taken from the non-zero bins) before a float32 KL; the
    result is a (low, high) pair of edges. ORT then clips to the observed min / max (not done here).
    """
    hist = np.asarray(counts)
    num_bins = hist.size
    zero_bin = num_bins // 2
    nhalf = num_quantized_bins // 2
    kls = np.zeros(zero_bin - nhalf + 1)
    thresholds = []
    for i in range(nhalf, zero_bin + 1):
        start, end = zero_bin - i, min(zero_bin + i + 1, num_bins)
        thresholds.append((edges[start], edges[end]))
        sliced = hist[start:end].copy()
        p = sliced.copy()
        p[0] += hist[:start].sum()
        p[-1] += hist[end:].sum()
        nonzeros = (p != 0).astype(np.int64)
        merged = sliced.size // num_quantized_bins
        qb = np.zeros(num_quantized_bins, dtype=np.int64)
        for j in range(num_quantized_bins):
            qb[j] = sliced[j * merged:(j + 1) * merged].sum()
        qb[-1] += sliced[num_quantized_bins * merged:].sum()
        q = np.zeros(p.size, dtype=np.int64)
        for j in range(num_quantized_bins):
            norm = nonzeros[j * merged:(j + 1) * merged].sum()
            if norm != 0:
                q[j * merged:(j + 1) * merged] = qb[j] / norm
        ps, qs = _ort_smooth(p), _ort_smooth(q)
        kls[i - nhalf] = np.inf if ps is None or qs is None else _ort_kl(ps, qs)
    lo, hi = thresholds[int(np.argmin(kls))]
    return float(lo), float(hi)


class _OnnxruntimeHistogram:
    """onnxruntime's HistogramCollector data collection (``calibrate.py``, ORT 1.32), re-implemented.

    ``collect_value``: a signed histogram over ``[-T, T]`` (``T`` = the first batch's max |x|) that is widened
    by whole bins on both sides when a batch exceeds ``T`` (so its bin count grows, and memory with it).
    ``collect_absolute_value`` (percentile, symmetric): a histogram of |x| over the first batch's
    ``[min|x|, max|x|]``, extended by whole bins upwards; values below its first edge are dropped, as in ORT.
    Both use ``np.histogram`` exactly as ORT does, so bins and counts are identical.
    """

    def __init__(self, num_bins: int, absolute: bool) -> None:
        self.num_bins, self.absolute = num_bins, absolute
        self.state = None

    def update(self, batch) -> None:
        x = _as_batch(batch).ravel()
        if x.size == 0:
            return
        mn, mx = x.min(), x.max()
        if self.absolute:
            self._collect_absolute(np.abs(x), mn, mx)
        else:
            self._collect_value(x, mn, mx)

    def _collect_absolute(self, a: np.ndarray, mn, mx) -> None:
        if self.state is None:
            h, e = np.histogram(a, bins=self.num_bins)
            self.state = (h, e.astype(a.dtype), mn, mx)
            return
        oh, oe, omn, omx = self.state
        amax = a.max()
        if amax > oe[-1]:
            width = oe[1] - oe[0]
            oe = np.hstack((oe, np.arange(oe[-1] + width, amax + width, width)))
        h, e = np.histogram(a, bins=oe)
        h[:len(oh)] += oh
        self.state = (h, e.astype(a.dtype), min(omn, mn), max(omx, mx))

    def _collect_value(self, x: np.ndarray, mn, mx) -> None:
        thr = np.array(max(abs(mn), abs(mx)), dtype=x.dtype)
        if self.state is None:
            h, e = np.histogram(x, self.num_bins, range=(-thr, thr))
            self.state = (h, e, mn, mx, thr)
            return
        oh, oe, omn, omx, othr = self.state
        if thr <= othr:
            h, _ = np.histogram(x, len(oh), range=(-othr, othr))
            self.state = (h + oh, oe, min(omn, mn), max(omx, mx), othr)
        elif othr == 0:
            h, e = np.histogram(x, len(oh), range=(-thr, thr))
            self.state = (h + oh, e, min(omn, mn), max(omx, mx), thr)
        else:
            stride = 2 * othr / len(oh)
            half_inc = int((thr - othr) // stride + 1)
            nb = len(oh) + 2 * half_inc
            nthr = half_inc * stride + othr
            h, e = np.histogram(x, nb, range=(-nthr, nthr))
            h[half_inc:nb - half_inc] += oh
            self.state = (h, e, min(omn, mn), max(omx, mx), nthr)

    def _checked_state(self):
        if self.state is None:
            raise HwsimError("observer: no calibration data was observed")
        return self.state


class OnnxruntimeEntropyObserver(_OnnxruntimeHistogram):
    """onnxruntime's EntropyCalibrater, re-implemented: ``collect_value`` histograms (see
    :class:`_OnnxruntimeHistogram`) and :func:`onnxruntime_entropy_threshold`, clipped to the observed
    min / max. ORT's defaults are ``num_bins=128, num_quantized_bins=128`` for ``create_calibrator``;
    TensorRT-like settings are 2048 / 128.
    """

    def __init__(self, num_bins: int = 128, num_quantized_bins: int = 128) -> None:
        super().__init__(num_bins, absolute=False)
        self.num_quantized_bins = num_quantized_bins

    def range(self) -> tuple[float, float]:
        h, e, mn, mx, _ = self._checked_state()
        lo, hi = onnxruntime_entropy_threshold(h, e, self.num_quantized_bins)
        return max(lo, float(mn)), min(hi, float(mx))


class OnnxruntimePercentileObserver(_OnnxruntimeHistogram):
    """onnxruntime's PercentileCalibrater (``HistogramCollector.compute_percentile``), re-implemented.

    With ``symmetric`` (ORT's default) the threshold is the histogram edge where the CDF of |x| reaches
    ``percentile``, and the range ``(-t, t)`` is then clipped to the observed min / max (so a non-negative
    tensor gets ``(min, t)``). Otherwise each tail loses ``(100 - percentile) / 2`` percent. Defaults are
    ORT's ``create_calibrator`` ones: 2048 bins, 99.999, symmetric.
    """

    def __init__(self, percentile: float = 99.999, symmetric: bool = True, num_bins: int = 2048) -> None:
        if not 0.0 <= percentile <= 100.0:
            raise HwsimError(f"percentile: must be in [0, 100], got {percentile}")
        super().__init__(num_bins, absolute=symmetric)
        self.percentile, self.symmetric = percentile, symmetric

    def range(self) -> tuple[float, float]:
        state = self._checked_state()
        h, e, mn, mx = state[:4]
        cdf = np.cumsum(h / h.sum())
        if self.symmetric:
            t = e[np.searchsorted(cdf, self.percentile / 100.0)]
            lo, hi = -t, t
        else:
            cut = (100.0 - self.percentile) / 200.0
            lo, hi = e[np.searchsorted(cdf, cut)], e[np.searchsorted(cdf, 1.0 - cut)]
        return max(float(lo), float(mn)), min(float(hi), float(mx))


# ----------------------------------------------------------------------------------------------------------
# PyTorch's HistogramObserver (the default activation observer of the x86 / fbgemm qconfigs, numerics.md B.3)

_f32 = np.float32


def _torch_linspace_f32(start, end, steps: int) -> np.ndarray:
    # torch.linspace on CPU (RangeFactoriesKernel.cpp): start + step·i for the first half and
    # end - step·(steps - 1 - i) for the second, float32, each contracted to one fused multiply-add by the
    # compiler (measured: torch 2.13 x86 AVX-512 build). step·i is exact in float64, so one float64 add
    # followed by the float32 cast reproduces the fused rounding.
    start, end = _f32(start), _f32(end)
    step = _f32((end - start) / _f32(steps - 1))
    idx = np.arange(steps)
    first = (np.float64(step) * idx + np.float64(start)).astype(_f32)
    second = (np.float64(end) - np.float64(step) * (steps - 1 - idx)).astype(_f32)
    return np.where(idx < steps // 2, first, second).astype(_f32)


def _torch_histc_f32(x: np.ndarray, bins: int, lo, hi) -> np.ndarray:
    # torch.histc (Histogram.cpp / HistogramKernel.cpp, linear bins without local search): equal bounds
    # widen to [lo - 1, hi + 1]; values outside are dropped; bin = trunc(((x - lo)·bins) / (hi - lo)) in
    # float32, the top edge going to the last bin.
    lo64, hi64 = float(lo), float(hi)
    if lo64 == hi64:
        lo64, hi64 = lo64 - 1.0, hi64 + 1.0
    left, right = _f32(lo64), _f32(hi64)
    x = x[(x >= left) & (x <= right)]
    pos = (((x - left) * _f32(bins)) / (right - left)).astype(_f32).astype(np.int64)
    pos[pos == bins] = bins - 1
    return np.bincount(pos, minlength=bins).astype(_f32)


def _torch_floor_div_f32(a: np.ndarray, b: float) -> np.ndarray:
    # torch.div(..., rounding_mode="floor") for floats (c10 div_floor_floating): Python floor-division.
    b = _f32(b)
    mod = np.fmod(a, b).astype(_f32)
    div = ((a - mod) / b).astype(_f32)
    div = np.where((mod != 0) & ((b < 0) != (mod < 0)), div - _f32(1), div).astype(_f32)
    fl = np.floor(div)
    fl = np.where(div - fl > _f32(0.5), fl + _f32(1), fl)
    return np.where(div != 0, fl, np.copysign(_f32(0), a / b)).astype(_f32)


class TorchHistogramObserver:
    """PyTorch's ``HistogramObserver`` (``torch/ao/quantization/observer.py``), re-implemented in numpy.

    A 2048-bin histogram over the running [min, max] (``torch.histc``); when the range grows, the old
    histogram is upsampled 16x, each sub-bin's centre is re-bucketed into the new bins and the counts are
    spread accordingly. :meth:`range` runs torch's ``_non_linear_param_search``: starting from the full
    range, drop 1e-5 of the mass from whichever side frees more bins, estimate the L2 quantization error for
    ``dst_nbins`` (2^bits) uniform levels from the histogram densities, and stop when the error grows. Feed
    its range to :func:`~hwsim.quant.scheme.affine_params_torch` / ``symmetric_params_torch``.

    Measured against torch 2.13 (x86, AVX-512 build): identical histograms and ranges on every case tried.
    Two details are reproduced from the build rather than the source: ``torch.linspace`` rounds as a fused
    multiply-add, and the error sum is taken in float64 here where torch sums float32 (a difference only
    when two candidate errors agree to about 1e-7). Memory is the fixed ``bins``; the search is slow for
    heavy-tailed data, as in torch.
    """

    def __init__(self, bins: int = 2048, bits: int = 8, upsample_rate: int = 16) -> None:
        self.bins, self.dst_nbins, self.upsample_rate = bins, 1 << bits, upsample_rate
        self.hist: np.ndarray | None = None
        self.min = self.max = None

    def update(self, batch) -> None:
        x = _as_batch(batch).astype(_f32, copy=False).ravel()
        if x.size == 0:
            return
        xmin, xmax = x.min(), x.max()
        if self.hist is None:
            self.min, self.max = xmin, xmax
            self.hist = _torch_histc_f32(x, self.bins, xmin, xmax)
            return
        new_min, new_max = min(self.min, xmin), max(self.max, xmax)
        update = _torch_histc_f32(x, self.bins, new_min, new_max)
        if new_min == self.min and new_max == self.max:
            self.hist = (self.hist + update).astype(_f32)
            return
        if self.min == self.max:
            one = _torch_histc_f32(np.array([self.min], _f32), self.bins, new_min, new_max)
            self.hist = (one * _f32(self.hist.sum()) + update).astype(_f32)
        else:
            self.hist = (update + self._upscale(new_min, new_max)).astype(_f32)
        self.min, self.max = new_min, new_max

    def _upscale(self, new_min, new_max) -> np.ndarray:
        r, n = self.upsample_rate, self.bins
        h = (np.repeat(self.hist, r) / _f32(r)).astype(_f32)
        bin_size = _f32((self.max - self.min) / _f32(n * r))
        mids = (_torch_linspace_f32(self.min, self.max, n * r + 1)[:-1] + _f32(0.5) * bin_size).astype(_f32)
        bounds = _torch_linspace_f32(new_min, new_max, n + 1)
        idx = np.clip(np.searchsorted(bounds, mids, side="right") - 1, 0, n - 1)
        out = np.zeros(n, _f32)
        np.add.at(out, idx, h)  # in index order, float32, as torch.bincount with float weights
        return out

    def _error(self, start: int, end: int) -> float:
        # torch's _compute_quantization_error: Python-double widths, float32 tensors.
        n = self.bins
        bw = (float(self.max) - float(self.min)) / n
        dbw = bw * (end - start + 1) / self.dst_nbins
        if dbw == 0.0:
            return 0.0
        begin = ((np.arange(n) - start).astype(_f32) * _f32(bw)).astype(_f32)
        stop = (begin + _f32(bw)).astype(_f32)
        dst_begin = np.clip(_torch_floor_div_f32(begin, dbw), 0, self.dst_nbins - 1).astype(_f32)
        dst_begin_c = ((dst_begin + _f32(0.5)) * _f32(dbw)).astype(_f32)
        dst_end = np.clip(_torch_floor_div_f32(stop, dbw), 0, self.dst_nbins - 1).astype(_f32)
        density = (self.hist / _f32(bw)).astype(_f32)

        def l2(lo, hi):
            return density * ((hi * hi * hi - lo * lo * lo) / _f32(3))

        norm = np.zeros(n, _f32)
        norm += l2((begin - dst_begin_c).astype(_f32), np.full(n, _f32(dbw / 2)))
        norm += (dst_end - dst_begin - _f32(1)) * l2(_f32(-dbw / 2), _f32(dbw / 2))
        dst_end_c = (dst_end * _f32(dbw) + _f32(dbw / 2)).astype(_f32)
        norm += l2(_f32(-dbw / 2), (stop - dst_end_c).astype(_f32))
        return float(norm.astype(np.float64).sum())

    def range(self) -> tuple[float, float]:
        if self.hist is None:
            raise HwsimError("observer: no calibration data was observed")
        n = self.bins
        bw = _f32((self.max - self.min) / _f32(n))
        total = float(self.hist.astype(np.float64).sum())
        csum = np.cumsum(self.hist.astype(np.float64)).astype(_f32)  # torch cumsum accumulates in double
        alpha, beta, step = 0.0, 1.0, 1e-5
        start, end = 0, n - 1
        norm_min = math.inf
        while alpha < beta:
            next_alpha, next_beta = alpha + step, beta - step
            lo, hi = start, end
            while lo < end and csum[lo] < _f32(next_alpha * total):
                lo += 1
            while hi > start and csum[hi] > _f32(next_beta * total):
                hi -= 1
            next_start, next_end = start, end
            if (lo - start) > (end - hi):
                next_start, alpha = lo, next_alpha
            else:
                next_end, beta = hi, next_beta
            if next_start == start and next_end == end:
                continue
            err = self._error(next_start, next_end)
            if err > norm_min:
                break
            norm_min, start, end = err, next_start, next_end
        new_min = _f32(self.min + _f32(bw * _f32(start)))
        new_max = _f32(self.min + _f32(bw * _f32(end + 1)))
        return float(new_min), float(new_max)


class Pow2FixPosObserver:
    """DPU activation calibration (numerics.md C.3 step 4): a fix_pos per batch by the "diffs" search with the
    activation rounding (``half_up``), and the mode of those positions at the end (smallest on ties)."""

    def __init__(self, bits: int = 8, rounding: str = "half_up", scope: int = 5,
                 max_fix_pos: int | None = None) -> None:
        self.bits, self.rounding, self.scope, self.max_fix_pos = bits, rounding, scope, max_fix_pos
        self.history: list[int] = []

    def update(self, batch) -> None:
        x = _as_batch(batch)
        if x.size:
            self.history.append(pow2_fix_pos_diffs(x, self.bits, self.rounding, self.scope, self.max_fix_pos))

    def fix_pos(self) -> int:
        return pow2_fix_pos_mode(self.history)

    def range(self) -> tuple[float, float]:
        """The real range the chosen fix_pos represents: ``[-2^(b-1), 2^(b-1) - 1] · 2^-fix_pos``."""
        p = self.fix_pos()
        return math.ldexp(-(1 << (self.bits - 1)), -p), math.ldexp((1 << (self.bits - 1)) - 1, -p)


#: Observer classes by the name a configuration or command line uses.
OBSERVERS = {
    "minmax": MinMaxObserver,
    "percentile": PercentileObserver,
    "mse": MSEObserver,
    "kl": KLObserver,
    "torch_histogram": TorchHistogramObserver,
    "onnxruntime_entropy": OnnxruntimeEntropyObserver,
    "onnxruntime_percentile": OnnxruntimePercentileObserver,
    "pow2_mode": Pow2FixPosObserver,
}


def make_observer(name: str, **options):
    """An observer by name (see :data:`OBSERVERS`) with its keyword options."""
    try:
        cls = OBSERVERS[name]
    except KeyError:
        raise HwsimError(f"observer: unknown calibration method {name!r}; "
                         f"allowed: {sorted(OBSERVERS)}") from None
    try:
        return cls(**options)
    except TypeError as exc:
        raise HwsimError(f"observer {name!r}: {exc}") from None


def dynamic_quantize_params_uint8(x) -> QuantParams:
    """ONNX DynamicQuantizeLinear's parameters (numerics.md B.5), float32 as onnxruntime computes them.

    ``scale = (max(0, max x) - min(0, min x)) / 255``, ``zp = rne(clamp(0 - min / scale, 0, 255))``. For an
    all-zero input (widened range of width 0) onnxruntime returns scale 1.0 and zero point 0 (measured with
    onnxruntime 1.32), and so does this.
    """
    x = _as_batch(x).astype(np.float32, copy=False)
    lo = np.minimum(np.float32(x.min()) if x.size else np.float32(0), np.float32(0))
    hi = np.maximum(np.float32(x.max()) if x.size else np.float32(0), np.float32(0))
    scale = np.float32((hi - lo) / np.float32(255))
    if hi == lo:
        scale, zp = np.float32(1.0), 0
    else:
        zp = int(np.rint(np.clip(np.float32(0) - lo / scale, np.float32(0), np.float32(255))))
    return QuantParams(scale=np.array([scale], np.float32), zero_point=np.array([zp], np.int64),
                       qmin=0, qmax=255)
