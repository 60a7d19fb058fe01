// Argument checking shared by bind_numerics.cc and bind_ops.cc: every failure raises TypeError or
// ValueError naming the argument. Arrays of the right dtype are used in place when C-contiguous and
// copied once otherwise; dtypes are never converted silently.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "hwsim/int_range.h"
#include "hwsim/rounding.h"

namespace hwsim::bindings::args {

namespace py = pybind11;

inline std::string Str(int64_t v) { return std::to_string(v); }

[[noreturn]] inline void ValueError(const std::string& msg) { throw py::value_error(msg); }
[[noreturn]] inline void TypeError(const std::string& msg) { throw py::type_error(msg); }

inline py::array AsArray(py::handle obj, const char* name) {
  if (obj.is_none()) TypeError(std::string(name) + " must be an array, got None");
  py::array a = py::array::ensure(obj);
  if (!a) TypeError(std::string(name) + " must be array-like");
  return a;
}

inline std::string DtypeName(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

template <typename T>
inline bool IsDtype(const py::array& a) { return a.dtype().is(py::dtype::of<T>()); }

// The array as a C-contiguous array_t<T>; TypeError if its dtype is not exactly T.
template <typename T>
inline py::array_t<T, py::array::c_style> Exact(const py::array& a, const char* name, const char* expected) {
  if (!IsDtype<T>(a)) TypeError(std::string(name) + " must have dtype " + expected + ", got " + DtypeName(a));
  auto out = py::array_t<T, py::array::c_style>::ensure(a);
  if (!out) TypeError(std::string(name) + ": cannot make a contiguous array");
  return out;
}

inline void RequireIntegerKind(const py::array& a, const char* name) {
  const char k = a.dtype().kind();
  if (k != 'i' && k != 'u') TypeError(std::string(name) + " must be integer, got dtype " + DtypeName(a));
}

// A scalar or 1-D integer parameter, each value in [lo, hi].
inline std::vector<int64_t> IntParam(py::handle obj, const char* name, int64_t lo, int64_t hi) {
  py::array a = AsArray(obj, name);
  RequireIntegerKind(a, name);
  if (a.ndim() > 1) ValueError(std::string(name) + " must be a scalar or 1-D, got " + Str(a.ndim()) + " dimensions");
  if (a.size() == 0) ValueError(std::string(name) + " must not be empty");
  if (a.dtype().kind() == 'u' && a.itemsize() == 8) {
    auto u = py::array_t<uint64_t, py::array::c_style | py::array::forcecast>::ensure(a);
    for (py::ssize_t i = 0; i < u.size(); ++i)
      if (u.data()[i] > static_cast<uint64_t>(INT64_MAX)) ValueError(std::string(name) + " value out of range");
  }
  auto c = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
  std::vector<int64_t> v(c.data(), c.data() + c.size());
  for (int64_t x : v)
    if (x < lo || x > hi)
      ValueError(std::string(name) + " must be in [" + Str(lo) + ", " + Str(hi) + "], got " + Str(x));
  return v;
}

inline std::vector<int32_t> ToInt32(const std::vector<int64_t>& v) { return std::vector<int32_t>(v.begin(), v.end()); }

// A scalar or 1-D real parameter; finite, and > 0 when `positive`.
inline std::vector<double> FloatParam(py::handle obj, const char* name, bool positive) {
  py::array a = AsArray(obj, name);
  const char k = a.dtype().kind();
  if (k != 'f' && k != 'i' && k != 'u') TypeError(std::string(name) + " must be real, got dtype " + DtypeName(a));
  if (a.ndim() > 1) ValueError(std::string(name) + " must be a scalar or 1-D, got " + Str(a.ndim()) + " dimensions");
  if (a.size() == 0) ValueError(std::string(name) + " must not be empty");
  auto c = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
  std::vector<double> v(c.data(), c.data() + c.size());
  for (double x : v) {
    if (!std::isfinite(x)) ValueError(std::string(name) + " must be finite, got " + py::str(py::float_(x)).cast<std::string>());
    if (positive && !(x > 0)) ValueError(std::string(name) + " must be > 0, got " + py::str(py::float_(x)).cast<std::string>());
  }
  return v;
}

// Per-tensor (1) or per-channel (C) length check.
inline void RequireParamLength(size_t len, int64_t C, const char* name) {
  if (static_cast<int64_t>(len) != 1 && static_cast<int64_t>(len) != C)
    ValueError(std::string(name) + " has length " + Str(static_cast<int64_t>(len)) + ", expected 1 or " + Str(C) +
               " (the size of the last axis)");
}

inline RoundingMode Rounding(py::handle obj, const char* name) {
  if (!py::isinstance<RoundingMode>(obj)) TypeError(std::string(name) + " must be a RoundingMode");
  return obj.cast<RoundingMode>();
}

// Output dtype: explicit (int8, uint8, int16, uint16, int32) or the smallest of those holding [qmin, qmax].
inline py::dtype OutDtype(py::handle out_dtype, int64_t qmin, int64_t qmax) {
  if (qmin > qmax) ValueError("qmin must be <= qmax, got qmin=" + Str(qmin) + ", qmax=" + Str(qmax));
  struct Cand { const char* name; int64_t lo, hi; };
  static const Cand cands[] = {{"int8", -128, 127}, {"uint8", 0, 255}, {"int16", -32768, 32767},
                               {"uint16", 0, 65535}, {"int32", INT32_MIN, INT32_MAX}};
  if (out_dtype.is_none()) {
    for (const auto& c : cands)
      if (qmin >= c.lo && qmax <= c.hi) return py::dtype(c.name);
    ValueError("qmin/qmax [" + Str(qmin) + ", " + Str(qmax) + "] do not fit int32");
  }
  py::dtype dt = py::dtype::from_args(py::reinterpret_borrow<py::object>(out_dtype));
  for (const auto& c : cands) {
    if (dt.is(py::dtype(c.name))) {
      if (qmin < c.lo || qmax > c.hi)
        ValueError("qmin/qmax [" + Str(qmin) + ", " + Str(qmax) + "] do not fit out_dtype " + c.name);
      return dt;
    }
  }
  TypeError("out_dtype must be int8, uint8, int16, uint16 or int32, got " + py::str(dt).cast<std::string>());
}

// Calls f(Out{}) with Out the C type of dtype dt (one of OutDtype's results).
template <typename F>
inline void DispatchOut(const py::dtype& dt, F&& f) {
  if (dt.is(py::dtype::of<int8_t>())) return f(int8_t{});
  if (dt.is(py::dtype::of<uint8_t>())) return f(uint8_t{});
  if (dt.is(py::dtype::of<int16_t>())) return f(int16_t{});
  if (dt.is(py::dtype::of<uint16_t>())) return f(uint16_t{});
  if (dt.is(py::dtype::of<int32_t>())) return f(int32_t{});
  TypeError("unsupported output dtype");
}

inline std::vector<py::ssize_t> Shape(const py::array& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

// rows x C view of an array whose last axis is the channel axis (a 0-d array is 1 x 1).
inline void RowsC(const py::array& a, int64_t* rows, int64_t* C) {
  *C = a.ndim() == 0 ? 1 : a.shape(a.ndim() - 1);
  *rows = *C == 0 ? 0 : a.size() / *C;
}

inline std::string Choice(py::handle obj, const char* name, std::initializer_list<const char*> allowed) {
  if (!py::isinstance<py::str>(obj)) TypeError(std::string(name) + " must be a string");
  std::string s = obj.cast<std::string>();
  std::string list;
  for (const char* a : allowed) {
    if (s == a) return s;
    list += std::string(list.empty() ? "" : ", ") + "'" + a + "'";
  }
  ValueError(std::string(name) + " must be one of " + list + ", got '" + s + "'");
}

}  // namespace hwsim::bindings::args
