"""``hwsim zoo``: list the model zoo, or write one of its models as a model.npz file."""

from __future__ import annotations

from pathlib import Path

import click

from hwsim.errors import HwsimError


class _ZooGroup(click.Group):
    """``hwsim zoo list`` is a subcommand; ``hwsim zoo NAME -o FILE`` writes model NAME."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "get", self.commands["get"], args
        return super().resolve_command(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage("hwsim zoo", "list | NAME -o FILE [--seed N]")


class _UnderZooContext(click.Context):
    """Context of the hidden 'get' subcommand: messages name it ``hwsim zoo``, as the user typed it."""

    @property
    def command_path(self) -> str:
        return self.parent.command_path if self.parent is not None else super().command_path


class _GetCommand(click.Command):
    context_class = _UnderZooContext


@click.group(cls=_ZooGroup, name="zoo", invoke_without_command=True)
@click.pass_context
def command(ctx: click.Context) -> None:
    """Reference networks: `hwsim zoo list`, `hwsim zoo NAME -o model.npz [--seed N]`."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@command.command(name="list")
def list_command() -> None:
    """List the zoo's models."""
    from hwsim.zoo import list_models

    models = list_models()
    width = max(len(name) for name, _ in models)
    for name, description in models:
        click.echo(f"{name:<{width}}  {description}")


@command.command(name="get", cls=_GetCommand, hidden=True)
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="model.npz file to write")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="seed of the random weights (lenet5's weights are trained and ignore it)")
def get_command(name: str, output: Path, seed: int) -> None:
    """Write zoo model NAME to a model.npz file."""
    from hwsim.graph import save_model
    from hwsim.zoo import build_model

    if not output.parent.is_dir():
        raise HwsimError(f"cannot write '{output}': directory '{output.parent}' does not exist")
    graph = build_model(name, seed=seed)
    save_model(graph, output)
    click.echo(f"wrote {output}: {graph.name}, {graph.macs() / 1e9:.3f} GMAC, "
               f"{graph.param_count() / 1e6:.2f} M parameters")
