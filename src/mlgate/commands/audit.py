"""`mlgate audit`: lineage (what ran where, when, on what evidence) and verify (every change
on main still adds up). Thin shell over `mlgate.audit`.

`audit_app` is public: other audit verbs (`explain`) add themselves to it in this module.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlgate.audit.explain import AuditExplanation, explain_application
from mlgate.audit.verify import VerifyResult, verify_history
from mlgate.commands._common import console, emit_json, out, progress, state

audit_app = typer.Typer(
    help="Read-only audit of what ran where, on what evidence, approved by whom.",
    no_args_is_help=True,
)

_JSON = typer.Option(False, "--json", help="Machine-readable output on stdout.")


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
    @audit_app.command("verify")
    def verify_cmd(
        ctx: typer.Context,
        check: list[str] = typer.Option(
            None, "--check", help="Run only this check (repeatable); default: every check."
        ),
        json_out: bool = _JSON,
    ) -> None:
        """Walk every change on main (first-parent) and report every gap: trailers, MLflow
        run and version, stored gate report, image in the registry, approvals. Exit 1 if any."""
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
        json_out: bool = _JSON,
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
