"""Op kinds of the hwsim IR: attribute schemas, shape inference and MAC counts.

Every op kind is one :class:`OpSchema` in :data:`OPS`, keyed by its name. A schema lists the op's inputs
(required, optional, or variadic), its attributes (name, type, default, one-line description), a shape
function and a MAC function. Nothing here does arithmetic on tensor values: the float reference lives in
``hwsim.emulate.float_ref`` and the integer kernels in ``hwsim._core``.

Layout conventions (see docs/format.md): activations NHWC, Conv2D weights OHWI ``[O, KH, KW, I/groups]``,
Dense weights ``[out, in]`` with ``y = x @ W.T + b`` over the last axis, per-channel parameters along the last
axis of activations. Padding lists for 2-D ops are ``[top, left, bottom, right]`` (ONNX order).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hwsim.errors import GraphError

Shape = tuple[int, ...]


class _Required:
    """Sentinel default of an attribute the node must set."""

    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Any = _Required()

# Attribute value types. A list type may carry a fixed length (``length``).
ATTR_TYPES = ("int", "float", "bool", "str", "ints", "floats", "int_pairs")

#: Op names accepted on input and the canonical name they are stored as.
OP_ALIASES: dict[str, str] = {"Swish": "SiLU"}


@dataclass(frozen=True)
class AttrSpec:
    """One attribute of an op kind.

    Attributes
    ----------
    name : str
        Attribute name as it appears in ``Node.attrs`` and in the model file.
    type : str
        One of ``int``, ``float``, ``bool``, ``str``, ``ints`` (list of int), ``floats``, ``int_pairs``
        (list of ``[begin, end]`` int pairs).
    default : Any
        Value used when the node omits the attribute; :data:`REQUIRED` when it must be given.
    doc : str
        One-line description.
    length : int or None
        Required list length for list types (None: any length).
    choices : tuple or None
        Allowed values for ``str`` attributes.
    """

    name: str
    type: str
    default: Any
    doc: str
    length: int | None = None
    choices: tuple | None = None

    def normalize(self, value: Any, where: str) -> Any:
        """Check ``value`` against this spec and return its canonical JSON-able form.

        Raises
        ------
        GraphError
            Naming ``where`` (the node) and the attribute when the type, length or choice is wrong.
        """
        what = f"{where}: attribute '{self.name}'"
        t = self.type
        if t == "int":
            if not _is_int(value):
                raise GraphError(f"{what} must be an int, got {_describe(value)}")
            return int(value)
        if t == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)) and not _is_np_real(value):
                raise GraphError(f"{what} must be a number, got {_describe(value)}")
            v = float(value)
            if not math.isfinite(v):
                raise GraphError(f"{what} must be finite, got {v}")
            return v
        if t == "bool":
            if not isinstance(value, bool) and type(value).__name__ != "bool_":
                raise GraphError(f"{what} must be a bool, got {_describe(value)}")
            return bool(value)
        if t == "str":
            if not isinstance(value, str):
                raise GraphError(f"{what} must be a string, got {_describe(value)}")
            if self.choices is not None and value not in self.choices:
                allowed = ", ".join(repr(c) for c in self.choices)
                raise GraphError(f"{what} must be one of {allowed}, got {value!r}")
            return value
        if t in ("ints", "floats"):
            if not isinstance(value, (list, tuple)) and type(value).__name__ != "ndarray":
                raise GraphError(f"{what} must be a list, got {_describe(value)}")
            items = list(value)
            if self.length is not None and len(items) != self.length:
                raise GraphError(f"{what} must have {self.length} elements, got {len(items)}")
            if t == "ints":
                if not all(_is_int(v) for v in items):
                    raise GraphError(f"{what} must be a list of ints, got {items!r}")
                return [int(v) for v in items]
            if not all(not isinstance(v, bool) and isinstance(v, (int, float)) for v in items):
                raise GraphError(f"{what} must be a list of numbers, got {items!r}")
            return [float(v) for v in items]
        if t == "int_pairs":
            if not isinstance(value, (list, tuple)):
                raise GraphError(f"{what} must be a list of [begin, end] pairs, got {_describe(value)}")
            out = []
            for pair in value:
                if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                        or not all(_is_int(v) for v in pair)):
                    raise GraphError(f"{what} must be a list of [begin, end] int pairs, got {list(value)!r}")
                out.append([int(pair[0]), int(pair[1])])
            return out
        raise AssertionError(f"unknown attribute type {t}")  # pragma: no cover - schema bug


def _is_int(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return type(v).__module__ == "numpy" and hasattr(v, "dtype") and v.dtype.kind in "iu" and v.ndim == 0


def _is_np_real(v: Any) -> bool:
    return type(v).__module__ == "numpy" and hasattr(v, "dtype") and v.dtype.kind in "iuf" and v.ndim == 0


def _describe(v: Any) -> str:
    return f"{type(v).__name__} {v!r}"


InferFn = Callable[["NodeView"], list[Shape]]
MacsFn = Callable[["NodeView", list[Shape]], int]


@dataclass
class NodeView:
    """What shape and MAC functions see of a node: its name, op, attributes and input shapes."""

    name: str
    op: str
    attrs: dict[str, Any]
    shapes: list[Shape]
    input_names: list[str] = field(default_factory=list)

    def fail(self, message: str) -> GraphError:
        """A GraphError naming this node."""
        return GraphError(f"node '{self.name}' ({self.op}): {message}")


@dataclass(frozen=True)
class OpSchema:
    """An op kind: inputs, attributes, shape inference, MACs.

    Attributes
    ----------
    name : str
        Canonical op name (the ``op`` string of a node).
    inputs : tuple of str
        Names of the required inputs, in order.
    optional_inputs : tuple of str
        Names of inputs that may follow the required ones (e.g. ``bias``).
    variadic : bool
        True when the op takes one or more inputs of the same role (Concat).
    attrs : dict of str to AttrSpec
        The attribute schema; unknown attributes are errors.
    doc : str
        One-line description of what the op computes.
    infer : callable
        ``infer(view) -> [output shape]``; raises GraphError naming the node on bad shapes.
    macs : callable
        ``macs(view, output_shapes) -> int`` multiply-accumulates for one run.
    """

    name: str
    inputs: tuple[str, ...]
    attrs: dict[str, AttrSpec]
    doc: str
    infer: InferFn
    macs: MacsFn
    optional_inputs: tuple[str, ...] = ()
    variadic: bool = False
    num_outputs: int = 1

    def normalize_attrs(self, attrs: dict[str, Any] | None, where: str) -> dict[str, Any]:
        """Return the attributes with defaults filled in, type-checked and in schema order."""
        attrs = dict(attrs or {})
        unknown = sorted(set(attrs) - set(self.attrs))
        if unknown:
            allowed = ", ".join(self.attrs) or "none"
            raise GraphError(f"{where}: unknown attribute '{unknown[0]}' for {self.name} "
                             f"(allowed: {allowed})")
        out: dict[str, Any] = {}
        for name, spec in self.attrs.items():
            if name in attrs and attrs[name] is not None:
                out[name] = spec.normalize(attrs[name], where)
            elif spec.default is REQUIRED:
                raise GraphError(f"{where}: attribute '{name}' is required for {self.name} ({spec.doc})")
            else:
                out[name] = _copy_default(spec.default)
        return out

    def check_arity(self, n: int, where: str) -> None:
        """Raise GraphError when ``n`` inputs do not fit this op."""
        lo = len(self.inputs)
        if self.variadic:
            if n < max(lo, 1):
                raise GraphError(f"{where}: {self.name} needs at least {max(lo, 1)} input(s), got {n}")
            return
        hi = lo + len(self.optional_inputs)
        if not lo <= n <= hi:
            names = ", ".join(list(self.inputs) + [f"[{o}]" for o in self.optional_inputs])
            raise GraphError(f"{where}: {self.name} takes inputs ({names}), got {n} input(s)")


def _copy_default(v: Any) -> Any:
    if isinstance(v, list):
        return [list(x) if isinstance(x, list) else x for x in v]
    return v


# ----------------------------------------------------------------------------------------------------
# Shape helpers


def broadcast_shapes(a: Shape, b: Shape) -> Shape | None:
    """Numpy broadcasting of two shapes, or None when they do not broadcast."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return tuple(reversed(out))


