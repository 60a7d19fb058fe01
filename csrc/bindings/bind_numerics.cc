// Bindings for rounding, saturation, fixed point, requantization, quantize/dequantize and packing.
// Thin: check arguments (TypeError/ValueError naming the argument), release the GIL, call csrc/hwsim.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bindings/numerics_args.h"
#include "hwsim/fixedpoint.h"
#include "hwsim/int_range.h"
#include "hwsim/packing.h"
#include "hwsim/quantize.h"
#include "hwsim/quantize_multiplier.h"
#include "hwsim/requantize.h"
#include "hwsim/rounding.h"

namespace py = pybind11;

namespace hwsim::bindings {
namespace {

using namespace hwsim::bindings::args;

// ----------------------------------------------------------------------------------------------
// Element-wise primitives

py::array RoundFloatPy(py::handle x_obj, RoundingMode mode, uint64_t seed) {
  py::array x = AsArray(x_obj, "x");
  py::array_t<double> out(Shape(x));
  double* o = out.mutable_data();
  const int64_t n = x.size();
  if (IsDtype<float>(x)) {
    auto a = Exact<float>(x, "x", "float32 or float64");
    const float* p = a.data();
    py::gil_scoped_release release;
    for (int64_t i = 0; i < n; ++i) o[i] = RoundFloat(p[i], mode, seed, static_cast<uint64_t>(i));
  } else {
    auto a = Exact<double>(x, "x", "float32 or float64");
    const double* p = a.data();
    py::gil_scoped_release release;
    for (int64_t i = 0; i < n; ++i) o[i] = RoundFloat(p[i], mode, seed, static_cast<uint64_t>(i));
  }
  return out;
}

py::array RoundingRightShiftPy(py::handle x_obj, int n, RoundingMode mode, uint64_t seed) {
  py::array x = AsArray(x_obj, "x");
  py::array_t<int64_t> out(Shape(x));
  int64_t* o = out.mutable_data();
  const int64_t count = x.size();
  if (IsDtype<int32_t>(x)) {
    if (n < 0 || n > 31) ValueError("n must be in [0, 31] for int32 x, got " + Str(n));
    auto a = Exact<int32_t>(x, "x", "int32 or int64");
    const int32_t* p = a.data();
    py::gil_scoped_release release;
    for (int64_t i = 0; i < count; ++i) o[i] = RoundingRightShift<int64_t>(p[i], n, mode, seed, static_cast<uint64_t>(i));
  } else {
    if (n < 0 || n > 63) ValueError("n must be in [0, 63], got " + Str(n));
    auto a = Exact<int64_t>(x, "x", "int32 or int64");
    const int64_t* p = a.data();
    py::gil_scoped_release release;
    for (int64_t i = 0; i < count; ++i) o[i] = RoundingRightShift<int64_t>(p[i], n, mode, seed, static_cast<uint64_t>(i));
  }
  return out;
}

template <typename T, typename F>
py::array BinarySame(py::handle a_obj, py::handle b_obj, F f) {
  py::array a0 = AsArray(a_obj, "a"), b0 = AsArray(b_obj, "b");
  auto a = Exact<T>(a0, "a", IsDtype<int32_t>(a0) ? "int32" : "int32 or int16");
  auto b = Exact<T>(b0, "b", IsDtype<int32_t>(a0) ? "int32 (same as a)" : "int16 (same as a)");
  if (Shape(a0) != Shape(b0)) ValueError("a and b must have the same shape");
  py::array_t<T> out(Shape(a0));
  const T* pa = a.data();
  const T* pb = b.data();
  T* po = out.mutable_data();
  const int64_t n = a.size();
  py::gil_scoped_release release;
  for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[i]);
  return out;
}

py::array SrdhmPy(py::handle a, py::handle b) {
  py::array a0 = AsArray(a, "a");
  if (IsDtype<int16_t>(a0))
    return BinarySame<int16_t>(a, b, [](int16_t x, int16_t y) { return SaturatingRoundingDoublingHighMul(x, y); });
  return BinarySame<int32_t>(a, b, [](int32_t x, int32_t y) { return SaturatingRoundingDoublingHighMul(x, y); });
}

py::array SdhmPy(py::handle a, py::handle b) {
  py::array a0 = AsArray(a, "a");
  if (IsDtype<int16_t>(a0))
    return BinarySame<int16_t>(a, b, [](int16_t x, int16_t y) { return SaturatingDoublingHighMul(x, y); });
  return BinarySame<int32_t>(a, b, [](int32_t x, int32_t y) { return SaturatingDoublingHighMul(x, y); });
}

py::array RdbpPy(py::handle x_obj, int n) {
  py::array x = AsArray(x_obj, "x");
  if (IsDtype<int16_t>(x)) {
    if (n < 0 || n > 15) ValueError("n must be in [0, 15] for int16 x, got " + Str(n));
    auto a = Exact<int16_t>(x, "x", "int32 or int16");
    py::array_t<int16_t> out(Shape(x));
    const int16_t* p = a.data();
    int16_t* o = out.mutable_data();
    const int64_t count = a.size();
    py::gil_scoped_release release;
    for (int64_t i = 0; i < count; ++i) o[i] = RoundingDivideByPOT<int16_t>(p[i], n);
    return out;
  }
  if (n < 0 || n > 31) ValueError("n must be in [0, 31], got " + Str(n));
  auto a = Exact<int32_t>(x, "x", "int32 or int16");
  py::array_t<int32_t> out(Shape(x));
  const int32_t* p = a.data();
  int32_t* o = out.mutable_data();
  const int64_t count = a.size();
  py::gil_scoped_release release;
  for (int64_t i = 0; i < count; ++i) o[i] = RoundingDivideByPOT<int32_t>(p[i], n);
  return out;
}

py::object QuantizeMultiplierPy(py::handle real, bool single_rounding) {
  py::array a = AsArray(real, "real");
  const char k = a.dtype().kind();
  if (k != 'f' && k != 'i' && k != 'u') TypeError("real must be a real number, got dtype " + DtypeName(a));
  auto c = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
  const int64_t n = c.size();
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(c.data()[i])) ValueError("real must be finite");
  if (a.ndim() == 0) {
    const QuantizedMultiplier q = QuantizeMultiplier(c.data()[0], single_rounding);
    return py::make_tuple(q.multiplier, q.shift);
  }
  py::array_t<int32_t> m(Shape(a)), s(Shape(a));
  for (int64_t i = 0; i < n; ++i) {
    const QuantizedMultiplier q = QuantizeMultiplier(c.data()[i], single_rounding);
    m.mutable_data()[i] = q.multiplier;
    s.mutable_data()[i] = q.shift;
  }
  return py::make_tuple(m, s);
}

