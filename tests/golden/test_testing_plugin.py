"""hwsim.testing: assertions, policies as objects, and the pytest plugin (fixture hwsim_golden)."""
# ruff: noqa: F811  (pytest fixtures imported from golden_helpers are parameters here)

from __future__ import annotations

import numpy as np
import pytest
from golden_helpers import LENET, bundle, recorded  # noqa: F401  (fixtures)

from hwsim.testing import (
    BitExact,
    LsbTolerance,
    TopKAgreement,
    assert_bit_exact,
    assert_golden,
    assert_policy,
    parse_policy,
)

pytest_plugins = ["pytester"]


def test_assert_bit_exact_names_the_first_difference():
    a = np.arange(24, dtype=np.int8).reshape(2, 3, 4)
    assert_bit_exact(a, a.copy(), name="conv1")
    b = a.copy()
    b[1, 2, 0] += 1
    b[1, 2, 3] -= 3
    with pytest.raises(AssertionError) as e:
        assert_bit_exact(b, a, name="conv1")
    msg = str(e.value)
    assert msg.startswith("conv1: not bit-exact")
    assert "first at index [1, 2, 0]: expected 20, got 21" in msg
    assert "2 of 24 elements differ" in msg and "max |Δ| 3" in msg
    with pytest.raises(AssertionError, match=r"conv1: shape \[2, 12\], expected \[2, 3, 4\]"):
        assert_bit_exact(a.reshape(2, 12), a, name="conv1")


@pytest.mark.parametrize("spec, policy", [
    ("bit-exact", BitExact()),
    ("lsb1:0.5%", LsbTolerance(0.5)),
    ("top5:99%", TopKAgreement(5, 99.0)),
])
def test_policy_text_round_trip(spec, policy):
    assert parse_policy(spec) == policy
    assert policy.spec == spec


@pytest.mark.parametrize("bad", ["exact", "lsb1:x%", "top0:50%", "lsb1:150%"])
def test_bad_policy_text(bad):
    with pytest.raises(ValueError):
        parse_policy(bad)


def test_lsb_policy_on_arrays(rng):
    expected = rng.integers(-100, 100, 1000).astype(np.int8)
    one = expected.copy()
    one[:5] += 1  # 0.5 %
    assert_policy(one, expected, LsbTolerance(0.5))
    with pytest.raises(AssertionError, match="at ±1 LSB, more than 0.4%"):
        assert_policy(one, expected, "lsb1:0.4%")
    two = one.copy()
    two[0] += 1
    with pytest.raises(AssertionError, match="beyond ±1 LSB"):
        assert_policy(two, expected, LsbTolerance(50))


def test_topk_policy_on_arrays():
    expected = np.array([[1, 5, 3], [9, 2, 1], [0, 0, 1], [4, 4, 0]], np.int8)
    actual = expected.copy()
    actual[0] = [1, 3, 5]  # top-1 moves from class 1 to class 2
    assert TopKAgreement(1, 75).agreement(actual, expected) == 0.75
    assert TopKAgreement(2, 100).agreement(actual, expected) == 1.0  # {1, 2} both ways
    assert_policy(actual, expected, "top1:75%")
    with pytest.raises(AssertionError, match="top-1 agreement 75%"):
        assert_policy(actual, expected, "top1:76%")
    # ties rank the lower index first: row [4, 4, 0] has top-1 {0}
    assert TopKAgreement(1, 100).agreement(np.array([[4, 4, 0]]), np.array([[5, 4, 0]])) == 1.0


def test_assert_golden(recorded, bundle):
    assert assert_golden(recorded).passed
    first = sorted((bundle / "layers").iterdir())[1]
    a = np.load(first)
    a.reshape(-1)[0] ^= 1
    np.save(first, a)
    with pytest.raises(AssertionError, match="first failing layer 'conv1'"):
        assert_golden(bundle)


SUITE = f'''
import pytest

MODEL = {str(LENET)!r}

def test_lenet5_on_arm(hwsim_golden):
    hwsim_golden("golden/lenet5_arm", model=MODEL, target="arm_tflite", limit=2)

def test_lenet5_on_dpu(hwsim_golden):
    hwsim_golden("golden/lenet5_dpu", model=MODEL, target="fpga_dpu", limit=2, policy="lsb1:0.1%")
'''


def _plugin_args() -> list[str]:
    """``-p hwsim.testing`` unless the installed package already registers the plugin (entry point pytest11)."""
    from importlib.metadata import entry_points

    if any(ep.value == "hwsim.testing" for ep in entry_points(group="pytest11")):
        return ["-q"]
    return ["-p", "hwsim.testing", "-q"]


def test_plugin_records_then_checks(pytester):
    pytester.makepyfile(test_regression=SUITE)
    args = _plugin_args()
    missing = pytester.runpytest(*args)
    missing.assert_outcomes(failed=2)
    missing.stdout.fnmatch_lines(["*no golden bundle; record it with pytest --hwsim-update-golden*"])
    pytester.runpytest(*args, "--hwsim-update-golden").assert_outcomes(passed=2)
    assert (pytester.path / "golden" / "lenet5_arm" / "manifest.json").is_file()
    pytester.runpytest(*args).assert_outcomes(passed=2)
    # a regression: one golden integer changes → the test fails and names the layer
    layer = sorted((pytester.path / "golden" / "lenet5_dpu" / "layers").iterdir())[3]
    a = np.load(layer)
    a.reshape(-1)[0] ^= 2
    np.save(layer, a)
    res = pytester.runpytest(*args)
    res.assert_outcomes(passed=1, failed=1)
    res.stdout.fnmatch_lines(["*first failing layer 'conv2'*"])
