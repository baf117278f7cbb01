"""Pull requests: a change proposed on a branch, merged only with real approvals.

Where a PR lives is the host's business (`prhost`: a branch + git note on the GitOps remote,
`mlgate pr list|show|merge` standing in for GitHub's UI; or GitHub through its REST API with
`gitops.github_repo`). The rules live here, the same for both hosts.

Merge rules (the bank's four-eyes principle):
- approvals come from the host: `--approver` names locally, only the PR's reviews on its head
  commit on GitHub; every approver must be on main's `reviewers.yaml` (`reviewers`);
- the author of the change never approves it;
- prod needs an approver with the role `model-risk`;
- a change made with `--override-gates` needs two approvers, neither the author;
- restoring changes (`canary abort`, `rollback`) need one listed approver other than the
  author, of any role, because putting back a reviewed earlier state must not wait for one;
- a PR whose base is stale (main changed the same environment since it was opened) is refused:
  its gates compared against a champion that no longer runs there;
- the merge puts the one PR commit onto main keeping its trailers, with `Approved-by:`
  trailers added, so history stays linear and every change revertible alone.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError
from mlgate.gitops.evidence import GateReport, verify_change_evidence, verify_shadow_phase
from mlgate.gitops.history import Change, log
from mlgate.gitops.overlay import (
    KUSTOMIZATION_FILE,
    RELEASE_FILE,
    SHADOW_COMPONENT,
    Release,
    model_dir,
    overlay_dir,
    parse_release,
)
from mlgate.gitops.platform_values import INIT_FILES, apply_values, values_from_message
from mlgate.gitops.prhost import Approval, Refused, host_for
from mlgate.gitops.quarantine import (
    QuarantineEntry,
    parse_quarantine,
    quarantine_path,
    quarantined_by_revert,
    read_quarantine,
)
from mlgate.gitops.repo import NOTES_REF, GitopsRepo
from mlgate.gitops.reviewers import REQUIRED_ROLE, Reviewer, Reviewers, read_reviewers
from mlgate.records.trailers import (
    RESTORING,
    SHADOW,
    ChangeKind,
    Trailers,
    commit_message,
    parse_message,
    with_approvals,
)

PR_PREFIXES = ("promote", "canary", "shadow", "rollback", "init")


__all__ = ["Refused"]  # defined with the PR hosts, raised by every act


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
    # What the change may touch when it is not one model's overlays (`mlgate init`).
    paths: list[str] = Field(default_factory=list)


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
        host = host_for(settings)
        opened = None
        try:
            edit(repo.work)
            repo.git("add", "-A", "--", *(proposal.paths or [model_dir(proposal.model)]))
            if not repo.git("diff", "--cached", "--name-only").strip():
                raise BadInputError(
                    f"{overlay_dir(proposal.model, proposal.env)}: nothing to change "
                    f"({proposal.subject})"
                )
            msg = commit_message(proposal.subject, proposal.trailers, proposal.body)
            repo.git("commit", "-q", "-F", "-", input=msg)
            sha = repo.rev("HEAD")
            opened = host.open(
                repo,
                proposal.branch,
                sha,
                proposal.subject,
                proposal.description,
                proposal.trailers.pairs(),
            )
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
            if opened is not None:
                host.discard(repo, proposal.branch)
            raise
        finally:
            repo.git("checkout", "-q", "--detach", repo.main)
            repo.git("branch", "-q", "-D", proposal.branch, check=False)
        repo.git("fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*")
        pr = _pr(repo, proposal.branch)
    pr.github_number, pr.github_url = opened.number, opened.url
    return pr


def _pr(repo: GitopsRepo, branch: str, with_diff: bool = False) -> PullRequest:
    ref = f"origin/{branch}"
    commits = log(None, repo.work, f"{repo.main}..{ref}")
    if len(commits) != 1:
        raise BadInputError(
            f"pull request {branch}: expected one commit ahead of {repo.branch}, found {len(commits)}"
        )
    c: Change = commits[0]
    lin = c.lineage  # None: a commit mlgate did not write (merge refuses it)
    base = repo.git("merge-base", repo.main, ref).strip()
    note = repo.git("notes", f"--ref={NOTES_REF}", "show", c.sha, check=False)
    return PullRequest(
        branch=branch,
        sha=c.sha,
        base=base,
        author=c.author,
        author_email=c.author_email,
        subject=c.subject,
        model=lin.model if lin else None,
        env=lin.environment if lin else None,
        change=lin.change if lin else None,
        version=lin.model_version if lin else None,
        overridden=bool(lin and lin.overridden),
        trailers=c.trailers,
        description=note,
        diff=repo.git("show", "--format=", "--stat", "-p", c.sha) if with_diff else None,
    )


def list_prs(settings: PlatformSettings) -> list[PullRequest]:
    repo = GitopsRepo.open(settings)
    with repo.session():
        branches = [b for b in host_for(settings).list(repo) if b.split("/", 1)[0] in PR_PREFIXES]
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
        pr = _pr(repo, branch, with_diff=True)
        hosted = host_for(settings).show(repo, branch)
    pr.github_number, pr.github_url = hosted.number, hosted.url
    return pr


def close_pr(settings: PlatformSettings, branch: str) -> PullRequest:
    """Close without merging (e.g. a stale promotion): the branch is deleted, main untouched."""
    repo = GitopsRepo.open(settings)
    with repo.session():
        if branch not in repo.remote_branches():
            raise BadInputError(f"no open pull request {branch!r} (see `mlgate pr list`)")
        pr = _pr(repo, branch)
        host_for(settings).close(repo, branch)
    return pr


def _reviewer(reviewers: Reviewers, approval: Approval) -> Reviewer | None:
    if approval.via == "github":
        return reviewers.by_login(approval.name)
    return reviewers.by_name(approval.name)


def check_approvals(pr: PullRequest, approvals: list[Approval], reviewers: Reviewers) -> list[str]:
    """The four-eyes rules; returns the distinct approvers (as the host names them) or raises.

    - every approver is on main's reviewers list (a name typed on the command line that is
      not is bad input, exit 2; a GitHub review by someone not on it does not count);
    - the author of the change never approves it (name, e-mail or GitHub login), whatever
      the environment or change;
    - a change into an environment with a required role (prod: model-risk) needs an approver
      holding it, unless it restores a reviewed earlier state (`canary abort`, `rollback`:
      one listed approver other than the author, so an incident never waits for a role);
    - gates overridden (break-glass): two approvers, neither the author.
    """
    author_ids = {pr.author.lower(), pr.author_email.lower()}
    chosen: list[tuple[str, Reviewer]] = []
    ignored: list[str] = []
    for a in approvals:
        who = _reviewer(reviewers, a)
        if who is None:
            if a.via == "approver":
                raise BadInputError(
                    f"--approver {a.name!r}: not on the reviewers list (reviewers.yaml on "
                    f"{pr.base[:10]}); nothing was merged"
                )
            ignored.append(a.name)
            continue
        if all(who.name != c.name for _, c in chosen):
            chosen.append((a.name, who))
    if not chosen:
        extra = f" (not on reviewers.yaml: {', '.join(ignored)})" if ignored else ""
        raise Refused(
            f"pull request {pr.branch}: merging needs at least one approval from a listed "
            f"reviewer{extra}"
        )
    selves = [name for name, who in chosen if who.ids() & author_ids or name.lower() in author_ids]
    if selves:
        raise Refused(
            f"pull request {pr.branch}: {pr.author} wrote this change and cannot approve it "
            f"({', '.join(selves)}): another person must approve (segregation of duties)"
        )
    role = REQUIRED_ROLE.get(pr.env or "")
    if role and pr.change not in RESTORING and not any(role in w.roles for _, w in chosen):
        got = "; ".join(f"{n} ({' '.join(w.roles)})" for n, w in chosen)
        raise Refused(
            f"pull request {pr.branch}: a change into {pr.env} needs an approver with the role "
            f"{role!r}, got {got}"
        )
    if pr.overridden and len(chosen) < 2:
        raise Refused(
            f"pull request {pr.branch}: gates were overridden; merging needs two approvers "
            f"other than the author, got {len(chosen)}"
        )
    return [name for name, _ in chosen]


def verify_pr_evidence(settings: PlatformSettings, pr: PullRequest) -> GateReport | None:
    """The evidence a PR's commit names, verified now: the one check `pr merge` and the CI check
    (`mlgate pr verify`) share, so the required status and the merge cannot disagree."""
    if not (pr.model and pr.env and pr.change):
        raise BadInputError(f"pull request {pr.branch}: commit lacks Model/Environment/Change")
    rep = verify_change_evidence(
        settings,
        change=pr.change,
        model=pr.model,
        version=pr.version,
        env=pr.env,
        gate_report=next(iter(pr.trailers.get("gate-report", [])), None),
        overridden=pr.overridden,
    )
    if pr.change == ChangeKind.PROMOTE and pr.trailers.get("canary-weight") and pr.version:
        verify_shadow_phase(
            settings,
            model=pr.model,
            version=pr.version,
            env=pr.env,
            shadow_report=next(iter(pr.trailers.get("shadow-report", [])), None),
            overridden=pr.overridden,
        )
    return rep


def release_at(repo: GitopsRepo, ref: str, model: str, env: str) -> Release | None:
    """The env's release.yaml at a commit of the checkout (None: no overlay there)."""
    path = f"{overlay_dir(model, env)}/{RELEASE_FILE}"
    text = repo.git("show", f"{ref}:{path}", check=False)
    return parse_release(text, f"{ref[:10]}:{path}") if text.strip() else None


