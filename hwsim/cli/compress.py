"""``hwsim compress prune|lowrank|cluster|sweep``: compress a model and show what each target gains."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from hwsim.compress import CompressionError
from hwsim.compress.report import compare_models, write_folder
from hwsim.compress.sweep import SWEEP_COLUMNS, apply_method, sweep, sweep_csv
from hwsim.errors import HwsimError
from hwsim.graph import load_model, save_model
from hwsim.targets import list_targets, load_target


def _targets(spec: str | None, dirs: tuple[str, ...]) -> list:
    extra = tuple(Path(d) for d in dirs)
    names = [t.name for t in list_targets(extra_dirs=extra)] if not spec else \
        [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise HwsimError("--targets: no target names given")
    return [load_target(n, extra_dirs=extra) for n in names]


def _check_output(output: str, model: str) -> None:
    out = Path(output)
    if out.resolve() == Path(model).resolve():
        raise HwsimError(f"-o {output}: refusing to overwrite the input model")
    if not out.parent.exists() and str(out.parent) not in ("", "."):
        raise HwsimError(f"-o {output}: folder {out.parent} does not exist")


def _si(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "-"
    for f, p in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= f:
            return f"{v / f:.{digits}g}{p}"
    return f"{v:.{digits}g}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _print(rep: dict[str, Any], console: Console) -> None:
    b, a = rep["before"], rep["after"]
    rec = rep.get("compression") or {}
    title = f"{rep['model']}: {rec.get('method', 'compression')}"
    t = Table(title=title, title_justify="left")
    for col in ("", "before", "after", "after / before"):
        t.add_column(col, justify="left" if not col else "right")

    def ratio(x, y):
        return "-" if x in (None, 0) or y is None else f"{y / x:.3f}"

    for label, key, fmt in (("parameters", "params", _si), ("weights", "weights", _si),
                            ("nonzero weights", "nonzero_weights", _si), ("MACs", "macs", _si)):
        t.add_row(label, fmt(b[key]), fmt(a[key]), ratio(b[key], a[key]))
    t.add_row(f"accuracy float ({b['samples']} samples)", _pct(b["accuracy_float"]),
              _pct(a["accuracy_float"]), "")
    if rep.get("sim_target"):
        t.add_row(f"accuracy on {rep['sim_target']}", _pct(b["accuracy_sim"]), _pct(a["accuracy_sim"]), "")
    console.print(t)
    tt = Table(title="per target (cost model, batch 1)", title_justify="left")
    for col in ("target", "w bits", "weights B", "stored B", "cycles", "e2e ms", "speed-up",
                "sparse speed-up?"):
        tt.add_column(col, justify="left" if col in ("target", "sparse speed-up?") else "right")
    sparse_used = a["weight_sparsity"] > 0
    notes = []
    for row in rep["targets"]:
        cb, ca = row["before"], row["after"]
        if "error" in cb or "error" in ca:
            tt.add_row(row["target"], str(row["weight_bits"]), "-", "-", "-", "-", "-",
                       "yes" if row["sparse_speedup_possible"] else "no")
            notes.append(f"{row['target']}: not estimated ({(cb.get('error') or ca.get('error'))})")
            continue
        tt.add_row(row["target"], str(row["weight_bits"]),
                   f"{_si(cb['weight_bytes'])} → {_si(ca['weight_bytes'])}",
                   f"{_si(cb['stored_bytes'])} → {_si(ca['stored_bytes'])}",
                   f"{_si(cb['cycles'])} → {_si(ca['cycles'])}",
                   f"{_ms(cb['e2e_latency_ms'])} → {_ms(ca['e2e_latency_ms'])}",
                   "-" if row["speedup"] is None else f"{row['speedup']:.2f}x",
                   "yes" if row["sparse_speedup_possible"] else "no")
    console.print(tt)
    if sparse_used:
        seen = set()
        for row in rep["targets"]:
            if row["family"] not in seen or row["sparse_speedup_possible"]:
                seen.add(row["family"])
                console.print(f"sparsity on {row['target']}: {row['sparse_note']}")
    if a.get("clustered_layers"):
        console.print("clustering: targets compute with the expanded (quantized) codebook values, so runtime "
                      "weight bytes and time do not change; 'stored B' is codebook + packed indices")
    missing = [n for n in notes if "has no cost: section" in n]
    if missing:
        console.print(f"note: not estimated (the target has no cost: section): "
                      f"{', '.join(n.split(':')[0] for n in missing)}")
    for n in notes:
        if n not in missing:
            console.print(f"note: {n}")


def _common(f):
    f = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of tables.")(f)
    f = click.option("--out", "out_dir", type=click.Path(file_okay=False),
                     help="Write summary.json, targets.csv and layers.csv into this folder.")(f)
    f = click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True,
                     help="Evaluation/calibration samples for the accuracy figures (and the pruning "
                          "correction).")(f)
    f = click.option("--target-dir", "target_dirs", multiple=True, type=click.Path(file_okay=False),
                     help="Extra folder of user target YAML files (repeatable).")(f)
    f = click.option("--targets", "targets_spec",
                     help="Comma-separated targets to cost (default: every known target).")(f)
    f = click.option("--target", "-t", "sim_target",
                     help="Target to simulate for the accuracy after quantization (default: float only).")(f)
    f = click.option("--layer", "layers", multiple=True,
                     help="Only this layer (repeatable; default: all).")(f)
    f = click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
                     help="Where to write the compressed model.npz.")(f)
    f = click.argument("model", type=click.Path(dir_okay=False))(f)
    return f


def _finish(model_path: str, output: str, graph, compressed, targets_spec, target_dirs, sim_target, limit,
            out_dir, as_json, sparse: bool = False) -> None:
    targets = _targets(targets_spec, target_dirs)
    sim = load_target(sim_target, extra_dirs=tuple(Path(d) for d in target_dirs)) if sim_target else None
    rep = compare_models(graph, compressed, targets=targets, sim_target=sim, limit=limit, sparse=sparse)
    rep["output"] = output
    if out_dir:  # first: a folder that cannot be created fails before the model is written
        write_folder(rep, out_dir)
    save_model(compressed, output)
    if as_json:
        click.echo(json.dumps(rep, indent=2))
        return
    console = Console(width=None if sys.stdout.isatty() else 160)
    _print(rep, console)
    console.print(f"wrote {output}" + (f"; report folder {out_dir}" if out_dir else ""))


@click.group("compress")
def command() -> None:
    """Prune, factorise or cluster a model, and report what each target gains."""


@command.command("prune")
@_common
@click.option("--ratio", type=float, required=True,
              help="Fraction to remove, in [0, 1): of the channels (structured) or of the weights "
                   "(unstructured).")
@click.option("--mode", type=click.Choice(["structured", "unstructured"]), default="structured",
              show_default=True)
@click.option("--scope", type=click.Choice(["global", "layer"]), default="global", show_default=True,
              help="Unstructured: one threshold over all layers, or the ratio in each layer.")
@click.option("--norm", type=click.Choice(["l1", "l2"]), default="l1", show_default=True,
              help="Structured: filter ranking norm.")
@click.option("--correction", type=click.Choice(["affine", "mean", "none"]), default="affine",
              show_default=True,
              help="Structured: restore downstream layers' per-channel mean and spread (affine), mean only, "
                   "or nothing, from the bundled calibration data.")
@click.option("--multiple", "channel_multiple", type=click.IntRange(min=1), default=1, show_default=True,
              help="Structured: keep a multiple of N channels per layer (e.g. 16 for the DPU's channel "
                   "parallelism).")
@click.option("--sparse", is_flag=True,
              help="Unstructured: cost zero weights as skipped on targets with a sparse kernel "
                   "(upper bound).")
def prune_cmd(model, output, layers, sim_target, targets_spec, target_dirs, limit, out_dir, as_json, ratio,
              mode, scope, norm, correction, channel_multiple, sparse):
    """Remove filters/channels (structured) or zero small weights (unstructured)."""
    _check_output(output, model)
    graph = load_model(model)
    opts: dict[str, Any] = {"mode": mode, "layers": list(layers) or None}
    if mode == "structured":
        opts.update(norm=norm, correction=correction, calibration_limit=limit,
                    channel_multiple=channel_multiple)
    else:
        opts.update(scope=scope)
    compressed = apply_method(graph, "prune", ratio, **opts)
    _finish(model, output, graph, compressed, targets_spec, target_dirs, sim_target, limit, out_dir, as_json,
            sparse=sparse)


def _parse_ranks(items: tuple[str, ...]) -> dict[str, int]:
    ranks = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        if not sep or not name:
            raise CompressionError(f"--rank {item!r}: expected LAYER=RANK")
        try:
            ranks[name] = int(value)
        except ValueError:
            raise CompressionError(f"--rank {item!r}: rank must be an integer") from None
    return ranks


@command.command("lowrank")
@_common
@click.option("--ratio", type=float, help="Fraction of each layer's weight parameters to remove, in [0, 1).")
@click.option("--energy", type=float, help="Retained singular-value energy per layer, in (0, 1].")
@click.option("--rank", "rank_items", multiple=True, help="Explicit LAYER=RANK (repeatable).")
@click.option("--mode", type=click.Choice(["channel", "spatial"]), default="channel", show_default=True,
              help="Convolutions: KxK with r filters then 1x1 (channel), or Kx1 then 1xK (spatial).")
def lowrank_cmd(model, output, layers, sim_target, targets_spec, target_dirs, limit, out_dir, as_json, ratio,
                energy, rank_items, mode):
    """Factorise Dense and Conv2D layers by truncated SVD."""
    _check_output(output, model)
    graph = load_model(model)
    from hwsim.compress import factorize

    compressed = factorize(graph, energy=energy, ratio=ratio, ranks=_parse_ranks(rank_items), mode=mode,
                           layers=list(layers) or None)
    _finish(model, output, graph, compressed, targets_spec, target_dirs, sim_target, limit, out_dir, as_json)


@command.command("cluster")
@_common
@click.option("--bits", type=int, required=True, help="Index bits: 2^bits shared values per layer (1..8).")
@click.option("--per-channel", is_flag=True, help="One codebook per output channel.")
@click.option("--init", type=click.Choice(["linear", "kmeans++"]), default="linear", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --init kmeans++.")
def cluster_cmd(model, output, layers, sim_target, targets_spec, target_dirs, limit, out_dir, as_json, bits,
                per_channel, init, seed):
    """Share weights: k-means into 2^bits values, stored as codebook + indices."""
    _check_output(output, model)
    graph = load_model(model)
    from hwsim.compress import cluster_weights

    compressed = cluster_weights(graph, bits, per_channel=per_channel, layers=list(layers) or None, init=init,
                                 seed=seed)
    _finish(model, output, graph, compressed, targets_spec, target_dirs, sim_target, limit, out_dir, as_json)


def _parse_list(text: str, kind, what: str) -> list:
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            out.append(kind(item))
        except ValueError:
            raise CompressionError(f"{what}: {item!r} is not a valid number") from None
    if not out:
        raise CompressionError(f"{what}: no values given")
    return out


@command.command("sweep")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--method", type=click.Choice(["prune", "lowrank", "cluster"]), required=True)
@click.option("--ratios", help="prune/lowrank: comma-separated ratios in [0, 1), e.g. 0.1,0.3,0.5.")
@click.option("--bits", "bits_list", help="cluster: comma-separated index widths, e.g. 2,3,4,6.")
@click.option("--target", "-t", "target_name", required=True, help="Target to cost and simulate.")
@click.option("--target-dir", "target_dirs", multiple=True, type=click.Path(file_okay=False))
@click.option("--mode",
              help="prune: structured (default) or unstructured; lowrank: channel (default) or spatial.")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True,
              help="Evaluation/calibration samples per accuracy figure.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False),
              help="CSV file to write (default: sweep_<method>.csv in --out, else in the current folder).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Folder for sweep.csv and sweep.json.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def sweep_cmd(model, method, ratios, bits_list, target_name, target_dirs, mode, limit, csv_path, out_dir,
              as_json):
    """Accuracy vs size vs latency over several compression settings, printed and written as CSV."""
    if method == "cluster":
        if ratios or not bits_list:
            raise CompressionError("sweep --method cluster takes --bits (e.g. --bits 2,4,6), not --ratios")
        values = _parse_list(bits_list, int, "--bits")
    else:
        if bits_list or not ratios:
            raise CompressionError(f"sweep --method {method} takes --ratios (e.g. --ratios 0.1,0.3,0.5)")
        values = _parse_list(ratios, float, "--ratios")
    opts: dict[str, Any] = {}
    if method == "prune":
        opts["mode"] = mode or "structured"
        if opts["mode"] == "structured":
            opts["calibration_limit"] = limit
    elif method == "lowrank" and mode:
        opts["mode"] = mode
    elif method == "cluster" and mode:
        raise CompressionError("sweep --method cluster takes no --mode")
    target = load_target(target_name, extra_dirs=tuple(Path(d) for d in target_dirs))
    graph = load_model(model)
    rows = sweep(graph, method, values, target, limit=limit, **opts)
    text = sweep_csv(rows)
    if out_dir:
        folder = Path(out_dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HwsimError(f"--out {folder}: cannot create the folder: {exc.strerror}") from None
        (folder / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    default = Path(out_dir) / "sweep.csv" if out_dir else Path(f"sweep_{method}.csv")
    dest = Path(csv_path) if csv_path else default
    try:
        dest.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise HwsimError(f"--csv {dest}: cannot write: {exc.strerror}") from None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    console = Console(width=None if sys.stdout.isatty() else 160)
    t = Table(title=f"{graph.name}: {method} sweep on {target.name}", title_justify="left")
    cols = [c for c in SWEEP_COLUMNS if c not in ("method", "setting")]
    for c in cols:
        t.add_column(c, justify="right")
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            if c.startswith("accuracy"):
                cells.append(_pct(v))
            elif c == "e2e_latency_ms":
                cells.append(_ms(v))
            elif c == "speedup":
                cells.append("-" if v is None else f"{v:.2f}x")
            elif c == "value":
                cells.append("original" if v == "" else str(v))
            else:
                cells.append(_si(v) if isinstance(v, (int, float)) else "-")
        t.add_row(*cells)
    console.print(t)
    if rows[-1].get("note"):
        console.print(f"note: {rows[-1]['note']}")
    console.print(f"wrote {dest}")
