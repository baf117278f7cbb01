"""`mlgate demo`: the bank's story on the embedded default, chapter by chapter."""

from __future__ import annotations

import typer

from mlgate.commands._common import console, state
from mlgate.demo import CHAPTERS, discover, run_demo

COMMANDS = ("demo",)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        ctx: typer.Context,
        fast: bool = typer.Option(
            False, "--fast", help="Smaller data (what the demo's test uses)."
        ),
        seed: int | None = typer.Option(
            None, "--seed", help="Seed of the world and of the router's random split."
        ),
        only: list[str] = typer.Option([], "--only", help="Run only these steps (by name)."),
        until: str | None = typer.Option(None, "--until", help="Stop after this step."),
        list_steps: bool = typer.Option(False, "--list", help="List the steps and exit."),
    ) -> None:
        """Tell the bank's story on the embedded default: the terminal gets the chapters, the
        workspace's demo/demo.log everything, demo/index.html the page of what happened."""
        if list_steps:
            for step in discover():
                typer.echo(
                    f"{step.order:02d} {step.name:<12} {step.title}  "
                    f"(chapter {step.chapter}: {CHAPTERS.get(step.chapter, '')})"
                )
            return
        settings = state(ctx).settings()  # a bad config first; run_demo checks step names
        if seed is not None:
            settings = settings.model_copy(update={"seed": seed})
        ran = run_demo(settings, console, fast=fast, only=only or None, until=until)
        console.print(
            f"[green]demo complete[/] (workspace {settings.ws().root})\n"
            f"  full log: {ran.results['_log']}\n"
            f"  the story's page: {ran.results.get('_page', '-')}",
            highlight=False,
        )
