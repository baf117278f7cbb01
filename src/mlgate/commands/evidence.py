"""`mlgate pr verify BRANCH [--comment]`: the required CI check on a promotion pull request.

The same verification `pr merge` runs (`mlgate.gitops.evidence.verify_change_evidence`, through
`mlgate.gitops.prcheck`): the gate report the PR's commit names, fetched by sha256 from the
report store and checked against the version and the policy in force. Exit 0 verified (or a
change that carries no report), 1 refused, 2 malformed or unreadable, 3 INCONCLUSIVE: the
`promotion-pr` workflow runs it on every PR and branch protection requires it. `--comment`
posts the verdict and the report's Markdown as one PR comment, edited on re-runs.
"""

from __future__ import annotations

import typer

from mlgate.commands._common import console, emit_json, state
from mlgate.commands.gitops import pr_app
from mlgate.gitops.prcheck import ACTIONS_BOT, check_pr, publish

COMMANDS = ("pr",)


def register(app: typer.Typer) -> None:
    @pr_app.command("verify")
    def pr_verify(
        ctx: typer.Context,
        branch: str = typer.Argument(..., help="The pull request's branch."),
        comment: bool = typer.Option(
            False,
            "--comment",
            help="Post the verdict and the report's Markdown as the PR's one mlgate comment "
            "(edited, not duplicated, on re-runs). Needs gitops.github_repo.",
        ),
        comment_as: str = typer.Option(
            ACTIONS_BOT,
            "--comment-as",
            help="The login the token comments as: only its own marked comment is edited.",
        ),
        json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        """Verify the gate report a pull request's commit names (the CI check)."""
        settings = state(ctx).settings()
        check = check_pr(settings, branch)
        posted = publish(settings, check, comment_as) if comment else None
        if json_out:
            emit_json(
                {
                    "branch": branch,
                    "verified": check.report is not None,
                    "verdict": check.verdict,
                    "exit_code": check.exit_code,
                    "message": check.message,
                    "problems": check.problems,
                    "report": check.report,
                    "comment_on": posted.url if posted else None,
                }
            )
        else:
            colour = "green" if check.passed else "red"
            console.print(f"[{colour}]{check.verdict}[/] ", end="", highlight=False)
            console.print(check.message, markup=False, highlight=False)
            for p in check.problems:
                console.print(f"  - {p}", markup=False, highlight=False)
            if posted is not None:
                console.print(f"commented on {posted.url or check.branch}", highlight=False)
        if not check.passed:
            raise typer.Exit(check.exit_code)
