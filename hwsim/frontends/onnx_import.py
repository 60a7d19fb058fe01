"""Import an ONNX model (float, QDQ or QOperator) into an hwsim graph. No arithmetic on activations here.

Layout is converted once, at the edge. hwsim's IR is NHWC; ONNX image models are NCHW. Every ONNX tensor
is held by one IR tensor plus a permutation (``ir = onnx.transpose(perm)``); channel-first ONNX ops (Conv,
pooling, BatchNormalization, QLinearConv, ...) produce NHWC IR tensors, elementwise ops keep the layout of
their input, ONNX ``Transpose`` nodes only change the permutation (so the NHWC↔NCHW pairs that
:func:`hwsim.frontends.onnx_export.export_onnx` writes around each channel-first op vanish), and an explicit
IR ``Transpose`` is inserted only where an op needs another layout than the one its input has. A rank-4
graph input that reaches a channel-first op is NCHW and becomes an NHWC IR input; no leading Transpose is
left in the IR.

Reshape and Flatten follow ONNX's row-major order of the ONNX tensor. After an NCHW tensor whose spatial
size is 1×1 (the usual ``GlobalAveragePool → Flatten → Gemm`` head) NCHW and NHWC orders coincide and the IR
flattens the NHWC tensor directly; otherwise an IR ``Transpose`` back to NCHW is inserted before the
Reshape/Flatten, so the following Dense keeps its weights exactly as stored (no weight reordering).

Quantized models follow /work/coord/prequant-contract.md (docs/format.md, "Pre-quantized models"):

- QDQ: ``QuantizeLinear``/``DequantizeLinear`` on activations emit no node; the quantization parameters
  become the QuantSpec of the IR tensor. ``DequantizeLinear`` of a constant gives the integer parameter and
  its QuantSpec (Conv weights OIHW → OHWI, per-channel axis 0; Gemm/MatMul weights as ``[out, in]``; int32
  bias with its stored scale).
- QOperator: ``QLinearConv``, ``QLinearMatMul`` and the com.microsoft ops that onnxruntime's quantizer and
  optimizer write (``QGemm``, ``QLinearAdd``, ``QLinearMul``, ``QLinearGlobalAveragePool``,
  ``QLinearAveragePool``, ``QLinearConcat``, ``QLinearSigmoid``, ``QLinearLeakyRelu``) become the IR op with
  the scales on its tensors; the QLinearConv/QGemm bias scale is ``float32(x_scale) · float32(w_scale[c])``.
  So a model saved by onnxruntime after its graph optimisations (``optimized_model_filepath``) imports with
  the engine's fusion decisions written out.
- An IR tensor is named after the tensor that holds the integers in the engine: a producer's output that
  only feeds one ``QuantizeLinear`` takes that QuantizeLinear's output name (which is also the output name of
  the QLinearConv that onnxruntime fuses it into); a graph output keeps its ONNX name.
- ``Q(DQ(q))`` with other parameters (onnxruntime's quantizer leaves one where it removed a Relu/Clip that
  a Transpose separated from its Conv) is merged into one quantization with the parameters onnxruntime's
  DoubleQDQPairsRemover computes when it loads the model (``merge_double_qdq=True``, where the chain is
  removable: single consumers, no graph outputs), so the import computes what onnxruntime runs (where the
  pair stood for a removed ReLU, an IR ``ReLU`` with the producer's parameters stays, which the simulator
  fuses: same integers, and the float reference keeps the ReLU). Otherwise
  it is a requantization: an IR ``ReLU`` when the new zero point is the bottom of the range (the clamp is
  then implied by saturation), else an identity ``Reshape``, whose output carries the new QuantSpec.
- A float Conv/Gemm output that feeds only a quantized ReLU/ReLU6 takes the activation's QuantSpec (the
  contract's fused-activation form).
- ``graph.metadata["onnx_tensors"]`` maps every ONNX activation tensor name to ``[ir_name, perm]`` (perm
  None: same layout, else ``ir = onnx.transpose(perm)``), so tests and users can find any ONNX tensor.

Other conversions: constant subgraphs (``Shape → Gather → Concat → Reshape``, Q of constants, ...) are
folded with onnx's reference evaluator; ``MatMul`` by a constant (+ ``Add`` of a bias) becomes ``Dense``;
``Sub``/``Div`` by a constant become ``Add``/``Mul``; ``Clip(0, 6)`` is ``ReLU6``; ``ReduceMean`` over H, W is
``GlobalAvgPool``; the erf form of GELU (``x·0.5·(1 + erf(x/√2))``, torch.onnx.export before opset 20) is one
``GELU``. A symbolic batch dimension becomes 1 (executors accept any batch; Reshapes keep the batch free);
other dynamic dimensions need ``input_shapes``.

Unsupported operators are reported together, in one GraphError naming every node. onnx is imported lazily;
without it :class:`hwsim.errors.MissingExtraError` says ``pip install 'hwsim[onnx]'``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwsim.errors import GraphError, MissingExtraError, ModelFormatError
from hwsim.graph import Graph, Node, QuantSpec, TensorSpec
from hwsim.graph.ops import OPS, NodeView

__all__ = ["import_onnx", "SUPPORTED_OPS"]

_MS = "com.microsoft"
#: Layout of an NCHW tensor held as NHWC: IR axis i is ONNX axis NHWC[i].
NHWC = (0, 2, 3, 1)

_ALIAS_OPS = ("Identity", "Dropout")
_CHANNEL_FIRST = ("Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization", "QLinearConv",
                  "QLinearAveragePool", "QLinearGlobalAveragePool", "ReduceMean")
_TRANSPARENT = ("QuantizeLinear", "DequantizeLinear", "Identity", "Dropout", "Cast", "Relu", "Clip",
                "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Add", "Mul", "Sub", "Div")

#: ONNX operators the importer converts, by domain ("" is the default ONNX domain).
SUPPORTED_OPS: dict[str, tuple[str, ...]] = {
    "": ("Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh",
         "HardSigmoid", "HardSwish", "Mish", "Selu", "Gelu", "Add", "Mul", "Sub", "Div", "Concat", "MaxPool",
         "AveragePool", "GlobalAveragePool", "ReduceMean", "Flatten", "Reshape", "Squeeze", "Unsqueeze",
         "Transpose", "Softmax", "Pad", "LayerNormalization", "Identity", "Dropout", "Cast", "Constant",
         "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul"),
    _MS: ("QGemm", "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool", "QLinearAveragePool",
          "QLinearConcat", "QLinearSigmoid", "QLinearLeakyRelu", "QuantizeLinear", "DequantizeLinear"),
}
_MIN_OPSET = 7


class _Unsupported(Exception):
    """A node that cannot be converted (collected; all are reported together)."""


@dataclass
class _Val:
    """How an ONNX activation tensor is held: IR tensor ``ir`` with ``ir = onnx.transpose(perm)``."""

    ir: str
    perm: tuple[int, ...] | None = None


@dataclass
class _QConst:
    """A DequantizeLinear'd constant: integers plus ONNX quantization parameters."""

    q: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None
    source: str = ""
    qtype: str = "int8"


def _import_onnx():
    try:
        import onnx
        from onnx import numpy_helper, shape_inference
    except ImportError as exc:
        raise MissingExtraError("importing ONNX models needs the onnx package: pip install 'hwsim[onnx]'") \
            from exc
    return onnx, numpy_helper, shape_inference


def _norm_perm(perm: tuple[int, ...] | None) -> tuple[int, ...] | None:
    if perm is None or tuple(perm) == tuple(range(len(perm))):
        return None
    return tuple(int(p) for p in perm)


def _inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def _cf_perm(rank: int) -> tuple[int, ...] | None:
    """Channel-first → channel-last permutation for ``rank`` (None for rank ≤ 2)."""
    return _norm_perm((0, *range(2, rank), 1)) if rank > 2 else None


#: Sub-byte ONNX integer types: (bits, signed). Their values are held unpacked in int8/uint8 arrays.
_LOW_BITS = {"int4": (4, True), "uint4": (4, False), "int2": (2, True), "uint2": (2, False)}


def _quant_dtype_info(dtype: Any, where: str) -> tuple[int, bool]:
    """(bits, signed) of an ONNX quantized type given as a numpy dtype or a name ("int8", "int4", ...)."""
    name = str(dtype) if not isinstance(dtype, str) else dtype
    if name in _LOW_BITS:
        return _LOW_BITS[name]
    try:
        dt = np.dtype(name)
    except TypeError:
        raise _Unsupported(f"{where}: quantized type {name} is not supported") from None
    if dt.kind not in "iu":
        raise _Unsupported(f"{where}: quantized type {dt} is not an integer type")
    return dt.itemsize * 8, dt.kind == "i"


def _unpack_low_bits(a: np.ndarray) -> tuple[np.ndarray, str]:
    """An int4/uint4/int2/uint2 array (ml_dtypes) as int8/uint8 values, with its logical type name."""
    name = str(a.dtype)
    if name in _LOW_BITS:
        return a.astype(np.int8 if _LOW_BITS[name][1] else np.uint8), name
    return a, name


# ----------------------------------------------------------------------------------------------------


def _load(path_or_model: Any):
    onnx, _, _ = _import_onnx()
    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model, "<ModelProto>"
    if isinstance(path_or_model, (bytes, bytearray)):
        try:
            return onnx.load_model_from_string(bytes(path_or_model)), "<bytes>"
        except Exception as exc:  # protobuf DecodeError and friends
            raise ModelFormatError(f"ONNX model bytes: cannot parse ({exc})") from None
    path = os.fspath(path_or_model)
    if not os.path.isfile(path):
        raise ModelFormatError(f"{path}: no such file")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:
        raise ModelFormatError(f"{path}: not a readable ONNX model (corrupt or truncated file?): "
                               f"{exc}") from None
    if not model.graph.node and not model.graph.input:
        raise ModelFormatError(f"{path}: empty or truncated ONNX model (no graph)")
    base = os.path.dirname(os.path.abspath(path))
    from onnx.external_data_helper import load_external_data_for_model, uses_external_data

    for t in model.graph.initializer:
        if uses_external_data(t):
            info = {e.key: e.value for e in t.external_data}
            loc = os.path.join(base, info.get("location", ""))
            if not os.path.isfile(loc):
                raise ModelFormatError(f"{path}: initializer '{t.name}' stores its data in external file "
                                       f"'{info.get('location', '')}', which is missing")
    try:
        load_external_data_for_model(model, base)
    except Exception as exc:
        raise ModelFormatError(f"{path}: cannot load external data: {exc}") from None
    return model, path


