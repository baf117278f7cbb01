"""`mlgate licences check`: every installed distribution's licence against config/licences.yaml.
Thin shell over `mlgate.packaging.licences` (`make test` runs it over the project's venv)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlgate.commands._common import emit_json, out
from mlgate.errors import EXIT_FAIL
from mlgate.packaging.licences import check_licences, installed, load_policy

COMMANDS = ("licences",)


def register(app: typer.Typer) -> None:
    lic = typer.Typer(help="Licences of the installed Python distributions.", no_args_is_help=True)
    app.add_typer(lic, name="licences")

    @lic.command("check")
    def check(
        policy: Path | None = typer.Option(
            None,
            "--policy",
            help="Licence policy (default: the repository's config/licences.yaml).",
        ),
        path: list[str] | None = typer.Option(
            None,
            "--path",
            help="Check the distributions in this site-packages folder (repeatable) instead of "
            "the running interpreter's.",
        ),
        json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
        show_all: bool = typer.Option(False, "--all", help="List every distribution."),
    ) -> None:
        """Exit 1 naming each distribution whose licence is unknown or not allowed."""
        pol = load_policy(policy)
        report = check_licences(installed(pol, path or None), pol)
        if json_out:
            emit_json(report)
        else:
            if show_all:
                table = Table(title="licences")
                for col in ("distribution", "version", "licence", "from"):
                    table.add_column(col)
                for d in sorted(report.checked, key=lambda d: d.name):
                    table.add_row(d.name, d.version, d.licence or "?", d.source or "-")
                out.print(table)
            for f in report.failures:
                out.print(f"[red]FAIL[/] {f.name} {f.version}: {f.problem}", highlight=False)
            verdict = "PASS" if report.ok else "FAIL"
            out.print(
                f"licences: {verdict} ({len(report.checked)} distributions, "
                f"{len(report.failures)} refused)"
            )
        if not report.ok:
            raise typer.Exit(EXIT_FAIL)
