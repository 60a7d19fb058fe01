"""hwsim's graph IR: Graph, Node, TensorSpec, op schemas, shape inference, validation and model.npz.

Layout conventions: activations NHWC; Conv2D weights OHWI ``[O, KH, KW, I/groups]`` (depthwise is a Conv2D
with ``groups == C``); Dense weights ``[out, in]`` with ``y = x @ W.T + b`` over the last axis. The file
format is described field by field in docs/format.md.
"""

from hwsim.graph.builder import GraphBuilder
from hwsim.graph.ir import ACTIVATION_DTYPES, PARAM_DTYPES, Graph, Node, TensorSpec
from hwsim.graph.npz import FORMAT_NAME, FORMAT_VERSION, load_model, save_model
from hwsim.graph.ops import OP_ALIASES, OPS, AttrSpec, OpSchema, broadcast_shapes, conv_out_size
from hwsim.graph.quant import QuantSpec

__all__ = [
    "ACTIVATION_DTYPES",
    "AttrSpec",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Graph",
    "GraphBuilder",
    "Node",
    "OPS",
    "OP_ALIASES",
    "OpSchema",
    "PARAM_DTYPES",
    "QuantSpec",
    "TensorSpec",
    "broadcast_shapes",
    "conv_out_size",
    "load_model",
    "save_model",
]
