"""Quantization schemes and the rules that turn a real range into (scale, zero point) or a fix_pos.

A :class:`QuantScheme` says *what* a tensor is quantized to (bits, signedness, narrow range, symmetry,
granularity, kind of scale, rounding). The functions below say *how* a given engine computes the parameters
from an observed range; each is named after the engine whose arithmetic it reproduces and cites its source
(sections refer to ``numerics.md`` in the project's research notes). They differ in small ways that change
integers: float32 vs float64 arithmetic, the rounding of the zero point, the ``eps`` floor, what a degenerate
range maps to, and which integer range "reduce_range" means.

Nothing here knows a target's name: a target description is turned into a :class:`QuantScheme` elsewhere,
and :func:`params_from_range` dispatches on ``scheme.params_rule``.

Rounding names used throughout (numerics.md section 0):

=====================  ==========================================================
``half_even``          ties to even (RNE): ``np.rint``, torch.round, ONNX
``half_away``          ties away from zero (RHAZ): ``std::round``, ``TfLiteRound``
``half_up``            ties toward +inf (RHUP): ``floor(x + 0.5)``, DPU_ROUND
``half_down``          ties toward -inf (RHDN): ``ceil(x - 0.5)``
``half_toward_zero``   ties toward zero (RHTZ)
``floor``              toward -inf (truncating shift)
``ceil``               toward +inf
``trunc``              toward zero (C integer conversion)
=====================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hwsim.errors import HwsimError

__all__ = [
    "GRANULARITIES",
    "PARAMS_RULES",
    "QUANTIZE_METHODS",
    "ROUNDING_MODES",
    "SCALE_KINDS",
    "QuantParams",
    "QuantScheme",
    "affine_params_generic",
    "affine_params_onnxruntime",
    "affine_params_tflite",
    "affine_params_torch",
    "bias_params_from_scales",
    "broadcast_params",
    "dequantize",
    "fake_quantize",
    "group_minmax",
    "onnxruntime_qrange",
    "params_from_range",
    "params_from_tensor",
    "pow2_fix_pos_diffs",
    "pow2_fix_pos_mode",
    "pow2_fix_pos_overflow_free",
    "pow2_params",
    "qrange",
    "quantize",
    "round_with",
    "symmetric_params_onnxruntime",
    "symmetric_params_tflite",
    "symmetric_params_torch",
    "tensor_minmax",
    "tflite_nudged_range",
    "to_quant_spec",
    "torch_qrange",
]


# ----------------------------------------------------------------------------------------------------------
# Rounding


# The half-rules work on |x|: for a non-negative float, |x| - floor(|x|) is exact, so a tie is recognised
# exactly (``floor(x + 0.5)`` would send 0.49999999999999994 to 1, and ``x - floor(x)`` of a negative x can
# round a fraction just above 0.5 down onto it).
def _half_rule(tie_away: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    def rule(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        a = np.abs(x)
        lo = np.floor(a)
        frac = a - lo
        mag = np.where(frac > 0.5, lo + 1, lo)
        mag = np.where(frac == 0.5, np.where(tie_away(x), lo + 1, lo), mag)
        return np.copysign(mag, x)

    return rule


ROUNDING_MODES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "half_even": np.rint,
    "half_away": _half_rule(lambda x: np.ones(x.shape, bool)),
    "half_up": _half_rule(lambda x: x > 0),
    "half_down": _half_rule(lambda x: x < 0),
    "half_toward_zero": _half_rule(lambda x: np.zeros(x.shape, bool)),
    "floor": np.floor,
    "ceil": np.ceil,
    "trunc": np.trunc,
}

# Spellings used in numerics.md and in the engines' own vocabularies.
_ROUNDING_ALIASES = {
    "rne": "half_even", "half_to_even": "half_even", "nearest_even": "half_even", "py3_round": "half_even",
    "rhaz": "half_away", "half_away_from_zero": "half_away", "std_round": "half_away", "round": "half_away",
    "rhup": "half_up", "dpu_round": "half_up", "half_up_toward_inf": "half_up",
    "rhdn": "half_down", "rhtz": "half_toward_zero", "half_zero": "half_toward_zero",
}


def _rounding_name(rounding: str) -> str:
    key = str(rounding).lower()
    key = _ROUNDING_ALIASES.get(key, key)
    if key not in ROUNDING_MODES:
        raise HwsimError(f"rounding: unknown rounding mode {rounding!r}; allowed: {sorted(ROUNDING_MODES)}")
    return key


def round_with(x: np.ndarray, rounding: str) -> np.ndarray:
    """Round ``x`` to integers (kept as floats) with the named rounding mode.

    Parameters
    ----------
    x : array_like
        Values to round; float32 or float64, the dtype is kept.
    rounding : str
        One of :data:`ROUNDING_MODES` or an alias (``rne``, ``rhaz``, ``rhup``, ``dpu_round``, ...).
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return ROUNDING_MODES[_rounding_name(rounding)](x).astype(x.dtype, copy=False)


# ----------------------------------------------------------------------------------------------------------
# Integer ranges


def qrange(bits: int, signed: bool, narrow: bool = False, reduce_range: bool = False) -> tuple[int, int]:
    """Integer range ``[qmin, qmax]`` of a ``bits``-wide type.

    Signed is ``[-2^(b-1), 2^(b-1) - 1]``, unsigned ``[0, 2^b - 1]``. ``narrow`` drops the most negative value
    of a signed range (TFLite weights [-127, 127], numerics.md A.1) and the top of an unsigned one (Brevitas
    ``max_int`` 2^b - 2, D.4). ``reduce_range`` drops one bit as PyTorch does (B.3: [-64, 63], [0, 127]);
    onnxruntime's reduced ranges differ, see :func:`onnxruntime_qrange`.
    """
    if reduce_range:
        bits = bits - 1
    if signed:
        qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        if narrow:
            qmin += 1
    else:
        qmin, qmax = 0, (1 << bits) - 1
        if narrow:
            qmax -= 1
    return qmin, qmax