def check_pr_diff(repo: GitopsRepo, pr: PullRequest) -> None:
    """The PR's diff does what its trailers say, or Refused naming the path/field.

    Trailers are text anyone with push access can write; the rules (approver roles, evidence)
    are chosen by them, so the diff must stay inside the environment they name and pin the
    version, image and weight they name. Otherwise a `Change: rollback` to dev could edit
    prod's release.yaml or reviewers.yaml with one approver and no evidence."""
    assert pr.model and pr.env and pr.change
    src = f"pull request {pr.branch}"
    lin = parse_message(repo.git("log", "-1", "--format=%B", pr.sha), f"commit {pr.sha[:10]}")
    if lin is None:
        raise BadInputError(f"{src}: commit lacks Model/Environment/Change trailers")
    allowed_dir = overlay_dir(pr.model, pr.env) + "/"
    allowed_files = {quarantine_path(pr.model)} if lin.change in RESTORING else set()
    if lin.change is ChangeKind.PLATFORM_INIT:  # only the files `mlgate init` writes
        allowed_dir, allowed_files = ", ".join(INIT_FILES), set(INIT_FILES)
    changed = repo.git("diff", "--name-only", "--no-renames", "-z", pr.base, pr.sha)
    for path in filter(None, changed.split("\0")):
        inside = path.startswith(allowed_dir) and lin.change is not ChangeKind.PLATFORM_INIT
        if not (inside or path in allowed_files):
            raise Refused(
                f"{src}: changes {path}, outside {allowed_dir} which its trailers "
                f"(Change: {lin.change}, Environment: {pr.env}) allow; nothing was merged"
            )
    if lin.change is ChangeKind.PLATFORM_INIT:
        _check_init_content(repo, pr, lin)
    if lin.change in SHADOW:
        _check_shadow_diff(repo, pr, [p for p in changed.split("\0") if p])
    head = release_at(repo, pr.sha, pr.model, pr.env)
    want = expected_release_fields(lin)
    for name, value in want.items():
        got = None if head is None else getattr(head, name)
        if got != value:
            raise Refused(
                f"{src}: {allowed_dir}{RELEASE_FILE} {name} is {got!r} but the commit's "
                f"trailers say {value!r}; nothing was merged"
            )
    if lin.change is ChangeKind.CANARY_SET_WEIGHT:  # the canary's weight moves, not stable
        base = release_at(repo, pr.base, pr.model, pr.env)
        kept = ("stable_version", "stable_image", "cutoff")
        if base is not None and any(
            head is None or getattr(head, f) != getattr(base, f) for f in kept
        ):
            raise Refused(
                f"{src}: {allowed_dir}{RELEASE_FILE} changes more than the canary's weight "
                "(stable version, image or cut-off); nothing was merged"
            )
    if lin.change is ChangeKind.ROLLBACK:
        named = lin.reverts or ""
        reverted = (  # a value, never an option to git
            repo.git("rev-parse", "--verify", "-q", f"{named}^{{commit}}", check=False).strip()
            if named and not named.startswith("-")
            else ""
        )
        if not reverted:
            raise Refused(f"{src}: a rollback must name the commit it reverts (Reverts:)")
        if repo.git("merge-base", reverted, pr.base, check=False).strip() != reverted:
            raise Refused(f"{src}: Reverts: {lin.reverts} is not a commit on {repo.branch}")
        before = release_at(repo, f"{reverted}^", pr.model, pr.env)
        if head != before:
            raise Refused(
                f"{src}: {allowed_dir}{RELEASE_FILE} is not the release before "
                f"{reverted[:10]} that a rollback restores; nothing was merged"
            )
    if lin.change in (ChangeKind.ROLLBACK, ChangeKind.CANARY_ABORT):
        _check_quarantine_diff(repo, pr, lin, head)


