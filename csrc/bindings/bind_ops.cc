// Bindings for element-wise ops, pooling and lookup-table activations. Thin: argument checks
// (TypeError/ValueError naming the argument), GIL released around the loops, arithmetic in csrc/hwsim.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "bindings/numerics_args.h"
#include "bindings/threads_arg.h"
#include "hwsim/elementwise.h"
#include "hwsim/hsigmoid_dpu.h"
#include "hwsim/lut_activation.h"
#include "hwsim/pooling.h"

namespace py = pybind11;

namespace hwsim::bindings {
namespace {

using namespace hwsim::bindings::args;

// Calls f(T{}) for the integer dtype of x (int8, uint8, int16, uint16).
template <typename F>
void DispatchCode(const py::array& x, const char* name, F&& f) {
  if (IsDtype<int8_t>(x)) return f(int8_t{});
  if (IsDtype<uint8_t>(x)) return f(uint8_t{});
  if (IsDtype<int16_t>(x)) return f(int16_t{});
  if (IsDtype<uint16_t>(x)) return f(uint16_t{});
  TypeError(std::string(name) + " must have dtype int8, uint8, int16 or uint16, got " + DtypeName(x));
}

template <typename T>
void Bounds(py::handle lo_obj, py::handle hi_obj, const char* lo_name, const char* hi_name, int64_t* lo, int64_t* hi) {
  const int64_t tmin = std::numeric_limits<T>::min(), tmax = std::numeric_limits<T>::max();
  *lo = lo_obj.is_none() ? tmin : IntParam(lo_obj, lo_name, tmin, tmax)[0];
  *hi = hi_obj.is_none() ? tmax : IntParam(hi_obj, hi_name, tmin, tmax)[0];
  if (*lo > *hi) ValueError(std::string(lo_name) + " must be <= " + hi_name + ", got " + Str(*lo) + " > " + Str(*hi));
}

int64_t Int(py::handle obj, const char* name, int64_t lo, int64_t hi) {
  const auto v = IntParam(obj, name, lo, hi);
  if (v.size() != 1) ValueError(std::string(name) + " must be a scalar");
  return v[0];
}

double Real(py::handle obj, const char* name) {
  const auto v = FloatParam(obj, name, true);
  if (v.size() != 1) ValueError(std::string(name) + " must be a scalar");
  return v[0];
}

MultiplierVariant Variant(py::handle obj) {
  const std::string s = Choice(obj, "rounding", {"double", "single"});
  return s == "double" ? MultiplierVariant::DOUBLE_ROUNDING : MultiplierVariant::SINGLE_ROUNDING;
}

// a and b: same dtype and shape; f(T{}, pa, pb, po, n) runs without the GIL.
template <typename F>
py::array Binary(py::handle a_obj, py::handle b_obj, F&& f) {
  py::array a = AsArray(a_obj, "a"), b = AsArray(b_obj, "b");
  if (!a.dtype().is(b.dtype())) TypeError("a and b must have the same dtype, got " + DtypeName(a) + " and " + DtypeName(b));
  if (Shape(a) != Shape(b)) ValueError("a and b must have the same shape (broadcast them first)");
  py::array out(a.dtype(), Shape(a));
  DispatchCode(a, "a", [&](auto tag) {
    using T = decltype(tag);
    auto ac = Exact<T>(a, "a", "int8, uint8, int16 or uint16");
    auto bc = Exact<T>(b, "b", "the dtype of a");
    f(tag, ac.data(), bc.data(), static_cast<T*>(out.mutable_data()), static_cast<int64_t>(ac.size()));
  });
  return out;
}

py::array AddTflitePy(py::handle a, py::handle b, py::handle in1_off, py::handle in1_m, py::handle in1_s, py::handle in2_off,
                      py::handle in2_m, py::handle in2_s, py::handle out_m, py::handle out_s, py::handle out_off,
                      py::handle act_min, py::handle act_max, int left_shift, py::handle rounding) {
  TfliteAddParams p{};
  p.variant = Variant(rounding);
  if (left_shift < 0 || left_shift > 30) ValueError("left_shift must be in [0, 30], got " + Str(left_shift));
  p.left_shift = left_shift;
  p.input1_offset = static_cast<int32_t>(Int(in1_off, "input1_offset", -65535, 65535));
  p.input2_offset = static_cast<int32_t>(Int(in2_off, "input2_offset", -65535, 65535));
  p.output_offset = static_cast<int32_t>(Int(out_off, "output_offset", -65535, 65535));
  p.input1_multiplier = static_cast<int32_t>(Int(in1_m, "input1_multiplier", 0, INT32_MAX));
  p.input2_multiplier = static_cast<int32_t>(Int(in2_m, "input2_multiplier", 0, INT32_MAX));
  p.output_multiplier = static_cast<int32_t>(Int(out_m, "output_multiplier", 0, INT32_MAX));
  p.input1_shift = static_cast<int>(Int(in1_s, "input1_shift", -31, 30));
  p.input2_shift = static_cast<int>(Int(in2_s, "input2_shift", -31, 30));
  p.output_shift = static_cast<int>(Int(out_s, "output_shift", -31, 30));
  return Binary(a, b, [&](auto tag, const auto* pa, const auto* pb, auto* po, int64_t n) {
    using T = decltype(tag);
    int64_t lo, hi;
    Bounds<T>(act_min, act_max, "act_min", "act_max", &lo, &hi);
    p.act_min = static_cast<int32_t>(lo);
    p.act_max = static_cast<int32_t>(hi);
    py::gil_scoped_release release;
    AddTflite<T>(pa, pb, n, p, po);
  });
}

py::array MulTflitePy(py::handle a, py::handle b, py::handle in1_off, py::handle in2_off, py::handle out_m, py::handle out_s,
                      py::handle out_off, py::handle act_min, py::handle act_max, py::handle rounding) {
  TfliteMulParams p{};
  p.variant = Variant(rounding);
  p.input1_offset = static_cast<int32_t>(Int(in1_off, "input1_offset", -65535, 65535));
  p.input2_offset = static_cast<int32_t>(Int(in2_off, "input2_offset", -65535, 65535));
  p.output_offset = static_cast<int32_t>(Int(out_off, "output_offset", -65535, 65535));
  p.output_multiplier = static_cast<int32_t>(Int(out_m, "output_multiplier", 0, INT32_MAX));
  p.output_shift = static_cast<int>(Int(out_s, "output_shift", -31, 30));
  return Binary(a, b, [&](auto tag, const auto* pa, const auto* pb, auto* po, int64_t n) {
    using T = decltype(tag);
    int64_t lo, hi;
    Bounds<T>(act_min, act_max, "act_min", "act_max", &lo, &hi);
    p.act_min = static_cast<int32_t>(lo);
    p.act_max = static_cast<int32_t>(hi);
    py::gil_scoped_release release;
    MulTflite<T>(pa, pb, n, p, po);
  });
}

template <bool kAdd>
py::array FloatScaleBinaryPy(py::handle a, py::handle b, py::handle sa, py::handle za, py::handle sb, py::handle zb,
                             py::handle sc, py::handle zc, py::handle qmin, py::handle qmax, py::handle rounding_obj,
                             py::handle form_obj, py::handle isa_obj, py::handle threads_obj) {
  const ThreadsArg threads = ParseThreads(threads_obj, 1024);
  FloatScaleBinaryParams p{};
  const bool allow_simd = Choice(isa_obj, "isa", {"auto", "scalar"}) == "auto";
  if (kAdd) p.mlas_avx2_form = Choice(form_obj, "form", {"mlas_avx2", "mlas_scalar"}) == "mlas_avx2";
  p.rounding = Rounding(rounding_obj, "rounding");
  p.a_scale = static_cast<float>(Real(sa, "a_scale"));
  p.b_scale = static_cast<float>(Real(sb, "b_scale"));
  p.c_scale = static_cast<float>(Real(sc, "c_scale"));
  return Binary(a, b, [&](auto tag, const auto* pa, const auto* pb, auto* po, int64_t n) {
    using T = decltype(tag);
    const int64_t tmin = std::numeric_limits<T>::min(), tmax = std::numeric_limits<T>::max();
    p.a_zero_point = static_cast<int32_t>(Int(za, "a_zero_point", tmin, tmax));
    p.b_zero_point = static_cast<int32_t>(Int(zb, "b_zero_point", tmin, tmax));
    p.c_zero_point = static_cast<int32_t>(Int(zc, "c_zero_point", tmin, tmax));
    int64_t lo, hi;
    Bounds<T>(qmin, qmax, "qmin", "qmax", &lo, &hi);
    p.qmin = static_cast<int32_t>(lo);
    p.qmax = static_cast<int32_t>(hi);
    py::gil_scoped_release release;
    auto run = [&](int64_t begin, int64_t end) {
      if (kAdd) AddFloatScale<T>(pa + begin, pb + begin, end - begin, p, po + begin, allow_simd);
      else MulFloatScale<T>(pa + begin, pb + begin, end - begin, p, po + begin);
    };
    // Contiguous blocks of whole 64-element runs, one range per worker first (parallel.h): with a pool each
    // core adds the part of the tensors its own convolution tiles wrote. STOCHASTIC rounding draws by element
    // index within the call, so it stays in one piece.
    constexpr int64_t kMinPerWorker = int64_t{1} << 14;
    const int workers = std::min<int64_t>(resolve_threads(threads.threads), std::max<int64_t>(1, n / kMinPerWorker));
    if (workers <= 1 || p.rounding == RoundingMode::STOCHASTIC) return run(0, n);
    const int64_t items = int64_t{workers} * 4, per = (n + items * 64 - 1) / (items * 64) * 64;
    parallel_for_dynamic(items, workers, [&](int, int64_t i) {
      const int64_t begin = std::min(n, i * per), end = std::min(n, begin + per);
      if (begin < end) run(begin, end);
    }, threads.pool);
  });
}

py::array EltwiseAddDpuPy(py::handle a, py::handle b, int pa_, int pb_, int pout, py::handle qmin, py::handle qmax,
                          py::handle rounding_obj) {
  const RoundingMode mode = Rounding(rounding_obj, "rounding");
  for (auto [v, name] : {std::pair<int, const char*>{pa_, "fix_pos_a"}, {pb_, "fix_pos_b"}, {pout, "fix_pos_out"}})
    if (v < -32 || v > 32) ValueError(std::string(name) + " must be in [-32, 32], got " + Str(v));
  return Binary(a, b, [&](auto tag, const auto* pa, const auto* pb, auto* po, int64_t n) {
    using T = decltype(tag);
    int64_t lo, hi;
    Bounds<T>(qmin, qmax, "qmin", "qmax", &lo, &hi);
    py::gil_scoped_release release;
    EltwiseAddDpu<T>(pa, pb, n, pa_, pb_, pout, lo, hi, mode, po);
  });
}

py::array HardSigmoidDpuPy(py::handle x_obj, int p_in, int p_out, py::handle qmin, py::handle qmax, py::handle rounding_obj) {
  const RoundingMode mode = Rounding(rounding_obj, "rounding");
  if (p_in < -16 || p_in > 24) ValueError("fix_pos_in must be in [-16, 24], got " + Str(p_in));
  if (p_out < -16 || p_out > 32) ValueError("fix_pos_out must be in [-16, 32], got " + Str(p_out));
  py::array x = AsArray(x_obj, "x");
  py::array out(x.dtype(), Shape(x));
  DispatchCode(x, "x", [&](auto tag) {
    using T = decltype(tag);
    auto xc = Exact<T>(x, "x", "int8, uint8, int16 or uint16");
    int64_t lo, hi;
    Bounds<T>(qmin, qmax, "qmin", "qmax", &lo, &hi);
    const T* px = xc.data();
    T* po = static_cast<T*>(out.mutable_data());
    const int64_t n = xc.size();
    py::gil_scoped_release release;
    HardSigmoidDpu<T>(px, n, p_in, p_out, lo, hi, mode, po);
  });
  return out;
}

// ----------------------------------------------------------------------------------------------
// Pooling

std::pair<int64_t, int64_t> Pair(py::handle obj, const char* name, int64_t lo) {
  std::vector<int64_t> v = IntParam(obj, name, lo, 1 << 20);
  if (v.size() == 1) return {v[0], v[0]};
  if (v.size() != 2) ValueError(std::string(name) + " must be an int or a pair, got " + Str(static_cast<int64_t>(v.size())) + " values");
  return {v[0], v[1]};
}

PoolGeometry Geometry(const py::array& x, py::handle kernel, py::handle stride, py::handle padding) {
  if (x.ndim() != 4) ValueError("x must be 4-D NHWC, got " + Str(x.ndim()) + " dimensions");
  PoolGeometry g{};
  g.N = x.shape(0); g.H = x.shape(1); g.W = x.shape(2); g.C = x.shape(3);
  std::tie(g.kh, g.kw) = Pair(kernel, "kernel", 1);
  if (stride.is_none()) {
    g.stride_h = g.kh; g.stride_w = g.kw;
  } else {
    std::tie(g.stride_h, g.stride_w) = Pair(stride, "stride", 1);
  }
  std::vector<int64_t> p = IntParam(padding, "padding", 0, 1 << 20);
  if (p.size() == 1) p = {p[0], p[0], p[0], p[0]};
  else if (p.size() == 2) p = {p[0], p[0], p[1], p[1]};
  else if (p.size() != 4) ValueError("padding must be an int, (pad_h, pad_w) or (top, bottom, left, right)");
  g.pad_top = p[0]; g.pad_bottom = p[1]; g.pad_left = p[2]; g.pad_right = p[3];
  if (g.pad_top >= g.kh || g.pad_bottom >= g.kh || g.pad_left >= g.kw || g.pad_right >= g.kw)
    ValueError("padding must be smaller than the kernel (every window needs an input tap)");
  if (g.H + g.pad_top + g.pad_bottom < g.kh || g.W + g.pad_left + g.pad_right < g.kw)
    ValueError("kernel is larger than the padded input");
  return g;
}

template <typename F>
py::array Pool(py::handle x_obj, py::handle kernel, py::handle stride, py::handle padding, F&& f) {
  py::array x = AsArray(x_obj, "x");
  const PoolGeometry g = Geometry(x, kernel, stride, padding);
  py::array out(x.dtype(), std::vector<py::ssize_t>{g.N, g.OH(), g.OW(), g.C});
  DispatchCode(x, "x", [&](auto tag) {
    using T = decltype(tag);
    auto xc = Exact<T>(x, "x", "int8, uint8, int16 or uint16");
    f(tag, xc.data(), g, static_cast<T*>(out.mutable_data()));
  });
  return out;
}

py::array MaxPoolPy(py::handle x, py::handle kernel, py::handle stride, py::handle padding, py::handle act_min,
                    py::handle act_max, py::handle threads_obj) {
  const ThreadsArg threads = ParseThreads(threads_obj, 1024);
  return Pool(x, kernel, stride, padding, [&](auto tag, const auto* px, const PoolGeometry& g, auto* po) {
    using T = decltype(tag);
    int64_t lo, hi;
    Bounds<T>(act_min, act_max, "act_min", "act_max", &lo, &hi);
    py::gil_scoped_release release;
    // whole output rows per item, one contiguous range per worker first (parallel.h); small pools run alone
    const int64_t rows = g.N * g.OH(), per_row = g.OW() * g.C * g.kh * g.kw;
    const int workers = static_cast<int>(std::min<int64_t>(resolve_threads(threads.threads),
                                                           std::max<int64_t>(1, rows * per_row / (int64_t{1} << 16))));
    if (workers <= 1) return MaxPool2d<T>(px, g, lo, hi, po);
    const int64_t items = std::min<int64_t>(rows, int64_t{workers} * 4), step = (rows + items - 1) / items;
    parallel_for_dynamic(items, workers, [&](int, int64_t i) {
      const int64_t begin = std::min(rows, i * step), end = std::min(rows, begin + step);
      if (begin < end) MaxPool2d<T>(px, g, lo, hi, po, begin, end);
    }, threads.pool);
  });
}

py::array AvgPoolTflitePy(py::handle x, py::handle kernel, py::handle stride, py::handle padding, py::handle act_min,
                          py::handle act_max, bool count_include_pad) {
  return Pool(x, kernel, stride, padding, [&](auto tag, const auto* px, const PoolGeometry& g, auto* po) {
    using T = decltype(tag);
    int64_t lo, hi;
    Bounds<T>(act_min, act_max, "act_min", "act_max", &lo, &hi);
    py::gil_scoped_release release;
    AvgPool2dTflite<T>(px, g, count_include_pad, lo, hi, po);
  });
}

py::array AvgPoolDpuPy(py::handle x, py::handle kernel, py::handle stride, py::handle padding, int shift, py::handle qmin,
                       py::handle qmax, py::handle factor_obj, py::handle rounding_obj) {
  const RoundingMode mode = Rounding(rounding_obj, "rounding");
  if (shift < -32 || shift > 32) ValueError("shift must be in [-32, 32], got " + Str(shift));
  return Pool(x, kernel, stride, padding, [&](auto tag, const auto* px, const PoolGeometry& g, auto* po) {
    using T = decltype(tag);
    DpuAvgPoolFactor f = DpuAvgPoolFactorFor(g.kh, g.kw);
    if (!factor_obj.is_none()) {
      const auto v = IntParam(factor_obj, "factor", 0, 1 << 30);
      if (v.size() != 2) ValueError("factor must be a pair (F, S)");
      if (v[1] > 40) ValueError("factor shift S must be in [0, 40], got " + Str(v[1]));
      f = {v[0], static_cast<int>(v[1])};
    }
    int64_t lo, hi;
    Bounds<T>(qmin, qmax, "qmin", "qmax", &lo, &hi);
    py::gil_scoped_release release;
    AvgPool2dDpu<T>(px, g, f.factor, f.shift, shift, lo, hi, mode, po);
  });
}

// ----------------------------------------------------------------------------------------------
// Lookup tables

py::array ApplyLutPy(py::handle x_obj, py::handle table_obj) {
  py::array x = AsArray(x_obj, "x");
  py::array t = AsArray(table_obj, "table");
  if (t.ndim() != 1) ValueError("table must be 1-D");
  py::array out(t.dtype(), Shape(x));
  DispatchCode(x, "x", [&](auto in_tag) {
    using In = decltype(in_tag);
    const int64_t need = sizeof(In) == 1 ? 256 : 65536;
    if (t.shape(0) != need)
      ValueError("table must have " + Str(need) + " entries for " + DtypeName(x) + " x, got " + Str(t.shape(0)));
    auto xc = Exact<In>(x, "x", "int8, uint8, int16 or uint16");
    auto run = [&](auto out_tag) {
      using Out = decltype(out_tag);
      auto tc = Exact<Out>(t, "table", "an integer type");
      const In* px = xc.data();
      const Out* pt = tc.data();
      Out* po = static_cast<Out*>(out.mutable_data());
      const int64_t n = xc.size();
      py::gil_scoped_release release;
      ApplyLut<In, Out>(px, n, pt, po);
    };
    if (IsDtype<int8_t>(t)) run(int8_t{});
    else if (IsDtype<uint8_t>(t)) run(uint8_t{});
    else if (IsDtype<int16_t>(t)) run(int16_t{});
    else if (IsDtype<uint16_t>(t)) run(uint16_t{});
    else if (IsDtype<int32_t>(t)) run(int32_t{});
    else TypeError("table must have dtype int8, uint8, int16, uint16 or int32, got " + DtypeName(t));
  });
  return out;
}

py::array LutTflitePy(const std::string& fn_in, py::handle s_in, py::handle zp_in, py::handle s_out, py::handle zp_out,
                      py::handle dtype_obj) {
  const std::string fn = Choice(py::str(fn_in), "function", {"logistic", "tanh"});
  const LutFunction f = fn == "logistic" ? LutFunction::LOGISTIC : LutFunction::TANH;
  const float si = static_cast<float>(Real(s_in, "input_scale"));
  const float so = static_cast<float>(Real(s_out, "output_scale"));
  py::dtype dt = py::dtype::from_args(py::reinterpret_borrow<py::object>(dtype_obj));
  if (dt.is(py::dtype::of<int8_t>())) {
    py::array_t<int8_t> out(256);
    BuildLutTfliteInt8<int8_t>(f, si, static_cast<int32_t>(Int(zp_in, "input_zero_point", -128, 127)), so,
                               static_cast<int32_t>(Int(zp_out, "output_zero_point", -128, 127)), out.mutable_data());
    return out;
  }
  if (dt.is(py::dtype::of<uint8_t>())) {
    py::array_t<uint8_t> out(256);
    BuildLutTfliteInt8<uint8_t>(f, si, static_cast<int32_t>(Int(zp_in, "input_zero_point", 0, 255)), so,
                                static_cast<int32_t>(Int(zp_out, "output_zero_point", 0, 255)), out.mutable_data());
    return out;
  }
  TypeError("dtype must be int8 or uint8, got " + py::str(dt).cast<std::string>());
}

}  // namespace

void bind_ops(py::module_& m) {
  m.def("add_int8_tflite", &AddTflitePy, py::arg("a"), py::arg("b"), py::kw_only(), py::arg("input1_offset"),
        py::arg("input1_multiplier"), py::arg("input1_shift"), py::arg("input2_offset"), py::arg("input2_multiplier"),
        py::arg("input2_shift"), py::arg("output_multiplier"), py::arg("output_shift"), py::arg("output_offset"),
        py::arg("act_min") = py::none(), py::arg("act_max") = py::none(), py::arg("left_shift") = 20,
        py::arg("rounding") = "double",
        "TFLite ADD (three MBQM, numerics A.5) on same-shape int8/uint8/int16 arrays; params from hwsim.numerics.tflite_add_params.");
  m.def("mul_int8_tflite", &MulTflitePy, py::arg("a"), py::arg("b"), py::kw_only(), py::arg("input1_offset"),
        py::arg("input2_offset"), py::arg("output_multiplier"), py::arg("output_shift"), py::arg("output_offset"),
        py::arg("act_min") = py::none(), py::arg("act_max") = py::none(), py::arg("rounding") = "double",
        "TFLite MUL: zp_o + MBQM((q1 + off1) * (q2 + off2), M, e), clamp.");
  m.def("add_float_scale", &FloatScaleBinaryPy<true>, py::arg("a"), py::arg("b"), py::arg("a_scale"), py::arg("a_zero_point"),
        py::arg("b_scale"), py::arg("b_zero_point"), py::arg("c_scale"), py::arg("c_zero_point"), py::kw_only(),
        py::arg("qmin") = py::none(), py::arg("qmax") = py::none(), py::arg("rounding") = RoundingMode::HALF_TO_EVEN,
        py::arg("form") = "mlas_avx2", py::arg("isa") = "auto", py::arg("threads") = 1,
        "Float32 QLinearAdd: form 'mlas_avx2' = round(fma(a, sa/sc, fma(b, sb/sc, zpc - (sa/sc*zpa + sb/sc*zpb)))) "
        "(onnxruntime x86), 'mlas_scalar' = round((sa*(a-zpa) + sb*(b-zpb)) / sc) + zpc. isa 'auto' uses the "
        "AVX2+FMA kernel where it applies (mlas_avx2, HALF_TO_EVEN, int8/uint8), 'scalar' the element loop; "
        "both give identical integers. threads: an int or a hwsim._core.Workers (same integers).");
  m.def("mul_float_scale", &FloatScaleBinaryPy<false>, py::arg("a"), py::arg("b"), py::arg("a_scale"), py::arg("a_zero_point"),
        py::arg("b_scale"), py::arg("b_zero_point"), py::arg("c_scale"), py::arg("c_zero_point"), py::kw_only(),
        py::arg("qmin") = py::none(), py::arg("qmax") = py::none(), py::arg("rounding") = RoundingMode::HALF_TO_EVEN,
        py::arg("form") = "scalar", py::arg("isa") = "auto", py::arg("threads") = 1,
        "Float32 mul: round((sa*(a-zpa)) * (sb*(b-zpb)) / sc) + zpc (form and isa are ignored; threads as add_float_scale).");
  m.def("eltwise_add_dpu", &EltwiseAddDpuPy, py::arg("a"), py::arg("b"), py::arg("fix_pos_a"), py::arg("fix_pos_b"),
        py::arg("fix_pos_out"), py::kw_only(), py::arg("qmin") = py::none(), py::arg("qmax") = py::none(),
        py::arg("rounding") = RoundingMode::HALF_UP,
        "DPU eltwise add: sat(round(a*2^(p_out-p_a) + b*2^(p_out-p_b))), exact, one rounding (numerics C.8).");
  m.def("hard_sigmoid_dpu", &HardSigmoidDpuPy, py::arg("x"), py::arg("fix_pos_in"), py::arg("fix_pos_out"),
        py::kw_only(), py::arg("qmin") = py::none(), py::arg("qmax") = py::none(),
        py::arg("rounding") = RoundingMode::HALF_UP,
        "DPU hard-sigmoid: sat(round(clamp(q*2731 + 3*2731*2^p_in, 0, 2^32) / 2^(p_in + 14 - p_out))) (numerics C.6).");
  m.def("global_avg_pool_float_scale",
        [](const py::array& x, int64_t x_zero_point, double scale, int64_t zero_point, int64_t qmin, int64_t qmax) {
          if (x.ndim() != 4) ValueError("x must be NHWC [N, H, W, C], got " + Str(x.ndim()) + " dimensions");
          if (!(scale > 0) || !std::isfinite(scale)) ValueError("scale must be finite and > 0");
          const int64_t n = x.shape(0), hw = x.shape(1) * x.shape(2), c = x.shape(3);
          if (hw >= (int64_t{1} << 24)) ValueError("H * W must be below 2^24 (the int32 sum must stay exact)");
          auto run = [&](auto tag) -> py::array {
            using T = decltype(tag);
            const int64_t tmin = std::numeric_limits<T>::min(), tmax = std::numeric_limits<T>::max();
            const int32_t xz = static_cast<int32_t>(Int(py::int_(x_zero_point), "x_zero_point", tmin, tmax));
            const int32_t yz = static_cast<int32_t>(Int(py::int_(zero_point), "zero_point", tmin, tmax));
            int64_t lo, hi;
            Bounds<T>(py::int_(qmin), py::int_(qmax), "qmin", "qmax", &lo, &hi);
            if (yz < lo || yz > hi) ValueError("zero_point must be in [qmin, qmax]");
            auto xc = py::array_t<T, py::array::c_style>::ensure(x);
            py::array_t<T> out({n, int64_t{1}, int64_t{1}, c});
            const float s = static_cast<float>(scale);
            T* po = out.mutable_data();
            const T* px = xc.data();
            py::gil_scoped_release release;
            GlobalAvgPoolFloatScale<T>(px, n, hw, c, xz, s, yz, lo, hi, po);
            return out;
          };
          if (x.dtype().is(py::dtype::of<uint8_t>())) return run(uint8_t{});
          if (x.dtype().is(py::dtype::of<int8_t>())) return run(int8_t{});
          TypeError("x must be uint8 or int8, got " + DtypeName(x));
          return py::array();
        },
        py::arg("x"), py::arg("x_zero_point"), py::arg("scale"), py::arg("zero_point"), py::arg("qmin"), py::arg("qmax"),
        "NHWC uint8/int8 global average pool -> [N, 1, 1, C]: acc = sum of q - H*W*x_zero_point (int32), then "
        "float32(acc) * float32(scale) clamped to [qmin - zp, qmax - zp], rounded half to even, + zp "
        "(onnxruntime QLinearGlobalAveragePool on x86; scale = s_in / (s_out * H * W) in float32).");
  m.def("max_pool2d", &MaxPoolPy, py::arg("x"), py::arg("kernel"), py::arg("stride") = py::none(), py::arg("padding") = 0,
        py::kw_only(), py::arg("act_min") = py::none(), py::arg("act_max") = py::none(), py::arg("threads") = 1,
        "NHWC max pool of raw codes over in-bounds taps, then clamp (TFLite MaxPool). threads: an int or a "
        "hwsim._core.Workers (same integers).");
  m.def("avg_pool2d_tflite", &AvgPoolTflitePy, py::arg("x"), py::arg("kernel"), py::arg("stride") = py::none(),
        py::arg("padding") = 0, py::kw_only(), py::arg("act_min") = py::none(), py::arg("act_max") = py::none(),
        py::arg("count_include_pad") = false,
        "NHWC TFLite AveragePool: raw-code sum / in-bounds count, rounded half away from zero (numerics A.6).");
  m.def("avg_pool2d_dpu", &AvgPoolDpuPy, py::arg("x"), py::arg("kernel"), py::arg("stride") = py::none(),
        py::arg("padding") = 0, py::arg("shift") = 0, py::kw_only(), py::arg("qmin") = py::none(), py::arg("qmax") = py::none(),
        py::arg("factor") = py::none(), py::arg("rounding") = RoundingMode::HALF_UP,
        "NHWC DPU average pool: sat(round(sum * F / 2^(S + shift))), shift = p_in - p_out, F/2^S from dpu_avgpool_factor.");
  m.def("dpu_avgpool_factor", [](int64_t kh, int64_t kw, bool use_table) {
        if (kh < 1 || kw < 1 || kh > 4096 || kw > 4096) ValueError("kernel sizes must be in [1, 4096]");
        const DpuAvgPoolFactor f = DpuAvgPoolFactorFor(kh, kw, use_table);
        return py::make_tuple(f.factor, f.shift);
      }, py::arg("kh"), py::arg("kw"), py::arg("use_table") = true,
      "(F, S) with F/2^S ~ 1/(kh*kw): the DPU table (numerics C.7) or, without it, the search.");
  m.def("apply_lut", &ApplyLutPy, py::arg("x"), py::arg("table"),
        "table[bit pattern of x]: 256 entries for 8-bit x, 65536 for 16-bit x; output dtype = table dtype.");
  m.def("lut_tflite_int8", &LutTflitePy, py::arg("function"), py::arg("input_scale"), py::arg("input_zero_point"),
        py::arg("output_scale"), py::arg("output_zero_point"), py::arg("dtype") = "int8",
        "TFLite LUTPopulateInt8 table for 'logistic' or 'tanh' (float32, libm expf/tanhf, RHAZ of y * (1/s_out)).");
}

}  // namespace hwsim::bindings
