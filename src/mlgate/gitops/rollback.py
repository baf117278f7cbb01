"""`mlgate rollback`: `git revert` of the latest change to one environment.

Not a hand edit: the revert restores exactly what ran before that change (the environment's
rendered manifests equal their state just before it; other environments are untouched), and
the reverted version is quarantined in the same commit so automation will not bring it back.
Works for stable promotions and canary steps alike. Rolling back a restoring change (a
rollback or a canary abort) is refused: bring a version back by promoting it, reviewed.
"""

from __future__ import annotations

from pathlib import Path

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError
from mlgate.gitops.history import log
from mlgate.gitops.overlay import check_env, check_model, overlay_dir
from mlgate.gitops.pr import Proposal, PullRequest, Refused, open_pr
from mlgate.gitops.quarantine import add_quarantine
from mlgate.gitops.repo import GitopsRepo, run_git
from mlgate.records.trailers import RESTORING, ChangeKind, make_trailers
from mlgate.records.values import check_text


def rollback(settings: PlatformSettings, model: str, env: str, reason: str = "") -> PullRequest:
    check_model(model)
    check_env(env)
    repo = GitopsRepo.open(settings)
    with repo.session():
        changes = log(None, repo.work, repo.main, [overlay_dir(model, env)], max_count=1)
    if not changes:
        raise BadInputError(f"{model} has never been deployed in {env}: nothing to roll back")
    target = changes[0]
    if target.lineage is None:
        raise Refused(
            f"the latest change to {model} in {env} ({target.sha[:10]}) was not made by mlgate "
            "(no lineage trailers): revert it by hand, reviewed"
        )
    if target.lineage.change in RESTORING:
        raise Refused(
            f"the latest change to {model} in {env} is itself a {target.lineage.change} "
            f"({target.sha[:10]}); to bring a version back, promote it (reviewed)"
        )
    version = target.lineage.model_version
    why = check_text(reason.strip(), "--reason") if reason.strip() else "rolled back"

    def edit(root: Path) -> None:
        head = log(None, root, repo.main, [overlay_dir(model, env)], max_count=1)
        if not head or head[0].sha != target.sha:
            raise Refused(f"{env} of {model} changed meanwhile; look at `mlgate status`")
        run_git(["revert", "--no-commit", target.sha], root)
        if version:
            add_quarantine(
                root, model, version, f"rollback of {env} ({target.sha[:10]}): {why}", env
            )

    subject = f'Roll back {model} in {env}: revert "{target.subject}"'
    return open_pr(
        settings,
        Proposal(
            model=model,
            env=env,
            change=ChangeKind.ROLLBACK,
            version=version,
            branch=f"rollback/{model}-{env}-{target.sha[:10]}",
            subject=subject,
            body=[f"This reverts commit {target.sha}.", f"Reason given: {why}"],
            trailers=make_trailers(
                model=model,
                model_version=version,
                environment=env,
                change=ChangeKind.ROLLBACK,
                reverts=target.sha,
                quarantined=version,
            ),
            description=f"## {subject}\n\nThis reverts commit {target.sha}.\n\nReason: {why}\n",
        ),
        edit,
    )
