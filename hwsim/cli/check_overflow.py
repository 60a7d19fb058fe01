"""``hwsim check-overflow --target T model.npz``: static worst-case accumulator and int16-pair bounds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from hwsim.cli._common import load_array
from hwsim.compare.overflow import OverflowReport, check_overflow
from hwsim.emulate.simulator import quantize_for_target
from hwsim.errors import HwsimError
from hwsim.graph import load_model
from hwsim.targets import load_target


def _print(report: OverflowReport, console: Console) -> None:
    t = Table(title=f"{report.model} on {report.target}: worst-case sums over the {report.range_source} "
                    f"input ranges (headroom in bits, negative = can overflow)", title_justify="left")
    for col, just in (("layer", "left"), ("op", "left"), ("check", "left"), ("input codes", "right"),
                      ("bound min", "right"), ("bound max", "right"), ("width", "right"), ("needed", "right"),
                      ("headroom", "right"), ("worst ch / pair", "right"), ("status", "left")):
        t.add_column(col, justify=just)
    for c in report.checks:
        where = str(c.worst_channel) + ("" if c.worst_pair is None else f" / {c.worst_pair}")
        status = "[red]CAN OVERFLOW[/red]" if c.can_overflow else "ok"
        t.add_row(c.layer, c.op_kind, c.check, f"{c.input_range[0]}..{c.input_range[1]}", str(c.bound_min),
                  str(c.bound_max), str(c.width_bits), str(c.needed_bits), f"{c.headroom_bits:+d}", where,
                  status)
    console.print(t)
    bad = report.overflowing
    if not report.checks:
        console.print("no integer Conv2D / DepthwiseConv2D / Dense layers on this target")
    elif bad:
        console.print(f"{len({c.node for c in bad})} layer(s) can overflow on {report.target}:")
        for c in bad:
            console.print(f"  {c.layer} ({c.check}, headroom {c.headroom_bits:+d} bits): {c.suggestion}")
    else:
        console.print(f"no layer can overflow on {report.target} "
                      f"(accumulator {report.accumulator_bits} bits)")


@click.command("check-overflow")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--target", "-t", "target_name", required=True,
              help="Target name (see `hwsim targets`) or YAML path.")
@click.option("--target-dir", "target_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Extra folder of user target YAML files (repeatable).")
@click.option("--calib", "calib_path", type=click.Path(dir_okay=False),
              help="Calibration inputs (.npy) to quantize a float model; default: the bundled calibration "
                   "set.")
@click.option("--observed", is_flag=True,
              help="Bound with the input code ranges observed on the calibration data instead of the full "
                   "quantized ranges (not a guarantee).")
@click.option("--acc-bits", "acc_bits", type=click.IntRange(min=2, max=64),
              help="Check against this accumulator width instead of the target's.")
@click.option("--limit", type=click.IntRange(min=1), help="Use at most N calibration samples.")
@click.option("--strict", is_flag=True, help="Exit with code 1 when a layer can overflow.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Write overflow.json and overflow.csv.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of a table.")
def command(model: str, target_name: str, target_dirs: tuple[str, ...], calib_path: str | None,
            observed: bool, acc_bits: int | None, limit: int | None, strict: bool, out_dir: str | None,
            as_json: bool) -> None:
    """Bound every layer's accumulator and int16 pair sums from its integer weights and input ranges."""
    target = load_target(target_name, extra_dirs=tuple(Path(d) for d in target_dirs))
    if target.numerics.activations.format != "int":
        raise HwsimError(f"target {target.name}: computes in float; there is no integer accumulator to check")
    graph = load_model(model)
    calib = load_array(calib_path, "--calib") if calib_path else None
    if calib is None:
        data = graph.data or {}
        for key in ("calibration", "evaluation"):
            if key in data and "x" in data[key]:
                calib = data[key]["x"]
                break
    if calib is None and (not graph.quant or observed):
        raise HwsimError(f"model '{graph.name}': has no bundled calibration data; pass --calib data.npy")
    if calib is not None:
        calib = np.asarray(calib, dtype=np.float32)
        if limit is not None:
            calib = calib[:limit]
        expect = tuple(graph.inputs[0].shape[1:])
        if calib.ndim != len(expect) + 1 or tuple(calib.shape[1:]) != expect:
            raise HwsimError(f"calibration: expected shape (N, {', '.join(map(str, expect))}) for input "
                             f"'{graph.inputs[0].name}', got {tuple(calib.shape)}")
    qm = quantize_for_target(graph, target, calib)
    report = check_overflow(qm, data=calib if observed else None, acc_bits=acc_bits)
    if out_dir:
        report.write_folder(out_dir)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print(report, Console(width=None if sys.stdout.isatty() else 160))
        if out_dir:
            click.echo(f"run folder: {out_dir}")
    if strict and report.overflowing:
        click.get_current_context().exit(1)
