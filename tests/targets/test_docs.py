"""docs/targets.md documents every key, value, kernel and scheme of the schema, and its example loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hwsim.targets import load_target
from hwsim.targets import schema

DOC = (Path(__file__).resolve().parents[2] / "docs" / "targets.md").read_text()

NAMES = sorted({
    *schema.TOP_KEYS, *schema.ROLE_KEYS, *schema.ACCUMULATOR_KEYS, *schema.CALIBRATION_KEYS,
    *schema.OP_KEYS, *schema.COST_KEYS, *schema.KERNELS, *schema.REQUANT_SCHEMES,
    *(p for spec in schema.KERNELS.values() for p in spec.params),
    *(p for params in schema.REQUANT_SCHEMES.values() for p in params),
    *schema.ROUNDING_MODES, *schema.OVERFLOW_MODES, *schema.FAMILIES, *schema.GRANULARITIES,
    *schema.SCALE_KINDS, *schema.ZERO_POINTS, *schema.SYMMETRIC_DENOMINATORS, *schema.QUANTIZE_FORMULAS,
    *schema.OBSERVERS, *schema.FIX_POS_STATISTICS, *schema.GEMM_MODES, *schema.DEPTHWISE_SATURATIONS,
    *schema.FALLBACKS, *schema.STATUSES, *schema.PARAMS_RULES, *schema.OP_KINDS, *schema.FUSABLE_OPS,
})


@pytest.mark.parametrize("name", NAMES)
def test_every_key_and_value_is_documented(name):
    assert f"`{name}`" in DOC or re.search(rf"\b{re.escape(name)}\b", DOC), name


def test_the_documented_example_loads(tmp_path):
    example = re.search(r"`my_targets/my_dpu.yaml`:\s*```yaml\n(.*?)```", DOC, re.S).group(1)
    (tmp_path / "my_dpu.yaml").write_text(example)
    target = load_target("my_dpu", [tmp_path])
    assert target.numerics.weights.bits == 4 and target.cost.clock_mhz == 200
    assert target.op("Dense").fallback == "cpu" and target.op("Conv2D").fuse == ("ReLU", "ReLU6")
    assert target.op("Conv2D").requant == load_target("fpga_dpu").op("Conv2D").requant
