"""Where pull requests live: one interface, two hosts, chosen by settings.

`pr.py` decides (four eyes, stale base, quarantine, evidence); a host only carries the PR:
- `LocalHost` (the embedded default): a PR is a branch on the GitOps remote with its
  description as a git note; approvals are the names given to `mlgate pr merge --approver`;
  the merge replays the one commit onto main with `Approved-by:` trailers and pushes.
- `GitHubHost` (`gitops.github_repo`): the PR is GitHub's; approvals are only the reviews
  GitHub reports on the PR's head commit (a name typed on the command line is refused); the
  merge is GitHub's merge API pinned to that head (branch protection and required checks
  apply), its squash commit carrying the same trailers.
Both keep the branch in the git remote, so listing and reading a PR's commit is git's job.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from typing import Literal

from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError, ExternalServiceError, GateFailed
from mlgate.gitops import github
from mlgate.gitops.repo import NOTES_REF, GitError, GitopsRepo


class Refused(GateFailed):
    """A change the rules do not allow (order, gates, quarantine, approvals, stale base), or
    one the host would not take (main moved, GitHub's protection): nothing was merged."""


class Approval(BaseModel):
    """One approval as the host knows it: a reviewer's name (or GitHub login), and where it
    came from."""

    name: str
    via: Literal["approver", "github"]


class HostPull(BaseModel):
    """What the host adds to the PR git shows: its number and address on GitHub."""

    number: int | None = None
    url: str | None = None


class PrHost(ABC):
    """The acts a PR host performs; the rules are pr.py's, never a host's."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings

    @abstractmethod
    def open(
        self,
        repo: GitopsRepo,
        branch: str,
        sha: str,
        title: str,
        description: str,
        lineage: builtins.list[tuple[str, str]],
    ) -> HostPull:
        """Publish commit `sha` as PR `branch`; on failure leave no ref behind."""

    def list(self, repo: GitopsRepo) -> builtins.list[str]:
        """Branches of open PRs (both hosts keep them in the git remote)."""
        return repo.remote_branches()

    def show(self, repo: GitopsRepo, branch: str) -> HostPull:
        return HostPull()

    @abstractmethod
    def reviews(
        self, repo: GitopsRepo, branch: str, head_sha: str, approvers: builtins.list[str]
    ) -> builtins.list[Approval]:
        """The approvals of the PR's head commit `head_sha`."""

    @abstractmethod
    def merge(
        self, repo: GitopsRepo, branch: str, head_sha: str, message: str, description: str
    ) -> str:
        """Put the PR's one change on main with `message`; returns the commit on main."""

    @abstractmethod
    def close(self, repo: GitopsRepo, branch: str) -> None:
        """Close without merging: the branch is gone, main untouched."""

    def discard(self, repo: GitopsRepo, branch: str) -> None:
        """Undo `open` after a later step failed."""
        repo.git("push", "-q", "origin", "--delete", branch, check=False)

    def comment(self, branch: str, marker: str, body: str, author: str) -> HostPull:
        """Keep one comment starting with `marker` on the PR up to date (the CI check's
        report): only a host with a conversation has one."""
        raise BadInputError(
            f"pull request {branch}: comments need gitops.github_repo (GitHub); the embedded "
            "default's PR description is the gate report"
        )


class LocalHost(PrHost):
    def open(
        self,
        repo: GitopsRepo,
        branch: str,
        sha: str,
        title: str,
        description: str,
        lineage: builtins.list[tuple[str, str]],
    ) -> HostPull:
        repo.git("push", "-q", "origin", f"{sha}:refs/heads/{branch}")
        return HostPull()

    def reviews(
        self, repo: GitopsRepo, branch: str, head_sha: str, approvers: builtins.list[str]
    ) -> builtins.list[Approval]:
        return [Approval(name=a.strip(), via="approver") for a in approvers if a.strip()]

    def merge(
        self, repo: GitopsRepo, branch: str, head_sha: str, message: str, description: str
    ) -> str:
        try:
            repo.git("cherry-pick", "--allow-empty", head_sha)
        except GitError as exc:
            repo.git("cherry-pick", "--abort", check=False)
            raise Refused(
                f"pull request {branch} does not apply to {repo.branch}: {exc.message}. "
                "Re-run the gates against the new champion and open a new pull request."
            ) from exc
        repo.git("commit", "-q", "--amend", "--no-edit", "-F", "-", input=message)
        merged = repo.rev("HEAD")
        if description:
            repo.git(
                "notes", f"--ref={NOTES_REF}", "add", "-f", "-F", "-", merged, input=description
            )
        try:
            repo.git("push", "-q", "origin", f"HEAD:refs/heads/{repo.branch}")
        except GitError as exc:
            raise Refused(
                f"{repo.branch} moved while merging {branch}; nothing was merged, try again"
            ) from exc
        repo.git("push", "-q", "origin", NOTES_REF, check=False)
        repo.git("push", "-q", "origin", "--delete", branch)
        return merged

    def close(self, repo: GitopsRepo, branch: str) -> None:
        repo.git("push", "-q", "origin", "--delete", branch)


class GitHubHost(PrHost):
    def open(
        self,
        repo: GitopsRepo,
        branch: str,
        sha: str,
        title: str,
        description: str,
        lineage: builtins.list[tuple[str, str]],
    ) -> HostPull:
        # git only carries the commit object; the REST API creates the branch ref and the PR.
        staging = f"{github.STAGING_PREFIX}{branch}"
        repo.git("push", "-q", "origin", f"{sha}:{staging}")
        try:
            number, url = github.open_pull_request(
                self.settings, branch, sha, title, description, lineage
            )
        except BaseException:
            repo.git("push", "-q", "origin", "--delete", branch, check=False)
            raise
        finally:
            repo.git("push", "-q", "origin", "--delete", staging, check=False)
        return HostPull(number=number, url=url)

    def _pull(self, branch: str) -> github.OpenPull:
        found = github.find_pull(self.settings, branch)
        if found is None:
            raise BadInputError(f"no open pull request for {branch!r} on GitHub")
        return found

    def show(self, repo: GitopsRepo, branch: str) -> HostPull:
        found = self._pull(branch)
        return HostPull(number=found.number, url=found.url)

    def comment(self, branch: str, marker: str, body: str, author: str) -> HostPull:
        found = self._pull(branch)
        github.upsert_comment(self.settings, found.number, marker, body, author)
        return HostPull(number=found.number, url=found.url)

    def reviews(
        self, repo: GitopsRepo, branch: str, head_sha: str, approvers: builtins.list[str]
    ) -> builtins.list[Approval]:
        if any(a.strip() for a in approvers):
            raise BadInputError(
                f"--approver {', '.join(approvers)}: with gitops.github_repo the approvals are "
                "the pull request's reviews on GitHub, never names given here; nothing was merged"
            )
        found = self._pull(branch)
        if found.head_sha != head_sha:
            raise Refused(
                f"pull request {branch}: GitHub's head is {found.head_sha[:10]}, git's is "
                f"{head_sha[:10]}; nothing was merged, look at the pull request"
            )
        latest: dict[str, github.Review] = {}
        for r in github.reviews(self.settings, found.number):
            if r.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                latest[r.login.lower()] = r
        # An approval of an older commit approved other content: it does not count.
        return [
            Approval(name=r.login, via="github")
            for r in latest.values()
            if r.state == "APPROVED" and r.commit_id == head_sha
        ]

    def merge(
        self, repo: GitopsRepo, branch: str, head_sha: str, message: str, description: str
    ) -> str:
        found = self._pull(branch)
        title, _, rest = message.partition("\n")
        try:
            merged = github.merge_pull(
                self.settings, found.number, head_sha, title, rest.strip("\n") + "\n"
            )
        except ExternalServiceError as exc:
            raise Refused(
                f"GitHub refused to merge pull request #{found.number} ({branch}): "
                f"{exc.message}; nothing was merged"
            ) from exc
        github.delete_branch(self.settings, branch)
        repo.git("fetch", "-q", "--prune", "origin", "+refs/heads/*:refs/remotes/origin/*")
        return merged

    def close(self, repo: GitopsRepo, branch: str) -> None:
        found = github.find_pull(self.settings, branch)
        if found is not None:
            github.close_pull(self.settings, found.number)
        github.delete_branch(self.settings, branch)


def host_for(settings: PlatformSettings) -> PrHost:
    """The host the settings name: GitHub with `gitops.github_repo`, else the local remote."""
    return GitHubHost(settings) if settings.gitops.github_repo else LocalHost(settings)