def torch_qrange(bits: int, signed: bool, reduce_range: bool = False) -> tuple[int, int]:
    """PyTorch's ``calculate_qmin_qmax`` (``torch/ao/quantization/utils.py``, numerics.md B.3).

    The 8-bit defaults are [-128, 127] / [0, 255], halved by ``reduce_range`` to [-64, 63] / [0, 127]; a
    custom range is halved with floor division (``qmin // 2, qmax // 2``), which is what this returns for
    other widths.
    """
    qmin, qmax = qrange(bits, signed)
    if reduce_range:
        qmin, qmax = qmin // 2, qmax // 2
    return qmin, qmax


# onnxruntime.quantization.quant_utils: ONNX_INT_TYPE_RANGE / _SYMMETRIC_RANGE / _REDUCED_RANGE (ORT 1.32).
# Note the reduced signed ranges are *symmetric* ([-64, 64], [-4, 3] is the exception for int4) and that the
# symmetric table only narrows int8 and int16.
_ORT_RANGE = {(8, True): (-128, 127), (8, False): (0, 255), (16, True): (-32768, 32767),
              (16, False): (0, 65535), (4, True): (-8, 7), (4, False): (0, 15)}
_ORT_SYMMETRIC_RANGE = {(8, True): (-127, 127), (16, True): (-32767, 32767)}
_ORT_REDUCED_RANGE = {(8, True): (-64, 64), (8, False): (0, 127), (16, True): (-16384, 16384),
                      (16, False): (0, 32767), (4, True): (-4, 3), (4, False): (0, 7)}


def onnxruntime_qrange(bits: int, signed: bool, symmetric: bool = False,
                       reduce_range: bool = False) -> tuple[int, int]:
    """onnxruntime.quantization's ``get_qmin_qmax_for_qType`` (quant_utils.py, ORT 1.32).

    ``reduce_range`` wins over ``symmetric`` (as in ORT); int8 reduced is [-64, 64] and int8 symmetric is
    [-127, 127]. Only 4, 8 and 16 bits exist there.
    """
    key = (bits, bool(signed))
    if key not in _ORT_RANGE:
        raise HwsimError(f"bits: onnxruntime quantization supports 4, 8 and 16 bits, not {bits}")
    if reduce_range:
        return _ORT_REDUCED_RANGE[key]
    if symmetric and key in _ORT_SYMMETRIC_RANGE:
        return _ORT_SYMMETRIC_RANGE[key]
    return _ORT_RANGE[key]


# ----------------------------------------------------------------------------------------------------------
# Scheme and parameters

GRANULARITIES = ("per_tensor", "per_channel", "per_group")
SCALE_KINDS = ("float", "pow2", "fixed_point")
PARAMS_RULES = ("generic", "torch", "onnxruntime", "tflite", "pow2_diffs", "pow2_overflow_free")


