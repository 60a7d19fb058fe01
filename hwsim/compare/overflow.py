"""Static worst-case accumulator analysis: can a layer's integer sums leave the target's registers?

Nothing is run on data unless asked: from a :class:`~hwsim.emulate.simulator.QuantizedModel` (integer
weights ``w_int``, biases and the integer range each layer's input can take) every weighted layer's
accumulator is bounded per output channel, exactly, and compared with the widths the target's kernel
uses:

``accumulator``
    Σ_k (x_k − zp)·w_k (+ the bias where the target adds it into the accumulator), against the target's
    ``numerics.accumulator.bits``. With x ranging over [lo, hi] independently per tap, the extremes are
    Σ_k max(w_k·(lo − zp), w_k·(hi − zp)) and Σ_k min(...), both reached by one input (every tap of a
    window is a distinct input element), so the bound is the exact worst case over that input range.
``int16_pairs``
    Targets whose GEMM mode is ``avx2_pairs`` (VPMADDUBSW, numerics.md B.1): sat16(a'_{2i}·b_{2i} +
    a'_{2i+1}·b_{2i+1}) on the raw activation codes a' (int8 codes + 128), pairs k = 2i, 2i+1 of the
    kernel's K order, (kh, kw, ci) with ci innermost for convolution (csrc/hwsim/gemm.h); an odd K's last
    element pairs with a zero.
``dw_pairs``
    fbgemm's depthwise kernel (numerics.md section 7): raw uint8 × int8 products of taps ordered kh·KW + kw,
    pairs (0, 1), (2, 3), ... saturated to int16, on the geometries fbgemm routes to that kernel.

Headroom is counted in whole bits: ``headroom_bits = width − bits needed to hold [bound_min, bound_max]``
as a signed integer; 0 means the worst case just fits, a negative value means the layer can overflow.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwsim._io import atomic_write_text, make_run_folder
from hwsim.emulate.ref_depthwise import fbgemm_routes_depthwise
from hwsim.emulate.simulator import LayerPlan, QuantizedModel, graph_batch_limit, simulate
from hwsim.errors import HwsimError

_WEIGHTED = ("Conv2D", "DepthwiseConv2D", "Dense")

CHECKS = ("accumulator", "int16_pairs", "dw_pairs")


@dataclass(frozen=True)
class OverflowCheck:
    """One bound of one layer.

    Attributes
    ----------
    layer : str
        Node name (``conv+ReLU`` style for a fused activation).
    node : str
        Name of the weighted node.
    op_kind : str
        Target op kind (Conv2D, DepthwiseConv2D, Dense).
    check : str
        ``accumulator``, ``int16_pairs`` or ``dw_pairs``.
    width_bits : int
        Register width the bound is compared with.
    bound_min, bound_max : int
        Exact extremes of the sum over the input range (per worst output channel).
    needed_bits : int
        Signed width that holds [bound_min, bound_max].
    headroom_bits : int
        ``width_bits − needed_bits``; negative means the layer can overflow.
    worst_channel : int
        Output channel with the widest bound.
    worst_pair : int or None
        Pair index i (K elements 2i, 2i + 1, or taps 2i, 2i + 1) of the worst pair, for the pair checks.
    input_range : tuple of int
        Integer range the bound assumes: activation codes [lo, hi] (raw codes a' for the pair checks).
    input_zero_point : int
        The input's zero point (subtracted in the accumulator check).
    range_source : str
        ``storage`` (the tensor's quantized range, narrowed by a producer's clamp) or ``observed``.
    suggestion : str
        A fix when the layer can overflow, else empty.
    """

    layer: str
    node: str
    op_kind: str
    check: str
    width_bits: int
    bound_min: int
    bound_max: int
    needed_bits: int
    headroom_bits: int
    worst_channel: int
    worst_pair: int | None
    input_range: tuple[int, int]
    input_zero_point: int
    range_source: str
    suggestion: str = ""

    @property
    def can_overflow(self) -> bool:
        return self.headroom_bits < 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_range"] = list(self.input_range)
        d["can_overflow"] = self.can_overflow
        return d


@dataclass
class OverflowReport:
    """Every bound of every integer weighted layer of one quantized model on one target."""

    model: str
    target: str
    accumulator_bits: int
    range_source: str
    checks: list[OverflowCheck] = field(default_factory=list)

    @property
    def overflowing(self) -> list[OverflowCheck]:
        """The checks whose worst case does not fit (headroom < 0)."""
        return [c for c in self.checks if c.can_overflow]

    def for_layer(self, node: str) -> list[OverflowCheck]:
        return [c for c in self.checks if c.node == node]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "target": self.target, "accumulator_bits": self.accumulator_bits,
                "range_source": self.range_source,
                "layers_checked": len({c.node for c in self.checks}),
                "can_overflow": [{"layer": c.layer, "check": c.check, "headroom_bits": c.headroom_bits}
                                 for c in self.overflowing],
                "checks": [c.to_dict() for c in self.checks]}

    def to_csv(self) -> str:
        columns = ["layer", "node", "op_kind", "check", "width_bits", "bound_min", "bound_max", "needed_bits",
                   "headroom_bits", "can_overflow", "worst_channel", "worst_pair", "input_range",
                   "input_zero_point", "range_source", "suggestion"]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        for c in self.checks:
            d = c.to_dict()
            d["input_range"] = f"{c.input_range[0]}..{c.input_range[1]}"
            d["worst_pair"] = "" if c.worst_pair is None else c.worst_pair
            w.writerow({k: d[k] for k in columns})
        return buf.getvalue()

    def write_folder(self, out_dir: str | os.PathLike) -> Path:
        """Write ``overflow.json`` and ``overflow.csv`` into ``out_dir`` (created if needed)."""
        out = make_run_folder(out_dir)
        atomic_write_text(out / "overflow.json", json.dumps(self.to_dict(), indent=2) + "\n")
        atomic_write_text(out / "overflow.csv", self.to_csv())
        return out


def signed_bits(lo: int, hi: int) -> int:
    """Smallest two's-complement width holding every integer in [lo, hi] (at least 1)."""
    lo, hi = int(lo), int(hi)
    need_hi = hi.bit_length() + 1 if hi > 0 else 1
    need_lo = (-lo - 1).bit_length() + 1 if lo < 0 else 1
    return max(need_hi, need_lo)


def sum_bounds(w: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``w`` [rows, K]: exact min and max of Σ_k w_k·x_k with every x_k in [lo, hi]."""
    w = np.asarray(w, dtype=np.int64)
    a, b = w * int(lo), w * int(hi)
    return np.minimum(a, b).sum(axis=-1), np.maximum(a, b).sum(axis=-1)


def pair_bounds(w: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row and pair of ``w`` [rows, K] (pairs k = 2i, 2i+1; an odd K pads a zero): bounds [rows, K/2]."""
    w = np.asarray(w, dtype=np.int64)
    if w.shape[-1] % 2:
        w = np.concatenate([w, np.zeros((*w.shape[:-1], 1), np.int64)], axis=-1)
    return sum_bounds(w.reshape(*w.shape[:-1], -1, 2), lo, hi)


def tensor_ranges(model: QuantizedModel, data: np.ndarray | None = None) -> dict[str, tuple[int, int]]:
    """Integer code range of every activation tensor of ``model``.

    Without ``data``: the tensor's storage range [qmin, qmax], narrowed where a producer provably clamps
    further (a fused ReLU/ReLU6 in a requantization, a clamp kernel) and carried through ops that only move
    codes (copy, transpose, max pool on the same quantization). With ``data`` (float inputs, batch first):
    the min and max codes the simulation produces on it (an observed, not a guaranteed, range).
    """
    if data is not None:
        data = np.asarray(data, dtype=np.float32)
        chunk = graph_batch_limit(model.graph) or max(len(data), 1)
        ranges: dict[str, tuple[int, int]] = {}
        for s in range(0, len(data), chunk):
            ints = simulate(model, data[s:s + chunk], keep_intermediates=True).integers
            for t, v in ints.items():
                lo, hi = int(v.min()), int(v.max())
                if t in ranges:
                    lo, hi = min(lo, ranges[t][0]), max(hi, ranges[t][1])
                ranges[t] = (lo, hi)
        return ranges
    ranges = {t: (a.qmin, a.qmax) for t, a in model.act.items()}
    for p in model.plans:
        if p.mode != "integer" or p.output not in model.act:
            continue
        y_q = model.act[p.output]
        src = p.node.inputs[0] if p.node.inputs else None
        same = src in model.act and \
            (model.act[src].scale, model.act[src].zero_point) == (y_q.scale, y_q.zero_point)
        if p.op_kind in _WEIGHTED and "act_min" in p.consts:
            ranges[p.output] = (int(p.consts["act_min"]), int(p.consts["act_max"]))
        elif p.impl.kernel == "clamp" and "bounds" in p.consts and src in ranges:
            lo, hi = p.consts["bounds"]
            ranges[p.output] = (max(int(lo), ranges[src][0]), min(int(hi), ranges[src][1]))
        elif p.impl.kernel in ("copy", "transpose", "max_pool") and same and src in ranges:
            ranges[p.output] = ranges[src]
    return ranges


def _label(p: LayerPlan) -> str:
    return p.node.name if p.fused_activation is None else f"{p.node.name}+{p.fused_activation.op}"


def _bias_in_acc(model: QuantizedModel, p: LayerPlan) -> np.ndarray | None:
    """The bias in accumulator units, or None where the target does not add it into the accumulator."""
    c = p.consts
    if "bias" not in c:
        return None
    b = c["bias"].astype(np.int64)
    scheme = p.impl.requant.scheme if p.impl.requant is not None else None
    if scheme == "pow2_shift":
        sb = int(c.get("shift_bias", 0))
        return b << sb if sb >= 0 else b >> -sb
    if scheme == "float_scale" and dict(p.impl.requant.params).get("bias_stage", "int32_in_accumulator") \
            != "int32_in_accumulator":
        return None
    return b


def _suggestion(check: str, target_acc_bits: int) -> str:
    if check == "int16_pairs":
        return ("7-bit activations (reduce_range) or 7-bit weights keep every pair within int16; or a VNNI "
                "target (exact int32)")
    if check == "dw_pairs":
        return "7-bit activations (reduce_range) keep every tap pair within int16"
    return (f"split K into partial sums that fit {target_acc_bits} bits, narrow the weights or activations, "
            "or use a wider accumulator")


def check_overflow(model: QuantizedModel, *, data: np.ndarray | None = None, acc_bits: int | None = None,
                   ranges: dict[str, tuple[int, int]] | None = None) -> OverflowReport:
    """Bound every integer Conv2D / DepthwiseConv2D / Dense accumulator of ``model`` on its target.

    Parameters
    ----------
    model : QuantizedModel
        From :func:`hwsim.emulate.simulator.quantize_for_target`.
    data : numpy.ndarray, optional
        Float inputs: bound with the observed input code ranges instead of the static storage ranges.
    acc_bits : int, optional
        Accumulator width to check against instead of the target's ``numerics.accumulator.bits``.
    ranges : dict, optional
        Code range per tensor (overrides both; tensors missing from it use the static range).

    Returns
    -------
    OverflowReport
        One :class:`OverflowCheck` per layer and applicable check, in graph order.
    """
    target = model.target
    width = int(acc_bits if acc_bits is not None else target.numerics.accumulator.bits)
    if not 2 <= width <= 64:
        raise HwsimError(f"--acc-bits: {width} is outside [2, 64]")
    source = "observed" if data is not None else "storage"
    static = tensor_ranges(model)
    if data is not None:
        static.update(tensor_ranges(model, data))
    if ranges:
        source = "given"
        static.update({k: (int(v[0]), int(v[1])) for k, v in ranges.items()})
    report = OverflowReport(model.graph.name, target.name, width, source)
    for p in model.plans:
        if p.mode != "integer" or p.op_kind not in _WEIGHTED or "w_int" not in p.consts:
            continue
        x_name = p.node.inputs[0]
        x_q = model.act[x_name]
        lo, hi = static.get(x_name, (x_q.qmin, x_q.qmax))
        zp = int(p.consts.get("x_zero_point", x_q.zero_point))
        a = p.node.attrs
        if p.op_kind != "Dense" and any(int(v) != 0 for v in a.get("pads", ())):
            lo, hi = min(lo, zp), max(hi, zp)  # padding taps hold the zero point
        w = p.consts["w_int"]
        wk = w.reshape(w.shape[0], -1).astype(np.int64)
        amin, amax = sum_bounds(wk, lo - zp, hi - zp)
        bias = _bias_in_acc(model, p)
        if bias is not None:
            amin, amax = amin + bias, amax + bias
        raw_shift = 128 if x_q.dtype == np.int8 else 0
        pairs = p.op_kind in ("Conv2D", "Dense") and (p.impl.gemm or "exact") == "avx2_pairs"
        if pairs:
            pmin, pmax = pair_bounds(wk, lo + raw_shift, hi + raw_shift)
            # In avx2_pairs mode the accumulator sums the int16-saturated pair terms of the raw codes before
            # the zero-point compensation is added (csrc/hwsim/gemm.h): bound both sequences.
            rmin = np.clip(pmin, -32768, 32767).sum(axis=-1)
            rmax = np.clip(pmax, -32768, 32767).sum(axis=-1)
            amin, amax = np.minimum(amin, rmin), np.maximum(amax, rmax)
        report.checks.append(_check(p, "accumulator", width, amin, amax, None, (lo, hi), zp, source))
        if pairs:
            raw = (lo + raw_shift, hi + raw_shift)
            report.checks.append(_check(p, "int16_pairs", 16, pmin, pmax, True, raw, zp, source))
        if p.op_kind == "DepthwiseConv2D" and p.impl.depthwise_saturation not in (None, "none") \
                and x_q.dtype == np.uint8:
            channels = model.graph.tensors[x_name].shape[-1]
            mult = w.shape[0] // channels
            if fbgemm_routes_depthwise(channels, mult, tuple(w.shape[1:3]), tuple(a["strides"]),
                                       tuple(a["dilations"]), tuple(a["pads"])):
                pmin, pmax = pair_bounds(wk, lo, hi)
                report.checks.append(_check(p, "dw_pairs", 16, pmin, pmax, True, (lo, hi), zp, source))
    return report


def _check(p: LayerPlan, check: str, width: int, bmin: np.ndarray, bmax: np.ndarray, pairs: bool | None,
           rng: tuple[int, int], zp: int, source: str) -> OverflowCheck:
    # signed_bits is monotone in hi and in −lo − 1, so the widest element is the argmax of their maximum
    mag = np.maximum(np.maximum(bmax, -bmin - 1), 0)
    idx = np.unravel_index(int(np.argmax(mag)), mag.shape)
    channel = int(idx[0])
    worst_pair = int(idx[1]) if pairs else None
    needed = int(mag[idx]).bit_length() + 1
    if pairs:  # the extremes over all pairs of the worst channel
        lo_b, hi_b = int(bmin[channel].min()), int(bmax[channel].max())
    else:
        lo_b, hi_b = int(bmin[channel]), int(bmax[channel])
    head = width - needed
    return OverflowCheck(_label(p), p.node.name, p.op_kind, check, width, lo_b, hi_b, needed, head, channel,
                         worst_pair, (int(rng[0]), int(rng[1])), zp, source,
                         _suggestion(check, width) if head < 0 else "")
