"""The graph IR: :class:`TensorSpec`, :class:`Node`, :class:`Graph`.

A Graph is a list of nodes in topological order over named tensors. A tensor is a graph input, a parameter
(a numpy array in ``Graph.params``) or the output of exactly one node. :meth:`Graph.validate` checks
everything a model file can get wrong and names the node and field at fault; it also infers every
tensor's shape and dtype (``Graph.tensors``) and each node's MAC and parameter counts.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwsim.errors import GraphError
from hwsim.graph.ops import OPS, NodeView, get_schema
from hwsim.graph.quant import QuantSpec

#: dtypes a graph input may have (the logical dtype of activations).
ACTIVATION_DTYPES = ("float16", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32")
#: dtypes a parameter array may have.
PARAM_DTYPES = ("float16", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32",
                "int64")


@dataclass
class TensorSpec:
    """Name, shape and dtype of one tensor.

    Attributes
    ----------
    name : str
        Tensor name, unique in the graph.
    shape : tuple of int
        Concrete shape (activations NHWC). Batch is the first axis; executors accept any batch size.
    dtype : str
        Numpy dtype name (``"float32"``; integer dtypes for parameters of pre-quantized models).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        self.shape = tuple(int(d) for d in self.shape)
        self.dtype = str(np.dtype(self.dtype)) if not isinstance(self.dtype, str) else self.dtype

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass
class Node:
    """One operation.

    Attributes
    ----------
    name : str
        Unique, stable node name.
    op : str
        Op kind, a key of :data:`hwsim.graph.OPS`.
    inputs : list of str
        Input tensor names in the order of the op's schema.
    outputs : list of str
        Output tensor names (one unless the op says otherwise).
    attrs : dict
        Attributes; after validation every schema attribute is present (defaults filled in).
    macs : int
        Multiply-accumulates for one run at the graph's declared batch (set by validation).
    param_count : int
        Elements of the parameters this node reads (set by validation).
    param_bytes : int
        Bytes of the parameters this node reads, in their storage dtype (set by validation).
    """

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    macs: int = field(default=0, compare=False)
    param_count: int = field(default=0, compare=False)
    param_bytes: int = field(default=0, compare=False)

    @property
    def output(self) -> str:
        """The single output tensor name."""
        return self.outputs[0]

    def copy(self) -> Node:
        """A deep copy."""
        return Node(self.name, self.op, list(self.inputs), list(self.outputs),
                    json.loads(json.dumps(self.attrs)),
                    self.macs, self.param_count, self.param_bytes)


def _finite_check(name: str, a: np.ndarray) -> None:
    if a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0]
        value = a[tuple(bad)]
        raise GraphError(f"parameter '{name}' contains {value} at index {bad.tolist()} (NaN/Inf not allowed)")


