"""``hwsim import MODEL -o model.npz``: convert an ONNX or TFLite model into hwsim's model file."""

from __future__ import annotations

from pathlib import Path

import click

from hwsim.errors import HwsimError
from hwsim.frontends import load_any


def _parse_input_shapes(values: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for text in values:
        name, sep, dims = text.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.split(",") if d.strip())
        except ValueError:
            shape = ()
        if not sep or not name or not shape or any(d < 1 for d in shape):
            raise HwsimError(f"--input-shape {text!r}: expected NAME=D1,D2,... with positive integers, "
                             f"e.g. input=1,3,224,224")
        shapes[name] = shape
    return shapes


@click.command(name="import")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="model.npz file to write")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=D1,D2,...",
              help="concrete shape of an input with dynamic dimensions (ONNX only; repeatable), in the "
                   "model's layout, e.g. input=1,3,224,224")
@click.option("--compress/--no-compress", default=False, show_default=True,
              help="write a compressed npz")
def command(model: Path, output: Path, input_shapes: tuple[str, ...], compress: bool) -> None:
    """Convert MODEL (.onnx: float, QDQ or QOperator; .tflite) into an hwsim model.npz.

    Float models become float graphs; quantized models keep their integers and scales (pre-quantized
    graphs that `hwsim run` simulates as they are). The IR is NHWC: NCHW ONNX inputs become NHWC inputs.
    """
    from hwsim.graph import save_model

    if not model.is_file():
        raise HwsimError(f"{model}: no such file")
    if not output.parent.is_dir():
        raise HwsimError(f"cannot write '{output}': directory '{output.parent}' does not exist")
    if model.suffix.lower() not in (".onnx", ".tflite"):
        raise HwsimError(f"{model}: unknown model type '{model.suffix}' (expected .onnx or .tflite)")
    graph = load_any(model, input_shapes=_parse_input_shapes(input_shapes))
    save_model(graph, output, compress=compress)
    kind = "pre-quantized" if graph.quant else "float"
    inputs = ", ".join(f"{t.name} {list(t.shape)}" for t in graph.inputs)
    click.echo(f"wrote {output}: {graph.name}, {kind}, {len(graph.nodes)} nodes, inputs {inputs}, "
               f"{graph.macs() / 1e6:.2f} MMAC, {graph.param_count() / 1e6:.3f} M parameters")
