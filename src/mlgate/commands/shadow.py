"""`mlgate shadow start | stop | analyze`: thin shells over mlgate.gitops.shadow (each a
reviewed commit) and mlgate.canary.shadow_run (the shadow compared with stable on identical
requests)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlgate.commands._common import JSON, emit_json, out, progress, state
from mlgate.commands.gates import STYLE, print_reasons
from mlgate.commands.gitops import _evidence, _opened
from mlgate.gates.result import GateStatus

COMMANDS = ("shadow",)

EXIT = {GateStatus.PASS: 0, GateStatus.FAIL: 1, GateStatus.INCONCLUSIVE: 3}


def register(app: typer.Typer) -> None:
    shadow_app = typer.Typer(
        help="The candidate as a shadow beside stable: mirrored every request, deciding nobody.",
        no_args_is_help=True,
    )

    @shadow_app.command("start")
    def start(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model"),
        version: str = typer.Option(..., "--version", help="MLflow model version or alias."),
        env: str = typer.Option("prod", "--env"),
        report: Path | None = typer.Option(
            None,
            "--report",
            help="The version's gate report for ENV (default: the one `gates run` wrote).",
        ),
        image: str | None = typer.Option(None, "--image"),
        json_out: bool = JSON,
    ) -> None:
        """Open the pull request that runs VERSION as the shadow of ENV."""
        from mlgate.gitops import shadow

        settings = state(ctx).settings()
        with progress(f"starting {model} {version} as shadow in {env}", quiet=json_out):
            number, evidence = _evidence(settings, model, version, env, report, overridden=False)
            pr = shadow.start(settings, model, env, number, evidence, image=image)
        _opened(pr, json_out)

    @shadow_app.command("stop")
    def stop(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model"),
        env: str = typer.Option("prod", "--env"),
        json_out: bool = JSON,
    ) -> None:
        """Open the pull request that removes the shadow of ENV."""
        from mlgate.gitops import shadow

        with progress(f"stopping the {env} shadow of {model}", quiet=json_out):
            pr = shadow.stop(state(ctx).settings(), model, env)
        _opened(pr, json_out)

    @shadow_app.command("analyze")
    def analyze(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model"),
        env: str = typer.Option("prod", "--env"),
        requests: str = typer.Option(
            ..., "--requests", help="The request-log sink's URL, or a file of its export lines."
        ),
        policy: Path | None = typer.Option(None, "--policy", help="Gate policy YAML."),
        report: Path | None = typer.Option(None, "--report", help="Report folder."),
        json_out: bool = JSON,
    ) -> None:
        """Compare the shadow with stable on identical requests: exit 0 PASS, 1 FAIL,
        3 INCONCLUSIVE, 2 bad input."""
        from mlgate.canary.shadow_run import analyze_shadow

        with progress(f"analysing the {env} shadow of {model}", quiet=json_out):
            rep, paths = analyze_shadow(
                state(ctx).settings(),
                model=model,
                env=env,
                requests=requests,
                policy_file=policy,
                report_dir=report,
            )
        if json_out:
            emit_json({"report": rep.model_dump(mode="json"), "report_files": paths})
        else:
            table = Table(title=f"shadow {rep.model} v{rep.challenger} vs v{rep.champion} ({env})")
            for col in ("check", "result", "summary"):
                table.add_column(col)
            for g in rep.gates:
                table.add_row(g.name, f"[{STYLE[g.status]}]{g.status.value}[/]", g.summary)
            out.print(table)
            print_reasons(rep.gates)
            out.print(f"overall: [bold]{rep.overall.value}[/]")
            out.print(f"report: {paths['report.json'].parent}")
        raise typer.Exit(EXIT[rep.overall])

    app.add_typer(shadow_app, name="shadow")
