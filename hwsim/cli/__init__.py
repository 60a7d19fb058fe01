"""The ``hwsim`` command line: parsing and presentation only.

Each subcommand lives in its own module in this package and exposes a click command named ``command``;
they are discovered here so that adding a command never means editing this file. Errors derived from
:class:`hwsim.errors.HwsimError` become one line on stderr and exit code 2, without a traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from hwsim import __version__
from hwsim.errors import HwsimError


class _Group(click.Group):
    """Group that reports hwsim errors as a single line with exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except HwsimError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hwsim")
def cli() -> None:
    """Simulate quantized neural networks bit-exactly on integer hardware targets."""


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            cli.add_command(command)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hwsim`` script; returns the process exit code."""
    try:
        cli.main(args=argv, prog_name="hwsim", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
