"""``extends:`` resolution: maps merge key by key, lists and scalars are replaced, null removes a key, a
map whose kind changes (kernel/fallback/scheme/format) is replaced whole; cycles and unknown parents are
errors."""

from __future__ import annotations

import pytest

from hwsim.errors import TargetError
from hwsim.targets import load_target


def test_child_inherits_everything_it_does_not_set(folder):
    folder.minimal("base")
    folder.write("child", """\
        schema_version: 1
        name: child
        extends: base
        description: child
        numerics:
          weights: {bits: 4}
        """)
    base, child = load_target("base", [folder.path]), load_target("child", [folder.path])
    assert child.family == "generic" and child.extends == "base" and base.extends is None
    assert child.numerics.weights.bits == 4
    # siblings of the changed key are merged, not dropped
    assert (child.numerics.weights.narrow, child.numerics.weights.granularity) == (True, "per_channel")
    assert child.numerics.activations == base.numerics.activations
    assert child.ops == base.ops


def test_nested_maps_merge_and_lists_are_replaced(folder):
    folder.minimal("base")
    folder.write("child", """\
        schema_version: 1
        name: child
        extends: base
        description: child
        ops:
          Conv2D: {gemm: avx2_pairs, fuse: [ReLU]}
        """)
    conv = load_target("child", [folder.path]).op("Conv2D")
    assert conv.gemm == "avx2_pairs"
    assert conv.fuse == ("ReLU",)  # the list [ReLU, ReLU6] was replaced, not appended to
    assert conv.requant.scheme == "fixed_point_double"  # merged from the parent


def test_changing_the_scheme_replaces_the_requant_map(folder):
    folder.minimal("base", """\
        cost: {clock_mhz: 100, cores: 2}
        """)
    folder.write("mid", """\
        schema_version: 1
        name: mid
        extends: base
        description: float requant
        ops:
          Conv2D:
            requant: {scheme: float_scale, precision: float64, rounding: HALF_UP}
        """)
    folder.write("leaf", """\
        schema_version: 1
        name: leaf
        extends: mid
        description: back to fixed point; no float parameters may leak into it
        ops:
          Conv2D:
            requant: {scheme: fixed_point_single}
        """)
    mid, leaf = load_target("mid", [folder.path]), load_target("leaf", [folder.path])
    assert (mid.op("Conv2D").requant.params["precision"], mid.op("Conv2D").requant.params["rounding"]) == (
        "float64", "HALF_UP")
    assert dict(leaf.op("Conv2D").requant.params) == {"scale_precision": "float64"}
    assert leaf.cost.clock_mhz == 100  # grandparent's cost inherited through two levels


def test_switching_kernel_to_fallback_replaces_the_op_entry(folder):
    folder.minimal("base")
    folder.write("child", """\
        schema_version: 1
        name: child
        extends: base
        description: child
        ops:
          Conv2D: {fallback: cpu}
        """)
    conv = load_target("child", [folder.path]).op("Conv2D")
    assert (conv.fallback, conv.kernel, conv.requant, conv.fuse) == ("cpu", None, None, ())


def test_null_removes_an_inherited_key(folder):
    folder.minimal("base", """\
        cost: {clock_mhz: 100}
        """)
    folder.write("child", """\
        schema_version: 1
        name: child
        extends: base
        description: child
        ops:
          Conv2D: null
        cost: null
        """)
    child = load_target("child", [folder.path])
    assert child.cost is None
    assert child.op("Conv2D").source == "ops.default" and child.op("Conv2D").fallback == "float"


def test_name_description_and_override_are_not_inherited(folder):
    folder.minimal("base")
    folder.write("child", """\
        schema_version: 1
        name: child
        extends: base
        """)
    with pytest.raises(TargetError, match=r"child\.yaml: missing required key 'description'"):
        load_target("child", [folder.path])


@pytest.mark.parametrize("files, start, cycle", [
    ({"a": "a"}, "a", "a -> a"),
    ({"a": "b", "b": "a"}, "a", "a -> b -> a"),
    ({"a": "b", "b": "c", "c": "a"}, "b", "b -> c -> a -> b"),
])
def test_cycles_are_errors(folder, files, start, cycle):
    for name, parent in files.items():
        folder.write(name, f"""\
            schema_version: 1
            name: {name}
            extends: {parent}
            description: cyclic
            """)
    with pytest.raises(TargetError) as err:
        load_target(start, [folder.path])
    closing = cycle.split(" -> ")[-2]  # the file whose extends: closes the cycle
    assert f"{closing}.yaml: extends: cycle {cycle}" in str(err.value)


def test_unknown_parent_is_an_error_listing_the_available_targets(folder):
    folder.minimal("child", "extends: no_such_target\n")
    with pytest.raises(TargetError) as err:
        load_target("child", [folder.path])
    message = str(err.value)
    assert "child.yaml: extends: unknown target 'no_such_target'; available:" in message
    assert "arm_tflite" in message and "fpga_dpu" in message


def test_user_folder_target_extends_a_builtin(folder):
    folder.write("my_dpu", """\
        schema_version: 1
        name: my_dpu
        extends: fpga_dpu
        description: B4096 at 200 MHz with a different leaky slope
        ops:
          LeakyReLU:
            params: {alpha_numerator: 13, alpha_denominator: 128}
        cost:
          clock_mhz: 200
        """)
    mine, base = load_target("my_dpu", [folder.path]), load_target("fpga_dpu")
    assert mine.family == "dpu" and mine.cost.clock_mhz == 200 and mine.cost.pixel_parallel == 8
    assert dict(mine.op("LeakyReLU").params) == {"alpha_numerator": 13, "alpha_denominator": 128}
    assert mine.op("LeakyReLU").requant == base.op("LeakyReLU").requant
    assert mine.numerics == base.numerics
    assert mine.source == f"user: {folder.path}"


def test_load_by_path_resolves_extends_against_the_registry(folder):
    path = folder.write("by_path", """\
        schema_version: 1
        name: by_path
        extends: arm_tflite
        description: loaded by path
        numerics:
          activations: {rounding: HALF_TO_EVEN}
        """)
    target = load_target(str(path))
    assert target.numerics.activations.rounding == "HALF_TO_EVEN"
    assert target.op("Dense") == load_target("arm_tflite").op("Dense")
