"""The approvals a change was merged with satisfy the four-eyes rules as they stood when it
was merged: `gitops.pr.check_approvals` (listed reviewers only, never the author, prod needs
model risk, break-glass needs two) against `reviewers.yaml` of main just before the change.

One change may land without approval by design: the scheduled canary analysis's break-glass
abort (`gitops.canary.abort_now`, docs/gitops.md). It is accepted only for what it is, read from
the diff, not from its message: a `canary-abort` whose `release.yaml` is exactly the one before
it with the canary removed. Anything else unapproved is a gap."""

from __future__ import annotations

import yaml

from mlgate.audit.verify import CommitContext, Gap, register_check
from mlgate.errors import BadInputError
from mlgate.gitops.overlay import CANARY_COMPONENT, KUSTOMIZATION_FILE, RELEASE_FILE, overlay_dir
from mlgate.gitops.pr import PullRequest, check_approvals
from mlgate.gitops.prhost import Approval, Refused
from mlgate.gitops.quarantine import quarantine_path
from mlgate.gitops.reviewers import REVIEWERS_FILE, parse_reviewers
from mlgate.records.trailers import ChangeKind

CHECK = "approvals"


@register_check(CHECK, about="approvals satisfy the rules and reviewers.yaml as of the merge")
def approvals_satisfy_policy(ctx: CommitContext) -> list[Gap]:
    c, t = ctx.commit, ctx.trailers
    if t is None:
        return []  # not an mlgate change: the trailers check reports it
    if t.change == ChangeKind.CANARY_ABORT and not t.approved_by and _only_aborts(ctx):
        return []
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


def _only_aborts(ctx: CommitContext) -> bool:
    """Does the commit do nothing but take the running canary out of its environment (and
    quarantine it)? `release.yaml` loses exactly the canary, the kustomization exactly the
    canary component, and no other file changes."""
    c, t = ctx.commit, ctx.trailers
    if t is None or c.parent is None:
        return False
    folder = overlay_dir(t.model, t.environment)
    kus = f"{folder}/{KUSTOMIZATION_FILE}"
    allowed = {f"{folder}/{RELEASE_FILE}", kus, quarantine_path(t.model)}
    if not set(c.paths) <= allowed:
        return False
    before = ctx.mainline.release_at(c.parent, t.model, t.environment)
    after = ctx.mainline.release_at(c.sha, t.model, t.environment)
    if before is None or after is None or before.canary_version != t.model_version:
        return False
    gone = {"canary_version": None, "canary_image": None, "canary_weight": None}
    if after != before.model_copy(update=gone):
        return False
    old = yaml.safe_load(ctx.mainline.show(c.parent, kus) or "") or {}
    new = yaml.safe_load(ctx.mainline.show(c.sha, kus) or "") or {}
    comps = [x for x in old.get("components") or [] if x != CANARY_COMPONENT]
    return bool(new == {**old, "components": comps})
