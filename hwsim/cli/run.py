"""``hwsim run --target T model.npz``: quantize, simulate bit-exactly on the target, compare with float."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from hwsim.cli._common import load_array
from hwsim.emulate.simulator import parse_overrides
from hwsim.emulate.run import RunReport, run_model
from hwsim.errors import HwsimError
from hwsim.frontends import load_any
from hwsim.targets import load_target


def _overrides(path: str | None, excluded: tuple[str, ...], weight_bits: tuple[str, ...]) -> dict:
    """Per-layer overrides from --overrides FILE, then --exclude and --weight-bits on top."""
    data: dict = {}
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                loaded = yaml.safe_load(f)
        except OSError as exc:
            raise HwsimError(f"--overrides {path}: cannot read: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise HwsimError(f"--overrides {path}: not valid YAML ({exc.__class__.__name__})") from None
        data = {str(k): dict(v) if isinstance(v, dict) else v for k, v in (loaded or {}).items()} \
            if isinstance(loaded, dict) or loaded is None else loaded
    for node in excluded:
        data.setdefault(node, {})["float"] = True
    for text in weight_bits:
        node, sep, bits = text.rpartition("=")
        if not sep or not node or not bits.strip().isdigit():
            raise HwsimError(f"--weight-bits {text!r}: expected NODE=BITS, e.g. conv1=4")
        data.setdefault(node, {})["weight_bits"] = int(bits)
    return parse_overrides(data, f"--overrides {path}" if path else "overrides")


def _fmt_db(v: float) -> str:
    return "exact" if math.isinf(v) and v > 0 else f"{v:.1f}"


def _print_report(report: RunReport, console: Console) -> None:
    t = report.target
    table = Table(title=f"{report.model} on {t.name} ({t.family}): {report.samples} samples",
                  title_justify="left")
    has_cost = report.cost is not None
    for col, just in (("layer", "left"), ("op", "left"), ("output (per sample)", "left"), ("bits w/a", "right"),
                      ("SQNR dB", "right"), ("cosine", "right"), ("max |Δ| LSB vs float", "right"), ("runs as", "left")):
        table.add_column(col, justify=just)
    if has_cost:
        table.add_column("cycles", justify="right")
        table.add_column("time ms", justify="right")
    for layer in report.layers:
        c = layer.comparison
        bits = f"{layer.weight_bits or '-'}/{layer.activation_bits}"
        runs = {"integer": "integer", "float": "float32 (float target)"}.get(layer.mode, f"float: {layer.note}")
        row = [layer.name, layer.op_kind, "x".join(map(str, layer.shape[1:])), bits, _fmt_db(c.sqnr_db),
               f"{c.cosine:.5f}", f"{c.max_lsb_error:.1f}", runs]
        if has_cost:
            row += ["-" if layer.cycles is None else f"{layer.cycles:,.0f}",
                    "-" if layer.time_ms is None else f"{layer.time_ms:.4f}"]
        table.add_row(*row)
    console.print(table)
    if report.requantized:
        ch = Table(title=f"quantization mapped onto {t.name}", title_justify="left")
        for col in ("tensor", "role", "bits", "scale", "ratio", "zero point", "real range"):
            ch.add_column(col)
        for c in report.requantized:
            ch.add_row(c.tensor, c.role, f"{c.old_bits}→{c.new_bits}", f"{c.old_scale:.4g}→{c.new_scale:.4g}",
                       f"{c.scale_ratio:.3f}", f"{c.old_zero_point}→{c.new_zero_point}",
                       f"[{c.old_range[0]:.3g}, {c.old_range[1]:.3g}]→[{c.new_range[0]:.3g}, {c.new_range[1]:.3g}]")
        console.print(ch)
    parts = [f"output SQNR {_fmt_db(report.output_sqnr_db)} dB"]
    if report.top1_agreement is not None:
        parts.append(f"top-1 agreement with float {100 * report.top1_agreement:.2f}%")
    if report.accuracy_sim is not None:
        parts.append(f"accuracy float {100 * report.accuracy_float:.2f}% / simulated {100 * report.accuracy_sim:.2f}%")
    n_fb = len(report.fallbacks)
    n_int = sum(1 for x in report.layers if x.mode == "integer")
    parts.append(f"{n_int} integer layers, {n_fb} float fallbacks" if n_int or n_fb else
                 f"{len(report.layers)} float layers")
    if report.folded_batchnorms:
        parts.append(f"{len(report.folded_batchnorms)} BatchNorms folded")
    if report.overflow is not None and report.overflow.overflowing:
        worst = sorted({c.layer for c in report.overflow.overflowing})
        parts.append(f"{len(worst)} layers can overflow their accumulator or int16 pairs ({', '.join(worst[:4])}"
                     f"{', ...' if len(worst) > 4 else ''}; see hwsim check-overflow)")
    if report.cost is not None:
        tot = report.cost.totals
        parts.append(f"estimated latency {tot['device_latency_ms']:.3f} ms on the device, "
                     f"{tot['e2e_latency_ms']:.3f} ms end to end (batch 1)")
    else:
        parts.append(f"no cost estimate ({report.cost_note})")
    console.print("summary: " + "; ".join(parts))


@click.command("run")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--target", "-t", "target_name", required=True, help="Target name (see `hwsim targets`) or YAML path.")
@click.option("--target-dir", "target_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Extra folder of user target YAML files (repeatable).")
@click.option("--input", "input_path", type=click.Path(dir_okay=False),
              help="Evaluation inputs (.npy, batch first, NHWC); default: the model's bundled evaluation set.")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False), help="Labels for --input (.npy).")
@click.option("--calib", "calib_path", type=click.Path(dir_okay=False),
              help="Calibration inputs (.npy); default: the bundled calibration set.")
@click.option("--calibration", "observer", type=click.Choice(["minmax", "percentile", "mse", "kl", "pow2_diffs"]),
              help="Activation range observer; default: the target's.")
@click.option("--limit", type=click.IntRange(min=1), help="Use at most N evaluation and calibration samples.")
@click.option("--threads", type=click.IntRange(min=0), default=1, show_default=True,
              help="Threads for the integer kernels (0 = all cores).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Write a run folder: summary.json, layers.csv, target.yaml (+ cost.json, cost_layers.csv, "
                   "cost_totals.csv when the target has cost parameters; requantized.csv with --requantize).")
@click.option("--requantize", is_flag=True,
              help="Pre-quantized model: map its scales onto the target's rules (keeping real ranges) instead of "
                   "simulating its own parameters; lists what changed per tensor.")
@click.option("--dynamic", is_flag=True,
              help="Dynamic quantization: activation ranges observed on each input at run time (no calibration).")
@click.option("--exclude", "excluded", multiple=True, metavar="NODE",
              help="Run this node in float32 instead of the target's integer kernel (repeatable).")
@click.option("--weight-bits", "weight_bits", multiple=True, metavar="NODE=BITS",
              help="Quantize this layer's weights to BITS (2..8) instead of the target's width (repeatable).")
@click.option("--overrides", "overrides_path", type=click.Path(dir_okay=False),
              help="YAML file of per-layer overrides: {node: {float: true, weight_bits: 4}}.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of a table.")
def command(model: str, target_name: str, target_dirs: tuple[str, ...], input_path: str | None,
            labels_path: str | None, calib_path: str | None, observer: str | None, limit: int | None, threads: int,
            out_dir: str | None, requantize: bool, dynamic: bool, excluded: tuple[str, ...],
            weight_bits: tuple[str, ...], overrides_path: str | None, as_json: bool) -> None:
    """Quantize MODEL for a target, simulate it bit-exactly and compare every layer with float.

    MODEL is an hwsim model.npz, or an .onnx / .tflite file imported on the fly. A pre-quantized model runs on
    its own parameters (add --requantize to map them onto the target's rules).
    """
    graph = load_any(model)
    target = load_target(target_name, extra_dirs=tuple(Path(d) for d in target_dirs))
    inputs = load_array(input_path, "--input") if input_path else None
    labels = load_array(labels_path, "--labels") if labels_path else None
    calib = load_array(calib_path, "--calib") if calib_path else None
    if labels is not None and inputs is None:
        raise HwsimError("--labels needs --input")
    overrides = _overrides(overrides_path, excluded, weight_bits)
    # Wide enough for the whole table when the output goes to a file or a pipe.
    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 160)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=Console(stderr=True),
                  transient=True, disable=as_json) as bar:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done)

        report = run_model(graph, target, inputs=inputs, calibration=calib, labels=labels, observer=observer,
                           limit=limit, threads=threads, requantize=requantize, dynamic=dynamic,
                           overrides=overrides or None, progress=progress)
    if out_dir:
        report.write_folder(out_dir)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report, console)
        if out_dir:
            console.print(f"run folder: {out_dir}")