class Graph:
    """A model: inputs, parameters, nodes in topological order, outputs.

    Parameters
    ----------
    name : str
        Model name.
    inputs : list of TensorSpec
        Graph inputs.
    outputs : list of str
        Names of the output tensors.
    nodes : list of Node
        Nodes in any order; validation sorts them topologically (stable: keeps the given order where it
        can).
    params : dict of str to numpy.ndarray
        Parameter tensors. Several nodes may read the same parameter (sharing).
    quant : dict of str to QuantSpec, optional
        Quantization parameters per tensor name (parameters or activations).
    data : dict, optional
        Bundled data sets, ``{"calibration": {"x": array}, "evaluation": {"x": array, "y": labels}}``.
    metadata : dict, optional
        Free-form JSON-serialisable information (source, license, accuracy, ...).
    validate : bool
        Validate now (default). Construct with False only to build up a graph step by step.
    """

    def __init__(self, name: str, inputs: list[TensorSpec], outputs: list[str], nodes: list[Node],
                 params: dict[str, np.ndarray] | None = None, quant: dict[str, QuantSpec] | None = None,
                 data: dict[str, dict[str, np.ndarray]] | None = None, metadata: dict[str, Any] | None = None,
                 *, validate: bool = True) -> None:
        self.name = name
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.nodes = list(nodes)
        self.params = dict(params or {})
        self.quant = dict(quant or {})
        self.data = {k: dict(v) for k, v in (data or {}).items()}
        self.metadata = dict(metadata or {})
        self.tensors: dict[str, TensorSpec] = {}
        if validate:
            self.validate()

    # ------------------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return (f"Graph({self.name!r}, {len(self.nodes)} nodes, {len(self.params)} params, "
                f"inputs={[t.name for t in self.inputs]}, outputs={self.outputs})")

    def node(self, name: str) -> Node:
        """The node called ``name``."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def producer(self, tensor: str) -> Node | None:
        """The node that outputs ``tensor`` (None for inputs and parameters)."""
        for n in self.nodes:
            if tensor in n.outputs:
                return n
        return None

    def consumers(self, tensor: str) -> list[Node]:
        """Nodes that read ``tensor``."""
        return [n for n in self.nodes if tensor in n.inputs]

    def macs(self, by_node: bool = False) -> int | dict[str, int]:
        """Total multiply-accumulates of one run, or a dict node name -> MACs when ``by_node``."""
        if by_node:
            return {n.name: n.macs for n in self.nodes}
        return sum(n.macs for n in self.nodes)

    def param_count(self) -> int:
        """Total parameter elements, each shared parameter counted once."""
        return sum(int(a.size) for a in self.params.values())

    def param_bytes(self) -> int:
        """Total parameter bytes in storage dtype, each shared parameter counted once."""
        return sum(int(a.nbytes) for a in self.params.values())

    def copy(self) -> Graph:
        """A deep copy (arrays copied)."""
        g = Graph(self.name, [TensorSpec(t.name, t.shape, t.dtype) for t in self.inputs], list(self.outputs),
                  [n.copy() for n in self.nodes], {k: v.copy() for k, v in self.params.items()},
                  {k: q.copy() for k, q in self.quant.items()},
                  {s: {k: v.copy() for k, v in d.items()} for s, d in self.data.items()},
                  json.loads(json.dumps(self.metadata)), validate=False)
        g.tensors = {k: TensorSpec(t.name, t.shape, t.dtype) for k, t in self.tensors.items()}
        return g

    # ------------------------------------------------------------------------------------------------
    def validate(self) -> Graph:
        """Check the graph, sort nodes topologically, infer shapes, count MACs and parameters.

        Returns the graph itself. Raises GraphError naming the node, tensor or field at fault: unknown op,
        unknown or mistyped attribute, wrong input count, missing input tensor or parameter, duplicate
        names, cycles, shape mismatches, NaN/Inf in float parameters, unsupported dtypes, quantization
        specs that do not fit their tensor.
        """
        if not isinstance(self.name, str):
            raise GraphError(f"graph name must be a string, got {self.name!r}")
        kinds: dict[str, str] = {}  # tensor name -> "input" | "parameter" | "output of node X"
        tensors: dict[str, TensorSpec] = {}
        for spec in self.inputs:
            if not isinstance(spec, TensorSpec):
                raise GraphError(f"graph inputs must be TensorSpec, got {spec!r}")
            _check_name(spec.name, "input")
            if spec.name in kinds:
                raise GraphError(f"input '{spec.name}' is declared twice")
            if spec.dtype not in ACTIVATION_DTYPES:
                raise GraphError(f"input '{spec.name}': unsupported dtype {spec.dtype!r} "
                                 f"(supported: {', '.join(ACTIVATION_DTYPES)})")
            if any(d < 1 for d in spec.shape):
                raise GraphError(f"input '{spec.name}': shape {list(spec.shape)} must have dimensions >= 1")
            kinds[spec.name] = "input"
            tensors[spec.name] = spec
        for pname, arr in self.params.items():
            _check_name(pname, "parameter")
            if pname in kinds:
                raise GraphError(f"parameter '{pname}' has the same name as a graph input")
            if not isinstance(arr, np.ndarray):
                raise GraphError(f"parameter '{pname}' must be a numpy array, got {type(arr).__name__}")
            if str(arr.dtype) not in PARAM_DTYPES:
                raise GraphError(f"parameter '{pname}': unsupported dtype {arr.dtype} "
                                 f"(supported: {', '.join(PARAM_DTYPES)})")
            _finite_check(pname, arr)
            kinds[pname] = "parameter"
            tensors[pname] = TensorSpec(pname, arr.shape, str(arr.dtype))

        node_names: set[str] = set()
        for node in self.nodes:
            if not isinstance(node, Node):
                raise GraphError(f"graph nodes must be Node, got {node!r}")
            _check_name(node.name, "node")
            if node.name in node_names:
                raise GraphError(f"node name '{node.name}' is used twice")
            node_names.add(node.name)
            where = f"node '{node.name}' ({node.op})"
            schema = get_schema(node.op, f"node '{node.name}'")
            node.op = schema.name
            node.attrs = schema.normalize_attrs(node.attrs, where)
            if not isinstance(node.inputs, list) or not all(isinstance(i, str) for i in node.inputs):
                raise GraphError(f"{where}: field 'inputs' must be a list of tensor names")
            schema.check_arity(len(node.inputs), where)
            if not isinstance(node.outputs, list) or len(node.outputs) != schema.num_outputs:
                raise GraphError(f"{where}: needs exactly {schema.num_outputs} output tensor name(s), "
                                 f"got {node.outputs!r}")
            for out in node.outputs:
                _check_name(out, f"{where}: output")
                if out in kinds:
                    raise GraphError(f"{where}: output '{out}' is already the {kinds[out]}")
                kinds[out] = f"output of node '{node.name}'"
        for node in self.nodes:
            for inp in node.inputs:
                if inp not in kinds:
                    raise GraphError(f"node '{node.name}' ({node.op}): input '{inp}' is not a graph input, "
                                     f"parameter or node output")

        self.nodes = _topological(self.nodes, self.params, {t.name for t in self.inputs})

        for node in self.nodes:
            schema = OPS[node.op]
            in_specs = [tensors[i] for i in node.inputs]
            view = NodeView(node.name, node.op, node.attrs, [s.shape for s in in_specs], list(node.inputs))
            shapes = schema.infer(view)
            dtype = next((s.dtype for s in in_specs if s.name not in self.params), in_specs[0].dtype)
            if not dtype.startswith("float"):
                dtype = "float32"
            for out, shape in zip(node.outputs, shapes, strict=True):
                tensors[out] = TensorSpec(out, shape, dtype)
            node.macs = int(schema.macs(view, list(shapes)))
            used = [i for i in dict.fromkeys(node.inputs) if i in self.params]
            node.param_count = sum(int(self.params[p].size) for p in used)
            node.param_bytes = sum(int(self.params[p].nbytes) for p in used)

        if not isinstance(self.outputs, list) or not self.outputs:
            raise GraphError("graph outputs: at least one output tensor is required")
        for out in self.outputs:
            if out not in tensors:
                raise GraphError(f"graph output '{out}' is not a tensor of the graph")
        if len(set(self.outputs)) != len(self.outputs):
            raise GraphError(f"graph outputs {self.outputs} name a tensor twice")

        for tname, spec in self.quant.items():
            if tname not in tensors:
                raise GraphError(f"quant spec for '{tname}': no such tensor")
            if not isinstance(spec, QuantSpec):
                raise GraphError(f"quant spec for '{tname}' must be a QuantSpec, got {type(spec).__name__}")
            spec.check_tensor(tensors[tname].shape, f"quant spec for '{tname}'")
            if tname in self.params and self.params[tname].dtype.kind in "iu":
                spec.check_values(self.params[tname], f"parameter '{tname}'")
        for pname, arr in self.params.items():
            if arr.dtype.kind in "iu" and pname not in self.quant and _is_weight_like(self, pname):
                raise GraphError(f"parameter '{pname}' is an integer array ({arr.dtype}) "
                                 f"without a quant spec")

        if not isinstance(self.data, dict):
            raise GraphError("graph data must be a dict of data sets")
        for set_name, arrays in self.data.items():
            _check_name(set_name, "data set")
            if not isinstance(arrays, dict):
                raise GraphError(f"data set '{set_name}' must be a dict of arrays")
            for key, arr in arrays.items():
                _check_name(key, f"data set '{set_name}' array")
                if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
                    raise GraphError(f"data set '{set_name}' array '{key}' must be a numeric numpy array")
        try:
            json.dumps(self.metadata, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise GraphError(f"graph metadata must be JSON-serialisable: {exc}") from None
        self.tensors = tensors
        return self


def _is_weight_like(graph: Graph, pname: str) -> bool:
    # Integer parameters without a quant spec only make sense as weights/biases of a pre-quantized model
    # that forgot its spec; every input of every op is a numeric tensor, so flag them all.
    return any(pname in n.inputs for n in graph.nodes)


def _check_name(name: Any, what: str) -> None:
    if not isinstance(name, str) or not name:
        raise GraphError(f"{what} name must be a non-empty string, got {name!r}")


def _topological(nodes: list[Node], params: dict[str, np.ndarray], inputs: Iterable[str]) -> list[Node]:
    """Stable topological sort (Kahn's algorithm, ready nodes taken in their original order)."""
    produced_by = {out: i for i, n in enumerate(nodes) for out in n.outputs}
    deps: list[set[int]] = []
    users: list[list[int]] = [[] for _ in nodes]
    for i, n in enumerate(nodes):
        d = {produced_by[t] for t in n.inputs if t in produced_by}
        deps.append(d)
        for j in d:
            users[j].append(i)
    remaining = [len(d) for d in deps]
    ready = [i for i, r in enumerate(remaining) if r == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            remaining[u] -= 1
            if remaining[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        stuck = {i for i in range(len(nodes)) if remaining[i] > 0}
        cycle = _find_cycle(stuck, deps)
        names = " -> ".join(f"'{nodes[i].name}'" for i in cycle)
        raise GraphError(f"nodes form a cycle: {names}")
    return [nodes[i] for i in order]


def _find_cycle(stuck: set[int], deps: list[set[int]]) -> list[int]:
    start = min(stuck)
    path, seen, cur = [], {}, start
    while cur not in seen:
        seen[cur] = len(path)
        path.append(cur)
        cur = min(d for d in deps[cur] if d in stuck)
    cyc = path[seen[cur]:]
    cyc.reverse()  # producers first
    return cyc + [cyc[0]]
