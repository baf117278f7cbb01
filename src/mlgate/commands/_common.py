"""What every command shares: settings, `--json` output, and errors -> exit codes."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import typer
from pydantic import BaseModel
from rich.console import Console

from mlgate.config import PlatformSettings, load_settings
from mlgate.errors import EXIT_BAD_INPUT, MlgateError, install_log_redaction, redact
from mlgate.progress import bar
from mlgate.workspace import ENV_VAR, Workspace

console = Console(stderr=True, soft_wrap=True)
out = Console()
# The `--json` flag of a command whose output scripts and CI read (`emit_json` prints it).
JSON = typer.Option(False, "--json", help="Machine-readable output on stdout.")


@dataclass
class State:
    workspace: str | None = None
    config: str | None = None
    _settings: PlatformSettings | None = field(default=None, repr=False)

    def settings(self) -> PlatformSettings:
        if self._settings is None:
            self._settings = load_settings(self.config, self.workspace)
            # One workspace for the whole process and what it starts (pipeline steps, dataset
            # configs' `{workspace}`): --workspace or mlgate.yaml's win over the environment.
            os.environ[ENV_VAR] = str(Workspace.resolve(self._settings.workspace).root)
        return self._settings


def state(ctx: typer.Context) -> State:
    obj = ctx.find_object(State)
    if obj is None:  # called outside the root callback (tests invoking a sub-app directly)
        obj = State()
    return obj


class Say(Protocol):
    def __call__(self, message: str, fraction: float | None = None, /) -> None: ...


def _silent(message: str, fraction: float | None = None, /) -> None:
    return None


@contextmanager
def progress(label: str, *, quiet: bool = False) -> Iterator[Say]:
    """Progress of a step that takes more than a moment: a spinner, the stage the library
    reports through `say(message[, fraction])` (a fraction draws a bar) and the time so far.

    On stderr and only on a terminal, so stdout stays the result and a log or a pipe gets no
    control characters; `quiet` (the commands' --json) shows nothing at all. Transient: the
    command's own result replaces it.
    """
    if quiet or not console.is_terminal:
        yield _silent
        return
    with bar(console, label) as say:
        yield say


def to_jsonable(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    return obj


def emit_json(obj: Any) -> None:
    """Machine-readable output on stdout, nothing else on stdout."""
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def print_error(exc: BaseException) -> None:
    """The one way an error reaches the user: redacted (no credential in a URL, token or
    password setting is ever printed), and never read as rich markup."""
    console.print("[bold red]error:[/] ", end="", markup=True, highlight=False)
    console.print(redact(str(exc)), markup=False, highlight=False)


def fail(exc: MlgateError) -> typer.Exit:
    print_error(exc)
    return typer.Exit(exc.exit_code)


def run_guarded(app: typer.Typer) -> int:
    """Run the app; MlgateError -> its exit code. Usage errors exit 2 (click's own handling).
    Log lines and errors are redacted from here on."""
    install_log_redaction()
    try:
        app()
    except MlgateError as exc:
        print_error(exc)
        return exc.exit_code
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        return code if isinstance(code, int) else EXIT_BAD_INPUT
    return 0
