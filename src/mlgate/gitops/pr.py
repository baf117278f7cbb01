"""Pull requests: a change proposed on a branch, merged only with approvals.

Locally (the embedded default) a PR is a branch on the GitOps remote, its description a git
note (`refs/notes/mlgate-pr`); `mlgate pr list|show|merge` stands in for GitHub's UI. With
`gitops.github_repo` set, opening a PR also creates it on GitHub (`gitops.github`), and the
approvers are read from its reviews.

Merge rules (the bank's four-eyes principle):
- every merge names at least one approver;
- stage and prod: no approver may be the author of the change (segregation of duties);
- a change made with `--override-gates` needs two approvers, neither the author;
- restoring changes (`canary abort`, `rollback`) are break-glass: one approver, who may be the
  author, because putting back a reviewed earlier state must never wait;
- a PR whose base is stale (main changed the same environment since it was opened) is refused:
  its gates compared against a champion that no longer runs there;
- the merge is a rebase of the one PR commit onto main keeping its trailers, with
  `Approved-by:` trailers added, so history stays linear and every change revertible alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError, GateFailed
from mlgate.gitops.evidence import verify_change_evidence
from mlgate.gitops.history import Change, log
from mlgate.gitops.overlay import model_dir, overlay_dir
from mlgate.gitops.quarantine import read_quarantine
from mlgate.gitops.repo import NOTES_REF, GitError, GitopsRepo
from mlgate.records.trailers import RESTORING, Trailers, commit_message, with_approvals

PR_PREFIXES = ("promote", "canary", "rollback")


class Refused(GateFailed):
    """A change the rules do not allow (order, gates, quarantine, approvals, stale base)."""


class Proposal(BaseModel):
    """A change to one model's overlays, before it becomes a commit on a branch."""

    model: str
    env: str
    change: str
    version: str | None
    branch: str
    subject: str
    body: list[str] = Field(default_factory=list)
    trailers: Trailers
    description: str = ""


class PullRequest(BaseModel):
    branch: str
    sha: str
    base: str
    author: str
    author_email: str
    subject: str
    model: str | None
    env: str | None
    change: str | None
    version: str | None
    overridden: bool
    trailers: dict[str, list[str]]
    description: str = ""
    diff: str | None = None
    github_number: int | None = None
    github_url: str | None = None


class MergeResult(BaseModel):
    branch: str
    commit: str
    model: str
    env: str
    change: str
    version: str | None
    approvers: list[str]


def open_pr(
    settings: PlatformSettings, proposal: Proposal, edit: Callable[[Path], None]
) -> PullRequest:
    """Branch from main, apply `edit` to the checkout, commit, push; nothing left on failure."""
    repo = GitopsRepo.open(settings)
    with repo.session():
        if proposal.branch in repo.remote_branches():
            raise BadInputError(
                f"pull request {proposal.branch} is already open: merge it or close it first"
            )
        base = repo.rev(repo.main)
        repo.git("checkout", "-q", "-B", proposal.branch, base)
        on_github = bool(settings.gitops.github_repo)
        # On GitHub the REST API creates the branch ref: git only carries the commit object.
        target = (
            f"refs/mlgate/staging/{proposal.branch}"
            if on_github
            else f"refs/heads/{proposal.branch}"
        )
        pushed = False
        github_pr: tuple[int, str] | None = None
        try:
            edit(repo.work)
            repo.git("add", "-A", "--", model_dir(proposal.model))
            if not repo.git("diff", "--cached", "--name-only").strip():
                raise BadInputError(
                    f"{overlay_dir(proposal.model, proposal.env)}: nothing to change "
                    f"({proposal.subject})"
                )
            msg = commit_message(proposal.subject, proposal.trailers, proposal.body)
            repo.git("commit", "-q", "-F", "-", input=msg)
            sha = repo.rev("HEAD")
            repo.git("push", "-q", "origin", f"HEAD:{target}")
            pushed = True
            if on_github:
                from mlgate.gitops import github

                github_pr = github.open_pull_request(settings, proposal, sha)
            if proposal.description:
                repo.git(
                    "notes",
                    f"--ref={NOTES_REF}",
                    "add",
                    "-f",
                    "-F",
                    "-",
                    sha,
                    input=proposal.description,
                )
                repo.git("push", "-q", "origin", NOTES_REF)
        except BaseException:
            if pushed:
                repo.git("push", "-q", "origin", "--delete", target, check=False)
                if on_github:
                    repo.git("push", "-q", "origin", "--delete", proposal.branch, check=False)
            raise
        finally:
            repo.git("checkout", "-q", "--detach", repo.main)
            repo.git("branch", "-q", "-D", proposal.branch, check=False)
            if pushed and on_github:
                repo.git("push", "-q", "origin", "--delete", target, check=False)
        repo.git("fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*")
        pr = _pr(repo, proposal.branch)
    if github_pr is not None:
        pr.github_number, pr.github_url = github_pr
    return pr