@dataclass(frozen=True)
class QuantScheme:
    """How one tensor role is quantized.

    Parameters
    ----------
    bits : int
        Storage width, 2..16 (up to 32 for a bias).
    signed : bool
        Signed integer type.
    narrow : bool
        Drop the most negative signed value (or the top unsigned one); see :func:`qrange`.
    symmetric : bool
        Zero point fixed at the middle (0 for signed); the range is made symmetric around 0.
    granularity : str
        ``per_tensor``, ``per_channel`` (one scale per slice of ``axis``) or ``per_group`` (blocks of
        ``group_size`` consecutive elements along ``axis``, one scale per block and per other index, as ONNX
        blocked quantization).
    axis : int or None
        Channel axis (per_channel) or blocked axis (per_group). Weights: 0 for per output channel (OHWI,
        [out, in]); groups run along the input axis, the last one.
    group_size : int or None
        Block length for ``per_group``.
    scale_kind : str
        ``float`` (any float32 scale), ``pow2`` (scale 2^-fix_pos) or ``fixed_point`` (a float scale whose
        requantization multiplier is later turned into an integer mantissa and shift; the scale itself is
        computed exactly as for ``float``).
    rounding : str
        Rounding of x / scale when this tensor is quantized (see :data:`ROUNDING_MODES`).
    reduce_range : bool
        Drop one bit of range (PyTorch activations, onnxruntime weights; numerics.md B.3, B.5).
    params_rule : str
        Which engine's arithmetic turns a range into parameters: ``generic`` (exact float64 formula, RNE
        zero point), ``torch``, ``onnxruntime``, ``tflite``, ``pow2_diffs`` or ``pow2_overflow_free``.
    """

    bits: int = 8
    signed: bool = True
    narrow: bool = False
    symmetric: bool = False
    granularity: str = "per_tensor"
    axis: int | None = None
    group_size: int | None = None
    scale_kind: str = "float"
    rounding: str = "half_even"
    reduce_range: bool = False
    params_rule: str = "generic"

    def __post_init__(self) -> None:
        if not isinstance(self.bits, (int, np.integer)) or not 2 <= self.bits <= 32:
            raise HwsimError(f"bits: must be an integer in 2..32, got {self.bits!r}")
        if self.bits > 16 and not (self.signed and self.symmetric):
            raise HwsimError(f"bits: widths above 16 are only for signed symmetric biases, got {self.bits}")
        if self.granularity not in GRANULARITIES:
            raise HwsimError(f"granularity: {self.granularity!r} is not one of {GRANULARITIES}")
        if self.granularity != "per_tensor" and self.axis is None:
            raise HwsimError(f"axis: granularity {self.granularity!r} needs an axis")
        if self.granularity == "per_group" and (self.group_size is None or self.group_size < 1):
            raise HwsimError(f"group_size: per_group needs a positive group_size, got {self.group_size!r}")
        if self.scale_kind not in SCALE_KINDS:
            raise HwsimError(f"scale_kind: {self.scale_kind!r} is not one of {SCALE_KINDS}")
        if self.params_rule not in PARAMS_RULES:
            raise HwsimError(f"params_rule: {self.params_rule!r} is not one of {PARAMS_RULES}")
        if self.scale_kind == "pow2" and not self.params_rule.startswith("pow2"):
            raise HwsimError(f"params_rule: scale_kind 'pow2' needs a pow2_* rule, got {self.params_rule!r}")
        if self.params_rule.startswith("pow2") and self.scale_kind != "pow2":
            raise HwsimError(f"scale_kind: params_rule {self.params_rule!r} needs scale_kind 'pow2'")
        if self.scale_kind == "pow2" and not self.signed:
            raise HwsimError("signed: power-of-two (DPU) quantization is signed only")
        object.__setattr__(self, "rounding", _rounding_name(self.rounding))

    @property
    def qmin(self) -> int:
        """Smallest stored integer (engine-specific reduced ranges are handled by the rule functions)."""
        return self.qrange()[0]

    @property
    def qmax(self) -> int:
        """Largest stored integer."""
        return self.qrange()[1]

    def qrange(self) -> tuple[int, int]:
        """``[qmin, qmax]`` as the scheme's ``params_rule`` defines it."""
        if self.params_rule == "onnxruntime":
            return onnxruntime_qrange(self.bits, self.signed, self.symmetric, self.reduce_range)
        if self.params_rule == "torch":
            lo, hi = torch_qrange(self.bits, self.signed, self.reduce_range)
            if self.narrow and self.signed:
                lo += 1
            return lo, hi
        return qrange(self.bits, self.signed, self.narrow, self.reduce_range)


@dataclass(frozen=True, eq=False)
class QuantParams:
    """Quantization parameters of one tensor: ``real = scale * (q - zero_point)``.

    ``scale`` is float32 (what every engine stores) and ``zero_point`` int64, both 1-D for per_tensor
    (length 1) and per_channel (length ``shape[axis]``); for per_group they have the tensor's rank with
    ``ceil(shape[axis] / group_size)`` at ``axis``. ``fix_pos`` is set for power-of-two scales
    (``scale = 2^-fix_pos``).
    """

    scale: np.ndarray
    zero_point: np.ndarray
    qmin: int
    qmax: int
    axis: int | None = None
    group_size: int | None = None
    fix_pos: np.ndarray | None = field(default=None)

    @property
    def granularity(self) -> str:
        if self.group_size is not None:
            return "per_group"
        return "per_tensor" if self.axis is None else "per_channel"

    def __repr__(self) -> str:
        fp = "" if self.fix_pos is None else f", fix_pos={self.fix_pos.tolist()}"
        return (f"QuantParams(scale={self.scale.tolist()}, zero_point={self.zero_point.tolist()}, "
                f"qmin={self.qmin}, qmax={self.qmax}, axis={self.axis}, group_size={self.group_size}{fp})")


def _f32(x) -> np.ndarray:
    return np.atleast_1d(np.asarray(x, dtype=np.float32))


def _f64(x) -> np.ndarray:
    return np.atleast_1d(np.asarray(x, dtype=np.float64))


def _check_range(rmin: np.ndarray, rmax: np.ndarray) -> None:
    if rmin.shape != rmax.shape:
        raise HwsimError(f"rmin/rmax: shapes differ, {rmin.shape} vs {rmax.shape}")
    if not (np.all(np.isfinite(rmin)) and np.all(np.isfinite(rmax))):
        raise HwsimError("rmin/rmax: range must be finite (a NaN or inf reached the observer)")


# ----------------------------------------------------------------------------------------------------------
# Engine rules for float scales


def affine_params_generic(rmin, rmax, qmin: int, qmax: int) -> tuple[np.ndarray, np.ndarray]:
    """The textbook affine rule in float64, zero point rounded half to even (numerics.md B.5 shape).

    The range is widened to include 0, ``scale = (max - min) / (qmax - qmin)`` then stored as float32,
    ``zp = clamp(qmin - rne(min / scale))``. A range too small for a normal float32 scale (e.g. all zeros)
    gives scale 1 and zp = the integer nearest 0 in range. Returns ``(scale float32, zero_point int64)``.
    """
    lo, hi = _f64(rmin), _f64(rmax)
    _check_range(lo, hi)
    lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
    scale64 = (hi - lo) / float(qmax - qmin)
    empty = scale64 < float(np.finfo(np.float32).tiny)  # would not survive as a normal float32
    scale64 = np.where(empty, 1.0, scale64)
    zp = np.clip(qmin - np.rint(lo / scale64), qmin, qmax)
    zp = np.where(empty, np.clip(0, qmin, qmax), zp)
    return scale64.astype(np.float32), zp.astype(np.int64)


