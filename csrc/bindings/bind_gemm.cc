// Bindings of the integer GEMM / convolution engine (csrc/hwsim/gemm.h, conv2d.h): argument checking,
// dtype/shape/contiguity/range validation (ValueError / TypeError naming the argument), GIL release.
// Arrays are used in place (C-contiguous required, never copied); results are new int32 arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "bindings/fused_requant_args.h"
#include "bindings/threads_arg.h"
#include "hwsim/conv2d.h"
#include "hwsim/cpu_features.h"
#include "hwsim/gemm.h"
#include "hwsim/peak_probe.h"

namespace py = pybind11;

namespace hwsim::bindings {
namespace {

constexpr int64_t kMaxK = int64_t{1} << 24;  // keeps sum_k b and sum_k a' inside int32

py::array checked_array(const py::object& obj, const char* name, int ndim) {
    if (!py::isinstance<py::array>(obj))
        throw py::type_error(std::string(name) + " must be a numpy array, got " +
                             std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
    py::array arr = py::reinterpret_borrow<py::array>(obj);
    if (arr.ndim() != ndim)
        throw py::value_error(std::string(name) + " must be " + std::to_string(ndim) + "-D, got shape with " +
                              std::to_string(arr.ndim()) + " dimensions");
    if (!(arr.flags() & py::array::c_style))
        throw py::value_error(std::string(name) + " must be C-contiguous (use numpy.ascontiguousarray)");
    return arr;
}

bool is_dtype(const py::array& arr, const py::dtype& dt) { return arr.dtype().equal(dt); }

// Activations: uint8 or int8; returns whether signed.
bool activation_dtype(const py::array& arr, const char* name) {
    if (is_dtype(arr, py::dtype::of<uint8_t>())) return false;
    if (is_dtype(arr, py::dtype::of<int8_t>())) return true;
    throw py::type_error(std::string(name) + " must have dtype uint8 or int8, got " +
                         std::string(py::str(arr.dtype())));
}

void require_int8(const py::array& arr, const char* name) {
    if (!is_dtype(arr, py::dtype::of<int8_t>()))
        throw py::type_error(std::string(name) + " must have dtype int8, got " + std::string(py::str(arr.dtype())));
}

int64_t checked_int(const py::handle& obj, const char* name) {
    if (py::isinstance<py::bool_>(obj) || !(py::isinstance<py::int_>(obj) || py::hasattr(obj, "__index__")))
        throw py::type_error(std::string(name) + " must be an integer");
    try {
        return py::cast<int64_t>(py::reinterpret_borrow<py::object>(obj).attr("__index__")());
    } catch (py::cast_error&) {
        throw py::value_error(std::string(name) + " is out of the int64 range");
    }
}

int32_t activation_zero_point(const py::object& obj, bool is_signed, const char* name) {
    const int64_t v = checked_int(obj, name);
    const int64_t lo = is_signed ? -128 : 0, hi = is_signed ? 127 : 255;
    if (v < lo || v > hi)
        throw py::value_error(std::string(name) + " = " + std::to_string(v) + " is outside [" + std::to_string(lo) +
                              ", " + std::to_string(hi) + "] of the activation dtype");
    return static_cast<int32_t>(v);
}

// None, an int, or a 1-D array-like of length n; each value in [-128, 127]. Empty result = all zero.
std::vector<int32_t> weight_zero_points(const py::object& obj, int64_t n, const char* name) {
    std::vector<int32_t> out;
    if (obj.is_none()) return out;
    std::vector<int64_t> values;
    if (py::isinstance<py::int_>(obj) || (!py::isinstance<py::array>(obj) && py::hasattr(obj, "__index__") &&
                                          !py::isinstance<py::sequence>(obj))) {
        values.assign(static_cast<size_t>(n), checked_int(obj, name));
    } else {
        py::array arr = py::array::ensure(obj);
        if (!arr) throw py::type_error(std::string(name) + " must be None, an integer or a 1-D integer array");
        if (arr.ndim() == 0) {
            values.assign(static_cast<size_t>(n), checked_int(arr.attr("item")(), name));
        } else {
            if (arr.ndim() != 1 || arr.shape(0) != n)
                throw py::value_error(std::string(name) + " must be a scalar or have shape (" + std::to_string(n) +
                                      ",), one per output channel");
            const char kind = arr.dtype().kind();
            if (kind != 'i' && kind != 'u' && !(kind == 'O' && n == 0))
                throw py::type_error(std::string(name) + " must hold integers, got dtype " +
                                     std::string(py::str(arr.dtype())));
            auto ints = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(arr);
            if (!ints) throw py::type_error(std::string(name) + " must hold integers");
            values.assign(ints.data(), ints.data() + n);
        }
    }
    out.resize(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
        if (values[i] < -128 || values[i] > 127)
            throw py::value_error(std::string(name) + "[" + std::to_string(i) + "] = " + std::to_string(values[i]) +
                                  " is outside [-128, 127] of int8 weights");
        out[i] = static_cast<int32_t>(values[i]);
    }
    return out;
}

std::string lower_name(const py::object& obj) {
    return py::str(obj.attr("lower")());
}

GemmMode parse_mode(const py::object& obj) {
    if (py::isinstance<GemmMode>(obj)) return py::cast<GemmMode>(obj);
    if (py::isinstance<py::str>(obj)) {
        const std::string s = lower_name(obj);
        if (s == "exact") return GemmMode::Exact;
        if (s == "avx2_pairs") return GemmMode::Avx2Pairs;
        throw py::value_error("mode must be 'exact' or 'avx2_pairs', got '" + std::string(py::str(obj)) + "'");
    }
    throw py::type_error("mode must be a GemmMode or one of 'exact', 'avx2_pairs'");
}

AccOverflow parse_overflow(const py::object& obj) {
    if (py::isinstance<AccOverflow>(obj)) return py::cast<AccOverflow>(obj);
    if (py::isinstance<py::str>(obj)) {
        const std::string s = lower_name(obj);
        if (s == "wrap") return AccOverflow::Wrap;
        if (s == "saturate") return AccOverflow::Saturate;
        throw py::value_error("overflow must be 'wrap' or 'saturate', got '" + std::string(py::str(obj)) + "'");
    }
    throw py::type_error("overflow must be an AccOverflow or one of 'wrap', 'saturate'");
}

// host: the CPU features recorded in the packed weights (nullptr: ask CPUID now).
GemmOptions parse_options(const py::object& mode, int64_t acc_bits, const py::object& overflow, const std::string& isa,
                          const py::object& threads, bool count_overflow, const CpuFeatures* host = nullptr) {
    GemmOptions opt;
    opt.mode = parse_mode(mode);
    if (acc_bits < 8 || acc_bits > 32)
        throw py::value_error("acc_bits must be in [8, 32], got " + std::to_string(acc_bits));
    opt.acc_bits = static_cast<int>(acc_bits);
    opt.overflow = parse_overflow(overflow);
    const CpuFeatures f = host != nullptr ? *host : detect_cpu_features();
    if (isa == "auto") {
        opt.isa = best_gemm_isa(f);
    } else {
        if (!parse_gemm_isa(isa, &opt.isa))
            throw py::value_error("isa must be 'auto', 'scalar', 'avx2', 'avx512_vnni' or 'amx', got '" + isa + "'");
        if (!gemm_isa_supported(opt.isa, f))
            throw py::value_error("isa '" + isa + "' is not supported by this CPU (see hwsim._core.cpu_features())");
    }
    const ThreadsArg t = ParseThreads(threads, 4096);
    opt.threads = t.threads;
    opt.pool = t.pool;
    opt.count_overflow = count_overflow;
    return opt;
}

py::object with_count(py::array_t<int32_t> acc, int64_t count, bool count_overflow) {
    if (count_overflow) return py::make_tuple(acc, count);
    return acc;
}

std::shared_ptr<PackedWeights> pack_weights_from_array(const py::object& b_obj, const py::object& zp_obj) {
    py::array b = checked_array(b_obj, "b", 2);
    require_int8(b, "b");
    const int64_t n = b.shape(0), k = b.shape(1);
    if (k >= kMaxK) throw py::value_error("b has K = " + std::to_string(k) + " columns; at most 2^24 - 1 supported");
    const std::vector<int32_t> zp = weight_zero_points(zp_obj, n, "b_zero_point");
    const int8_t* data = static_cast<const int8_t*>(b.data());
    py::gil_scoped_release release;
    return pack_weights(data, n, k, k, zp.empty() ? nullptr : zp.data());
}

std::pair<int64_t, int64_t> pair_arg(const py::object& obj, const char* name) {
    if (!py::isinstance<py::sequence>(obj) || py::isinstance<py::str>(obj))
        throw py::type_error(std::string(name) + " must be a sequence of 2 integers");
    py::sequence s = py::reinterpret_borrow<py::sequence>(obj);
    if (s.size() != 2) throw py::value_error(std::string(name) + " must have 2 entries (height, width)");
    return {checked_int(s[0], name), checked_int(s[1], name)};
}

// Checks x against the packed weights and the geometry arguments; returns the validated geometry.
Conv2dGeometry conv_geometry(const py::array& x, const PackedConvWeights& pw, const py::object& strides,
                             const py::object& dilations, const py::object& pads) {
    const PackedConvWeights* packed = &pw;
    Conv2dGeometry geo;
    geo.batch = x.shape(0);
    geo.in_h = x.shape(1);
    geo.in_w = x.shape(2);
    geo.in_c = x.shape(3);
    geo.out_c = packed->out_c;
    geo.kernel_h = packed->kernel_h;
    geo.kernel_w = packed->kernel_w;
    geo.groups = packed->groups;
    if (geo.in_c % geo.groups != 0)
        throw py::value_error("groups = " + std::to_string(geo.groups) + " does not divide the " +
                              std::to_string(geo.in_c) + " input channels of x");
    if (geo.in_c / geo.groups != packed->group_in_c)
        throw py::value_error("w has " + std::to_string(packed->group_in_c) +
                              " input channels per group but x has C/groups = " +
                              std::to_string(geo.in_c / geo.groups));
    std::tie(geo.stride_h, geo.stride_w) = pair_arg(strides, "strides");
    std::tie(geo.dilation_h, geo.dilation_w) = pair_arg(dilations, "dilations");
    if (geo.stride_h < 1 || geo.stride_w < 1) throw py::value_error("strides must be >= 1");
    if (geo.dilation_h < 1 || geo.dilation_w < 1) throw py::value_error("dilations must be >= 1");
    if (!py::isinstance<py::sequence>(pads) || py::isinstance<py::str>(pads) ||
        py::reinterpret_borrow<py::sequence>(pads).size() != 4)
        throw py::value_error("pads must be 4 integers [top, left, bottom, right] (ONNX order)");
    py::sequence ps = py::reinterpret_borrow<py::sequence>(pads);
    geo.pad_top = checked_int(ps[0], "pads");
    geo.pad_left = checked_int(ps[1], "pads");
    geo.pad_bottom = checked_int(ps[2], "pads");
    geo.pad_right = checked_int(ps[3], "pads");
    const int64_t lim = int64_t{1} << 30;
    for (int64_t v : {geo.stride_h, geo.stride_w, geo.dilation_h, geo.dilation_w, geo.pad_top,
                      geo.pad_left, geo.pad_bottom, geo.pad_right})
        if (v < 0 || v > lim)
            throw py::value_error("strides, dilations and pads must be in [0, 2^30] (pads >= 0)");
    if (geo.kernel_h < 1 || geo.kernel_w < 1) throw py::value_error("w must have KH, KW >= 1");
    const int64_t oh = geo.out_h(), ow = geo.out_w();
    if (oh <= 0 || ow <= 0 || geo.in_h + geo.pad_top + geo.pad_bottom <= 0 ||
        geo.in_w + geo.pad_left + geo.pad_right <= 0)
        throw py::value_error("output size (" + std::to_string(oh) + ", " + std::to_string(ow) +
                              ") is not positive: the (dilated) kernel is larger than the padded input");
    if (oh > lim || ow > lim || (geo.batch > 0 && oh * ow > (int64_t{1} << 40) / geo.batch))
        throw py::value_error("output is too large");
    return geo;
}

// Prepared fused layers (PreparedConv2d, PreparedDense): the weights, geometry arguments, options and the
// requantization plan of one layer, checked and converted once; each call checks only x. A network runs
// the same layers many times, and converting ~15 arguments per call cost as much as a small layer.
struct __attribute__((visibility("hidden"))) PreparedFusedGemm {
    std::shared_ptr<PackedConvWeights> conv;  // exactly one of conv / dense
    std::shared_ptr<PackedWeights> dense;
    py::object strides, dilations, pads;       // conv only; checked against each x by conv_geometry
    py::object x_zero_point;
    GemmOptions opt;                           // threads and pool are set per call
    FusedRequantArgs r;
    std::unique_ptr<FloatRequantPlan<float>> plan;
};

void prepare_requant(PreparedFusedGemm& p, const CpuFeatures* host, int64_t out_c, const py::object& mode,
                     const std::string& isa, const py::object& scale, const py::object& zero_point, int64_t qmin,
                     int64_t qmax, const py::object& bias, const py::object& out_dtype) {
    p.opt = parse_options(mode, 32, py::str("wrap"), isa, py::int_(1), false, host);
    p.r = ParseFusedRequant(scale, zero_point, qmin, qmax, bias, out_dtype, out_c);
    p.plan = std::make_unique<FloatRequantPlan<float>>(
        p.r.plan(out_c, RequantIsaFor(p.opt.isa == GemmIsa::Scalar, p.opt.isa == GemmIsa::Avx2)));
}

struct __attribute__((visibility("hidden"))) PreparedConv2d : PreparedFusedGemm {};
struct __attribute__((visibility("hidden"))) PreparedDense : PreparedFusedGemm {};

GemmOptions call_options(const PreparedFusedGemm& p, const py::object& threads) {
    GemmOptions opt = p.opt;
    const ThreadsArg t = ParseThreads(threads, 4096);
    opt.threads = t.threads;
    opt.pool = t.pool;
    return opt;
}

}  // namespace

void bind_gemm(py::module_& m) {
    py::class_<WorkerPool>(m, "Workers", R"doc(Workers(threads)

A caller-owned pool of persistent worker threads (threads - 1 of them; the calling thread is the other
one; 0 = all hardware threads). Pass it as ``threads=`` to the GEMM, convolution and depthwise functions
instead of an int: they then use its threads instead of starting new ones per call. Idle workers spin
for a few hundred microseconds after a job, then sleep. One job runs at a time (a concurrent call from
another Python thread runs single-threaded). The threads end when the object is destroyed. Results are
identical to any int thread count.)doc")
        .def(py::init([](int64_t threads) {
                 if (threads < 0 || threads > 1024)
                     throw py::value_error("threads must be in [0, 1024] (0 = all hardware threads), got " +
                                           std::to_string(threads));
                 return new WorkerPool(static_cast<int>(threads));
             }),
             py::arg("threads"))
        .def_property_readonly("threads", &WorkerPool::size, "Number of workers, the calling thread included.")
        .def("__repr__", [](const WorkerPool& p) { return "Workers(threads=" + std::to_string(p.size()) + ")"; });
    py::enum_<GemmMode>(m, "GemmMode", "How GEMM products are summed (csrc/hwsim/gemm.h states the contract).")
        .value("EXACT", GemmMode::Exact, "exact sum of (a - a_zp)(b - b_zp), int32 wrap-around")
        .value("AVX2_PAIRS", GemmMode::Avx2Pairs,
               "VPMADDUBSW int16 saturation of each u8 x s8 pair (k = 2i, 2i+1), zero points compensated exactly");
    py::enum_<AccOverflow>(m, "AccOverflow", "What a narrow accumulator does on overflow.")
        .value("WRAP", AccOverflow::Wrap, "exact sum wrapped once to acc_bits (order independent)")
        .value("SATURATE", AccOverflow::Saturate, "clamp after every addition, ascending k order");

    m.def("cpu_features", []() {
        const CpuFeatures f = detect_cpu_features();
        py::dict d;
        d["avx2"] = f.avx2;
        d["fma"] = f.fma;
        d["avx512f"] = f.avx512f;
        d["avx512bw"] = f.avx512bw;
        d["avx512vl"] = f.avx512vl;
        d["avx512_vnni"] = f.avx512_vnni;
        d["avx_vnni"] = f.avx_vnni;
        d["amx_int8"] = f.amx_tile && f.amx_int8;
        d["amx_permitted"] = f.amx_permitted;
        py::list isas;
        for (GemmIsa isa : {GemmIsa::Scalar, GemmIsa::Avx2, GemmIsa::Avx512Vnni, GemmIsa::Amx})
            if (gemm_isa_supported(isa, f)) isas.append(gemm_isa_name(isa));
        d["gemm_isas"] = isas;
        d["auto_isa"] = gemm_isa_name(best_gemm_isa(f));
        d["hardware_threads"] = hardware_threads();
        return d;
    }, R"doc(CPU features detected at run time (CPUID) and the GEMM ISAs usable here.

Keys: avx2, fma, avx512f, avx512bw, avx512vl, avx512_vnni, avx_vnni, amx_int8, amx_permitted (bool);
gemm_isas (list of the ``isa`` values gemm_s32/conv2d_s32 accept besides "auto"); auto_isa (what "auto" picks);
hardware_threads (what threads=0 means).)doc");

    m.def("measure_vpdpbusd_peak", [](int64_t threads, int64_t iterations) {
        if (!gemm_isa_supported(GemmIsa::Avx512Vnni, detect_cpu_features()))
            throw py::value_error("measure_vpdpbusd_peak needs AVX-512 VNNI, which this CPU lacks");
        if (threads < 1 || threads > 1024) throw py::value_error("threads must be in [1, 1024]");
        if (iterations < 1 || iterations > (int64_t{1} << 40)) throw py::value_error("iterations must be >= 1");
        py::gil_scoped_release release;
        return measure_vpdpbusd_macs_per_second(static_cast<int>(threads), iterations);
    }, py::arg("threads") = 1, py::arg("iterations") = 20000000,
    "Measured int8 MACs/s of independent 512-bit VPDPBUSD chains on `threads` threads (benchmark helper).");

    py::class_<PackedWeights, std::shared_ptr<PackedWeights>>(m, "PackedWeights",
        "Int8 weights [N, K] packed once for the GEMM kernels (64-channel panels, K-groups of 4), with their "
        "per-channel zero points and row sums. Immutable; reuse across calls and threads.")
        .def_property_readonly("n", [](const PackedWeights& p) { return p.n; })
        .def_property_readonly("k", [](const PackedWeights& p) { return p.k; })
        .def_property_readonly("zero_point", [](const PackedWeights& p) {
            return py::array_t<int32_t>(static_cast<py::ssize_t>(p.zero_point.size()), p.zero_point.data());
        })
        .def("unpack", [](const PackedWeights& p) {
            py::array_t<int8_t> out({p.n, p.k});
            auto v = out.mutable_unchecked<2>();
            for (int64_t r = 0; r < p.n; ++r)
                for (int64_t c = 0; c < p.k; ++c) v(r, c) = p.at(r, c);
            return out;
        }, "The original [N, K] int8 weights, read back from the packed layout.")
        .def("__repr__", [](const PackedWeights& p) {
            return "PackedWeights(n=" + std::to_string(p.n) + ", k=" + std::to_string(p.k) + ")";
        });

    m.def("pack_weights", &pack_weights_from_array, py::arg("b"), py::arg("b_zero_point") = py::none(),
          R"doc(Pack int8 weights b [N, K] (C-contiguous; one row per output channel) for gemm_s32.

b_zero_point: None (0), an int, or N ints, each in [-128, 127].)doc");

    // b as given to the GEMM bindings: PackedWeights (zero points packed in) or a raw [N, K] int8 array packed
    // here with b_zero_point; its K must match a's.
    auto gemm_weights = [](const py::array& a, const py::object& b_obj,
                           const py::object& b_zp_obj) -> std::shared_ptr<PackedWeights> {
        std::shared_ptr<PackedWeights> packed;
        if (py::isinstance<PackedWeights>(b_obj)) {
            if (!b_zp_obj.is_none())
                throw py::value_error("b_zero_point must be None when b is PackedWeights (it is packed in)");
            packed = py::cast<std::shared_ptr<PackedWeights>>(b_obj);
        } else {
            packed = pack_weights_from_array(b_obj, b_zp_obj);
        }
        if (a.shape(1) != packed->k)
            throw py::value_error("K mismatch: a has shape (" + std::to_string(a.shape(0)) + ", " +
                                  std::to_string(a.shape(1)) + ") but b has K = " + std::to_string(packed->k));
        return packed;
    };
    m.def("gemm_s32",
          [gemm_weights](const py::object& a_obj, const py::object& b_obj, const py::object& a_zp_obj, const py::object& b_zp_obj,
             const py::object& mode, int64_t acc_bits, const py::object& overflow, const std::string& isa,
             const py::object& threads, bool count_overflow) -> py::object {
              py::array a = checked_array(a_obj, "a", 2);
              const bool a_signed = activation_dtype(a, "a");
              const int32_t a_zp = activation_zero_point(a_zp_obj, a_signed, "a_zero_point");
              const std::shared_ptr<PackedWeights> packed = gemm_weights(a, b_obj, b_zp_obj);
              const GemmOptions opt = parse_options(mode, acc_bits, overflow, isa, threads, count_overflow, &packed->host);
              const int64_t mm = a.shape(0), nn = packed->n;
              py::array_t<int32_t> out({mm, nn});
              GemmActivations<DenseRows> act{DenseRows{static_cast<const uint8_t*>(a.data()), a.shape(1)}, mm,
                                             a.shape(1), a_signed, a_zp};
              int32_t* c = out.mutable_data();
              int64_t count = 0;
              {
                  py::gil_scoped_release release;
                  count = gemm_s32(act, *packed, c, nn, opt);
              }
              return with_count(out, count, count_overflow);
          },
          py::arg("a"), py::arg("b"), py::kw_only(), py::arg("a_zero_point") = 0, py::arg("b_zero_point") = py::none(),
          py::arg("mode") = "exact", py::arg("acc_bits") = 32, py::arg("overflow") = "wrap", py::arg("isa") = "auto",
          py::arg("threads") = 1, py::arg("count_overflow") = false,
          R"doc(Integer GEMM: int32 [M, N] = sum_k (a[m,k] - a_zero_point) * (b[n,k] - b_zero_point[n]).

a: [M, K] uint8 or int8, C-contiguous (activations). b: [N, K] int8 C-contiguous (one row per output
channel) or a PackedWeights from pack_weights. a_zero_point in the dtype range of a; b_zero_point None,
int or N ints in [-128, 127] (must be None for PackedWeights). mode: "exact" | "avx2_pairs" (or GemmMode);
acc_bits in [8, 32]; overflow: "wrap" | "saturate" (or AccOverflow); isa: "auto" | "scalar" | "avx2" |
"avx512_vnni" | "amx" (ValueError if this CPU lacks it; "amx" runs avx2_pairs on the AVX-512 kernel);
threads: 0 = all hardware threads, or a Workers pool. The exact rules of
every mode/accumulator/overflow count are in csrc/hwsim/gemm.h; all ISAs give identical integers.
Returns the int32 array, or (array, overflow_count) when count_overflow=True.)doc");

    py::class_<PackedConvWeights, std::shared_ptr<PackedConvWeights>>(m, "PackedConvWeights",
        "OHWI int8 convolution weights packed per group for conv2d_s32. Immutable; reusable.")
        .def_property_readonly("out_channels", [](const PackedConvWeights& p) { return p.out_c; })
        .def_property_readonly("kernel_shape", [](const PackedConvWeights& p) {
            return py::make_tuple(p.kernel_h, p.kernel_w);
        })
        .def_property_readonly("group_in_channels", [](const PackedConvWeights& p) { return p.group_in_c; })
        .def_property_readonly("groups", [](const PackedConvWeights& p) { return p.groups; });

    auto pack_conv = [](const py::object& w_obj, int64_t groups, const py::object& zp_obj) {
        py::array w = checked_array(w_obj, "w", 4);
        require_int8(w, "w");
        if (groups < 1) throw py::value_error("groups must be >= 1, got " + std::to_string(groups));
        const int64_t o = w.shape(0), kh = w.shape(1), kw = w.shape(2), cg = w.shape(3);
        if (o % groups != 0)
            throw py::value_error("groups = " + std::to_string(groups) + " does not divide the " + std::to_string(o) +
                                  " output channels of w");
        if (kh * kw * cg >= kMaxK) throw py::value_error("w has KH*KW*C/groups >= 2^24; not supported");
        const std::vector<int32_t> zp = weight_zero_points(zp_obj, o, "w_zero_point");
        const int8_t* data = static_cast<const int8_t*>(w.data());
        py::gil_scoped_release release;
        return pack_conv_weights(data, o, kh, kw, cg, groups, zp.empty() ? nullptr : zp.data());
    };
    // w as given to the conv bindings: PackedConvWeights (its groups and zero points are packed in) or a raw
    // OHWI array packed here with groups (default 1) and w_zero_point.
    auto conv_weights = [pack_conv](const py::object& w_obj, const py::object& w_zp_obj,
                                    const py::object& groups_obj) -> std::shared_ptr<PackedConvWeights> {
        if (!py::isinstance<PackedConvWeights>(w_obj))
            return pack_conv(w_obj, groups_obj.is_none() ? 1 : checked_int(groups_obj, "groups"), w_zp_obj);
        if (!w_zp_obj.is_none())
            throw py::value_error("w_zero_point must be None when w is PackedConvWeights (it is packed in)");
        auto packed = py::cast<std::shared_ptr<PackedConvWeights>>(w_obj);
        if (!groups_obj.is_none() && checked_int(groups_obj, "groups") != packed->groups)
            throw py::value_error("groups does not match the groups w was packed with (" +
                                  std::to_string(packed->groups) + ")");
        return packed;
    };
    m.def("pack_conv_weights", pack_conv, py::arg("w"), py::kw_only(), py::arg("groups") = 1,
          py::arg("w_zero_point") = py::none(),
          R"doc(Pack OHWI int8 conv weights w [O, KH, KW, C/groups] for conv2d_s32 (per-group GEMM weights).)doc");

    m.def("conv2d_s32",
          [conv_weights](const py::object& x_obj, const py::object& w_obj, const py::object& x_zp_obj,
                      const py::object& w_zp_obj, const py::object& strides, const py::object& dilations,
                      const py::object& pads, const py::object& groups_obj, const py::object& mode, int64_t acc_bits,
                      const py::object& overflow, const std::string& isa, const py::object& threads,
                      bool count_overflow) -> py::object {
              py::array x = checked_array(x_obj, "x", 4);
              const bool x_signed = activation_dtype(x, "x");
              const int32_t x_zp = activation_zero_point(x_zp_obj, x_signed, "x_zero_point");
              const std::shared_ptr<PackedConvWeights> packed = conv_weights(w_obj, w_zp_obj, groups_obj);
              const Conv2dGeometry geo = conv_geometry(x, *packed, strides, dilations, pads);
              const int64_t oh = geo.out_h(), ow = geo.out_w();
              const GemmOptions opt = parse_options(mode, acc_bits, overflow, isa, threads, count_overflow, &packed->host);
              py::array_t<int32_t> out({geo.batch, oh, ow, geo.out_c});
              const uint8_t* xd = static_cast<const uint8_t*>(x.data());
              int32_t* yd = out.mutable_data();
              int64_t count = 0;
              if (geo.batch > 0 && geo.out_c > 0) {
                  py::gil_scoped_release release;
                  count = conv2d_s32(xd, x_signed, x_zp, *packed, geo, yd, opt);
              }
              return with_count(out, count, count_overflow);
          },
          py::arg("x"), py::arg("w"), py::kw_only(), py::arg("x_zero_point") = 0, py::arg("w_zero_point") = py::none(),
          py::arg("strides") = py::make_tuple(1, 1), py::arg("dilations") = py::make_tuple(1, 1),
          py::arg("pads") = py::make_tuple(0, 0, 0, 0), py::arg("groups") = py::none(), py::arg("mode") = "exact",
          py::arg("acc_bits") = 32, py::arg("overflow") = "wrap", py::arg("isa") = "auto", py::arg("threads") = 1,
          py::arg("count_overflow") = false,
          R"doc(2-D convolution to int32: x NHWC [N, H, W, C] uint8/int8, w OHWI [O, KH, KW, C/groups] int8 (or
PackedConvWeights) -> int32 [N, OH, OW, O].

strides (h, w), dilations (h, w), pads [top, left, bottom, right] (ONNX order); padding taps hold
x_zero_point (a real 0). groups: default 1 (or the packed value). K order per group is (kh, kw, ci), ci
innermost; in mode "avx2_pairs" pairs are k = 2i, 2i+1 of that order. Other arguments as gemm_s32.
Returns the int32 array, or (array, overflow_count) when count_overflow=True.)doc");