MultiplierVariant Variant(py::handle obj, const char* name) {
  if (py::isinstance<MultiplierVariant>(obj)) return obj.cast<MultiplierVariant>();
  const std::string s = Choice(obj, name, {"double", "single", "int64_16bit"});
  if (s == "double") return MultiplierVariant::DOUBLE_ROUNDING;
  if (s == "single") return MultiplierVariant::SINGLE_ROUNDING;
  return MultiplierVariant::INT64_16BIT;
}

void CheckShiftRange(const std::vector<int64_t>& shift, MultiplierVariant v) {
  const int64_t hi = v == MultiplierVariant::INT64_16BIT ? 7 : 30;
  for (int64_t s : shift)
    if (s < -31 || s > hi) ValueError("shift must be in [-31, " + Str(hi) + "], got " + Str(s));
}

py::array MbqmPy(py::handle x_obj, py::handle m_obj, py::handle s_obj, py::handle variant_obj) {
  const MultiplierVariant v = Variant(variant_obj, "variant");
  py::array x = AsArray(x_obj, "x");
  int64_t rows, C;
  RowsC(x, &rows, &C);
  const auto mult = ToInt32(IntParam(m_obj, "multiplier", v == MultiplierVariant::DOUBLE_ROUNDING ? INT32_MIN : 0, INT32_MAX));
  const auto shift64 = IntParam(s_obj, "shift", -31, 30);
  CheckShiftRange(shift64, v);
  const auto shift = ToInt32(shift64);
  RequireParamLength(mult.size(), C, "multiplier");
  RequireParamLength(shift.size(), C, "shift");
  py::array_t<int32_t> out(Shape(x));
  int32_t* o = out.mutable_data();
  if (IsDtype<int64_t>(x)) {
    if (v != MultiplierVariant::INT64_16BIT) TypeError("x must have dtype int32 unless variant is 'int64_16bit'");
    auto a = Exact<int64_t>(x, "x", "int64");
    const int64_t* p = a.data();
    for (int64_t i = 0; i < a.size(); ++i)
      if (p[i] < -(int64_t{1} << 47) || p[i] >= (int64_t{1} << 47)) ValueError("x must be in [-2^47, 2^47) for 'int64_16bit'");
    py::gil_scoped_release release;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < C; ++c)
        o[r * C + c] = MultiplyByQuantizedMultiplierInt64(p[r * C + c], Pick(mult.data(), mult.size(), c), Pick(shift.data(), shift.size(), c));
    return out;
  }
  auto a = Exact<int32_t>(x, "x", "int32 (or int64 with variant 'int64_16bit')");
  const int32_t* p = a.data();
  py::gil_scoped_release release;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < C; ++c) {
      const int32_t m = Pick(mult.data(), mult.size(), c);
      const int sh = Pick(shift.data(), shift.size(), c);
      const int32_t xv = p[r * C + c];
      o[r * C + c] = v == MultiplierVariant::DOUBLE_ROUNDING   ? MultiplyByQuantizedMultiplierDoubleRounding(xv, m, sh)
                     : v == MultiplierVariant::SINGLE_ROUNDING ? MultiplyByQuantizedMultiplierSingleRounding(xv, m, sh)
                                                               : MultiplyByQuantizedMultiplierInt64(xv, m, sh);
    }
  }
  return out;
}

// ----------------------------------------------------------------------------------------------
// Requantization