def affine_params_torch(rmin, rmax, qmin: int, qmax: int,
                        eps: float = float(np.finfo(np.float32).eps)) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's affine rule (``torch/ao/quantization/observer.py``, ``_calculate_qparams``; numerics.md B.3).

    All in float32: ``min_neg = min(min, 0)``, ``max_pos = max(max, 0)``,
    ``scale = max((max_pos - min_neg) / float(qmax - qmin), eps)``,
    ``zp = clamp(qmin - rne(min_neg / scale), qmin, qmax)``. ``eps`` defaults to float32 machine epsilon
    (2^-23) as in the observers.
    """
    lo, hi = _f32(rmin), _f32(rmax)
    _check_range(lo, hi)
    lo = np.minimum(lo, np.float32(0))
    hi = np.maximum(hi, np.float32(0))
    scale = (hi - lo) / np.float32(qmax - qmin)
    scale = np.maximum(scale, np.float32(eps))
    zp = qmin - np.rint(lo / scale).astype(np.int64)
    return scale.astype(np.float32), np.clip(zp, qmin, qmax).astype(np.int64)


def symmetric_params_torch(rmin, rmax, qmin: int, qmax: int, eps: float = float(np.finfo(np.float32).eps),
                           customized_qrange: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's per_tensor_symmetric / per_channel_symmetric rule (``_calculate_qparams``, numerics.md B.3).

    float32: ``scale = max(max(-min_neg, max_pos) / ((qmax - qmin) / 2), eps)``; for qint8 [-128, 127] that is
    ``/127.5``, so the extremes land on +-127.5 and -127.5 rounds (RNE) to -128. The zero point is 0 for a
    signed type; for an unsigned one it is 128, or ``(qmin + qmax) // 2`` when the observer was given a
    custom range (``customized_qrange``), exactly as torch does (even when 128 lies outside a reduced range).
    """
    lo, hi = _f32(rmin), _f32(rmax)
    _check_range(lo, hi)
    lo = np.minimum(lo, np.float32(0))
    hi = np.maximum(hi, np.float32(0))
    amax = np.maximum(-lo, hi)
    scale = np.maximum(amax / np.float32((qmax - qmin) / 2), np.float32(eps)).astype(np.float32)
    if qmin < 0:
        zp_value = 0
    else:
        zp_value = (qmin + qmax) // 2 if customized_qrange else 128
    return scale, np.full(scale.shape, zp_value, dtype=np.int64)


