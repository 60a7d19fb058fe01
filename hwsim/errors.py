"""Errors hwsim raises for bad input.

Every error a user can cause is a subclass of :class:`HwsimError`. Its message names the file, tensor,
node or field at fault. The command line turns these into one line on stderr and exit code 2; nothing
else in hwsim catches them.
"""


class HwsimError(ValueError):
    """Base class of every user-facing hwsim error (bad file, bad model, bad target, bad argument)."""


class ModelFormatError(HwsimError):
    """A model file cannot be read: corrupt, truncated, pickled, wrong version, missing or malformed field."""


class GraphError(HwsimError):
    """A graph is invalid: unknown op, bad attribute, shape mismatch, cycle, missing parameter."""


class TargetError(HwsimError):
    """A target description is invalid or unknown."""


class MissingExtraError(HwsimError):
    """An optional dependency (an 'extra') is needed for this feature and is not installed."""