py::array RequantizeFloatPy(py::handle acc_obj, py::handle scale_obj, py::handle zp_obj, int64_t qmin, int64_t qmax,
                            py::handle bias_obj, py::handle bias_scale_obj, const std::string& precision_in,
                            const std::string& scale_op_in, py::handle bias_mode_obj, const std::string& clamp_in,
                            py::handle rounding_obj, uint64_t seed, py::handle out_dtype, py::handle isa_obj) {
  const RoundingMode rounding = Rounding(rounding_obj, "rounding");
  const std::string isa_name = Choice(isa_obj, "isa", {"auto", "scalar", "avx2", "avx512"});
  RequantIsa isa = host_requant_isa();
  if (isa_name != "auto") {
    isa = isa_name == "scalar" ? RequantIsa::Scalar : isa_name == "avx2" ? RequantIsa::Avx2 : RequantIsa::Avx512;
    if (!requant_isa_supported(isa, detect_cpu_features()))
      ValueError("isa '" + isa_name + "' is not supported by this CPU");
  }
  const std::string precision = Choice(py::str(precision_in), "precision", {"fp32", "fp64"});
  const std::string scale_op = Choice(py::str(scale_op_in), "scale_op", {"multiply", "divide"});
  const std::string clamp = Choice(py::str(clamp_in), "clamp", {"after_rounding", "before_rounding"});
  py::array acc0 = AsArray(acc_obj, "acc");
  auto acc = Exact<int32_t>(acc0, "acc", "int32");
  int64_t rows, C;
  RowsC(acc0, &rows, &C);
  const py::dtype dt = OutDtype(out_dtype, qmin, qmax);
  const auto scale = FloatParam(scale_obj, "scale", true);
  RequireParamLength(scale.size(), C, "scale");
  const auto zp = ToInt32(IntParam(zp_obj, "zero_point", INT32_MIN, INT32_MAX));
  RequireParamLength(zp.size(), C, "zero_point");
  for (int32_t z : zp)
    if (z < qmin || z > qmax) ValueError("zero_point must be in [qmin, qmax], got " + Str(z));

  FloatRequantOptions o;
  o.scale_divides = scale_op == "divide";
  o.clamp_before_rounding = clamp == "before_rounding";
  o.rounding = rounding;
  o.seed = seed;
  std::vector<int32_t> bias_i;
  std::vector<double> bias_f, bias_scale;
  if (!bias_obj.is_none()) {
    py::array b = AsArray(bias_obj, "bias");
    std::string mode;
    if (bias_mode_obj.is_none()) {
      mode = b.dtype().kind() == 'f' ? "float_divide" : "int32";
    } else {
      mode = Choice(bias_mode_obj, "bias_mode", {"int32", "float_divide", "float_reciprocal"});
    }
    if (b.ndim() != 1 || b.shape(0) != C)
      ValueError("bias must be 1-D of length " + Str(C) + " (the size of the last axis of acc)");
    if (mode == "int32") {
      auto bi = Exact<int32_t>(b, "bias", "int32 (bias_mode 'int32')");
      bias_i.assign(bi.data(), bi.data() + bi.size());
      o.bias = FloatBias::INT32;
    } else {
      if (b.dtype().kind() != 'f') TypeError("bias must be float for bias_mode '" + mode + "', got " + DtypeName(b));
      bias_f = FloatParam(b, "bias", false);
      if (bias_scale_obj.is_none()) ValueError("bias_scale is required for a float bias");
      bias_scale = FloatParam(bias_scale_obj, "bias_scale", true);
      RequireParamLength(bias_scale.size(), C, "bias_scale");
      o.bias = mode == "float_divide" ? FloatBias::FLOAT_DIVIDE : FloatBias::FLOAT_RECIPROCAL;
    }
  } else if (!bias_mode_obj.is_none()) {
    Choice(bias_mode_obj, "bias_mode", {"int32", "float_divide", "float_reciprocal"});
  }

  py::array out(dt, Shape(acc0));
  const int32_t* pa = acc.data();
  void* po = out.mutable_data();
  auto run = [&](auto real_tag) {
    using Real = decltype(real_tag);
    std::vector<Real> s(scale.begin(), scale.end()), bf(bias_f.begin(), bias_f.end()), bs(bias_scale.begin(), bias_scale.end());
    DispatchOut(dt, [&](auto out_tag) {
      using Out = decltype(out_tag);
      py::gil_scoped_release release;
      RequantizeFloat<Real, Out>(pa, rows, C, bias_i.empty() ? nullptr : bias_i.data(), bf.empty() ? nullptr : bf.data(),
                                 bs.empty() ? nullptr : bs.data(), static_cast<int64_t>(bs.size()), s.data(),
                                 static_cast<int64_t>(s.size()), zp.data(), static_cast<int64_t>(zp.size()), qmin, qmax, o,
                                 static_cast<Out*>(po), &isa);
    });
  };
  if (precision == "fp32") run(float{}); else run(double{});
  return out;
}

