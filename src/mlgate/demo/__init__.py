"""`mlgate demo`: the bank's story on the embedded default, told in chapters of small steps.

One module per capability under `mlgate.demo.steps`, each defining `STEP = DemoStep(...)`.
Steps are ordered by their `order` number, so a capability adds its step without editing the
others; each names the chapter of the story it belongs to (`CHAPTERS`), and the runner prints a
chapter's heading when the story reaches it. Steps share a `DemoContext` through which earlier
steps hand results to later ones.

Two audiences, two outputs: the terminal gets the story (`ctx.say`: one or two lines per
event, a progress bar on long steps), the log file gets everything (`ctx.console`: every gate,
every path, every progress message). The log's path is printed first, so a failing run can be
read in full; at the end the story's page (`mlgate.demo.page`) is written beside it.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rich.console import Console

from mlgate.config import PlatformSettings
from mlgate.demo.page import write_page
from mlgate.errors import BadInputError
from mlgate.progress import Say, bar

# The story of issue 17, in the order a new user reads it.
CHAPTERS: dict[int, str] = {
    1: "The bank's world: applications, bureau, transactions, late outcomes",
    2: "v1: trained, gated, built and promoted dev -> stage -> prod by reviewed PRs",
    3: "Months pass: customers shift, the monitor on prod alerts",
    4: "v2: a retrain in prod as a shadow, then a canary on replayed traffic; the analysis decides",
    5: "A candidate trained on biased labels is stopped; what ran when, and why",
}
LOG_NAME = "demo.log"


@dataclass
class DemoContext:
    settings: PlatformSettings
    console: Console  # the full log (every detail); the terminal gets `say`
    fast: bool = False  # smaller data, for the test of the demo
    results: dict[str, Any] = field(default_factory=dict)
    terminal: Console | None = None  # None: the story goes to `console` only

    def say(self, text: str) -> None:
        """One line of the story: on the terminal and in the log."""
        if self.terminal is not None and self.terminal is not self.console:
            self.terminal.print(text, highlight=False)
        self.console.print(text, highlight=False)

    @contextmanager
    def progress(self, label: str) -> Iterator[Say]:
        """A progress bar for a long step, `say(message[, fraction])`: on the terminal (when it
        is one), every message in the log."""

        def log(message: str, fraction: float | None = None, /) -> None:
            self.console.print(f"  {label}: {message}", markup=False, highlight=False)

        term = self.terminal
        if term is None or term is self.console or not term.is_terminal:
            yield log
            return
        with bar(term, label, also=log) as say:
            yield say


@dataclass(frozen=True)
class DemoStep:
    order: int
    name: str
    title: str
    run: Callable[[DemoContext], Any]
    chapter: int = 5


def discover() -> list[DemoStep]:
    from mlgate.demo import steps

    found: list[DemoStep] = []
    for info in pkgutil.iter_modules(steps.__path__):
        module = importlib.import_module(f"mlgate.demo.steps.{info.name}")
        step = getattr(module, "STEP", None)
        if isinstance(step, DemoStep):
            found.append(step)
    return sorted(found, key=lambda s: (s.order, s.name))


def check_step_names(steps: list[DemoStep], only: list[str] | None, until: str | None) -> None:
    """Refuse a step name that names no step (`--only`, `--until`) before any work: a typo
    would otherwise run nothing (`--only`) or everything (`--until`) and still say complete."""
    names = [s.name for s in steps]
    unknown = [n for n in [*(only or []), *([until] if until else [])] if n not in names]
    if unknown:
        raise BadInputError(
            f"unknown demo step(s): {', '.join(repr(n) for n in dict.fromkeys(unknown))}; "
            f"the steps are: {', '.join(names)} (`mlgate demo --list`)"
        )


def demo_dir(settings: PlatformSettings) -> Path:
    """Where the demo leaves its log and its page: `<workspace>/demo`."""
    return settings.ws().sub("demo")


def _log_console(handle: IO[str]) -> Console:
    return Console(file=handle, width=160, force_terminal=False, no_color=True, soft_wrap=True)


def run_demo(
    settings: PlatformSettings,
    console: Console,
    *,
    fast: bool = False,
    only: list[str] | None = None,
    until: str | None = None,
    page: bool = True,
) -> DemoContext:
    """Run the steps; the story on `console`, everything in `<workspace>/demo/demo.log`, and
    (unless `page=False`) the story's HTML page at the end. -> the context with every step's
    result and, under `results["_page"]`/`["_log"]`, the page's and the log's paths. An
    unknown step name in `only`/`until` is bad input, refused before anything is written."""

    steps = discover()
    check_step_names(steps, only, until)
    log_path = demo_dir(settings) / LOG_NAME
    with log_path.open("w", encoding="utf-8") as handle:
        ctx = DemoContext(
            settings=settings,
            console=_log_console(handle),
            fast=fast,
            terminal=console,
        )
        ctx.results["_log"] = str(log_path)
        console.print(f"full log: {log_path}", highlight=False)
        chapter = None
        for step in steps:
            if only and step.name not in only:
                continue
            if step.chapter != chapter:
                chapter = step.chapter
                heading = f"Chapter {chapter}. {CHAPTERS.get(chapter, '')}"
                console.rule(f"[bold]{heading}")
                ctx.console.rule(heading)
            ctx.console.rule(f"{step.order:02d} {step.name}: {step.title}", characters="-")
            console.print(f"[bold]{step.title}[/]", highlight=False)
            started = time.monotonic()
            ctx.results[step.name] = step.run(ctx)
            seconds = ctx.results.setdefault("_seconds", {})
            seconds[step.name] = round(time.monotonic() - started, 1)
            ctx.console.print(f"step {step.name}: {seconds[step.name]:.0f} s", highlight=False)
            if until and step.name == until:
                break
        took = ctx.results.get("_seconds", {})
        ctx.console.print(
            "seconds per step: " + ", ".join(f"{k} {v:.0f}" for k, v in took.items()),
            highlight=False,
        )
        if page:
            out = write_page(settings)
            ctx.results["_page"] = str(out)
            ctx.say(f"the story's page: {out}")
    return ctx