def _parse_shape(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.replace("x", ",").split(",") if s.strip())


class _Importer:
    def __init__(self, model: Any, source: str, input_shapes: dict[str, Any] | None,
                 merge_double_qdq: bool = True) -> None:
        self.onnx, self.nh, self.si = _import_onnx()
        self.model = model
        self.source = source
        self.input_shapes = dict(input_shapes or {})
        g = model.graph
        self.opset = 0
        for imp in model.opset_import:
            if imp.domain in ("", "ai.onnx"):
                self.opset = int(imp.version)
        self.graph_outputs = [o.name for o in g.output]
        self.consumers: dict[str, list[Any]] = {}
        for n in g.node:
            for i in n.input:
                if i:
                    self.consumers.setdefault(i, []).append(n)
        self.producer: dict[str, Any] = {o: n for n in g.node for o in n.output if o}
        self.merge_double_qdq = merge_double_qdq
        self.merged_q_outputs: set[str] = set()
        self.merged_relu_input: dict[str, str] = {}  # IR ReLU kept for a merged pair -> its producer's tensor
        self.const: dict[str, np.ndarray] = {}
        self.logical: dict[str, str] = {}  # constant name -> its ONNX integer type when sub-byte (int4, ...)
        self.qconst: dict[str, _QConst] = {}
        self.vals: dict[str, _Val] = {}
        # IR under construction
        self.inputs: list[TensorSpec] = []
        self.nodes: list[Node] = []
        self.params: dict[str, np.ndarray] = {}
        self.quant: dict[str, QuantSpec] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.int_inputs: set[str] = set()
        self.used: set[str] = set()
        for n in g.node:
            self.used.update(o for o in n.output if o)
            self.used.update(i for i in n.input if i)
        self.used.update(t.name for t in g.input)
        self.used.update(t.name for t in g.initializer)
        self.node_names: set[str] = set()
        self.converted: dict[tuple[str, tuple | None, tuple | None], str] = {}
        self.param_keys: dict[tuple[str, str], str] = {}
        self.problems: list[str] = []
        self.poisoned: set[str] = set()
        self.fused_adds: set[int] = set()  # Adds folded into the preceding MatMul (Dense with bias)
        self.qdq_weighted: list[str] = []  # IR nodes from DequantizeLinear → Conv/Gemm/MatMul (QDQ form)
        self.pattern_skip: set[int] = set()  # nodes absorbed by a recognised pattern (erf GELU)
        self.gelu: dict[int, str] = {}  # last node of an erf GELU pattern -> its input tensor

    # -- names ------------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self.used or name in self.shapes or name in self.params:
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name

    def node_name(self, n: Any) -> str:
        base = n.name or f"{n.op_type}:{n.output[0] if n.output else ''}"
        name, i = base, 1
        while name in self.node_names:
            name, i = f"{base}_{i}", i + 1
        self.node_names.add(name)
        return name

    def ir_name_for(self, t: str, perm: tuple[int, ...] | None, depth: int = 0) -> str:
        """Name of the IR tensor that will hold ONNX tensor ``t`` (looking through Q, DQ and Transposes)."""
        if t in self.graph_outputs or depth > 8:
            return t
        cons = self.consumers.get(t, [])
        if len(cons) != 1:
            return t
        c = cons[0]
        if c.input[0] != t or not c.output:
            return t
        if c.op_type == "QuantizeLinear":
            return self.ir_name_for(c.output[0], perm, depth + 1)
        if c.op_type == "DequantizeLinear":
            return c.output[0] if c.output[0] in self.graph_outputs else t
        if c.op_type in _ALIAS_OPS:
            return self.ir_name_for(c.output[0], perm, depth + 1)
        if c.op_type == "Transpose" and perm is not None:
            t_perm = tuple(self.attrs(c).get("perm", list(reversed(range(len(perm))))))
            if _norm_perm(self.transposed_perm(perm, t_perm)) is None:
                return self.ir_name_for(c.output[0], None, depth + 1)
        return t

    @staticmethod
    def transposed_perm(perm: tuple[int, ...] | None, t: tuple[int, ...]) -> tuple[int, ...]:
        """Layout of ``onnx.transpose(t)`` when the input's layout is ``perm``."""
        p = perm if perm is not None else tuple(range(len(t)))
        inv_t = _inverse(tuple(t))
        return tuple(inv_t[a] for a in p)

    # -- attributes and constants -----------------------------------------------------------------
    def attrs(self, n: Any) -> dict[str, Any]:
        out = {}
        for a in n.attribute:
            v = self.onnx.helper.get_attribute_value(a)
            out[a.name] = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
        return out

    def c(self, n: Any, i: int, default: Any = None) -> np.ndarray | None:
        """Constant input ``i`` of node ``n`` (None when absent)."""
        if i >= len(n.input) or not n.input[i]:
            return default
        name = n.input[i]
        if name not in self.const:
            raise _Unsupported(f"input {i} '{name}' must be a constant (initializer)")
        return self.const[name]

    # -- IR emission ------------------------------------------------------------------------------
    def emit(self, op: str, inputs: list[str], attrs: dict[str, Any] | None, out: str, node: str) -> str:
        schema = OPS[op]
        where = f"node '{node}' ({op})"
        attrs = schema.normalize_attrs(attrs, where)
        view = NodeView(node, op, attrs, [self.shapes[i] for i in inputs], list(inputs))
        shape = schema.infer(view)[0]
        if out in self.shapes or out in self.params:
            out = self.fresh(out)
        self.used.add(out)
        self.nodes.append(Node(node, op, list(inputs), [out], attrs))
        self.shapes[out] = tuple(shape)
        return out

    def param(self, base: str, array: np.ndarray, transform: str = "") -> str:
        """IR parameter for ONNX constant ``base`` (after ``transform``); an equal array is shared."""
        array = np.ascontiguousarray(array)
        key = (base, transform)
        known = self.params.get(self.param_keys.get(key, ""))
        if known is not None and known.dtype == array.dtype and known.shape == array.shape \
                and np.array_equal(known, array):
            return self.param_keys[key]
        name = base if not transform else f"{base}.{transform}"
        if name in self.shapes or name in self.params:
            name = self.fresh(name)
        self.used.add(name)
        array = np.ascontiguousarray(array)
        self.params[name] = array
        self.shapes[name] = tuple(array.shape)
        self.param_keys[key] = name
        return name

    def val(self, name: str) -> _Val:
        if name in self.poisoned:
            raise _Skip()
        if name not in self.vals:
            if name in self.const or name in self.qconst:
                raise _Unsupported(f"constant '{name}' used where an activation is expected")
            raise _Unsupported(f"input '{name}' is not produced by any node")
        return self.vals[name]

    def onnx_shape(self, name: str) -> tuple[int, ...]:
        v = self.val(name)
        s = self.shapes[v.ir]
        if v.perm is None:
            return s
        out = [0] * len(s)
        for i, p in enumerate(v.perm):
            out[p] = s[i]
        return tuple(out)

    def layout(self, name: str, perm: tuple[int, ...] | None) -> str:
        """IR tensor holding ONNX tensor ``name`` with layout ``perm`` (inserting a Transpose if needed)."""
        v = self.val(name)
        perm = _norm_perm(perm)
        if v.perm == perm:
            return v.ir
        key = (v.ir, v.perm, perm)
        if key not in self.converted:
            rank = len(self.shapes[v.ir])
            old = v.perm if v.perm is not None else tuple(range(rank))
            new = perm if perm is not None else tuple(range(rank))
            inv_old = _inverse(old)
            q = [inv_old[new[i]] for i in range(rank)]
            suffix = "nhwc" if new == NHWC else "nchw" if old == NHWC and perm is None else "transposed"
            out = self.fresh(f"{v.ir}/{suffix}")
            out = self.emit("Transpose", [v.ir], {"perm": q}, out, self.fresh_node(f"{v.ir}/to_{suffix}"))
            if v.ir in self.quant:
                self.quant[out] = self.quant[v.ir].copy()
            self.converted[key] = out
        return self.converted[key]

    def fresh_node(self, base: str) -> str:
        name, i = base, 1
        while name in self.node_names:
            name, i = f"{base}_{i}", i + 1
        self.node_names.add(name)
        return name

    def rowmajor(self, name: str) -> str:
        """IR tensor whose row-major order equals ONNX tensor ``name``'s (no Transpose when 1-sized axes
        are the only ones that move)."""
        v = self.val(name)
        if v.perm is None:
            return v.ir
        s = self.shapes[v.ir]
        order = [p for i, p in enumerate(v.perm) if s[i] != 1]
        if order == sorted(order):
            return v.ir
        return self.layout(name, None)

    def define(self, onnx_name: str, ir: str, perm: tuple[int, ...] | None) -> None:
        self.vals[onnx_name] = _Val(ir, _norm_perm(perm))

    def out_name(self, n: Any, perm: tuple[int, ...] | None, i: int = 0) -> str:
        return self.ir_name_for(n.output[i], _norm_perm(perm))

    # -- quantization -----------------------------------------------------------------------------
    def spec_from(self, scale: np.ndarray, zp: np.ndarray | None, dtype: Any, axis: int | None,
                  where: str) -> QuantSpec:
        bits, signed = _quant_dtype_info(dtype, where)
        scale = np.asarray(scale, np.float32).ravel()
        if zp is None:
            zp = np.zeros(scale.shape, np.int32)
        zp = np.asarray(zp).ravel()
        if zp.size == 1 and scale.size > 1:
            zp = np.broadcast_to(zp, scale.shape).copy()
        return QuantSpec(bits=bits, signed=signed, scale=scale, zero_point=zp.astype(np.int32),
                         axis=axis if scale.size > 1 else None,
                         dtype=f"{'' if signed else 'u'}int8" if bits <= 8 else None)

    def attach(self, ir: str, spec: QuantSpec, where: str) -> None:
        old = self.quant.get(ir)
        if old is None:
            self.quant[ir] = spec
            return
        if not (old == spec):
            raise _Unsupported(f"{where}: tensor '{ir}' is quantized twice with different parameters "
                               f"(scale {old.scale.tolist()} zp {old.zero_point.tolist()} vs "
                               f"{spec.scale.tolist()} {spec.zero_point.tolist()}); requantization chains "
                               f"are not supported")

    def act_spec(self, name: str, scale: np.ndarray, zp: np.ndarray, dtype: Any, where: str) -> None:
        """Quantization parameters a QOperator node states for its activation input ``name``."""
        v = self.val(name)
        self.attach(v.ir, self.spec_from(scale, zp, dtype, None, where), where)

    def base_name(self, name: str) -> str:
        """Parameter name for ONNX tensor ``name``: the integer initializer behind a DequantizeLinear."""
        qc = self.qconst.get(name)
        return qc.source if qc is not None and qc.source else name

    def weight(self, name: str, where: str) -> tuple[np.ndarray, QuantSpec | None]:
        if name in self.qconst:
            qc = self.qconst[name]
            return qc.q, self.spec_from(qc.scale, qc.zero_point, qc.qtype, qc.axis, where)
        if name in self.const:
            return self.const[name].astype(np.float32), None
        raise _Unsupported(f"{where}: weight '{name}' must be a constant (initializer or DequantizeLinear of "
                           f"one)")

    def add_weight(self, base: str, w: np.ndarray, spec: QuantSpec | None, transform: str,
                   onnx_axis_to_ir: dict[int, int]) -> str:
        name = self.param(base, w, transform)
        if spec is not None:
            spec = spec.copy()
            if spec.axis is not None:
                spec.axis = onnx_axis_to_ir.get(spec.axis % max(w.ndim, 1), spec.axis)
            if w.dtype.kind in "iu":
                spec.dtype = str(w.dtype)
            self.quant[name] = spec
        return name

    def bias(self, base: str, name: str | None, where: str,
             scale_if_qop: np.ndarray | None = None) -> str | None:
        if not name:
            return None
        if scale_if_qop is not None:
            b = self.const.get(name)
            if b is None:
                raise _Unsupported(f"{where}: bias '{name}' must be a constant")
            b = b.astype(np.int32).ravel()
            p = self.param(base, b)
            s = np.asarray(scale_if_qop, np.float32).ravel()
            self.quant[p] = QuantSpec(bits=32, signed=True, scale=s, zero_point=np.zeros(s.shape, np.int32),
                                      axis=0 if s.size > 1 else None)
            return p
        if name in self.qconst:
            qc = self.qconst[name]
            q = qc.q.astype(np.int32).ravel()
            p = self.param(self.base_name(base), q)
            s = np.asarray(qc.scale, np.float32).ravel()
            zp = np.broadcast_to(np.asarray(qc.zero_point).ravel(), s.shape).astype(np.int32)
            self.quant[p] = QuantSpec(bits=32, signed=True, scale=s, zero_point=zp,
                                      axis=0 if s.size > 1 else None)
            return p
        if name in self.const:
            return self.param(base, self.const[name].astype(np.float32).ravel())
        raise _Unsupported(f"{where}: bias '{name}' must be a constant")

    # -- driver -----------------------------------------------------------------------------------
    def run(self) -> Graph:
        g = self.model.graph
        self.check_opsets()
        for t in g.initializer:
            self.const[t.name] = self.to_array(t)
        for n in g.node:
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
                try:
                    self.const[n.output[0]] = self.constant_node(n)
                except _Unsupported as exc:
                    raise GraphError(f"{self.source}: node '{n.name or n.output[0]}' (Constant): "
                                     f"{exc}") from None
        self.find_erf_gelu()
        self.unsupported_scan()
        self.make_inputs()
        for n in g.node:
            if id(n) in self.fused_adds or id(n) in self.pattern_skip:
                continue
            try:
                if id(n) in self.gelu:
                    self.unary_from(n, self.gelu[id(n)], "GELU", {"approximate": "none"})
                    continue
                self.convert(n)
            except _Skip:
                self.poisoned.update(o for o in n.output if o)
            except _Unsupported as exc:
                self.problems.append(f"node '{n.name or n.output[0]}' ({n.op_type}): {exc}")
                self.poisoned.update(o for o in n.output if o)
            except GraphError as exc:
                self.problems.append(f"node '{n.name or n.output[0]}' ({n.op_type}): {exc}")
                self.poisoned.update(o for o in n.output if o)
            except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
                # malformed node (missing attribute or input, wrong attribute type, ...)
                self.problems.append(f"node '{n.name or (n.output[0] if n.output else '?')}' ({n.op_type}): "
                                     f"malformed: {type(exc).__name__}: {exc}")
                self.poisoned.update(o for o in n.output if o)
        if self.problems:
            raise GraphError(f"{self.source}: cannot import {len(self.problems)} node(s):\n  "
                             + "\n  ".join(self.problems))
        return self.finish()

    def to_array(self, t: Any) -> np.ndarray:
        try:
            a = np.asarray(self.nh.to_array(t))
        except Exception as exc:
            raise ModelFormatError(f"{self.source}: tensor '{t.name}' cannot be read: {exc}") from None
        a, name = _unpack_low_bits(a)
        if name in _LOW_BITS:
            self.logical[t.name] = name
        return a

    def qtype_of(self, name: str | None, default: str = "uint8") -> str:
        """ONNX integer type name of constant ``name`` (a zero point or quantized weight)."""
        if not name:
            return default
        if name in self.logical:
            return self.logical[name]
        if name in self.const:
            return str(self.const[name].dtype)
        return default

    def check_opsets(self) -> None:
        latest = self.onnx.defs.onnx_opset_version()
        for imp in self.model.opset_import:
            if imp.domain in ("", "ai.onnx"):
                if imp.version > latest:
                    raise ModelFormatError(f"{self.source}: opset {imp.version} of the ONNX domain is newer "
                                           f"than this onnx package knows ({latest}); upgrade onnx")
                if imp.version < _MIN_OPSET:
                    raise ModelFormatError(f"{self.source}: opset {imp.version} is older than the oldest "
                                           f"supported ({_MIN_OPSET})")

    def unsupported_scan(self) -> None:
        bad = []
        # Constant subgraphs (shape arithmetic: Shape → Gather → Concat → Reshape) are folded whatever
        # their operators, so constness is propagated first.
        consts = set(self.const)
        for n in self.model.graph.node:
            if id(n) in self.pattern_skip or id(n) in self.gelu:
                continue
            domain = "" if n.domain in ("", "ai.onnx") else n.domain
            foldable = domain == "" and (
                n.op_type in ("Constant", "Shape", "Size")
                or (n.op_type != "DequantizeLinear" and n.input
                    and all((not i) or i in consts for i in n.input)))
            if foldable:
                consts.update(o for o in n.output if o)
                continue
            if n.op_type not in SUPPORTED_OPS.get(domain, ()):
                op = n.op_type if not domain else f"{domain}.{n.op_type}"
                bad.append(f"'{n.name or n.output[0]}' ({op})")
        if bad:
            raise GraphError(f"{self.source}: unsupported ONNX operator(s) in {len(bad)} node(s): "
                             + ", ".join(bad))

    def make_inputs(self) -> None:
        g = self.model.graph
        inits = {t.name for t in g.initializer}
        onnx = self.onnx
        declared = [vi.name for vi in g.input if vi.name not in inits]
        unknown = set(self.input_shapes) - set(declared)
        if unknown:
            raise GraphError(f"{self.source}: --input-shape names unknown input(s) {sorted(unknown)} "
                             f"(inputs: {declared})")
        for vi in g.input:
            if vi.name in inits:
                continue
            tt = vi.type.tensor_type
            if not vi.type.HasField("tensor_type"):
                raise ModelFormatError(f"{self.source}: graph input '{vi.name}' is not a tensor")
            elem = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
            dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
            params = [d.dim_param if d.HasField("dim_param") and d.dim_param else f"d{i}"
                      for i, d in enumerate(tt.shape.dim)]
            given = self.input_shapes.get(vi.name)
            cf = len(dims) == 4 and self.reaches_channel_first(vi.name)
            if given is not None:
                given = tuple(int(d) for d in given)
                shape = self.match_given(vi.name, dims, given, cf)
            else:
                if dims and dims[0] is None:
                    dims[0] = 1  # a symbolic batch runs at batch 1 (executors accept any batch)
                missing = [i for i, d in enumerate(dims) if d is None or d < 1]
                if missing:
                    example = ",".join(str(d) if d else params[i] for i, d in enumerate(dims))
                    names = ", ".join(params[i] for i in missing)
                    raise GraphError(f"{self.source}: graph input '{vi.name}' has dynamic dimension(s) "
                                     f"{names} (shape [{example}]); give concrete sizes with "
                                     f"--input-shape {vi.name}={example} (numbers in place of {names}; "
                                     f"input_shapes={{'{vi.name}': (...)}} in Python)")
                shape = tuple(dims)
            perm = NHWC if cf else None
            ir_shape = tuple(shape[p] for p in perm) if perm else shape
            dtype = "float32" if elem.kind in "iu" or elem == np.float64 else str(elem)
            if elem.kind in "iu":
                self.int_inputs.add(vi.name)
            self.inputs.append(TensorSpec(vi.name, ir_shape, dtype))
            self.shapes[vi.name] = ir_shape
            self.define(vi.name, vi.name, perm)

    def match_given(self, name: str, dims: list, given: tuple[int, ...], cf: bool) -> tuple[int, ...]:
        def fits(s):
            return len(s) == len(dims) and all(d is None or d == x for d, x in zip(dims, s))

        if fits(given):
            return given
        if cf and len(given) == 4:  # accept an NHWC shape for an NCHW input
            nchw = (given[0], given[3], given[1], given[2])
            if fits(nchw):
                return nchw
        raise GraphError(f"{self.source}: --input-shape {name}={','.join(map(str, given))} does not fit the "
                         f"declared shape {['?' if d is None else d for d in dims]}")

    def reaches_channel_first(self, name: str) -> bool:
        seen, todo = set(), [name]
        while todo:
            t = todo.pop()
            for c in self.consumers.get(t, []):
                if c.op_type == "Transpose":
                    continue
                if c.op_type in _CHANNEL_FIRST:
                    if c.op_type == "QLinearGlobalAveragePool" and self.attrs(c).get("channels_last", 0):
                        continue
                    return True
                if c.op_type in _TRANSPARENT:
                    for o in c.output:
                        if o and o not in seen:
                            seen.add(o)
                            todo.append(o)
        return False

    def finish(self) -> Graph:
        g = self.model.graph
        outputs: list[str] = []
        layouts: dict[str, Any] = {}
        for o in self.graph_outputs:
            if o in self.const or o in self.qconst:
                raise GraphError(f"{self.source}: graph output '{o}' is a constant")
            if o not in self.vals:
                raise GraphError(f"{self.source}: graph output '{o}' is not produced by any node")
            v = self.vals[o]
            ir = v.ir
            if v.perm is not None and v.perm != NHWC:
                ir = self.layout(o, None)
                self.vals[o] = _Val(ir, None)
            if ir not in outputs:
                outputs.append(ir)
            if self.vals[o].perm is not None:
                layouts[o] = "NHWC (ONNX NCHW)"
        # A float Conv/Gemm output feeding only a quantized ReLU/ReLU6 takes that activation's spec (the
        # contract's "<name>/pre_act" intermediate; the simulator fuses the pair again).
        if self.quant:
            for node in self.nodes:
                if node.op in ("ReLU", "ReLU6") and node.outputs[0] in self.quant:
                    src = node.inputs[0]
                    if src not in self.quant and src not in self.params:
                        self.quant[src] = self.quant[node.outputs[0]].copy()
        tensors = {k: [v.ir, list(v.perm) if v.perm else None] for k, v in self.vals.items()}
        meta = {
            "source": "onnx",
            "source_file": os.path.basename(self.source),
            "producer": f"{self.model.producer_name} {self.model.producer_version}".strip(),
            "onnx_opset": self.opset,
            "onnx_tensors": tensors,
        }
        if layouts:
            meta["onnx_nchw_outputs"] = layouts
        nchw_inputs = [t.name for t in self.inputs if self.vals[t.name].perm == NHWC]
        if nchw_inputs:
            meta["onnx_nchw_inputs"] = nchw_inputs
        if self.quant:
            meta["prequantized"] = True
        if self.qdq_weighted:
            # Weighted ops the source writes as DequantizeLinear → float op → QuantizeLinear. onnxruntime fuses
            # them into QLinearConv/QGemm or not (numerics.md section 7); hwsim simulates the fused integer form.
            meta["onnx_qdq_weighted_nodes"] = list(self.qdq_weighted)
        for t in self.inputs:
            if self.quant and t.name not in self.quant and t.name in self.int_inputs:
                raise GraphError(f"{self.source}: integer input '{t.name}' has no quantization parameters")
        used = {i for n in self.nodes for i in n.inputs}
        params = {k: v for k, v in self.params.items() if k in used}
        quant = {k: v for k, v in self.quant.items()
                 if k in self.shapes and (k not in self.params or k in used)}
        stem = os.path.splitext(os.path.basename(self.source))[0] if not self.source.startswith("<") else ""
        # exporters' generic graph names say nothing; the file name does
        name = g.name if g.name and g.name not in ("main_graph", "torch_jit", "torch-jit-export") else \
            (stem or g.name or "onnx_model")
        return Graph(name, self.inputs, outputs, self.nodes, params, quant, metadata=meta)

    # -- node conversion --------------------------------------------------------------------------
    def convert(self, n: Any) -> None:
        op = n.op_type
        domain = "" if n.domain in ("", "ai.onnx") else n.domain
        if op == "Constant":
            self.const[n.output[0]] = self.constant_node(n)
            return
        if op == "DequantizeLinear" and n.input[0] in self.const:
            a = self.attrs(n)
            q = self.const[n.input[0]]
            scale = self.c(n, 1)
            zp = self.c(n, 2)
            if zp is None:
                zp = np.zeros(np.shape(scale), q.dtype)
            if a.get("block_size", 0):
                raise _Unsupported("blocked quantization (block_size) is not supported")
            axis = a.get("axis", 1) if np.size(scale) > 1 else None
            if axis is not None and axis < 0:
                axis += q.ndim
            self.qconst[n.output[0]] = _QConst(q, np.asarray(scale, np.float32), np.asarray(zp), axis,
                                               n.input[0], self.qtype_of(n.input[0]))
            return
        if domain == "" and op not in ("QuantizeLinear", "DequantizeLinear") and n.input and all(
                (not i) or i in self.const for i in n.input):
            self.fold(n)
            return
        if domain == "" and op in ("Shape", "Size"):
            shape = np.array(self.onnx_shape(n.input[0]), np.int64)
            if op == "Size":
                self.const[n.output[0]] = np.array(int(np.prod(shape)), np.int64)
            else:
                a = self.attrs(n)
                start, end = a.get("start", 0), a.get("end", None)
                self.const[n.output[0]] = shape[start:end]
            return
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            raise _Unsupported("operator not supported")
        handler(n)

    def constant_node(self, n: Any) -> np.ndarray:
        a = n.attribute[0]
        if a.name == "value":
            return self.to_array(a.t)
        v = self.onnx.helper.get_attribute_value(a)
        if a.name in ("value_float", "value_int"):
            return np.array(v, np.float32 if a.name == "value_float" else np.int64)
        if a.name in ("value_floats", "value_ints"):
            return np.array(v, np.float32 if a.name == "value_floats" else np.int64)
        raise _Unsupported(f"Constant attribute '{a.name}' is not supported")

    def fold(self, n: Any) -> None:
        """Evaluate a node whose inputs are all constants (shape arithmetic, Q of weights, ...)."""
        from onnx import helper
        from onnx.reference import ReferenceEvaluator

        inits = [self.nh.from_array(np.asarray(self.const[i]), i) for i in dict.fromkeys(n.input) if i]
        outs = [helper.make_empty_tensor_value_info(o) for o in n.output if o]
        graph = helper.make_graph([n], "fold", [], outs, initializer=inits)
        m = helper.make_model(graph, opset_imports=list(self.model.opset_import))
        m.ir_version = self.model.ir_version
        try:
            results = ReferenceEvaluator(m).run(None, {})
        except Exception as exc:
            raise _Unsupported(f"cannot evaluate constant node: {exc}") from None
        for o, r in zip([o for o in n.output if o], results):
            a, name = _unpack_low_bits(np.asarray(r))
            if name in _LOW_BITS:
                self.logical[o] = name
            self.const[o] = a

    # patterns --------------------------------------------------------------------------------------
    def find_erf_gelu(self) -> None:
        """Recognise x·0.5·(1 + erf(x/√2)) (torch.onnx.export of nn.GELU before opset 20) as one GELU."""
        nodes = list(self.model.graph.node)
        producer = {o: n for n in nodes for o in n.output if o}

        def near(name: str, value: float) -> bool:
            c = self.const.get(name)
            return c is not None and c.size == 1 and abs(float(c.ravel()[0]) - value) <= 1e-6 * abs(value)

        def sole(t: str, op: str):
            cons = self.consumers.get(t, [])
            if len(cons) == 1 and cons[0].op_type == op and t not in self.graph_outputs:
                return cons[0]
            return None

        def other(n: Any, t: str) -> str | None:
            ins = list(n.input)
            if len(ins) != 2 or t not in ins:
                return None
            return ins[1] if ins[0] == t else ins[0]

        for erf in nodes:
            if erf.op_type != "Erf":
                continue
            scale = producer.get(erf.input[0])
            if scale is None or sole(erf.input[0], "Erf") is None:
                continue
            if scale.op_type == "Div" and near(scale.input[1], math.sqrt(2.0)):
                x = scale.input[0]
            elif scale.op_type == "Mul" and any(near(i, 1 / math.sqrt(2.0)) for i in scale.input):
                x = scale.input[0] if near(scale.input[1], 1 / math.sqrt(2.0)) else scale.input[1]
            else:
                continue
            add = sole(erf.output[0], "Add")
            if add is None or not near(other(add, erf.output[0]) or "", 1.0):
                continue
            m1 = sole(add.output[0], "Mul")
            if m1 is None:
                continue
            f = other(m1, add.output[0])
            absorbed = [scale, erf, add, m1]
            final = None
            if f == x or near(f or "", 0.5):
                m2 = sole(m1.output[0], "Mul")
                want_x = f != x
                g2 = other(m2, m1.output[0]) if m2 is not None else None
                if m2 is not None and ((want_x and g2 == x) or (not want_x and near(g2 or "", 0.5))):
                    final = m2
            elif f in producer and producer[f].op_type == "Mul" and sole(f, "Mul") is m1:
                half = producer[f]
                if x in half.input and near(other(half, x) or "", 0.5):
                    final = m1
                    absorbed = [scale, erf, add, half]
            if final is None:
                continue
            self.gelu[id(final)] = x
            self.pattern_skip.update(id(n) for n in absorbed if n is not final)

    # unary / aliases ---------------------------------------------------------------------------------
    def unary(self, n: Any, op: str, attrs: dict[str, Any] | None = None) -> None:
        self.unary_from(n, n.input[0], op, attrs)

    def unary_from(self, n: Any, x: str, op: str, attrs: dict[str, Any] | None = None) -> None:
        v = self.val(x)
        out = self.emit(op, [v.ir], attrs, self.out_name(n, v.perm), self.node_name(n))
        self.define(n.output[0], out, v.perm)

    def op_Relu(self, n):
        self.unary(n, "ReLU")

    def op_Sigmoid(self, n):
        self.unary(n, "Sigmoid")

    def op_Tanh(self, n):
        self.unary(n, "Tanh")

    def op_HardSwish(self, n):
        self.unary(n, "HardSwish")

    def op_Mish(self, n):
        self.unary(n, "Mish")

    def op_LeakyRelu(self, n):
        self.unary(n, "LeakyReLU", {"alpha": float(self.attrs(n).get("alpha", 0.01))})

    def op_HardSigmoid(self, n):
        a = self.attrs(n)
        self.unary(n, "HardSigmoid", {"alpha": float(a.get("alpha", 0.2)), "beta": float(a.get("beta", 0.5))})

    def op_Selu(self, n):
        a = self.attrs(n)
        self.unary(n, "SELU", {"alpha": float(a.get("alpha", 1.67326319217681884765625)),
                               "gamma": float(a.get("gamma", 1.05070102214813232421875))})

    def op_Gelu(self, n):
        self.unary(n, "GELU", {"approximate": self.attrs(n).get("approximate", "none")})

    def op_Clip(self, n):
        a = self.attrs(n)
        if self.opset < 11:
            lo, hi = a.get("min", -np.inf), a.get("max", np.inf)
        else:
            lo = self.c(n, 1, np.array(-np.inf))
            hi = self.c(n, 2, np.array(np.inf))
        lo, hi = float(np.asarray(lo).ravel()[0]), float(np.asarray(hi).ravel()[0])
        if hi >= float(np.finfo(np.float32).max):  # exporters write FLT_MAX for "no upper bound"
            hi = math.inf
        if lo == 0.0 and hi == 6.0:
            self.unary(n, "ReLU6")
        elif lo == 0.0 and math.isinf(hi):
            self.unary(n, "ReLU")
        else:
            raise _Unsupported(f"Clip({lo}, {hi}) has no IR op (only Clip(0, 6) → ReLU6 and Clip(0, inf) → "
                               f"ReLU)")

    def alias(self, n: Any) -> None:
        v = self.val(n.input[0])
        self.define(n.output[0], v.ir, v.perm)

    def op_Identity(self, n):
        self.alias(n)

    def op_Dropout(self, n):
        if len([o for o in n.output if o]) > 1:
            raise _Unsupported("Dropout with a mask output is not supported")
        self.alias(n)

    def op_Cast(self, n):
        to = self.onnx.helper.tensor_dtype_to_np_dtype(self.attrs(n)["to"])
        if to.kind != "f":
            raise _Unsupported(f"Cast of an activation to {to} is not supported")
        self.alias(n)

    # elementwise binary ------------------------------------------------------------------------------
    def const_operand(self, c: np.ndarray, rank: int, perm: tuple[int, ...] | None, base: str,
                      spec: QuantSpec | None = None) -> str:
        if c.ndim > rank:
            raise _Unsupported(f"constant '{base}' has a higher rank than the activation")
        full = c.reshape((1,) * (rank - c.ndim) + c.shape)
        if perm is not None:
            full = full.transpose(perm)
        shape = list(full.shape)
        while len(shape) > 1 and shape[0] == 1:
            shape.pop(0)
        arr = np.ascontiguousarray(full.reshape(shape))
        if spec is None:
            return self.param(base, arr.astype(np.float32) if arr.dtype.kind == "f" else arr,
                              "nhwc" if perm is not None and arr.ndim > 1 else "")
        if spec.axis is not None:
            raise _Unsupported(f"per-channel quantized constant '{base}' in an elementwise op")
        name = self.param(base, arr, "nhwc" if perm is not None and arr.ndim > 1 else "")
        self.quant[name] = spec
        return name

    def binary(self, n: Any, op: str, a_name: str, b_name: str, transform=None, out_spec=None) -> str:
        names = [a_name, b_name]
        acts = [i for i, t in enumerate(names) if t not in self.const and t not in self.qconst]
        if not acts:
            raise _Unsupported("both operands are constant")
        first = self.val(names[acts[0]])
        rank = len(self.shapes[first.ir])
        perm = first.perm
        ins = []
        for i, t in enumerate(names):
            if t in self.const:
                c = self.const[t]
                if transform is not None:
                    c = transform(c)
                ins.append(self.const_operand(c, rank, perm, t))
            elif t in self.qconst:
                if transform is not None:
                    raise _Unsupported(f"quantized constant '{t}' in {n.op_type}")
                qc = self.qconst[t]
                spec = self.spec_from(qc.scale, qc.zero_point, qc.qtype, qc.axis, t)
                ins.append(self.const_operand(qc.q, rank, perm, t, spec))
            else:
                v = self.val(t)
                if len(self.shapes[v.ir]) != rank:
                    if perm is not None or v.perm is not None:
                        raise _Unsupported("broadcasting between activations of different rank in a "
                                           "non-ONNX layout")
                    ins.append(v.ir)
                else:
                    ins.append(self.layout(t, perm))
        out = self.emit(op, ins, None, self.out_name(n, perm), self.node_name(n))
        self.define(n.output[0], out, perm)
        return out

    def op_Add(self, n):
        self.binary(n, "Add", n.input[0], n.input[1])

    def op_Mul(self, n):
        self.binary(n, "Mul", n.input[0], n.input[1])

    def op_Sub(self, n):
        if n.input[1] not in self.const:
            raise _Unsupported("Sub needs a constant second operand (x - c becomes x + (-c))")
        self.binary(n, "Add", n.input[0], n.input[1], transform=lambda c: -c.astype(np.float32))

    def op_Div(self, n):
        if n.input[1] not in self.const:
            raise _Unsupported("Div needs a constant second operand (x / c becomes x * (1/c))")
        self.binary(n, "Mul", n.input[0], n.input[1],
                    transform=lambda c: (np.float32(1) / c.astype(np.float32)).astype(np.float32))

    # layout-sensitive ops ----------------------------------------------------------------------------
    def op_Concat(self, n):
        ins = [i for i in n.input if i]
        if any(i in self.const or i in self.qconst for i in ins):
            raise _Unsupported("Concat with constant inputs is not supported")
        perm = self.val(ins[0]).perm
        rank = len(self.shapes[self.val(ins[0]).ir])
        axis = int(self.attrs(n)["axis"]) % rank
        irs = [self.layout(i, perm) for i in ins]
        ir_axis = perm.index(axis) if perm is not None else axis
        out = self.emit("Concat", irs, {"axis": ir_axis}, self.out_name(n, perm), self.node_name(n))
        self.define(n.output[0], out, perm)

    def op_Transpose(self, n):
        v = self.val(n.input[0])
        rank = len(self.shapes[v.ir])
        t = tuple(self.attrs(n).get("perm", list(reversed(range(rank)))))
        self.define(n.output[0], v.ir, self.transposed_perm(v.perm, t))

    def op_Softmax(self, n):
        v = self.val(n.input[0])
        shape = self.onnx_shape(n.input[0])
        rank = len(shape)
        axis = int(self.attrs(n).get("axis", -1 if self.opset >= 13 else 1)) % rank
        if self.opset < 13 and axis != rank - 1 and int(np.prod(shape[axis + 1:])) != 1:
            raise _Unsupported("opset < 13 Softmax over several axes (coerced to 2-D) is not supported")
        ir_axis = v.perm.index(axis) if v.perm is not None else axis
        out = self.emit("Softmax", [v.ir], {"axis": ir_axis}, self.out_name(n, v.perm), self.node_name(n))
        self.define(n.output[0], out, v.perm)

    def op_Pad(self, n):
        a = self.attrs(n)
        if a.get("mode", "constant") != "constant":
            raise _Unsupported(f"Pad mode {a.get('mode')!r} is not supported (constant only)")
        shape = self.onnx_shape(n.input[0])
        rank = len(shape)
        if self.opset < 11:
            pads = list(a.get("pads", [0] * 2 * rank))
            value = float(a.get("value", 0.0))
        else:
            pads = [int(p) for p in np.asarray(self.c(n, 1)).ravel()]
            value = float(np.asarray(self.c(n, 2, np.array(0.0))).ravel()[0])
            axes = self.c(n, 3)
            if axes is not None:
                full = [0] * 2 * rank
                axes = [int(x) % rank for x in np.asarray(axes).ravel()]
                for k, ax in enumerate(axes):
                    full[ax], full[ax + rank] = pads[k], pads[k + len(axes)]
                pads = full
        pairs = [[pads[i], pads[i + rank]] for i in range(rank)]
        v = self.val(n.input[0])
        if v.perm is not None:
            pairs = [pairs[p] for p in v.perm]
        out = self.emit("Pad", [v.ir], {"pads": pairs, "value": value}, self.out_name(n, v.perm),
                        self.node_name(n))
        self.define(n.output[0], out, v.perm)

    def reshape_to(self, n: Any, target: tuple[int, ...]) -> None:
        onnx_in = self.onnx_shape(n.input[0])
        x = self.rowmajor(n.input[0])
        shape = list(target)
        # Keep the batch axis free (executors accept any batch): 0 copies the input's first dimension.
        if shape and onnx_in and shape[0] == onnx_in[0] and self.shapes[x][0] == onnx_in[0]:
            shape[0] = 0
        out = self.emit("Reshape", [x], {"shape": shape}, self.out_name(n, None), self.node_name(n))
        self.define(n.output[0], out, None)

    def op_Reshape(self, n):
        shape = self.onnx_shape(n.input[0])
        target = [int(s) for s in np.asarray(self.c(n, 1)).ravel()]
        allowzero = int(self.attrs(n).get("allowzero", 0))
        out = []
        for i, s in enumerate(target):
            out.append(shape[i] if s == 0 and not allowzero else s)
        if -1 in out:
            known = int(np.prod([d for d in out if d != -1]))
            out[out.index(-1)] = int(np.prod(shape)) // max(known, 1)
        if int(np.prod(out)) != int(np.prod(shape)):
            raise _Unsupported(f"cannot reshape {list(shape)} to {target}")
        self.reshape_to(n, tuple(out))

    def op_Flatten(self, n):
        shape = self.onnx_shape(n.input[0])
        axis = int(self.attrs(n).get("axis", 1))
        axis = axis + len(shape) if axis < 0 else axis
        x = self.rowmajor(n.input[0])
        if int(np.prod(self.shapes[x][:axis])) == int(np.prod(shape[:axis])):
            out = self.emit("Flatten", [x], {"axis": axis}, self.out_name(n, None), self.node_name(n))
            self.define(n.output[0], out, None)
            return
        self.reshape_to(n, (int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))))

    def axes_of(self, n: Any, rank: int | None) -> list[int] | None:
        """The ``axes`` of Squeeze/Unsqueeze (input from opset 13, attribute before), modulo ``rank``."""
        if self.opset >= 13 and len(n.input) > 1 and n.input[1]:
            axes = self.c(n, 1)
        else:
            axes = self.attrs(n).get("axes")
        if axes is None:
            return None
        return [int(a) % rank if rank else int(a) for a in np.asarray(axes).ravel()]

    def op_Squeeze(self, n):
        shape = self.onnx_shape(n.input[0])
        axes = self.axes_of(n, len(shape))
        if axes is None:
            axes = [i for i, d in enumerate(shape) if d == 1]
        self.reshape_to(n, tuple(d for i, d in enumerate(shape) if i not in axes))

    def op_Unsqueeze(self, n):
        shape = list(self.onnx_shape(n.input[0]))
        rank = len(shape) + len(self.axes_of(n, None) or [])
        axes = sorted(self.axes_of(n, rank) or [])
        for a in axes:
            shape.insert(a, 1)
        self.reshape_to(n, tuple(shape))

    # weighted ops ------------------------------------------------------------------------------------
    def conv_pads(self, n: Any, in_hw: tuple[int, int], kernel: tuple[int, int], strides,
                  dilations) -> list[int]:
        a = self.attrs(n)
        auto = a.get("auto_pad", "NOTSET")
        if auto in ("NOTSET", ""):
            pads = list(a.get("pads", [0, 0, 0, 0]))
            return [pads[0], pads[1], pads[2], pads[3]]
        if auto == "VALID":
            return [0, 0, 0, 0]
        begin, end = [], []
        for size, k, s, d in zip(in_hw, kernel, strides, dilations):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            small = total // 2
            if auto == "SAME_UPPER":
                begin.append(small)
                end.append(total - small)
            else:
                begin.append(total - small)
                end.append(small)
        return [begin[0], begin[1], end[0], end[1]]

    def conv(self, n: Any, x_name: str, w: np.ndarray, w_spec: QuantSpec | None, w_base: str,
             bias: str | None) -> str:
        a = self.attrs(n)
        if w.ndim != 4:
            raise _Unsupported(f"only 2-D convolutions are supported (weight rank {w.ndim})")
        x = self.layout(x_name, NHWC)
        kernel = tuple(w.shape[2:])
        strides = list(a.get("strides", [1, 1]))
        dilations = list(a.get("dilations", [1, 1]))
        pads = self.conv_pads(n, self.shapes[x][1:3], kernel, strides, dilations)
        ins = [x, self.add_weight(w_base, w.transpose(0, 2, 3, 1), w_spec, "ohwi", {0: 0, 1: 3, 2: 1, 3: 2})]
        if bias:
            ins.append(bias)
        node = self.node_name(n)
        out = self.emit("Conv2D", ins, {"strides": strides, "dilations": dilations, "pads": pads,
                                        "groups": int(a.get("group", 1))}, self.out_name(n, NHWC), node)
        if w_spec is not None and n.op_type == "Conv":
            self.qdq_weighted.append(node)
        self.define(n.output[0], out, NHWC)
        return out

    def op_Conv(self, n):
        where = n.name or n.output[0]
        w, spec = self.weight(n.input[1], where)
        b_name = n.input[2] if len(n.input) > 2 and n.input[2] else None
        b = self.bias(self.base_name(b_name), b_name, where) if b_name else None
        self.conv(n, n.input[0], w, spec, self.base_name(n.input[1]), b)

    def dense(self, n: Any, x_name: str, w_out_in: np.ndarray, w_spec: QuantSpec | None, w_base: str,
              transform: str, axis_map: dict[int, int], bias: str | None) -> str:
        x = self.layout(x_name, None)
        ins = [x, self.add_weight(w_base, w_out_in, w_spec, transform, axis_map)]
        if bias:
            ins.append(bias)
        node = self.node_name(n)
        out = self.emit("Dense", ins, None, self.out_name(n, None), node)
        if w_spec is not None and n.op_type in ("Gemm", "MatMul"):
            self.qdq_weighted.append(node)
        self.define(n.output[0], out, None)
        return out

    def op_Gemm(self, n):
        a = self.attrs(n)
        where = n.name or n.output[0]
        if a.get("transA", 0):
            raise _Unsupported("Gemm with transA=1 is not supported")
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        tb = int(a.get("transB", 0))
        if n.input[1] not in self.const and n.input[1] not in self.qconst:
            raise _Unsupported("Gemm with a non-constant B is not supported")
        w, spec = self.weight(n.input[1], where)
        if alpha != 1.0:
            if spec is not None:
                raise _Unsupported("quantized Gemm with alpha != 1")
            w = (w * np.float32(alpha)).astype(np.float32)
        w_oi = w if tb else w.T
        bias = None
        if len(n.input) > 2 and n.input[2]:
            cname = n.input[2]
            if cname in self.qconst:
                if beta != 1.0:
                    raise _Unsupported("quantized Gemm with beta != 1")
                if self.qconst[cname].q.size != w_oi.shape[0]:
                    raise _Unsupported("quantized Gemm bias must have one value per output")
                bias = self.bias(cname, cname, where)
            else:
                c = self.c(n, 2).astype(np.float32)
                if c.size == w_oi.shape[0] and (c.ndim == 1 or c.shape[0] == 1):
                    bias = self.param(cname, (c.ravel() * np.float32(beta)).astype(np.float32),
                                      "" if beta == 1.0 else "scaled")
                else:
                    raise _Unsupported(f"Gemm bias of shape {list(c.shape)} (needs [N] or [1, N])")
        self.dense(n, n.input[0], w_oi, spec, self.base_name(n.input[1]), "" if tb else "T",
                   {0: 0} if tb else {1: 0, 0: 1}, bias)

    def op_MatMul(self, n):
        where = n.name or n.output[0]
        b_name = n.input[1]
        if b_name in self.const or b_name in self.qconst:
            w, spec = self.weight(b_name, where)
            if w.ndim != 2:
                raise _Unsupported("MatMul with a constant B of rank != 2 is not supported")
            bias = None
            # MatMul followed by the only consumer Add(·, c[N]) is a Dense with bias (float graphs)
            cons = self.consumers.get(n.output[0], [])
            if (spec is None and len(cons) == 1 and cons[0].op_type == "Add" and n.output[0] not in
                    self.graph_outputs):
                add = cons[0]
                other = add.input[1] if add.input[0] == n.output[0] else add.input[0]
                if other in self.const and self.const[other].size == w.shape[1] and \
                        self.const[other].ndim <= 2 and self.const[other].shape[-1] == w.shape[1]:
                    bias = self.param(other, self.const[other].astype(np.float32).ravel())
                    x = self.layout(n.input[0], None)
                    out = self.emit("Dense", [x, self.add_weight(b_name, w.T, None, "T", {}), bias], None,
                                    self.out_name(add, None), self.node_name(n))
                    self.define(n.output[0], out, None)
                    self.define(add.output[0], out, None)
                    self.fused_adds.add(id(add))
                    return
            self.dense(n, n.input[0], w.T, spec, self.base_name(b_name), "T", {1: 0, 0: 1}, bias)
            return
        a = self.layout(n.input[0], None)
        vb = self.val(b_name)
        rank_b = len(self.shapes[vb.ir])
        swap = (*range(rank_b - 2), rank_b - 1, rank_b - 2)
        if rank_b >= 2 and vb.perm == _norm_perm(swap):  # B is a transposed tensor: read it as transpose_b
            b, transpose_b = vb.ir, True
        else:
            b, transpose_b = self.layout(b_name, None), False
        out = self.emit("MatMul", [a, b], {"transpose_b": transpose_b}, self.out_name(n, None),
                        self.node_name(n))
        self.define(n.output[0], out, None)

    def op_BatchNormalization(self, n):
        if len([o for o in n.output if o]) > 1 or self.attrs(n).get("training_mode", 0):
            raise _Unsupported("training-mode BatchNormalization is not supported")
        v = self.val(n.input[0])
        rank = len(self.shapes[v.ir])
        perm = _cf_perm(rank)
        x = self.layout(n.input[0], perm)
        ins = [x] + [self.param(n.input[i], self.c(n, i).astype(np.float32)) for i in range(1, 5)]
        out = self.emit("BatchNorm", ins, {"epsilon": float(self.attrs(n).get("epsilon", 1e-5))},
                        self.out_name(n, perm), self.node_name(n))
        self.define(n.output[0], out, perm)

    def op_LayerNormalization(self, n):
        a = self.attrs(n)
        shape = self.onnx_shape(n.input[0])
        axis = int(a.get("axis", -1)) % len(shape)
        x = self.layout(n.input[0], None)
        norm = tuple(shape[axis:])
        gamma = np.broadcast_to(self.c(n, 1).astype(np.float32), norm)
        beta = self.c(n, 2)
        beta = np.zeros(norm, np.float32) if beta is None else np.broadcast_to(beta.astype(np.float32), norm)
        if len([o for o in n.output if o]) > 1:
            raise _Unsupported("LayerNormalization with Mean/InvStdDev outputs is not supported")
        ins = [x, self.param(n.input[1], np.ascontiguousarray(gamma)),
               self.param(n.input[2] if len(n.input) > 2 and n.input[2] else f"{n.output[0]}.beta",
                          np.ascontiguousarray(beta))]
        out = self.emit("LayerNorm", ins, {"axis": axis, "epsilon": float(a.get("epsilon", 1e-5))},
                        self.out_name(n, None), self.node_name(n))
        self.define(n.output[0], out, None)

    # pooling -----------------------------------------------------------------------------------------
    def pool(self, n: Any, op: str, x_name: str, channels_last: bool = False,
             extra: dict | None = None) -> None:
        a = self.attrs(n)
        if len([o for o in n.output if o]) > 1:
            raise _Unsupported("MaxPool with an Indices output is not supported")
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise _Unsupported("pooling with dilations is not supported")
        kernel = list(a["kernel_shape"])
        if len(kernel) != 2:
            raise _Unsupported("only 2-D pooling is supported")
        strides = list(a.get("strides", [1, 1]))
        x = self.layout(x_name, None if channels_last else NHWC)
        pads = self.conv_pads(n, self.shapes[x][1:3], tuple(kernel), strides, [1, 1])
        if a.get("ceil_mode", 0):
            h, w = self.shapes[x][1:3]
            for size, k, s, b, e in ((h, kernel[0], strides[0], pads[0], pads[2]),
                                     (w, kernel[1], strides[1], pads[1], pads[3])):
                if (size + b + e - k) % s:
                    raise _Unsupported("ceil_mode=1 changes the output size here (not supported)")
        attrs = {"kernel": kernel, "strides": strides, "pads": pads}
        attrs.update(extra or {})
        perm = None if channels_last else NHWC
        out = self.emit(op, [x], attrs, self.out_name(n, perm), self.node_name(n))
        self.define(n.output[0], out, perm)

    def op_MaxPool(self, n):
        if self.attrs(n).get("storage_order", 0):
            raise _Unsupported("MaxPool storage_order=1 is not supported")
        self.pool(n, "MaxPool", n.input[0])

    def op_AveragePool(self, n):
        self.pool(n, "AvgPool", n.input[0],
                  extra={"count_include_pad": bool(self.attrs(n).get("count_include_pad", 0))})

    def op_GlobalAveragePool(self, n):
        if len(self.onnx_shape(n.input[0])) != 4:
            raise _Unsupported("only 2-D global pooling (rank-4 input) is supported")
        x = self.layout(n.input[0], NHWC)
        out = self.emit("GlobalAvgPool", [x], None, self.out_name(n, NHWC), self.node_name(n))
        self.define(n.output[0], out, NHWC)

    def op_ReduceMean(self, n):
        shape = self.onnx_shape(n.input[0])
        if self.opset >= 18 and len(n.input) > 1 and n.input[1]:
            axes = [int(x) % len(shape) for x in np.asarray(self.c(n, 1)).ravel()]
        else:
            axes = [int(x) % len(shape) for x in self.attrs(n).get("axes", [])]
        keep = int(self.attrs(n).get("keepdims", 1))
        if len(shape) != 4 or sorted(axes) != [2, 3]:
            raise _Unsupported("ReduceMean is supported over the spatial axes [2, 3] of a rank-4 tensor only")
        x = self.layout(n.input[0], NHWC)
        if keep:
            out = self.emit("GlobalAvgPool", [x], None, self.out_name(n, NHWC), self.node_name(n))
            self.define(n.output[0], out, NHWC)
            return
        gap = self.emit("GlobalAvgPool", [x], None, self.fresh(f"{n.output[0]}/gap"), self.node_name(n))
        out = self.emit("Flatten", [gap], {"axis": 1}, self.out_name(n, None),
                        self.fresh_node(f"{n.name or n.output[0]}/squeeze"))
        self.define(n.output[0], out, None)

    # quantization ------------------------------------------------------------------------------------
    def op_QuantizeLinear(self, n):
        a = self.attrs(n)
        if a.get("block_size", 0):
            raise _Unsupported("blocked quantization (block_size) is not supported")
        scale = self.c(n, 1)
        zp = self.c(n, 2)
        if np.size(scale) != 1:
            raise _Unsupported("per-channel quantization of an activation is not supported")
        dtype = self.qtype_of(n.input[2] if len(n.input) > 2 else None)
        if "output_dtype" in a and a["output_dtype"]:
            dtype = str(self.onnx.helper.tensor_dtype_to_np_dtype(a["output_dtype"]))
        v = self.val(n.input[0])
        where = n.name or n.output[0]
        spec = self.spec_from(scale, zp, dtype, None, where)
        old = self.quant.get(v.ir)
        if old is None or old == spec:
            self.attach(v.ir, spec, where)
            self.define(n.output[0], v.ir, v.perm)
            return
        # Q(DQ(q)) with other parameters: a requantization. onnxruntime's quantizer leaves one where it
        # removed an activation (e.g. a Relu behind a Transpose). onnxruntime itself removes the inner pair
        # when it loads the model (see _ort_double_qdq): the producer then quantizes once, to the merged
        # parameters. Otherwise (the pair is not removable, or merge_double_qdq=False: the ONNX semantics,
        # two roundings): with the new zero point at the bottom of the range the clamp is implied by
        # saturation, so it is exactly a ReLU; else an identity Reshape whose output carries the new
        # parameters.
        merged = self.ort_double_qdq(n, old, spec, dtype) if self.merge_double_qdq else None
        if merged is not None:
            self.merged_q_outputs.add(n.output[0])  # its DequantizeLinear now reads the merged parameters
            src = self.merged_relu_input.get(v.ir)
            if src is not None:  # a later pair of the same chain: the producer and its ReLU move together
                self.quant[src] = self.quant[v.ir] = merged
                self.define(n.output[0], v.ir, v.perm)
                return
            self.quant[v.ir] = merged
            if int(spec.zero_point[0]) != spec.qmin:
                self.define(n.output[0], v.ir, v.perm)
                return
            # The removed activation was a ReLU: keep it in the graph with the producer's (merged) parameters.
            # The integers do not change (the simulator fuses a ReLU whose parameters equal its producer's,
            # and the clamp is implied by the zero point), and the float reference keeps the model's ReLU.
            ir = self.emit("ReLU", [v.ir], None, self.ir_name_for(n.output[0], v.perm), self.node_name(n))
            self.quant[ir] = merged
            self.merged_relu_input[ir] = v.ir
            self.define(n.output[0], ir, v.perm)
            return
        out = self.ir_name_for(n.output[0], v.perm)
        if int(spec.zero_point[0]) == spec.qmin:
            ir = self.emit("ReLU", [v.ir], None, out, self.node_name(n))
        else:
            shape = [0] + list(self.shapes[v.ir][1:])
            ir = self.emit("Reshape", [v.ir], {"shape": shape}, out, self.node_name(n))
        self.quant[ir] = spec
        self.define(n.output[0], ir, v.perm)

    def sole_consumer(self, t: str) -> Any | None:
        """The only node reading ONNX tensor ``t`` (None if several, none, or ``t`` is a graph output)."""
        cons = self.consumers.get(t, [])
        return cons[0] if len(cons) == 1 and t not in self.graph_outputs else None

    def ort_double_qdq(self, q2: Any, spec1: QuantSpec, spec2: QuantSpec, dtype: Any) -> QuantSpec | None:
        """The parameters onnxruntime gives ``Q1 → DQ1 → Q2 → DQ2`` when it removes the inner pair, or None.

        onnxruntime's DoubleQDQPairsRemover (a level-1 graph transformer, so it runs at every optimisation
        level above ORT_DISABLE_ALL, after the transpose optimizer has cancelled the layout Transposes
        between the pairs) rewrites such a chain into ``Q1' → DQ2'`` when every node in it has a single
        consumer and none is a graph output, both pairs have scalar constant parameters and 8-bit zero points
        of one type. The new parameters cover the intersection of the two real ranges, in float32:
        ``scale = (min(max1, max2) − max(min1, min2)) / (qmax − qmin)`` and
        ``zp = round_half_away(qmin − real_min / scale)`` (onnxruntime/core/optimizer/
        double_qdq_pairs_remover.cc, FindNewZeroPointAndScale). A chain of several pairs merges pair by pair,
        which is what calling this once per extra QuantizeLinear reproduces.
        """
        if spec1.scale.size != 1 or spec2.scale.size != 1 or spec1.bits != 8 or spec2.bits != 8 \
                or spec1.signed != spec2.signed or spec1.dtype != spec2.dtype:
            return None
        if self.sole_consumer(q2.output[0]) is None:
            return None
        t = q2.input[0]
        dq1 = self.producer.get(t)
        while dq1 is not None and dq1.op_type == "Transpose":
            if self.sole_consumer(t) is None:
                return None
            t = dq1.input[0]
            dq1 = self.producer.get(t)
        if dq1 is None or dq1.op_type != "DequantizeLinear" or self.sole_consumer(t) is None:
            return None
        q1 = self.producer.get(dq1.input[0])
        if q1 is None or q1.op_type != "QuantizeLinear" or self.sole_consumer(q1.output[0]) is not dq1:
            return None
        grandchild = self.sole_consumer(q2.output[0])
        while grandchild is not None and grandchild.op_type == "Transpose":
            grandchild = self.sole_consumer(grandchild.output[0])
        if grandchild is None or grandchild.op_type != "DequantizeLinear":
            return None
        f32 = np.float32
        qmin, qmax = (-128, 127) if spec1.signed else (0, 255)
        s1, s2 = f32(spec1.scale[0]), f32(spec2.scale[0])
        z1, z2 = int(spec1.zero_point[0]), int(spec2.zero_point[0])
        real_min = max(f32(qmin - z1) * s1, f32(qmin - z2) * s2)
        real_max = min(f32(qmax - z1) * s1, f32(qmax - z2) * s2)
        scale = f32(f32(real_max - real_min) / f32(qmax - qmin))
        if not (np.isfinite(scale) and scale > 0):
            return None
        q = f32(f32(qmin) - f32(real_min / scale))
        zp = int(np.clip(math.copysign(math.floor(abs(float(q)) + 0.5), q), qmin, qmax))  # std::round
        return self.spec_from(np.array([scale], np.float32), np.array([zp]), dtype, None,
                              q2.name or q2.output[0])

    def op_DequantizeLinear(self, n):
        scale = self.c(n, 1)
        zp = self.c(n, 2)
        if np.size(scale) != 1:
            raise _Unsupported("per-channel dequantization of an activation is not supported")
        v = self.val(n.input[0])
        where = n.name or n.output[0]
        if v.ir not in self.quant and v.ir in self.int_inputs:
            dtype = self.qtype_of(n.input[2] if len(n.input) > 2 else None)
            self.quant[v.ir] = self.spec_from(scale, zp, dtype, None, where)
        spec = self.quant.get(v.ir)
        if spec is None:
            raise _Unsupported(f"DequantizeLinear of '{n.input[0]}', which has no quantization parameters")
        zp_v = 0 if zp is None else int(np.asarray(zp).ravel()[0])
        same_scale = np.float32(np.asarray(scale).ravel()[0]) == np.float32(spec.scale[0])
        if (not same_scale or zp_v != int(spec.zero_point[0])) and n.input[0] not in self.merged_q_outputs:
            raise _Unsupported(f"DequantizeLinear parameters differ from those of tensor '{n.input[0]}'")
        self.define(n.output[0], v.ir, v.perm)

    def qinput(self, n: Any, i: int, where: str) -> str:
        """Activation input at position ``i`` of a QOperator node, with its (scale, zp) at i+1, i+2."""
        name = n.input[i]
        self.val(name)  # an activation (raises for constants and unknown names)
        scale = self.c(n, i + 1)
        zp = self.c(n, i + 2)
        self.act_spec(name, scale, zp, self.qtype_of(n.input[i + 2] if len(n.input) > i + 2 else None), where)
        return name

    def qoutput(self, n: Any, ir: str, scale_i: int, zp_i: int, where: str) -> None:
        scale = self.c(n, scale_i)
        zp = self.c(n, zp_i)
        dtype = self.qtype_of(n.input[zp_i] if len(n.input) > zp_i else None)
        self.attach(ir, self.spec_from(scale, zp, dtype, None, where), where)

    def op_QLinearConv(self, n):
        where = n.name or n.output[0]
        x = self.qinput(n, 0, where)
        w = self.c(n, 3)
        ws = np.asarray(self.c(n, 4), np.float32).ravel()
        wzp = self.c(n, 5)
        wzp = np.zeros(ws.shape, w.dtype) if wzp is None else wzp
        spec = self.spec_from(ws, wzp, self.qtype_of(n.input[3]), 0, where)
        xs = np.float32(np.asarray(self.c(n, 1)).ravel()[0])
        b_name = n.input[8] if len(n.input) > 8 and n.input[8] else None
        b = self.bias(b_name, b_name, where, scale_if_qop=(xs * ws).astype(np.float32)) if b_name else None
        out = self.conv(n, x, w, spec, n.input[3], b)
        self.qoutput(n, out, 6, 7, where)

    def op_QLinearMatMul(self, n):
        where = n.name or n.output[0]
        a = self.qinput(n, 0, where)
        if n.input[3] not in self.const:
            raise _Unsupported("QLinearMatMul with a non-constant B is not supported")
        w = self.c(n, 3)
        if w.ndim != 2:
            raise _Unsupported("QLinearMatMul with B of rank != 2 is not supported")
        ws = np.asarray(self.c(n, 4), np.float32).ravel()
        wzp = self.c(n, 5)
        wzp = np.zeros(ws.shape, w.dtype) if wzp is None else wzp
        spec = self.spec_from(ws, wzp, self.qtype_of(n.input[3]), 1, where)
        out = self.dense(n, a, w.T, spec, n.input[3], "T", {1: 0}, None)
        self.qoutput(n, out, 6, 7, where)

    def op_QGemm(self, n):
        where = n.name or n.output[0]
        a = self.attrs(n)
        if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0:
            raise _Unsupported("QGemm with transA=1 or alpha != 1 is not supported")
        if len(n.input) < 8 or not n.input[7]:
            raise _Unsupported("QGemm with a float output (no y_scale) is not supported")
        x = self.qinput(n, 0, where)
        if n.input[3] not in self.const:
            raise _Unsupported("QGemm with a non-constant B is not supported")
        w = self.c(n, 3)
        tb = int(a.get("transB", 0))
        ws = np.asarray(self.c(n, 4), np.float32).ravel()
        wzp = self.c(n, 5)
        wzp = np.zeros(ws.shape, w.dtype) if wzp is None else wzp
        spec = self.spec_from(ws, wzp, self.qtype_of(n.input[3]), 0 if tb else 1, where)
        xs = np.float32(np.asarray(self.c(n, 1)).ravel()[0])
        b_name = n.input[6] if n.input[6] else None
        b = self.bias(b_name, b_name, where, scale_if_qop=(xs * ws).astype(np.float32)) if b_name else None
        out = self.dense(n, x, w if tb else w.T, spec, n.input[3], "" if tb else "T",
                         {0: 0} if tb else {1: 0, 0: 1}, b)
        self.qoutput(n, out, 7, 8, where)

    def qbinary(self, n: Any, op: str) -> None:
        where = n.name or n.output[0]
        for i in (0, 3):
            if n.input[i] in self.const:
                raise _Unsupported(f"{n.op_type} with a constant operand is not supported")
            self.qinput(n, i, where)
        out = self.binary(n, op, n.input[0], n.input[3])
        self.qoutput(n, out, 6, 7, where)

    def op_QLinearAdd(self, n):
        self.qbinary(n, "Add")

    def op_QLinearMul(self, n):
        self.qbinary(n, "Mul")

    def op_QLinearGlobalAveragePool(self, n):
        where = n.name or n.output[0]
        x = self.qinput(n, 0, where)
        cl = bool(self.attrs(n).get("channels_last", 0))
        xi = self.layout(x, None if cl else NHWC)
        perm = None if cl else NHWC
        out = self.emit("GlobalAvgPool", [xi], None, self.out_name(n, perm), self.node_name(n))
        self.define(n.output[0], out, perm)
        self.qoutput(n, out, 3, 4, where)

    def op_QLinearAveragePool(self, n):
        where = n.name or n.output[0]
        x = self.qinput(n, 0, where)
        cl = bool(self.attrs(n).get("channels_last", 0))
        self.pool(n, "AvgPool", x, channels_last=cl,
                  extra={"count_include_pad": bool(self.attrs(n).get("count_include_pad", 0))})
        self.qoutput(n, self.vals[n.output[0]].ir, 3, 4, where)

    def op_QLinearConcat(self, n):
        where = n.name or n.output[0]
        ins = []
        for i in range(2, len(n.input), 3):
            ins.append(self.qinput(n, i, where))
        perm = self.val(ins[0]).perm
        rank = len(self.shapes[self.val(ins[0]).ir])
        axis = int(self.attrs(n)["axis"]) % rank
        irs = [self.layout(i, perm) for i in ins]
        out = self.emit("Concat", irs, {"axis": perm.index(axis) if perm else axis}, self.out_name(n, perm),
                        self.node_name(n))
        self.define(n.output[0], out, perm)
        self.qoutput(n, out, 0, 1, where)

    def qunary(self, n: Any, op: str, attrs: dict | None = None) -> None:
        where = n.name or n.output[0]
        self.qinput(n, 0, where)
        self.unary(n, op, attrs)
        self.qoutput(n, self.vals[n.output[0]].ir, 3, 4, where)

    def op_QLinearSigmoid(self, n):
        self.qunary(n, "Sigmoid")

    def op_QLinearLeakyRelu(self, n):
        self.qunary(n, "LeakyReLU", {"alpha": float(self.attrs(n).get("alpha", 0.01))})