py::array RequantizeFixedPointPy(py::handle acc_obj, py::handle m_obj, py::handle s_obj, py::handle zp_obj, int64_t qmin,
                                 int64_t qmax, py::handle bias_obj, py::handle rounding_obj, py::handle out_dtype) {
  const MultiplierVariant v = Variant(rounding_obj, "rounding");
  py::array acc0 = AsArray(acc_obj, "acc");
  int64_t rows, C;
  RowsC(acc0, &rows, &C);
  const py::dtype dt = OutDtype(out_dtype, qmin, qmax);
  const auto mult = ToInt32(IntParam(m_obj, "multiplier", v == MultiplierVariant::DOUBLE_ROUNDING ? INT32_MIN : 0, INT32_MAX));
  const auto shift64 = IntParam(s_obj, "shift", -31, 30);
  CheckShiftRange(shift64, v);
  const auto shift = ToInt32(shift64);
  RequireParamLength(mult.size(), C, "multiplier");
  RequireParamLength(shift.size(), C, "shift");
  const auto zp = ToInt32(IntParam(zp_obj, "zero_point", INT32_MIN, INT32_MAX));
  RequireParamLength(zp.size(), C, "zero_point");
  py::array out(dt, Shape(acc0));
  void* po = out.mutable_data();
  auto run = [&](auto acc_tag, const char* acc_name) {
    using Acc = decltype(acc_tag);
    auto acc = Exact<Acc>(acc0, "acc", acc_name);
    py::array_t<Acc, py::array::c_style> bias;
    if (!bias_obj.is_none()) {
      py::array b = AsArray(bias_obj, "bias");
      bias = Exact<Acc>(b, "bias", acc_name);
      if (b.ndim() != 1 || b.shape(0) != C) ValueError("bias must be 1-D of length " + Str(C) + " (the size of the last axis of acc)");
    }
    const Acc* pb = bias_obj.is_none() ? nullptr : bias.data();
    const Acc* pa = acc.data();
    DispatchOut(dt, [&](auto out_tag) {
      using Out = decltype(out_tag);
      py::gil_scoped_release release;
      RequantizeFixedPoint<Acc, Out>(pa, rows, C, pb, mult.data(), static_cast<int64_t>(mult.size()), shift.data(),
                                     static_cast<int64_t>(shift.size()), zp.data(), static_cast<int64_t>(zp.size()), qmin, qmax, v,
                                     static_cast<Out*>(po));
    });
  };
  if (IsDtype<int64_t>(acc0)) {
    if (v != MultiplierVariant::INT64_16BIT) TypeError("acc must have dtype int32 unless rounding is 'int64_16bit'");
    auto a = Exact<int64_t>(acc0, "acc", "int64");
    for (int64_t i = 0; i < a.size(); ++i)
      if (a.data()[i] < -(int64_t{1} << 47) || a.data()[i] >= (int64_t{1} << 47)) ValueError("acc must be in [-2^47, 2^47) for 'int64_16bit'");
    run(int64_t{}, "int64");
  } else {
    run(int32_t{}, "int32");
  }
  return out;
}

py::array RequantizePow2Py(py::handle acc_obj, py::handle shift_cut_obj, py::handle zp_obj, int64_t qmin, int64_t qmax,
                           py::handle bias_obj, py::handle shift_bias_obj, py::handle rounding_obj, uint64_t seed,
                           py::handle out_dtype) {
  const RoundingMode rounding = Rounding(rounding_obj, "rounding");
  py::array acc0 = AsArray(acc_obj, "acc");
  int64_t rows, C;
  RowsC(acc0, &rows, &C);
  const py::dtype dt = OutDtype(out_dtype, qmin, qmax);
  const auto shift_cut = ToInt32(IntParam(shift_cut_obj, "shift_cut", -32, 32));
  RequireParamLength(shift_cut.size(), C, "shift_cut");
  const auto shift_bias = ToInt32(IntParam(shift_bias_obj, "shift_bias", -32, 32));
  RequireParamLength(shift_bias.size(), C, "shift_bias");
  const auto zp = ToInt32(IntParam(zp_obj, "zero_point", INT32_MIN, INT32_MAX));
  RequireParamLength(zp.size(), C, "zero_point");
  py::array out(dt, Shape(acc0));
  void* po = out.mutable_data();
  auto run = [&](auto acc_tag, const char* acc_name) {
    using Acc = decltype(acc_tag);
    auto acc = Exact<Acc>(acc0, "acc", "int32 or int64");
    py::array_t<Acc, py::array::c_style> bias;
    if (!bias_obj.is_none()) {
      py::array b = AsArray(bias_obj, "bias");
      bias = Exact<Acc>(b, "bias", acc_name);
      if (b.ndim() != 1 || b.shape(0) != C) ValueError("bias must be 1-D of length " + Str(C) + " (the size of the last axis of acc)");
    }
    const Acc* pb = bias_obj.is_none() ? nullptr : bias.data();
    const Acc* pa = acc.data();
    DispatchOut(dt, [&](auto out_tag) {
      using Out = decltype(out_tag);
      py::gil_scoped_release release;
      RequantizePow2<Acc, Out>(pa, rows, C, pb, shift_bias.data(), static_cast<int64_t>(shift_bias.size()), shift_cut.data(),
                               static_cast<int64_t>(shift_cut.size()), zp.data(), static_cast<int64_t>(zp.size()), qmin, qmax,
                               rounding, seed, static_cast<Out*>(po));
    });
  };
  if (IsDtype<int64_t>(acc0)) run(int64_t{}, "int64 (same as acc)"); else run(int32_t{}, "int32 (same as acc)");
  return out;
}

// ----------------------------------------------------------------------------------------------
// Quantize / dequantize

