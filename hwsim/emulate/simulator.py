"""Quantize a float graph for a target and run it bit-exactly on the integer core.

Two steps, both explicit:

1. :func:`quantize_for_target` folds BatchNorm, decides which activations fuse into their producer (the
   target's ``fuse`` lists), calibrates every activation tensor on calibration data with the target's
   observer, and quantizes weights and biases by the target's tensor roles. The result is a
   :class:`QuantizedModel`: the graph plus one :class:`ActQuant` per activation tensor and one
   :class:`LayerPlan` per node.
2. :func:`simulate` runs a :class:`QuantizedModel` on float inputs: the input is quantized with the target's
   quantize formula, every node runs the integer kernel the target names for its op kind (``_core``), and
   ops the target does not run in integer form (or hwsim has no integer kernel for yet) run as
   dequantize → float32 op → quantize, which the plan reports as a fallback.

Nothing here knows a target by name: every choice comes from the resolved :class:`hwsim.targets.Target`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from hwsim import _core
from hwsim.emulate import op_kernels
from hwsim.emulate.float_ref import KERNELS as FLOAT_KERNELS
from hwsim.emulate.float_ref import run_float
from hwsim.emulate.ref_depthwise import depthwise_tap_values, fbgemm_routes_depthwise
from hwsim.emulate.ref_gemm import im2col_nhwc
from hwsim.errors import HwsimError
from hwsim.graph import Graph, Node, QuantSpec
from hwsim.graph.quant import default_storage_dtype
from hwsim.quant import observers as obs
from hwsim.quant import scheme as qs
from hwsim.quant.bn_fold import fold_batchnorm
from hwsim.targets import OpImpl, Target, TensorRole

_WEIGHTED = ("Conv2D", "DepthwiseConv2D", "Dense")

# Activation and reduction kernels live in hwsim.emulate.op_kernels (prepare and run tables by kernel name).
_EXTRA_PREPARE, _EXTRA_RUN = op_kernels.PREPARE, op_kernels.RUN

# Kernels of the target schema that this simulator runs in integer form. Any other kernel named by a target
# runs as a float fallback and is reported as "no integer kernel in hwsim yet".
INTEGER_KERNELS = ("conv2d", "depthwise_conv2d", "fully_connected", "max_pool", "tflite_avg_pool",
                   "dpu_avg_pool", "tflite_add", "dpu_add", "mul", "concat", "clamp", "pad", "copy", "transpose",
                   "lut", *_EXTRA_RUN)


# ------------------------------------------------------------------------------------------------------
# Quantization of activation tensors


@dataclass(frozen=True)
class ActQuant:
    """How one activation tensor is held as integers: real = scale · (q − zero_point), q in [qmin, qmax]."""

    scale: float
    zero_point: int
    qmin: int
    qmax: int
    fix_pos: int | None = None
    bits: int = 8

    @property
    def dtype(self) -> np.dtype:
        """Smallest numpy integer type holding [qmin, qmax]."""
        for dt in (np.int8, np.uint8, np.int16, np.uint16):
            info = np.iinfo(dt)
            if info.min <= self.qmin and self.qmax <= info.max:
                return np.dtype(dt)
        return np.dtype(np.int32)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """float32 (q − zp)·s."""
        return ((q.astype(np.float32) - np.float32(self.zero_point)) * np.float32(self.scale)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        d = {"scale": self.scale, "zero_point": self.zero_point, "qmin": self.qmin, "qmax": self.qmax}
        if self.fix_pos is not None:
            d["fix_pos"] = self.fix_pos
        return d


@dataclass(frozen=True)
class LayerOverride:
    """A user's per-layer choice that overrides the target: run the node in float, or give its weights
    another bit width (the rest of the weight role unchanged)."""

    float: bool = False
    weight_bits: int | None = None

    def __post_init__(self) -> None:
        if self.weight_bits is not None and not 2 <= self.weight_bits <= 8:
            raise HwsimError(f"weight_bits: must be in [2, 8], got {self.weight_bits}")


def parse_overrides(data: Any, source: str = "overrides") -> dict[str, LayerOverride]:
    """Overrides from a mapping ``{node: {"float": bool, "weight_bits": int}}`` (a YAML file's content).

    Unknown keys and wrong types are errors naming ``source``, the node and the key.
    """
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HwsimError(f"{source}: expected a mapping of node names to settings, got {type(data).__name__}")
    out: dict[str, LayerOverride] = {}
    for node, settings in data.items():
        if not isinstance(settings, dict):
            raise HwsimError(f"{source}: {node}: expected a mapping with 'float' and/or 'weight_bits'")
        unknown = set(settings) - {"float", "weight_bits"}
        if unknown:
            raise HwsimError(f"{source}: {node}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                             "allowed: float, weight_bits")
        fl = settings.get("float", False)
        wb = settings.get("weight_bits")
        if not isinstance(fl, bool) or (wb is not None and (not isinstance(wb, int) or isinstance(wb, bool))):
            raise HwsimError(f"{source}: {node}: 'float' must be true/false and 'weight_bits' an integer")
        try:
            out[str(node)] = LayerOverride(fl, wb)
        except HwsimError as exc:
            raise HwsimError(f"{source}: {node}: {exc}") from None
    return out


def _rounding(name: str) -> _core.RoundingMode:
    return getattr(_core.RoundingMode, name)


def _role_range(role: TensorRole) -> tuple[int, int]:
    """Storage range of a role: what kernels saturate to (a reduced calibration range does not narrow it)."""
    return int(role.qmin), int(role.qmax)


def _scheme(role: TensorRole, *, axis: int | None = None) -> qs.QuantScheme:
    """The quantizer's scheme object for a target tensor role (hwsim.quant stays target-agnostic)."""
    granularity = role.granularity
    if granularity != "per_tensor" and axis is None:
        granularity = "per_tensor"
    rule = role.params_rule
    if role.scale_kind == "pow2" and rule not in ("pow2_diffs", "pow2_overflow_free"):
        rule = "pow2_diffs"
    return qs.QuantScheme(bits=role.bits, signed=role.signed, narrow=role.narrow, symmetric=role.symmetric,
                          granularity=granularity, axis=axis if granularity != "per_tensor" else None,
                          group_size=role.group_size if granularity == "per_group" else None,
                          scale_kind=role.scale_kind, rounding=role.rounding.lower(),
                          reduce_range=role.reduce_range, params_rule=rule)


def quantize_method(role: TensorRole) -> str:
    """The ``_core.quantize`` method of a role's quantize formula."""
    return _quantize_method(role)


def _quantize_method(role: TensorRole) -> str:
    # A power-of-two scale makes x / s, x · (1/s) and fma identical; multiply by the exact reciprocal.
    return "multiply_reciprocal" if role.quantize_formula == "pow2_exact" else role.quantize_formula


def quantize_tensor(x: np.ndarray, q: ActQuant, role: TensorRole) -> np.ndarray:
    """Float → integer codes of ``q`` with the role's rounding and quantize formula (the target's QUANTIZE)."""
    return _core.quantize(np.ascontiguousarray(x, dtype=np.float32), np.float32(q.scale), q.zero_point, q.qmin,
                          q.qmax, rounding=_rounding(role.rounding), method=_quantize_method(role),
                          precision="fp32", out_dtype=q.dtype)


# ------------------------------------------------------------------------------------------------------
# Plans


@dataclass
class LayerPlan:
    """What the simulator does for one node."""

    node: Node
    op_kind: str  # target op kind (Conv2D with groups == C is DepthwiseConv2D)
    impl: OpImpl
    mode: str  # "integer" | "fallback" | "fused"
    reason: str = ""  # why a fallback, or which node a fused activation went into
    fused_activation: Node | None = None
    output: str = ""  # tensor this plan writes (the fused activation's output for fused producers)
    consts: dict[str, Any] = field(default_factory=dict)

    @property
    def integer(self) -> bool:
        return self.mode == "integer"


@dataclass
class QuantizedModel:
    """A graph prepared for one target: activation quantization, integer weights and per-node plans."""

    graph: Graph  # BatchNorm folded
    target: Target
    act: dict[str, ActQuant]
    plans: list[LayerPlan]
    folded_batchnorms: list[tuple[str, str]]
    calibration_samples: int
    # Bound runners of the plans (simulate builds them on first use; the plans do not change afterwards).
    _runners: list | None = field(default=None, init=False, repr=False, compare=False)
    _dead_after: dict[int, list[str]] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def fallbacks(self) -> list[LayerPlan]:
        return [p for p in self.plans if p.mode == "fallback"]

    def to_graph(self) -> Graph:
        """This model as a pre-quantized graph (integer weights and biases, a spec on every tensor).

        Simulating the returned graph on the same target gives the same integers; saving it with
        :func:`hwsim.graph.save_model` freezes the quantization for golden tests or for another tool.
        """
        g = self.graph.copy()
        quant: dict[str, QuantSpec] = {}
        for name, a in self.act.items():
            quant[name] = _spec(a.bits, a.qmin < 0, [a.scale], [a.zero_point], None, a.fix_pos)
        for p in self.plans:
            c = p.consts
            if "w_int" not in c:
                continue
            w_name = p.node.inputs[1]
            b_name = p.node.inputs[2] if len(p.node.inputs) > 2 else f"{p.node.name}.bias_int"
            if len(p.node.inputs) < 3:
                p_node = next(n for n in g.nodes if n.name == p.node.name)
                p_node.inputs = [*p_node.inputs, b_name]
            g.params[w_name] = c["w_int"]
            b_bits = 32 if c.get("fix_pos_b") is None else self.target.numerics.bias.bits
            wide_bias = "bias_f" not in c and c["bias"].dtype == np.int64  # TFLite 16x8 int64 bias
            if "bias_f" in c:  # a float bias stays float (the target adds it in float)
                g.params[b_name] = c["bias_f"]
            elif wide_bias:
                # the IR's widest spec is 32 bits: an int64 bias keeps int64 storage and must fit int32
                if c["bias"].size and (c["bias"].min() < -(2**31) or c["bias"].max() > 2**31 - 1):
                    raise HwsimError(f"node '{p.node.name}': int64 bias outside the int32 range cannot be "
                                     "stored in a pre-quantized graph (32-bit specs)")
                g.params[b_name] = c["bias"].astype(np.int64)
            else:
                g.params[b_name] = c["bias"].astype(default_storage_dtype(b_bits, True))
            fw, fb = c.get("fix_pos_w"), c.get("fix_pos_b")
            x_scale = np.float32(self.act[p.node.inputs[0]].scale)
            w_bits = c.get("weight_bits", self.target.numerics.weights.bits)
            if fw is None:
                per_channel = c.get("w_per_channel", True)
                w_scales = c["w_scale"] if per_channel else c["w_scale"][:1]
                quant[w_name] = _spec(w_bits, True, w_scales, np.zeros(w_scales.size, np.int64),
                                      0 if per_channel else None, None)
                if "bias_f" not in c:
                    quant[b_name] = _spec(32, True, (x_scale * c["w_scale"]).astype(np.float32),
                                          np.zeros(c["w_scale"].size, np.int64), 0, None,
                                          dtype="int64" if wide_bias else None)
            else:
                quant[w_name] = _spec(w_bits, True, [2.0**-fw], [0], None, fw)
                quant[b_name] = _spec(b_bits, True, [2.0**-fb], [0], None, fb)
        for p in self.plans:  # a fused producer's own output carries the activation's spec
            if p.fused_activation is not None:
                quant[p.node.outputs[0]] = quant[p.output]
        return Graph(g.name, g.inputs, g.outputs, g.nodes, g.params, quant, g.data, g.metadata)


def _spec(bits: int, signed: bool, scale, zero_point, axis: int | None, fix_pos: int | None,
          dtype: str | None = None) -> QuantSpec:
    return QuantSpec(bits=bits, signed=signed, scale=np.asarray(scale, np.float32).ravel(),
                     zero_point=np.asarray(zero_point, np.int64).ravel(), axis=axis,
                     scale_kind="float" if fix_pos is None else "pow2",
                     fix_pos=None if fix_pos is None else np.array([fix_pos], np.int64), dtype=dtype)


def op_kind_of(graph: Graph, node: Node) -> str:
    """The target op kind of a node: a Conv2D whose groups equal its input channels is DepthwiseConv2D."""
    if node.op == "Conv2D":
        cin = graph.tensors[node.inputs[0]].shape[-1]
        if node.attrs.get("groups", 1) == cin and cin > 1:
            return "DepthwiseConv2D"
    return node.op


def _sole_consumer(graph: Graph, tensor: str) -> Node | None:
    users = graph.consumers(tensor)
    if len(users) == 1 and tensor not in graph.outputs:
        return users[0]
    return None


def _observer(target: Target, name_override: str | None):
    cal = target.numerics.calibration
    name = name_override or cal.observer
    act = target.numerics.activations
    if name in ("minmax", "moving_average_minmax"):
        return obs.MinMaxObserver()
    if name == "percentile":
        return obs.PercentileObserver(cal.percentile, symmetric=act.symmetric)
    if name == "mse":
        return obs.MSEObserver(bits=act.bits, signed=act.signed, symmetric=act.symmetric)
    if name in ("kl", "entropy", "histogram"):
        return obs.KLObserver()
    if name in ("pow2_diffs", "pow2_overflow_free"):
        return _Pow2History(act, cal, scope=1 if name == "pow2_overflow_free" else cal.fix_pos_scope)
    raise HwsimError(f"calibration: unknown observer {name!r}; allowed: minmax, percentile, mse, kl, pow2_diffs")


class _Pow2History:
    """vai_q's activation fix_pos: the diffs search per calibration batch, then the mode (numerics C.3)."""

    def __init__(self, role: TensorRole, cal, scope: int) -> None:
        self.role, self.cal, self.scope = role, cal, scope
        self.history: list[int] = []

    def update(self, batch: np.ndarray) -> None:
        self.history.append(qs.pow2_fix_pos_diffs(batch, self.role.bits, self.role.rounding.lower(), self.scope,
                                                  self.cal.fix_pos_max))

    def fix_pos(self) -> int:
        return qs.pow2_fix_pos_mode(self.history)


def _act_from_observer(o, role: TensorRole) -> ActQuant:
    if isinstance(o, _Pow2History):
        p = o.fix_pos()
        lo, hi = _role_range(role)
        return ActQuant(float(np.ldexp(np.float32(1.0), -p)), 0, lo, hi, fix_pos=p, bits=role.bits)
    lo, hi = o.range()
    params = qs.params_from_range(_scheme(role), lo, hi)
    qmin, qmax = _role_range(role)
    return ActQuant(float(np.float32(params.scale.ravel()[0])), int(params.zero_point.ravel()[0]), qmin, qmax,
                    bits=role.bits)


def graph_batch_limit(graph: Graph) -> int | None:
    """The batch size a graph is fixed to, or None when it runs at any batch size.

    A Reshape whose target shape fixes the first dimension (not 0 or -1) ties the graph to the batch size
    of its declared input.
    """
    for node in graph.nodes:
        if node.op == "Reshape" and node.attrs["shape"] and node.attrs["shape"][0] not in (0, -1):
            return int(graph.inputs[0].shape[0])
    return None


def _batches(x: np.ndarray, batch: int) -> Iterable[np.ndarray]:
    for i in range(0, x.shape[0], batch):
        yield x[i:i + batch]


def quantize_for_target(graph: Graph, target: Target, calibration: np.ndarray | None = None, *,
                        observer: str | None = None, overrides: dict[str, LayerOverride] | None = None,
                        batch_size: int = 16, progress: Callable[[int], None] | None = None) -> QuantizedModel:
    """Prepare ``graph`` for ``target``: static quantization of a float model, or a pre-quantized model as is.

    A pre-quantized graph (quantization specs on its tensors, integer weights; the contract is in
    docs/format.md, "Pre-quantized models") keeps its scales, zero points and integers: nothing is
    calibrated, and only the target's requantization constants are derived from the scales.

    Parameters
    ----------
    graph : Graph
        A float model, or a pre-quantized one.
    target : Target
        Resolved target; its numerics choose observers, parameter rules, rounding and kernels.
    calibration : numpy.ndarray
        Calibration inputs for the graph's single input, batch first.
    observer : str, optional
        Override of the target's activation observer (``minmax``, ``percentile``, ``mse``, ``kl``,
        ``pow2_diffs``).
    overrides : dict, optional
        Per-node :class:`LayerOverride` (run in float, or another weight bit width).
    batch_size : int
        Calibration batch size (pow2 targets take the mode of per-batch positions, so this matters there).
    progress : callable, optional
        Called with the number of samples processed after each batch.
    """
    if graph.quant:
        if overrides:
            raise HwsimError(f"model '{graph.name}': per-layer overrides apply when hwsim quantizes a float model")
        return _from_prequantized(graph, target)
    if len(graph.inputs) != 1:
        raise HwsimError(f"model '{graph.name}': hwsim run needs a single-input graph, got "
                         f"{len(graph.inputs)} inputs")
    if calibration is None:
        raise HwsimError(f"model '{graph.name}': a float model needs calibration data")
    calibration = np.asarray(calibration, dtype=np.float32)
    if calibration.ndim == 0 or calibration.shape[0] == 0:
        raise HwsimError("calibration: no calibration samples")
    g, fold = fold_batchnorm(graph)
    plans = _make_plans(g, target, overrides)
    act_role = target.numerics.activations

    # Which tensors need observed ranges: graph input and every output written by a plan that sets its
    # own output parameters.
    observed: dict[str, Any] = {g.inputs[0].name: _observer(target, observer)}
    if isinstance(observed[g.inputs[0].name], _Pow2History):
        observed[g.inputs[0].name].scope = target.numerics.calibration.input_fix_pos_scope
    for p in plans:
        if p.mode != "fused" and not _output_follows_input(p):
            observed[p.output] = _observer(target, observer)
    done = 0
    batch_size = min(batch_size, graph_batch_limit(g) or batch_size)
    for xb in _batches(calibration, batch_size):
        values = run_float(g, {g.inputs[0].name: xb}, keep_intermediates=True)
        for t, o in observed.items():
            o.update(values[t])
        done += xb.shape[0]
        if progress is not None:
            progress(done)

    act: dict[str, ActQuant] = {t: _act_from_observer(o, act_role) for t, o in observed.items()}
    return _finish(g, target, plans, act, fold.folded, int(calibration.shape[0]))


def _finish(g: Graph, target: Target, plans: list[LayerPlan], act: dict[str, ActQuant],
            folded: list[tuple[str, str]], samples: int) -> QuantizedModel:
    """Complete activation parameters that follow their input, then derive every layer's integer constants."""
    for p in plans:
        if p.mode != "fused" and _output_follows_input(p):
            act[p.output] = _fixed_or_same(p, act)
    for p in plans:
        if p.mode == "integer" and p.op_kind in _WEIGHTED:
            _prepare_weighted(g, target, p, act)
        elif p.mode == "integer":
            _prepare_other(g, target, p, act)
    return QuantizedModel(g, target, act, plans, folded, samples)


@dataclass(frozen=True)
class ParamChange:
    """How one tensor's quantization changed when a pre-quantized model was mapped onto another target."""

    tensor: str
    role: str  # "activation" | "weight"
    old_bits: int
    new_bits: int
    old_scale: float  # largest scale of the tensor (per-channel: the max over channels)
    new_scale: float
    old_zero_point: int
    new_zero_point: int
    old_range: tuple[float, float]  # real range the integers can represent
    new_range: tuple[float, float]

    @property
    def scale_ratio(self) -> float:
        return self.new_scale / self.old_scale if self.old_scale else float("inf")

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("tensor", "role", "old_bits", "new_bits", "old_scale", "new_scale",
                                           "old_zero_point", "new_zero_point")}
        d.update(old_range=list(self.old_range), new_range=list(self.new_range), scale_ratio=self.scale_ratio)
        return d


