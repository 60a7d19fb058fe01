"""Slow, obviously correct numpy twin of the integer GEMM / convolution engine (csrc/hwsim/gemm.h, conv2d.h).

Everything is computed in int64 with the rules written out in csrc/hwsim/gemm.h:

* ``mode="exact"``: terms ``(a[m,k] - a_zp) * (b[n,k] - b_zp[n])`` in ascending k.
* ``mode="avx2_pairs"``: ``a' = a`` (uint8) or ``a + 128`` (int8, the engines' s8s8 handling); pair terms
  ``sat16(a'[2i] b[2i] + a'[2i+1] b[2i+1])`` (VPMADDUBSW), then the exact zero-point compensation
  ``-a_zp' * sum_k b - b_zp * sum_k a' + K * a_zp' * b_zp`` added in int32.
* ``acc_bits`` accumulator over those terms: ``"wrap"`` = exact sum wrapped once; ``"saturate"`` = clamp after
  every addition, in order.

The overflow count is the number of outputs whose accumulation overflowed at least once (see gemm.h).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["gemm_s32_ref", "conv2d_s32_ref", "im2col_nhwc", "wrap_to_bits"]


def wrap_to_bits(v: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap of int64 values to ``bits`` bits, sign-extended (the int32 add of a VPADDD)."""
    v = np.asarray(v, dtype=np.int64)
    half = np.int64(1) << np.int64(bits - 1)
    return ((v + half) & ((np.int64(1) << np.int64(bits)) - 1)) - half


def _weight_zero_points(b_zero_point: int | Sequence[int] | np.ndarray | None, n: int) -> np.ndarray:
    if b_zero_point is None:
        return np.zeros(n, dtype=np.int64)
    zp = np.asarray(b_zero_point, dtype=np.int64)
    return np.broadcast_to(zp, (n,)).copy() if zp.ndim == 0 else zp.reshape(n)


def gemm_s32_ref(
    a: np.ndarray,
    b: np.ndarray,
    *,
    a_zero_point: int = 0,
    b_zero_point: int | Sequence[int] | np.ndarray | None = None,
    mode: str = "exact",
    acc_bits: int = 32,
    overflow: str = "wrap",
) -> tuple[np.ndarray, int]:
    """Integer GEMM ``[M, K] x [N, K]^T`` per the hwsim contract.

    Parameters
    ----------
    a : ndarray, uint8 or int8, shape (M, K)
        Activations.
    b : ndarray, int8, shape (N, K)
        Weights, one row per output channel.
    a_zero_point, b_zero_point
        Activation zero point; weight zero point (None, scalar or one per output channel).
    mode : {"exact", "avx2_pairs"}
    acc_bits : int in [8, 32]
    overflow : {"wrap", "saturate"}

    Returns
    -------
    acc : ndarray, int32, shape (M, N)
    overflow_count : int
    """
    if a.dtype not in (np.uint8, np.int8) or b.dtype != np.int8:
        raise TypeError("a must be uint8/int8 and b int8")
    signed = a.dtype == np.int8
    a64 = a.astype(np.int64)
    b64 = b.astype(np.int64)
    m, k = a64.shape
    n = b64.shape[0]
    zb = _weight_zero_points(b_zero_point, n)
    hi = (1 << (acc_bits - 1)) - 1
    lo = -hi - 1
    saturate = overflow == "saturate"
    acc = np.zeros((m, n), dtype=np.int64)
    overflowed = np.zeros((m, n), dtype=bool)

    def add(term: np.ndarray) -> None:
        nonlocal acc
        acc = acc + term
        if saturate:
            overflowed[...] |= (acc > hi) | (acc < lo)
            acc = np.clip(acc, lo, hi)

    if mode == "exact":
        ac = a64 - a_zero_point
        bc = b64 - zb[:, None]
        for kk in range(k):
            add(np.outer(ac[:, kk], bc[:, kk]))
        if not saturate:
            overflowed |= (acc > hi) | (acc < lo)
        return wrap_to_bits(acc, acc_bits).astype(np.int32), int(overflowed.sum())
    if mode != "avx2_pairs":
        raise ValueError(f"unknown mode {mode!r}")
    shift = 128 if signed else 0
    ap = a64 + shift  # a' as the unsigned bytes VPMADDUBSW sees
    zap = a_zero_point + shift
    for i in range(0, k, 2):
        pair = np.outer(ap[:, i], b64[:, i])
        if i + 1 < k:
            pair = pair + np.outer(ap[:, i + 1], b64[:, i + 1])
        overflowed |= (pair > 32767) | (pair < -32768)
        add(np.clip(pair, -32768, 32767))
    if not saturate:
        overflowed |= (acc > hi) | (acc < lo)
    acc = wrap_to_bits(acc, acc_bits)
    comp = -zap * b64.sum(axis=1)[None, :] - zb[None, :] * ap.sum(axis=1)[:, None] + k * zap * zb[None, :]
    total = acc + comp
    overflowed |= (total > 2**31 - 1) | (total < -(2**31))
    return wrap_to_bits(total, 32).astype(np.int32), int(overflowed.sum())


