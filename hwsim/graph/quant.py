"""Per-tensor quantization parameters carried by the IR (:class:`QuantSpec`).

A float model carries none. A pre-quantized model stores integer parameter arrays (int8/uint8/int16/int32;
4- and 2-bit values unpacked one per int8/uint8 element) plus one QuantSpec per quantized tensor, and may
carry QuantSpecs for activations too. The real value of an integer ``q`` is ``scale * (q - zero_point)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hwsim.errors import GraphError

SCALE_KINDS = ("float", "pow2", "fixed_point")
_STORAGE = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64")


def default_storage_dtype(bits: int, signed: bool) -> str:
    """The smallest numpy integer dtype that holds ``bits``-bit values (4/2-bit values live in 8-bit)."""
    width = 8 if bits <= 8 else 16 if bits <= 16 else 32
    return f"{'' if signed else 'u'}int{width}"


@dataclass(eq=False)
class QuantSpec:
    """Quantization parameters of one tensor.

    Attributes
    ----------
    bits : int
        Value width, 2..16, or 32 (biases).
    signed : bool
        Signed (two's complement) or unsigned integers.
    scale : numpy.ndarray
        Real value of one integer step. Per-tensor: one value (shape ``(1,)``); per-channel: shape
        ``(shape[axis],)``; per-group (``group_size`` set): the tensor's shape with dimension ``axis``
        replaced by ``ceil(shape[axis] / group_size)`` (ONNX blocked quantization). float32 or float64.
    zero_point : numpy.ndarray
        Integer offset, same shape as ``scale``, any integer dtype; zeros when omitted.
    narrow : bool
        Narrow range: signed values in ``[-(2^(bits-1) - 1), 2^(bits-1) - 1]`` (symmetric), unsigned in
        ``[1, 2^bits - 1]``.
    axis : int or None
        Channel axis of a per-channel or per-group spec (None: per-tensor).
    group_size : int or None
        Block length along ``axis`` for per-group quantization.
    scale_kind : str
        ``"float"`` (any real scale), ``"pow2"`` (scale = 2^-fix_pos exactly; ``fix_pos`` stored) or
        ``"fixed_point"`` (a real scale the target realises as integer multiplier and shift).
    fix_pos : numpy.ndarray or None
        For ``pow2`` only: integer exponent with ``scale == 2.0 ** -fix_pos``, same shape as ``scale``.
    dtype : str
        Storage dtype of the integers (``int8`` for signed values of up to 8 bits, etc.).
    """

    bits: int
    signed: bool
    scale: Any = None
    zero_point: Any = None
    narrow: bool = False
    axis: int | None = None
    group_size: int | None = None
    scale_kind: str = "float"
    fix_pos: Any = None
    dtype: str | None = None

    def __post_init__(self) -> None:
        where = "QuantSpec"
        if isinstance(self.bits, bool) or not isinstance(self.bits, (int, np.integer)):
            raise GraphError(f"{where}: field 'bits' must be an int, got {self.bits!r}")
        self.bits = int(self.bits)
        if not (2 <= self.bits <= 16 or self.bits == 32):
            raise GraphError(f"{where}: field 'bits' must be in 2..16 or 32, got {self.bits}")
        for f in ("signed", "narrow"):
            if not isinstance(getattr(self, f), (bool, np.bool_)):
                raise GraphError(f"{where}: field '{f}' must be a bool, got {getattr(self, f)!r}")
            setattr(self, f, bool(getattr(self, f)))
        if self.scale_kind not in SCALE_KINDS:
            raise GraphError(f"{where}: field 'scale_kind' must be one of {', '.join(SCALE_KINDS)}, "
                             f"got {self.scale_kind!r}")
        if self.fix_pos is not None:
            fp = np.asarray(self.fix_pos)
            if fp.dtype.kind not in "iu":
                raise GraphError(f"{where}: field 'fix_pos' must be integers, got dtype {fp.dtype}")
            if self.scale_kind != "pow2":
                raise GraphError(f"{where}: field 'fix_pos' is only for scale_kind 'pow2'")
            self.fix_pos = np.atleast_1d(fp)
            if self.scale is None:
                self.scale = np.ldexp(1.0, -self.fix_pos.astype(np.int64))
        elif self.scale_kind == "pow2":
            raise GraphError(f"{where}: scale_kind 'pow2' needs field 'fix_pos'")
        if self.scale is None:
            raise GraphError(f"{where}: field 'scale' is required")
        scale = np.asarray(self.scale)
        if scale.dtype not in (np.float32, np.float64):
            if scale.dtype.kind in "iuf":
                scale = scale.astype(np.float64)
            else:
                raise GraphError(f"{where}: field 'scale' must be float32 or float64, "
                                 f"got dtype {scale.dtype}")
        self.scale = np.atleast_1d(scale)
        if self.scale.size == 0:
            raise GraphError(f"{where}: field 'scale' is empty")
        if not np.all(np.isfinite(self.scale)) or not np.all(self.scale > 0):
            raise GraphError(f"{where}: field 'scale' must be finite and > 0")
        if self.fix_pos is not None:
            if self.fix_pos.shape != self.scale.shape:
                raise GraphError(f"{where}: field 'fix_pos' shape {list(self.fix_pos.shape)} differs from "
                                 f"scale shape {list(self.scale.shape)}")
            if not np.array_equal(self.scale.astype(np.float64), np.ldexp(1.0,
                                                                          -self.fix_pos.astype(np.int64))):
                raise GraphError(f"{where}: scale_kind 'pow2' needs scale == 2**-fix_pos exactly")
        if self.zero_point is None:
            self.zero_point = np.zeros(self.scale.shape, np.int32)
        zp = np.atleast_1d(np.asarray(self.zero_point))
        if zp.dtype.kind not in "iu":
            raise GraphError(f"{where}: field 'zero_point' must be integers, got dtype {zp.dtype}")
        if zp.shape != self.scale.shape:
            raise GraphError(f"{where}: field 'zero_point' shape {list(zp.shape)} differs from scale shape "
                             f"{list(self.scale.shape)}")
        self.zero_point = zp
        if self.dtype is None:
            self.dtype = default_storage_dtype(self.bits, self.signed)
        if self.dtype not in _STORAGE:
            raise GraphError(f"{where}: field 'dtype' must be one of {', '.join(_STORAGE)}, "
                             f"got {self.dtype!r}")
        info = np.iinfo(self.dtype)
        signed_container = info.min < 0
        if (info.bits < self.bits or (self.signed and not signed_container)
                or (not self.signed and signed_container and self.bits >= info.bits)):
            raise GraphError(f"{where}: storage dtype {self.dtype} cannot hold {self.bits}-bit "
                             f"{'signed' if self.signed else 'unsigned'} values")
        if self.axis is not None:
            if isinstance(self.axis, bool) or not isinstance(self.axis, (int, np.integer)):
                raise GraphError(f"{where}: field 'axis' must be an int or null, got {self.axis!r}")
            self.axis = int(self.axis)
        if self.group_size is not None:
            if isinstance(self.group_size, bool) or not isinstance(self.group_size, (int, np.integer)) \
                    or self.group_size < 1:
                raise GraphError(f"{where}: field 'group_size' must be a positive int or null, "
                                 f"got {self.group_size!r}")
            self.group_size = int(self.group_size)
            if self.axis is None:
                raise GraphError(f"{where}: field 'group_size' needs field 'axis'")
        # The zero point may be any value of the full (non-narrow) range.
        lo = -(1 << (self.bits - 1)) if self.signed else 0
        hi = self.qmax
        if np.any(self.zero_point < lo) or np.any(self.zero_point > hi):
            raise GraphError(f"{where}: field 'zero_point' outside [{lo}, {hi}]")

    # ------------------------------------------------------------------------------------------------
    @property
    def qmin(self) -> int:
        """Smallest representable integer."""
        if self.signed:
            return -(1 << (self.bits - 1)) + (1 if self.narrow else 0)
        return 1 if self.narrow else 0

    @property
    def qmax(self) -> int:
        """Largest representable integer."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def granularity(self) -> str:
        """``"tensor"``, ``"channel"`` or ``"group"``."""
        if self.axis is None:
            return "tensor"
        return "group" if self.group_size is not None else "channel"

    def check_tensor(self, shape: tuple[int, ...], where: str) -> None:
        """Raise GraphError naming ``where`` when this spec does not fit a tensor of ``shape``."""
        if self.axis is None:
            if self.scale.size != 1:
                raise GraphError(f"{where}: per-tensor quantization (axis null) needs 1 scale, "
                                 f"got {self.scale.size}")
            return
        axis = self.axis + len(shape) if self.axis < 0 else self.axis
        if not 0 <= axis < len(shape):
            raise GraphError(f"{where}: quantization axis {self.axis} is out of range for shape "
                             f"{list(shape)}")
        if self.group_size is None:
            if self.scale.shape != (shape[axis],):
                raise GraphError(f"{where}: per-channel quantization along axis {self.axis} needs "
                                 f"scale shape "
                                 f"[{shape[axis]}], got {list(self.scale.shape)}")
        else:
            want = list(shape)
            want[axis] = -(-shape[axis] // self.group_size)
            if list(self.scale.shape) != want:
                raise GraphError(f"{where}: per-group quantization (axis {self.axis}, group_size "
                                 f"{self.group_size}) needs scale shape {want}, got {list(self.scale.shape)}")

    def check_values(self, q: np.ndarray, where: str) -> None:
        """Raise GraphError when the integer array ``q`` has the wrong dtype or values out of range."""
        if str(q.dtype) != self.dtype:
            raise GraphError(f"{where}: quantized values must be stored as {self.dtype}, got {q.dtype}")
        if q.size and (int(q.min()) < self.qmin or int(q.max()) > self.qmax):
            raise GraphError(f"{where}: quantized values outside [{self.qmin}, {self.qmax}] "
                             f"(found {int(q.min())}..{int(q.max())})")

    def _broadcast(self, a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        if self.axis is None:
            return a.reshape(())
        axis = self.axis + len(shape) if self.axis < 0 else self.axis
        if self.group_size is None:
            view = [1] * len(shape)
            view[axis] = shape[axis]
            return a.reshape(view)
        rep = np.repeat(a, self.group_size, axis=axis)
        return np.take(rep, np.arange(shape[axis]), axis=axis)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """Real values ``scale * (q - zero_point)`` in float64, broadcast per tensor/channel/group."""
        q = np.asarray(q)
        scale = self._broadcast(self.scale.astype(np.float64), q.shape)
        zp = self._broadcast(self.zero_point.astype(np.int64), q.shape)
        return (q.astype(np.int64) - zp).astype(np.float64) * scale

    def arrays(self) -> dict[str, np.ndarray]:
        """The array fields by name (``scale``, ``zero_point`` and, for pow2, ``fix_pos``)."""
        out = {"scale": self.scale, "zero_point": self.zero_point}
        if self.fix_pos is not None:
            out["fix_pos"] = self.fix_pos
        return out

    def scalars(self) -> dict[str, Any]:
        """The non-array fields as JSON-able values."""
        return {"bits": self.bits, "signed": self.signed, "narrow": self.narrow, "axis": self.axis,
                "group_size": self.group_size, "scale_kind": self.scale_kind, "dtype": self.dtype}

    def copy(self) -> QuantSpec:
        """A deep copy."""
        arrays = {k: v.copy() for k, v in self.arrays().items()}
        return QuantSpec(**self.scalars(), **arrays)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantSpec):
            return NotImplemented
        a, b = self.arrays(), other.arrays()
        return self.scalars() == other.scalars() and a.keys() == b.keys() and all(
            a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)