def _check_init_content(repo: GitopsRepo, pr: PullRequest, lin: Trailers) -> None:
    """An init PR's files are exactly what `init` writes for the values its commit states,
    applied to the base: within its files it can point nothing (a repoURL, an image override)
    anywhere else. The values themselves are what the approvers review."""
    src = f"pull request {pr.branch}"
    try:
        values = values_from_message(repo.git("log", "-1", "--format=%B", pr.sha))
    except BadInputError as exc:
        raise Refused(f"{src}: {exc.message}; nothing was merged") from None
    if lin.image != values.platform_image:
        raise Refused(f"{src}: Image: {lin.image!r} is not the platform image its body states")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel in INIT_FILES:
            text = repo.git("show", f"{pr.base}:{rel}", check=False)
            if text:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text(text, encoding="utf-8")
        apply_values(root, values)
        for rel in INIT_FILES:
            want = (root / rel).read_text(encoding="utf-8") if (root / rel).is_file() else ""
            if repo.git("show", f"{pr.sha}:{rel}", check=False) != want:
                raise Refused(
                    f"{src}: {rel} is not what init writes for the values the commit states "
                    f"(repository {values.repo_url}, registry {values.registry}, platform "
                    f"image {values.platform_image}); nothing was merged"
                )


def _check_quarantine_diff(
    repo: GitopsRepo, pr: PullRequest, lin: Trailers, head: Release | None
) -> None:
    """A rollback or abort quarantines exactly what `quarantined_by_revert` says of the
    environment's release before and after it (the versions that stop running there), names
    them in `Quarantined:`, and removes no entry: otherwise a restoring change, merged with one
    approver of any role, could quarantine a serving version or free a quarantined one."""
    assert pr.model and pr.env
    src, path = f"pull request {pr.branch}", quarantine_path(pr.model)
    base = release_at(repo, pr.base, pr.model, pr.env)
    expected = set(quarantined_by_revert(base, head))
    old = {q.version for q in _quarantine_at(repo, pr.base, path)}
    new = {q.version for q in _quarantine_at(repo, pr.sha, path)}
    if old - new:
        raise Refused(
            f"{src}: {path} loses {', '.join(sorted(old - new, key=int))}: removing a "
            "quarantine entry is its own reviewed change; nothing was merged"
        )
    added = new - old
    if added != expected - old or {lin.quarantined} - {None} != expected:
        want = ", ".join(sorted(expected, key=int)) or "nothing"
        got = ", ".join(sorted(added, key=int)) or "nothing"
        raise Refused(
            f"{src}: {path} adds {got} (Quarantined: {lin.quarantined or 'none'}) but the "
            f"versions that stop running in {pr.env} are {want}; nothing was merged"
        )


