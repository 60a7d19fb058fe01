"""Plain-numpy integer twins of ``hwsim._core``'s depthwise convolution and group-wise (sub-block) GEMM.

They are the slow oracle for csrc/hwsim/depthwise_conv2d.h and csrc/hwsim/groupwise_gemm.h: written from the
definitions in those headers, loop over taps/groups and vectorise only over whole arrays, so a reader can
check them line by line. Tests require the compiled kernels to give identical integers (and identical
float32 bits for GROUP_FLOAT).

Layouts: activations NHWC, depthwise weights OHWI ``[C * multiplier, KH, KW, 1]`` (the IR's Conv2D with
``groups == C``); output channel ``oc`` reads input channel ``oc // multiplier``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Rounding names accepted by :func:`rounding_right_shift`: ``hwsim.numerics.RoundingMode`` members
#: (or their names) except STOCHASTIC; numerics.md section 0 defines each.
SHIFT_ROUNDINGS = ("HALF_TO_EVEN", "HALF_AWAY_FROM_ZERO", "HALF_UP", "HALF_DOWN", "HALF_TOWARD_ZERO", "FLOOR", "TRUNCATE")


def _out_extent(size: int, pad_sum: int, kernel: int, dilation: int, stride: int) -> int:
    span = size + pad_sum - dilation * (kernel - 1) - 1
    return span // stride + 1 if span >= 0 else 0


def depthwise_tap_values(
    x: np.ndarray,
    kernel: tuple[int, int],
    multiplier: int,
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int],
    x_zero_point: int,
) -> np.ndarray:
    """Raw input value seen by every tap of every output, padding holding ``x_zero_point``.

    Returns int64 ``[KH * KW, N, OH, OW, C * multiplier]``, taps ordered ``t = kh * KW + kw``.
    """
    n, h, w, c = x.shape
    kh, kw = kernel
    top, left, bottom, right = (int(p) for p in pads)
    sh, sw = (int(s) for s in strides)
    dh, dw = (int(d) for d in dilations)
    oh = _out_extent(h, top + bottom, kh, dh, sh)
    ow = _out_extent(w, left + right, kw, dw, sw)
    if oh < 1 or ow < 1:
        raise ValueError("the dilated kernel does not fit the padded input")
    padded = np.full((n, h + top + bottom, w + left + right, c), x_zero_point, dtype=np.int64)
    padded[:, top : top + h, left : left + w, :] = x
    per_oc = np.repeat(padded, multiplier, axis=3)  # channel oc = c * multiplier + m
    taps = np.empty((kh * kw, n, oh, ow, c * multiplier), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dh, j * dw
            taps[i * kw + j] = per_oc[:, r0 : r0 + sh * (oh - 1) + 1 : sh, c0 : c0 + sw * (ow - 1) + 1 : sw, :]
    return taps


def depthwise_conv2d_s32(
    x: np.ndarray,
    w: np.ndarray,
    strides: Sequence[int] = (1, 1),
    dilations: Sequence[int] = (1, 1),
    pads: Sequence[int] = (0, 0, 0, 0),
    depth_multiplier: int | None = None,
    x_zero_point: int = 0,
    w_zero_point: int | np.ndarray | None = None,
    mode: str = "EXACT",
) -> np.ndarray:
    """Depthwise convolution into int32, the twin of ``hwsim._core.depthwise_conv2d_s32``.

    Parameters
    ----------
    x : ndarray
        uint8 or int8 NHWC ``[N, H, W, C]``.
    w : ndarray
        int8 OHWI ``[C * multiplier, KH, KW, 1]``.
    strides, dilations : (int, int)
        Along H, W.
    pads : (int, int, int, int)
        ``[top, left, bottom, right]``; padded positions hold ``x_zero_point`` (real 0).
    depth_multiplier : int, optional
        Inferred from ``w.shape[0] // C`` when omitted.
    w_zero_point : int or ndarray, optional
        Weight zero point, scalar or one per output channel (EXACT only; default 0).
    mode : {"EXACT", "FBGEMM_DW_PAIRS", "FBGEMM_DW3X3_PAIRS"}
        EXACT: ``Σ (x − zp)·w``. FBGEMM_DW_PAIRS (the 3×3 name is an alias): raw products, consecutive taps
        paired ``(0,1), (2,3), …`` and each pair clamped to int16, an odd last tap alone, pairs summed
        exactly, then ``zp·Σw`` subtracted (PyTorch fbgemm's depthwise kernel, numerics.md section 7).

    Returns
    -------
    ndarray
        int32 ``[N, OH, OW, C * multiplier]``.
    """
    mode = getattr(mode, "name", mode)
    c = x.shape[3]
    multiplier = depth_multiplier if depth_multiplier is not None else w.shape[0] // c
    kh, kw = w.shape[1], w.shape[2]
    taps = depthwise_tap_values(x, (kh, kw), multiplier, strides, dilations, pads, x_zero_point)
    wt = w.reshape(w.shape[0], kh * kw).T.astype(np.int64)  # [taps, OC]
    if w_zero_point is not None:
        w_zp = np.broadcast_to(np.asarray(w_zero_point, dtype=np.int64).reshape(-1), (w.shape[0],))
        if mode != "EXACT" and np.any(w_zp != 0):
            raise ValueError("w_zero_point must be 0 in mode FBGEMM_DW_PAIRS")
        wt = wt - w_zp
    if mode == "EXACT":
        acc = ((taps - x_zero_point) * wt[:, None, None, None, :]).sum(axis=0)
    elif mode in ("FBGEMM_DW_PAIRS", "FBGEMM_DW3X3_PAIRS"):
        products = taps * wt[:, None, None, None, :]
        acc = np.zeros(products.shape[1:], dtype=np.int64)
        for t in range(0, kh * kw, 2):
            acc += np.clip(products[t : t + 2].sum(axis=0), -32768, 32767)
        acc -= x_zero_point * wt.sum(axis=0)
    else:
        raise ValueError(f"mode must be EXACT or FBGEMM_DW_PAIRS, got {mode!r}")
    return acc.astype(np.int32)


def fbgemm_routes_depthwise(
    channels: int,
    multiplier: int,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int],
) -> bool:
    """Whether PyTorch's fbgemm engine (torch 2.13) runs a groups == C conv2d on its depthwise kernel.

    Measured with quantized Conv2d probes whose int16 pair saturation changes the output (see
    tests/oracle/test_torch_gemm_conv.py): the depthwise kernel (and so FBGEMM_DW_PAIRS) is used iff
    C % 8 == 0, multiplier 1 or 2, a square 3×3, 5×5 or 7×7 kernel, each stride 1 or 2 (mixed (1, 2) too),
    dilation 1 and "same" padding (K − 1)/2 on every side. Everything else (C = 4 or 12, multiplier 3 or 4,
    9×9 or 3×5 kernels, stride 3, padding 0, 2 or (1, 0), dilation 2) runs fbgemm's exact int32 path on a
    VNNI host. Only these probed cases are evidence; PyTorch's TorchScript/FX paths were not probed.
    """
    kh, kw = (int(k) for k in kernel)
    return (
        channels % 8 == 0
        and multiplier in (1, 2)
        and kh == kw
        and kh in (3, 5, 7)
        and all(int(s) in (1, 2) for s in strides)
        and all(int(d) == 1 for d in dilations)
        and all(int(p) == (kh - 1) // 2 for p in pads)
    )


# ---------------------------------------------------------------------------------------------------------
# Group-wise (sub-block) GEMM


def group_count(k: int, group_size: int) -> int:
    """Number of K-groups; the last group is ragged when ``k % group_size != 0``."""
    return -(-k // group_size)


def group_partial_sums_s32(a: np.ndarray, b: np.ndarray, group_size: int, a_zero_point: int = 0) -> np.ndarray:
    """Exact partial sums ``p[m, n, g] = Σ_{k ∈ g} (a[m,k] − zp)·b[n,k]`` as int32 ``[M, N, groups]``."""
    k = a.shape[1]
    a64 = a.astype(np.int64) - a_zero_point
    b64 = b.astype(np.int64)
    groups = group_count(k, group_size)
    p = np.empty((a.shape[0], b.shape[0], groups), dtype=np.int64)
    for g in range(groups):
        sl = slice(g * group_size, min(k, (g + 1) * group_size))
        p[:, :, g] = a64[:, sl] @ b64[:, sl].T
    return p.astype(np.int32)


def groupwise_gemm_float(
    a: np.ndarray, b: np.ndarray, scales: np.ndarray, group_size: int, a_zero_point: int = 0
) -> np.ndarray:
    """GROUP_FLOAT: ``y = Σ_g float32(p_g)·s[n, g]`` in float32, ascending g, from +0.0, no FMA."""
    p = group_partial_sums_s32(a, b, group_size, a_zero_point)
    s = np.asarray(scales, dtype=np.float32)
    y = np.zeros(p.shape[:2], dtype=np.float32)
    for g in range(p.shape[2]):
        # numpy float32 multiply and add each round to nearest-even; nothing is fused.
        y = y + p[:, :, g].astype(np.float32) * s[None, :, g]
    return y


def rounding_right_shift(x: np.ndarray, shift: int, rounding: str) -> np.ndarray:
    """``x / 2^shift`` rounded as ``rounding`` (one of :data:`SHIFT_ROUNDINGS`), on Python integers."""
    rounding = getattr(rounding, "name", rounding)
    xs = np.asarray(x, dtype=object)
    if shift == 0:
        return xs
    half = 1 << (shift - 1)
    one = 1 << shift

    def shift_one(v: int) -> int:
        q, r = divmod(v, one)  # floor quotient, r in [0, 2^shift)
        if rounding == "FLOOR":
            return q
        if rounding == "TRUNCATE":
            return q + (1 if (r and v < 0) else 0)
        if r != half:
            return q + (1 if r > half else 0)
        tie_up = {"HALF_UP": True, "HALF_DOWN": False, "HALF_AWAY_FROM_ZERO": v > 0, "HALF_TOWARD_ZERO": v < 0,
                  "HALF_TO_EVEN": q % 2 == 1}
        if rounding not in tie_up:
            raise ValueError(f"rounding must be one of {SHIFT_ROUNDINGS}, got {rounding!r}")
        return q + (1 if tie_up[rounding] else 0)

    if rounding not in SHIFT_ROUNDINGS:
        raise ValueError(f"rounding must be one of {SHIFT_ROUNDINGS}, got {rounding!r}")
    return np.vectorize(shift_one, otypes=[object])(xs)


def groupwise_gemm_fixed_point(
    a: np.ndarray,
    b: np.ndarray,
    multipliers: np.ndarray,
    group_size: int,
    frac_bits: int,
    a_zero_point: int = 0,
    rounding: str = "HALF_UP",
    acc_bits: int = 32,
) -> tuple[np.ndarray, int]:
    """GROUP_FIXED_POINT: ``acc = sat_A(acc + RRS(p_g·m[n,g], F))`` for g ascending.

    Returns the int64 accumulators and the number of outputs in which at least one addition clamped.
    """
    p = group_partial_sums_s32(a, b, group_size, a_zero_point).astype(object)
    mult = np.asarray(multipliers).astype(object)
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    acc = np.zeros(p.shape[:2], dtype=object)
    clamped = np.zeros(p.shape[:2], dtype=bool)
    for g in range(p.shape[2]):
        acc = acc + rounding_right_shift(p[:, :, g] * mult[None, :, g], frac_bits, rounding)
        clamped |= (acc > hi) | (acc < lo)
        acc = np.minimum(np.maximum(acc, lo), hi)
    return acc.astype(np.int64), int(np.count_nonzero(clamped))


def group_scales_to_fixed_point(scales: np.ndarray, frac_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Float group scales ``[N, groups]`` → (reference scale per row, integer multipliers with F fraction bits).

    The reference is the row maximum (1.0 for an all-zero row), so multipliers lie in ``[0, 2^F]`` and
    ``|ref·m/2^F − s| ≤ ref·2^−(F+1)`` (RNE of an exact-to-2^−53 double quotient).
    """
    s = np.asarray(scales, dtype=np.float32)
    ref = s.max(axis=1) if s.shape[1] else np.zeros(s.shape[0], np.float32)
    ref = np.where(ref == 0, np.float32(1.0), ref).astype(np.float32)
    m = np.rint(s.astype(np.float64) / ref.astype(np.float64)[:, None] * 2.0**frac_bits)
    return ref, m.astype(np.int32)
