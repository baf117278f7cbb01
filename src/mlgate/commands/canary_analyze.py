"""`mlgate canary analyze`: a thin shell over mlgate.canary.run (the scheduled canary analysis)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlgate.commands._common import console, emit_json, out, state
from mlgate.commands.gates import STYLE
from mlgate.commands.gitops import canary_app


def register(app: typer.Typer) -> None:
    @canary_app.command("analyze")
    def analyze(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model"),
        env: str = typer.Option("prod", "--env"),
        requests: Path | None = typer.Option(
            None,
            "--requests",
            help="Request log (parquet/csv): features, served_by, [row key, timestamp, outcome].",
        ),
        policy: Path | None = typer.Option(None, "--policy", help="Gate policy YAML."),
        report: Path | None = typer.Option(None, "--report", help="Report folder."),
        act: bool = typer.Option(
            False, "--act", help="Open the pull request the verdict calls for."
        ),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
    ) -> None:
        """Judge the running canary on the requests it served: exit 0 advance/promote, 1 abort,
        3 wait, 2 bad input."""
        from mlgate.canary.run import analyze as run_analysis

        settings = state(ctx).settings()
        with console.status("analysing the canary") as status:
            verdict, paths, pr = run_analysis(
                settings,
                model=model,
                env=env,
                requests=requests,
                policy_file=policy,
                report_dir=report,
                act=act,
                say=lambda m: status.update(m),
            )
        if as_json:
            emit_json(
                {
                    "decision": verdict.decision,
                    "next_weight": verdict.next_weight,
                    "reasons": verdict.reasons,
                    "report": verdict.report.model_dump(mode="json"),
                    "report_files": paths,
                    "pull_request": pr.model_dump(mode="json") if pr is not None else None,
                }
            )
        else:
            rep = verdict.report
            table = Table(title=f"canary {rep.model} v{rep.challenger} vs v{rep.champion} ({env})")
            for col in ("check", "result", "summary"):
                table.add_column(col)
            for g in rep.gates:
                table.add_row(g.name, f"[{STYLE[g.status]}]{g.status.value}[/]", g.summary)
            out.print(table)
            step = f" -> {verdict.next_weight}%" if verdict.next_weight else ""
            out.print(f"decision: [bold]{verdict.decision.upper()}[/]{step}")
            if pr is not None:
                out.print(f"opened {pr.branch}: {pr.subject}")
            out.print(f"report: {paths['report.json'].parent}")
        raise typer.Exit(verdict.exit_code)
