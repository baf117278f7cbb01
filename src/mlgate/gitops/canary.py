"""`mlgate canary start|set-weight|promote|abort`: every canary step is a reviewed commit.

Traffic weights change only in git (Argo CD self-heal undoes in-cluster edits). `promote`
makes the canary the stable predictor and removes the old one; `abort` removes the canary
(all traffic back to stable) and quarantines its version; it is always allowed.

`abort_now` is the break-glass form the scheduled analysis uses (`canary analyze --act`): the
same commit, pushed straight to main without a pull request or an approval. It only puts back
the reviewed stable version and quarantines the canary, so waiting for a reviewer would only
keep a failing canary in front of applicants; advancing or promoting always stays a PR.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError
from mlgate.gitops.evidence import canary_claim
from mlgate.gitops.overlay import (
    Release,
    check_env,
    check_model,
    model_dir,
    read_release,
    write_release,
)
from mlgate.gitops.pr import Proposal, PullRequest, Refused, open_pr
from mlgate.gitops.promote import check_report, description, evidence_trailers, promote
from mlgate.gitops.quarantine import add_quarantine, read_quarantine
from mlgate.gitops.repo import GitopsRepo
from mlgate.gitops.status import read_status
from mlgate.records.trailers import ChangeKind, commit_message, make_trailers
from mlgate.records.values import check_text


def _running(settings: PlatformSettings, model: str, env: str) -> Release:
    """The env's release as main has it; it must have a canary."""
    status = read_status(settings)
    ms = status.model(model)
    es = ms.envs.get(env) if ms else None
    if es is None:
        raise BadInputError(f"{model} is not deployed in {env}")
    if es.canary_version is None:
        raise Refused(f"no canary is running for {model} in {env}")
    return es.release(model)


def _same_canary(root: Path, model: str, env: str, expected: Release) -> Release:
    """Inside the edit, under the lock: main must still hold exactly the release the subject
    and trailers were planned from (versions, images, weight, cut-off), else message and diff
    could disagree."""
    current = read_release(root, model, env)
    if current is None or current != expected:
        raise Refused(f"the {env} canary of {model} changed meanwhile; look at `mlgate status`")
    return current


def start(
    settings: PlatformSettings,
    model: str,
    env: str,
    version: str,
    report: Path | None,
    *,
    weight: int | None = None,
    image: str | None = None,
    override_reason: str | None = None,
    shadow_report: Path | None = None,
) -> PullRequest:
    """Start a canary next to the running stable version (the same rules as promote; a shadow
    of the same version is replaced by it: shadow -> canary)."""
    check_model(model)
    check_env(env)
    from mlgate.gitops.status import stable_version

    if stable_version(settings, model, env) is None:
        raise Refused(f"{model} has no stable version in {env}: a canary needs one to run beside")
    return promote(
        settings,
        model,
        version,
        env,
        report,
        image=image,
        override_reason=override_reason,
        weight=weight,
        shadow_report=shadow_report,
    )


def set_weight(settings: PlatformSettings, model: str, env: str, weight: int) -> PullRequest:
    check_model(model)
    check_env(env)
    if not 1 <= weight <= 99:
        raise BadInputError(
            f"--weight {weight}: must be 1..99 (0 is `canary abort`, 100 is `canary promote`)"
        )
    planned = _running(settings, model, env)
    if planned.canary_weight == weight:
        raise BadInputError(f"the {env} canary of {model} already runs at {weight}%")

    def edit(root: Path) -> None:
        current = _same_canary(root, model, env, planned)
        write_release(root, current.model_copy(update={"canary_weight": weight}))

    subject = (
        f"Canary {model} {planned.canary_version} in {env}: {planned.canary_weight}% -> {weight}%"
    )
    return open_pr(
        settings,
        Proposal(
            model=model,
            env=env,
            change=ChangeKind.CANARY_SET_WEIGHT,
            version=planned.canary_version,
            branch=f"canary/{model}-{planned.canary_version}-{env}-weight-{weight}",
            subject=subject,
            trailers=make_trailers(
                model=model,
                model_version=planned.canary_version,
                environment=env,
                change=ChangeKind.CANARY_SET_WEIGHT,
                canary_weight=weight,
            ),
            description=f"## {subject}\n",
        ),
        edit,
    )