def conv_out_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                  dilation: int = 1) -> int:
    """Output length of a convolution/pooling window along one axis (floor division, ONNX ceil_mode=0)."""
    effective = dilation * (kernel - 1) + 1
    return (size + pad_begin + pad_end - effective) // stride + 1


def _prod(xs: Sequence[int]) -> int:
    p = 1
    for x in xs:
        p *= int(x)
    return p


def _rank(v: NodeView, i: int, rank: int, what: str) -> Shape:
    s = v.shapes[i]
    if len(s) != rank:
        raise v.fail(f"{what} '{v.input_names[i]}' must have rank {rank}, got shape {list(s)}")
    return s


def _positive(v: NodeView, name: str, values: list[int], minimum: int = 1) -> None:
    if any(x < minimum for x in values):
        raise v.fail(f"attribute '{name}' must be >= {minimum}, got {values}")


def _axis(v: NodeView, axis: int, rank: int, name: str = "axis", allow_end: bool = False) -> int:
    # Negative axes count from the end (-1 is the last axis); allow_end also admits `rank` itself (Flatten).
    hi = rank + 1 if allow_end else rank
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < hi:
        raise v.fail(f"attribute '{name}' = {axis} is out of range for rank {rank}")
    return a


def _zero_macs(v: NodeView, out: list[Shape]) -> int:
    return 0


