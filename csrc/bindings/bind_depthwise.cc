// Bindings for csrc/hwsim/depthwise_conv2d.h and csrc/hwsim/groupwise_gemm.h: argument checks only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cmath>
#include <optional>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bindings/fused_requant_args.h"
#include "bindings/threads_arg.h"
#include "hwsim/depthwise_conv2d.h"
#include "hwsim/groupwise_gemm.h"
#include "hwsim/rounding.h"

namespace py = pybind11;

namespace hwsim::bindings {
namespace {

constexpr int64_t kMaxExtent = int64_t{1} << 30;

std::string DtypeName(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

template <typename T>
bool IsDtype(const py::array& a) {
    return a.dtype().is(py::dtype::of<T>());
}

void RequireContiguous(const py::array& a, const char* name) {
    if (!(a.flags() & py::array::c_style)) throw py::value_error(std::string(name) + " must be C-contiguous");
}

void RequireNdim(const py::array& a, int ndim, const char* name, const char* layout) {
    if (a.ndim() != ndim)
        throw py::value_error(std::string(name) + " must have " + std::to_string(ndim) + " dimensions " + layout +
                              ", got " + std::to_string(a.ndim()));
}

void RequireActivationDtype(const py::array& a, const char* name) {
    if (!IsDtype<uint8_t>(a) && !IsDtype<int8_t>(a))
        throw py::type_error(std::string(name) + " must be uint8 or int8, got " + DtypeName(a));
}

void RequireDtypeInt8(const py::array& a, const char* name) {
    if (!IsDtype<int8_t>(a)) throw py::type_error(std::string(name) + " must be int8, got " + DtypeName(a));
}

int32_t CheckZeroPoint(const py::array& x, int64_t zp, const char* name) {
    const int64_t lo = IsDtype<uint8_t>(x) ? 0 : -128, hi = IsDtype<uint8_t>(x) ? 255 : 127;
    if (zp < lo || zp > hi)
        throw py::value_error(std::string(name) + " = " + std::to_string(zp) + " is outside the " + DtypeName(x) +
                              " range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return static_cast<int32_t>(zp);
}

int CheckThreads(int64_t threads) {
    if (threads < 0 || threads > 1024) throw py::value_error("threads must be in [0, 1024] (0 = all hardware threads)");
    return static_cast<int>(threads);
}

// Threaded depthwise bindings also accept a Workers pool.
ThreadsArg CheckThreadsArg(const py::object& threads) { return ParseThreads(threads, 1024); }

// Accepts an enum member (its .name) or a string.
std::string ModeName(const py::object& obj) {
    if (py::isinstance<py::str>(obj)) return obj.cast<std::string>();
    if (py::hasattr(obj, "name")) return py::str(obj.attr("name")).cast<std::string>();
    throw py::type_error("expected a string or an enum member, got " + py::str(py::type::of(obj)).cast<std::string>());
}

DepthwiseIsa ParseIsa(const py::object& obj) {
    const std::string s = ModeName(obj);
    if (s == "auto" || s == "AUTO") return DepthwiseIsa::kAuto;
    if (s == "scalar" || s == "SCALAR") return DepthwiseIsa::kScalar;
    if (s == "avx2" || s == "AVX2") return DepthwiseIsa::kAvx2;
    if (s == "avx512" || s == "AVX512") return DepthwiseIsa::kAvx512;
    throw py::value_error("isa must be one of 'auto', 'scalar', 'avx2', 'avx512', got '" + s + "'");
}

DepthwiseMode ParseDepthwiseMode(const py::object& obj) {
    if (py::isinstance<DepthwiseMode>(obj)) return obj.cast<DepthwiseMode>();
    const std::string s = ModeName(obj);
    if (s == "EXACT") return DepthwiseMode::kExact;
    if (s == "FBGEMM_DW_PAIRS" || s == "FBGEMM_DW3X3_PAIRS") return DepthwiseMode::kFbgemmPairs;
    throw py::value_error("mode must be EXACT or FBGEMM_DW_PAIRS, got '" + s + "'");
}

// A RoundingMode member (bound by bind_numerics.cc) or its name; STOCHASTIC is not offered here.
RoundingMode ParseShiftRounding(const py::object& obj) {
    RoundingMode mode = RoundingMode::HALF_UP;
    if (py::isinstance<RoundingMode>(obj)) {
        mode = obj.cast<RoundingMode>();
    } else {
        const std::string s = ModeName(obj);
        static const std::pair<const char*, RoundingMode> kNames[] = {
            {"HALF_TO_EVEN", RoundingMode::HALF_TO_EVEN}, {"HALF_AWAY_FROM_ZERO", RoundingMode::HALF_AWAY_FROM_ZERO},
            {"HALF_UP", RoundingMode::HALF_UP}, {"HALF_DOWN", RoundingMode::HALF_DOWN},
            {"HALF_TOWARD_ZERO", RoundingMode::HALF_TOWARD_ZERO}, {"FLOOR", RoundingMode::FLOOR},
            {"TRUNCATE", RoundingMode::TRUNCATE}, {"STOCHASTIC", RoundingMode::STOCHASTIC}};
        bool found = false;
        for (const auto& [name, value] : kNames)
            if (s == name) {
                mode = value;
                found = true;
            }
        if (!found)
            throw py::value_error("rounding must be a RoundingMode (HALF_TO_EVEN, HALF_AWAY_FROM_ZERO, HALF_UP, "
                                  "HALF_DOWN, HALF_TOWARD_ZERO, FLOOR, TRUNCATE), got '" + s + "'");
    }
    if (mode == RoundingMode::STOCHASTIC)
        throw py::value_error("rounding: STOCHASTIC is not a sub-block accelerator rounding; pick a deterministic mode");
    return mode;
}

// A checked depthwise_conv2d_s32 call: shape, modes and zero points.
struct DepthwiseCall {
    DepthwiseConv2DShape s;
    int32_t zp = 0;
    DepthwiseMode mode = DepthwiseMode::kExact;
    DepthwiseIsa isa = DepthwiseIsa::kAuto;
    ThreadsArg threads;
    std::vector<int32_t> w_zp;  // empty: symmetric weights
};

DepthwiseCall CheckDepthwise(const py::array& x, const py::array& w, std::array<int64_t, 2> strides,
                             std::array<int64_t, 2> dilations, std::array<int64_t, 4> pads,
                             std::optional<int64_t> depth_multiplier, int64_t x_zero_point, const py::object& w_zp_obj,
                             const py::object& mode_obj, const py::object& isa_obj, const py::object& threads_arg) {
    RequireActivationDtype(x, "x");
    RequireDtypeInt8(w, "w");
    RequireNdim(x, 4, "x", "NHWC [N, H, W, C]");
    RequireNdim(w, 4, "w", "OHWI [C*multiplier, KH, KW, 1]");
    RequireContiguous(x, "x");
    RequireContiguous(w, "w");
    const DepthwiseMode mode = ParseDepthwiseMode(mode_obj);
    const DepthwiseIsa isa = ParseIsa(isa_obj);
    const ThreadsArg threads = CheckThreadsArg(threads_arg);
    const int32_t zp = CheckZeroPoint(x, x_zero_point, "x_zero_point");
    if (w.shape(3) != 1) throw py::value_error("w must be OHWI [C*multiplier, KH, KW, 1]; its last dimension is " +
                                               std::to_string(w.shape(3)));
    const int64_t c = x.shape(3);
    int64_t mult = 0;
    if (depth_multiplier) {
        mult = *depth_multiplier;
        if (mult < 1) throw py::value_error("depth_multiplier must be >= 1");
        if (w.shape(0) != c * mult)
            throw py::value_error("w.shape[0] = " + std::to_string(w.shape(0)) + " must equal C * depth_multiplier = " +
                                  std::to_string(c * mult));
    } else {
        if (c == 0 || w.shape(0) % c != 0 || w.shape(0) == 0)
            throw py::value_error("w.shape[0] = " + std::to_string(w.shape(0)) +
                                  " must be a positive multiple of the input channels C = " + std::to_string(c));
        mult = w.shape(0) / c;
    }
    for (int i = 0; i < 2; ++i) {
        if (strides[i] < 1 || strides[i] > kMaxExtent) throw py::value_error("strides must be >= 1");
        if (dilations[i] < 1 || dilations[i] > kMaxExtent) throw py::value_error("dilations must be >= 1");
    }
    for (int i = 0; i < 4; ++i)
        if (pads[i] < 0 || pads[i] > kMaxExtent) throw py::value_error("pads [top, left, bottom, right] must be >= 0");
    const int64_t kh = w.shape(1), kw = w.shape(2);
    if (kh < 1 || kw < 1) throw py::value_error("w must have a kernel of at least 1x1");
    if (kh * kw > kMaxDepthwiseTaps)
        throw py::value_error("w has " + std::to_string(kh * kw) + " taps; at most " +
                              std::to_string(kMaxDepthwiseTaps) + " keep the int32 accumulator exact");
    if (mode == DepthwiseMode::kFbgemmPairs && !IsDtype<uint8_t>(x))
        throw py::type_error("mode FBGEMM_DW_PAIRS models VPMADDUBSW (uint8 x int8): x must be uint8, got " +
                             DtypeName(x));
    const int64_t h = x.shape(1), wd = x.shape(2);
    if (h + pads[0] + pads[2] >= kMaxExtent || wd + pads[1] + pads[3] >= kMaxExtent ||
        dilations[0] * (kh - 1) >= kMaxExtent || dilations[1] * (kw - 1) >= kMaxExtent || x.shape(0) >= kMaxExtent ||
        c * mult >= kMaxExtent)
        throw py::value_error("x, w, pads or dilations are too large (each extent must stay below 2^30)");
    DepthwiseConv2DShape s;
    s.n = static_cast<int>(x.shape(0));
    s.h = static_cast<int>(h);
    s.w = static_cast<int>(wd);
    s.c = static_cast<int>(c);
    s.kh = static_cast<int>(kh);
    s.kw = static_cast<int>(kw);
    s.multiplier = static_cast<int>(mult);
    s.stride_h = static_cast<int>(strides[0]);
    s.stride_w = static_cast<int>(strides[1]);
    s.dilation_h = static_cast<int>(dilations[0]);
    s.dilation_w = static_cast<int>(dilations[1]);
    s.pad_top = static_cast<int>(pads[0]);
    s.pad_left = static_cast<int>(pads[1]);
    s.pad_bottom = static_cast<int>(pads[2]);
    s.pad_right = static_cast<int>(pads[3]);
    if (s.out_h() < 1 || s.out_w() < 1)
        throw py::value_error("the dilated kernel does not fit the padded input (output would be " +
                              std::to_string(s.out_h()) + "x" + std::to_string(s.out_w()) + ")");
    // w_zero_point: None, an int, or one int per output channel, each in the int8 range.
    std::vector<int32_t> w_zp;
    if (!w_zp_obj.is_none()) {
        py::array z = py::array::ensure(w_zp_obj);
        if (!z || (z.dtype().kind() != 'i' && z.dtype().kind() != 'u'))
            throw py::type_error("w_zero_point must be None, an int or a 1-D integer array");
        py::array_t<int64_t, py::array::forcecast | py::array::c_style> zi(z);
        if (zi.ndim() > 1 || (zi.ndim() == 1 && zi.shape(0) != 1 && zi.shape(0) != c * mult))
            throw py::value_error("w_zero_point must be a scalar or have C * multiplier = " + std::to_string(c * mult) +
                                  " values");
        const int64_t count = zi.size();
        for (int64_t i = 0; i < count; ++i)
            if (zi.data()[i] < -128 || zi.data()[i] > 127)
                throw py::value_error("w_zero_point values must be in the int8 range [-128, 127]");
        w_zp.resize(static_cast<size_t>(c * mult));
        for (int64_t oc = 0; oc < c * mult; ++oc) w_zp[oc] = static_cast<int32_t>(zi.data()[count == 1 ? 0 : oc]);
        bool nonzero = false;
        for (int32_t v : w_zp) nonzero |= v != 0;
        if (nonzero && mode == DepthwiseMode::kFbgemmPairs)
            throw py::value_error("w_zero_point must be 0 in mode FBGEMM_DW_PAIRS (fbgemm's kernel takes symmetric weights)");
        if (!nonzero) w_zp.clear();
    }
    ResolveDepthwiseIsa(isa);  // raise a missing forced ISA while holding the GIL
    return DepthwiseCall{s, zp, mode, isa, threads, std::move(w_zp)};
}

// Runs the checked call on x (uint8 or int8) into out; epi as DepthwiseConv2DS32. GIL released by the caller.
void RunDepthwise(const DepthwiseCall& d, const py::array& x, const py::array& w, int32_t* out,
                  const TileEpilogue* epi) {
    const int8_t* wp = static_cast<const int8_t*>(w.data());
    const int32_t* wzp = d.w_zp.empty() ? nullptr : d.w_zp.data();
    if (IsDtype<uint8_t>(x))
        DepthwiseConv2DS32(static_cast<const uint8_t*>(x.data()), wp, out, d.s, d.zp, d.mode, d.isa, d.threads.threads,
                           wzp, epi, d.threads.pool);
    else
        DepthwiseConv2DS32(static_cast<const int8_t*>(x.data()), wp, out, d.s, d.zp, d.mode, d.isa, d.threads.threads,
                           wzp, epi, d.threads.pool);
}

py::array_t<int32_t> DepthwiseConv2D(const py::array& x, const py::array& w, std::array<int64_t, 2> strides,
                                     std::array<int64_t, 2> dilations, std::array<int64_t, 4> pads,
                                     std::optional<int64_t> depth_multiplier, int64_t x_zero_point,
                                     const py::object& w_zp_obj, const py::object& mode_obj, const py::object& isa_obj,
                                     const py::object& threads_arg) {
    const DepthwiseCall d = CheckDepthwise(x, w, strides, dilations, pads, depth_multiplier, x_zero_point, w_zp_obj,
                                           mode_obj, isa_obj, threads_arg);
    const DepthwiseConv2DShape& s = d.s;
    py::array_t<int32_t> out({static_cast<py::ssize_t>(s.n), static_cast<py::ssize_t>(s.out_h()),
                              static_cast<py::ssize_t>(s.out_w()), static_cast<py::ssize_t>(s.out_channels())});
    int32_t* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        RunDepthwise(d, x, w, o, nullptr);
    }
    return out;
}

py::array DepthwiseConv2DRequantizeFloat(const py::array& x, const py::array& w, std::array<int64_t, 2> strides,
                                         std::array<int64_t, 2> dilations, std::array<int64_t, 4> pads,
                                         const py::object& scale, const py::object& zero_point, int64_t qmin,
                                         int64_t qmax, const py::object& bias, std::optional<int64_t> depth_multiplier,
                                         int64_t x_zero_point, const py::object& w_zp_obj, const py::object& mode_obj,
                                         const py::object& isa_obj, const py::object& threads_arg, const py::object& out_dtype) {
    const DepthwiseCall d = CheckDepthwise(x, w, strides, dilations, pads, depth_multiplier, x_zero_point, w_zp_obj,
                                           mode_obj, isa_obj, threads_arg);
    const int64_t oc = d.s.out_channels();
    const FusedRequantArgs r = ParseFusedRequant(scale, zero_point, qmin, qmax, bias, out_dtype, oc);
    const DepthwiseIsa path = ResolveDepthwiseIsa(d.isa);
    const RequantIsa risa = RequantIsaFor(path == DepthwiseIsa::kScalar, path == DepthwiseIsa::kAvx2);
    return RunFusedRequant(r, {d.s.n, d.s.out_h(), d.s.out_w(), oc}, oc, risa, [&](const TileEpilogue& hook) {
        RunDepthwise(d, x, w, nullptr, &hook);  // int32 rows in per-thread scratch only
    });
}

// Shared checks of the group-wise entry points; returns the shape.
GroupwiseGemmShape CheckGroupwise(const py::array& a, const py::array& b, int64_t group_size, int64_t a_zero_point) {
    RequireActivationDtype(a, "a");
    RequireDtypeInt8(b, "b");
    RequireNdim(a, 2, "a", "[M, K]");
    RequireNdim(b, 2, "b", "[N, K]");
    RequireContiguous(a, "a");
    RequireContiguous(b, "b");
    CheckZeroPoint(a, a_zero_point, "a_zero_point");
    if (a.shape(1) != b.shape(1))
        throw py::value_error("a is [M, K] with K = " + std::to_string(a.shape(1)) + " but b is [N, K] with K = " +
                              std::to_string(b.shape(1)));
    if (group_size < 1 || group_size > 65793)
        throw py::value_error("group_size must be in [1, 65793] (a group's int32 partial sum must stay exact)");
    GroupwiseGemmShape s;
    s.m = a.shape(0);
    s.n = b.shape(0);
    s.k = a.shape(1);
    s.group_size = group_size;
    return s;
}

void CheckPerGroup(const py::array& p, const GroupwiseGemmShape& s, const char* name) {
    RequireNdim(p, 2, name, "[N, groups]");
    RequireContiguous(p, name);
    if (p.shape(0) != s.n || p.shape(1) != s.groups())
        throw py::value_error(std::string(name) + " must be [N, ceil(K / group_size)] = [" + std::to_string(s.n) +
                              ", " + std::to_string(s.groups()) + "], got [" + std::to_string(p.shape(0)) + ", " +
                              std::to_string(p.shape(1)) + "]");
}

py::array_t<int32_t> PartialSums(const py::array& a, const py::array& b, int64_t group_size, int64_t a_zero_point,
                                 const py::object& isa_obj, int64_t threads_arg) {
    const GroupwiseGemmShape s = CheckGroupwise(a, b, group_size, a_zero_point);
    const DepthwiseIsa isa = ParseIsa(isa_obj);
    const int threads = CheckThreads(threads_arg);
    ResolveDepthwiseIsa(isa);
    py::array_t<int32_t> p({static_cast<py::ssize_t>(s.m), static_cast<py::ssize_t>(s.n),
                            static_cast<py::ssize_t>(s.groups())});
    int32_t* pp = p.mutable_data();
    const int8_t* bp = static_cast<const int8_t*>(b.data());
    const bool is_u8 = IsDtype<uint8_t>(a);
    const void* ap = a.data();
    const int32_t zp = static_cast<int32_t>(a_zero_point);
    {
        py::gil_scoped_release release;
        if (is_u8)
            GroupPartialSumsS32(static_cast<const uint8_t*>(ap), zp, bp, s, pp, isa, threads);
        else
            GroupPartialSumsS32(static_cast<const int8_t*>(ap), zp, bp, s, pp, isa, threads);
    }
    return p;
}

// A fused depthwise layer (PreparedDepthwise) with its weights packed and its requantization planned once;
// each call checks x (and the other arguments against it) with CheckDepthwise, as the one-shot function.
struct __attribute__((visibility("hidden"))) PreparedDepthwise {
    py::array w;
    std::array<int64_t, 2> strides{1, 1}, dilations{1, 1};
    std::array<int64_t, 4> pads{0, 0, 0, 0};
    std::optional<int64_t> depth_multiplier;
    int64_t x_zero_point = 0;
    py::object mode, isa;
    depthwise_detail::PackedDepthwiseWeights packed;
    FusedRequantArgs r;
    std::unique_ptr<FloatRequantPlan<float>> plan;
};

}  // namespace

void bind_depthwise(py::module_& m) {

    py::enum_<DepthwiseMode>(m, "DepthwiseMode",
                             "How depthwise_conv2d_s32 accumulates: EXACT int32, or FBGEMM_DW_PAIRS (fbgemm's "
                             "depthwise kernel: int16-saturated pairs of taps; FBGEMM_DW3X3_PAIRS is the same value)")
        .value("EXACT", DepthwiseMode::kExact)
        .value("FBGEMM_DW_PAIRS", DepthwiseMode::kFbgemmPairs)
        .value("FBGEMM_DW3X3_PAIRS", DepthwiseMode::kFbgemmPairs);

    m.def("depthwise_conv2d_requantize_float", &DepthwiseConv2DRequantizeFloat, py::arg("x"), py::arg("w"),
          py::arg("strides") = std::array<int64_t, 2>{1, 1}, py::arg("dilations") = std::array<int64_t, 2>{1, 1},
          py::arg("pads") = std::array<int64_t, 4>{0, 0, 0, 0}, py::kw_only(), py::arg("scale"),
          py::arg("zero_point"), py::arg("qmin"), py::arg("qmax"), py::arg("bias") = py::none(),
          py::arg("depth_multiplier") = py::none(), py::arg("x_zero_point") = 0, py::arg("w_zero_point") = py::none(),
          py::arg("mode") = DepthwiseMode::kExact, py::arg("isa") = "auto", py::arg("threads") = 1,
          py::arg("out_dtype") = py::none(),
          "depthwise_conv2d_s32 (same x, w, strides, dilations, pads, depth_multiplier, x_zero_point, w_zero_point,\n"
          "mode, isa, threads) fused with float-scale requantization -> [N, OH, OW, C*mult] of out_dtype. Equals\n"
          "requantize_float(depthwise_conv2d_s32(...), scale, zero_point, qmin, qmax, bias=bias, precision='fp32',\n"
          "scale_op='multiply', clamp='before_rounding', rounding=HALF_TO_EVEN, out_dtype=out_dtype) exactly; each\n"
          "chunk of output rows is requantized on the thread that computed it. scale: float32 per tensor or per\n"
          "output channel; zero_point: per tensor or per channel, in [qmin, qmax]; bias: None or int32 [C*mult].");

    m.def("depthwise_conv2d_s32", &DepthwiseConv2D, py::arg("x"), py::arg("w"),
          py::arg("strides") = std::array<int64_t, 2>{1, 1}, py::arg("dilations") = std::array<int64_t, 2>{1, 1},
          py::arg("pads") = std::array<int64_t, 4>{0, 0, 0, 0}, py::arg("depth_multiplier") = py::none(),
          py::arg("x_zero_point") = 0, py::arg("w_zero_point") = py::none(), py::arg("mode") = DepthwiseMode::kExact,
          py::arg("isa") = "auto",
          py::arg("threads") = 1,
          "Depthwise conv: x NHWC uint8/int8, w OHWI [C*mult, KH, KW, 1] int8 -> int32 NHWC [N, OH, OW, C*mult].\n"
          "Output channel oc reads input channel oc // mult. pads = [top, left, bottom, right]; padding holds\n"
          "x_zero_point. mode EXACT: sum (x - zp) * (w - w_zero_point[oc]) (w_zero_point: None, int or one per\n"
          "output channel). mode FBGEMM_DW_PAIRS (uint8 x, symmetric w only): raw products in\n"
          "taps order kh*KW + kw, pairs (0,1),(2,3),... saturated to int16, odd last tap alone, summed in int32,\n"
          "minus zp * sum(w). isa: 'auto' | 'scalar' | 'avx2' | 'avx512' (all give identical integers).");

    m.def("group_partial_sums_s32", &PartialSums, py::arg("a"), py::arg("b"), py::arg("group_size"),
          py::arg("a_zero_point") = 0, py::arg("isa") = "auto", py::arg("threads") = 1,
          "Exact int32 partial sums p[m, n, g] = sum over k in group g of (a[m,k] - a_zero_point) * b[n,k];\n"
          "a [M, K] uint8/int8, b [N, K] int8; groups of group_size along K, the last one may be ragged.");

    m.def(
        "groupwise_gemm_float",
        [](const py::array& a, const py::array& b, const py::array& scales, int64_t group_size, int64_t a_zero_point,
           const py::object& isa, int64_t threads) {
            const GroupwiseGemmShape s = CheckGroupwise(a, b, group_size, a_zero_point);
            if (!IsDtype<float>(scales)) throw py::type_error("scales must be float32, got " + DtypeName(scales));
            CheckPerGroup(scales, s, "scales");
            py::array_t<int32_t> p = PartialSums(a, b, group_size, a_zero_point, isa, threads);
            py::array_t<float> y({static_cast<py::ssize_t>(s.m), static_cast<py::ssize_t>(s.n)});
            const int32_t* pp = p.data();
            const float* sp = static_cast<const float*>(scales.data());
            float* yp = y.mutable_data();
            {
                py::gil_scoped_release release;
                GroupFloatAccumulate(pp, sp, s, yp);
            }
            return y;
        },
        py::arg("a"), py::arg("b"), py::arg("scales"), py::arg("group_size"), py::arg("a_zero_point") = 0,
        py::arg("isa") = "auto", py::arg("threads") = 1,
        "GROUP_FLOAT: y[m,n] = sum_g float32(p_g) * scales[n,g] in float32, ascending g, from +0.0, no FMA.\n"
        "scales: float32 [N, ceil(K / group_size)]. Returns float32 [M, N] (requantize it yourself).");

    m.def(
        "groupwise_gemm_fixed_point",
        [](const py::array& a, const py::array& b, const py::array& multipliers, int64_t group_size, int64_t frac_bits,
           int64_t a_zero_point, const py::object& rounding_obj, int64_t acc_bits, const py::object& isa,
           int64_t threads) {
            const GroupwiseGemmShape s = CheckGroupwise(a, b, group_size, a_zero_point);
            if (!IsDtype<int32_t>(multipliers))
                throw py::type_error("multipliers must be int32, got " + DtypeName(multipliers));
            CheckPerGroup(multipliers, s, "multipliers");
            if (frac_bits < 0 || frac_bits > 62) throw py::value_error("frac_bits must be in [0, 62]");
            if (acc_bits < 2 || acc_bits > 64) throw py::value_error("acc_bits must be in [2, 64]");
            const RoundingMode rounding = ParseShiftRounding(rounding_obj);
            py::array_t<int32_t> p = PartialSums(a, b, group_size, a_zero_point, isa, threads);
            py::array_t<int64_t> acc({static_cast<py::ssize_t>(s.m), static_cast<py::ssize_t>(s.n)});
            const int32_t* pp = p.data();
            const int32_t* mp = static_cast<const int32_t*>(multipliers.data());
            int64_t* accp = acc.mutable_data();
            int64_t clamps = 0;
            {
                py::gil_scoped_release release;
                clamps = GroupFixedPointAccumulate(pp, mp, s, static_cast<int>(frac_bits), rounding,
                                                   static_cast<int>(acc_bits), accp);
            }
            return py::make_tuple(acc, clamps);
        },
        py::arg("a"), py::arg("b"), py::arg("multipliers"), py::arg("group_size"), py::arg("frac_bits"),
        py::arg("a_zero_point") = 0, py::arg("rounding") = "HALF_UP", py::arg("acc_bits") = 32,
        py::arg("isa") = "auto", py::arg("threads") = 1,
        "GROUP_FIXED_POINT: acc = 0; for g ascending: acc = sat_{acc_bits}(acc + RoundingRightShift(p_g *\n"
        "multipliers[n,g], frac_bits, rounding)), p_g * m exact in int64. Returns (acc int64 [M, N], number of\n"
        "outputs in which at least one addition clamped). Requantize acc with the reference scale of group_scales_to_fixed_point.");

    m.def(
        "group_scales_to_fixed_point",
        [](const py::array& scales, int64_t frac_bits) {
            if (!IsDtype<float>(scales)) throw py::type_error("scales must be float32, got " + DtypeName(scales));
            RequireNdim(scales, 2, "scales", "[N, groups]");
            RequireContiguous(scales, "scales");
            if (frac_bits < 0 || frac_bits > 30) throw py::value_error("frac_bits must be in [0, 30]");
            py::array_t<float> ref({static_cast<py::ssize_t>(scales.shape(0))});
            py::array_t<int32_t> mult({static_cast<py::ssize_t>(scales.shape(0)), static_cast<py::ssize_t>(scales.shape(1))});
            const float* sp = static_cast<const float*>(scales.data());
            const int64_t rows = scales.shape(0), groups = scales.shape(1);
            float* rp = ref.mutable_data();
            int32_t* mp = mult.mutable_data();
            for (int64_t i = 0; i < rows * groups; ++i)
                if (!std::isfinite(sp[i]) || !(sp[i] >= 0.0f))
                    throw py::value_error("scales must be finite and >= 0 (index " + std::to_string(i) + ")");
            GroupScalesToFixedPoint(sp, rows, groups, static_cast<int>(frac_bits), rp, mp);
            return py::make_tuple(ref, mult);
        },
        py::arg("scales"), py::arg("frac_bits"),
        "Float group scales [N, groups] -> (reference float32 [N] = row max (1.0 for an all-zero row),\n"
        "multipliers int32 [N, groups] = RNE(double(s) / double(ref) * 2^frac_bits) in [0, 2^frac_bits]).\n"
        "|ref * m / 2^F - s| <= ref * 2^-(F+1).");

    m.def(
        "depthwise_isa_available",
        [](const py::object& isa) {
            return DepthwiseIsaSupported(ParseIsa(isa));
        },
        py::arg("isa"), "Whether the depthwise/group-wise kernels can run the given isa path on this CPU.");
    py::class_<PreparedDepthwise>(m, "PreparedDepthwise", R"doc(PreparedDepthwise(w, strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0), *, scale, zero_point, qmin, qmax, bias=None, depth_multiplier=None, x_zero_point=0, mode=EXACT, isa="auto", out_dtype=None)

depthwise_conv2d_requantize_float with every argument but x (and threads) given once (symmetric weights:
no w_zero_point): w is packed and the requantization planned here. Calling it with (x, threads=1) returns
exactly depthwise_conv2d_requantize_float(x, w, ...) with the same arguments.)doc")
        .def(py::init([](const py::array& w, std::array<int64_t, 2> strides, std::array<int64_t, 2> dilations,
                         std::array<int64_t, 4> pads, const py::object& scale, const py::object& zero_point,
                         int64_t qmin, int64_t qmax, const py::object& bias, std::optional<int64_t> depth_multiplier,
                         int64_t x_zero_point, const py::object& mode, const py::object& isa,
                         const py::object& out_dtype) {
                 RequireDtypeInt8(w, "w");
                 RequireNdim(w, 4, "w", "OHWI [C*multiplier, KH, KW, 1]");
                 RequireContiguous(w, "w");
                 if (w.shape(0) < 1 || w.shape(1) < 1 || w.shape(2) < 1 || w.shape(3) != 1 ||
                     w.shape(1) * w.shape(2) > kMaxDepthwiseTaps || w.shape(0) >= kMaxExtent)
                     throw py::value_error("w must be OHWI [C*multiplier, KH, KW, 1] with at most " +
                                           std::to_string(kMaxDepthwiseTaps) + " taps");
                 auto p = std::make_unique<PreparedDepthwise>();
                 p->w = w;
                 p->strides = strides;
                 p->dilations = dilations;
                 p->pads = pads;
                 p->depth_multiplier = depth_multiplier;
                 p->x_zero_point = x_zero_point;
                 p->mode = mode;
                 p->isa = isa;
                 ParseDepthwiseMode(mode);
                 const DepthwiseIsa path = ResolveDepthwiseIsa(ParseIsa(isa));
                 DepthwiseConv2DShape shape;  // PackWeights reads only the output channels and the kernel size
                 shape.c = static_cast<int>(w.shape(0));
                 shape.kh = static_cast<int>(w.shape(1));
                 shape.kw = static_cast<int>(w.shape(2));
                 p->packed = depthwise_detail::PackWeights(static_cast<const int8_t*>(w.data()), nullptr, shape);
                 p->r = ParseFusedRequant(scale, zero_point, qmin, qmax, bias, out_dtype, w.shape(0));
                 p->plan = std::make_unique<FloatRequantPlan<float>>(p->r.plan(
                     w.shape(0), RequantIsaFor(path == DepthwiseIsa::kScalar, path == DepthwiseIsa::kAvx2)));
                 return p;
             }),
             py::arg("w"), py::arg("strides") = std::array<int64_t, 2>{1, 1},
             py::arg("dilations") = std::array<int64_t, 2>{1, 1}, py::arg("pads") = std::array<int64_t, 4>{0, 0, 0, 0},
             py::kw_only(), py::arg("scale"), py::arg("zero_point"), py::arg("qmin"), py::arg("qmax"),
             py::arg("bias") = py::none(), py::arg("depth_multiplier") = py::none(), py::arg("x_zero_point") = 0,
             py::arg("mode") = DepthwiseMode::kExact, py::arg("isa") = "auto", py::arg("out_dtype") = py::none())
        .def("__call__", [](const PreparedDepthwise& p, const py::array& x, const py::object& threads) {
                 const DepthwiseCall d = CheckDepthwise(x, p.w, p.strides, p.dilations, p.pads, p.depth_multiplier,
                                                        p.x_zero_point, py::none(), p.mode, p.isa, threads);
                 const int64_t oc = d.s.out_channels();
                 return RunFusedRequantPlan(p.r, *p.plan, {d.s.n, d.s.out_h(), d.s.out_w(), oc}, oc,
                                            [&](const TileEpilogue& hook) {
                     if (IsDtype<uint8_t>(x))
                         DepthwiseConv2DS32Packed(static_cast<const uint8_t*>(x.data()), p.packed, nullptr, d.s, d.zp,
                                                  d.mode, d.isa, d.threads.threads, &hook, d.threads.pool);
                     else
                         DepthwiseConv2DS32Packed(static_cast<const int8_t*>(x.data()), p.packed, nullptr, d.s, d.zp,
                                                  d.mode, d.isa, d.threads.threads, &hook, d.threads.pool);
                 });
             },
             py::arg("x"), py::arg("threads") = 1);
}

}  // namespace hwsim::bindings
