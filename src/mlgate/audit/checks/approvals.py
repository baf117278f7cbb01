"""The approvals a change was merged with satisfy the four-eyes rules as they stood when it
was merged: `gitops.pr.check_approvals` (listed reviewers only, never the author, prod needs
model risk, break-glass needs two) against `reviewers.yaml` of main just before the change."""

from __future__ import annotations

from mlgate.audit.verify import CommitContext, Gap, register_check
from mlgate.errors import BadInputError
from mlgate.gitops.pr import PullRequest, check_approvals
from mlgate.gitops.prhost import Approval, Refused
from mlgate.gitops.reviewers import REVIEWERS_FILE, parse_reviewers

CHECK = "approvals"


@register_check(CHECK, about="approvals satisfy the rules and reviewers.yaml as of the merge")
def approvals_satisfy_policy(ctx: CommitContext) -> list[Gap]:
    c, t = ctx.commit, ctx.trailers
    if t is None:
        return []  # not an mlgate change: the trailers check reports it
    text = ctx.mainline.show(c.parent, REVIEWERS_FILE) if c.parent else None
    if text is None:
        return [
            ctx.gap(
                CHECK,
                f"main had no {REVIEWERS_FILE} before this change: no approval can be checked",
            )
        ]
    reviewers = parse_reviewers(text, f"{(c.parent or '')[:10]}:{REVIEWERS_FILE}")
    change = PullRequest(
        branch=f"commit {c.short}",
        sha=c.sha,
        base=c.parent or "",
        author=c.author,
        author_email=c.author_email,
        subject=c.subject,
        model=t.model,
        env=t.environment,
        change=t.change.value,
        version=t.model_version,
        overridden=t.overridden,
        trailers=t.as_dict(),
    )
    via = "github" if ctx.settings.gitops.github_repo else "approver"
    approvals = [Approval(name=name, via=via) for name in t.approved_by]
    try:
        check_approvals(change, approvals, reviewers)
    except (Refused, BadInputError) as exc:
        got = ", ".join(t.approved_by) or "none"
        return [ctx.gap(CHECK, f"approved by {got}: {exc.message}")]
    return []
