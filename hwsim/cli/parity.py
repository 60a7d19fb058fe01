"""``hwsim parity --targets A,B,C model.npz``: where, how much and why targets disagree on one model."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from hwsim.cli._common import load_array
from hwsim.compare.parity import CAUSES, ParityReport, parity
from hwsim.errors import HwsimError
from hwsim.graph import load_model
from hwsim.targets import load_target

_DETAIL_PAIRS = 6  # per-layer tables are printed for at most this many differing pairs


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _causes(c: dict[str, int], n: int = 3) -> str:
    top = sorted(c.items(), key=lambda kv: (-kv[1], list(CAUSES).index(kv[0])))[:n]
    return ", ".join(f"{k} {v}" for k, v in top)


def _print(report: ParityReport, console: Console) -> None:
    tt = Table(title=f"{report.model}: {report.samples} samples on {len(report.targets)} targets",
               title_justify="left")
    for col, just in (("target", "left"), ("family", "left"), ("accuracy", "right"),
                      ("top-1 vs float", "right"), ("float fallbacks", "left"), ("can overflow", "left")):
        tt.add_column(col, justify=just)
    for t in report.targets:
        risky = list(dict.fromkeys(f"{c['layer']} ({c['check']})" for c in t.can_overflow))
        tt.add_row(t.name, t.family, _pct(t.accuracy), _pct(t.top1_vs_float), ", ".join(t.fallbacks) or "-",
                   ", ".join(risky[:2]) + (f" +{len(risky) - 2} more" if len(risky) > 2 else "") or "-")
    console.print(tt)
    if report.accuracy_float is not None:
        console.print(f"float accuracy {_pct(report.accuracy_float)}")

    pt = Table(title="pairs (identical = same value after dequantization; LSB of the coarser grid)",
               title_justify="left")
    for col, just in (("A", "left"), ("B", "left"), ("first divergent layer", "left"),
                      ("causes there", "left"), ("output identical", "right"), ("top-1 agr.", "right"),
                      (f"top-{report.top_k} agr.", "right"), ("flips", "right")):
        pt.add_column(col, justify=just)
    for p in report.pairs:
        fd = p.first_divergent
        out = p.layers[-1] if p.layers else None
        out_share = None if out is None else out.share_identical
        pt.add_row(p.a, p.b, "identical" if fd is None else fd.layer,
                   "" if fd is None else _causes(fd.causes), _pct(out_share), _pct(p.top1_agreement),
                   _pct(p.topk_agreement), str(len(p.flips)))
    console.print(pt)

    differing = [p for p in report.pairs if not p.identical]
    for p in differing[:_DETAIL_PAIRS]:
        lt = Table(title=f"{p.a} vs {p.b}: divergence by depth", title_justify="left")
        for col, just in (("#", "right"), ("layer", "left"), ("op", "left"), ("identical", "right"),
                          ("max |Δ| LSB", "right"), ("mean |Δ| LSB", "right"), ("SQNR dB", "right"),
                          ("local / propagated", "right"), ("causes", "left")):
            lt.add_column(col, justify=just)
        for x in p.layers:
            sq = "exact" if math.isinf(x.sqnr_db) and x.sqnr_db > 0 else f"{x.sqnr_db:.1f}"
            lt.add_row(str(x.depth), x.layer, x.op, _pct(x.share_identical), f"{x.max_lsb:.1f}",
                       f"{x.mean_lsb:.3f}", sq, f"{x.local} / {x.causes.get('propagated', 0)}",
                       _causes(x.causes))
        console.print(lt)
    if len(differing) > _DETAIL_PAIRS:
        console.print(f"{len(differing) - _DETAIL_PAIRS} more differing pairs: per-layer detail in --json or "
                      "the --out folder (layers.csv)")
    flips = report.flip_rows()
    if report.predictions:
        shown = ", ".join(str(r["index"]) for r in flips[:20]) + (" ..." if len(flips) > 20 else "")
        console.print(f"inputs whose predicted class flips between targets: {len(flips)}"
                      + (f" ({shown})" if flips else ""))
    used = sorted({k for p in report.pairs for k in p.causes()}, key=list(CAUSES).index)
    for k in used:
        console.print(f"  {k}: {CAUSES[k]}")


@click.command("parity")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--targets", "-t", "target_names", required=True,
              help="Comma-separated target names or YAML paths, at least two "
                   "(e.g. intel_int8,arm_tflite,fpga_dpu).")
@click.option("--target-dir", "target_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Extra folder of user target YAML files (repeatable).")
@click.option("--input", "input_path", type=click.Path(dir_okay=False),
              help="Evaluation inputs (.npy, batch first, NHWC); default: the model's bundled evaluation "
                   "set.")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False), help="Labels for --input (.npy).")
@click.option("--calib", "calib_path", type=click.Path(dir_okay=False),
              help="Calibration inputs (.npy) shared by every target; default: the bundled calibration set.")
@click.option("--calibration", "observer",
              type=click.Choice(["minmax", "percentile", "mse", "kl", "pow2_diffs"]),
              help="Activation range observer for every target; default: each target's own.")
@click.option("--limit", type=click.IntRange(min=1), help="Use at most N evaluation and calibration samples.")
@click.option("--top-k", "top_k", type=click.IntRange(min=1), default=5, show_default=True,
              help="k of the top-k agreement.")
@click.option("--threads", type=click.IntRange(min=0), default=1, show_default=True,
              help="Threads for the integer kernels (0 = all cores).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Write a run folder: summary.json, layers.csv, flips.csv, targets.yaml.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of tables.")
def command(model: str, target_names: str, target_dirs: tuple[str, ...], input_path: str | None,
            labels_path: str | None, calib_path: str | None, observer: str | None, limit: int | None,
            top_k: int, threads: int, out_dir: str | None, as_json: bool) -> None:
    """Simulate MODEL on several targets and report where, how much and why they disagree."""
    names = [n.strip() for n in target_names.split(",") if n.strip()]
    if len(names) < 2:
        raise HwsimError("--targets: give at least two targets, comma-separated")
    dirs = tuple(Path(d) for d in target_dirs)
    targets = [load_target(n, extra_dirs=dirs) for n in names]
    graph = load_model(model)
    inputs = load_array(input_path, "--input") if input_path else None
    labels = load_array(labels_path, "--labels") if labels_path else None
    calib = load_array(calib_path, "--calib") if calib_path else None
    if labels is not None and inputs is None:
        raise HwsimError("--labels needs --input")
    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 160)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=Console(stderr=True), transient=True, disable=as_json) as bar:
        task = bar.add_task("simulating targets", total=len(targets))
        report = parity(graph, targets, inputs=inputs, calibration=calib, labels=labels, observer=observer,
                        limit=limit, top_k=top_k, threads=threads,
                        progress=lambda name, done, total: bar.update(task, completed=done))
    if out_dir:
        report.write_folder(out_dir)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print(report, console)
        if out_dir:
            console.print(f"run folder: {out_dir}")