// Parameter layout from x's shape, axis and group_size; checks the parameter sizes.
ParamLayout Layout(const py::array& x, py::handle axis_obj, py::handle group_obj, int64_t n_params,
                   const std::vector<py::ssize_t>& param_shape, const char* pname) {
  ParamLayout L;
  const int64_t nd = x.ndim();
  if (axis_obj.is_none()) {
    if (!group_obj.is_none()) ValueError("group_size needs axis");
    if (n_params != 1) ValueError(std::string(pname) + " must have one element when axis is None, got " + Str(n_params));
    L.outer = 1; L.D = x.size(); L.inner = 1; L.kind = 0;
    return L;
  }
  int64_t axis = py::cast<int64_t>(axis_obj);
  if (axis < -nd || axis >= nd) ValueError("axis must be in [" + Str(-nd) + ", " + Str(nd - 1) + "], got " + Str(axis));
  if (axis < 0) axis += nd;
  L.D = x.shape(axis);
  for (int64_t d = 0; d < axis; ++d) L.outer *= x.shape(d);
  for (int64_t d = axis + 1; d < nd; ++d) L.inner *= x.shape(d);
  if (group_obj.is_none()) {
    L.kind = 1;
    if (n_params != L.D || param_shape.size() != 1)
      ValueError(std::string(pname) + " must be 1-D of length " + Str(L.D) + " (x.shape[axis]), got size " + Str(n_params));
    return L;
  }
  const int64_t g = py::cast<int64_t>(group_obj);
  if (g < 1) ValueError("group_size must be >= 1, got " + Str(g));
  L.kind = 2;
  L.group_size = g;
  L.n_groups = (L.D + g - 1) / g;
  if (static_cast<int64_t>(param_shape.size()) != nd) ValueError(std::string(pname) + " must have x's number of dimensions for group_size");
  for (int64_t d = 0; d < nd; ++d) {
    const int64_t want = d == axis ? L.n_groups : x.shape(d);
    if (param_shape[d] != want)
      ValueError(std::string(pname) + " has shape[" + Str(d) + "] = " + Str(param_shape[d]) + ", expected " + Str(want));
  }
  return L;
}

std::vector<int64_t> FlatInts(py::handle obj, const char* name, int64_t lo, int64_t hi, std::vector<py::ssize_t>* shape) {
  py::array a = AsArray(obj, name);
  RequireIntegerKind(a, name);
  *shape = Shape(a);
  auto c = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
  std::vector<int64_t> v(c.data(), c.data() + c.size());
  if (v.empty()) ValueError(std::string(name) + " must not be empty");
  for (int64_t x : v)
    if (x < lo || x > hi) ValueError(std::string(name) + " must be in [" + Str(lo) + ", " + Str(hi) + "], got " + Str(x));
  return v;
}

std::vector<double> FlatReals(py::handle obj, const char* name, std::vector<py::ssize_t>* shape) {
  py::array a = AsArray(obj, name);
  const char k = a.dtype().kind();
  if (k != 'f' && k != 'i' && k != 'u') TypeError(std::string(name) + " must be real, got dtype " + DtypeName(a));
  *shape = Shape(a);
  auto c = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
  std::vector<double> v(c.data(), c.data() + c.size());
  if (v.empty()) ValueError(std::string(name) + " must not be empty");
  for (double x : v)
    if (!std::isfinite(x) || !(x > 0)) ValueError(std::string(name) + " must be finite and > 0");
  return v;
}

py::array QuantizePy(py::handle x_obj, py::handle scale_obj, py::handle zp_obj, int64_t qmin, int64_t qmax, py::handle axis,
                     py::handle group_size, py::handle rounding_obj, py::handle overflow_obj, const std::string& method_in,
                     const std::string& precision_in, uint64_t seed, py::handle out_dtype) {
  const RoundingMode rounding = Rounding(rounding_obj, "rounding");
  if (!py::isinstance<OverflowMode>(overflow_obj)) TypeError("overflow must be an OverflowMode");
  const OverflowMode overflow = overflow_obj.cast<OverflowMode>();
  const std::string method =
      Choice(py::str(method_in), "method", {"divide", "multiply_reciprocal", "fma_reciprocal", "multiply_add_reciprocal"});
  const std::string precision = Choice(py::str(precision_in), "precision", {"fp32", "fp64"});
  py::array x = AsArray(x_obj, "x");
  if (!IsDtype<float>(x) && !IsDtype<double>(x)) TypeError("x must have dtype float32 or float64, got " + DtypeName(x));
  const py::dtype dt = OutDtype(out_dtype, qmin, qmax);
  std::vector<py::ssize_t> sshape, zshape;
  const auto scale = FlatReals(scale_obj, "scale", &sshape);
  const auto zp64 = FlatInts(zp_obj, "zero_point", qmin, qmax, &zshape);
  const ParamLayout L = Layout(x, axis, group_size, static_cast<int64_t>(scale.size()), sshape, "scale");
  if (zp64.size() == 1 && scale.size() != 1) {
    // a single zero point broadcasts over every scale
  } else {
    Layout(x, axis, group_size, static_cast<int64_t>(zp64.size()), zshape, "zero_point");
  }
  std::vector<int32_t> zp(scale.size());
  for (size_t i = 0; i < zp.size(); ++i) zp[i] = static_cast<int32_t>(zp64.size() == 1 ? zp64[0] : zp64[i]);
  const IntRange range = RangeForBounds(qmin, qmax);
  const QuantizeMethod m = method == "divide" ? QuantizeMethod::DIVIDE
                           : method == "multiply_reciprocal" ? QuantizeMethod::MULTIPLY_RECIPROCAL
                           : method == "fma_reciprocal"      ? QuantizeMethod::FMA_RECIPROCAL
                                                             : QuantizeMethod::MULTIPLY_ADD_RECIPROCAL;
  py::array out(dt, Shape(x));
  void* po = out.mutable_data();
  auto run_in = [&](auto in_tag) {
    using In = decltype(in_tag);
    auto xa = Exact<In>(x, "x", "float32 or float64");
    const In* px = xa.data();
    auto run_real = [&](auto real_tag) {
      using Real = decltype(real_tag);
      std::vector<Real> s(scale.begin(), scale.end());
      DispatchOut(dt, [&](auto out_tag) {
        using Out = decltype(out_tag);
        py::gil_scoped_release release;
        Quantize<In, Real, Out>(px, L, s.data(), zp.data(), range, overflow, rounding, seed, m, static_cast<Out*>(po));
      });
    };
    if (precision == "fp32") run_real(float{}); else run_real(double{});
  };
  if (IsDtype<float>(x)) run_in(float{}); else run_in(double{});
  return out;
}

