"""`mlgate audit`: lineage (what ran where, when, on what evidence) and verify (every change
on main still adds up). Thin shell over `mlgate.audit`.

`audit_app` is public: other audit verbs (`explain`) add themselves to it in this module.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from mlgate.audit.explain import AuditExplanation, explain_application
from mlgate.audit.lineage import (
    ChangeFacts,
    EnvAt,
    VersionFacts,
    VersionRuns,
    lineage_at,
    parse_time,
    version_runs,
)
from mlgate.audit.verify import VerifyResult, verify_history
from mlgate.commands._common import JSON, console, emit_json, out, progress, state
from mlgate.errors import BadInputError

COMMANDS = ("audit",)

audit_app = typer.Typer(
    help="Read-only audit of what ran where, on what evidence, approved by whom.",
    no_args_is_help=True,
)


def _when(t: datetime | None) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ") if t else "now"


def _change(c: ChangeFacts | None) -> str:
    if c is None:
        return "(not found on main)"
    return f"{c.change or 'not an mlgate commit'} {c.commit[:10]} {_when(c.time)}"


def _report(c: ChangeFacts | None) -> str:
    rc = c.gate_report if c else None
    if rc is None:
        return ""
    if rc.verified:
        return f"{(rc.sha256 or '')[:12]} verified {rc.overall or ''} ({rc.problem or rc.where})"
    return f"{(rc.sha256 or 'none')[:12]} NOT VERIFIED: {rc.problem}"


def _rows(v: VersionFacts) -> list[tuple[str, str]]:
    e = v.entered
    return [
        ("version", f"{v.version} ({v.traffic}%)"),
        ("image", v.image),
        ("entered by", _change(e)),
        ("steps", ", ".join(f"{c.change} {c.commit[:10]}" for c in v.changes)),
        ("author", f"{e.author} <{e.author_email}>" if e else ""),
        ("approved by", ", ".join(e.approved_by) if e else ""),
        ("merged by", f"{e.merged_by} <{e.merged_by_email}>" if e else ""),
        ("gate report", _report(e)),
        ("MLflow run", v.mlflow.run_id or v.mlflow.error or ""),
        ("data fingerprint", v.mlflow.data_fingerprint or ""),
        ("feature service", v.mlflow.feature_service or ""),
        ("training commit", v.mlflow.training_commit or ""),
    ]


def _print_env(res: EnvAt) -> None:
    head = f"{res.model} in {res.env} at {_when(res.at)}"
    if res.stable is None:
        out.print(f"{head}: nothing ran (main at {(res.main_commit or 'no commit yet')[:10]})")
        return
    table = Table(title=f"{head} (main at {(res.main_commit or '')[:10]}, cut-off {res.cutoff})")
    table.add_column("")
    table.add_column("stable", overflow="fold")
    versions = [res.stable] + ([res.canary] if res.canary else [])
    if res.canary:
        table.add_column("canary", overflow="fold")
    columns = [_rows(v) for v in versions]
    for i, (name, _) in enumerate(columns[0]):
        table.add_row(name, *(col[i][1] for col in columns))
    out.print(table)
    if res.last_change is not None:
        last = res.last_change
        out.print(
            f"last change to {res.env}: {_change(last)} by {last.author}, approved by "
            f"{', '.join(last.approved_by) or 'nobody'}: {last.subject}",
            markup=False,
        )


def _print_runs(res: VersionRuns) -> None:
    m = res.mlflow
    out.print(
        f"{res.model} version {res.version}: MLflow run {m.run_id or m.error}, data "
        f"{m.data_fingerprint}, feature service {m.feature_service}, training commit "
        f"{m.training_commit}",
        markup=False,
    )
    if not res.periods:
        out.print(f"version {res.version} never ran in any environment on main")
        return
    table = Table(title=f"where {res.model} {res.version} ran")
    for col in ("env", "role"):
        table.add_column(col, no_wrap=True)
    for col in ("since", "until", "entered by", "approved / merged by", "report"):
        table.add_column(col, overflow="fold")
    for p in res.periods:
        e = p.facts.entered
        table.add_row(
            p.env,
            f"{p.role} {p.traffic}%",
            _when(p.since),
            _when(p.until),
            _change(e),
            f"{', '.join(e.approved_by)} / {e.merged_by}" if e else "",
            _report(e),
        )
    out.print(table)
    images = sorted({p.facts.image for p in res.periods})
    out.print(f"image: {', '.join(images)}", markup=False, soft_wrap=True)


def _print_verify(result: VerifyResult) -> None:
    checks = ", ".join(c.name for c in result.checks)
    if result.clean:
        out.print(
            f"[green]clean[/]: {result.changes_checked} changes on main ({result.head[:10]}) "
            f"pass every check ({checks})"
        )
        return
    table = Table(title=f"{len(result.gaps)} gaps on main ({result.head[:10]})")
    for col in ("commit", "check", "model", "env", "version", "gap"):
        table.add_column(col, overflow="fold")
    for g in result.gaps:
        detail = g.message + "".join(f"\n- {p}" for p in g.problems)
        table.add_row(
            (g.commit or "")[:10], g.check, g.model or "", g.env or "", g.version or "", detail
        )
    out.print(table)
    console.print(f"checked {result.changes_checked} changes with: {checks}")


def _print_explain(e: AuditExplanation) -> None:
    where = f"{e.model} v{e.version}" + (f" in {e.env}" if e.env else "")
    pd_text = "no score" if e.pd is None else f"PD {e.pd:.6f}"
    out.print(
        f"application {e.application_id}: {e.decision.upper()} by {where} at "
        f"{e.decided_at or '?'} ({pd_text}, cut-off {e.cutoff:g} from {e.cutoff_from})",
        markup=False,
    )
    if e.logged is not None:
        lg = e.logged
        check = (
            f"reproduced: logged PD {lg.pd!r} = recomputed {e.pd!r} "
            f"(|difference| {e.pd_difference:.2g} <= {e.tolerance:g}), same decision and "
            "reason codes"
            if e.reproduced
            else f"referred, not scored: {lg.refer_reason}"
        )
        out.print(
            f"logged: request {lg.request_id} ({lg.predictor}, {lg.file}); {check}", markup=False
        )
    out.print(f"features from {e.features_from}", markup=False)
    for rc in e.reason_codes:
        out.print(f"  {rc.code}: {rc.description} ({rc.contribution:+.3f})", markup=False)
    for w in e.warnings:
        console.print(f"warning: {w}", markup=False)
    if e.notice:
        out.print("", e.notice, sep="\n", markup=False)


def register(app: typer.Typer) -> None:
    @audit_app.command("lineage")
    def lineage_cmd(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model", help="Registered model name."),
        version: str | None = typer.Option(
            None, "--version", help="Every environment and time this version ran."
        ),
        env: str | None = typer.Option(None, "--env", help="Environment (dev, stage, prod)."),
        at: str | None = typer.Option(
            None, "--at", help="ISO 8601 time (UTC if no offset); default now. Needs --env."
        ),
        json_out: bool = JSON,
    ) -> None:
        """What ran (stable, canary, weights), how it got there (author, approvers, merger,
        verified gate report) and what it is (image, MLflow run, data, features, code), from
        git history and MLflow alone."""
        if version is not None and at is not None:
            raise BadInputError("--at and --version: give one (--version lists every time)")
        if version is None and env is None:
            raise BadInputError("--env ENV [--at TIME] or --version V is required")
        settings = state(ctx).settings()
        when = parse_time(at) if at is not None else datetime.now(UTC)
        with progress("audit lineage", quiet=json_out):
            result: EnvAt | VersionRuns = (
                version_runs(settings, model, version, env)
                if version is not None
                else lineage_at(settings, model, str(env), when)
            )
        if json_out:
            emit_json(result)
        elif isinstance(result, EnvAt):
            _print_env(result)
        else:
            _print_runs(result)

    @audit_app.command("verify")
    def verify_cmd(
        ctx: typer.Context,
        check: list[str] = typer.Option(
            None, "--check", help="Run only this check (repeatable); default: every check."
        ),
        json_out: bool = JSON,
    ) -> None:
        """Re-check every change on main (first-parent) with every registered check; report
        every gap, exit 1 if any."""
        settings = state(ctx).settings()
        with progress("audit verify", quiet=json_out) as say:
            result = verify_history(settings, only=check or None, say=say)
        if json_out:
            emit_json(result)
        else:
            _print_verify(result)
        raise typer.Exit(0 if result.clean else 1)

    @audit_app.command("explain")
    def explain_cmd(
        ctx: typer.Context,
        application_id: str = typer.Option(..., "--application-id", help="The application."),
        log: Path | None = typer.Option(
            None,
            "--log",
            help="Request-log sink folder or a JSON-lines export (default "
            "<workspace>/request-log when it exists).",
        ),
        model: str | None = typer.Option(None, "--model", help="Only this model."),
        env: str = typer.Option(
            "prod", "--env", help="Not logged: the environment whose decision to explain."
        ),
        version: str | None = typer.Option(
            None, "--version", help="Not logged: this version instead of git's stable one."
        ),
        cutoff: float | None = typer.Option(
            None, "--cutoff", help="Not logged: with --version, when git has no overlay then."
        ),
        json_out: bool = JSON,
    ) -> None:
        """Why an application was decided as it was: the version, the features it saw, the PD,
        the decision at the served cut-off and the reasons, recomputed from the registered
        model and checked against the logged decision (exit 1 when it cannot be reproduced),
        with the adverse-action notice."""
        with progress("audit explain", quiet=json_out):
            result = explain_application(
                state(ctx).settings(),
                application_id,
                log=log,
                model=model,
                env=env,
                version=version,
                cutoff=cutoff,
            )
        if json_out:
            emit_json(result)
        else:
            _print_explain(result)

    app.add_typer(audit_app, name="audit")