def im2col_nhwc(
    x: np.ndarray,
    kernel_shape: tuple[int, int],
    *,
    strides: Sequence[int] = (1, 1),
    dilations: Sequence[int] = (1, 1),
    pads: Sequence[int] = (0, 0, 0, 0),
    pad_value: int = 0,
) -> np.ndarray:
    """im2col of an NHWC tensor: shape (N*OH*OW, KH*KW*C), column order (kh, kw, c) with c innermost.

    ``pads`` are ONNX-ordered [top, left, bottom, right]; padding taps hold ``pad_value``.
    """
    n, h, w, c = x.shape
    kh, kw = kernel_shape
    sh, sw = strides
    dh, dw = dilations
    pt, pl, pb, pr = pads
    xp = np.full((n, h + pt + pb, w + pl + pr, c), pad_value, dtype=x.dtype)
    xp[:, pt : pt + h, pl : pl + w, :] = x
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            cols_w = slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)
            cols[:, :, :, i, j, :] = xp[:, rows, cols_w, :]
    return cols.reshape(n * oh * ow, kh * kw * c)


def conv2d_s32_ref(
    x: np.ndarray,
    w: np.ndarray,
    *,
    x_zero_point: int = 0,
    w_zero_point: int | Sequence[int] | np.ndarray | None = None,
    strides: Sequence[int] = (1, 1),
    dilations: Sequence[int] = (1, 1),
    pads: Sequence[int] = (0, 0, 0, 0),
    groups: int = 1,
    mode: str = "exact",
    acc_bits: int = 32,
    overflow: str = "wrap",
) -> tuple[np.ndarray, int]:
    """NHWC x OHWI convolution to int32 NHWC, one GEMM per group over (kh, kw, ci)-ordered im2col columns.

    Returns
    -------
    acc : ndarray, int32, shape (N, OH, OW, O)
    overflow_count : int
    """
    n = x.shape[0]
    o, kh, kw, cg = w.shape
    og = o // groups
    zp = _weight_zero_points(w_zero_point, o)
    outs, total = [], 0
    for g in range(groups):
        cols = im2col_nhwc(
            np.ascontiguousarray(x[..., g * cg : (g + 1) * cg]),
            (kh, kw),
            strides=strides,
            dilations=dilations,
            pads=pads,
            pad_value=x_zero_point,
        )
        acc, cnt = gemm_s32_ref(
            cols,
            w[g * og : (g + 1) * og].reshape(og, kh * kw * cg),
            a_zero_point=x_zero_point,
            b_zero_point=zp[g * og : (g + 1) * og],
            mode=mode,
            acc_bits=acc_bits,
            overflow=overflow,
        )
        outs.append(acc)
        total += cnt
    y = np.concatenate(outs, axis=1)
    h, wd = x.shape[1], x.shape[2]
    oh = (h + pads[0] + pads[2] - dilations[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - dilations[1] * (kw - 1) - 1) // strides[1] + 1
    return y.reshape(n, oh, ow, o), total
