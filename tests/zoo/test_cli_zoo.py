"""``hwsim zoo list`` and ``hwsim zoo NAME -o model.npz [--seed N]``."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from hwsim.cli import cli
from hwsim.graph import load_model
from hwsim.zoo import build_model, list_models


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_zoo_list_prints_every_model_with_its_description():
    result = invoke("zoo", "list")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == len(list_models())
    for (name, description), line in zip(list_models(), lines):
        assert line.split()[0] == name and line.endswith(description)


@pytest.mark.parametrize("seed", [None, "3"])
def test_zoo_writes_a_model_that_loads_back_identical(tmp_path, seed):
    out = tmp_path / "model.npz"
    args = ["zoo", "transformer_tiny", "-o", str(out)] + (["--seed", seed] if seed else [])
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    loaded = load_model(out)
    expected = build_model("transformer_tiny", seed=int(seed or 0))
    assert loaded.params.keys() == expected.params.keys()
    assert all(np.array_equal(loaded.params[k], expected.params[k]) for k in expected.params)
    assert loaded.metadata["seed"] == int(seed or 0)


def test_zoo_lenet5_round_trips_with_its_data(tmp_path):
    out = tmp_path / "lenet5.npz"
    assert invoke("zoo", "lenet5", "-o", str(out)).exit_code == 0
    g = load_model(out)
    assert set(g.data) == {"calibration", "evaluation"}


def test_unknown_model_exits_2_listing_the_available_ones(tmp_path):
    result = invoke("zoo", "resnet18", "-o", str(tmp_path / "m.npz"))
    assert result.exit_code == 2
    assert "unknown zoo model 'resnet18'" in result.output
    assert all(name in result.output for name, _ in list_models())
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("args", [["zoo", "lenet5"], ["zoo", "lenet5", "-o", "x.npz", "--seed", "-1"]])
def test_usage_errors_exit_2(args):
    assert invoke(*args).exit_code == 2


def test_zoo_without_arguments_shows_help():
    result = invoke("zoo")
    assert result.exit_code == 0
    assert "hwsim zoo" in result.output


def test_missing_output_directory_exits_2(tmp_path):
    result = invoke("zoo", "transformer_tiny", "-o", str(tmp_path / "no" / "m.npz"))
    assert result.exit_code == 2
    assert "does not exist" in result.output
