"""``hwsim export-vectors``: per-layer RTL test vectors (hwsim.compare.vectors)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hwsim.cli._common import load_array
from hwsim.compare.golden import file_sha256
from hwsim.compare.vectors import FORMATS, export_vectors
from hwsim.emulate.data import resolve_data
from hwsim.emulate.simulator import quantize_for_target
from hwsim.graph import load_model
from hwsim.targets import load_target


@click.command("export-vectors")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--target", "-t", "target_name", required=True, help="Target name or YAML path.")
@click.option("--target-dir", "target_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Extra folder of user target YAML files (repeatable).")
@click.option("--out", "-o", "out_dir", required=True, type=click.Path(file_okay=False), help="Vector folder.")
@click.option("--layers", default=None, help="Comma-separated layer (node) names; default: every layer.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="hex", show_default=True,
              help="hex ($readmemh words), mem (hex with header and @0), bin (little-endian words), npy.")
@click.option("--word-bits", type=click.Choice(["8", "16", "32", "64"]), default="32", show_default=True,
              help="Word size of packed formats.")
@click.option("--input", "input_path", type=click.Path(dir_okay=False),
              help="Inputs (.npy, batch first); default: the model's bundled evaluation set.")
@click.option("--calib", "calib_path", type=click.Path(dir_okay=False),
              help="Calibration inputs (.npy) of a float model; default: the bundled calibration set.")
@click.option("--limit", type=click.IntRange(min=1), default=1, show_default=True,
              help="Number of input samples (also caps calibration samples when the calibration set is the inputs).")
@click.option("--overwrite", is_flag=True, help="Replace an existing vector folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def command(model: str, target_name: str, target_dirs: tuple[str, ...], out_dir: str, layers: str | None, fmt: str,
            word_bits: str, input_path: str | None, calib_path: str | None, limit: int, overwrite: bool,
            as_json: bool) -> None:
    """Write per-layer inputs, weights, bias, requantization parameters and expected outputs of MODEL."""
    target = load_target(target_name, extra_dirs=tuple(Path(d) for d in target_dirs))
    graph = load_model(model)
    rd = resolve_data(graph, inputs=load_array(input_path, "--input") if input_path else None,
                      calibration=load_array(calib_path, "--calib") if calib_path else None, limit=limit)
    inputs = rd.inputs
    calib = None if graph.quant else rd.calibration  # a pre-quantized model is not calibrated
    qm = quantize_for_target(graph, target, calib)
    names = [s.strip() for s in layers.split(",") if s.strip()] if layers else None
    manifest = export_vectors(qm, inputs, out_dir, layers=names, fmt=fmt, word_bits=int(word_bits),
                              overwrite=overwrite, model_sha256=file_sha256(model))
    if as_json:
        click.echo(json.dumps(manifest, indent=1))
    else:
        n_files = sum(len(e["files"]) for e in manifest["layers"])
        click.echo(f"wrote {n_files} {fmt} files for {len(manifest['layers'])} layers ({len(inputs)} samples, "
                   f"{target.name}) into {out_dir}")
