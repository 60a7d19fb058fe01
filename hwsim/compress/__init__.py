"""Model compression: pruning, low-rank factorisation and weight sharing (clustering). Graph in, graph out."""

from hwsim.compress._common import CompressionError
from hwsim.compress.prune import analyze_channels, prune_structured, prune_unstructured, sparsity_of

__all__ = ["CompressionError", "analyze_channels", "prune_structured", "prune_unstructured", "sparsity_of"]
