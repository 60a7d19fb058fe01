"""GraphBuilder: write a model as a sequence of calls, one per node.

>>> import numpy as np
>>> b = GraphBuilder("tiny")
>>> x = b.input("x", (1, 8, 8, 3))
>>> y = b.conv2d(x, np.zeros((4, 3, 3, 3), np.float32), pads=[1, 1, 1, 1], name="conv")
>>> y = b.relu(y)
>>> b.output(y)
>>> g = b.build()
>>> g.tensors[y].shape
(1, 8, 8, 4)

Each node's shape is inferred as soon as it is added, so a mistake is reported at the call that makes it
(naming the node) and :meth:`GraphBuilder.shape` is available while building.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hwsim.errors import GraphError
from hwsim.graph.ir import ACTIVATION_DTYPES, PARAM_DTYPES, Graph, Node, TensorSpec, _finite_check
from hwsim.graph.ops import OPS, NodeView, get_schema
from hwsim.graph.quant import QuantSpec


class GraphBuilder:
    """Builds a :class:`Graph` node by node.

    Parameters
    ----------
    name : str
        Name of the model.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._inputs: list[TensorSpec] = []
        self._outputs: list[str] = []
        self._nodes: list[Node] = []
        self._params: dict[str, np.ndarray] = {}
        self._quant: dict[str, QuantSpec] = {}
        self._data: dict[str, dict[str, np.ndarray]] = {}
        self.metadata: dict[str, Any] = {}
        self._shapes: dict[str, TensorSpec] = {}
        self._counters: dict[str, int] = {}

    # ------------------------------------------------------------------------------------------------
    # Tensors

    def input(self, name: str, shape: Sequence[int], dtype: str = "float32") -> str:
        """Declare a graph input; returns its tensor name."""
        self._claim(name, "input")
        try:
            dtype = str(np.dtype(dtype))
        except TypeError:
            raise GraphError(f"input '{name}': unknown dtype {dtype!r}") from None
        if dtype not in ACTIVATION_DTYPES:
            raise GraphError(f"input '{name}': unsupported dtype {dtype!r} "
                             f"(supported: {', '.join(ACTIVATION_DTYPES)})")
        spec = TensorSpec(name, tuple(shape), dtype)
        self._inputs.append(spec)
        self._shapes[name] = spec
        return name

    def param(self, name: str, array: np.ndarray) -> str:
        """Add a parameter tensor; returns its name.

        Adding the same name again with an equal array (same dtype, shape and values) returns the existing
        parameter, which is how several nodes share one parameter. A different array under a used name
        is an error.
        """
        array = np.asarray(array)
        if name in self._params:
            old = self._params[name]
            if old.dtype == array.dtype and old.shape == array.shape and np.array_equal(old, array):
                return name
            raise GraphError(f"parameter '{name}' already exists with different contents")
        self._claim(name, "parameter")
        if str(array.dtype) not in PARAM_DTYPES:
            raise GraphError(f"parameter '{name}': unsupported dtype {array.dtype} "
                             f"(supported: {', '.join(PARAM_DTYPES)})")
        _finite_check(name, array)
        array = np.ascontiguousarray(array)
        self._params[name] = array
        self._shapes[name] = TensorSpec(name, array.shape, str(array.dtype))
        return name

    def quant(self, tensor: str, spec: QuantSpec) -> None:
        """Attach quantization parameters to a tensor (parameter or activation)."""
        if tensor not in self._shapes:
            raise GraphError(f"quant spec for '{tensor}': no such tensor")
        spec.check_tensor(self._shapes[tensor].shape, f"quant spec for '{tensor}'")
        self._quant[tensor] = spec

    def data(self, set_name: str, **arrays: np.ndarray) -> None:
        """Bundle a data set, e.g. ``b.data("evaluation", x=images, y=labels)``."""
        self._data.setdefault(set_name, {}).update({k: np.asarray(v) for k, v in arrays.items()})

    def output(self, name: str) -> None:
        """Mark a tensor as a graph output."""
        if name not in self._shapes:
            raise GraphError(f"graph output '{name}' is not a tensor of the graph")
        self._outputs.append(name)

    def shape(self, tensor: str) -> tuple[int, ...]:
        """Inferred shape of a tensor built so far."""
        return self._shapes[tensor].shape

    def spec(self, tensor: str) -> TensorSpec:
        """Inferred TensorSpec of a tensor built so far."""
        return self._shapes[tensor]

    def has(self, tensor: str) -> bool:
        """Whether a tensor of that name exists."""
        return tensor in self._shapes

    # ------------------------------------------------------------------------------------------------
    # Nodes

    def node(self, op: str, inputs: list[str], attrs: dict[str, Any] | None = None,
             name: str | None = None) -> str:
        """Add a node; returns its output tensor name (the node's name).

        Parameters
        ----------
        op : str
            Op kind (see :data:`hwsim.graph.OPS`; 'Swish' is stored as 'SiLU').
        inputs : list of str
            Input tensor names (graph inputs, parameters or outputs of earlier nodes).
        attrs : dict, optional
            Attributes; omitted ones take their schema default.
        name : str, optional
            Node name; a unique ``<op>_<k>`` name is generated when None.
        """
        schema = get_schema(op, f"node '{name}'" if name else "node")
        if name is None:
            name = self._auto_name(schema.name.lower())
        elif any(n.name == name for n in self._nodes):
            raise GraphError(f"node name '{name}' is used twice")
        where = f"node '{name}' ({schema.name})"
        normalized = schema.normalize_attrs(attrs, where)
        schema.check_arity(len(inputs), where)
        for i in inputs:
            if i not in self._shapes:
                raise GraphError(f"{where}: input '{i}' is not a graph input, parameter or node output")
        specs = [self._shapes[i] for i in inputs]
        view = NodeView(name, schema.name, normalized, [s.shape for s in specs], list(inputs))
        shapes = schema.infer(view)
        self._claim(name, f"output of {where}")
        dtype = next((s.dtype for s in specs if s.name not in self._params), specs[0].dtype)
        if not dtype.startswith("float"):
            dtype = "float32"
        self._nodes.append(Node(name, schema.name, list(inputs), [name], normalized))
        self._shapes[name] = TensorSpec(name, shapes[0], dtype)
        return name

    def build(self) -> Graph:
        """Validate and return the Graph (the builder can keep being used afterwards)."""
        outputs = list(self._outputs)
        if not outputs and self._nodes:
            outputs = [self._nodes[-1].outputs[0]]
        g = Graph(self.name, [TensorSpec(t.name, t.shape, t.dtype) for t in self._inputs], outputs,
                  [n.copy() for n in self._nodes], dict(self._params), dict(self._quant),
                  {k: dict(v) for k, v in self._data.items()}, dict(self.metadata))
        return g

    # ------------------------------------------------------------------------------------------------
    # Convenience methods, one per op kind. Weights may be arrays (stored as '<node>.<role>') or names of
    # existing parameters.

    def conv2d(self, x: str, weight: np.ndarray | str, bias: np.ndarray | str | None = None, *,
               strides: Sequence[int] = (1, 1), pads: Sequence[int] = (0, 0, 0, 0),
               dilations: Sequence[int] = (1, 1), groups: int = 1, name: str | None = None) -> str:
        """Conv2D, weight OHWI [O, KH, KW, C/groups], pads [top, left, bottom, right]."""
        name = name or self._auto_name("conv2d")
        ins = self._weights(name, x, weight, bias)
        return self.node("Conv2D", ins, {"strides": list(strides), "pads": list(pads),
                                         "dilations": list(dilations), "groups": groups}, name)

    def depthwise_conv2d(self, x: str, weight: np.ndarray | str, bias: np.ndarray | str | None = None, *,
                         strides: Sequence[int] = (1, 1), pads: Sequence[int] = (0, 0, 0, 0),
                         dilations: Sequence[int] = (1, 1), name: str | None = None) -> str:
        """Depthwise Conv2D (groups = input channels), weight [C·mult, KH, KW, 1]."""
        return self.conv2d(x, weight, bias, strides=strides, pads=pads, dilations=dilations,
                           groups=self.shape(x)[-1], name=name)

    def dense(self, x: str, weight: np.ndarray | str, bias: np.ndarray | str | None = None, *,
              name: str | None = None) -> str:
        """Dense: y = x @ W.T + b over the last axis, W [out, in]."""
        name = name or self._auto_name("dense")
        ins = self._weights(name, x, weight, bias)
        return self.node("Dense", ins, None, name)

    def matmul(self, a: str, b: np.ndarray | str, *, transpose_b: bool = False,
               name: str | None = None) -> str:
        """MatMul with numpy batch broadcasting (b may be an activation or a parameter)."""
        name = name or self._auto_name("matmul")
        return self.node("MatMul", [a, self._p(name, "b", b)], {"transpose_b": transpose_b}, name)

    def batch_norm(self, x: str, gamma: np.ndarray | str, beta: np.ndarray | str, mean: np.ndarray | str,
                   var: np.ndarray | str, *, epsilon: float = 1e-5, name: str | None = None) -> str:
        """BatchNorm over the last axis."""
        name = name or self._auto_name("batchnorm")
        ins = [x] + [self._p(name, r, a) for r, a in
                     (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var))]
        return self.node("BatchNorm", ins, {"epsilon": epsilon}, name)

    def add(self, a: str, b: np.ndarray | str, *, name: str | None = None) -> str:
        """Elementwise a + b (b may be a parameter array)."""
        name = name or self._auto_name("add")
        return self.node("Add", [a, self._p(name, "b", b)], None, name)

    def mul(self, a: str, b: np.ndarray | str, *, name: str | None = None) -> str:
        """Elementwise a * b (b may be a parameter array)."""
        name = name or self._auto_name("mul")
        return self.node("Mul", [a, self._p(name, "b", b)], None, name)

    def concat(self, xs: Sequence[str], axis: int = -1, *, name: str | None = None) -> str:
        """Concat along ``axis``."""
        return self.node("Concat", list(xs), {"axis": axis}, name)

    def pad(self, x: str, pads: Sequence[Sequence[int]], value: float = 0.0, *,
            name: str | None = None) -> str:
        """Constant Pad, one [begin, end] pair per axis."""
        return self.node("Pad", [x], {"pads": [list(p) for p in pads], "value": value}, name)

    def max_pool(self, x: str, kernel: Sequence[int], strides: Sequence[int] | None = None,
                 pads: Sequence[int] = (0, 0, 0, 0), *, name: str | None = None) -> str:
        """MaxPool; ``strides`` defaults to the kernel here (the schema default is [1, 1])."""
        strides = list(kernel) if strides is None else list(strides)
        return self.node("MaxPool", [x], {"kernel": list(kernel), "strides": strides, "pads": list(pads)},
                         name)

    def avg_pool(self, x: str, kernel: Sequence[int], strides: Sequence[int] | None = None,
                 pads: Sequence[int] = (0, 0, 0, 0), count_include_pad: bool = False, *,
                 name: str | None = None) -> str:
        """AvgPool; ``strides`` defaults to the kernel here (the schema default is [1, 1])."""
        strides = list(kernel) if strides is None else list(strides)
        return self.node("AvgPool", [x], {"kernel": list(kernel), "strides": strides, "pads": list(pads),
                                          "count_include_pad": count_include_pad}, name)

    def global_avg_pool(self, x: str, *, name: str | None = None) -> str:
        """GlobalAvgPool, output [N, 1, 1, C]."""
        return self.node("GlobalAvgPool", [x], None, name)

    def reshape(self, x: str, shape: Sequence[int], *, name: str | None = None) -> str:
        """Reshape; 0 copies the input dimension, one -1 is inferred."""
        return self.node("Reshape", [x], {"shape": list(shape)}, name)

    def flatten(self, x: str, axis: int = 1, *, name: str | None = None) -> str:
        """Flatten to 2-D over NHWC order."""
        return self.node("Flatten", [x], {"axis": axis}, name)

    def transpose(self, x: str, perm: Sequence[int], *, name: str | None = None) -> str:
        """Transpose by ``perm``."""
        return self.node("Transpose", [x], {"perm": list(perm)}, name)

    def softmax(self, x: str, axis: int = -1, *, name: str | None = None) -> str:
        """Softmax along ``axis``."""
        return self.node("Softmax", [x], {"axis": axis}, name)

    def layer_norm(self, x: str, gamma: np.ndarray | str, beta: np.ndarray | str, *, axis: int = -1,
                   epsilon: float = 1e-5, name: str | None = None) -> str:
        """LayerNorm over the axes from ``axis`` on."""
        name = name or self._auto_name("layernorm")
        return self.node("LayerNorm", [x, self._p(name, "gamma", gamma), self._p(name, "beta", beta)],
                         {"axis": axis, "epsilon": epsilon}, name)

    def relu(self, x: str, *, name: str | None = None) -> str:
        """ReLU."""
        return self.node("ReLU", [x], None, name)

    def relu6(self, x: str, *, name: str | None = None) -> str:
        """ReLU6."""
        return self.node("ReLU6", [x], None, name)

    def leaky_relu(self, x: str, alpha: float = 0.01, *, name: str | None = None) -> str:
        """LeakyReLU."""
        return self.node("LeakyReLU", [x], {"alpha": alpha}, name)

    def sigmoid(self, x: str, *, name: str | None = None) -> str:
        """Sigmoid."""
        return self.node("Sigmoid", [x], None, name)

    def tanh(self, x: str, *, name: str | None = None) -> str:
        """Tanh."""
        return self.node("Tanh", [x], None, name)

    def hard_sigmoid(self, x: str, alpha: float = 1.0 / 6.0, beta: float = 0.5, *,
                     name: str | None = None) -> str:
        """HardSigmoid: clip(alpha·x + beta, 0, 1)."""
        return self.node("HardSigmoid", [x], {"alpha": alpha, "beta": beta}, name)

    def hard_swish(self, x: str, *, name: str | None = None) -> str:
        """HardSwish: x·relu6(x + 3)/6."""
        return self.node("HardSwish", [x], None, name)

    def selu(self, x: str, *, name: str | None = None) -> str:
        """SELU with the standard constants."""
        return self.node("SELU", [x], None, name)

    def silu(self, x: str, *, name: str | None = None) -> str:
        """SiLU (Swish): x·sigmoid(x)."""
        return self.node("SiLU", [x], None, name)

    swish = silu

    def mish(self, x: str, *, name: str | None = None) -> str:
        """Mish: x·tanh(softplus(x))."""
        return self.node("Mish", [x], None, name)

    def gelu(self, x: str, approximate: str = "none", *, name: str | None = None) -> str:
        """GELU, exact ('none') or tanh approximation."""
        return self.node("GELU", [x], {"approximate": approximate}, name)

    # ------------------------------------------------------------------------------------------------
    def _weights(self, node_name: str, x: str, weight: np.ndarray | str,
                 bias: np.ndarray | str | None) -> list[str]:
        ins = [x, self._p(node_name, "weight", weight)]
        return ins if bias is None else ins + [self._p(node_name, "bias", bias)]

    def _p(self, node_name: str, role: str, value: np.ndarray | str) -> str:
        if isinstance(value, str):
            return value
        return self.param(f"{node_name}.{role}", np.asarray(value))

    def _auto_name(self, stem: str) -> str:
        k = self._counters.get(stem, 0)
        while True:
            candidate = f"{stem}_{k}"
            k += 1
            if candidate not in self._shapes and not any(n.name == candidate for n in self._nodes):
                self._counters[stem] = k
                return candidate

    def _claim(self, name: str, what: str) -> None:
        if not isinstance(name, str) or not name:
            raise GraphError(f"{what} name must be a non-empty string, got {name!r}")
        if name in self._shapes:
            raise GraphError(f"{what} '{name}': a tensor of that name already exists")


__all__ = ["GraphBuilder", "OPS"]
