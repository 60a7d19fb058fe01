"""Comparison of simulated integers: with the float reference, across targets, and static overflow bounds."""

from hwsim.compare.metrics import TensorComparison, compare_tensor, top1_agreement
from hwsim.compare.overflow import OverflowReport, check_overflow, tensor_ranges
from hwsim.compare.parity import CAUSES, ParityReport, parity

__all__ = ["CAUSES", "OverflowReport", "ParityReport", "TensorComparison", "check_overflow", "compare_tensor",
           "parity", "tensor_ranges", "top1_agreement"]
