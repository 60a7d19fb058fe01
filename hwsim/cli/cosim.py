"""``hwsim cosim``: compare a user's C kernel of one layer with hwsim, element by element (hwsim.cosim)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hwsim.cli._common import load_array
from hwsim.emulate.data import resolve_data
from hwsim.emulate.simulator import quantize_for_target
from hwsim.graph import load_model
from hwsim.targets import load_target


@click.command("cosim")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--kernel", "kernel_path", required=True, type=click.Path(dir_okay=False),
              help="Shared library implementing include/hwsim_kernel.h.")
@click.option("--layer", required=True, help="Node name of the Conv2D/DepthwiseConv2D/Dense layer to replace.")
@click.option("--target", "-t", "target_name", required=True, help="Target name or YAML path.")
@click.option("--target-dir", "target_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Extra folder of user target YAML files (repeatable).")
@click.option("--input", "input_path", type=click.Path(dir_okay=False),
              help="Inputs (.npy, batch first); default: the model's bundled evaluation set.")
@click.option("--calib", "calib_path", type=click.Path(dir_okay=False),
              help="Calibration inputs (.npy) of a float model; default: the bundled calibration set.")
@click.option("--limit", type=click.IntRange(min=1), default=8, show_default=True, help="Number of input samples.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def command(ctx: click.Context, model: str, kernel_path: str, layer: str, target_name: str,
            target_dirs: tuple[str, ...], input_path: str | None, calib_path: str | None, limit: int,
            as_json: bool) -> None:
    """Run MODEL with LAYER computed by a C kernel: exit 0 bit-exact, 1 mismatch, 2 bad kernel or input."""
    from hwsim.cosim import cosim_layer, load_kernel

    kernel = load_kernel(kernel_path)  # first: a bad library is reported before any simulation
    target = load_target(target_name, extra_dirs=tuple(Path(d) for d in target_dirs))
    graph = load_model(model)
    rd = resolve_data(graph, inputs=load_array(input_path, "--input") if input_path else None,
                      calibration=load_array(calib_path, "--calib") if calib_path else None, limit=limit)
    inputs = rd.inputs
    calib = None if graph.quant else rd.calibration  # a pre-quantized model is not calibrated
    qm = quantize_for_target(graph, target, calib)
    result = cosim_layer(kernel, qm, layer, inputs)
    click.echo(json.dumps(result.to_dict(), indent=1) if as_json else result.describe())
    ctx.exit(0 if result.matches else 1)