def requantize_for_target(graph: Graph, target: Target) -> tuple[QuantizedModel, list[ParamChange]]:
    """Map a pre-quantized model onto ``target``'s quantization rules, keeping its real ranges.

    The model's integers are dequantized with its own scales; each activation tensor keeps the real range its
    integers could represent, [s·(qmin − zp), s·(qmax − zp)], which the target's parameter rule turns into the
    target's scheme (for example a power-of-two position for the DPU, u8 with a zero point for Intel); weights
    are re-quantized from their dequantized values by the target's weight role. Nothing is calibrated. Returns
    the model ready for :func:`simulate` and, per tensor, what had to change.
    """
    if not graph.quant:
        raise HwsimError(f"model '{graph.name}': has no quantization parameters to map; quantize it with "
                         "calibration data instead")
    g = graph.copy()
    changes: list[ParamChange] = []
    w_role, a_role = target.numerics.weights, target.numerics.activations
    for name, spec in graph.quant.items():
        if name not in g.params:
            continue
        arr = g.params[name]
        if arr.dtype.kind in "iu":
            g.params[name] = spec.dequantize(arr).astype(np.float32)
    float_graph = Graph(g.name, g.inputs, g.outputs, g.nodes, g.params, {}, g.data, g.metadata)
    plans = _make_plans(float_graph, target)
    act: dict[str, ActQuant] = {}
    wanted = [i.name for i in float_graph.inputs] + [p.output for p in plans if p.mode != "fused"
                                                        and not _output_follows_input(p)]
    for t in wanted:
        spec = graph.quant.get(t)
        if spec is None:
            raise HwsimError(f"model '{graph.name}': tensor '{t}' has no quantization parameters, so its range "
                             "is unknown")
        s = float(np.ravel(spec.scale)[0])
        zp = int(np.ravel(spec.zero_point)[0])
        lo, hi = s * (spec.qmin - zp), s * (spec.qmax - zp)
        new = _act_from_range(a_role, lo, hi)
        act[t] = new
        changes.append(ParamChange(t, "activation", spec.bits, new.bits, s, new.scale, zp, new.zero_point,
                                   (lo, hi), (new.scale * (new.qmin - new.zero_point),
                                              new.scale * (new.qmax - new.zero_point))))
    model = _finish(float_graph, target, plans, act, [], 0)
    for p in model.plans:
        if "w_int" not in p.consts:
            continue
        w_name = p.node.inputs[1]
        spec = graph.quant.get(w_name)
        if spec is None:
            continue
        old_scale = float(np.max(spec.scale))
        new_scale = float(np.max(p.consts["w_scale"])) if "fix_pos_w" not in p.consts else 2.0 ** -p.consts["fix_pos_w"]
        w = float_graph.params[w_name]
        amax = float(np.max(np.abs(w)))
        changes.append(ParamChange(w_name, "weight", spec.bits, w_role.bits, old_scale, new_scale, 0, 0,
                                   (-amax, amax), (new_scale * w_role.qmin, new_scale * w_role.qmax)))
    return model, changes


