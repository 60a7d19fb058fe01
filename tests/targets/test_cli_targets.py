"""``hwsim targets [--target-dir DIR]... [--json]`` and ``hwsim targets show NAME [--json]``."""

from __future__ import annotations

import json
import textwrap

import pytest
import yaml
from click.testing import CliRunner

from hwsim.cli import cli
from hwsim.targets import list_targets, load_target


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_list_prints_one_row_per_target_with_family_source_and_description():
    result = invoke("targets")
    assert result.exit_code == 0, result.output
    header, *rows = result.output.strip().splitlines()
    assert header.split() == ["NAME", "FAMILY", "SOURCE", "DESCRIPTION"]
    infos = list_targets()
    assert len(rows) == len(infos)
    for info, row in zip(infos, rows):
        assert row.split()[:3] == [info.name, info.family, "builtin"] and row.endswith(info.description)


def test_list_json_is_the_target_infos():
    result = invoke("targets", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [i.to_dict() for i in list_targets()]


def test_list_includes_user_folders(folder):
    folder.write("my_target", textwrap.dedent("""\
        schema_version: 1
        name: my_target
        extends: intel_int8
        description: mine
        """))
    result = invoke("targets", "--target-dir", folder.path)
    assert result.exit_code == 0, result.output
    row = next(r for r in result.output.splitlines() if r.startswith("my_target "))
    assert f"user: {folder.path}" in row and row.endswith("mine")


@pytest.mark.parametrize("name", ["fpga_dpu", "arm_tflite_xnnpack", "intel_int8_fbgemm"])
def test_show_prints_the_resolved_target_as_yaml(name):
    result = invoke("targets", "show", name)
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output) == load_target(name).to_dict()


def test_show_json():
    result = invoke("targets", "show", "arm_tflite", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == load_target("arm_tflite").to_dict()


@pytest.mark.parametrize("position", ["group", "command"])
def test_show_a_user_target(folder, position):
    folder.write("my_dpu", textwrap.dedent("""\
        schema_version: 1
        name: my_dpu
        extends: fpga_dpu
        description: mine
        cost: {clock_mhz: 150}
        """))
    args = (["targets", "--target-dir", folder.path, "show", "my_dpu"] if position == "group"
            else ["targets", "show", "my_dpu", "--target-dir", folder.path])
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["cost"]["clock_mhz"] == 150


def test_unknown_target_exits_2_with_one_line_listing_the_available_ones():
    result = invoke("targets", "show", "no_such_target")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: unknown target 'no_such_target'; available: arm_tflite, ")


def test_invalid_user_target_exits_2_with_one_line_naming_file_and_key(folder):
    path = folder.write("broken", textwrap.dedent("""\
        schema_version: 1
        name: broken
        extends: fpga_dpu
        description: broken
        numerics:
          weights: {rounding: HALF_EVEN}
        """))
    result = invoke("targets", "--target-dir", folder.path)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    expected = f"error: {path}: numerics.weights.rounding: 'HALF_EVEN' is not one of HALF_TO_EVEN"
    assert lines[0].startswith(expected)