def promote_canary(
    settings: PlatformSettings,
    model: str,
    env: str,
    report: Path | None,
    *,
    override_reason: str | None = None,
) -> PullRequest:
    """Canary -> stable (all traffic), the old stable predictor removed."""
    check_model(model)
    check_env(env)
    planned = _running(settings, model, env)
    version = planned.canary_version or ""
    # Only an analysis of this canary (made after it started, deciding PROMOTE) is evidence;
    # the holdout report that let it start is not.
    rep = check_report(
        settings,
        report,
        model,
        version,
        env,
        override_reason,
        kind="canary-analysis",
        canary=canary_claim(settings, model, env),
    )

    def edit(root: Path) -> None:
        current = _same_canary(root, model, env, planned)
        if any(q.version == version for q in read_quarantine(root, model)):
            raise Refused(f"{model} version {version} is quarantined: it cannot become stable")
        assert current.canary_image is not None
        write_release(
            root,
            Release(
                model=model,
                env=env,
                stable_version=version,
                stable_image=current.canary_image,
                cutoff=current.cutoff,
                shadow_version=current.shadow_version,  # a shadow keeps running beside
                shadow_image=current.shadow_image,
            ),
        )

    subject = (
        f"Promote canary {model} {version} to stable in {env} (replaces {planned.stable_version})"
    )
    if override_reason is not None:
        subject += " [GATES OVERRIDDEN]"
    return open_pr(
        settings,
        Proposal(
            model=model,
            env=env,
            change=ChangeKind.CANARY_PROMOTE,
            version=version,
            branch=f"canary/{model}-{version}-{env}-promote",
            subject=subject,
            trailers=make_trailers(
                model=model,
                model_version=version,
                environment=env,
                change=ChangeKind.CANARY_PROMOTE,
                image_digest=(planned.canary_image or "@").split("@", 1)[1],
                replaces=planned.stable_version,
                **evidence_trailers(rep, override_reason),
            ),
            description=description(rep, override_reason, f"## {subject}"),
        ),
        edit,
    )


class DirectCommit(BaseModel):
    """A break-glass change pushed to main (no pull request): where it landed and what it did."""

    commit: str
    branch: str
    subject: str
    model: str
    env: str
    change: str
    version: str | None


def abort(settings: PlatformSettings, model: str, env: str, reason: str) -> PullRequest:
    """Remove the canary (all traffic back to stable) and quarantine its version: a PR that
    one listed reviewer other than the author merges."""
    return open_pr(settings, *_abort_change(settings, model, env, reason))


def abort_now(settings: PlatformSettings, model: str, env: str, reason: str) -> DirectCommit:
    """Break-glass: the abort commit pushed to main at once, no pull request, no approval."""
    proposal, edit = _abort_change(settings, model, env, reason)
    proposal.body.append(
        "Break-glass abort by the scheduled canary analysis, pushed to main without a pull "
        "request (docs/gitops.md, Canary analysis)"
    )
    repo = GitopsRepo.open(settings)
    with repo.session():
        edit(repo.work)
        repo.git("add", "-A", "--", model_dir(model))
        msg = commit_message(proposal.subject, proposal.trailers, proposal.body)
        repo.git("commit", "-q", "-F", "-", input=msg)
        sha = repo.rev("HEAD")
        repo.git("push", "-q", "origin", f"HEAD:refs/heads/{repo.branch}")
        repo.git("fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*")
    return DirectCommit(
        commit=sha,
        branch=repo.branch,
        subject=proposal.subject,
        model=model,
        env=env,
        change=proposal.change,
        version=proposal.version,
    )


def _abort_change(
    settings: PlatformSettings, model: str, env: str, reason: str
) -> tuple[Proposal, Callable[[Path], None]]:
    """The abort as a change: its commit (subject, trailers) and its edit of the checkout."""
    check_model(model)
    check_env(env)
    if not reason.strip():
        raise BadInputError("--reason: say why the canary is aborted")
    why = check_text(reason.strip(), "--reason")
    planned = _running(settings, model, env)
    version = planned.canary_version or ""

    def edit(root: Path) -> None:
        current = _same_canary(root, model, env, planned)
        write_release(
            root,
            current.model_copy(
                update={"canary_version": None, "canary_image": None, "canary_weight": None}
            ),
        )
        add_quarantine(root, model, version, f"canary aborted in {env}: {why}", env)

    subject = (
        f"Abort canary {model} {version} in {env}: all traffic back to {planned.stable_version}"
    )
    proposal = Proposal(
        model=model,
        env=env,
        change=ChangeKind.CANARY_ABORT,
        version=version,
        branch=f"canary/{model}-{version}-{env}-abort",
        subject=subject,
        body=[f"Reason given: {why}"],
        trailers=make_trailers(
            model=model,
            model_version=version,
            environment=env,
            change=ChangeKind.CANARY_ABORT,
            quarantined=version,
        ),
        description=f"## {subject}\n\nReason: {why}\n",
    )
    return proposal, edit
