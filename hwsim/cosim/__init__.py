"""C co-simulation: run a user's C/C++ model of one layer inside an hwsim simulation and compare integers.

The library implements the ABI of ``include/hwsim_kernel.h`` (:data:`CDEF` here mirrors it; a test checks
every struct offset against the header compiled by the C compiler). :func:`load_kernel` opens it through
cffi (the ``cosim`` extra, imported lazily), :func:`cosim_layer` simulates the model, calls the kernel on
the chosen layer's integer input and reports the first differing element.

The kernel runs in this process: a kernel that writes out of bounds can crash it. hwsim passes dense
buffers whose sizes the header documents, and keeps them alive for the call only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwsim.compare.golden import DiffSummary, diff_summary, histogram_text
from hwsim.emulate.simulator import LayerPlan, QuantizedModel, graph_batch_limit, simulate, simulate_all
from hwsim.errors import HwsimError, MissingExtraError

ABI_VERSION = 1

# Mirrors include/hwsim_kernel.h (HWSIM_MAX_RANK = 8). Keep in step: tests/golden/test_cosim_abi.py compares
# sizeof/offsetof of every field with the compiled header.
CDEF = """
typedef struct hwsim_tensor {
  int32_t dtype;
  int32_t rank;
  int64_t shape[8];
  int64_t strides[8];
  void *data;
} hwsim_tensor;

typedef struct hwsim_quant {
  int32_t scheme;
  int32_t rounding;
  int32_t input_zero_point;
  int32_t weight_zero_point;
  int32_t output_zero_point;
  int32_t act_min;
  int32_t act_max;
  int32_t channels;
  const int32_t *multiplier;
  const int32_t *shift;
  const float *scale;
  int32_t clamp_before_round;
  int32_t shift_cut;
  int32_t shift_bias;
  int32_t fused_activation;
} hwsim_quant;

typedef struct hwsim_layer {
  uint32_t struct_size;
  int32_t abi_version;
  const char *name;
  int32_t op;
  int32_t strides[2];
  int32_t dilations[2];
  int32_t pads[4];
  int32_t groups;
  int32_t depth_multiplier;
  int32_t accumulation;
  hwsim_tensor input;
  hwsim_tensor weights;
  hwsim_tensor bias;
  hwsim_tensor output;
  hwsim_quant quant;
} hwsim_layer;

