"""`mlgate gates run` and `mlgate monitor`: thin shells over mlgate.gates."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mlgate.commands._common import emit_json, out, progress, state
from mlgate.gates.result import GateReport, GateResult, GateStatus

COMMANDS = ("gates", "monitor")

STYLE = {GateStatus.PASS: "green", GateStatus.FAIL: "red", GateStatus.INCONCLUSIVE: "yellow"}


def print_reasons(gates: list[GateResult]) -> None:
    """Every reason of every gate short of PASS, one line each, in every environment: the
    table's summary is the first reason only, and report.json is not where anyone looks."""
    for g in gates:
        if g.status == GateStatus.PASS:
            continue
        blocks = "" if g.blocking else " (does not block here)"
        for reason in g.reasons or [g.summary or "no reason recorded"]:
            out.print(
                f"  [{STYLE[g.status]}]{g.status.value}[/] {g.name}{blocks}: {escape(reason)}",
                highlight=False,
                soft_wrap=True,
            )


def _print_report(report: GateReport, paths: dict[str, Path]) -> None:
    table = Table(title=f"{report.model} v{report.challenger} -> {report.env}")
    for col in ("gate", "result", "blocking", "summary"):
        table.add_column(col)
    for g in report.gates:
        table.add_row(
            g.name,
            f"[{STYLE[g.status]}]{g.status.value}[/]",
            "yes" if g.blocking else "no",
            g.summary,
        )
    out.print(table)
    mode = "" if report.enforced else " (warn-only: nothing blocks here)"
    out.print(
        f"overall: [bold {STYLE[report.overall]}]{report.overall.value}[/]{mode}; "
        f"champion: {report.champion or 'none (first version: floors)'}"
    )
    print_reasons(report.gates)
    if "report.json" in paths:
        out.print(f"report: {paths['report.json'].parent}")


def register(app: typer.Typer) -> None:
    gates = typer.Typer(help="Promotion gates: performance, calibration, drift, fairness, P&L.")
    app.add_typer(gates, name="gates")

    @gates.command("run")
    def run(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model", help="Registered model name."),
        challenger: str = typer.Option(
            "challenger", "--challenger", help="Version or alias to judge."
        ),
        env: str = typer.Option(..., "--env", help="Target environment (dev, stage, prod)."),
        champion: str | None = typer.Option(
            None,
            "--champion",
            help="Version or alias to compare with (default: git's stable version in ENV).",
        ),
        current: Path | None = typer.Option(
            None, "--current", help="Current window file (parquet/csv; default: newest days)."
        ),
        policy: Path | None = typer.Option(
            None, "--policy", help="Gate policy YAML (default config/policies/<model>.yaml)."
        ),
        report: Path | None = typer.Option(
            None, "--report", help="Report folder (default <workspace>/reports/gates/...)."
        ),
        no_evidently: bool = typer.Option(
            False, "--no-evidently", help="Skip the Evidently HTML report."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Judge a challenger: exit 0 PASS, 1 FAIL, 3 INCONCLUSIVE, 2 bad input."""
        from mlgate.gates.run import run_gates_for_model

        settings = state(ctx).settings()
        with progress(f"gates {model} {challenger} -> {env}", quiet=as_json) as say:
            result, paths = run_gates_for_model(
                settings,
                model=model,
                challenger=challenger,
                env=env,
                champion=champion,
                current=current,
                policy_file=policy,
                report_dir=report,
                evidently=not no_evidently,
                say=say,
            )
        if as_json:
            emit_json({**result.model_dump(mode="json"), "report_files": paths})
        else:
            _print_report(result, paths)
        raise typer.Exit(result.exit_code)

    @app.command("monitor")
    def monitor(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model", help="Registered model name."),
        env: str = typer.Option(..., "--env", help="Environment whose stable version to watch."),
        window: str | None = typer.Option(
            None, "--window", help="Recent window, e.g. 7d or 7 (default: policy monitor)."
        ),
        version: str | None = typer.Option(
            None, "--version", help="Version to watch (default: git's stable version in ENV)."
        ),
        end: str | None = typer.Option(
            None, "--end", help="Window end, ISO date (default: the newest application)."
        ),
        webhook: str | None = typer.Option(
            None, "--webhook", help="Slack-compatible webhook URL for alerts."
        ),
        policy: Path | None = typer.Option(None, "--policy", help="Gate policy YAML."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Daily checks of a running model (the same monitor and alert as the scheduled
        monitoring pipeline): exit 0 ok, 1 alert, 3 inconclusive, 2 bad input."""
        from mlgate.errors import BadInputError
        from mlgate.gates.monitor_run import run_monitor

        days = None
        if window is not None:
            raw = window.strip().lower().removesuffix("d")
            if not raw.isdigit() or int(raw) < 1:
                raise BadInputError(f"--window {window!r}: expected days, e.g. 7d")
            days = int(raw)
        settings = state(ctx).settings()
        with progress(f"monitoring {model} in {env}", quiet=as_json) as say:
            result = run_monitor(
                settings,
                model=model,
                env=env,
                version=version,
                window_days=days,
                end=end,
                webhook=webhook,
                policy_file=policy,
                say=say,
            )
        if as_json:
            emit_json(result)
        else:
            table = Table(title=f"monitor {result.model} v{result.version} in {result.env}")
            for col in ("check", "result", "summary"):
                table.add_column(col)
            for c in result.checks:
                table.add_row(c.name, f"[{STYLE[c.status]}]{c.status.value}[/]", c.summary)
            out.print(table)
            print_reasons(result.checks)
            out.print(f"alerts: {len(result.alerts)}")
            if result.retrain is not None:
                what = "yes" if result.retrain.retrain else "no"
                out.print(f"retrain: {what} ({escape(result.retrain.reason)})", soft_wrap=True)
        raise typer.Exit(result.exit_code)
