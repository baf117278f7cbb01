"""`mlgate demo`: the whole lifecycle on the embedded default, as a list of steps.

One module per capability under `mlgate.demo.steps`, each defining `STEP = DemoStep(...)`.
Steps are ordered by their `order` number, so a capability adds its step without editing the
others. Steps share a `DemoContext` through which earlier steps hand results to later ones.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from mlgate.config import PlatformSettings


@dataclass
class DemoContext:
    settings: PlatformSettings
    console: Console
    fast: bool = False  # smaller data, for the test of the demo
    results: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoStep:
    order: int
    name: str
    title: str
    run: Callable[[DemoContext], Any]


def discover() -> list[DemoStep]:
    from mlgate.demo import steps

    found: list[DemoStep] = []
    for info in pkgutil.iter_modules(steps.__path__):
        module = importlib.import_module(f"mlgate.demo.steps.{info.name}")
        step = getattr(module, "STEP", None)
        if isinstance(step, DemoStep):
            found.append(step)
    return sorted(found, key=lambda s: (s.order, s.name))


def run_demo(
    settings: PlatformSettings,
    console: Console,
    *,
    fast: bool = False,
    only: list[str] | None = None,
    until: str | None = None,
) -> DemoContext:
    ctx = DemoContext(settings=settings, console=console, fast=fast)
    for step in discover():
        if only and step.name not in only:
            continue
        console.rule(f"[bold]{step.order:02d} {step.title}")
        ctx.results[step.name] = step.run(ctx)
        if until and step.name == until:
            break
    return ctx
