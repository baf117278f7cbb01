"""`mlgate init`: the values a cluster needs (`gitops.platform_values`: repository URL,
registry, platform image), written into the GitOps repository as one reviewed change.

Like every change, a pull request: branch `init/platform-<hash of the values>`, Change
`platform-init`, which a listed reviewer merges (`mlgate pr merge`, or GitHub's review), and
which may change only the files `platform_values.INIT_FILES` names. Re-running with the same
values opens nothing new: an open pull request for them is returned, and once merged there is
nothing left to change (None).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError
from mlgate.gitops.platform_values import (
    INIT_FILES,
    InitValues,
    apply_values,
    resolve_values,
    values_lines,
)
from mlgate.gitops.pr import Proposal, PullRequest, open_pr, show_pr
from mlgate.gitops.prhost import host_for
from mlgate.gitops.repo import GitopsRepo
from mlgate.records.trailers import PLATFORM_MODEL, ChangeKind, make_trailers

BRANCH_PREFIX = "init/platform-"
ENVIRONMENT = "platform"


class InitResult(BaseModel):
    """The pull request that writes the values (None: main holds them already); `opened` is
    False when one for the same values was open before."""

    values: InitValues
    pull_request: PullRequest | None
    opened: bool


def init(
    settings: PlatformSettings,
    repo_url: str,
    registry: str,
    platform_image: str | None = None,
) -> InitResult:
    """Open the pull request that writes the values, unless one is open for them or main
    already holds them."""
    values = resolve_values(settings, repo_url, registry, platform_image)
    branch = BRANCH_PREFIX + values.key()
    repo = GitopsRepo.open(settings)
    with repo.session():
        open_branches = host_for(settings).list(repo)
    if branch in open_branches:  # the same values already proposed: nothing new
        return InitResult(values=values, pull_request=show_pr(settings, branch), opened=False)
    with repo.session():  # a dry run on main's checkout (the session restores it)
        if not apply_values(repo.work, values):
            return InitResult(values=values, pull_request=None, opened=False)
    subject = f"Init the platform: repository, registry and platform image ({values.digest[:19]})"
    proposal = Proposal(
        model=PLATFORM_MODEL,
        env=ENVIRONMENT,
        change=ChangeKind.PLATFORM_INIT,
        version=None,
        branch=branch,
        subject=subject,
        body=values_lines(values),
        trailers=make_trailers(
            model=PLATFORM_MODEL,
            environment=ENVIRONMENT,
            change=ChangeKind.PLATFORM_INIT,
            image=values.platform_image,
            image_digest=values.digest,
        ),
        description=(
            f"## {subject}\n\n- Argo CD repoURL / sourceRepos, canary analysis git remote: "
            f"`{values.repo_url}`\n- registry: `{values.registry}`\n- platform image: "
            f"`{values.platform_image}`\n"
        ),
        paths=list(INIT_FILES),
    )
    pr = open_pr(settings, proposal, lambda root: _apply_or_fail(root, values))
    return InitResult(values=values, pull_request=pr, opened=True)


def _apply_or_fail(root: Path, values: InitValues) -> None:
    if not apply_values(root, values):
        raise BadInputError("the GitOps repository already holds these values")