    // ---- Fused: the int32 GEMM / convolution, then float-scale requantization of every finished tile.
    static const char* kFusedDoc = R"doc(

The result equals exactly requantize_float(<the int32 result>, scale, zero_point, qmin, qmax, bias=bias,
precision="fp32", scale_op="multiply", clamp="before_rounding", rounding=HALF_TO_EVEN, out_dtype=out_dtype)
(onnxruntime's QLinearConv / QGEMM output stage): q = clamp(round_half_even(float32(wrap32(acc + bias)) *
scale[o]), qmin - zp, qmax - zp) + zp. Each tile is requantized right after it is computed, on its thread;
the int32 array is never returned. scale: float32 per tensor or one per output channel (> 0, finite);
zero_point: int, per tensor or per channel, in [qmin, qmax]; bias: None or int32 [O]; out_dtype: int8,
uint8, int16, uint16, int32 or None (the smallest holding [qmin, qmax]). The requantization uses the
vector instructions of `isa` ("scalar" = portable code); all ISAs give identical integers.)doc";

    m.def("conv2d_requantize_float",
          [conv_weights](const py::object& x_obj, const py::object& w_obj, const py::object& scale,
                      const py::object& zero_point, int64_t qmin, int64_t qmax, const py::object& bias,
                      const py::object& x_zp_obj, const py::object& w_zp_obj, const py::object& strides,
                      const py::object& dilations, const py::object& pads, const py::object& groups_obj,
                      const py::object& mode, int64_t acc_bits, const py::object& overflow, const std::string& isa,
                      const py::object& threads, const py::object& out_dtype) -> py::object {
              py::array x = checked_array(x_obj, "x", 4);
              const bool x_signed = activation_dtype(x, "x");
              const int32_t x_zp = activation_zero_point(x_zp_obj, x_signed, "x_zero_point");
              const std::shared_ptr<PackedConvWeights> packed = conv_weights(w_obj, w_zp_obj, groups_obj);
              const Conv2dGeometry geo = conv_geometry(x, *packed, strides, dilations, pads);
              const GemmOptions opt = parse_options(mode, acc_bits, overflow, isa, threads, false, &packed->host);
              const FusedRequantArgs r = ParseFusedRequant(scale, zero_point, qmin, qmax, bias, out_dtype, geo.out_c);
              const RequantIsa risa = RequantIsaFor(opt.isa == GemmIsa::Scalar, opt.isa == GemmIsa::Avx2);
              const int64_t cols = geo.out_c;
              const uint8_t* xd = static_cast<const uint8_t*>(x.data());
              return RunFusedRequant(r, {geo.batch, geo.out_h(), geo.out_w(), geo.out_c}, cols, risa,
                                     [&](const TileEpilogue& hook) {
                                         // nullptr: int32 tiles live in per-thread scratch only
                                         conv2d_s32(xd, x_signed, x_zp, *packed, geo, nullptr, opt, &hook);
                                     });
          },
          py::arg("x"), py::arg("w"), py::kw_only(), py::arg("scale"), py::arg("zero_point"), py::arg("qmin"),
          py::arg("qmax"), py::arg("bias") = py::none(), py::arg("x_zero_point") = 0,
          py::arg("w_zero_point") = py::none(), py::arg("strides") = py::make_tuple(1, 1),
          py::arg("dilations") = py::make_tuple(1, 1), py::arg("pads") = py::make_tuple(0, 0, 0, 0),
          py::arg("groups") = py::none(), py::arg("mode") = "exact", py::arg("acc_bits") = 32,
          py::arg("overflow") = "wrap", py::arg("isa") = "auto", py::arg("threads") = 1,
          py::arg("out_dtype") = py::none(),
          (std::string("conv2d_s32 (same x, w, x_zero_point, w_zero_point, strides, dilations, pads, groups, mode, "
                       "acc_bits, overflow, isa, threads) fused with float-scale requantization -> [N, OH, OW, O].") +
           kFusedDoc).c_str());

    m.def("gemm_requantize_float",
          [gemm_weights](const py::object& a_obj, const py::object& b_obj, const py::object& scale, const py::object& zero_point,
             int64_t qmin, int64_t qmax, const py::object& bias, const py::object& a_zp_obj,
             const py::object& b_zp_obj, const py::object& mode, int64_t acc_bits, const py::object& overflow,
             const std::string& isa, const py::object& threads, const py::object& out_dtype) -> py::object {
              py::array a = checked_array(a_obj, "a", 2);
              const bool a_signed = activation_dtype(a, "a");
              const int32_t a_zp = activation_zero_point(a_zp_obj, a_signed, "a_zero_point");
              const std::shared_ptr<PackedWeights> packed = gemm_weights(a, b_obj, b_zp_obj);
              const GemmOptions opt = parse_options(mode, acc_bits, overflow, isa, threads, false, &packed->host);
              const int64_t mm = a.shape(0), nn = packed->n;
              const FusedRequantArgs r = ParseFusedRequant(scale, zero_point, qmin, qmax, bias, out_dtype, nn);
              const RequantIsa risa = RequantIsaFor(opt.isa == GemmIsa::Scalar, opt.isa == GemmIsa::Avx2);
              GemmActivations<DenseRows> act{DenseRows{static_cast<const uint8_t*>(a.data()), a.shape(1)}, mm,
                                             a.shape(1), a_signed, a_zp};
              return RunFusedRequant(r, {mm, nn}, nn, risa, [&](const TileEpilogue& hook) {
                  gemm_s32(act, *packed, nullptr, nn, opt, &hook);  // int32 tiles in per-thread scratch only
              });
          },
          py::arg("a"), py::arg("b"), py::kw_only(), py::arg("scale"), py::arg("zero_point"), py::arg("qmin"),
          py::arg("qmax"), py::arg("bias") = py::none(), py::arg("a_zero_point") = 0,
          py::arg("b_zero_point") = py::none(), py::arg("mode") = "exact", py::arg("acc_bits") = 32,
          py::arg("overflow") = "wrap", py::arg("isa") = "auto", py::arg("threads") = 1,
          py::arg("out_dtype") = py::none(),
          (std::string("gemm_s32 (same a, b, a_zero_point, b_zero_point, mode, acc_bits, overflow, isa, threads) "
                       "fused with float-scale requantization -> [M, N].") + kFusedDoc).c_str());

    py::class_<PreparedConv2d>(m, "PreparedConv2d", R"doc(PreparedConv2d(w, *, scale, zero_point, qmin, qmax, bias=None, x_zero_point=0, strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0), mode="exact", isa="auto", out_dtype=None)

conv2d_requantize_float with every argument but x (and threads) given once: w is PackedConvWeights
(pack_conv_weights). Calling it with (x, threads=1) returns exactly conv2d_requantize_float(x, w, ...) with
the same arguments; x is checked on every call.)doc")
        .def(py::init([](const std::shared_ptr<PackedConvWeights>& w, const py::object& scale,
                         const py::object& zero_point, int64_t qmin, int64_t qmax, const py::object& bias,
                         const py::object& x_zp, const py::object& strides, const py::object& dilations,
                         const py::object& pads, const py::object& mode, const std::string& isa,
                         const py::object& out_dtype) {
                 if (!w) throw py::type_error("w must be PackedConvWeights (hwsim._core.pack_conv_weights)");
                 auto p = std::make_unique<PreparedConv2d>();
                 p->conv = w;
                 p->strides = strides;
                 p->dilations = dilations;
                 p->pads = pads;
                 p->x_zero_point = x_zp;
                 prepare_requant(*p, &w->host, w->out_c, mode, isa, scale, zero_point, qmin, qmax, bias, out_dtype);
                 return p;
             }),
             py::arg("w"), py::kw_only(), py::arg("scale"), py::arg("zero_point"), py::arg("qmin"), py::arg("qmax"),
             py::arg("bias") = py::none(), py::arg("x_zero_point") = 0, py::arg("strides") = py::make_tuple(1, 1),
             py::arg("dilations") = py::make_tuple(1, 1), py::arg("pads") = py::make_tuple(0, 0, 0, 0),
             py::arg("mode") = "exact", py::arg("isa") = "auto", py::arg("out_dtype") = py::none())
        .def("__call__", [](const PreparedConv2d& p, const py::object& x_obj, const py::object& threads) {
                 py::array x = checked_array(x_obj, "x", 4);
                 const bool x_signed = activation_dtype(x, "x");
                 const int32_t x_zp = activation_zero_point(p.x_zero_point, x_signed, "x_zero_point");
                 const Conv2dGeometry geo = conv_geometry(x, *p.conv, p.strides, p.dilations, p.pads);
                 const GemmOptions opt = call_options(p, threads);
                 const uint8_t* xd = static_cast<const uint8_t*>(x.data());
                 return RunFusedRequantPlan(p.r, *p.plan, {geo.batch, geo.out_h(), geo.out_w(), geo.out_c}, geo.out_c,
                                            [&](const TileEpilogue& hook) {
                                                conv2d_s32(xd, x_signed, x_zp, *p.conv, geo, nullptr, opt, &hook);
                                            });
             },
             py::arg("x"), py::arg("threads") = 1);

    py::class_<PreparedDense>(m, "PreparedDense", R"doc(PreparedDense(b, *, scale, zero_point, qmin, qmax, bias=None, a_zero_point=0, mode="exact", isa="auto", out_dtype=None)

gemm_requantize_float with every argument but a (and threads) given once: b is PackedWeights
(pack_weights). Calling it with (a, threads=1) returns exactly gemm_requantize_float(a, b, ...).)doc")
        .def(py::init([](const std::shared_ptr<PackedWeights>& b, const py::object& scale,
                         const py::object& zero_point, int64_t qmin, int64_t qmax, const py::object& bias,
                         const py::object& a_zp, const py::object& mode, const std::string& isa,
                         const py::object& out_dtype) {
                 if (!b) throw py::type_error("b must be PackedWeights (hwsim._core.pack_weights)");
                 auto p = std::make_unique<PreparedDense>();
                 p->dense = b;
                 p->x_zero_point = a_zp;
                 prepare_requant(*p, &b->host, b->n, mode, isa, scale, zero_point, qmin, qmax, bias, out_dtype);
                 return p;
             }),
             py::arg("b"), py::kw_only(), py::arg("scale"), py::arg("zero_point"), py::arg("qmin"), py::arg("qmax"),
             py::arg("bias") = py::none(), py::arg("a_zero_point") = 0, py::arg("mode") = "exact",
             py::arg("isa") = "auto", py::arg("out_dtype") = py::none())
        .def("__call__", [](const PreparedDense& p, const py::object& a_obj, const py::object& threads) {
                 py::array a = checked_array(a_obj, "a", 2);
                 const bool a_signed = activation_dtype(a, "a");
                 const int32_t a_zp = activation_zero_point(p.x_zero_point, a_signed, "a_zero_point");
                 if (a.shape(1) != p.dense->k)
                     throw py::value_error("K mismatch: a has shape (" + std::to_string(a.shape(0)) + ", " +
                                           std::to_string(a.shape(1)) + ") but b has K = " + std::to_string(p.dense->k));
                 const GemmOptions opt = call_options(p, threads);
                 const int64_t mm = a.shape(0), nn = p.dense->n;
                 GemmActivations<DenseRows> act{DenseRows{static_cast<const uint8_t*>(a.data()), a.shape(1)}, mm,
                                                a.shape(1), a_signed, a_zp};
                 return RunFusedRequantPlan(p.r, *p.plan, {mm, nn}, nn, [&](const TileEpilogue& hook) {
                     gemm_s32(act, *p.dense, nullptr, nn, opt, &hook);
                 });
             },
             py::arg("a"), py::arg("threads") = 1);
}

}  // namespace hwsim::bindings