def affine_params_onnxruntime(rmin, rmax, qmin: int, qmax: int, symmetric: bool = False,
                              min_real_range: float | None = None,
                              blocked: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """onnxruntime.quantization's ``compute_scale_zp`` (``quant_utils.py``, ORT 1.32; numerics.md B.5).

    The range (in its own dtype, float32 here) is widened to include 0, optionally to ``min_real_range``,
    and made symmetric (``[-absmax, absmax]``) if asked. ``scale = (max - min) / (qmax - qmin)`` in
    **float64**, then stored as float32. Asymmetric ``zp = rne(qmin - min / scale64)`` in float64 (no clamp
    needed); symmetric ``zp = rne((qmin + qmax) / 2)`` (0 for int8, 128 for uint8). A float64 scale below
    float32's smallest normal gives scale 1.0 and zp 0.

    For int8 symmetric weights ORT uses the range [-127, 127] (:func:`onnxruntime_qrange`), so the scale is
    ``absmax / 127`` (computed as ``2·absmax / 254`` in float64, the same value).

    ``blocked=True`` follows ``compute_scale_zp_blocked`` (per-group weights) instead, which differs in three
    places: ``max - min`` is subtracted in float32 before the float64 division, the degenerate test is made
    on the float32 scale, and the asymmetric zero point divides by the float32 scale (widened back to
    float64), then clamps; an empty block keeps the symmetric mid-range zero point (128 for uint8).
    """
    lo, hi = _f32(rmin), _f32(rmax)
    _check_range(lo, hi)
    lo = np.minimum(lo, np.float32(0))
    hi = np.maximum(hi, np.float32(0))
    if min_real_range is not None:
        hi = np.maximum(hi, lo + np.float32(min_real_range))
    if symmetric:
        amax = np.maximum(np.abs(lo), np.abs(hi))
        lo, hi = -amax, amax
    if blocked:
        scale32 = ((hi - lo).astype(np.float64) / (float(qmax) - float(qmin))).astype(np.float32)
        scale64 = scale32.astype(np.float64)
    else:
        scale64 = (hi.astype(np.float64) - lo.astype(np.float64)) / (float(qmax) - float(qmin))
    tiny = scale64 < float(np.finfo(np.float32).tiny)
    if symmetric:
        zp = np.full(scale64.shape, np.rint((qmin + qmax) / 2.0))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            zp = np.rint(qmin - lo.astype(np.float64) / np.where(tiny, 1.0, scale64))
        if blocked:
            zp = np.clip(zp, qmin, qmax)
    scale = np.where(tiny, np.float32(1.0), scale64.astype(np.float32)).astype(np.float32)
    if not (blocked and symmetric):  # the blocked symmetric path keeps the mid-range zp on empty blocks
        zp = np.where(tiny, 0, zp)
    return scale, zp.astype(np.int64)


def symmetric_params_onnxruntime(rmin, rmax, bits: int = 8, signed: bool = True,
                                 reduce_range: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """onnxruntime's symmetric rule on its symmetric integer range (int8 [-127, 127]: scale = absmax/127)."""
    qmin, qmax = onnxruntime_qrange(bits, signed, symmetric=True, reduce_range=reduce_range)
    return affine_params_onnxruntime(rmin, rmax, qmin, qmax, symmetric=True)


TFLITE_NEAR_ZERO = 1.0e-6  # kNearZeroTolerance of the TFLite converter's quantization utilities


def affine_params_tflite(rmin, rmax, qmin: int, qmax: int) -> tuple[np.ndarray, np.ndarray]:
    """The TFLite converter's activation rule (TF 2.21 Python API: post-training full-integer quantization).

    Measured against the converter (tests/quant/data/tflite_quant_params.npz, generated by the script next
    to it): the range is widened to include 0; a range narrower than 1e-6 is widened by 1e-6 on both sides;
    ``scale = (float32(max) - float32(min)) / (qmax - qmin)`` in **float32** (the Python converter path sets
    ``legacy_float_scale``); ``zp_from_min = qmin - min / scale`` in float32, clamped to [qmin, qmax], else
    rounded half away from zero (numerics.md A.1, A.11). The MLIR core (``getNudgedScaleAndZeroPoint``)
    computes in float64 and can take the zero point from the max instead; the converter's output follows
    the float32 rule (e.g. an all-zero range: scale 2e-6/255 rounded in float32, zero point 0).
    """
    lo, hi = _f64(rmin), _f64(rmax)
    _check_range(lo, hi)
    lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
    narrow = (hi - lo) < TFLITE_NEAR_ZERO
    lo = np.where(narrow, lo - TFLITE_NEAR_ZERO, lo).astype(np.float32)
    hi = np.where(narrow, hi + TFLITE_NEAR_ZERO, hi).astype(np.float32)
    scale = ((hi - lo) / np.float32(qmax - qmin)).astype(np.float32)
    zp_real = (np.float32(qmin) - lo / scale).astype(np.float32)
    zp = np.where(zp_real < qmin, qmin, np.where(zp_real > qmax, qmax, round_with(zp_real, "half_away")))
    return scale, zp.astype(np.int64)


def symmetric_params_tflite(rmin, rmax, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The TFLite converter's symmetric weight rule: narrow ``[-(2^(b-1)-1), 2^(b-1)-1]``, zp 0 (A.1, A.11).

    Per channel (or tensor): a range ``max - min`` of at most 1e-6 is first widened to include
    ``[-5e-7, 5e-7]`` (MLIR ``ExpandVerySmallRange``, half of kNearZeroTolerance on each side), then
    ``scale = float32(max(|min|, |max|)) / (2^(b-1) - 1)`` in float32. An all-zero channel therefore gets
    ``5e-7 / 127``, as measured on the TF 2.21 converter (tests/quant/data/tflite_quant_params.npz).
    """
    lo, hi = _f64(rmin), _f64(rmax)
    _check_range(lo, hi)
    small = (hi - lo) <= TFLITE_NEAR_ZERO
    lo = np.where(small, np.minimum(lo, -TFLITE_NEAR_ZERO / 2), lo)
    hi = np.where(small, np.maximum(hi, TFLITE_NEAR_ZERO / 2), hi)
    amax = np.maximum(np.abs(lo), np.abs(hi)).astype(np.float32)
    scale = (amax / np.float32((1 << (bits - 1)) - 1)).astype(np.float32)
    return scale, np.zeros(scale.shape, dtype=np.int64)


def tflite_nudged_range(rmin: float, rmax: float, qmin: int, qmax: int) -> tuple[float, float, float, int]:
    """TFLite QAT fake-quant nudging (``quantization_util.cc`` ``NudgeQuantizationRange``; numerics.md A.11).

    float32 throughout: ``scale = (max - min) / (qmax - qmin)``, ``zp_from_min = qmin - min / scale``,
    ``zp = qmin`` if below, ``qmax`` if above, else RHAZ(zp_from_min); the range becomes
    ``[(qmin - zp)·scale, (qmax - zp)·scale]``. Returns ``(nudged_min, nudged_max, scale, zp)``. TF calls it
    with unsigned ranges ([0, 2^b - 1], or [1, 2^b - 1] when narrow); a signed range gives the same nudged
    real range with the zero point shifted.
    """
    f = np.float32
    lo, hi = f(rmin), f(rmax)
    scale = (hi - lo) / f(qmax - qmin)
    zp_from_min = f(qmin) - lo / scale
    if zp_from_min < qmin:
        zp = qmin
    elif zp_from_min > qmax:
        zp = qmax
    else:
        zp = int(round_with(np.float32(zp_from_min), "half_away"))
    return float(f(qmin - zp) * scale), float(f(qmax - zp) * scale), float(scale), zp


def bias_params_from_scales(input_scale, weight_scale, bits: int = 32, product_dtype=np.float32,
                            axis: int | None = None) -> QuantParams:
    """Bias parameters ``scale = s_in · s_w`` (per weight channel), zero point 0 (numerics.md A.1, B.5).

    The product is taken in ``product_dtype``: float32 is what onnxruntime.quantization does
    (``quantize_bias_static_impl``: ``input_scale * weight_scale`` on float32 arrays); the stored scale is
    float32 either way. ``bits`` is 32 for TFLite/ORT int32 biases (TFLite's 16x8 mode uses 64); the
    integer range is ``[-2^(b-1), 2^(b-1) - 1]``.
    """
    s_in = np.asarray(input_scale, dtype=np.float32).astype(product_dtype)
    s_w = np.atleast_1d(np.asarray(weight_scale, dtype=np.float32)).astype(product_dtype)
    scale = (s_in * s_w).astype(np.float32).reshape(-1)
    lo, hi = qrange(bits, True)
    return QuantParams(scale=scale, zero_point=np.zeros(scale.shape, np.int64), qmin=lo, qmax=hi,
                       axis=axis if scale.size > 1 else None)


# ----------------------------------------------------------------------------------------------------------
# Power-of-two (DPU) rules, numerics.md C.1-C.3

MAX_FIX_POS_8BIT = 12  # vai_q_pytorch option max_fix_position (C.3 step 3), for bit widths <= 8
MAX_FIX_POS_WIDE = 15
ALL_ZERO_FIX_POS = 18  # step <= FLT_MIN (C.3 step 1)


def _pow2_cap(bits: int, max_fix_pos: int | None) -> int:
    if max_fix_pos is not None:
        return max_fix_pos
    return MAX_FIX_POS_8BIT if bits <= 8 else MAX_FIX_POS_WIDE


def pow2_fix_pos_overflow_free(rmin, rmax, bits: int = 8) -> np.ndarray:
    """The overflow-free fix_pos ``p0`` (vai_q_pytorch ``diffs_fix_pos`` step 1; numerics.md C.3).

    ``lb = -2^(b-1) - 0.5``, ``ub = 2^(b-1) - 0.5``, ``step = max(min/lb, max/ub)``,
    ``p0 = floor(log2(1/step))`` (so ``x·2^p0`` stays within [lb, ub]); ``step <= FLT_MIN`` (e.g. all zeros)
    gives 18. Computed in float64; the result is not capped (see :func:`pow2_fix_pos_diffs`).
    """
    lo, hi = _f64(rmin), _f64(rmax)
    _check_range(lo, hi)
    lb = -float(1 << (bits - 1)) - 0.5
    ub = float(1 << (bits - 1)) - 0.5
    step = np.maximum(lo / lb, hi / ub)
    tiny = step <= float(np.finfo(np.float32).tiny)
    with np.errstate(divide="ignore"):
        p0 = np.floor(np.log2(1.0 / np.where(tiny, 1.0, step)))
    # log2 of an exact power of two is exact; elsewhere floor(log2(.)) could be off by one just below a
    # power of two, so correct it with exact comparisons: the invariant is 2^p0 <= 1/step < 2^(p0+1).
    p0 = np.where(np.ldexp(1.0, p0.astype(np.int64)) * step > 1.0, p0 - 1, p0)
    p0 = np.where(np.ldexp(1.0, (p0 + 1).astype(np.int64)) * step <= 1.0, p0 + 1, p0)
    return np.where(tiny, ALL_ZERO_FIX_POS, p0).astype(np.int64)


def _pow2_fake_quantize(x: np.ndarray, p: int, bits: int, rounding: str) -> np.ndarray:
    q = round_with(np.ldexp(x, p), rounding)
    q = np.clip(q, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return np.ldexp(q, -p)


def pow2_fix_pos_diffs(x, bits: int = 8, rounding: str = "half_away", scope: int = 5,
                       max_fix_pos: int | None = None) -> int:
    """vai_q_pytorch's "diffs" fix_pos search (``fix_ops.py`` ``diffs_fix_pos``, ``cpu_diff_S``; C.3).

    Starting from the overflow-free ``p0``, try ``p0 .. p0 + scope - 1``, fake-quantize with the tensor's
    rounding (weights ``half_away``, activations ``half_up``, C.2) and keep the first position with the
    strictly smallest ``sum((x - fq(x))^2)``. ``scope`` 5 is the default (``diffs_mode`` "mse"); 1 is the
    pure overflow-free choice (inputs / quant stubs). The result is capped at ``max_fix_pos`` (12 for
    <= 8 bits, else 15). All-zero tensors give 18 before the cap. Computed in float64 (the fake-quant of a
    float32 tensor with a power-of-two scale is exact in either width; only the error sum's rounding could
    differ from the float32 kernel on near-ties).
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        raise HwsimError("x: cannot choose a fix_pos for an empty tensor")
    if not np.all(np.isfinite(x)):
        raise HwsimError("x: tensor has NaN or inf values")
    p0 = int(pow2_fix_pos_overflow_free(x.min(), x.max(), bits)[0])
    best_p, best_err = p0, None
    if p0 != ALL_ZERO_FIX_POS or np.any(x != 0):
        for p in range(p0, p0 + max(scope, 1)):
            err = float(np.sum((x - _pow2_fake_quantize(x, p, bits, rounding)) ** 2))
            if best_err is None or err < best_err:
                best_p, best_err = p, err
    return min(best_p, _pow2_cap(bits, max_fix_pos))


def pow2_fix_pos_mode(history) -> int:
    """Final activation fix_pos: the statistical mode of the per-batch positions, smallest on ties
    (C.3 step 4, scipy ``stats.mode`` behaviour)."""
    h = np.asarray(list(history), dtype=np.int64)
    if h.size == 0:
        raise HwsimError("history: no calibration batch was observed")
    values, counts = np.unique(h, return_counts=True)  # sorted ascending, so argmax picks the smallest tie
    return int(values[np.argmax(counts)])


def pow2_params(fix_pos, bits: int = 8, axis: int | None = None) -> QuantParams:
    """QuantParams for a power-of-two scale 2^-fix_pos, signed full range (DPU: narrow is rejected, C.2)."""
    fp = np.atleast_1d(np.asarray(fix_pos, dtype=np.int64))
    qmin, qmax = qrange(bits, True)
    return QuantParams(scale=np.ldexp(np.float32(1.0), -fp).astype(np.float32),
                       zero_point=np.zeros(fp.shape, np.int64), qmin=qmin, qmax=qmax, axis=axis, fix_pos=fp)


# ----------------------------------------------------------------------------------------------------------
# Ranges of a tensor at a granularity


def _norm_axis(axis: int, ndim: int, what: str = "axis") -> int:
    if not -ndim <= axis < ndim:
        raise HwsimError(f"{what}: axis {axis} out of range for a {ndim}-d tensor")
    return axis % ndim


def tensor_minmax(x: np.ndarray, axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Min and max over the whole tensor (``axis=None``, 1-element arrays) or per slice of ``axis``."""
    x = np.asarray(x)
    if x.size == 0:
        raise HwsimError("x: cannot take the range of an empty tensor")
    if axis is None:
        return np.atleast_1d(x.min()), np.atleast_1d(x.max())
    ax = _norm_axis(axis, x.ndim)
    other = tuple(i for i in range(x.ndim) if i != ax)
    return x.min(axis=other), x.max(axis=other)


def group_minmax(x: np.ndarray, axis: int, group_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-group min/max: blocks of ``group_size`` along ``axis`` (last block may be short), every other index
    kept, as ONNX blocked quantization (numerics.md B.5, D.6). Result shape: ``x.shape`` with
    ``ceil(n / group_size)`` at ``axis``."""
    x = np.asarray(x)
    ax = _norm_axis(axis, x.ndim)
    n = x.shape[ax]
    if group_size < 1:
        raise HwsimError(f"group_size: must be positive, got {group_size}")
    starts = np.arange(0, n, group_size)
    return np.minimum.reduceat(x, starts, axis=ax), np.maximum.reduceat(x, starts, axis=ax)


# ----------------------------------------------------------------------------------------------------------
# Dispatch on a scheme


def _rule_params(scheme: QuantScheme, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    qmin, qmax = scheme.qrange()
    rule = scheme.params_rule
    if rule == "torch":
        if scheme.symmetric:
            return symmetric_params_torch(lo, hi, qmin, qmax)
        return affine_params_torch(lo, hi, qmin, qmax)
    if rule == "onnxruntime":
        return affine_params_onnxruntime(lo, hi, qmin, qmax, symmetric=scheme.symmetric,
                                         blocked=scheme.granularity == "per_group")
    if rule == "tflite":
        if scheme.symmetric:
            if not scheme.signed:
                raise HwsimError("signed: TFLite symmetric tensors are signed (weights [-127, 127], 16x8 "
                                 "activations [-32768, 32767])")
            # Both use max|x| / (2^(b-1) - 1): narrow weights, and the full-range int16 activations of 16x8
            # models (scale = float32(max|x|) / 32767, measured on the TF 2.21 converter).
            return symmetric_params_tflite(lo, hi, scheme.bits)
        return affine_params_tflite(lo, hi, qmin, qmax)
    # generic
    if scheme.symmetric:
        amax = np.maximum(np.abs(_f64(lo)), np.abs(_f64(hi)))
        half = qmax if scheme.signed else (qmax - qmin) / 2.0
        scale = np.where(amax / half < float(np.finfo(np.float32).tiny), 1.0, amax / half).astype(np.float32)
        zp = 0 if scheme.signed else (qmin + qmax + 1) // 2
        return scale, np.full(scale.shape, zp, np.int64)
    return affine_params_generic(lo, hi, qmin, qmax)


def params_from_range(scheme: QuantScheme, rmin, rmax) -> QuantParams:
    """Parameters for already-observed ranges (scalars, per-channel vectors or per-group arrays).

    Power-of-two schemes use the overflow-free position here (a range carries no data for the "diffs"
    search; use :func:`params_from_tensor` or :func:`pow2_fix_pos_diffs` for that).
    """
    lo, hi = _f64(rmin), _f64(rmax)
    _check_range(lo, hi)
    axis = None if scheme.granularity == "per_tensor" else scheme.axis
    gs = scheme.group_size if scheme.granularity == "per_group" else None
    if scheme.scale_kind == "pow2":
        fp = np.minimum(pow2_fix_pos_overflow_free(lo, hi, scheme.bits), _pow2_cap(scheme.bits, None))
        p = pow2_params(fp, scheme.bits, axis)
        return QuantParams(p.scale, p.zero_point, p.qmin, p.qmax, axis, gs, p.fix_pos)
    scale, zp = _rule_params(scheme, lo, hi)
    qmin, qmax = scheme.qrange()
    return QuantParams(scale=scale, zero_point=zp, qmin=qmin, qmax=qmax, axis=axis, group_size=gs)


def params_from_tensor(scheme: QuantScheme, x: np.ndarray) -> QuantParams:
    """Parameters for a whole tensor (typically a weight) at the scheme's granularity.

    Power-of-two schemes run the "diffs" search (``pow2_diffs``, scope 5) or the overflow-free choice
    (``pow2_overflow_free``) per tensor or per channel with the scheme's rounding.
    """
    x = np.asarray(x)
    if scheme.granularity == "per_group":
        lo, hi = group_minmax(x, scheme.axis, scheme.group_size)
    else:
        lo, hi = tensor_minmax(x, None if scheme.granularity == "per_tensor" else scheme.axis)
    if scheme.scale_kind != "pow2":
        return params_from_range(scheme, lo, hi)
    scope = 5 if scheme.params_rule == "pow2_diffs" else 1
    if scheme.granularity == "per_tensor":
        fp = [pow2_fix_pos_diffs(x, scheme.bits, scheme.rounding, scope)]
    elif scheme.granularity == "per_channel":
        ax = _norm_axis(scheme.axis, x.ndim)
        fp = [pow2_fix_pos_diffs(np.take(x, c, axis=ax), scheme.bits, scheme.rounding, scope)
              for c in range(x.shape[ax])]
    else:
        raise HwsimError("granularity: power-of-two scales are per_tensor or per_channel")
    axis = None if scheme.granularity == "per_tensor" else scheme.axis
    return pow2_params(fp, scheme.bits, axis)


# ----------------------------------------------------------------------------------------------------------
# Float-side quantize / fake-quantize (for searches and observers; integer simulation lives in hwsim.emulate)


def broadcast_params(params: QuantParams, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Scale and zero point broadcast to ``shape`` (per-tensor, per-channel along ``axis`` or per-group)."""
    ndim = len(shape)
    scale, zp = np.asarray(params.scale), np.asarray(params.zero_point)
    if params.group_size is not None:
        ax = _norm_axis(params.axis, ndim)
        n = shape[ax]
        idx = np.arange(n) // params.group_size
        if scale.ndim != ndim or scale.shape[ax] != -(-n // params.group_size):
            raise HwsimError(f"scale: per-group scale of shape {scale.shape} does not fit a tensor of "
                             f"shape {shape} with group_size {params.group_size} on axis {params.axis}")
        return np.take(scale, idx, axis=ax), np.take(zp, idx, axis=ax)
    if params.axis is None:
        if scale.size != 1:
            raise HwsimError(f"scale: per-tensor parameters need one scale, got {scale.size}")
        return scale.reshape(()), zp.reshape(())
    ax = _norm_axis(params.axis, ndim)
    if scale.size != shape[ax]:
        raise HwsimError(f"scale: {scale.size} per-channel scales for axis {params.axis} of size {shape[ax]}")
    bshape = [1] * ndim
    bshape[ax] = shape[ax]
    return scale.reshape(bshape), zp.reshape(bshape)


QUANTIZE_METHODS = ("divide", "reciprocal", "reciprocal_fma")


def quantize(x, params: QuantParams, rounding: str = "half_even", dtype=np.float64,
             method: str = "divide") -> np.ndarray:
    """``clamp(round(x / scale) + zp, qmin, qmax)`` as int64, computed in ``dtype``.

    ``method`` says how ``x / scale`` is formed, which decides ties and near-ties (numerics.md B.2, sec. 7):

    - ``divide``: ``round(x / s) + zp`` (onnxruntime QuantizeLinear and quantize_nparray, TFLite reference
      QUANTIZE);
    - ``reciprocal``: ``round(x · fl(1/s)) + zp`` (FBGEMM ``Quantize``, TFLite optimized QUANTIZE);
    - ``reciprocal_fma``: ``round(fl(x · fl(1/s) + zp))`` with one rounding of the multiply-add (PyTorch
      ``quantize_per_tensor`` / ``quantize_per_channel``); emulated in float64, which is exact for float32
      inputs except when ``|x / s|`` is below about ``2^-20·|zp|``.

    Engines differ further per kernel; the integer simulator models them per target.
    """
    if method not in QUANTIZE_METHODS:
        raise HwsimError(f"method: {method!r} is not one of {QUANTIZE_METHODS}")
    x = np.asarray(x, dtype=dtype)
    scale, zp = broadcast_params(params, x.shape)
    s = scale.astype(dtype)
    if method == "divide":
        q = round_with(x / s, rounding) + zp
    elif method == "reciprocal":
        q = round_with(x * (dtype(1.0) / s), rounding) + zp
    else:
        inv = (dtype(1.0) / s).astype(np.float64)
        q = round_with((x.astype(np.float64) * inv + zp).astype(dtype), rounding)
    return np.clip(q, params.qmin, params.qmax).astype(np.int64)


def dequantize(q, params: QuantParams, dtype=np.float64) -> np.ndarray:
    """``(q - zp) · scale`` in ``dtype``."""
    q = np.asarray(q)
    scale, zp = broadcast_params(params, q.shape)
    return ((q - zp).astype(dtype) * scale.astype(dtype)).astype(dtype)


def fake_quantize(x, params: QuantParams, rounding: str = "half_even") -> np.ndarray:
    """Quantize then dequantize ``x`` in its own float dtype (float32 or float64; others become float64)."""
    x = np.asarray(x)
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    return dequantize(quantize(x, params, rounding, dtype), params, dtype)



# ----------------------------------------------------------------------------------------------------------
# Hand-off to the graph IR


def to_quant_spec(scheme: QuantScheme, params: QuantParams):
    """The graph IR's :class:`hwsim.graph.QuantSpec` for ``params`` computed under ``scheme``.

    Engine-specific reduced ranges (onnxruntime's int8 [-64, 64], PyTorch's [-64, 63]) are not expressible
    as bits/signed/narrow; they are stored with the scheme's full width, and the integers themselves stay
    inside ``params.qmin .. params.qmax`` because the quantizer clamps to those.
    """
    from hwsim.graph import QuantSpec  # imported lazily: the IR does not depend on hwsim.quant

    return QuantSpec(bits=scheme.bits, signed=scheme.signed, scale=params.scale.copy(),
                     zero_point=params.zero_point.astype(np.int32 if scheme.bits <= 16 else np.int64),
                     narrow=scheme.narrow and scheme.signed, axis=params.axis, group_size=params.group_size,
                     scale_kind=scheme.scale_kind,
                     fix_pos=None if params.fix_pos is None else params.fix_pos.copy())
