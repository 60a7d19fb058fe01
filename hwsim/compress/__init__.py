"""Model compression: pruning, low-rank factorisation and weight sharing (clustering). Graph in, graph out.

>>> from hwsim.compress import prune_structured, factorize, cluster_weights
>>> small = prune_structured(graph, 0.3)              # 30% of the filters of every prunable layer
>>> thin = factorize(graph, ratio=0.5)                 # half the parameters of every Conv2D/Dense
>>> shared = cluster_weights(graph, bits=4)            # 16 shared values per layer, codebook + indices
>>> report = compare_models(graph, small, targets=["fpga_dpu", "intel_int8_i7_1185g7"], sim_target="fpga_dpu")

docs/compression.md describes every method, the clustered-weight representation and what each target gains.
"""

from hwsim.compress._common import CompressionError
from hwsim.compress.cluster import (check_clustered, cluster_weights, clustered_weights, expand_clustered,
                                    kmeans_1d, quantized_codebook)
from hwsim.compress.lowrank import factorize, max_rank, reconstruct
from hwsim.compress.prune import analyze_channels, prune_structured, prune_unstructured, sparsity_of

__all__ = [
    "CompressionError", "analyze_channels", "check_clustered", "cluster_weights", "clustered_weights",
    "expand_clustered", "factorize", "kmeans_1d", "max_rank", "prune_structured", "prune_unstructured",
    "quantized_codebook", "reconstruct", "sparsity_of",
]