def _same(v: NodeView) -> list[Shape]:
    return [v.shapes[0]]


# ----------------------------------------------------------------------------------------------------
# Shape functions


def _conv2d(v: NodeView) -> list[Shape]:
    n, h, w, c = _rank(v, 0, 4, "input")
    o, kh, kw, cg = _rank(v, 1, 4, "weight")
    a = v.attrs
    g = a["groups"]
    _positive(v, "groups", [g])
    _positive(v, "strides", a["strides"])
    _positive(v, "dilations", a["dilations"])
    _positive(v, "pads", a["pads"], 0)
    if cg * g != c:
        raise v.fail(f"input '{v.input_names[0]}' has {c} channels but weight '{v.input_names[1]}' "
                     f"expects {cg}·groups = {cg * g} (weight shape {[o, kh, kw, cg]}, groups={g})")
    if o % g:
        raise v.fail(f"weight '{v.input_names[1]}' has {o} output channels, not a multiple of groups={g}")
    if len(v.shapes) > 2 and tuple(v.shapes[2]) != (o,):
        raise v.fail(f"bias '{v.input_names[2]}' must have shape [{o}], got {list(v.shapes[2])}")
    t, left, b, r = a["pads"]
    oh = conv_out_size(h, kh, a["strides"][0], t, b, a["dilations"][0])
    ow = conv_out_size(w, kw, a["strides"][1], left, r, a["dilations"][1])
    if oh < 1 or ow < 1:
        raise v.fail(f"output would be empty ({oh}x{ow}) for input {h}x{w}, kernel {kh}x{kw}")
    return [(n, oh, ow, o)]


def _conv2d_macs(v: NodeView, out: list[Shape]) -> int:
    n, oh, ow, o = out[0]
    _, kh, kw, cg = v.shapes[1]
    return n * oh * ow * o * kh * kw * cg


def _dense(v: NodeView) -> list[Shape]:
    x = v.shapes[0]
    if len(x) < 1:
        raise v.fail(f"input '{v.input_names[0]}' must have rank >= 1")
    wo, wi = _rank(v, 1, 2, "weight")
    if x[-1] != wi:
        raise v.fail(f"input '{v.input_names[0]}' has {x[-1]} features on its last axis but weight "
                     f"'{v.input_names[1]}' [out, in] = {[wo, wi]} expects {wi}")
    if len(v.shapes) > 2 and tuple(v.shapes[2]) != (wo,):
        raise v.fail(f"bias '{v.input_names[2]}' must have shape [{wo}], got {list(v.shapes[2])}")
    return [tuple(x[:-1]) + (wo,)]


def _dense_macs(v: NodeView, out: list[Shape]) -> int:
    return _prod(v.shapes[0]) * v.shapes[1][0]


def _matmul(v: NodeView) -> list[Shape]:
    a, b = v.shapes[0], v.shapes[1]
    if len(a) < 2 or len(b) < 2:
        raise v.fail(f"inputs must have rank >= 2, got {list(a)} and {list(b)}")
    m, k = a[-2], a[-1]
    if v.attrs["transpose_b"]:
        n, kb = b[-2], b[-1]
    else:
        kb, n = b[-2], b[-1]
    if k != kb:
        tb = " (transpose_b)" if v.attrs["transpose_b"] else ""
        raise v.fail(f"inner dimensions differ: '{v.input_names[0]}' {list(a)} and "
                     f"'{v.input_names[1]}' {list(b)}{tb}")
    batch = broadcast_shapes(tuple(a[:-2]), tuple(b[:-2]))
    if batch is None:
        raise v.fail(f"batch dimensions {list(a[:-2])} and {list(b[:-2])} do not broadcast")
    return [batch + (m, n)]