py::array DequantizePy(py::handle q_obj, py::handle scale_obj, py::handle zp_obj, py::handle axis, py::handle group_size,
                       const std::string& method_in, const std::string& precision_in) {
  const std::string method = Choice(py::str(method_in), "method", {"subtract_then_scale", "scale_then_subtract"});
  const std::string precision = Choice(py::str(precision_in), "precision", {"fp32", "fp64"});
  py::array q = AsArray(q_obj, "q");
  std::vector<py::ssize_t> sshape, zshape;
  const auto scale = FlatReals(scale_obj, "scale", &sshape);
  const auto zp64 = FlatInts(zp_obj, "zero_point", INT32_MIN, INT32_MAX, &zshape);
  const ParamLayout L = Layout(q, axis, group_size, static_cast<int64_t>(scale.size()), sshape, "scale");
  if (!(zp64.size() == 1 && scale.size() != 1)) Layout(q, axis, group_size, static_cast<int64_t>(zp64.size()), zshape, "zero_point");
  std::vector<int32_t> zp(scale.size());
  for (size_t i = 0; i < zp.size(); ++i) zp[i] = static_cast<int32_t>(zp64.size() == 1 ? zp64[0] : zp64[i]);
  const DequantizeMethod m = method == "subtract_then_scale" ? DequantizeMethod::SUBTRACT_THEN_SCALE : DequantizeMethod::SCALE_THEN_SUBTRACT;
  py::object result;
  auto run_real = [&](auto real_tag) {
    using Real = decltype(real_tag);
    std::vector<Real> s(scale.begin(), scale.end());
    py::array_t<Real> out(Shape(q));
    Real* po = out.mutable_data();
    auto run_in = [&](auto in_tag) {
      using In = decltype(in_tag);
      auto qa = Exact<In>(q, "q", "an integer type");
      const In* pq = qa.data();
      py::gil_scoped_release release;
      Dequantize<In, Real>(pq, L, s.data(), zp.data(), m, po);
    };
    if (IsDtype<int8_t>(q)) run_in(int8_t{});
    else if (IsDtype<uint8_t>(q)) run_in(uint8_t{});
    else if (IsDtype<int16_t>(q)) run_in(int16_t{});
    else if (IsDtype<uint16_t>(q)) run_in(uint16_t{});
    else if (IsDtype<int32_t>(q)) run_in(int32_t{});
    else TypeError("q must have dtype int8, uint8, int16, uint16 or int32, got " + DtypeName(q));
    result = out;
  };
  if (precision == "fp32") run_real(float{}); else run_real(double{});
  return result;
}

// ----------------------------------------------------------------------------------------------
// Packing

PackOrder Order(const std::string& s) {
  Choice(py::str(s), "order", {"low_first", "high_first"});
  return s == "low_first" ? PackOrder::LOW_FIRST : PackOrder::HIGH_FIRST;
}

py::array PackBitsPy(py::handle values_obj, int bits, const std::string& order_s) {
  if (bits != 2 && bits != 4) ValueError("bits must be 2 or 4, got " + Str(bits));
  const PackOrder order = Order(order_s);
  py::array v = AsArray(values_obj, "values");
  if (v.ndim() != 1) ValueError("values must be 1-D, got " + Str(v.ndim()) + " dimensions");
  const int64_t n = v.size();
  py::array_t<uint8_t> out(PackedByteCount(n, bits));
  uint8_t* po = out.mutable_data();
  const int64_t lo = -(int64_t{1} << (bits - 1)), hi = (int64_t{1} << bits) - 1;
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto a = Exact<T>(v, "values", "int8, uint8, int16, int32 or int64");
    const T* p = a.data();
    for (int64_t i = 0; i < n; ++i)
      if (static_cast<int64_t>(p[i]) < lo || static_cast<int64_t>(p[i]) > hi)
        ValueError("values[" + Str(i) + "] = " + Str(static_cast<int64_t>(p[i])) + " does not fit " + Str(bits) +
                   " bits (allowed [" + Str(lo) + ", " + Str(hi) + "])");
    py::gil_scoped_release release;
    PackBits<T>(p, n, bits, order, po);
  };
  if (IsDtype<int8_t>(v)) run(int8_t{});
  else if (IsDtype<uint8_t>(v)) run(uint8_t{});
  else if (IsDtype<int16_t>(v)) run(int16_t{});
  else if (IsDtype<int32_t>(v)) run(int32_t{});
  else if (IsDtype<int64_t>(v)) run(int64_t{});
  else TypeError("values must have dtype int8, uint8, int16, int32 or int64, got " + DtypeName(v));
  return out;
}