class _Skip(Exception):
    """A node whose input comes from a node that failed (already reported)."""


def import_onnx(path_or_model: Any, input_shapes: dict[str, Any] | None = None, *,
                merge_double_qdq: bool = True) -> Graph:
    """Convert an ONNX model (float, QDQ or QOperator) into an hwsim :class:`~hwsim.graph.Graph`.

    Parameters
    ----------
    path_or_model : str, os.PathLike, bytes or onnx.ModelProto
        The ``.onnx`` file (external data is read from its folder), its bytes, or a loaded model.
    input_shapes : dict of str to sequence of int, optional
        Concrete shapes for inputs with dynamic dimensions, in the model's own layout (``1,3,224,224`` for
        an NCHW model); an NHWC shape (``1,224,224,3``) is accepted for an NCHW input when it does not fit
        the declared NCHW dimensions. A symbolic batch dimension alone defaults to 1. A string
        ``"1,3,224,224"`` is accepted for each shape.
    merge_double_qdq : bool, default True
        Merge removable ``Q → DQ → Q → DQ`` chains with different parameters into one quantization, as
        onnxruntime does when it loads the model (its DoubleQDQPairsRemover, at every optimisation level
        above ORT_DISABLE_ALL), so the import computes what onnxruntime computes. False keeps the ONNX
        semantics of the file: two roundings (an IR ``ReLU`` or identity ``Reshape`` that requantizes).

    Returns
    -------
    Graph
        A validated graph, NHWC throughout. Float models give a float graph; QDQ and QOperator models a
        pre-quantized graph (integer weights and int32 biases with QuantSpecs, a QuantSpec on every
        quantized activation). ``metadata["onnx_tensors"]`` maps ONNX tensor names to IR tensors.

    Raises
    ------
    MissingExtraError
        If onnx is not installed.
    ModelFormatError
        Unreadable, corrupt or truncated file, missing external data, unknown opset.
    GraphError
        Unsupported operators (all listed, with node names), dynamic shapes without ``input_shapes``,
        invalid resulting graph.
    """
    model, source = _load(path_or_model)
    shapes = {}
    for k, v in (input_shapes or {}).items():
        shapes[k] = _parse_shape(v) if isinstance(v, str) else tuple(int(d) for d in v)
    importer = _Importer(model, source, shapes, merge_double_qdq)
    _check_with_shape_inference(importer)
    return importer.run()


def _check_with_shape_inference(importer: _Importer) -> None:
    """Run onnx's checker-grade shape inference: inconsistent models fail here, naming the node."""
    try:
        importer.si.infer_shapes(importer.model, check_type=True, strict_mode=False)
    except Exception as exc:
        raise GraphError(f"{importer.source}: ONNX shape inference failed: {exc}") from None
