"""`mlgate audit`: lineage (what ran where, when, on what evidence) and verify (every change
on main still adds up). Thin shell over `mlgate.audit`.

`audit_app` is public: other audit verbs (`explain`) add themselves to it in this module.
"""

from __future__ import annotations

import typer
from rich.table import Table

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

    app.add_typer(audit_app, name="audit")
