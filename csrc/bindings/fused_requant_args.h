// Argument checking of the fused "integer kernel + float-scale requantization" bindings (bind_gemm.cc,
// bind_depthwise.cc): the same rules and messages as requantize_float (bind_numerics.cc), for the one
// scheme the fused functions implement (float32, multiply, int32 bias, clamp, round half to even).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bindings/numerics_args.h"
#include "hwsim/requantize.h"
#include "hwsim/requantize_epilogue.h"

namespace hwsim::bindings {

// Hidden visibility, like the pybind11 types it holds (silences -Wattributes).
struct __attribute__((visibility("hidden"))) FusedRequantArgs {
    std::vector<float> scale;
    std::vector<int32_t> zero_point;
    std::vector<int32_t> bias;  // empty: no bias
    int64_t qmin = 0, qmax = 0;
    pybind11::dtype out_dtype;

    // The plan for C = out_channels channels, applied with the kernels of `isa`.
    FloatRequantPlan<float> plan(int64_t out_channels, RequantIsa isa) const {
        FloatRequantOptions o;
        o.bias = bias.empty() ? FloatBias::NONE : FloatBias::INT32;
        o.clamp_before_rounding = true;
        o.rounding = RoundingMode::HALF_TO_EVEN;
        return PlanRequantizeFloat<float>(out_channels, bias.empty() ? nullptr : bias.data(), nullptr, nullptr, 0,
                                          scale.data(), static_cast<int64_t>(scale.size()), zero_point.data(),
                                          static_cast<int64_t>(zero_point.size()), qmin, qmax, o, isa);
    }
};

// scale: float, > 0, finite, 1 or C values (rounded to float32); zero_point: integer, 1 or C values in
// [qmin, qmax]; bias: None or int32 [C]; out_dtype: as requantize_float.
inline FusedRequantArgs ParseFusedRequant(pybind11::handle scale, pybind11::handle zero_point, int64_t qmin,
                                          int64_t qmax, pybind11::handle bias, pybind11::handle out_dtype, int64_t C) {
    namespace py = pybind11;
    using namespace args;
    FusedRequantArgs r;
    r.qmin = qmin;
    r.qmax = qmax;
    r.out_dtype = OutDtype(out_dtype, qmin, qmax);
    const std::vector<double> s = FloatParam(scale, "scale", true);
    RequireParamLength(s.size(), C, "scale");
    r.scale.assign(s.begin(), s.end());
    r.zero_point = ToInt32(IntParam(zero_point, "zero_point", INT32_MIN, INT32_MAX));
    RequireParamLength(r.zero_point.size(), C, "zero_point");
    for (int32_t z : r.zero_point)
        if (z < qmin || z > qmax)
            ValueError("zero_point must be in [qmin, qmax] = [" + Str(qmin) + ", " + Str(qmax) + "], got " + Str(z));
    if (!bias.is_none()) {
        py::array b = AsArray(bias, "bias");
        auto bi = Exact<int32_t>(b, "bias", "int32");
        if (b.ndim() != 1 || b.shape(0) != C)
            ValueError("bias must be 1-D of length " + Str(C) + " (one per output channel)");
        r.bias.assign(bi.data(), bi.data() + bi.size());
    }
    return r;
}

// The requantization ISA that goes with a GEMM ISA: the kernels of the same instruction set.
inline RequantIsa RequantIsaFor(bool scalar, bool avx2_only) {
    const RequantIsa best = host_requant_isa();
    if (scalar) return RequantIsa::Scalar;
    if (avx2_only && best == RequantIsa::Avx512) return RequantIsa::Avx2;
    return best;
}

// RunFusedRequant with a plan built beforehand (a prepared layer keeps it from call to call).
template <typename Run>
pybind11::array RunFusedRequantPlan(const FusedRequantArgs& r, const FloatRequantPlan<float>& plan,
                                    const std::vector<pybind11::ssize_t>& shape, int64_t C, Run&& run) {
    namespace py = pybind11;
    py::array out(r.out_dtype, shape);
    void* po = out.mutable_data();
    int64_t total = 1;
    for (auto d : shape) total *= d;
    if (total == 0) return out;
    args::DispatchOut(r.out_dtype, [&](auto out_tag) {
        using Out = decltype(out_tag);
        FloatRequantEpilogue<float, Out> epi;
        epi.plan = &plan;
        epi.out = static_cast<Out*>(po);
        epi.ldo = C;
        const TileEpilogue hook = epi.hook();
        py::gil_scoped_release release;
        run(hook);
    });
    return out;
}

// Allocates the output (shape, r.out_dtype), builds the plan and calls run(epilogue_hook) with the GIL
// released; run must produce every element of the [rows, C] int32 result and hand it to the hook.
template <typename Run>
pybind11::array RunFusedRequant(const FusedRequantArgs& r, const std::vector<pybind11::ssize_t>& shape, int64_t C,
                                RequantIsa isa, Run&& run) {
    return RunFusedRequantPlan(r, r.plan(C, isa), shape, C, std::forward<Run>(run));
}

}  // namespace hwsim::bindings
