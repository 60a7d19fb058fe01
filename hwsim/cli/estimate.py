"""``hwsim estimate --target T model.npz``: cycles, latency, memory and DDR traffic per layer and in total."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from hwsim.cost import CostReport, estimate
from hwsim.graph import load_model
from hwsim.targets import load_target


def _si(v: float | None, unit: str = "", digits: int = 3) -> str:
    if v is None:
        return "?"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= factor:
            return f"{v / factor:.{digits}g}{prefix}{unit}"
    return f"{v:.{digits}g}{unit}"


def _ms(v: float | None) -> str:
    return "?" if v is None else f"{v:.4f}"


def _print(report: CostReport, console: Console, all_layers: bool) -> None:
    t = report.totals
    table = Table(title=f"{report.model} on {report.target} ({report.family}), estimated cost per layer",
                  title_justify="left")
    cols = (("layer", "left"), ("op", "left"), ("unit", "left"), ("MACs", "right"), ("cycles", "right"),
            ("time ms", "right"), ("bound", "left"), ("weights B", "right"), ("act. B", "right"),
            ("DDR B", "right"), ("ops/s", "right"), ("util %", "right"), ("note", "left"))
    for name, just in cols:
        table.add_column(name, justify=just)
    for e in report.layers:
        if not all_layers and e.unit in ("fused", "free"):
            continue
        unit = e.unit if e.subgraph is None else f"{e.unit}:{e.subgraph}"
        util = "" if e.utilisation is None else f"{100 * e.utilisation:.1f}"
        note = e.note if e.unit != "fused" else f"fused into {e.fused_into}"
        if e.spill:
            note = ("spill; " + note).rstrip("; ")
        table.add_row(e.name, e.op, unit, _si(e.macs), _si(e.cycles), _ms(e.time_ms), e.bound,
                      _si(e.weight_bytes), _si(e.activation_bytes), _si(e.ddr_bytes), _si(e.ops_per_s), util,
                      note)
    console.print(table)
    util = "" if t["utilisation"] is None else f", utilisation {100 * t['utilisation']:.1f}%"
    console.print(f"MACs {_si(t['macs'])}, cycles {_si(t['cycles'])} at {t['clock_mhz']:g} MHz{util}")
    console.print(f"device latency {t['device_latency_ms']:.3f} ms; end-to-end {t['e2e_latency_ms']:.3f} ms "
                  f"(CPU {t['host_ms']:.3f} ms, fixed overheads {t['overhead_ms']:.3f} ms, "
                  f"{t['subgraphs']} accelerator subgraph(s)); throughput {t['throughput_fps']:.1f} fps with "
                  f"{report.threads} thread(s)")
    console.print(f"DDR traffic {_si(t['ddr_bytes'], 'B')} (load {_si(t['ddr_load_bytes'], 'B')}, store "
                  f"{_si(t['ddr_store_bytes'], 'B')}); weights {_si(t['weight_bytes'], 'B')}; peak live "
                  f"activations {_si(t['peak_activation_bytes'], 'B')}; layers compute-bound "
                  f"{t['compute_bound_layers']}, memory-bound {t['memory_bound_layers']}, overhead-bound "
                  f"{t['overhead_bound_layers']}")


@click.command("estimate")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--target", "-t", "target_name", required=True,
              help="Target name (see `hwsim targets`) or YAML path.")
@click.option("--target-dir", "target_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Extra folder of user target YAML files (repeatable).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="Concurrent inference threads for the throughput figure (latency is one inference).")
@click.option("--per-layer-subgraphs", is_flag=True,
              help="DPU: every layer its own subgraph, all feature maps through DDR (vaitrace debug mode).")
@click.option("--all-layers", is_flag=True, help="Also list fused and view-only nodes in the table.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Write cost.json, cost_layers.csv and cost_totals.csv into this folder.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the report as JSON (docs/cost.md) instead of a table.")
def command(model: str, target_name: str, target_dirs: tuple[str, ...], threads: int,
            per_layer_subgraphs: bool, all_layers: bool, out_dir: str | None, as_json: bool) -> None:
    """Estimate cycles, latency, memory and DDR traffic of MODEL (a model.npz) on a target."""
    graph = load_model(model)
    target = load_target(target_name, extra_dirs=tuple(Path(d) for d in target_dirs))
    report = estimate(graph, target, threads=threads, per_layer_subgraphs=per_layer_subgraphs)
    if out_dir:
        report.write_folder(out_dir)
    for name in report.totals["unestimated"]:
        click.echo(f"warning: layer '{name}' not estimated: {report.layer(name).note}", err=True)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    console = Console(width=None if sys.stdout.isatty() else 200)
    _print(report, console, all_layers)
    for note in report.notes:
        console.print(f"note: {note}")
    if out_dir:
        console.print(f"cost folder: {out_dir}")
