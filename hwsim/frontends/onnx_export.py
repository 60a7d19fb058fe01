"""Export an hwsim float graph to an ONNX model (the float oracle's other half).

Layout choice: every ONNX tensor that corresponds to an hwsim tensor keeps hwsim's name, shape and NHWC
layout, so any hwsim tensor, not only the outputs, can be compared with onnxruntime's value of the same
name. The ops whose ONNX definition is channel-first (Conv, MaxPool, AveragePool, GlobalAveragePool,
BatchNormalization) are wrapped in a pair of Transposes: NHWC -> NCHW before, NCHW -> NHWC after
(BatchNorm on other ranks moves the last axis to axis 1 the same way). Conv weights are stored transposed,
OHWI -> OIHW, under the name ``<param>.oihw``; Dense becomes Gemm (transB=1) on rank-2 inputs and
MatMul(x, Wᵀ) + Add otherwise. Nothing is fused: each hwsim node maps to the ONNX operator with the same
definition, so the comparison checks hwsim's float reference against an independent implementation.

Opset 20 (for Gelu; LayerNormalization needs 17, Mish 18), IR version 10. Only float graphs are exported:
quantization parameters (``graph.quant``) are ignored, integer parameters and inputs are an error. Shapes are
the graph's declared ones (batch included). onnx is imported lazily; without it
:class:`hwsim.errors.MissingExtraError` says to install ``hwsim[onnx]``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from hwsim.errors import GraphError, MissingExtraError

OPSET = 20
IR_VERSION = 10

_UNARY = {"ReLU": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "HardSwish": "HardSwish", "Mish": "Mish"}


def _import_onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as exc:
        raise MissingExtraError("exporting to ONNX needs the onnx package: install hwsim[onnx]") from exc
    return onnx, helper, numpy_helper


class _Exporter:
    def __init__(self, graph: Any) -> None:
        self.onnx, self.helper, self.numpy_helper = _import_onnx()
        self.graph = graph
        self.nodes: list[Any] = []
        self.initializers: dict[str, Any] = {}
        self.used: set[str] = set(graph.params) | set(graph.tensors) | {t.name for t in graph.inputs}

    # -- names and constants ----------------------------------------------------------------------

    def fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self.used:
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name

    def const(self, base: str, array: np.ndarray) -> str:
        name = self.fresh(base)
        self.initializers[name] = self.numpy_helper.from_array(np.ascontiguousarray(array), name)
        return name

    def param(self, name: str, transform: str | None = None) -> str:
        """Initializer for hwsim parameter ``name`` (float32), optionally transformed; shared once."""
        key = name if transform is None else f"{name}.{transform}"
        if key not in self.initializers:
            a = self.graph.params[name]
            if a.dtype.kind != "f":
                raise GraphError(f"parameter '{name}' has dtype {a.dtype}: export_onnx exports float graphs "
                                 f"only")
            a = a.astype(np.float32)
            if transform == "oihw":
                a = a.transpose(0, 3, 1, 2)
            elif transform == "T":
                a = a.T
            self.initializers[key] = self.numpy_helper.from_array(np.ascontiguousarray(a), key)
            self.used.add(key)
        return key

    def tensor(self, name: str) -> str:
        """ONNX name of an hwsim node input: parameters become initializers, activations keep their name."""
        return self.param(name) if name in self.graph.params else name

    def emit(self, op: str, inputs: list[str], outputs: list[str], name: str, **attrs: Any) -> None:
        self.nodes.append(self.helper.make_node(op, inputs, outputs, name=self.fresh(name), **attrs))

    def channel_first(self, x: str, rank: int, node: str, op: str, extra: list[str], out: str,
                      **attrs: Any) -> None:
        """``op`` on ``x`` with its last axis moved to axis 1 and back."""
        if rank <= 2:
            self.emit(op, [x, *extra], [out], node, **attrs)
            return
        to_cf = [0, rank - 1, *range(1, rank - 1)]
        back = [0, *range(2, rank), 1]
        a = self.fresh(f"{node}/nchw_in")
        b = self.fresh(f"{node}/nchw_out")
        self.emit("Transpose", [x], [a], f"{node}/to_nchw", perm=to_cf)
        self.emit(op, [a, *extra], [b], node, **attrs)
        self.emit("Transpose", [b], [out], f"{node}/to_nhwc", perm=back)

    # -- nodes ------------------------------------------------------------------------------------

    def node(self, n: Any) -> None:
        op, a, name = n.op, n.attrs, n.name
        out = n.outputs[0]
        if op == "Conv2D" or (op == "Dense" and len(self.graph.tensors[n.inputs[0]].shape) != 2):
            x = [n.inputs[0]]  # the weight is stored transformed, below
        else:
            x = [self.tensor(t) for t in n.inputs]
        rank = len(self.graph.tensors[n.inputs[0]].shape) if n.inputs else 0
        if op == "Conv2D":
            extra = [self.param(n.inputs[1], "oihw")]
            if len(n.inputs) > 2:
                extra.append(self.param(n.inputs[2]))
            self.channel_first(x[0], 4, name, "Conv", extra, out, strides=a["strides"],
                               dilations=a["dilations"], pads=a["pads"], group=a["groups"],
                               kernel_shape=list(self.graph.params[n.inputs[1]].shape[1:3]))
        elif op == "Dense":
            if rank == 2:
                self.emit("Gemm", x, [out], name, transB=1)
            else:
                wt = self.param(n.inputs[1], "T")
                if len(n.inputs) > 2:
                    mm = self.fresh(f"{name}/matmul")
                    self.emit("MatMul", [x[0], wt], [mm], f"{name}/matmul")
                    self.emit("Add", [mm, self.param(n.inputs[2])], [out], f"{name}/bias")
                else:
                    self.emit("MatMul", [x[0], wt], [out], name)
        elif op == "MatMul":
            b = x[1]
            if a["transpose_b"]:
                rb = len(self.graph.tensors[n.inputs[1]].shape)
                perm = [*range(rb - 2), rb - 1, rb - 2]
                b = self.fresh(f"{name}/b_transposed")
                self.emit("Transpose", [x[1]], [b], f"{name}/transpose_b", perm=perm)
            self.emit("MatMul", [x[0], b], [out], name)
        elif op == "BatchNorm":
            self.channel_first(x[0], rank, name, "BatchNormalization", x[1:5], out, epsilon=a["epsilon"])
        elif op in ("Add", "Mul"):
            self.emit(op, x, [out], name)
        elif op == "Concat":
            self.emit("Concat", x, [out], name, axis=a["axis"])
        elif op == "Pad":
            pads = [p[0] for p in a["pads"]] + [p[1] for p in a["pads"]]
            self.emit("Pad", [x[0], self.const(f"{name}/pads", np.array(pads, np.int64)),
                              self.const(f"{name}/value", np.array(a["value"], np.float32))],
                      [out], name, mode="constant")
        elif op == "MaxPool":
            self.channel_first(x[0], 4, name, "MaxPool", [], out, kernel_shape=a["kernel"],
                               strides=a["strides"], pads=a["pads"])
        elif op == "AvgPool":
            self.channel_first(x[0], 4, name, "AveragePool", [], out, kernel_shape=a["kernel"],
                               strides=a["strides"], pads=a["pads"],
                               count_include_pad=int(a["count_include_pad"]))
        elif op == "GlobalAvgPool":
            self.channel_first(x[0], 4, name, "GlobalAveragePool", [], out)
        elif op == "Reshape":
            shape = self.const(f"{name}/shape", np.array(a["shape"], np.int64))
            self.emit("Reshape", [x[0], shape], [out], name)
        elif op == "Flatten":
            self.emit("Flatten", x, [out], name, axis=a["axis"])
        elif op == "Transpose":
            self.emit("Transpose", x, [out], name, perm=a["perm"])
        elif op == "Softmax":
            self.emit("Softmax", x, [out], name, axis=a["axis"])
        elif op == "LayerNorm":
            self.emit("LayerNormalization", x, [out], name, axis=a["axis"], epsilon=a["epsilon"])
        elif op in _UNARY:
            self.emit(_UNARY[op], x, [out], name)
        elif op == "ReLU6":
            self.emit("Clip", [x[0], self.const(f"{name}/min", np.array(0, np.float32)),
                               self.const(f"{name}/max", np.array(6, np.float32))], [out], name)
        elif op == "LeakyReLU":
            self.emit("LeakyRelu", x, [out], name, alpha=a["alpha"])
        elif op == "HardSigmoid":
            self.emit("HardSigmoid", x, [out], name, alpha=a["alpha"], beta=a["beta"])
        elif op == "SELU":
            self.emit("Selu", x, [out], name, alpha=a["alpha"], gamma=a["gamma"])
        elif op == "SiLU":
            s = self.fresh(f"{name}/sigmoid")
            self.emit("Sigmoid", x, [s], f"{name}/sigmoid")
            self.emit("Mul", [x[0], s], [out], name)
        elif op == "GELU":
            self.emit("Gelu", x, [out], name, approximate=a["approximate"])
        else:
            raise GraphError(f"node '{name}': export_onnx does not support op {op}")

    def value_info(self, name: str) -> Any:
        spec = self.graph.tensors[name]
        return self.helper.make_tensor_value_info(name, self.onnx.TensorProto.FLOAT, list(spec.shape))

    def build(self, intermediates: bool) -> Any:
        g = self.graph
        for t in g.inputs:
            if not t.dtype.startswith("float"):
                raise GraphError(f"graph input '{t.name}' has dtype {t.dtype}: export_onnx exports float "
                                 f"graphs only")
        for n in g.nodes:
            self.node(n)
        inputs = [self.helper.make_tensor_value_info(t.name, self.onnx.TensorProto.FLOAT, list(t.shape))
                  for t in g.inputs]
        out_names = list(g.outputs)
        if intermediates:
            out_names += [o for n in g.nodes for o in n.outputs if o not in g.outputs]
        outputs = [self.value_info(t) for t in out_names]
        onnx_graph = self.helper.make_graph(self.nodes, g.name, inputs, outputs,
                                            initializer=list(self.initializers.values()))
        model = self.helper.make_model(onnx_graph, producer_name="hwsim",
                                       opset_imports=[self.helper.make_opsetid("", OPSET)])
        model.ir_version = IR_VERSION
        return model


def export_onnx(graph: Any, path: str | os.PathLike | None = None, *, intermediates: bool = False):
    """Convert a float hwsim graph to an ONNX model, optionally writing it to ``path``.

    Parameters
    ----------
    graph : hwsim.graph.Graph
        A validated float graph (every parameter a float array).
    path : str or os.PathLike, optional
        Where to write the ``.onnx`` file; nothing is written when None.
    intermediates : bool
        Also make every node's output tensor a graph output (same name and NHWC shape as in hwsim), so a
        runtime returns all of them.

    Returns
    -------
    onnx.ModelProto
        The model, checked with ``onnx.checker``.

    Raises
    ------
    MissingExtraError
        If onnx is not installed.
    GraphError
        If the graph holds an op or a parameter dtype this exporter does not handle.
    """
    exporter = _Exporter(graph)
    model = exporter.build(intermediates)
    exporter.onnx.checker.check_model(model)
    if path is not None:
        exporter.onnx.save(model, os.fspath(path))
    return model