py::array UnpackBitsPy(py::handle data_obj, int bits, int64_t count, bool is_signed, const std::string& order_s) {
  if (bits != 2 && bits != 4) ValueError("bits must be 2 or 4, got " + Str(bits));
  const PackOrder order = Order(order_s);
  py::array d = AsArray(data_obj, "data");
  if (d.ndim() != 1) ValueError("data must be 1-D, got " + Str(d.ndim()) + " dimensions");
  auto a = Exact<uint8_t>(d, "data", "uint8");
  if (count < 0) ValueError("count must be >= 0, got " + Str(count));
  if (PackedByteCount(count, bits) > a.size())
    ValueError("count = " + Str(count) + " needs " + Str(PackedByteCount(count, bits)) + " bytes, data has " + Str(a.size()));
  const uint8_t* p = a.data();
  if (is_signed) {
    py::array_t<int8_t> out(count);
    int8_t* po = out.mutable_data();
    py::gil_scoped_release release;
    UnpackBits<int8_t>(p, count, bits, true, order, po);
    return out;
  }
  py::array_t<uint8_t> out(count);
  uint8_t* po = out.mutable_data();
  py::gil_scoped_release release;
  UnpackBits<uint8_t>(p, count, bits, false, order, po);
  return out;
}

}  // namespace