def _act_from_range(role: TensorRole, lo: float, hi: float) -> ActQuant:
    qmin, qmax = _role_range(role)
    if role.scale_kind == "pow2":
        p = int(qs.pow2_fix_pos_overflow_free(lo, hi, role.bits)[0])
        return ActQuant(float(np.ldexp(np.float32(1.0), -p)), 0, qmin, qmax, fix_pos=p, bits=role.bits)
    params = qs.params_from_range(_scheme(role), lo, hi)
    return ActQuant(float(np.float32(params.scale.ravel()[0])), int(params.zero_point.ravel()[0]), qmin, qmax,
                    bits=role.bits)


def _act_from_spec(graph: Graph, tensor: str, role: TensorRole) -> ActQuant:
    spec = graph.quant[tensor]
    if spec.axis is not None or np.size(spec.scale) != 1:
        raise HwsimError(f"tensor '{tensor}': per-channel activation quantization is not supported")
    fix_pos = None
    if spec.scale_kind == "pow2":
        fix_pos = int(np.ravel(spec.fix_pos)[0])
    lo, hi = spec.qmin, spec.qmax
    return ActQuant(float(np.float32(np.ravel(spec.scale)[0])), int(np.ravel(spec.zero_point)[0]), int(lo), int(hi),
                    fix_pos, spec.bits)


def _from_prequantized(graph: Graph, target: Target) -> QuantizedModel:
    """A QuantizedModel that uses the graph's own quantization specs and integer parameters."""
    g = graph
    plans = _make_plans(g, target)
    role = target.numerics.activations
    act: dict[str, ActQuant] = {}
    for t in [i.name for i in g.inputs] + [p.output for p in plans if p.mode != "fused"]:
        if t in g.quant:
            act[t] = _act_from_spec(g, t, role)
    for p in plans:
        if p.mode == "fused" or p.output in act:
            continue
        if _output_follows_input(p) and p.node.inputs[0] in act:
            act[p.output] = _fixed_or_same(p, act)
        else:
            raise HwsimError(f"model '{g.name}': tensor '{p.output}' (output of node '{p.node.name}') has no "
                             "quantization parameters")
    for t in [i.name for i in g.inputs]:
        if t not in act:
            raise HwsimError(f"model '{g.name}': input '{t}' has no quantization parameters")
    for p in plans:
        if p.mode == "integer" and p.op_kind in _WEIGHTED:
            _prepare_weighted(g, target, p, act)
        elif p.mode == "integer":
            _prepare_other(g, target, p, act)
    return QuantizedModel(g, target, act, plans, [], 0)


def _output_follows_input(p: LayerPlan) -> bool:
    op = p.impl.output_params
    if p.mode == "integer" and op is not None and (op.same_as_input or op.scale is not None):
        return True
    return p.mode == "integer" and p.impl.kernel in ("copy", "transpose", "pad")


def _fixed_or_same(p: LayerPlan, act: dict[str, ActQuant]) -> ActQuant:
    src = act[p.node.inputs[0]]
    op = p.impl.output_params
    if op is not None and op.scale is not None:
        return ActQuant(float(op.scale), int(op.zero_point or 0), src.qmin, src.qmax, bits=src.bits)
    return src


def _make_plans(g: Graph, target: Target, overrides: dict[str, LayerOverride] | None = None) -> list[LayerPlan]:
    overrides = overrides or {}
    unknown = sorted(set(overrides) - {n.name for n in g.nodes})
    if unknown:
        raise HwsimError(f"overrides: no node named {', '.join(map(repr, unknown))} in model '{g.name}'")
    plans: list[LayerPlan] = []
    fused_into: dict[str, LayerPlan] = {}
    for node in g.nodes:
        kind = op_kind_of(g, node)
        impl = target.op(kind)
        if node.name in fused_into:
            producer = fused_into[node.name]
            plans.append(LayerPlan(node, kind, impl, "fused", reason=f"fused into '{producer.node.name}'",
                                   output=node.outputs[0]))
            continue
        if impl.kernel is None or impl.kernel == "float32":
            mode, reason = "fallback", f"target runs {kind} as {impl.fallback or 'float'}"
        elif impl.kernel not in INTEGER_KERNELS:
            mode, reason = "fallback", f"hwsim has no integer kernel '{impl.kernel}' yet (float32 instead)"
        else:
            mode, reason = "integer", ""
        ov = overrides.get(node.name)
        if ov is not None and ov.float:
            mode, reason = "fallback", "excluded to float by a per-layer override"
        plan = LayerPlan(node, kind, impl, mode, reason, output=node.outputs[0])
        if ov is not None and ov.weight_bits is not None:
            if kind not in _WEIGHTED:
                raise HwsimError(f"overrides: {node.name}: weight_bits applies to Conv2D/Dense layers, not {kind}")
            plan.consts["weight_bits"] = ov.weight_bits
        if mode == "integer" and kind in _WEIGHTED:
            user = _sole_consumer(g, node.outputs[0])
            if user is not None and user.op in impl.fuse and _fusable(user) and _same_spec(g, node.outputs[0],
                                                                                        user.outputs[0]):
                plan.fused_activation = user
                plan.output = user.outputs[0]
                fused_into[user.name] = plan
        plans.append(plan)
    return plans


def _same_spec(g: Graph, producer_out: str, activation_out: str) -> bool:
    """A pre-quantized producer whose output has quantization of its own rounds twice in the source model
    (once to its own grid, once to the activation's), so it must not be fused into a single rounding."""
    own = g.quant.get(producer_out)
    if own is None:
        return True
    act = g.quant.get(activation_out)
    return act is not None and (np.array_equal(np.ravel(own.scale), np.ravel(act.scale))
                                and np.array_equal(np.ravel(own.zero_point), np.ravel(act.zero_point))
                                and own.bits == act.bits and own.signed == act.signed)


def _fusable(node: Node) -> bool:
    # Only activations that are a clamp (or the DPU's 26/256 leaky slope) fuse into the requantization.
    if node.op in ("ReLU", "ReLU6"):
        return True
    return node.op == "LeakyReLU" and abs(node.attrs.get("alpha", 0.0) - 26 / 256) < 1e-6


# ------------------------------------------------------------------------------------------------------
# Weights, biases and requantization constants


def _quantize_weight(w: np.ndarray, role: TensorRole, axis: int | None) -> tuple[np.ndarray, qs.QuantParams]:
    sch = _scheme(role, axis=axis)
    params = qs.params_from_tensor(sch, w)
    lo, hi = params.qmin, params.qmax
    scale = params.scale.astype(np.float32)
    if params.axis is None:
        q = _core.quantize(np.ascontiguousarray(w, np.float32), np.float32(scale.ravel()[0]),
                           int(params.zero_point.ravel()[0]), lo, hi, rounding=_rounding(role.rounding),
                           method=_quantize_method(role), precision="fp32", out_dtype=np.int8)
    else:
        q = _core.quantize(np.ascontiguousarray(w, np.float32), scale, params.zero_point.astype(np.int64), lo, hi,
                           axis=params.axis, rounding=_rounding(role.rounding), method=_quantize_method(role),
                           precision="fp32", out_dtype=np.int8)
    return q, params


