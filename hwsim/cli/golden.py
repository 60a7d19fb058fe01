"""``hwsim golden record|check``: golden regression bundles (hwsim.compare.golden)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hwsim.cli._common import load_array
from hwsim.compare.golden import check_golden, record_golden
from hwsim.targets import load_target

_target_dir = click.option("--target-dir", "target_dirs", multiple=True, type=click.Path(file_okay=False),
                           help="Extra folder of user target YAML files (repeatable).")
_threads = click.option("--threads", type=click.IntRange(min=0), default=1, show_default=True,
                        help="Threads for the integer kernels (0 = all cores).")
_policy_help = ("Acceptance policy: 'bit-exact', 'lsb1:N%' (at most N% of elements at ±1 LSB, none beyond) or "
                "'topK:X%' (top-K agreement of the graph outputs at least X%).")


@click.group("golden")
def command() -> None:
    """Golden regression bundles: record every layer's integers, check later runs against them."""


@command.command("record")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--target", "-t", "target_name", required=True, help="Target name or YAML path.")
@_target_dir
@click.option("--out", "-o", "out_dir", required=True, type=click.Path(file_okay=False), help="Bundle folder.")
@click.option("--input", "input_path", type=click.Path(dir_okay=False),
              help="Inputs (.npy, batch first, NHWC); default: the model's bundled evaluation set.")
@click.option("--calib", "calib_path", type=click.Path(dir_okay=False),
              help="Calibration inputs (.npy) of a float model; default: the bundled calibration set.")
@click.option("--limit", type=click.IntRange(min=1), help="Keep at most N inputs and calibration samples.")
@click.option("--policy", default=None, help=_policy_help + " Default: bit-exact (--update keeps the old one).")
@click.option("--update", is_flag=True, help="Replace an existing bundle.")
@_threads
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def record(model: str, target_name: str, target_dirs: tuple[str, ...], out_dir: str, input_path: str | None,
           calib_path: str | None, limit: int | None, policy: str | None, update: bool, threads: int,
           as_json: bool) -> None:
    """Simulate MODEL on a target and record every layer's integer outputs into a bundle."""
    target = load_target(target_name, extra_dirs=tuple(Path(d) for d in target_dirs))
    inputs = load_array(input_path, "--input") if input_path else None
    calib = load_array(calib_path, "--calib") if calib_path else None
    manifest = record_golden(model, target, out_dir, inputs=inputs, calibration=calib, limit=limit, policy=policy,
                             update=update, threads=threads, target_arg=target_name)
    if as_json:
        click.echo(json.dumps(manifest, indent=1))
    else:
        click.echo(f"recorded {len(manifest['layers'])} tensors of {manifest['samples']} samples on {target.name} "
                   f"into {out_dir} (policy {manifest['policy']}, fingerprint {manifest['fingerprint'][:16]})")


@command.command("check")
@click.argument("bundle", type=click.Path(file_okay=False))
@click.option("--target", "-t", "target_name", default=None,
              help="Target name or YAML path; default: the one recorded in the bundle.")
@_target_dir
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="Check this model (re-quantized with the recorded calibration inputs) instead of the frozen one.")
@click.option("--policy", default=None, help=_policy_help + " Default: the bundle's.")
@_threads
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def check(ctx: click.Context, bundle: str, target_name: str | None, target_dirs: tuple[str, ...],
          model_path: str | None, policy: str | None, threads: int, as_json: bool) -> None:
    """Re-simulate BUNDLE and compare every layer: exit 0 pass, 1 fail, 2 unusable bundle or bad input."""
    result = check_golden(bundle, target=target_name, model=model_path, policy=policy,
                          target_dirs=tuple(Path(d) for d in target_dirs), threads=threads)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=1))
    else:
        click.echo(result.describe())
    ctx.exit(0 if result.passed else 1)
