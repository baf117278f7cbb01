"""`mlgate pr verify BRANCH`: the required CI check on a promotion pull request.

The same verification `pr merge` runs (`mlgate.gitops.evidence.verify_change_evidence`): the
gate report the PR's commit names, fetched by sha256 from the report store and checked against
the version and the policy in force. Exit 0 verified (or a change that carries no report), 1
refused, 2 malformed, 3 INCONCLUSIVE: a CI job runs it on every PR and branch protection
requires it.
"""

from __future__ import annotations

import typer

from mlgate.commands._common import console, emit_json, state
from mlgate.commands.gitops import pr_app
from mlgate.gitops.pr import show_pr, verify_pr_evidence


def register(app: typer.Typer) -> None:
    @pr_app.command("verify")
    def pr_verify(
        ctx: typer.Context,
        branch: str = typer.Argument(..., help="The pull request's branch."),
        json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        """Verify the gate report a pull request's commit names (the CI check)."""
        settings = state(ctx).settings()
        pr = show_pr(settings, branch)
        rep = verify_pr_evidence(settings, pr)
        if json_out:
            emit_json({"branch": branch, "verified": rep is not None, "report": rep})
            return
        if rep is None:
            console.print(f"{branch}: {pr.change} carries no gate report to verify")
        else:
            console.print(
                f"[green]verified[/] {branch}: gate report {rep.sha256[:12]} ({rep.path}) "
                f"{rep.overall} for {rep.model} {rep.challenger} in {rep.env}"
            )