def _activation_bounds(p: LayerPlan, out: ActQuant) -> tuple[int, int]:
    """Clamp bounds after requantization: the output range narrowed by a fused ReLU/ReLU6.

    act_min = max(qmin, zp), act_max = min(qmax, zp + round(6 / s)) with the division in float32 and the
    target's bound rounding (TFLite CalculateActivationRangeQuantized, numerics A.1).
    """
    lo, hi = out.qmin, out.qmax
    act = p.fused_activation
    if act is None:
        return lo, hi
    if act.op in ("ReLU", "ReLU6"):
        lo = max(lo, out.zero_point)
    if act.op == "ReLU6":
        hi = min(hi, out.zero_point + _rounded_bound(6.0, out, p.impl.params.get("bound_rounding")))
    return lo, hi


def _rounded_bound(value: float, q: ActQuant, rounding: str | None) -> int:
    ratio = np.float32(value) / np.float32(q.scale)
    return int(_core.round_float(np.array([ratio], np.float64), _rounding(rounding or "HALF_AWAY_FROM_ZERO"))[0])


def _given_weights(g: Graph, node: Node, p: LayerPlan, x_q: ActQuant, scheme: str, bias_bits: int = 32) -> None:
    """Weights, bias and (for power-of-two scales) shifts of a pre-quantized layer, taken as they are."""
    c = p.consts
    w_name = node.inputs[1]
    spec = g.quant[w_name]
    w = g.params[w_name]
    if w.dtype.kind not in "iu" or np.any(np.ravel(spec.zero_point) != 0):
        raise HwsimError(f"node '{node.name}': weight '{w_name}' must be integer and symmetric (zero point 0)")
    if spec.axis not in (None, 0) or spec.group_size is not None:
        raise HwsimError(f"node '{node.name}': weight '{w_name}' must be per-tensor or per output channel (axis 0)")
    if w.min() < -128 or w.max() > 127:
        raise HwsimError(f"node '{node.name}': weight '{w_name}' holds values outside int8")
    c["w_int"] = np.ascontiguousarray(w, dtype=np.int8)
    c["w_scale"] = np.broadcast_to(np.asarray(spec.scale, np.float32).ravel(), (w.shape[0],)).copy()
    b_name = node.inputs[2] if len(node.inputs) > 2 else None
    rp = dict(p.impl.requant.params) if p.impl.requant is not None else {}
    if b_name is not None and b_name not in g.quant:
        if rp.get("bias_stage") != "float_in_accumulator_units" or g.params[b_name].dtype.kind != "f":
            raise HwsimError(f"node '{node.name}': bias '{b_name}' of a pre-quantized layer must be integer with a "
                             "quantization spec (a float bias only where the target adds it in float)")
        # fbgemm's float bias, added in accumulator units before the multiply (numerics B.2)
        c["bias_f"] = g.params[b_name].astype(np.float32)
        c["w_per_channel"] = spec.axis is not None
        b_name = None
    bias = g.params[b_name].astype(np.int64) if b_name is not None else np.zeros(w.shape[0], np.int64)
    if scheme == "pow2_shift":
        if spec.scale_kind != "pow2" or x_q.fix_pos is None:
            raise HwsimError(f"node '{node.name}': a power-of-two target needs power-of-two scales on the input "
                             "and weights of this layer; map the model onto the target with --requantize "
                             "(requantize_for_target)")
        p_w = int(np.ravel(spec.fix_pos)[0])
        c["fix_pos_w"] = p_w
        b_spec = g.quant.get(b_name) if b_name else None
        p_b = int(np.ravel(b_spec.fix_pos)[0]) if b_spec is not None and b_spec.fix_pos is not None else x_q.fix_pos + p_w
        c["fix_pos_b"] = p_b
        c["shift_bias"] = x_q.fix_pos + p_w - p_b
    if p.impl.requant is not None and bias_bits > 32:  # TFLite 16x8: int64 bias (numerics A.1), as stored
        c["bias"] = bias.astype(np.int64)
    else:
        c["bias"] = np.clip(bias, -(2**31), 2**31 - 1).astype(np.int32)


def _prepare_weighted(g: Graph, target: Target, p: LayerPlan, act: dict[str, ActQuant]) -> None:
    node = p.node
    x_q = act[node.inputs[0]]
    y_q = act[p.output]
    w_name = node.inputs[1]
    w = g.params[w_name]
    b_name = node.inputs[2] if len(node.inputs) > 2 else None
    w_role = target.numerics.weights
    scheme = p.impl.requant.scheme if p.impl.requant is not None else "none"
    c = p.consts
    c["act_min"], c["act_max"] = _activation_bounds(p, y_q)
    if w_name in g.quant:  # pre-quantized: the model's own integers and scales
        _given_weights(g, node, p, x_q, scheme, target.numerics.bias.bits)
    else:
        b = g.params[b_name] if b_name is not None else np.zeros(w.shape[0], np.float32)
        if "weight_bits" in c:
            w_role = replace(w_role, bits=c["weight_bits"])
        w_int, w_params = _quantize_weight(w, w_role, axis=0)
        c["w_int"] = w_int
        c["w_scale"] = np.broadcast_to(w_params.scale.astype(np.float32), (w.shape[0],)).copy()
    if scheme == "pow2_shift" and "bias" in c:  # given power-of-two integers (C.4)
        if y_q.fix_pos is None:
            raise HwsimError(f"node '{node.name}': a power-of-two target needs a power-of-two output scale")
        c["shift_cut"] = x_q.fix_pos + c["fix_pos_w"] - y_q.fix_pos
    elif scheme == "pow2_shift":
        w_fix = np.broadcast_to(w_params.fix_pos, (w.shape[0],))
        if np.unique(w_fix).size != 1:
            raise HwsimError(f"node '{node.name}': per-channel power-of-two weights are not supported")
        p_w = int(w_fix[0])
        prm = p.impl.requant.params
        shift_cut = x_q.fix_pos + p_w - y_q.fix_pos
        if shift_cut > prm.get("shift_cut_max", 16):  # too large: lower the weight position (C.4)
            p_w -= shift_cut - prm.get("shift_cut_max", 16)
            w_int = _core.quantize(np.ascontiguousarray(w, np.float32), np.float32(2.0 ** -p_w), 0, w_params.qmin,
                                   w_params.qmax, rounding=_rounding(w_role.rounding),
                                   method="multiply_reciprocal", out_dtype=np.int8)
            c["w_int"] = w_int
            shift_cut = x_q.fix_pos + p_w - y_q.fix_pos
        b_role = target.numerics.bias
        p_b = qs.pow2_fix_pos_diffs(b, b_role.bits, b_role.rounding.lower(), 5, target.numerics.calibration.fix_pos_max)
        shift_bias = x_q.fix_pos + p_w - p_b
        lo_sb = min(0, shift_cut + prm.get("shift_bias_min_offset", -16))
        shift_bias = int(np.clip(shift_bias, lo_sb, prm.get("shift_bias_max", 16)))
        p_b = x_q.fix_pos + p_w - shift_bias
        blo, bhi = _role_range(b_role)
        c["bias"] = _core.quantize(np.ascontiguousarray(b, np.float32), np.float32(2.0 ** -p_b), 0, blo, bhi,
                                   rounding=_rounding(b_role.rounding), method="multiply_reciprocal",
                                   out_dtype=np.int32)
        c.update(shift_cut=int(shift_cut), shift_bias=int(shift_bias), fix_pos_w=p_w, fix_pos_b=p_b)
    else:
        rp0 = dict(p.impl.requant.params) if p.impl.requant is not None else {}
        if "bias_f" not in c and "bias" not in c and rp0.get("bias_stage") == "float_in_accumulator_units":
            # fbgemm adds a float bias in accumulator units before the multiply (numerics B.2, B.3)
            c["bias_f"] = b.astype(np.float32)
            c["w_per_channel"] = w_role.granularity == "per_channel"
        if "bias" not in c:
            # int32 bias with scale s_in · s_w[c] (float32 product), rounded by the bias role (A.1, B.5). With a
            # float bias (bias_f) this rounded copy only serves reports and vectors; the simulation uses bias_f.
            bias_scale = (np.float32(x_q.scale) * c["w_scale"]).astype(np.float32)
            b_role = target.numerics.bias
            q = _core.round_float((b.astype(np.float64) / bias_scale.astype(np.float64)), _rounding(b_role.rounding))
            if b_role.bits > 32:  # int64 bias of TFLite 16x8 (numerics A.1)
                c["bias"] = np.clip(q, -(2.0**63), 2.0**63 - 1024).astype(np.int64)
            else:
                c["bias"] = np.clip(q, -(2**31), 2**31 - 1).astype(np.int32)
        rp = dict(p.impl.requant.params) if p.impl.requant is not None else {}
        if scheme == "float_scale":
            if rp.get("scale_precision", "float32") == "float32":
                mult = (np.float32(x_q.scale) * c["w_scale"] / np.float32(y_q.scale)).astype(np.float32)
            else:
                mult = (np.float64(x_q.scale) * c["w_scale"].astype(np.float64) / np.float64(y_q.scale))
            c["multiplier"] = mult
        elif scheme in ("fixed_point_double", "fixed_point_single", "fixed_point_int64"):
            real = (np.float64(np.float32(x_q.scale)) * c["w_scale"].astype(np.float64)
                    / np.float64(np.float32(y_q.scale)))
            # the int64 overload takes QuantizeMultiplier's ordinary (M, e) and reduces M itself (A.3)
            single = scheme == "fixed_point_single"
            ms = [_core.quantize_multiplier(float(r), single_rounding=single) for r in real]
            c["M"] = np.array([m for m, _ in ms], np.int32)
            c["shift"] = np.array([s for _, s in ms], np.int32)
        else:
            raise HwsimError(f"target {target.name}: requantization scheme {scheme!r} for {p.op_kind} is not "
                             "simulated yet")
    c["x_zero_point"] = x_q.zero_point
    # Pack the weights once for the GEMM engine (the layout its SIMD kernels read); w_int stays for reports.
    if p.op_kind == "Conv2D":
        c["w_packed"] = _core.pack_conv_weights(c["w_int"], groups=node.attrs.get("groups", 1))
    elif p.op_kind == "Dense":
        c["w_packed"] = _core.pack_weights(np.ascontiguousarray(c["w_int"]))
    else:
        c["w_int_contiguous"] = np.ascontiguousarray(c["w_int"])
    fused = _fused_requant_args(p, y_q)
    if fused is not None:
        c["fused_requant"] = fused