void bind_numerics(py::module_& m) {
  py::enum_<RoundingMode>(m, "RoundingMode", "How a value between two integers is rounded (one exact rule per member).")
      .value("HALF_TO_EVEN", RoundingMode::HALF_TO_EVEN, "nearest; ties to even (RNE: nearbyint, np.round, cvtps2dq)")
      .value("HALF_AWAY_FROM_ZERO", RoundingMode::HALF_AWAY_FROM_ZERO, "nearest; ties away from zero (std::round, TfLiteRound)")
      .value("HALF_UP", RoundingMode::HALF_UP, "nearest; ties toward +inf (floor(x + 0.5), Xilinx DPU_ROUND)")
      .value("HALF_DOWN", RoundingMode::HALF_DOWN, "nearest; ties toward -inf (ceil(x - 0.5))")
      .value("HALF_TOWARD_ZERO", RoundingMode::HALF_TOWARD_ZERO, "nearest; ties toward zero (ap_fixed AP_RND_ZERO)")
      .value("FLOOR", RoundingMode::FLOOR, "toward -inf (arithmetic >>)")
      .value("TRUNCATE", RoundingMode::TRUNCATE, "toward zero (C integer cast)")
      .value("STOCHASTIC", RoundingMode::STOCHASTIC, "floor or ceil, P(ceil) = fraction, SplitMix64(seed, flat index)");
  py::enum_<OverflowMode>(m, "OverflowMode", "What happens to a value outside the integer range.")
      .value("SATURATE", OverflowMode::SATURATE, "clamp to [qmin, qmax]")
      .value("WRAP", OverflowMode::WRAP, "keep the low bits (two's complement), then clamp a narrow range's excluded code");
  py::enum_<MultiplierVariant>(m, "MultiplierVariant", "TFLite MultiplyByQuantizedMultiplier algorithms.")
      .value("DOUBLE_ROUNDING", MultiplierVariant::DOUBLE_ROUNDING, "RDBP(SRDHM(x << left, M), right): gemmlowp default")
      .value("SINGLE_ROUNDING", MultiplierVariant::SINGLE_ROUNDING, "(x*M + 2^(30-shift)) >> (31-shift): TFLITE_SINGLE_ROUNDING")
      .value("INT64_16BIT", MultiplierVariant::INT64_16BIT, "int64 x, multiplier reduced to 15 bits (16x8 kernels)");

  m.def("int_range", [](int bits, bool is_signed, bool narrow) {
        if (!IsValidIntBits(bits)) ValueError("bits must be in [2, 16] or 32, got " + Str(bits));
        const IntRange r = MakeIntRange(bits, is_signed, narrow);
        return py::make_tuple(r.lo, r.hi);
      }, py::arg("bits"), py::arg("signed") = true, py::arg("narrow") = false,
      "(qmin, qmax) of a bits-wide integer; narrow drops -2^(b-1) (signed) or 2^b - 1 (unsigned, Brevitas).");
  m.def("round_float", &RoundFloatPy, py::arg("x"), py::arg("mode") = RoundingMode::HALF_TO_EVEN, py::arg("seed") = 0,
        "Round float32/float64 values to integer-valued float64 by mode (exact).");
  m.def("rounding_right_shift", &RoundingRightShiftPy, py::arg("x"), py::arg("n"), py::arg("mode"), py::arg("seed") = 0,
        "x / 2^n rounded by mode, exact integer arithmetic; int32/int64 in, int64 out.");
  m.def("saturating_rounding_doubling_high_mul", &SrdhmPy, py::arg("a"), py::arg("b"),
        "gemmlowp SRDHM (VQRDMULH) on int32 or int16 arrays of one shape.");
  m.def("saturating_doubling_high_mul", &SdhmPy, py::arg("a"), py::arg("b"),
        "Truncating doubling high multiply (VQDMULH; TFLite hard-swish) on int32 or int16 arrays.");
  m.def("rounding_divide_by_pot", &RdbpPy, py::arg("x"), py::arg("n"),
        "gemmlowp RoundingDivideByPOT: x / 2^n, ties away from zero; int32 or int16.");
  m.def("quantize_multiplier", &QuantizeMultiplierPy, py::arg("real"), py::arg("single_rounding") = false,
        "TFLite QuantizeMultiplier: scalar -> (M, shift); array -> (M int32 array, shift int32 array).");
  m.def("multiply_by_quantized_multiplier", &MbqmPy, py::arg("x"), py::arg("multiplier"), py::arg("shift"),
        py::arg("variant") = "double",
        "TFLite MBQM; variant 'double' | 'single' | 'int64_16bit' (or MultiplierVariant); per-channel along the last axis.");
  m.def("requantize_float", &RequantizeFloatPy, py::arg("acc"), py::arg("scale"), py::arg("zero_point"), py::arg("qmin"),
        py::arg("qmax"), py::kw_only(), py::arg("bias") = py::none(), py::arg("bias_scale") = py::none(),
        py::arg("precision") = "fp32", py::arg("scale_op") = "multiply", py::arg("bias_mode") = py::none(),
        py::arg("clamp") = "after_rounding", py::arg("rounding") = RoundingMode::HALF_TO_EVEN, py::arg("seed") = 0,
        py::arg("out_dtype") = py::none(), py::arg("isa") = "auto",
        "Float-scale requantization of an int32 accumulator (last axis = channels); see hwsim.numerics presets. "
        "isa: 'auto' | 'scalar' | 'avx2' | 'avx512' picks the kernel of the float32 + HALF_TO_EVEN fast path "
        "(identical integers on every path; ValueError if this CPU lacks it).");
  m.def("requantize_fixed_point", &RequantizeFixedPointPy, py::arg("acc"), py::arg("multiplier"), py::arg("shift"),
        py::arg("zero_point"), py::arg("qmin"), py::arg("qmax"), py::kw_only(), py::arg("bias") = py::none(),
        py::arg("rounding") = "double", py::arg("out_dtype") = py::none(),
        "TFLite fixed-point requantization: MBQM(acc + bias, M, shift) + zp, clamp; rounding 'double' | 'single' | 'int64_16bit'.");
  m.def("requantize_pow2", &RequantizePow2Py, py::arg("acc"), py::arg("shift_cut"), py::arg("zero_point") = 0,
        py::arg("qmin") = -128, py::arg("qmax") = 127, py::kw_only(), py::arg("bias") = py::none(), py::arg("shift_bias") = 0,
        py::arg("rounding") = RoundingMode::HALF_UP, py::arg("seed") = 0, py::arg("out_dtype") = py::none(),
        "DPU shift requantization: sat(round((acc + bias*2^shift_bias) / 2^shift_cut) + zp), exact, shifts in [-32, 32].");
  m.def("quantize", &QuantizePy, py::arg("x"), py::arg("scale"), py::arg("zero_point"), py::arg("qmin"), py::arg("qmax"),
        py::kw_only(), py::arg("axis") = py::none(), py::arg("group_size") = py::none(),
        py::arg("rounding") = RoundingMode::HALF_TO_EVEN, py::arg("overflow") = OverflowMode::SATURATE,
        py::arg("method") = "divide", py::arg("precision") = "fp32", py::arg("seed") = 0, py::arg("out_dtype") = py::none(),
        "float -> int; method 'divide' | 'multiply_reciprocal' | 'fma_reciprocal' | 'multiply_add_reciprocal'; "
        "per-tensor, per-axis (axis) or per-group (axis + group_size).");
  m.def("dequantize", &DequantizePy, py::arg("q"), py::arg("scale"), py::arg("zero_point"), py::kw_only(),
        py::arg("axis") = py::none(), py::arg("group_size") = py::none(), py::arg("method") = "subtract_then_scale",
        py::arg("precision") = "fp32",
        "int -> float: (q - zp) * s, or q*s - zp*s (method 'scale_then_subtract'); float32 (fp32) or float64 (fp64) out.");
  m.def("pack_bits", &PackBitsPy, py::arg("values"), py::arg("bits"), py::arg("order") = "low_first",
        "Pack 1-D 2- or 4-bit values into uint8 bytes; first element in the low bits by default.");
  m.def("unpack_bits", &UnpackBitsPy, py::arg("data"), py::arg("bits"), py::arg("count"), py::arg("signed") = true,
        py::arg("order") = "low_first", "Unpack count 2- or 4-bit values from uint8 bytes (sign-extended if signed).");
}

}  // namespace hwsim::bindings
