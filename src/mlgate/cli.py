"""The `mlgate` command line: one typer app; every capability hangs its verbs off it.

Thin by rule: a command parses its options, calls the library and prints. Capabilities add
commands by dropping a module into `mlgate.commands` that defines `register(app)` and names its
top-level verbs in `COMMANDS`; this file does not change when they do.

Loading is lazy because the command modules together import MLflow, scikit-learn, Feast and
KFP (seconds of CPU): `mlgate VERB ...` imports only the modules whose `COMMANDS` name VERB,
read from their source with `ast` without importing them. No verb (`mlgate`, `mlgate --help`)
or one nobody declares (click's "No such command") loads them all, so help and errors are the
full CLI's. `tests/test_cli.py` checks each module's `COMMANDS` against what `register` adds.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import typer
import typer.core
from typer.main import get_command

from mlgate import __version__, commands
from mlgate.commands._common import State, run_guarded

_app = typer.Typer(
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


@_app.callback()
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


def declared_commands(path: Path) -> tuple[str, ...] | None:
    """The module's `COMMANDS` literal, read without importing it; None when it has none
    (such a module is loaded for every verb: correct, only slower)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "COMMANDS"
        ):
            names = ast.literal_eval(node.value)
            if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
                raise TypeError(f"{path}: COMMANDS must be a tuple of strings")
            return names
    return None


@cache
def command_modules() -> dict[str, tuple[str, ...] | None]:
    """Each command module (sorted, `_private` ones skipped) -> the top-level verbs it declares."""
    here = Path(commands.__file__).parent
    return {
        info.name: declared_commands(here / f"{info.name}.py")
        for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name)
        if not info.name.startswith("_")
    }


def modules_for(verb: str | None) -> list[str]:
    """The modules to load for `mlgate VERB ...`: those declaring VERB (and any declaring
    nothing); all of them when there is no verb or nobody declares it."""
    index = command_modules()
    chosen = [m for m, names in index.items() if names is None or (verb in names)]
    if verb is None or not any(index[m] is not None for m in chosen):
        return list(index)
    return chosen


_loaded: set[str] = set()


def load(modules: Sequence[str]) -> typer.Typer:
    """Import and register MODULES on the one app (each once per process), in sorted order so
    that help lists the verbs as it always has."""
    for name in sorted(set(modules) - _loaded):
        module = importlib.import_module(f"mlgate.commands.{name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(_app)
        _loaded.add(name)
    return _app


def split_root(args: Sequence[str]) -> tuple[list[str], str | None]:
    """(the root's options before the verb, the verb): the first word of ARGS that is neither
    a root option nor a root option's value."""
    root = get_command(_app)
    takes_value = {
        opt
        for p in root.params
        if isinstance(p, typer.core.TyperOption) and not p.is_flag
        for opt in p.opts
    }
    options: list[str] = []
    words = iter(args)
    for word in words:
        if word == "--":
            return options, next(words, None)
        if not word.startswith("-"):
            return options, word
        options.append(word)
        if word in takes_value:
            next(words, None)
    return options, None


def app_for(args: Sequence[str]) -> typer.Typer:
    """The app with what `mlgate ARGS` needs registered. The root's `--help` lists every verb;
    `--version` without a verb needs none (it exits before any verb is looked up)."""
    options, verb = split_root(args)
    if "--help" in options:
        return load(list(command_modules()))
    if verb is None and "--version" in options:
        return _app
    return load(modules_for(verb))


def __getattr__(name: str) -> typer.Typer:
    """`mlgate.cli.app`: the whole CLI, every module loaded (tests, documentation tools)."""
    if name == "app":
        return load(list(command_modules()))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    sys.exit(run_guarded(app_for(sys.argv[1:])))


if __name__ == "__main__":
    main()
