"""Assertions for hardware teams' regression suites, and a pytest plugin.

Use the assertions anywhere::

    from hwsim.testing import assert_bit_exact, assert_golden, LsbTolerance
    assert_bit_exact(my_rtl_output, expected, name="conv1")
    assert_golden("golden/lenet5_arm", policy=LsbTolerance(0.5))

As a pytest plugin (entry point ``pytest11``: ``hwsim = "hwsim.testing"``, or ``-p hwsim.testing``, or
``pytest_plugins = ["hwsim.testing"]`` in a top-level conftest.py) it adds the fixture ``hwsim_golden``
and the option ``--hwsim-update-golden``::

    def test_lenet5_on_arm(hwsim_golden):
        hwsim_golden("golden/lenet5_arm", model="models/lenet5.npz", target="arm_tflite", limit=8)

The call checks the bundle (a relative path is relative to the test file) and fails the test with the
first failing layer; with ``pytest --hwsim-update-golden`` it (re-)records the bundle instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwsim.compare.golden import (
    BitExact,
    CheckResult,
    LsbTolerance,
    Policy,
    TopKAgreement,
    check_golden,
    diff_summary,
    parse_policy,
    record_golden,
)
from hwsim.targets import Target, load_target

__all__ = ["BitExact", "LsbTolerance", "Policy", "TopKAgreement", "assert_bit_exact", "assert_golden",
           "assert_policy", "parse_policy"]


def assert_bit_exact(actual: Any, expected: Any, name: str = "tensor") -> None:
    """Fail unless ``actual`` and ``expected`` hold the same integers in the same shape.

    The message names ``name``, the number of differing elements, the first differing index with both
    values, and the largest difference.
    """
    a, e = np.asarray(actual), np.asarray(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{name}: shape {list(a.shape)}, expected {list(e.shape)}")
    if a.dtype.kind not in "iub" or e.dtype.kind not in "iub":
        if not np.array_equal(a, e):
            idx = np.unravel_index(int(np.flatnonzero(a != e)[0]), a.shape)
            raise AssertionError(f"{name}: not identical; first at index {list(map(int, idx))}: expected "
                                 f"{e[idx]!r}, got {a[idx]!r}")
        return
    d = diff_summary(a, e)
    if d.differing:
        raise AssertionError(f"{name}: not bit-exact: {d.describe()}")


def assert_policy(actual: Any, expected: Any, policy: str | Policy, name: str = "tensor", *,
                  is_output: bool = True) -> None:
    """Fail unless ``actual`` meets ``policy`` against ``expected`` (integer tensors of the same shape)."""
    a, e = np.asarray(actual), np.asarray(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{name}: shape {list(a.shape)}, expected {list(e.shape)}")
    pol = parse_policy(policy)
    d = diff_summary(a, e)
    v = pol.judge(a, e, d, is_output=is_output)
    if not v.passed:
        raise AssertionError(f"{name}: fails policy {pol.spec}: {v.reason}; {d.describe()}")


def assert_golden(bundle_dir: str | os.PathLike, *, target: Target | str | None = None,
                  model: str | os.PathLike | None = None, policy: str | Policy | None = None,
                  target_dirs: Sequence[str | os.PathLike] = (), threads: int = 1) -> CheckResult:
    """Check a golden bundle (see :func:`hwsim.compare.golden.check_golden`) and fail with its summary.

    Returns the :class:`CheckResult` when it passes.
    """
    result = check_golden(bundle_dir, target=target, model=model, policy=policy, target_dirs=target_dirs,
                          threads=threads)
    if not result.passed:
        raise AssertionError(result.describe())
    return result


class GoldenFixture:
    """The ``hwsim_golden`` fixture: check a bundle, or record it under ``--hwsim-update-golden``."""

    def __init__(self, base: Path, update: bool) -> None:
        self.base = base
        self.update = update

    def _path(self, p: str | os.PathLike) -> Path:
        p = Path(p)
        return p if p.is_absolute() else self.base / p

    def __call__(self, bundle: str | os.PathLike, *, model: str | os.PathLike | None = None,
                 target: str | None = None, policy: str | Policy | None = None, inputs: Any = None,
                 limit: int | None = None, target_dirs: Sequence[str | os.PathLike] = ()) -> CheckResult | None:
        path = self._path(bundle)
        model_path = None if model is None else self._path(model)
        if self.update:
            if model_path is None or target is None:
                raise AssertionError(f"{path}: --hwsim-update-golden needs model= and target= to record")
            tgt = load_target(target, extra_dirs=tuple(target_dirs))
            record_golden(model_path, tgt, path, inputs=inputs, limit=limit, policy=policy, update=path.exists(),
                          target_arg=target)
            return None
        if not path.exists():
            raise AssertionError(f"{path}: no golden bundle; record it with pytest --hwsim-update-golden")
        # The frozen model in the bundle is what is checked; ``model`` is only needed to record.
        return assert_golden(path, target=target, policy=policy, target_dirs=target_dirs)


try:  # the plugin part needs pytest; the assertions above do not
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    def pytest_addoption(parser: Any) -> None:
        group = parser.getgroup("hwsim")
        group.addoption("--hwsim-update-golden", action="store_true", default=False,
                        help="hwsim_golden: (re-)record golden bundles instead of checking them.")

    @pytest.fixture
    def hwsim_golden(request: Any) -> GoldenFixture:
        """Check (or with --hwsim-update-golden record) a golden bundle; paths relative to the test file."""
        return GoldenFixture(Path(request.path).parent, bool(request.config.getoption("--hwsim-update-golden")))
