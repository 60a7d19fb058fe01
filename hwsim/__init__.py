"""hwsim: bit-exact hardware simulation and fixed-point emulation of quantized neural networks."""

from hwsim.errors import GraphError, HwsimError, MissingExtraError, ModelFormatError, TargetError

__version__ = "0.1.0"

__all__ = [
    "GraphError",
    "HwsimError",
    "MissingExtraError",
    "ModelFormatError",
    "TargetError",
    "__version__",
]
