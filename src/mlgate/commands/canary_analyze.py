"""`mlgate canary analyze | replay`: thin shells over mlgate.canary (the scheduled canary analysis,
and the request log replayed from the data source where no request logger ran)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mlgate.commands._common import emit_json, out, progress, state
from mlgate.commands.gates import STYLE, print_reasons
from mlgate.commands.gitops import canary_app
from mlgate.gitops.canary import DirectCommit

COMMANDS = ("canary",)


def register(app: typer.Typer) -> None:
    @canary_app.command("replay")
    def replay(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model"),
        env: str = typer.Option("prod", "--env"),
        days: int = typer.Option(365, "--days", help="Newest days of applications to replay."),
        out_path: Path | None = typer.Option(
            None,
            "--out",
            help="Request log to write, .parquet or .csv (default <workspace>/reports/canary/).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
    ) -> None:
        """Write the newest applications as the running canary's request log (split by its
        weight): what `canary analyze --requests` reads when no request logger served them."""
        from mlgate.canary.replay import replay_requests

        with progress(f"replaying {days} days of applications", quiet=as_json):
            rep = replay_requests(state(ctx).settings(), model, env, days, out_path)
        if as_json:
            emit_json(rep)
            return
        out.print(
            f"{rep.requests} requests ({rep.canary_requests} to canary {rep.canary_version} at "
            f"{rep.weight}%, the rest to stable {rep.stable_version}) -> {rep.path}"
        )

    @canary_app.command("analyze")
    def analyze(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model"),
        env: str = typer.Option("prod", "--env"),
        requests: str | None = typer.Option(
            None,
            "--requests",
            help="The request-log sink's URL (what the CronJob passes), or a request log "
            "(parquet/csv): features, served_by, [row key, timestamp, outcome].",
        ),
        policy: Path | None = typer.Option(None, "--policy", help="Gate policy YAML."),
        report: Path | None = typer.Option(None, "--report", help="Report folder."),
        act: bool = typer.Option(
            False,
            "--act",
            help="Act on the verdict: open the advance/promote pull request; abort at once "
            "(break-glass: pushed to main, canary removed, version quarantined).",
        ),
        scheduled: bool = typer.Option(
            False,
            "--scheduled",
            help="As the CronJob runs it: record the verdict for Argo CD when its state changed "
            "(canary-analysis/<model>/<env>.yaml on main) and exit 0 on WAIT (a waiting "
            "analysis is not a failed run).",
        ),
        simulate_outcomes: str | None = typer.Option(
            None,
            "--simulate-outcomes",
            metavar="3m|12m",
            help="Synthetic world only, a simulation: the served requests' outcomes from the "
            "world's oracle table as if 3 (early) or 12 months (early and 12-month) had "
            "passed; a loan the version that served it approved gets its true outcome, a "
            "declined one none. Exit 2 when the data source has no oracle table.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
    ) -> None:
        """Judge the running canary on the requests it served: exit 0 advance/promote, 1 abort,
        3 wait (0 with --scheduled), 2 bad input."""
        from mlgate.canary.record import exit_code_scheduled
        from mlgate.canary.run import analyze as run_analysis

        settings = state(ctx).settings()
        with progress(f"analysing the {env} canary of {model}", quiet=as_json) as say:
            verdict, paths, pr = run_analysis(
                settings,
                model=model,
                env=env,
                requests=requests,
                policy_file=policy,
                report_dir=report,
                act=act,
                record=scheduled,
                say=say,
                simulate_outcomes=simulate_outcomes,
            )
        if as_json:
            emit_json(
                {
                    "decision": verdict.decision,
                    "next_weight": verdict.next_weight,
                    "reasons": verdict.reasons,
                    "report": verdict.report.model_dump(mode="json"),
                    "report_files": paths,
                    "pull_request": (
                        pr.model_dump(mode="json")
                        if pr is not None and not isinstance(pr, DirectCommit)
                        else None
                    ),
                    "commit": pr.model_dump(mode="json") if isinstance(pr, DirectCommit) else None,
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
            print_reasons(rep.gates)
            step = f" -> {verdict.next_weight}%" if verdict.next_weight else ""
            sim = rep.data.get("outcomes_simulated")
            if sim:
                out.print(
                    f"outcomes: SIMULATED ({sim['horizon']}) from the oracle {sim['oracle']}: "
                    f"{sim['with_early_outcome']} early, {sim['with_12m_outcome']} 12-month",
                    highlight=False,
                )
            out.print(f"decision: [bold]{verdict.decision.upper()}[/]{step}")
            for reason in verdict.reasons:
                out.print(f"  {escape(reason)}", highlight=False, soft_wrap=True)
            if isinstance(pr, DirectCommit):
                out.print(f"pushed {pr.commit[:10]} to {pr.branch} (break-glass): {pr.subject}")
            elif pr is not None:
                out.print(f"opened {pr.branch}: {pr.subject}")
            out.print(f"report: {paths['report.json'].parent}")
        code = verdict.exit_code
        raise typer.Exit(exit_code_scheduled(verdict.decision, code) if scheduled else code)
