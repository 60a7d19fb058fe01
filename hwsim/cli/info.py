"""``hwsim info model.npz [--json]``: layers, shapes, parameters and MACs of a model file.

The ``--json`` document (stable; documented in docs/format.md, "hwsim info --json"):

``{"file", "name", "format_version", "inputs": [{"name", "shape", "dtype"}], "outputs": [...],
"layers": [{"name", "op", "inputs", "output", "output_shape", "params", "param_bytes", "macs", "attrs"}],
"totals": {"layers", "params", "param_bytes", "macs"}, "quantized": bool, "data": {set: {array: shape}},
"metadata": {...}}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from hwsim.graph import FORMAT_VERSION, Graph, load_model


def info_dict(graph: Graph, path: str) -> dict[str, Any]:
    """The ``hwsim info --json`` document for ``graph`` read from ``path``."""
    layers = []
    for n in graph.nodes:
        layers.append({
            "name": n.name,
            "op": n.op,
            "inputs": list(n.inputs),
            "output": n.outputs[0],
            "output_shape": list(graph.tensors[n.outputs[0]].shape),
            "params": n.param_count,
            "param_bytes": n.param_bytes,
            "macs": n.macs,
            "attrs": n.attrs,
        })
    return {
        "file": path,
        "name": graph.name,
        "format_version": FORMAT_VERSION,
        "inputs": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in graph.inputs],
        "outputs": [{"name": o, "shape": list(graph.tensors[o].shape)} for o in graph.outputs],
        "layers": layers,
        "totals": {"layers": len(graph.nodes), "params": graph.param_count(),
                   "param_bytes": graph.param_bytes(), "macs": graph.macs()},
        "quantized": bool(graph.quant),
        "data": {s: {k: list(v.shape) for k, v in arrays.items()} for s, arrays in graph.data.items()},
        "metadata": graph.metadata,
    }


def _shape(shape: list[int]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def _human(n: int, unit: str = "") -> str:
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= factor:
            return f"{n / factor:.2f} {suffix}{unit}"
    return f"{n} {unit}".rstrip()


@click.command("info")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of tables.")
def command(model: str, as_json: bool) -> None:
    """Show the layers of MODEL (a model.npz file): op, output shape, parameters, MACs.

    Shared parameters count once in the totals and once per layer that reads them in the table.
    """
    graph = load_model(model)
    doc = info_dict(graph, model)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    # Piped output has no terminal width: use a wide one rather than rich's 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 200)
    ins = ", ".join(f"{t['name']} {_shape(t['shape'])} {t['dtype']}" for t in doc["inputs"])
    outs = ", ".join(f"{o['name']} {_shape(o['shape'])}" for o in doc["outputs"])
    console.print(f"[bold]{graph.name}[/bold]  ({model}, format v{FORMAT_VERSION})")
    console.print(f"inputs: {ins}")
    console.print(f"outputs: {outs}")
    table = Table(show_lines=False, header_style="bold")
    table.add_column("#", justify="right", min_width=3)
    table.add_column("layer", overflow="fold", min_width=12)  # long names wrap, never truncated
    table.add_column("op", overflow="fold", min_width=6)
    table.add_column("output shape", overflow="fold", min_width=8)
    for col in ("params", "MACs", "param bytes"):
        table.add_column(col, justify="right", overflow="fold", min_width=6)
    for i, layer in enumerate(doc["layers"]):
        table.add_row(str(i), layer["name"], layer["op"], _shape(layer["output_shape"]),
                      f"{layer['params']:,}", f"{layer['macs']:,}", f"{layer['param_bytes']:,}")
    t = doc["totals"]
    table.add_section()
    table.add_row("", f"total ({t['layers']} layers)", "", "", f"{t['params']:,}", f"{t['macs']:,}",
                  f"{t['param_bytes']:,}")
    console.print(table)
    console.print(f"{_human(t['params'])} parameters, {_human(t['macs'], 'MAC')}, "
                  f"{_human(t['param_bytes'], 'B')} of parameters"
                  + (", pre-quantized" if doc["quantized"] else ""))