int hwsim_kernel_abi_version(void);
int hwsim_kernel_run(const hwsim_layer *layer);
"""

DTYPES = {np.dtype(np.int8): 1, np.dtype(np.uint8): 2, np.dtype(np.int16): 3, np.dtype(np.uint16): 4,
          np.dtype(np.int32): 5, np.dtype(np.float32): 6}
OPS = {"Conv2D": 1, "DepthwiseConv2D": 2, "Dense": 3}
SCHEMES = {"fixed_point_double": 1, "fixed_point_single": 2, "float_scale": 3, "pow2_shift": 4}
ROUNDING = {"HALF_TO_EVEN": 0, "HALF_AWAY_FROM_ZERO": 1, "HALF_UP": 2, "HALF_DOWN": 3, "HALF_TOWARD_ZERO": 4,
            "FLOOR": 5, "TRUNCATE": 6}
STATUS = {0: "HWSIM_OK", 1: "HWSIM_E_UNSUPPORTED", 2: "HWSIM_E_ARGUMENT", 3: "HWSIM_E_INTERNAL"}


class CosimError(HwsimError):
    """The kernel library cannot be used (not loadable, symbol missing, ABI mismatch) or the layer cannot be
    co-simulated."""


def _cffi():
    try:
        import cffi
    except ImportError:
        raise MissingExtraError("C co-simulation needs cffi: pip install 'hwsim[cosim]'") from None
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    return ffi


@dataclass
class Kernel:
    """An opened kernel library."""

    path: str
    ffi: Any
    lib: Any
    abi_version: int


def load_kernel(path: str | os.PathLike) -> Kernel:
    """Open a kernel library and check its ABI version.

    Raises
    ------
    CosimError
        The file is missing or not a loadable shared library, a required symbol is missing, or the library
        reports an ABI version other than :data:`ABI_VERSION`.
    MissingExtraError
        cffi is not installed.
    """
    ffi = _cffi()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CosimError(f"--kernel {path}: no such file")
    try:
        # A path with a slash, so dlopen never searches the library path for a bare name.
        lib = ffi.dlopen(os.path.abspath(path))
    except OSError as exc:
        raise CosimError(f"--kernel {path}: not a loadable shared library ({exc})") from None
    for sym in ("hwsim_kernel_abi_version", "hwsim_kernel_run"):
        try:
            getattr(lib, sym)
        except (AttributeError, NotImplementedError):
            raise CosimError(f"--kernel {path}: symbol '{sym}' is missing (see include/hwsim_kernel.h; C++ "
                             "sources need extern \"C\")") from None
    version = int(lib.hwsim_kernel_abi_version())
    if version != ABI_VERSION:
        raise CosimError(f"--kernel {path}: built for hwsim kernel ABI version {version}, this hwsim speaks "
                         f"version {ABI_VERSION}; rebuild it against this hwsim's include/hwsim_kernel.h")
    return Kernel(path, ffi, lib, version)


@dataclass
class CosimResult:
    """Comparison of the kernel's output with hwsim's for one layer."""

    layer: str
    tensor: str
    kernel: str
    status: int
    diff: DiffSummary
    output_diff: DiffSummary | None = None  # graph output with the kernel's result in place
    notes: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return self.status == 0 and self.diff.differing == 0

    def describe(self) -> str:
        head = f"cosim layer '{self.layer}' (tensor '{self.tensor}') with {self.kernel}: "
        if self.diff.differing == 0:
            lines = [head + f"bit-exact, all {self.diff.elements} elements identical"]
        else:
            d = self.diff
            lines = [head + f"MISMATCH: {d.differing} of {d.elements} elements differ ({d.percent_differing:.3g}%), "
                     f"max |Δ| {d.max_abs_diff} LSB",
                     (f"first differing element at index {list(d.first_index)}: hwsim {d.first_expected}, "
                      f"kernel {d.first_actual}"),
                     "Δ histogram (kernel − hwsim): " + histogram_text(d.histogram)]
        if self.output_diff is not None and self.diff.differing:
            lines.append(f"graph output with the kernel in place: {self.output_diff.differing} of "
                         f"{self.output_diff.elements} elements differ")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "tensor": self.tensor, "kernel": self.kernel, "matches": self.matches,
                "diff": self.diff.to_dict(),
                "graph_output_diff": None if self.output_diff is None else self.output_diff.to_dict(),
                "notes": self.notes}


def _tensor(ffi, t, arr: np.ndarray, keep: list) -> None:
    arr = np.ascontiguousarray(arr)
    if arr.dtype not in DTYPES:
        raise CosimError(f"tensor of dtype {arr.dtype} cannot cross the kernel ABI")
    if arr.ndim > 8:
        raise CosimError(f"tensor of rank {arr.ndim} exceeds HWSIM_MAX_RANK")
    keep.append(arr)
    t.dtype = DTYPES[arr.dtype]
    t.rank = arr.ndim
    for i, (n, s) in enumerate(zip(arr.shape, arr.strides)):
        t.shape[i] = n
        t.strides[i] = s // arr.itemsize
    t.data = ffi.cast("void *", arr.ctypes.data)


def _plan(qm: QuantizedModel, layer: str) -> LayerPlan:
    for p in qm.plans:
        if p.node.name == layer:
            if p.mode == "fused":
                raise CosimError(f"--layer {layer}: fused into its producer ({p.reason}); name the producer")
            if p.op_kind not in OPS or p.mode != "integer" or "w_int" not in p.consts:
                raise CosimError(f"--layer {layer}: {p.op_kind} ({p.mode}) cannot be co-simulated; the kernel ABI "
                                 f"covers integer Conv2D, DepthwiseConv2D and Dense layers")
            return p
    names = [p.node.name for p in qm.plans if p.op_kind in OPS and p.mode == "integer"]
    raise CosimError(f"--layer {layer}: no such layer; layers a kernel can replace: {', '.join(names)}")


def _accumulation(plan: LayerPlan, x: np.ndarray) -> int:
    """The ABI's accumulation code for the simulator's choice on this layer."""
    from hwsim.emulate.simulator import accumulation_mode

    return {"exact": 0, "avx2_pairs": 1, "fbgemm_dw_pairs": 2}[accumulation_mode(plan, x)]


def run_kernel(kernel: Kernel, qm: QuantizedModel, plan: LayerPlan, x: np.ndarray, out_shape: tuple[int, ...],
               out_dtype: np.dtype) -> tuple[int, np.ndarray]:
    """Call the kernel for ``plan`` on the integer input ``x``; returns (status, output codes)."""
    ffi, c, node = kernel.ffi, plan.consts, plan.node
    keep: list = []
    layer = ffi.new("hwsim_layer *")
    name = ffi.new("char[]", node.name.encode())
    keep.append(name)
    layer.struct_size = ffi.sizeof("hwsim_layer")
    layer.abi_version = ABI_VERSION
    layer.name = name
    layer.op = OPS[plan.op_kind]
    a = node.attrs
    if plan.op_kind == "Dense":
        x_call = x.reshape(-1, x.shape[-1])
        y = np.zeros((x_call.shape[0], c["w_int"].shape[0]), dtype=out_dtype)
        layer.strides, layer.dilations, layer.pads = [1, 1], [1, 1], [0, 0, 0, 0]
        layer.groups, layer.depth_multiplier = 1, 1
    else:
        x_call = x
        y = np.zeros(out_shape, dtype=out_dtype)
        layer.strides = list(a["strides"])
        layer.dilations = list(a["dilations"])
        layer.pads = list(a["pads"])  # top, left, bottom, right (the IR's order)
        layer.groups = int(a.get("groups", 1))
        layer.depth_multiplier = c["w_int"].shape[0] // x.shape[-1] if plan.op_kind == "DepthwiseConv2D" else 1
    layer.accumulation = _accumulation(plan, x)
    _tensor(ffi, layer.input, x_call, keep)
    _tensor(ffi, layer.weights, c["w_int"].astype(np.int8), keep)
    _tensor(ffi, layer.bias, np.asarray(c["bias"], np.int32), keep)
    _tensor(ffi, layer.output, y, keep)
    q = layer.quant
    scheme = plan.impl.requant.scheme
    rp = dict(plan.impl.requant.params)
    if scheme not in SCHEMES:
        raise CosimError(f"layer '{node.name}': requantization scheme {scheme!r} has no ABI encoding")
    q.scheme = SCHEMES[scheme]
    q.input_zero_point = int(c.get("x_zero_point", 0))
    q.weight_zero_point = 0
    q.output_zero_point = int(qm.act[plan.output].zero_point)
    q.act_min, q.act_max = int(c["act_min"]), int(c["act_max"])
    q.channels = int(c["w_int"].shape[0])
    act = plan.fused_activation.op if plan.fused_activation is not None else None
    q.fused_activation = {None: 0, "ReLU": 1, "ReLU6": 2, "LeakyReLU": 3}.get(act, 0)
    if scheme.startswith("fixed_point"):
        for field_name, key in (("multiplier", "M"), ("shift", "shift")):
            arr = np.ascontiguousarray(c[key], np.int32)
            keep.append(arr)
            setattr(q, field_name, ffi.cast("const int32_t *", arr.ctypes.data))
    elif scheme == "float_scale":
        m = np.asarray(c["multiplier"])
        if m.dtype != np.float32:
            raise CosimError(f"layer '{node.name}': the target's float64 scales cannot cross ABI version 1 (float32)")
        arr = np.ascontiguousarray(m)
        keep.append(arr)
        q.scale = ffi.cast("const float *", arr.ctypes.data)
        q.rounding = ROUNDING[rp.get("rounding", "HALF_TO_EVEN")]
        q.clamp_before_round = int(rp.get("clamp", "before_round") == "before_round")
    else:
        q.rounding = ROUNDING[rp.get("rounding", "HALF_UP")]
        q.shift_cut, q.shift_bias = int(c["shift_cut"]), int(c["shift_bias"])
    status = int(kernel.lib.hwsim_kernel_run(layer))
    del keep
    return status, y.reshape(out_shape)


def _graph_output_with(qm: QuantizedModel, plan: LayerPlan, replaced: np.ndarray, x: np.ndarray) -> dict:
    # Re-run the layers after ``plan`` with the kernel's output in place.
    from hwsim.emulate.simulator import run_plan

    ints = dict(simulate(qm, x, keep_intermediates=True).integers)
    ints[plan.output] = replaced
    after = False
    for p in qm.plans:
        if p is plan:
            after = True
            continue
        if not after or p.mode == "fused":
            continue
        ints[p.output] = run_plan(qm, p, ints)
    return {o: ints[o] for o in qm.graph.outputs}


def cosim_layer(kernel: Kernel, qm: QuantizedModel, layer: str, x: np.ndarray, *,
                threads: int = 1) -> CosimResult:
    """Simulate ``qm`` on float input ``x`` and compare layer ``layer`` with the kernel's computation.

    The kernel receives hwsim's integer input of that layer, so a difference is the kernel's own.
    """
    plan = _plan(qm, layer)
    x = np.asarray(x, np.float32)
    ints = simulate_all(qm, x, threads=threads)
    expected = ints[plan.output]
    status, got = run_kernel(kernel, qm, plan, ints[plan.node.inputs[0]], expected.shape, expected.dtype)
    notes = []
    if status != 0:
        raise CosimError(f"--kernel {kernel.path}: hwsim_kernel_run returned {status} "
                         f"({STATUS.get(status, 'unknown code')}) for layer '{layer}' ({plan.op_kind}, "
                         f"{plan.impl.requant.scheme})")
    d = diff_summary(got, expected)
    out_diff = None
    if d.differing and graph_batch_limit(qm.graph) in (None, len(x)):
        outs = _graph_output_with(qm, plan, got, x)
        o = qm.graph.outputs[0]
        out_diff = diff_summary(outs[o], ints[o])
    return CosimResult(layer, plan.output, os.path.basename(kernel.path), status, d, out_diff, notes)