def _pr(repo: GitopsRepo, branch: str, with_diff: bool = False) -> PullRequest:
    ref = f"origin/{branch}"
    commits = log(None, repo.work, f"{repo.main}..{ref}")
    if len(commits) != 1:
        raise BadInputError(
            f"pull request {branch}: expected one commit ahead of {repo.branch}, found {len(commits)}"
        )
    c: Change = commits[0]
    base = repo.git("merge-base", repo.main, ref).strip()
    note = repo.git("notes", f"--ref={NOTES_REF}", "show", c.sha, check=False)
    return PullRequest(
        branch=branch,
        sha=c.sha,
        base=base,
        author=c.author,
        author_email=c.author_email,
        subject=c.subject,
        model=c.get("Model"),
        env=c.get("Environment"),
        change=c.get("Change"),
        version=c.get("Model-Version"),
        overridden=bool(c.get("Override-Reason")),
        trailers=c.trailers,
        description=note,
        diff=repo.git("show", "--format=", "--stat", "-p", c.sha) if with_diff else None,
    )


def list_prs(settings: PlatformSettings) -> list[PullRequest]:
    repo = GitopsRepo.open(settings)
    with repo.session():
        branches = [b for b in repo.remote_branches() if b.split("/", 1)[0] in PR_PREFIXES]
        return [_pr(repo, b) for b in sorted(branches)]


def open_pr_for(settings: PlatformSettings, model: str, env: str) -> str:
    """The branch of the one open pull request that changes MODEL in ENV, so a reviewer can
    name the change by what it touches (`pr merge --model m --env prod`) instead of copying a
    branch name. None open, or several, is bad input naming them."""
    branches = [p.branch for p in list_prs(settings) if (p.model, p.env) == (model, env)]
    if len(branches) != 1:
        found = ", ".join(branches) if branches else "none"
        raise BadInputError(
            f"expected one open pull request for {model} in {env}, found {found}: "
            "name the branch (see `mlgate pr list`)"
        )
    return branches[0]


def show_pr(settings: PlatformSettings, branch: str) -> PullRequest:
    repo = GitopsRepo.open(settings)
    with repo.session():
        if branch not in repo.remote_branches():
            raise BadInputError(f"no open pull request {branch!r} (see `mlgate pr list`)")
        return _pr(repo, branch, with_diff=True)


def close_pr(settings: PlatformSettings, branch: str) -> PullRequest:
    """Close without merging (e.g. a stale promotion): the branch is deleted, main untouched."""
    repo = GitopsRepo.open(settings)
    with repo.session():
        if branch not in repo.remote_branches():
            raise BadInputError(f"no open pull request {branch!r} (see `mlgate pr list`)")
        pr = _pr(repo, branch)
        repo.git("push", "-q", "origin", "--delete", branch)
    return pr


def check_approvals(pr: PullRequest, approvers: list[str]) -> list[str]:
    """Apply the four-eyes rules; returns the distinct approvers or raises Refused."""
    distinct: list[str] = []
    for a in approvers:
        a = a.strip()
        if a and a.lower() not in (x.lower() for x in distinct):
            distinct.append(a)
    if not distinct:
        raise Refused(f"pull request {pr.branch}: merging needs at least one --approver")
    if pr.change in RESTORING:
        return distinct
    author_ids = {pr.author.lower(), pr.author_email.lower()}
    if pr.env in ("stage", "prod") and any(a.lower() in author_ids for a in distinct):
        raise Refused(
            f"pull request {pr.branch}: {pr.author} wrote this {pr.env} change and cannot "
            "approve it (segregation of duties): another person must approve"
        )
    if pr.overridden:
        others = [a for a in distinct if a.lower() not in author_ids]
        if len(others) < 2:
            raise Refused(
                f"pull request {pr.branch}: gates were overridden; merging needs two approvers "
                f"other than the author, got {len(others)}"
            )
    return distinct