def _quarantine_at(repo: GitopsRepo, ref: str, path: str) -> list[QuarantineEntry]:
    return parse_quarantine(repo.git("show", f"{ref}:{path}", check=False), f"{ref[:10]}:{path}")


def _components(repo: GitopsRepo, ref: str, model: str, env: str) -> list[str]:
    path = f"{overlay_dir(model, env)}/{KUSTOMIZATION_FILE}"
    doc = yaml.safe_load(repo.git("show", f"{ref}:{path}", check=False) or "{}") or {}
    comps = doc.get("components") if isinstance(doc, dict) else None
    return [str(c) for c in comps] if isinstance(comps, list) else []


def _check_shadow_diff(repo: GitopsRepo, pr: PullRequest, changed: list[str]) -> None:
    """A shadow start or stop changes exactly the shadow: release.yaml's shadow fields and the
    shadow component in the kustomization, nothing that decides an applicant (stable, canary,
    weight, cut-off), no other file."""
    assert pr.model and pr.env
    src, where = f"pull request {pr.branch}", overlay_dir(pr.model, pr.env)
    allowed = {f"{where}/{RELEASE_FILE}", f"{where}/{KUSTOMIZATION_FILE}"}
    for path in changed:
        if path not in allowed:
            raise Refused(f"{src}: a shadow change may not touch {path}; nothing was merged")
    base = release_at(repo, pr.base, pr.model, pr.env)
    head = release_at(repo, pr.sha, pr.model, pr.env)
    if base is None or head is None:
        raise Refused(f"{src}: a shadow runs beside a stable version; {where} has none")
    shadowless = {"shadow_version": None, "shadow_image": None}
    if base.model_copy(update=shadowless) != head.model_copy(update=shadowless):
        raise Refused(
            f"{src}: {where}/{RELEASE_FILE} changes more than the shadow (stable, canary, "
            "weight or cut-off); nothing was merged"
        )
    before = [c for c in _components(repo, pr.base, pr.model, pr.env) if c != SHADOW_COMPONENT]
    after = _components(repo, pr.sha, pr.model, pr.env)
    if [c for c in after if c != SHADOW_COMPONENT] != before or (
        (SHADOW_COMPONENT in after) != head.has_shadow
    ):
        raise Refused(
            f"{src}: {where}/{KUSTOMIZATION_FILE} must change only the shadow component "
            f"({SHADOW_COMPONENT}, present exactly while a shadow runs); nothing was merged"
        )


