"""hwsim's TFLite parameter rules against what the TFLite converter actually wrote.

The converter needs TensorFlow, which hwsim's environment does not have, so its output is recorded in
tests/quant/data/tflite_quant_params.npz by tests/quant/data/gen_tflite_quant_params.py (TF 2.21, see
that script for how each case is converted). Scales are compared bit for bit, integers exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwsim.quant.scheme import (
    QuantScheme,
    affine_params_tflite,
    bias_params_from_scales,
    params_from_tensor,
    quantize,
)

DATA = Path(__file__).with_name("data") / "tflite_quant_params.npz"


def _load() -> dict[str, dict[str, np.ndarray]]:
    cases: dict[str, dict[str, np.ndarray]] = {}
    with np.load(DATA, allow_pickle=False) as z:
        for key in z.files:
            case, field = key.split("/")
            cases.setdefault(case, {})[field] = z[key]
    cases.pop("meta")
    return cases


CASES = _load()
WEIGHTS = QuantScheme(symmetric=True, narrow=True, granularity="per_channel", axis=0, params_rule="tflite")


def _bits(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).reshape(-1).view(np.int32)


@pytest.mark.parametrize("case", sorted(CASES))
def test_input_activation_params(case):
    c = CASES[case]
    s, z = affine_params_tflite(c["data"].min(), c["data"].max(), -128, 127)
    np.testing.assert_array_equal(_bits(c["input_scale"]), _bits(s))
    assert int(c["input_zero_point"][0]) == int(z[0])


@pytest.mark.parametrize("case", sorted(CASES))
def test_per_channel_weights(case):
    c = CASES[case]
    p = params_from_tensor(WEIGHTS, c["weight_ohwi"])
    np.testing.assert_array_equal(_bits(c["weight_scale"]), _bits(p.scale))
    # the converter multiplies by the float32 reciprocal and rounds half away from zero
    q = quantize(c["weight_ohwi"], p, "half_away", np.float32, method="reciprocal")
    np.testing.assert_array_equal(c["weight_q"], q)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bias(case):
    c = CASES[case]
    pb = bias_params_from_scales(c["input_scale"], c["weight_scale"], axis=0)
    np.testing.assert_array_equal(_bits(c["bias_scale"]), _bits(pb.scale))
    q = quantize(c["bias"], pb, "half_away", np.float32, method="reciprocal")
    np.testing.assert_array_equal(c["bias_q"], q)


def test_recorded_special_cases_are_present():
    # zero-width and sub-1e-6 input ranges, .5 zero-point ties, an all-zero and a tiny weight channel
    assert {"zeros", "tiny", "tinyneg", "tie25", "tie35"} <= set(CASES)
    assert np.all(CASES["conv3"]["weight_ohwi"][2] == 0)
    assert int(CASES["tie35"]["input_zero_point"][0]) == -125  # rhaz(-124.5): away from zero, not to even
