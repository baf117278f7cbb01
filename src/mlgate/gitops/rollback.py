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
from mlgate.gitops.pr import RESTORING, Proposal, PullRequest, Refused, open_pr
from mlgate.gitops.quarantine import add_quarantine
from mlgate.gitops.repo import GitopsRepo, run_git


def rollback(settings: PlatformSettings, model: str, env: str, reason: str = "") -> PullRequest:
    check_model(model)
    check_env(env)
    repo = GitopsRepo.open(settings)
    with repo.session():
        changes = log(None, repo.work, repo.main, [overlay_dir(model, env)], max_count=1)
    if not changes:
        raise BadInputError(f"{model} has never been deployed in {env}: nothing to roll back")
    target = changes[0]
    if target.get("Change") in RESTORING:
        raise Refused(
            f"the latest change to {model} in {env} is itself a {target.get('Change')} "
            f"({target.sha[:10]}); to bring a version back, promote it (reviewed)"
        )
    version = target.get("Model-Version")
    why = reason.strip() or "rolled back"

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
            change="rollback",
            version=version,
            branch=f"rollback/{model}-{env}-{target.sha[:10]}",
            subject=subject,
            body=f"This reverts commit {target.sha}.\nReason: {why}",
            trailers=[
                ("Model", model),
                ("Model-Version", version or ""),
                ("Environment", env),
                ("Change", "rollback"),
                ("Reverts", target.sha),
                ("Quarantined", version or ""),
            ],
            description=f"## {subject}\n\nThis reverts commit {target.sha}.\n\nReason: {why}\n",
        ),
        edit,
    )
