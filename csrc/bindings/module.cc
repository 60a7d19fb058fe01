// hwsim._core: the compiled module. It only calls the bind_* functions; each lives in its own file
// and owns the argument checking for one area of the core. No arithmetic here.
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace hwsim::bindings {
void bind_numerics(py::module_& m);  // bind_numerics.cc: rounding, saturation, requantization, quantize, packing
void bind_ops(py::module_& m);       // bind_ops.cc: element-wise, pooling, lookup-table activations
void bind_gemm(py::module_& m);      // bind_gemm.cc: integer GEMM, convolution, CPU feature dispatch
void bind_depthwise(py::module_& m); // bind_depthwise.cc: depthwise convolution, group-wise (sub-block) GEMM
void bind_activations(py::module_& m);  // bind_activations.cc: TFLite hard-swish, leaky ReLU, softmax
}  // namespace hwsim::bindings

PYBIND11_MODULE(_core, m) {
    m.doc() = "hwsim bit-exact integer core (header-only C++ in csrc/hwsim, bound with pybind11)";
    hwsim::bindings::bind_numerics(m);
    hwsim::bindings::bind_ops(m);
    hwsim::bindings::bind_gemm(m);
    hwsim::bindings::bind_depthwise(m);
    hwsim::bindings::bind_activations(m);
}
