// Bindings for the TFLite activation kernels (csrc/hwsim/activations_tflite.h) and SOFTMAX
// (csrc/hwsim/softmax_tflite.h). Thin: argument checks (TypeError/ValueError naming the argument), GIL
// released around the loops, arithmetic in csrc/hwsim.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "bindings/numerics_args.h"
#include "hwsim/activations_tflite.h"
#include "hwsim/softmax_tflite.h"

namespace py = pybind11;

namespace hwsim::bindings {
namespace {

using namespace hwsim::bindings::args;

// Calls f(T{}) for an 8-bit code array (int8 or uint8).
template <typename F>
void Dispatch8(const py::array& x, const char* name, F&& f) {
  if (IsDtype<int8_t>(x)) return f(int8_t{});
  if (IsDtype<uint8_t>(x)) return f(uint8_t{});
  TypeError(std::string(name) + " must have dtype int8 or uint8, got " + DtypeName(x));
}

// Dispatch8, and int16 codes too (the TFLite 16x8 kernels).
template <typename F>
void Dispatch8or16(const py::array& x, const char* name, F&& f) {
  if (IsDtype<int16_t>(x)) return f(int16_t{});
  Dispatch8(x, name, std::forward<F>(f));
}

int64_t Int(py::handle obj, const char* name, int64_t lo, int64_t hi) {
  const auto v = IntParam(obj, name, lo, hi);
  if (v.size() != 1) ValueError(std::string(name) + " must be a scalar");
  return v[0];
}

template <typename T>
void Bounds(py::handle lo_obj, py::handle hi_obj, int32_t* lo, int32_t* hi) {
  const int64_t tmin = std::numeric_limits<T>::min(), tmax = std::numeric_limits<T>::max();
  *lo = static_cast<int32_t>(lo_obj.is_none() ? tmin : Int(lo_obj, "qmin", tmin, tmax));
  *hi = static_cast<int32_t>(hi_obj.is_none() ? tmax : Int(hi_obj, "qmax", tmin, tmax));
  if (*lo > *hi) ValueError("qmin must be <= qmax, got " + Str(*lo) + " > " + Str(*hi));
}

py::array HardSwishPy(py::handle x_obj, py::handle zp_in, py::handle zp_out, py::handle m_out, py::handle e_out,
                      py::handle m_relu, py::handle e_relu, py::handle qmin, py::handle qmax) {
  py::array x = AsArray(x_obj, "x");
  const int32_t zi = static_cast<int32_t>(Int(zp_in, "input_zero_point", -255, 255));
  const int32_t zo = static_cast<int32_t>(Int(zp_out, "output_zero_point", -255, 255));
  const int16_t mo = static_cast<int16_t>(Int(m_out, "output_multiplier", 0, 32767));
  const int eo = static_cast<int>(Int(e_out, "output_shift", -31, 0));
  const int16_t mr = static_cast<int16_t>(Int(m_relu, "reluish_multiplier", 0, 32767));
  const int er = static_cast<int>(Int(e_relu, "reluish_shift", -31, 15));
  py::array out(x.dtype(), Shape(x));
  Dispatch8(x, "x", [&](auto tag) {
    using T = decltype(tag);
    auto xc = Exact<T>(x, "x", "int8 or uint8");
    int32_t lo, hi;
    Bounds<T>(qmin, qmax, &lo, &hi);
    const T* px = xc.data();
    T* po = static_cast<T*>(out.mutable_data());
    const int64_t n = xc.size();
    py::gil_scoped_release release;
    HardSwishTflite<T>(px, n, zi, zo, mo, eo, mr, er, lo, hi, po);
  });
  return out;
}

py::array LeakyReluTflitePy(py::handle x_obj, py::handle zp_in, py::handle zp_out, py::handle m_id,
                            py::handle e_id, py::handle m_a, py::handle e_a, py::handle qmin, py::handle qmax) {
  py::array x = AsArray(x_obj, "x");
  const int32_t zi = static_cast<int32_t>(Int(zp_in, "input_zero_point", -255, 255));
  const int32_t zo = static_cast<int32_t>(Int(zp_out, "output_zero_point", -255, 255));
  const int32_t mi = static_cast<int32_t>(Int(m_id, "multiplier_identity", 0, std::numeric_limits<int32_t>::max()));
  const int ei = static_cast<int>(Int(e_id, "shift_identity", -31, 22));
  const int32_t ma = static_cast<int32_t>(Int(m_a, "multiplier_alpha", 0, std::numeric_limits<int32_t>::max()));
  const int ea = static_cast<int>(Int(e_a, "shift_alpha", -31, 22));
  py::array out(x.dtype(), Shape(x));
  Dispatch8or16(x, "x", [&](auto tag) {
    using T = decltype(tag);
    auto xc = Exact<T>(x, "x", "int8, uint8 or int16");
    int32_t lo, hi;
    Bounds<T>(qmin, qmax, &lo, &hi);
    const T* px = xc.data();
    T* po = static_cast<T*>(out.mutable_data());
    const int64_t n = xc.size();
    py::gil_scoped_release release;
    LeakyReluTflite<T>(px, n, zi, zo, mi, ei, ma, ea, lo, hi, po);
  });
  return out;
}

py::array LeakyReluXnnpackPy(py::handle x_obj, py::handle zp_in, py::handle zp_out, py::handle m_pos,
                             py::handle m_neg, py::handle qmin, py::handle qmax) {
  py::array x = AsArray(x_obj, "x");
  const int32_t zi = static_cast<int32_t>(Int(zp_in, "input_zero_point", -255, 255));
  const int32_t zo = static_cast<int32_t>(Int(zp_out, "output_zero_point", -255, 255));
  const int32_t mp = static_cast<int32_t>(Int(m_pos, "positive_multiplier", -(1 << 23), 1 << 23));
  const int32_t mn = static_cast<int32_t>(Int(m_neg, "negative_multiplier", -(1 << 23), 1 << 23));
  py::array out(x.dtype(), Shape(x));
  Dispatch8(x, "x", [&](auto tag) {
    using T = decltype(tag);
    auto xc = Exact<T>(x, "x", "int8 or uint8");
    int32_t lo, hi;
    Bounds<T>(qmin, qmax, &lo, &hi);
    const T* px = xc.data();
    T* po = static_cast<T*>(out.mutable_data());
    const int64_t n = xc.size();
    py::gil_scoped_release release;
    LeakyReluXnnpack<T>(px, n, zi, zo, mp, mn, lo, hi, po);
  });
  return out;
}

// Rows and columns of a softmax over the last axis (at least 1-D, last axis non-empty).
void SoftmaxRows(const py::array& x, int64_t* rows, int64_t* C) {
  if (x.ndim() < 1) ValueError("x must have at least one dimension (softmax runs over the last axis)");
  *C = x.shape(x.ndim() - 1);
  if (*C < 1 && x.size() > 0) ValueError("x: the last axis must not be empty");
  *rows = *C > 0 ? x.size() / *C : 0;
}

py::array SoftmaxFixedPointPy(py::handle x_obj, py::handle m_obj, py::handle ls_obj, py::handle dmin_obj) {
  py::array x = AsArray(x_obj, "x");
  const int32_t m = static_cast<int32_t>(Int(m_obj, "beta_multiplier", 1, std::numeric_limits<int32_t>::max()));
  const int ls = static_cast<int>(Int(ls_obj, "beta_left_shift", 0, 30));
  // |diff| 2^left_shift must stay below 2^31 for every diff >= diff_min (CalculateInputRadius guarantees it)
  const int64_t dmin = Int(dmin_obj, "diff_min", -int64_t{std::numeric_limits<int32_t>::max()}, 0);
  if (std::min<int64_t>(-dmin, 255) * (int64_t{1} << ls) > std::numeric_limits<int32_t>::max())
    ValueError("diff_min * 2^beta_left_shift must fit int32, got diff_min " + Str(dmin) + ", shift " + Str(ls));
  py::array out(x.dtype(), Shape(x));
  Dispatch8(x, "x", [&](auto tag) {
    using T = decltype(tag);
    auto xc = Exact<T>(x, "x", "int8 or uint8");
    int64_t rows, C;
    SoftmaxRows(xc, &rows, &C);
    if (C > (int64_t{1} << 11))
      ValueError("x: softmax over more than 2048 values overflows the Q12.19 sum, got " + Str(C));
    const T* px = xc.data();
    T* po = static_cast<T*>(out.mutable_data());
    py::gil_scoped_release release;
    SoftmaxFixedPoint<T>(px, rows, C, m, ls, static_cast<int32_t>(dmin), po);
  });
  return out;
}

py::array SoftmaxFloatTablePy(py::handle x_obj, py::handle table_obj, py::handle scale_obj, py::handle zp_obj,
                              py::handle qmin, py::handle qmax) {
  py::array x = AsArray(x_obj, "x");
  py::array t = AsArray(table_obj, "table");
  auto tc = Exact<float>(t, "table", "float32");
  if (tc.ndim() != 1 || tc.shape(0) != 256) ValueError("table must be 1-D with 256 entries");
  const float scale = py::cast<float>(scale_obj);
  if (!(scale > 0.0f) || !std::isfinite(scale)) ValueError("output_scale must be positive and finite");
  const int32_t zo = static_cast<int32_t>(Int(zp_obj, "output_zero_point", -255, 255));
  py::array out(x.dtype(), Shape(x));
  Dispatch8(x, "x", [&](auto tag) {
    using T = decltype(tag);
    auto xc = Exact<T>(x, "x", "int8 or uint8");
    int32_t lo, hi;
    Bounds<T>(qmin, qmax, &lo, &hi);
    int64_t rows, C;
    SoftmaxRows(xc, &rows, &C);
    const T* px = xc.data();
    const float* pt = tc.data();
    T* po = static_cast<T*>(out.mutable_data());
    py::gil_scoped_release release;
    SoftmaxFloatTable<T>(px, rows, C, pt, scale, zo, lo, hi, po);
  });
  return out;
}

}  // namespace

void bind_activations(py::module_& m) {
  m.def("hard_swish_tflite", &HardSwishPy, py::arg("x"), py::kw_only(), py::arg("input_zero_point"),
        py::arg("output_zero_point"), py::arg("output_multiplier"), py::arg("output_shift"),
        py::arg("reluish_multiplier"), py::arg("reluish_shift"), py::arg("qmin") = py::none(),
        py::arg("qmax") = py::none(),
        "TFLite HARD_SWISH (reference kernel, int16 fixed point with a truncating product; numerics A.8). "
        "Multipliers are the int16 ones (DownScaleInt32ToInt16Multiplier).");
  m.def("leaky_relu_tflite", &LeakyReluTflitePy, py::arg("x"), py::kw_only(), py::arg("input_zero_point"),
        py::arg("output_zero_point"), py::arg("multiplier_identity"), py::arg("shift_identity"),
        py::arg("multiplier_alpha"), py::arg("shift_alpha"), py::arg("qmin") = py::none(),
        py::arg("qmax") = py::none(),
        "TFLite reference LEAKY_RELU: zp_out + MBQM(q - zp_in) with the identity or the alpha multiplier "
        "(double rounding; numerics A.7); x int8, uint8 or int16 (the 16x8 kernel, measured).");
  m.def("leaky_relu_xnnpack", &LeakyReluXnnpackPy, py::arg("x"), py::kw_only(), py::arg("input_zero_point"),
        py::arg("output_zero_point"), py::arg("positive_multiplier"), py::arg("negative_multiplier"),
        py::arg("qmin") = py::none(), py::arg("qmax") = py::none(),
        "XNNPACK LEAKY_RELU: zp_out + (((q - zp_in) m + 128) >> 8), m the 8-bit fixed-point multiplier of the "
        "sign of q - zp_in (measured).");
  m.def("softmax_tflite_fixed_point", &SoftmaxFixedPointPy, py::arg("x"), py::kw_only(), py::arg("beta_multiplier"),
        py::arg("beta_left_shift"), py::arg("diff_min"),
        "TFLite reference SOFTMAX over the last axis (gemmlowp fixed point; numerics A.9, second bullet); "
        "output scale 1/256, zero point the type's minimum.");
  m.def("softmax_tflite_float_table", &SoftmaxFloatTablePy, py::arg("x"), py::arg("table"), py::kw_only(),
        py::arg("output_scale"), py::arg("output_zero_point"), py::arg("qmin") = py::none(),
        py::arg("qmax") = py::none(),
        "TFLite optimized SOFTMAX over the last axis: float32 table[max - q], sequential float32 sum, "
        "reciprocal, (p + 0.5) truncated (numerics A.9, first bullet).");
}

}  // namespace hwsim::bindings
