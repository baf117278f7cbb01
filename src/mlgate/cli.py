"""The `mlgate` command line: one typer app; every capability hangs its verbs off it.

Thin by rule: a command parses its options, calls the library and prints. Capabilities add
commands by dropping a module into `mlgate.commands` that defines `register(app)`; this file
does not change when they do.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from mlgate import __version__, commands
from mlgate.commands._common import State, run_guarded

app = typer.Typer(
    name="mlgate",
    help="GitOps model promotion for credit-risk and fraud models, gated on drift, fairness and P&L.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlgate {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    workspace: str | None = typer.Option(
        None,
        "--workspace",
        "-w",
        envvar="MLGATE_WORKSPACE",
        help="Workspace folder (default ./.mlgate).",
    ),
    config: str | None = typer.Option(
        None,
        "--config",
        envvar="MLGATE_CONFIG",
        help="Platform settings file (default ./mlgate.yaml).",
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True),
) -> None:
    ctx.obj = State(workspace=workspace, config=config)


def _register_all() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"mlgate.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_all()


def main() -> None:
    sys.exit(run_guarded(app))


if __name__ == "__main__":
    main()