def _prepare_other(g: Graph, target: Target, p: LayerPlan, act: dict[str, ActQuant]) -> None:
    node, c = p.node, p.consts
    k = p.impl.kernel
    if k in _EXTRA_PREPARE:
        _EXTRA_PREPARE[k](g, target, p, act)
        return
    x_q = act[node.inputs[0]]
    y_q = act[p.output]
    if k == "tflite_add":
        a_q, b_q = act[node.inputs[0]], act[node.inputs[1]]
        c["params"] = _core_tflite_add_params(a_q, b_q, y_q, left_shift=int(p.impl.params.get("left_shift", 20)))
    elif k == "mul":
        a_q, b_q = act[node.inputs[0]], act[node.inputs[1]] if node.inputs[1] in act else None
        if b_q is None:
            p.mode, p.reason = "fallback", "multiplication by a constant parameter (float32 instead)"
            return
        scheme = p.impl.requant.scheme if p.impl.requant is not None else "none"
        if scheme in ("fixed_point_double", "fixed_point_single"):
            from hwsim import numerics

            # s1 * s2 / s_out in double (TFLM, the default) or in float32 (the target's scale_precision)
            fp32 = dict(p.impl.requant.params).get("scale_precision", "float64") == "float32"
            c["params"] = numerics.tflite_mul_params(np.float32(a_q.scale), a_q.zero_point, np.float32(b_q.scale),
                                                     b_q.zero_point, np.float32(y_q.scale), y_q.zero_point,
                                                     scale_precision="fp32" if fp32 else "fp64")
            c["rounding"] = "single" if scheme == "fixed_point_single" else "double"
        elif scheme == "float_scale":
            # XNNPACK: float32(product) · float32(s_a·s_b/s_out), clamp in float, RNE, + zp (measured on all
            # int8 pairs, tests/oracle/test_tflite_oracle.py::test_mul_all_pairs)
            c["scale"] = np.float32(float(np.float32(a_q.scale)) * float(np.float32(b_q.scale))
                                    / float(np.float32(y_q.scale)))
        elif scheme == "pow2_shift" and None not in (a_q.fix_pos, b_q.fix_pos, y_q.fix_pos):
            c["shift"] = a_q.fix_pos + b_q.fix_pos - y_q.fix_pos
        else:
            p.mode, p.reason = "fallback", f"no integer multiplication for requantization '{scheme}' (float32 instead)"
    elif k == "clamp":
        lo, hi = y_q.qmin, y_q.qmax
        if node.op in ("ReLU", "ReLU6"):
            lo = max(lo, y_q.zero_point)
        if node.op == "ReLU6":
            hi = min(hi, y_q.zero_point + _rounded_bound(6.0, y_q, p.impl.params.get("bound_rounding")))
        c["bounds"] = (lo, hi)
        if (x_q.scale, x_q.zero_point) != (y_q.scale, y_q.zero_point):
            p.mode, p.reason = "fallback", "standalone activation with its own output scale (float32 instead)"


def _core_tflite_add_params(a: ActQuant, b: ActQuant, y: ActQuant, left_shift: int = 20) -> dict[str, Any]:
    from hwsim import numerics

    # left_shift: 20 for 8-bit ADD, 15 for the general int16 ADD (numerics A.5)
    return numerics.tflite_add_params(np.float32(a.scale), a.zero_point, np.float32(b.scale), b.zero_point,
                                      np.float32(y.scale), y.zero_point, left_shift=left_shift)


# ------------------------------------------------------------------------------------------------------
# Execution


@dataclass
class SimulationResult:
    """Integer tensors (every kept tensor) and the dequantized graph outputs."""

    integers: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]


def simulate(model: QuantizedModel, x: np.ndarray, *, keep_intermediates: bool = True,
             threads: int | _core.Workers = 1) -> SimulationResult:
    """Run ``model`` on float input ``x`` (batch first) with the target's integer arithmetic.

    Every tensor is an integer array in the codes of its :class:`ActQuant`; tensors are dropped as soon as
    no later node reads them unless ``keep_intermediates``. ``threads``: a thread count (a pool of that
    many workers lives for this call) or a caller-owned ``hwsim._core.Workers`` pool, which an inference
    loop creates once (starting and joining the threads costs about as much as a small layer). The
    integers never depend on it.
    """
    g, tgt = model.graph, model.target
    x = np.asarray(x, dtype=np.float32)
    in_name = g.inputs[0].name
    expect = tuple(g.inputs[0].shape[1:])
    if tuple(x.shape[1:]) != expect:
        raise HwsimError(f"input '{in_name}': expected shape (N, {', '.join(map(str, expect))}), got {x.shape}")
    role = tgt.numerics.activations
    ints: dict[str, np.ndarray] = {in_name: quantize_tensor(x, model.act[in_name], role)}
    dead_after = {} if keep_intermediates else _dead_after(model)
    if isinstance(threads, _core.Workers):
        pool, threads = threads, threads.threads
    else:
        # One pool of worker threads for the whole inference: starting threads per layer costs more than a
        # small layer (the pool's threads end with it, at the end of this call).
        pool = _core.Workers(threads) if threads > 1 else None
    for i, (p, run) in enumerate(zip(model.plans, _bound_runners(model))):
        if run is None:  # fused into its producer
            continue
        ints[p.output] = run(ints, threads, pool)
        for t in dead_after.get(i, ()):
            ints.pop(t, None)
    outputs = {o: model.act[o].dequantize(ints[o]) for o in g.outputs}
    return SimulationResult(ints, outputs)