def _matmul_macs(v: NodeView, out: list[Shape]) -> int:
    k = v.shapes[0][-1]
    return _prod(out[0]) * k


def _batchnorm(v: NodeView) -> list[Shape]:
    x = v.shapes[0]
    if len(x) < 1:
        raise v.fail("input must have rank >= 1")
    c = x[-1]
    for i, role in zip(range(1, 5), ("gamma", "beta", "mean", "var"), strict=True):
        if tuple(v.shapes[i]) != (c,):
            raise v.fail(f"{role} '{v.input_names[i]}' must have shape [{c}] (the last axis of the input), "
                         f"got {list(v.shapes[i])}")
    return [x]


def _broadcast(v: NodeView) -> list[Shape]:
    s = broadcast_shapes(v.shapes[0], v.shapes[1])
    if s is None:
        raise v.fail(f"shapes {list(v.shapes[0])} ('{v.input_names[0]}') and {list(v.shapes[1])} "
                     f"('{v.input_names[1]}') do not broadcast")
    return [s]


def _concat(v: NodeView) -> list[Shape]:
    first = v.shapes[0]
    axis = _axis(v, v.attrs["axis"], len(first))
    total = 0
    for name, s in zip(v.input_names, v.shapes, strict=True):
        if len(s) != len(first) or any(s[i] != first[i] for i in range(len(s)) if i != axis):
            raise v.fail(f"input '{name}' shape {list(s)} does not match {list(first)} outside axis {axis}")
        total += s[axis]
    out = list(first)
    out[axis] = total
    return [tuple(out)]


def _pad(v: NodeView) -> list[Shape]:
    x = v.shapes[0]
    pads = v.attrs["pads"]
    if len(pads) != len(x):
        raise v.fail(f"attribute 'pads' needs one [begin, end] pair per axis ({len(x)}), got {len(pads)}")
    if any(p < 0 for pair in pads for p in pair):
        raise v.fail(f"attribute 'pads' must be >= 0, got {pads}")
    return [tuple(d + b + e for d, (b, e) in zip(x, pads, strict=True))]


def _pool(v: NodeView) -> list[Shape]:
    n, h, w, c = _rank(v, 0, 4, "input")
    a = v.attrs
    _positive(v, "kernel", a["kernel"])
    _positive(v, "strides", a["strides"])
    _positive(v, "pads", a["pads"], 0)
    kh, kw = a["kernel"]
    t, left, b, r = a["pads"]
    if t >= kh or b >= kh or left >= kw or r >= kw:
        raise v.fail(f"pads {a['pads']} must be smaller than the kernel {a['kernel']}")
    oh = conv_out_size(h, kh, a["strides"][0], t, b)
    ow = conv_out_size(w, kw, a["strides"][1], left, r)
    if oh < 1 or ow < 1:
        raise v.fail(f"output would be empty ({oh}x{ow}) for input {h}x{w}, kernel {kh}x{kw}")
    return [(n, oh, ow, c)]


def _global_pool(v: NodeView) -> list[Shape]:
    n, h, w, c = _rank(v, 0, 4, "input")
    return [(n, 1, 1, c)]


def reshape_target(v: NodeView, in_shape: Shape, shape: list[int]) -> Shape:
    """Resolve a Reshape ``shape``: ``0`` copies the input's dimension at that index, ``-1`` is inferred."""
    if sum(1 for s in shape if s == -1) > 1:
        raise v.fail(f"attribute 'shape' {shape} has more than one -1")
    out = []
    for i, s in enumerate(shape):
        if s == 0:
            if i >= len(in_shape):
                raise v.fail(f"attribute 'shape' {shape}: 0 at index {i} but the input has rank "
                             f"{len(in_shape)}")
            out.append(in_shape[i])
        elif s < -1:
            raise v.fail(f"attribute 'shape' {shape} has a negative entry other than -1")
        else:
            out.append(s)
    total = _prod(in_shape)
    if -1 in out:
        known = _prod([d for d in out if d != -1])
        if known == 0 or total % known:
            raise v.fail(f"cannot reshape {list(in_shape)} ({total} elements) to {shape}")
        out[out.index(-1)] = total // known
    if _prod(out) != total:
        raise v.fail(f"cannot reshape {list(in_shape)} ({total} elements) to {shape}")
    return tuple(out)