def merge_pr(settings: PlatformSettings, branch: str, approvers: list[str]) -> MergeResult:
    """Merge a PR onto main under the rules above; refused merges change nothing."""
    repo = GitopsRepo.open(settings)
    if settings.gitops.github_repo:
        from mlgate.gitops import github

        approvers = [*approvers, *github.approvers_for(settings, branch)]
    with repo.session():
        if branch not in repo.remote_branches():
            raise BadInputError(f"no open pull request {branch!r} (see `mlgate pr list`)")
        pr = _pr(repo, branch)
        if not (pr.model and pr.env and pr.change):
            raise BadInputError(
                f"pull request {branch}: commit lacks Model/Environment/Change trailers"
            )
        distinct = check_approvals(pr, approvers)
        newer = log(None, repo.work, f"{pr.base}..{repo.main}", [overlay_dir(pr.model, pr.env)])
        if newer:
            stable = _stable_on_main(repo, pr.model, pr.env)
            raise Refused(
                f"pull request {branch} is stale: {pr.env} changed on {repo.branch} since it was "
                f"opened ({newer[0].sha[:10]} {newer[0].subject!r}); the champion there is now "
                f"{stable or 'nothing'}. Re-run the gates against the new champion and open a "
                "new pull request."
            )
        if pr.change not in RESTORING and pr.version:
            quarantined = {q.version for q in read_quarantine(repo.work, pr.model)}
            if pr.version in quarantined:
                raise Refused(
                    f"pull request {branch}: version {pr.version} of {pr.model} is quarantined"
                )
        # The evidence the commit names, verified again now (a report tampered with after the
        # PR was opened, or a policy changed since, stops the merge): the same check as promote.
        verify_change_evidence(
            settings,
            change=pr.change,
            model=pr.model,
            version=pr.version,
            env=pr.env,
            gate_report=next(iter(pr.trailers.get("gate-report", [])), None),
            overridden=pr.overridden,
        )
        # Checked before anything moves: an approver name is a value like any other trailer's.
        original = repo.git("log", "-1", "--format=%B", pr.sha).rstrip("\n")
        msg = with_approvals(original, distinct, f"pull request {branch}", "--approver")
        try:
            repo.git("cherry-pick", "--allow-empty", pr.sha)
        except GitError as exc:
            repo.git("cherry-pick", "--abort", check=False)
            raise Refused(
                f"pull request {branch} does not apply to {repo.branch}: {exc.message}. "
                "Re-run the gates against the new champion and open a new pull request."
            ) from exc
        repo.git("commit", "-q", "--amend", "--no-edit", "-F", "-", input=msg)
        merged = repo.rev("HEAD")
        if pr.description:
            repo.git(
                "notes", f"--ref={NOTES_REF}", "add", "-f", "-F", "-", merged, input=pr.description
            )
        try:
            repo.git("push", "-q", "origin", f"HEAD:refs/heads/{repo.branch}")
        except GitError as exc:
            raise Refused(
                f"{repo.branch} moved while merging {branch}; nothing was merged, try again"
            ) from exc
        repo.git("push", "-q", "origin", NOTES_REF, check=False)
        repo.git("push", "-q", "origin", "--delete", branch)
    return MergeResult(
        branch=branch,
        commit=merged,
        model=pr.model,
        env=pr.env,
        change=pr.change,
        version=pr.version,
        approvers=distinct,
    )


def _stable_on_main(repo: GitopsRepo, model: str, env: str) -> str | None:
    from mlgate.gitops.overlay import RELEASE_FILE, parse_release

    path = f"{overlay_dir(model, env)}/{RELEASE_FILE}"
    text = repo.git("show", f"{repo.main}:{path}", check=False)
    return parse_release(text, path).stable_version if text.strip() else None
