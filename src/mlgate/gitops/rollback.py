"""`mlgate rollback`: `git revert` of the latest change to one environment.

Not a hand edit: the revert restores exactly what ran before that change (the environment's
rendered manifests equal their state just before it; other environments are untouched). In the
same commit it quarantines exactly the versions the revert stops running there
(`quarantine.quarantined_by_revert`, the rule `pr merge` checks again): undoing a canary start
or a stable promotion quarantines that version; undoing a weight step or a canary promotion
quarantines nothing, because the version still runs (as the canary). Rolling back a restoring
change (a rollback, a canary abort, a shadow stop) is refused: bring a version back by
promoting it, reviewed (an aborted version is quarantined; freeing it is its own review).
"""

from __future__ import annotations

from pathlib import Path

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError
from mlgate.gitops.history import log
from mlgate.gitops.overlay import check_env, check_model, overlay_dir, read_release
from mlgate.gitops.pr import Proposal, PullRequest, Refused, open_pr, release_at
from mlgate.gitops.quarantine import add_quarantine, quarantined_by_revert
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
                f"the latest change to {model} in {env} ({target.sha[:10]}) was not made by "
                "mlgate (no lineage trailers): revert it by hand, reviewed"
            )
        if target.lineage.change in RESTORING:
            raise Refused(
                f"the latest change to {model} in {env} is itself a {target.lineage.change} "
                f"({target.sha[:10]}); to bring a version back, promote it (reviewed)"
            )
        # What runs now and what the revert puts back: the rule decides the quarantine.
        restored = release_at(repo, f"{target.sha}^", model, env)
        gone = quarantined_by_revert(release_at(repo, repo.main, model, env), restored)
    if len(gone) > 1:  # no single mlgate change starts two versions
        raise Refused(
            f"reverting {target.sha[:10]} would stop {', '.join(gone)} in {env} at once: "
            "revert it by hand, reviewed"
        )
    version = target.lineage.model_version
    why = check_text(reason.strip(), "--reason") if reason.strip() else "rolled back"

    def edit(root: Path) -> None:
        head = log(None, root, repo.main, [overlay_dir(model, env)], max_count=1)
        if not head or head[0].sha != target.sha:
            raise Refused(f"{env} of {model} changed meanwhile; look at `mlgate status`")
        run_git(["revert", "--no-commit", target.sha], root)
        if read_release(root, model, env) != restored:
            raise Refused(f"reverting {target.sha[:10]} does not restore the release before it")
        for v in gone:
            add_quarantine(root, model, v, f"rollback of {env} ({target.sha[:10]}): {why}", env)

    subject = f'Roll back {model} in {env}: revert "{target.subject}"'
    kept = "" if gone else " Nothing is quarantined: every version it ran still runs."
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
                quarantined=gone[0] if gone else None,
            ),
            description=(
                f"## {subject}\n\nThis reverts commit {target.sha}.{kept}\n\nReason: {why}\n"
            ),
        ),
        edit,
    )
