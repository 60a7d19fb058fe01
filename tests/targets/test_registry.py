"""Where targets come from: built-in package, user folders, the ``hwsim.targets`` entry-point group; how name
collisions are settled (``override: true``)."""

from __future__ import annotations

import importlib.metadata
import textwrap

import pytest

from hwsim.errors import TargetError
from hwsim.targets import ENTRY_POINT_GROUP, list_targets, load_target


def _child(name: str, parent: str = "arm_tflite", extra: str = "") -> str:
    return textwrap.dedent(f"""\
        schema_version: 1
        name: {name}
        extends: {parent}
        description: {name} from a test
        """) + textwrap.dedent(extra)


@pytest.fixture
def entry_points(monkeypatch, tmp_path):
    """Install entry points of the group hwsim.targets that load objects from a generated module."""

    def install(module_source: str, **eps: str) -> None:
        module_dir = tmp_path / "plugin_src"
        module_dir.mkdir(exist_ok=True)
        (module_dir / "fake_hwsim_plugin.py").write_text(textwrap.dedent(module_source))
        monkeypatch.syspath_prepend(str(module_dir))
        monkeypatch.delitem(__import__("sys").modules, "fake_hwsim_plugin", raising=False)
        fakes = [importlib.metadata.EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in eps.items()]
        real = importlib.metadata.entry_points

        def fake_entry_points(**kwargs):
            if kwargs.get("group") == ENTRY_POINT_GROUP:
                return importlib.metadata.EntryPoints(fakes)
            return real(**kwargs)

        monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)

    return install


def test_user_folder_targets_are_listed_with_their_source(folder):
    folder.write("my_arm", _child("my_arm"))
    infos = {i.name: i for i in list_targets([folder.path])}
    assert infos["my_arm"].source == "user" and infos["my_arm"].origin == str(folder.path)
    assert infos["my_arm"].family == "tflite" and infos["my_arm"].extends == "arm_tflite"
    assert infos["arm_tflite"].source == "builtin"
    assert "my_arm" not in {i.name for i in list_targets()}  # only folders named explicitly are read


def test_several_folders_can_be_named_and_extend_each_other(folder, tmp_path):
    second = tmp_path / "second"
    second.mkdir()
    folder.write("first_level", _child("first_level", extra="cost: {cores: 3}\n"))
    (second / "second_level.yml").write_text(_child("second_level", parent="first_level"))
    target = load_target("second_level", [folder.path, second])
    assert target.cost.cores == 3 and target.family == "tflite"


def test_name_collision_without_override_is_an_error(folder):
    path = folder.write("fpga_dpu", _child("fpga_dpu", parent="arm_tflite"))
    with pytest.raises(TargetError) as err:
        list_targets([folder.path])
    message = str(err.value)
    assert message.startswith(f"{path}: name: target 'fpga_dpu' is also defined in ")
    assert "set override: true in the user file" in message


def test_override_true_replaces_a_builtin(folder):
    folder.write("fpga_dpu_zcu104", _child("fpga_dpu_zcu104", parent="arm_tflite", extra="override: true\n"))
    target = load_target("fpga_dpu_zcu104", [folder.path])
    assert target.family == "tflite" and target.source.startswith("user")
    info = {i.name: i for i in list_targets([folder.path])}["fpga_dpu_zcu104"]
    assert info.source == "user" and info.extends == "arm_tflite"


def test_an_overriding_target_replaces_the_parent_of_others(folder):
    folder.write("fpga_dpu", _child("fpga_dpu", parent="fpga_dpu_b1152", extra="override: true\n"))
    # fpga_dpu_b1152 extends fpga_dpu, which is now this file: a file cannot extend what it replaces
    with pytest.raises(TargetError, match="cycle"):
        load_target("fpga_dpu", [folder.path])
    folder.write("fpga_dpu", _child("fpga_dpu", parent="arm_tflite", extra="override: true\n"))
    b1152 = load_target("fpga_dpu_b1152", [folder.path])
    assert b1152.numerics == load_target("arm_tflite").numerics and b1152.cost.pixel_parallel == 4


def test_two_overriding_definitions_are_an_error(folder, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    folder.write("twin", _child("twin", extra="override: true\n"))
    (other / "twin.yaml").write_text(_child("twin", extra="override: true\n"))
    with pytest.raises(TargetError, match="both set override: true"):
        load_target("twin", [folder.path, other])


def test_entry_point_returning_a_folder(entry_points, folder):
    folder.write("plugin_target", _child("plugin_target", parent="fpga_dpu", extra="cost: {cores: 4}\n"))
    entry_points(f"FOLDER = {str(folder.path)!r}\n", vendor="fake_hwsim_plugin:FOLDER")
    info = {i.name: i for i in list_targets()}["plugin_target"]
    assert info.source == "entry_point" and info.origin == "entry point vendor (fake_hwsim_plugin:FOLDER)"
    assert load_target("plugin_target").cost.cores == 4


def test_entry_point_callable_returning_yaml_paths(entry_points, folder):
    a = folder.write("ep_a", _child("ep_a"))
    b = folder.write("ep_b", _child("ep_b", parent="ep_a"))
    entry_points(f"def targets():\n    return [{str(a)!r}, {str(b)!r}]\n", vendor="fake_hwsim_plugin:targets")
    assert load_target("ep_b").extends == "ep_a"
    assert {"ep_a", "ep_b"} <= {i.name for i in list_targets()}


@pytest.mark.parametrize("source, expected", [
    ("def targets():\n    raise RuntimeError('boom')\n", "could not load: RuntimeError: boom"),
    ("def targets():\n    return 42\n", "expected a folder path, a YAML path or a list of them, got 42"),
    ("def targets():\n    return '/no/such/place'\n", "'/no/such/place' is not a folder or a .yaml file"),
])
def test_broken_entry_points_are_named(entry_points, source, expected):
    entry_points(source, broken="fake_hwsim_plugin:targets")
    with pytest.raises(TargetError) as err:
        list_targets()
    assert str(err.value).startswith("entry point broken (fake_hwsim_plugin:targets): ")
    assert expected in str(err.value)


def test_loading_reads_no_environment(monkeypatch):
    # No environment variable changes arithmetic: the same target loads identically under a noisy env.
    before = load_target("arm_tflite").to_dict()
    for var in ("HWSIM_TARGET", "HWSIM_ROUNDING", "TFLITE_SINGLE_ROUNDING", "DPU_ACCURACY"):
        monkeypatch.setenv(var, "1")
    assert load_target("arm_tflite").to_dict() == before
