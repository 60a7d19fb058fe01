// The `threads` argument of the threaded bindings: an int (0 = all hardware threads; each call starts its
// own threads) or a hwsim._core.Workers (a caller-owned WorkerPool of persistent threads, parallel.h).
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "hwsim/parallel.h"

namespace hwsim::bindings {

struct __attribute__((visibility("hidden"))) ThreadsArg {
    int threads = 1;
    WorkerPool* pool = nullptr;  // owned by the Python Workers object, which the caller's arguments keep alive
};

// max_threads: the binding's upper bound for an int count.
inline ThreadsArg ParseThreads(const pybind11::handle& obj, int64_t max_threads) {
    namespace py = pybind11;
    ThreadsArg t;
    if (py::isinstance<WorkerPool>(obj)) {
        t.pool = &py::cast<WorkerPool&>(obj);
        t.threads = t.pool->size();
        return t;
    }
    if (py::isinstance<py::bool_>(obj) || !py::isinstance<py::int_>(obj))
        throw py::type_error("threads must be an int or a hwsim._core.Workers, got " +
                             std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
    const int64_t v = obj.cast<int64_t>();
    if (v < 0 || v > max_threads)
        throw py::value_error("threads must be in [0, " + std::to_string(max_threads) +
                              "] (0 = all hardware threads), got " + std::to_string(v));
    t.threads = static_cast<int>(v);
    return t;
}

}  // namespace hwsim::bindings