def _reshape(v: NodeView) -> list[Shape]:
    return [reshape_target(v, v.shapes[0], v.attrs["shape"])]


def _flatten(v: NodeView) -> list[Shape]:
    x = v.shapes[0]
    axis = _axis(v, v.attrs["axis"], len(x), allow_end=True)
    return [(_prod(x[:axis]), _prod(x[axis:]))]


def _transpose(v: NodeView) -> list[Shape]:
    x = v.shapes[0]
    perm = v.attrs["perm"]
    if sorted(perm) != list(range(len(x))):
        raise v.fail(f"attribute 'perm' {perm} is not a permutation of the {len(x)} axes")
    return [tuple(x[p] for p in perm)]


def _softmax(v: NodeView) -> list[Shape]:
    _axis(v, v.attrs["axis"], len(v.shapes[0]))
    return [v.shapes[0]]


def _layernorm(v: NodeView) -> list[Shape]:
    x = v.shapes[0]
    axis = _axis(v, v.attrs["axis"], len(x))
    norm = tuple(x[axis:])
    for i, role in ((1, "gamma"), (2, "beta")):
        if tuple(v.shapes[i]) != norm:
            raise v.fail(f"{role} '{v.input_names[i]}' must have shape {list(norm)} "
                         f"(input axes from {axis}), "
                         f"got {list(v.shapes[i])}")
    return [x]


# ----------------------------------------------------------------------------------------------------
# The op table

_I2 = dict(type="ints", length=2)


def _a(name: str, type: str, default: Any, doc: str, **kw: Any) -> AttrSpec:
    return AttrSpec(name, type, default, doc, **kw)


def _schema(name: str, inputs: tuple[str, ...], doc: str, infer: InferFn, attrs: Sequence[AttrSpec] = (),
            macs: MacsFn = _zero_macs, **kw: Any) -> OpSchema:
    return OpSchema(name=name, inputs=inputs, attrs={a.name: a for a in attrs}, doc=doc, infer=infer,
                    macs=macs, **kw)


_PADS4 = _a("pads", "ints", [0, 0, 0, 0], "zero padding [top, left, bottom, right] (ONNX order)", length=4)

