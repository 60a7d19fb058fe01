"""Comparison of simulated integers with the float reference (and, later, across targets)."""

from hwsim.compare.metrics import TensorComparison, compare_tensor, top1_agreement

__all__ = ["TensorComparison", "compare_tensor", "top1_agreement"]
