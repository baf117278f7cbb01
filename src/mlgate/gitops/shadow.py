"""`mlgate shadow start|stop`: the candidate beside stable, mirrored every request, deciding
nobody. Both are reviewed commits like every change (branch `shadow/...`).

A shadow sees exactly what stable sees, so it is the first phase of a prod rollout
(`canary.phases` of the gate policy): its answers are compared with stable's on identical
requests (`mlgate shadow analyze`) before any applicant is decided by it. Starting it rests on
the same evidence as a promotion into the environment (the verified, passing gate report for
that version there, the image build record, the promotion order), because its pod runs in the
production namespace with production data; quarantined versions never start. A version runs in
one role: not as shadow while it is the canary, and `canary start` of the shadow's version
replaces the shadow ("shadow -> canary", `gitops.promote`). Stopping restores the environment
as it was (one listed approver other than the author, like an abort).
"""

from __future__ import annotations

from pathlib import Path

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError
from mlgate.gitops.evidence import mlflow_lineage
from mlgate.gitops.overlay import ENVS, Release, check_env, check_model, read_release, write_release
from mlgate.gitops.pr import Proposal, PullRequest, Refused, open_pr
from mlgate.gitops.promote import (
    check_report,
    description,
    evidence_trailers,
    previously_in,
    version_trailers,
)
from mlgate.gitops.quarantine import read_quarantine
from mlgate.gitops.repo import GitopsRepo
from mlgate.gitops.status import read_status
from mlgate.records.builds import pinned_image
from mlgate.records.trailers import ChangeKind, make_trailers
from mlgate.training.versions import version_number


def _running(settings: PlatformSettings, model: str, env: str) -> Release:
    """The env's release as main has it (a shadow needs a stable version to run beside)."""
    ms = read_status(settings).model(model)
    es = ms.envs.get(env) if ms else None
    if es is None:
        raise Refused(f"{model} has no stable version in {env}: a shadow needs one to run beside")
    return es.release(model)


def _unchanged(root: Path, planned: Release) -> Release:
    """Under the lock: main still holds the release the subject and trailers were planned from."""
    current = read_release(root, planned.model, planned.env)
    if current != planned:
        raise Refused(
            f"{planned.env} of {planned.model} changed meanwhile; look at `mlgate status`"
        )
    return planned


def start(
    settings: PlatformSettings,
    model: str,
    env: str,
    version: str,
    report: Path | None,
    *,
    image: str | None = None,
) -> PullRequest:
    """Open the PR that runs `version` as the shadow of `env`, or refuse (nothing written)."""
    check_model(model)
    check_env(env)
    version = version_number(settings, model, version)
    known = read_status(settings).model(model)
    if known and any(q.version == version for q in known.quarantined):
        raise Refused(f"{model} version {version} is quarantined: it cannot run as a shadow")
    planned = _running(settings, model, env)
    if version == planned.stable_version:
        raise BadInputError(f"{model} {version} already runs stable in {env}")
    if version == planned.canary_version:
        raise Refused(
            f"{model} {version} runs as the {env} canary: a version is never shadow and canary "
            "at once"
        )
    if planned.shadow_version is not None:
        raise Refused(
            f"a shadow ({model} {planned.shadow_version}) already runs in {env}: "
            "`mlgate shadow stop` it first"
        )
    # The evidence a promotion into `env` needs (no override: a shadow is never break-glass).
    rep = check_report(settings, report, model, version, env, None)
    assert rep is not None
    lineage = mlflow_lineage(settings, model, version)
    image_ref = pinned_image(settings, model, version, image, lineage.tags)
    repo = GitopsRepo.locate(settings)

    def edit(root: Path) -> None:
        current = _unchanged(root, planned)
        if any(q.version == version for q in read_quarantine(root, model)):
            raise Refused(f"{model} version {version} is quarantined: it cannot run as a shadow")
        idx = ENVS.index(env)
        if idx > 0 and not previously_in(root, repo.main, model, ENVS[idx - 1], version):
            raise Refused(
                f"{model} {version} has not been promoted to {ENVS[idx - 1]}: a shadow in {env} "
                "rests on the same order as a promotion there"
            )
        write_release(
            root, current.model_copy(update={"shadow_version": version, "shadow_image": image_ref})
        )

    subject = f"Shadow {model} {version} in {env} beside stable {planned.stable_version}"
    return open_pr(
        settings,
        Proposal(
            model=model,
            env=env,
            change=ChangeKind.SHADOW_START,
            version=version,
            branch=f"shadow/{model}-{version}-{env}-start",
            subject=subject,
            body=[f"Gate report: {rep.path}"],
            trailers=make_trailers(
                model=model,
                model_version=version,
                environment=env,
                change=ChangeKind.SHADOW_START,
                **version_trailers(lineage, image_ref),
                **evidence_trailers(rep, None),
            ),
            description=description(rep, None, f"## {subject}"),
        ),
        edit,
    )


def stop(settings: PlatformSettings, model: str, env: str) -> PullRequest:
    """Open the PR that removes the shadow of `env` (nothing an applicant sees changes)."""
    check_model(model)
    check_env(env)
    planned = _running(settings, model, env)
    version = planned.shadow_version
    if version is None:
        raise Refused(f"no shadow runs for {model} in {env}")

    def edit(root: Path) -> None:
        current = _unchanged(root, planned)
        write_release(
            root, current.model_copy(update={"shadow_version": None, "shadow_image": None})
        )

    subject = f"Stop shadow {model} {version} in {env}"
    return open_pr(
        settings,
        Proposal(
            model=model,
            env=env,
            change=ChangeKind.SHADOW_STOP,
            version=version,
            branch=f"shadow/{model}-{version}-{env}-stop",
            subject=subject,
            trailers=make_trailers(
                model=model, model_version=version, environment=env, change=ChangeKind.SHADOW_STOP
            ),
            description=f"## {subject}\n",
        ),
        edit,
    )