def in_batches(graph: Graph, x: np.ndarray, fn: Callable[[np.ndarray], dict[str, np.ndarray]],
               progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """``fn`` over the batches of ``x`` that ``graph`` accepts (graph_batch_limit), every tensor concatenated
    along the batch; ``progress(done)`` after each batch."""
    chunk = graph_batch_limit(graph) or max(len(x), 1)
    parts = []
    for start in range(0, len(x), chunk):
        parts.append(fn(x[start:start + chunk]))
        if progress is not None:
            progress(min(start + chunk, len(x)))
    return {t: np.concatenate([part[t] for part in parts]) for t in parts[0]}


def simulate_all(model: QuantizedModel, x: np.ndarray, *, threads: int = 1,
                 progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Every integer tensor of ``model`` on all of ``x`` (:func:`in_batches`), one worker pool for all batches."""
    workers = _core.Workers(threads) if threads != 1 else 1
    return in_batches(model.graph, x, lambda xb: simulate(model, xb, keep_intermediates=True, threads=workers).integers,
                      progress)


def run_plan(model: QuantizedModel, p: LayerPlan, ints: dict[str, np.ndarray], threads: int = 1, *,
             pool: Any = None) -> np.ndarray:
    """Output codes of one (non-fused) plan given the integer codes of its inputs in ``ints``.

    ``pool`` (a ``_core.Workers``) runs the fused convolution and GEMM kernels on its threads instead of
    threads started per call; the integers are the same either way.
    """
    if p.mode == "fused":
        raise HwsimError(f"node '{p.node.name}' is fused into its producer and has no output of its own")
    if p.mode == "fallback":
        return _run_fallback(model, p, ints)
    if p.op_kind in _WEIGHTED:
        return _run_weighted(model, p, ints, threads, pool)
    return _RUNNERS[p.impl.kernel](model, p, ints, threads)


# A runner computes one plan's output codes from ``ints``: ``run(ints, threads, pool)``.
Runner = Callable[[dict[str, np.ndarray], int, Any], np.ndarray]


def _bound_runners(model: QuantizedModel) -> list[Runner | None]:
    """One runner per plan (None for fused plans), built on the model's first simulation and kept.

    A small layer takes tens of microseconds; working out its arguments again on every call (the plan's
    constants, the accumulation mode, keyword dictionaries) cost as much again, so the common cases get
    a runner with everything bound that only checks the input codes are of the expected kind and otherwise
    takes the general :func:`run_plan`. Both compute the same integers (the runner calls the same kernel
    with the same arguments).
    """
    runners = model._runners
    if runners is None or len(runners) != len(model.plans):
        runners = [None if p.mode == "fused" else (_bound_runner(model, p) or _generic_runner(model, p))
                   for p in model.plans]
        model._runners = runners
    return runners


def _generic_runner(model: QuantizedModel, p: LayerPlan) -> Runner:
    return lambda ints, threads, pool: run_plan(model, p, ints, threads, pool=pool)


def _bound_runner(model: QuantizedModel, p: LayerPlan) -> Runner | None:
    """The bound runner of ``p``, or None when ``p`` takes the general path."""
    if p.mode != "integer":
        return None
    general = _generic_runner(model, p)
    src = p.node.inputs[0] if p.node.inputs else ""
    x_dtype = model.act[src].dtype if src in model.act else None
    fused = p.consts.get("fused_requant")
    if p.op_kind in _WEIGHTED and fused is not None and x_dtype in (np.dtype(np.uint8), np.dtype(np.int8)):
        node, c = p.node, p.consts
        a = node.attrs
        channels = int(model.graph.tensors[src].shape[-1])
        how = _accumulation_mode(p, x_dtype, channels)
        # The core's prepared layers: weights packed, arguments converted and requantization planned once.
        if p.op_kind == "DepthwiseConv2D":
            mode = _core.DepthwiseMode.FBGEMM_DW_PAIRS if how == "fbgemm_dw_pairs" else _core.DepthwiseMode.EXACT
            kernel = _core.PreparedDepthwise(
                c["w_int_contiguous"], list(a["strides"]), list(a["dilations"]), list(a["pads"]),
                depth_multiplier=c["w_int"].shape[0] // channels, x_zero_point=c["x_zero_point"], mode=mode, **fused)
        elif p.op_kind == "Conv2D":
            kernel = _core.PreparedConv2d(c["w_packed"], x_zero_point=c["x_zero_point"], strides=tuple(a["strides"]),
                                          dilations=tuple(a["dilations"]), pads=tuple(a["pads"]), mode=how, **fused)
        else:
            dense = _core.PreparedDense(c["w_packed"], a_zero_point=c["x_zero_point"], mode=how, **fused)
            # Dense over the last axis
            kernel = lambda x, threads: dense(x.reshape(-1, x.shape[-1]), threads).reshape(*x.shape[:-1], -1)  # noqa: E731

        def run(ints, threads, pool):
            x = ints[src]
            if x.dtype != x_dtype or not x.flags.c_contiguous or x.shape[-1] != channels:
                return general(ints, threads, pool)
            return kernel(x, threads if pool is None else pool)

        return run
    if p.impl.kernel == "copy" and p.node.op in ("Flatten", "Reshape") and _same_codes(model, src, p.output):
        shape = model.graph.tensors[src].shape
        axis = p.node.attrs.get("axis", 1) if p.node.op == "Flatten" else 0
        axis = axis + len(shape) if axis < 0 else axis
        if p.node.op == "Flatten" and 1 <= axis <= len(shape):
            tail = int(np.prod(shape[axis:], dtype=np.int64))  # the batch axis stays in front
            return lambda ints, threads, pool: ints[src].reshape(-1, tail)
        reshape, attrs = FLOAT_KERNELS[p.node.op], p.node.attrs
        return lambda ints, threads, pool: reshape(attrs, ints[src])  # a view: the codes do not change
    if p.impl.kernel in _POOL_KERNELS:
        kernel = _RUNNERS[p.impl.kernel]
        return lambda ints, threads, pool: kernel(model, p, ints, threads if pool is None else pool)
    return None


# Runners whose kernels take a _core.Workers pool as their `threads` argument.
_POOL_KERNELS = ("ort_qlinear_add", "max_pool")


def _same_codes(model: QuantizedModel, src: str, dst: str) -> bool:
    """Whether tensor ``dst`` has exactly the integer codes of ``src`` (same parameters and type)."""
    a, b = model.act.get(src), model.act.get(dst)
    return a is not None and b is not None and (a.scale, a.zero_point, a.dtype) == (b.scale, b.zero_point, b.dtype)


def _dead_after(model: QuantizedModel) -> dict[int, list[str]]:
    """The tensors no plan reads after plan i (graph outputs excepted), by i; computed once per model."""
    if model._dead_after is None:
        dead: dict[int, list[str]] = {}
        for t, last in _last_use(model).items():
            if t not in model.graph.outputs:
                dead.setdefault(last, []).append(t)
        model._dead_after = dead
    return model._dead_after


def _last_use(model: QuantizedModel) -> dict[str, int]:
    last: dict[str, int] = {}
    for i, p in enumerate(model.plans):
        for t in p.node.inputs:
            last[t] = i
    return last


def _run_fallback(model: QuantizedModel, p: LayerPlan, ints: dict[str, np.ndarray]) -> np.ndarray:
    g = model.graph
    args = []
    for t in p.node.inputs:
        if t in g.params:
            args.append(g.params[t].astype(np.float32))
        else:
            args.append(model.act[t].dequantize(ints[t]))
    y = FLOAT_KERNELS[p.node.op](p.node.attrs, *args)
    return quantize_tensor(y.astype(np.float32), model.act[p.output], model.target.numerics.activations)


def accumulation_mode(p: LayerPlan, x: np.ndarray) -> str:
    """How a weighted plan sums its products on input codes ``x``: ``exact``, ``avx2_pairs`` (VPMADDUBSW int16
    pair saturation) or ``fbgemm_dw_pairs`` (fbgemm's depthwise kernel)."""
    return _accumulation_mode(p, x.dtype, x.shape[-1])


def _accumulation_mode(p: LayerPlan, dtype: np.dtype, channels: int) -> str:
    impl = p.impl
    if p.op_kind == "DepthwiseConv2D":
        a, w = p.node.attrs, p.consts["w_int"]
        if impl.depthwise_saturation not in (None, "none") and dtype == np.uint8 and fbgemm_routes_depthwise(
                channels, w.shape[0] // channels, tuple(w.shape[1:3]), tuple(a["strides"]),
                tuple(a["dilations"]), tuple(a["pads"])):
            # fbgemm sends only these geometries to its int16-pair-saturating depthwise kernel (probed on
            # torch 2.13; tests/oracle/test_torch_gemm_conv.py); every other depthwise conv is exact.
            return "fbgemm_dw_pairs"
        return "exact"
    return impl.gemm or "exact"


def accumulate(model: QuantizedModel, p: LayerPlan, x: np.ndarray, *, exact: bool = False,
               threads: int = 1) -> np.ndarray:
    """The int32 accumulator of a Conv2D / depthwise / Dense plan on input codes ``x``, before requantization.

    ``exact=True`` sums exactly even where the target's kernel saturates (AVX2 int16 pairs, fbgemm's depthwise
    pairs): the difference between the two is what that saturation changed.
    """
    node, c = p.node, p.consts
    if x.dtype == np.int16:
        return accumulate_int16(p, x, threads=threads)
    how = "exact" if exact else accumulation_mode(p, x)
    if p.op_kind == "DepthwiseConv2D":
        a = node.attrs
        mult = c["w_int"].shape[0] // x.shape[-1]
        mode = "FBGEMM_DW_PAIRS" if how == "fbgemm_dw_pairs" else "EXACT"
        return _core.depthwise_conv2d_s32(np.ascontiguousarray(x), np.ascontiguousarray(c["w_int"]),
                                          list(a["strides"]), list(a["dilations"]), list(a["pads"]),
                                          depth_multiplier=mult, x_zero_point=c["x_zero_point"],
                                          mode=getattr(_core.DepthwiseMode, mode), threads=threads)
    if p.op_kind == "Conv2D":
        a = node.attrs
        return _core.conv2d_s32(np.ascontiguousarray(x), c["w_packed"], x_zero_point=c["x_zero_point"],
                                strides=tuple(a["strides"]), dilations=tuple(a["dilations"]), pads=tuple(a["pads"]),
                                mode=how, threads=threads)
    lead = x.shape[:-1]  # Dense over the last axis
    acc = _core.gemm_s32(np.ascontiguousarray(x.reshape(-1, x.shape[-1])), c["w_packed"],
                         a_zero_point=c["x_zero_point"], mode=how, threads=threads)
    return acc.reshape(*lead, -1)


# Requantization schemes that take an int64 accumulator (TFLite 16x8: CONV_2D/DEPTHWISE, FULLY_CONNECTED).
_INT64_ACC_SCHEMES = ("fixed_point_int64", "fixed_point_single")

# Largest reduction length K for which the byte-split partial sums below stay exact in int32:
# |sum of w * lo| <= K * 128 * 255 < 2^31.
_INT16_SPLIT_MAX_K = (2**31 - 1) // (128 * 255)


def accumulate_int16(p: LayerPlan, x: np.ndarray, *, threads: int = 1) -> np.ndarray:
    """The exact int64 accumulator of a Conv2D / depthwise / Dense plan on int16 codes (TFLite 16x8).

    TFLite's 16x8 kernels sum int16 x int8 products in int64 with no input offset (zero point 0) and skip
    padding taps (numerics A.1, A.4). The 8-bit integer core takes only 8-bit activations, so the int16 codes
    are split exactly into a signed high byte and an unsigned low byte, x = 256·hi + lo, and each half runs
    through the core's exact int32 kernels with zero point 0 (padding taps hold 0, as the engine skips them):
    acc = 256·acc(hi) + acc(lo) in int64. Each half stays exact in int32 while the reduction length K is at
    most ``_INT16_SPLIT_MAX_K`` (65,793); longer reductions take :func:`accumulate_int16_reference`.
    """
    node, c = p.node, p.consts
    if x.dtype != np.int16:
        raise HwsimError(f"node '{node.name}': the 16-bit accumulation path needs int16 codes, got {x.dtype}")
    w = c["w_int"]
    k = int(np.prod(w.shape[1:])) if p.op_kind != "Dense" else int(w.shape[1])
    if k > _INT16_SPLIT_MAX_K:
        return accumulate_int16_reference(p, x)
    x = np.ascontiguousarray(x)
    lo = (x.view(np.uint16) & 0xFF).astype(np.uint8)
    hi = (x >> 8).astype(np.int8)
    parts = []
    for half in (hi, lo):
        if p.op_kind == "DepthwiseConv2D":
            a = node.attrs
            acc = _core.depthwise_conv2d_s32(half, c["w_int_contiguous"], list(a["strides"]), list(a["dilations"]),
                                             list(a["pads"]), depth_multiplier=w.shape[0] // x.shape[-1],
                                             x_zero_point=0, mode=_core.DepthwiseMode.EXACT, threads=threads)
        elif p.op_kind == "Conv2D":
            a = node.attrs
            acc = _core.conv2d_s32(half, c["w_packed"], x_zero_point=0, strides=tuple(a["strides"]),
                                   dilations=tuple(a["dilations"]), pads=tuple(a["pads"]), mode="exact",
                                   threads=threads)
        else:
            acc = _core.gemm_s32(np.ascontiguousarray(half.reshape(-1, half.shape[-1])), c["w_packed"],
                                 a_zero_point=0, mode="exact", threads=threads).reshape(*half.shape[:-1], -1)
        parts.append(acc.astype(np.int64))
    return parts[0] * 256 + parts[1]


def accumulate_int16_reference(p: LayerPlan, x: np.ndarray) -> np.ndarray:
    """Plain-numpy twin of :func:`accumulate_int16`: im2col (or the depthwise taps) and an int64 sum of
    products, padding taps 0 (the slow oracle, and the path for reductions longer than the split allows)."""
    node, w = p.node, p.consts["w_int"].astype(np.int64)
    if p.op_kind == "Dense":
        lead = x.shape[:-1]
        return (x.reshape(-1, x.shape[-1]).astype(np.int64) @ w.T).reshape(*lead, -1)
    a = node.attrs
    if p.op_kind == "DepthwiseConv2D":
        mult = w.shape[0] // x.shape[-1]
        taps = depthwise_tap_values(x, tuple(w.shape[1:3]), mult, a["strides"], a["dilations"], a["pads"], 0)
        return (taps * w.reshape(w.shape[0], -1).T[:, None, None, None, :]).sum(axis=0)
    groups = node.attrs.get("groups", 1)
    o, kh, kw, cg = w.shape
    og = o // groups
    outs = []
    for g in range(groups):
        cols = im2col_nhwc(np.ascontiguousarray(x[..., g * cg:(g + 1) * cg]), (kh, kw), strides=a["strides"],
                           dilations=a["dilations"], pads=a["pads"], pad_value=0).astype(np.int64)
        outs.append(cols @ w[g * og:(g + 1) * og].reshape(og, -1).T)
    n, h, wd = x.shape[:3]
    pads, st, dl = a["pads"], a["strides"], a["dilations"]
    oh = (h + pads[0] + pads[2] - dl[0] * (kh - 1) - 1) // st[0] + 1
    ow = (wd + pads[1] + pads[3] - dl[1] * (kw - 1) - 1) // st[1] + 1
    return np.concatenate(outs, axis=1).reshape(n, oh, ow, o)


def _run_weighted(model: QuantizedModel, p: LayerPlan, ints: dict[str, np.ndarray], threads: int,
                  pool: Any = None) -> np.ndarray:
    x = ints[p.node.inputs[0]]
    if x.dtype == np.int16:  # 16x8: int64 accumulator, never the fused 8-bit kernels
        scheme = p.impl.requant.scheme if p.impl.requant is not None else "none"
        if scheme not in _INT64_ACC_SCHEMES:
            raise HwsimError(f"node '{p.node.name}': int16 input codes need an int64-accumulator requantization "
                             f"({', '.join(_INT64_ACC_SCHEMES)}); target '{model.target.name}' gives "
                             f"{scheme!r} (use a 16x8 target such as arm_tflite_int16x8)")
        return _requantize(model, p, accumulate_int16(p, x, threads=threads))
    fused = p.consts.get("fused_requant")
    if fused is None:
        return _requantize(model, p, accumulate(model, p, x, threads=threads))
    return _accumulate_requantized(p, x, fused, threads if pool is None else pool)


def _fused_requant_args(p: LayerPlan, y_q: ActQuant) -> dict[str, Any] | None:
    """Arguments of the ``_core.*_requantize_float`` kernels when they compute exactly what ``_requantize``
    would (float32 multiply by a float32 multiplier, int32 bias, round half to even; clamping before or after
    rounding gives the same integer then), else None."""
    c = p.consts
    if p.impl.requant is None or p.impl.requant.scheme != "float_scale" or "bias_f" in c or "multiplier" not in c:
        return None
    rp = dict(p.impl.requant.params)
    if (rp.get("precision", "float32") != "float32" or rp.get("apply", "multiply") != "multiply"
            or rp.get("rounding", "HALF_TO_EVEN") != "HALF_TO_EVEN"):
        return None
    # the two-call path hands the multiplier to a float32 kernel, which rounds a float64 one to nearest
    return {"scale": np.ascontiguousarray(c["multiplier"], dtype=np.float32), "zero_point": y_q.zero_point,
            "qmin": c["act_min"], "qmax": c["act_max"], "bias": c["bias"], "out_dtype": y_q.dtype}


def _accumulate_requantized(p: LayerPlan, x: np.ndarray, fused: dict[str, Any], threads: Any) -> np.ndarray:
    """``_requantize(accumulate(...))`` in one core call: the int32 tile is requantized where it is computed."""
    node, c = p.node, p.consts
    how = accumulation_mode(p, x)
    x = np.ascontiguousarray(x)
    if p.op_kind == "DepthwiseConv2D":
        a = node.attrs
        mode = _core.DepthwiseMode.FBGEMM_DW_PAIRS if how == "fbgemm_dw_pairs" else _core.DepthwiseMode.EXACT
        return _core.depthwise_conv2d_requantize_float(
            x, c["w_int_contiguous"], list(a["strides"]), list(a["dilations"]), list(a["pads"]),
            depth_multiplier=c["w_int"].shape[0] // x.shape[-1], x_zero_point=c["x_zero_point"], mode=mode,
            threads=threads, **fused)
    if p.op_kind == "Conv2D":
        a = node.attrs
        return _core.conv2d_requantize_float(x, c["w_packed"], x_zero_point=c["x_zero_point"],
                                             strides=tuple(a["strides"]), dilations=tuple(a["dilations"]),
                                             pads=tuple(a["pads"]), mode=how, threads=threads, **fused)
    lead = x.shape[:-1]  # Dense over the last axis
    y = _core.gemm_requantize_float(x.reshape(-1, x.shape[-1]), c["w_packed"], a_zero_point=c["x_zero_point"],
                                    mode=how, threads=threads, **fused)
    return y.reshape(*lead, -1)


def _requantize(model: QuantizedModel, p: LayerPlan, acc: np.ndarray) -> np.ndarray:
    c = p.consts
    y_q = model.act[p.output]
    scheme = p.impl.requant.scheme
    rp = dict(p.impl.requant.params)
    lo, hi = c["act_min"], c["act_max"]
    if scheme == "pow2_shift":
        rounding = _rounding(rp.get("rounding", "HALF_UP"))
        if p.fused_activation is not None and p.fused_activation.op == "LeakyReLU":
            # DPU leaky ReLU acts on the unrounded conv result: negative sums · 26/256 (numerics C.5, sec. 7)
            total = acc.astype(np.int64) + (c["bias"].astype(np.int64) << c["shift_bias"]) if c["shift_bias"] >= 0 \
                else acc.astype(np.int64) + (c["bias"].astype(np.int64) >> -c["shift_bias"])
            scaled = np.where(total < 0, total * 26, total * 256)
            return _core.rounding_right_shift(scaled, c["shift_cut"] + 8, rounding).clip(lo, hi).astype(y_q.dtype)
        return _core.requantize_pow2(acc, c["shift_cut"], 0, lo, hi, bias=c["bias"], shift_bias=c["shift_bias"],
                                     rounding=rounding, out_dtype=y_q.dtype)
    if scheme == "float_scale" and "bias_f" in c:
        # fbgemm ReQuantizeOutput with a float bias: float(acc) + bias / (s_in·s_w) per channel, or
        # + bias · (1 / (s_in·s_w)) on the per-tensor AVX2 path (numerics B.2; tests/oracle/test_torch_*)
        x_scale = np.float32(model.act[p.node.inputs[0]].scale)
        clamp = "before_rounding" if rp.get("clamp", "before_round") == "before_round" else "after_rounding"
        return _core.requantize_float(acc, c["multiplier"], y_q.zero_point, lo, hi, bias=c["bias_f"],
                                      bias_scale=(x_scale * c["w_scale"]).astype(np.float32),
                                      bias_mode="float_divide" if c["w_per_channel"] else "float_reciprocal",
                                      precision="fp32" if rp.get("precision", "float32") == "float32" else "fp64",
                                      clamp=clamp, rounding=_rounding(rp.get("rounding", "HALF_TO_EVEN")),
                                      out_dtype=y_q.dtype)
    if scheme == "float_scale":
        clamp = "before_rounding" if rp.get("clamp", "before_round") == "before_round" else "after_rounding"
        return _core.requantize_float(acc, c["multiplier"], y_q.zero_point, lo, hi, bias=c["bias"],
                                      precision="fp32" if rp.get("precision", "float32") == "float32" else "fp64",
                                      scale_op="multiply" if rp.get("apply", "multiply") == "multiply" else "divide",
                                      clamp=clamp, rounding=_rounding(rp.get("rounding", "HALF_TO_EVEN")),
                                      out_dtype=y_q.dtype)
    if scheme == "fixed_point_int64":
        # TFLite 16x8: int64 accumulator + int64 bias, int64 MBQM overload (16-bit multiplier, one rounding
        # half up), + zp, clamp (numerics A.3, A.4)
        return _core.requantize_fixed_point(np.ascontiguousarray(acc, dtype=np.int64), c["M"], c["shift"],
                                            y_q.zero_point, lo, hi, bias=np.asarray(c["bias"], np.int64),
                                            rounding="int64_16bit", out_dtype=y_q.dtype)
    if scheme == "fixed_point_single" and np.int64 in (acc.dtype, c["bias"].dtype):
        # TFLite 16x8 FULLY_CONNECTED: the int64 accumulator with the full 31-bit multiplier, one rounding
        # half up (measured against BUILTIN_REF, TF 2.21: tests/oracle/test_tflite_int16x8_oracle.py)
        return requantize_single_int64(acc, c["M"], c["shift"], y_q.zero_point, lo, hi, bias=c["bias"],
                                       out_dtype=y_q.dtype)
    rounding = "single" if scheme == "fixed_point_single" else "double"
    return _core.requantize_fixed_point(acc, c["M"], c["shift"], y_q.zero_point, lo, hi, bias=c["bias"],
                                        rounding=rounding, out_dtype=y_q.dtype)


def requantize_single_int64(acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray, zero_point: int, qmin: int,
                            qmax: int, *, bias: np.ndarray | None = None, out_dtype: Any = np.int16) -> np.ndarray:
    """Single-rounding fixed-point requantization of an int64 accumulator, exactly.

    y = clamp(((acc + bias)·M + 2^(n−1)) >> n + zp), n = 31 − shift, per channel along the last axis: the
    ``fixed_point_single`` formula (numerics A.3) on int64 accumulators, which ``_core.requantize_fixed_point``
    takes only as int32. The product is exact: int64 while |acc + bias| < 2^32 (then |acc·M| < 2^63), Python
    integers beyond (the engine's int64 product would overflow there; such accumulators are not measured).
    """
    v = np.asarray(acc, dtype=np.int64)
    if bias is not None:
        v = v + np.asarray(bias, dtype=np.int64)
    m = np.broadcast_to(np.asarray(multiplier, dtype=np.int64), v.shape[-1:])
    n = 31 - np.broadcast_to(np.asarray(shift, dtype=np.int64), v.shape[-1:])
    if np.any(n < 1) or np.any(n > 62):
        raise HwsimError(f"fixed_point_single: shift {np.asarray(shift).tolist()} outside [-31, 30]")
    small = np.abs(v) < (1 << 32)
    y = np.where(small, (np.where(small, v, 0) * m + (np.int64(1) << (n - 1))) >> n, 0)
    if not np.all(small):
        big = np.argwhere(~small)
        for idx in map(tuple, big):
            ch = idx[-1]
            y[idx] = (int(v[idx]) * int(m[ch]) + (1 << (int(n[ch]) - 1))) >> int(n[ch])
    return np.clip(y + zero_point, qmin, qmax).astype(out_dtype)


def _pool_padding(pads: list[int]) -> tuple[int, int, int, int]:
    top, left, bottom, right = pads
    return top, bottom, left, right  # _core pooling takes (top, bottom, left, right)


def _run_max_pool(model: QuantizedModel, p: LayerPlan, ints: dict[str, np.ndarray], threads: int) -> np.ndarray:
    a = p.node.attrs
    x = ints[p.node.inputs[0]]
    x_q, y_q = model.act[p.node.inputs[0]], model.act[p.output]
    y = _core.max_pool2d(np.ascontiguousarray(x), tuple(a["kernel"]), tuple(a["strides"]), _pool_padding(a["pads"]),
                         threads=threads)
    return _shift_to(model, p, y, x_q, y_q)


def _shift_to(model: QuantizedModel, p: LayerPlan, y: np.ndarray, x_q: ActQuant, y_q: ActQuant) -> np.ndarray:
    """Move codes from x_q to y_q where they differ: a power-of-two shift with the op's rounding (DPU)."""
    if (x_q.scale, x_q.zero_point) == (y_q.scale, y_q.zero_point):
        return y.astype(y_q.dtype)
    if x_q.fix_pos is not None and y_q.fix_pos is not None and p.impl.requant is not None:
        rounding = _rounding(dict(p.impl.requant.params).get("rounding", "HALF_UP"))
        return _core.requantize_pow2(np.ascontiguousarray(y, dtype=np.int32), x_q.fix_pos - y_q.fix_pos, 0, y_q.qmin,
                                     y_q.qmax, rounding=rounding, out_dtype=y_q.dtype)
    raise HwsimError(f"node '{p.node.name}': input and output quantization differ and the target gives no rule")


def _run_avg_pool(model: QuantizedModel, p: LayerPlan, ints: dict[str, np.ndarray], threads: int) -> np.ndarray:
    node = p.node
    x = np.ascontiguousarray(ints[node.inputs[0]])
    x_q, y_q = model.act[node.inputs[0]], model.act[p.output]
    if node.op == "GlobalAvgPool":
        kernel, strides, pads = (x.shape[1], x.shape[2]), (1, 1), (0, 0, 0, 0)
    else:
        a = node.attrs
        kernel, strides, pads = tuple(a["kernel"]), tuple(a["strides"]), _pool_padding(a["pads"])
    if p.impl.kernel == "dpu_avg_pool":
        return _core.avg_pool2d_dpu(x, kernel, strides, pads, x_q.fix_pos - y_q.fix_pos, qmin=y_q.qmin,
                                    qmax=y_q.qmax)
    include = bool(node.attrs.get("count_include_pad", False))
    y = _core.avg_pool2d_tflite(x, kernel, strides, pads, count_include_pad=include)
    return _shift_to(model, p, y, x_q, y_q)


def _run_add(model: QuantizedModel, p: LayerPlan, ints: dict[str, np.ndarray], threads: int) -> np.ndarray:
    node = p.node
    a_name, b_name = node.inputs
    if a_name in model.graph.params or b_name in model.graph.params:
        return _run_fallback(model, p, ints)
    a, b = ints[a_name], ints[b_name]
    if a.shape != b.shape:
        return _run_fallback(model, p, ints)
    y_q = model.act[p.output]
    if p.impl.kernel == "dpu_add":
        return _core.eltwise_add_dpu(a, b, model.act[a_name].fix_pos, model.act[b_name].fix_pos, y_q.fix_pos,
                                     qmin=y_q.qmin, qmax=y_q.qmax)
    prm = p.consts["params"]
    if a.dtype == np.int16 and prm["left_shift"] > 15:
        # (2·32767) << left_shift must fit int32: TFLite's int16 ADD uses 15 (numerics A.5)
        raise HwsimError(f"node '{node.name}': int16 ADD needs left_shift <= 15, target '{model.target.name}' "
                         f"gives {prm['left_shift']}")
    return _core.add_int8_tflite(a, b, **prm, act_min=y_q.qmin, act_max=y_q.qmax)


def _run_mul(model: QuantizedModel, p: LayerPlan, ints: dict[str, np.ndarray], threads: int) -> np.ndarray:
    node, c = p.node, p.consts
    a, b = ints[node.inputs[0]], ints[node.inputs[1]]
    if a.shape != b.shape:
        return _run_fallback(model, p, ints)
    a_q, b_q, y_q = model.act[node.inputs[0]], model.act[node.inputs[1]], model.act[p.output]
    if "params" in c:
        return _core.mul_int8_tflite(a, b, **c["params"], act_min=y_q.qmin, act_max=y_q.qmax, rounding=c["rounding"])
    prod = ((a.astype(np.int32) - a_q.zero_point) * (b.astype(np.int32) - b_q.zero_point)).astype(np.int32)
    if "scale" in c:
        return _core.requantize_float(prod[..., None], np.float32(c["scale"]), y_q.zero_point, y_q.qmin, y_q.qmax,
                                      clamp="before_rounding", out_dtype=y_q.dtype)[..., 0]
    rounding = _rounding(dict(p.impl.requant.params).get("rounding", "HALF_UP"))
    return _core.requantize_pow2(prod, c["shift"], 0, y_q.qmin, y_q.qmax, rounding=rounding, out_dtype=y_q.dtype)


def _run_concat(model: QuantizedModel, p: LayerPlan, ints: dict[str, np.ndarray], threads: int) -> np.ndarray:
    y_q = model.act[p.output]
    scheme = p.impl.requant.scheme if p.impl.requant is not None else None
    parts = []
    for t in p.node.inputs:
        t_q = model.act[t]
        if scheme == "fixed_point_double" and t_q.fix_pos is None:  # TFLite Requantize (int32 MBQM)
            parts.append(op_kernels.requantize_tflite(ints[t], t_q.scale, t_q.zero_point, y_q.scale, y_q.zero_point,
                                                      y_q.qmin, y_q.qmax, y_q.dtype))
            continue
        parts.append(_shift_to(model, p, ints[t], t_q, y_q) if t_q.fix_pos is not None else
                     _requant_codes(ints[t], t_q, y_q, model))
    return np.concatenate(parts, axis=p.node.attrs["axis"])


def _requant_codes(q: np.ndarray, src: ActQuant, dst: ActQuant, model: QuantizedModel) -> np.ndarray:
    if (src.scale, src.zero_point) == (dst.scale, dst.zero_point):
        return q.astype(dst.dtype)
    return quantize_tensor(src.dequantize(q), dst, model.target.numerics.activations)


def _run_clamp(model: QuantizedModel, p: LayerPlan, ints: dict[str, np.ndarray], threads: int) -> np.ndarray:
    lo, hi = p.consts["bounds"]
    return np.clip(ints[p.node.inputs[0]], lo, hi).astype(model.act[p.output].dtype)


def _run_copy(model: QuantizedModel, p: LayerPlan, ints: dict[str, np.ndarray], threads: int) -> np.ndarray:
    x = ints[p.node.inputs[0]]
    y = FLOAT_KERNELS[p.node.op](p.node.attrs, x) if p.node.op in ("Reshape", "Flatten", "Transpose") else x
    # A pre-quantized model may give the moved tensor its own parameters: requantize as its QUANTIZE does.
    return _requant_codes(y, model.act[p.node.inputs[0]], model.act[p.output], model)


def _run_pad(model: QuantizedModel, p: LayerPlan, ints: dict[str, np.ndarray], threads: int) -> np.ndarray:
    x = ints[p.node.inputs[0]]
    x_q = model.act[p.node.inputs[0]]
    fill = int(_core.round_float(np.array([p.node.attrs["value"] / x_q.scale], np.float64),
                                 _rounding(model.target.numerics.activations.rounding))[0]) + x_q.zero_point
    return np.pad(x, p.node.attrs["pads"], constant_values=np.clip(fill, x_q.qmin, x_q.qmax)).astype(x.dtype)


_RUNNERS: dict[str, Callable[..., np.ndarray]] = {
    "max_pool": _run_max_pool,
    "tflite_avg_pool": _run_avg_pool,
    "dpu_avg_pool": _run_avg_pool,
    "tflite_add": _run_add,
    "dpu_add": _run_add,
    "mul": _run_mul,
    "concat": _run_concat,
    "clamp": _run_clamp,
    "copy": _run_copy,
    "transpose": _run_copy,
    "pad": _run_pad,
    **_EXTRA_RUN,
}
