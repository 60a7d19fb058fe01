#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace hwsim::bindings {
void bind_gemm(py::module_& m) {}
}  // namespace hwsim::bindings