def expected_release_fields(lin: Trailers) -> dict[str, object]:
    """The release.yaml fields each change kind pins, from its trailers: what `pr merge`
    requires of a pull request and `audit verify` (check `release`) of every change on main."""
    v, image, weight = lin.model_version, lin.image, lin.canary_weight
    if lin.change is ChangeKind.PROMOTE:
        if weight is not None:
            return {"canary_version": v, "canary_image": image, "canary_weight": weight}
        return {"stable_version": v, "stable_image": image, "canary_version": None}
    if lin.change is ChangeKind.CANARY_SET_WEIGHT:
        return {"canary_version": v, "canary_weight": weight}
    if lin.change is ChangeKind.CANARY_PROMOTE:
        return {"stable_version": v, "canary_version": None}
    if lin.change is ChangeKind.CANARY_ABORT:
        return {"canary_version": None}
    if lin.change is ChangeKind.SHADOW_START:
        return {"shadow_version": v, "shadow_image": image}
    if lin.change is ChangeKind.SHADOW_STOP:
        return {"shadow_version": None}
    return {}


def check_pr_commit(repo: GitopsRepo, pr: PullRequest) -> None:
    """The checks of a PR's commit that need no approval (its trailers, no commit-carried
    approval, the diff doing what the trailers say): one function, so the merge and the
    required check (`pr verify`) cannot disagree on them, whether or not the change kind
    carries a gate report."""
    branch = pr.branch
    if not (pr.model and pr.env and pr.change):
        raise BadInputError(
            f"pull request {branch}: commit lacks Model/Environment/Change trailers"
        )
    if pr.trailers.get("approved-by"):
        raise Refused(
            f"pull request {branch}: its commit already carries Approved-by: "
            f"{', '.join(pr.trailers['approved-by'])}; approvals come from the merge, "
            "never from the commit (open the change again with mlgate)"
        )
    check_pr_diff(repo, pr)


def check_pr_repo(settings: PlatformSettings, pr: PullRequest) -> None:
    """`check_pr_commit` in its own session of the GitOps clone (for `pr verify`)."""
    repo = GitopsRepo.open(settings)
    with repo.session():
        check_pr_commit(repo, pr)


def merge_pr(settings: PlatformSettings, branch: str, approvers: list[str]) -> MergeResult:
    """Merge a PR onto main under the rules above; refused merges change nothing. Approvals
    come from the host: the `approvers` named here locally, only GitHub's reviews of the
    PR's head commit on GitHub (names given here are then refused)."""
    repo = GitopsRepo.open(settings)
    host = host_for(settings)
    with repo.session():
        if branch not in repo.remote_branches():
            raise BadInputError(f"no open pull request {branch!r} (see `mlgate pr list`)")
        pr = _pr(repo, branch)
        check_pr_commit(repo, pr)
        assert pr.model and pr.env and pr.change  # check_pr_commit refused a PR without
        approvals = host.reviews(repo, branch, pr.sha, approvers)
        distinct = check_approvals(pr, approvals, read_reviewers(repo.work))
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
        # The merge records the policy it verified under (`Gate-Policy:`): what the audit
        # re-verifies the report against later, whatever the policy has become by then.
        verified = verify_pr_evidence(settings, pr)
        # Checked before anything moves: an approver name is a value like any other trailer's.
        original = repo.git("log", "-1", "--format=%B", pr.sha).rstrip("\n")
        msg = with_approvals(
            original,
            distinct,
            f"pull request {branch}",
            "--approver",
            verified.policy_sha256 if verified is not None else None,
        )
        merged = host.merge(repo, branch, pr.sha, msg, pr.description)
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
