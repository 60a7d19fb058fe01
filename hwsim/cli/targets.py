"""``hwsim targets``: list the available targets, or print one resolved description."""

from __future__ import annotations

import json

import click
import yaml

from hwsim.targets import list_targets, load_target

_TARGET_DIR = click.option(
    "--target-dir", "target_dirs", multiple=True, type=click.Path(file_okay=False),
    help="Folder of user target YAML files (repeatable).")
_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


@click.group(name="targets", invoke_without_command=True, short_help="List targets; `show NAME` prints one.")
@_TARGET_DIR
@_JSON
@click.pass_context
def command(ctx: click.Context, target_dirs: tuple[str, ...], as_json: bool) -> None:
    """List targets (name, family, source, description); `hwsim targets show NAME` prints one."""
    ctx.ensure_object(dict)
    ctx.obj["target_dirs"] = target_dirs
    if ctx.invoked_subcommand is not None:
        return
    infos = list_targets(target_dirs)
    if as_json:
        click.echo(json.dumps([i.to_dict() for i in infos], indent=2))
        return
    rows = [(i.name, i.family, i.source if i.source == "builtin" else f"{i.source}: {i.origin}",
             i.description) for i in infos]
    header = ("NAME", "FAMILY", "SOURCE", "DESCRIPTION")
    widths = [max(len(r[c]) for r in (header, *rows)) for c in range(3)]
    for row in (header, *rows):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3])


@command.command(name="show")
@click.argument("name")
@_TARGET_DIR
@_JSON
@click.option("--all-ops", is_flag=True, help="List every op kind with the entry that applies to it.")
@click.pass_context
def show(ctx: click.Context, name: str, target_dirs: tuple[str, ...], as_json: bool, all_ops: bool) -> None:
    """Print the resolved description of target NAME (a name or a YAML path): YAML, or JSON with --json."""
    dirs = (*ctx.obj.get("target_dirs", ()), *target_dirs)
    data = load_target(name, dirs).to_dict(all_ops=all_ops)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(yaml.safe_dump(data, sort_keys=False, width=110), nl=False)
