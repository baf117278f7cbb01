"""The one progress bar of the terminal: a spinner, the stage a long step reports through
`say(message[, fraction])` (a fraction draws a bar) and the time so far.

Shared by the CLI's commands (`commands._common.progress`: on stderr, only on a terminal,
nothing with --json) and the demo's chapters (`demo.DemoContext.progress`, which also writes
every message to the demo's log). Transient: what the step prints next replaces it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

Say = Callable[..., None]  # say(message: str, fraction: float | None = None)


@contextmanager
def bar(console: Console, label: str, also: Say | None = None) -> Iterator[Say]:
    """A progress bar on `console` (a terminal); `also` gets every message too."""
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)

        def say(message: str, fraction: float | None = None, /) -> None:
            if also is not None:
                also(message, fraction)
            desc = f"{label}: {message}"
            if fraction is None:
                progress.update(task, description=desc)
            else:
                progress.update(task, description=desc, total=1.0, completed=fraction)

        yield say
