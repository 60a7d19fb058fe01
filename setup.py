"""Build the single extension ``hwsim._core`` from the header-only core in csrc/hwsim and the
thin bindings in csrc/bindings. Everything else is declared in pyproject.toml."""
import glob
import platform

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import find_packages, setup

ParallelCompile("HWSIM_BUILD_JOBS", default=2).install()

# Release flags only. -ffp-contract=off: a fused multiply-add would change float requantization results.
# No -march: the wheel must run on any x86-64; the SIMD kernels carry their own
# target attributes and are chosen at run time from CPUID (csrc/hwsim/cpu_features.h).
compile_args = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unused-parameter"]
if platform.machine().lower() in ("x86_64", "amd64"):
    compile_args.append("-mtune=generic")

ext = Pybind11Extension(
    "hwsim._core",
    sorted(glob.glob("csrc/bindings/*.cc")),
    include_dirs=["csrc"],
    depends=sorted(glob.glob("csrc/hwsim/*.h") + glob.glob("csrc/bindings/*.h")),  # header edits rebuild
    cxx_std=17,
    extra_compile_args=compile_args,
    extra_link_args=["-pthread"],
)

setup(
    packages=find_packages(include=["hwsim", "hwsim.*"]) + ["hwsim._builtin_targets"],
    package_dir={"hwsim._builtin_targets": "targets"},
    package_data={"hwsim._builtin_targets": ["*.yaml"], "hwsim.zoo": ["data/*.npz"]},
    ext_modules=[ext],
    cmdclass={"build_ext": build_ext},
    zip_safe=False,
)
