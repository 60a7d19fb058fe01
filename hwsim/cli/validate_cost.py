"""``hwsim validate-cost``: the cost model against published measurements (hwsim/cost/anchors.yaml)."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table


@click.command("validate-cost")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--refit", is_flag=True,
              help="Also redo the fits of the fitted constants and print them next to the shipped values "
                   "(about 30 s).")
def command(as_json: bool, refit: bool) -> None:
    """Compare cost estimates with published figures; exit 1 when one leaves its tolerance."""
    from hwsim.cost.validation import fit, load_anchors, validate
    from hwsim.targets import load_target

    results, layers = validate()
    fits = []
    if refit:
        for spec in load_anchors()["fits"]:
            shipped = load_target(spec["files"][0]).cost
            for key, value in fit(spec["name"]).items():
                fits.append({"fit": spec["name"], "key": key, "refit": value,
                             "shipped": getattr(shipped, key), "fitted_on": spec["fitted_on"]})
    ok = all(r.passed for r in results) and layers.passed
    if as_json:
        click.echo(json.dumps({"passed": ok, "anchors": [r.to_dict() for r in results],
                               "per_layer": layers.to_dict(), "fits": fits}, indent=2))
    else:
        console = Console(width=None if sys.stdout.isatty() else 200)
        table = Table(title="cost model vs published measurements (role fit: used to fit a constant; "
                            "check: independent)", title_justify="left")
        for name, just in (("anchor", "left"), ("model", "left"), ("target", "left"), ("metric", "left"),
                           ("measured", "right"), ("estimated", "right"), ("error", "right"),
                           ("tol.", "right"), ("role", "left"), ("result", "left")):
            table.add_column(name, justify=just)
        for r in results:
            metric = r.metric + (f" ({r.threads} thr)" if r.threads > 1 else "")
            table.add_row(r.id, r.model, r.target, metric,
                          f"{r.measured:.4g}", f"{r.estimated:.4g}", f"{100 * r.error:+.1f}%",
                          f"±{100 * r.tolerance:.0f}%", r.role, "pass" if r.passed else "FAIL")
        console.print(table)
        lt = Table(title=f"DPU per-layer times, vaitrace debug mode minus the call overhead "
                         f"{layers.call_overhead_ms:.4f} ms ({layers.role})", title_justify="left")
        for name, just in (("layer", "left"), ("measured ms", "right"), ("minus call", "right"),
                           ("estimated", "right"), ("error", "right"), ("bound", "left"),
                           ("MemIO MB", "right"), ("est. DDR MB", "right")):
            lt.add_column(name, justify=just)
        for r in layers.rows:
            lt.add_row(r["name"], f"{r['measured_ms']:.3f}", f"{r['measured_minus_call_ms']:.3f}",
                       f"{r['estimated_ms']:.3f}", f"{100 * r['error']:+.1f}%", r["bound"],
                       f"{r['memio_mb']:.3f}", f"{r['estimated_ddr_mb']:.3f}")
        console.print(lt)
        g = layers.goals
        console.print(f"per-layer: median |error| {100 * layers.median_abs_error:.1f}% (goal <= "
                      f"{100 * g['median_abs_error']:.0f}%), Spearman {layers.spearman:.3f} (goal >= "
                      f"{g['spearman']:.2f}): {'pass' if layers.passed else 'FAIL'}")
        for f in fits:
            console.print(f"refit {f['fit']}: {f['key']} = {f['refit']:.4g} (shipped {f['shipped']}), "
                          f"fitted on {', '.join(f['fitted_on'])}")
        console.print("all goals met" if ok else "some goals missed")
    if not ok:
        sys.exit(1)