_SCHEMAS = [
    _schema("Conv2D", ("x", "weight"), "2-D convolution, NHWC input, OHWI weight [O, KH, KW, C/groups]; "
            "depthwise is groups == C", _conv2d, [
                _a("strides", "ints", [1, 1], "stride [along H, along W]", length=2),
                _a("dilations", "ints", [1, 1], "kernel dilation [along H, along W]", length=2),
                _PADS4,
                _a("groups", "int", 1, "channel groups; C and O must be multiples of it"),
            ], _conv2d_macs, optional_inputs=("bias",)),
    _schema("Dense", ("x", "weight"), "fully connected over the last axis: y = x @ W.T + b, W is [out, in]",
            _dense, [], _dense_macs, optional_inputs=("bias",)),
    _schema("MatMul", ("a", "b"), "batched matrix product with numpy broadcasting of leading axes",
            _matmul, [_a("transpose_b", "bool", False,
                         "use b with its last two axes swapped")], _matmul_macs),
    _schema("BatchNorm", ("x", "gamma", "beta", "mean", "var"),
            "inference batch norm over the last axis: (x - mean) / sqrt(var + epsilon) * gamma + beta",
            _batchnorm, [_a("epsilon", "float", 1e-5, "added to var before the square root")]),
    _schema("Add", ("a", "b"), "elementwise a + b with numpy broadcasting", _broadcast),
    _schema("Mul", ("a", "b"), "elementwise a * b with numpy broadcasting", _broadcast),
    _schema("Concat", (), "concatenation of the inputs along one axis", _concat,
            [_a("axis", "int", REQUIRED,
                "axis to join along (negative counts from the end)")], variadic=True),
    _schema("Pad", ("x",), "constant padding", _pad, [
        _a("pads", "int_pairs", REQUIRED, "one [begin, end] pair per axis, each >= 0"),
        _a("value", "float", 0.0, "value written into the padding"),
    ]),
    _schema("MaxPool", ("x",), "max over KHxKW windows, NHWC; padding never wins (acts as -inf)", _pool, [
        _a("kernel", "ints", REQUIRED, "window [KH, KW]", length=2),
        _a("strides", "ints", [1, 1], "stride [along H, along W]", length=2),
        _PADS4,
    ]),
    _schema("AvgPool", ("x",), "mean over KHxKW windows, NHWC", _pool, [
        _a("kernel", "ints", REQUIRED, "window [KH, KW]", length=2),
        _a("strides", "ints", [1, 1], "stride [along H, along W]", length=2),
        _PADS4,
        _a("count_include_pad", "bool", False, "divide by KH*KW (True) or by the count of non-pad cells"),
    ]),
    _schema("GlobalAvgPool", ("x",), "mean over H and W, output [N, 1, 1, C]", _global_pool),
    _schema("Reshape", ("x",), "reshape (row-major); 0 copies the input dimension, one -1 is inferred",
            _reshape, [_a("shape", "ints", REQUIRED, "target shape; at most one -1; 0 = same as input")]),
    _schema("Flatten", ("x",), "to 2-D [prod(dims[:axis]), prod(dims[axis:])], row-major over NHWC",
            _flatten, [_a("axis", "int", 1, "first axis of the second output dimension")]),
    _schema("Transpose", ("x",), "axis permutation: output axis i is input axis perm[i]", _transpose,
            [_a("perm", "ints", REQUIRED, "permutation of the input axes")]),
    _schema("Softmax", ("x",), "exp(x) / sum(exp(x)) along one axis", _softmax,
            [_a("axis", "int", -1, "axis to normalise over")]),
    _schema("LayerNorm", ("x", "gamma", "beta"),
            "(x - mean) / sqrt(var + epsilon) * gamma + beta over the axes from `axis` to the last",
            _layernorm, [_a("axis", "int", -1, "first normalised axis; all later axes are normalised too"),
                         _a("epsilon", "float", 1e-5, "added to the (biased) variance")]),
    _schema("ReLU", ("x",), "max(x, 0)", _same),
    _schema("ReLU6", ("x",), "min(max(x, 0), 6)", _same),
    _schema("LeakyReLU", ("x",), "x if x >= 0 else alpha * x", _same,
            [_a("alpha", "float", 0.01, "slope for negative inputs")]),
    _schema("Sigmoid", ("x",), "1 / (1 + exp(-x))", _same),
    _schema("Tanh", ("x",), "tanh(x)", _same),
    _schema("HardSigmoid", ("x",), "clip(alpha * x + beta, 0, 1)", _same, [
        _a("alpha", "float", 1.0 / 6.0, "slope"),
        _a("beta", "float", 0.5, "offset"),
    ]),
    _schema("HardSwish", ("x",), "x * relu6(x + 3) / 6", _same),
    _schema("SELU", ("x",), "gamma * (x if x > 0 else alpha * (exp(x) - 1))", _same, [
        _a("alpha", "float", 1.6732632423543772, "negative-side scale"),
        _a("gamma", "float", 1.0507009873554805, "output scale"),
    ]),
    _schema("SiLU", ("x",), "x * sigmoid(x) (also accepted as 'Swish')", _same),
    _schema("Mish", ("x",), "x * tanh(softplus(x))", _same),
    _schema("GELU", ("x",), "x * Phi(x); 'none' uses erf, 'tanh' the tanh approximation", _same,
            [_a("approximate", "str", "none", "'none' (exact, erf) or 'tanh'", choices=("none", "tanh"))]),
]

#: Every op kind by canonical name.
OPS: dict[str, OpSchema] = {s.name: s for s in _SCHEMAS}


def canonical_op(op: str) -> str:
    """The canonical op name for ``op`` (resolving aliases such as 'Swish' -> 'SiLU')."""
    return OP_ALIASES.get(op, op)


def get_schema(op: str, where: str) -> OpSchema:
    """Schema of ``op``; raises GraphError naming ``where`` and listing the known ops if unknown."""
    schema = OPS.get(canonical_op(op)) if isinstance(op, str) else None
    if schema is None:
        raise GraphError(f"{where}: unknown op {op!r} (known: {', '.join(sorted(OPS))})")
    return schema
