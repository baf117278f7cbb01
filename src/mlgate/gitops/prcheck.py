"""The required status check on a pull request: verify, and say so on the PR.

`mlgate pr verify BRANCH [--comment]` (the `promotion-pr` workflow) runs the very checks
`pr merge` runs before approvals (`pr.check_pr_commit`: the diff does what the trailers say)
and its verification (`pr.verify_pr_evidence`), so the check and the merge cannot disagree, even
for change kinds without a gate report. Every
outcome becomes a `PrCheck` with the exit code the command ends with: a refusal, an
INCONCLUSIVE report or evidence that cannot be read at all fails the check, never passes it.
With `--comment` the verdict is posted as one PR comment, found again on every re-run by a
hidden marker and edited, so a PR pushed ten times carries one report, not ten.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.errors import (
    EXIT_FAIL,
    EXIT_INCONCLUSIVE,
    EXIT_OK,
    GateFailed,
    Inconclusive,
    MlgateError,
)
from mlgate.gitops.evidence import GateReport
from mlgate.gitops.pr import check_pr_repo, show_pr, verify_pr_evidence
from mlgate.gitops.prhost import HostPull, host_for

MARKER = "<!-- mlgate:gate-report -->"
# The login GitHub Actions' GITHUB_TOKEN comments as; a GitHub App token comments as
# `<app-slug>[bot]` (`pr verify --comment-as`).
ACTIONS_BOT = "github-actions[bot]"

Verdict = Literal["verified", "no-report", "refused", "inconclusive", "unverifiable"]
_TITLES: dict[str, str] = {
    "verified": "verified",
    "no-report": "no gate report to verify",
    "refused": "REFUSED",
    "inconclusive": "INCONCLUSIVE",
    "unverifiable": "UNVERIFIABLE",
}


class PrCheck(BaseModel):
    """The check's outcome: what was verified (or why not) and the exit code it ends with."""

    branch: str
    verdict: Verdict
    exit_code: int
    change: str | None = None
    message: str
    problems: list[str] = []
    report: GateReport | None = None

    @property
    def passed(self) -> bool:
        return self.exit_code == EXIT_OK


def check_pr(settings: PlatformSettings, branch: str) -> PrCheck:
    """Verify the evidence PR `branch`'s commit names; every failure is a verdict, not a
    crash, so it can still be reported on the PR before the check fails."""
    change = None
    try:
        pr = show_pr(settings, branch)
        change = pr.change
        check_pr_repo(settings, pr)  # the diff vs its trailers: what merge checks first
        rep = verify_pr_evidence(settings, pr)
    except Inconclusive as exc:
        return _failed(branch, change, "inconclusive", EXIT_INCONCLUSIVE, exc)
    except GateFailed as exc:
        return _failed(branch, change, "refused", EXIT_FAIL, exc)
    except MlgateError as exc:  # malformed, unreadable, unknown version: not evidence
        return _failed(branch, change, "unverifiable", exc.exit_code, exc)
    if rep is None:
        return PrCheck(
            branch=branch,
            verdict="no-report",
            exit_code=EXIT_OK,
            change=change,
            message=f"{branch}: {change} carries no gate report to verify",
        )
    return PrCheck(
        branch=branch,
        verdict="verified",
        exit_code=EXIT_OK,
        change=change,
        message=(
            f"{branch}: gate report {rep.sha256[:12]} ({rep.path}) {rep.overall} for "
            f"{rep.model} {rep.challenger} in {rep.env}"
        ),
        report=rep,
    )


def _failed(
    branch: str, change: str | None, verdict: Verdict, code: int, exc: MlgateError
) -> PrCheck:
    return PrCheck(
        branch=branch,
        verdict=verdict,
        exit_code=code,
        change=change,
        message=exc.message,
        problems=exc.problems,
    )


def comment_body(check: PrCheck) -> str:
    """The PR comment: the verdict first, then the verified report's own Markdown, or what
    stopped the verification. Text from the PR (messages quote branch names and trailers) goes
    into a code block, so it cannot format the comment or fake a verdict line."""
    mark = "white_check_mark" if check.passed else "x"
    lines = [f"### :{mark}: mlgate gate evidence: {_TITLES[check.verdict]}", ""]
    lines += ["```text", _fence_safe(check.message)]
    lines += [f"- {_fence_safe(p)}" for p in check.problems]
    lines += ["```", ""]
    if check.report is not None:
        lines += [
            f"Report `{check.report.sha256}`, fetched from the report store by its sha256 and "
            "re-derived against the policy in force:",
            "",
            check.report.markdown,
        ]
    elif not check.passed:
        lines.append(
            "This check fails: merging needs verified gate evidence "
            "(`mlgate pr verify` locally shows the same)."
        )
    return "\n".join(lines).rstrip() + "\n"


def _fence_safe(text: str) -> str:
    return text.replace("```", "'''")


def publish(settings: PlatformSettings, check: PrCheck, author: str = ACTIONS_BOT) -> HostPull:
    """Post or update the check's one comment on the PR (GitHub host only)."""
    return host_for(settings).comment(check.branch, MARKER, comment_body(check), author)
