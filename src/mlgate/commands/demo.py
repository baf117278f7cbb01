"""`mlgate demo`: run every capability's demo step on the embedded default."""

from __future__ import annotations

import typer

from mlgate.commands._common import console, state
from mlgate.demo import discover, run_demo

COMMANDS = ("demo",)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        ctx: typer.Context,
        fast: bool = typer.Option(
            False, "--fast", help="Smaller data (what the demo's test uses)."
        ),
        only: list[str] = typer.Option([], "--only", help="Run only these steps (by name)."),
        until: str | None = typer.Option(None, "--until", help="Stop after this step."),
        list_steps: bool = typer.Option(False, "--list", help="List the steps and exit."),
    ) -> None:
        """Run the whole lifecycle on the embedded default, step by step."""
        if list_steps:
            for step in discover():
                typer.echo(f"{step.order:02d} {step.name:<12} {step.title}")
            return
        settings = state(ctx).settings()
        run_demo(settings, console, fast=fast, only=only or None, until=until)
        console.print(f"[green]demo complete[/] (workspace {settings.ws().root})")
