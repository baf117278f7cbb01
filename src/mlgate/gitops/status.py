"""What runs where, read from git alone (the remote's main).

`stable_version` is the champion lookup the gates use; `read_status` is `mlgate status`.
Neither creates or seeds anything: when the GitOps repository does not exist yet, nothing is
deployed. All release files are read in one `git cat-file --batch` and the last change of every
environment in one `git log`, so status stays fast with thousands of models.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from pydantic import BaseModel, Field
from rich.table import Table

from mlgate.config import PlatformSettings
from mlgate.errors import ExternalServiceError, MlgateError
from mlgate.gitops.history import Change
from mlgate.gitops.overlay import ENVS, RELEASE_FILE, Release, overlay_dir, parse_release
from mlgate.gitops.pr import PR_PREFIXES
from mlgate.gitops.quarantine import QUARANTINE_FILE, QuarantineEntry, parse_quarantine
from mlgate.gitops.repo import GitopsRepo, run_git
from mlgate.records.trailers import SHADOW


class EnvStatus(BaseModel):
    env: str
    stable_version: str
    stable_image: str
    stable_traffic: int
    canary_version: str | None = None
    canary_image: str | None = None
    canary_weight: int | None = None
    shadow_version: str | None = None
    shadow_image: str | None = None
    cutoff: str
    last_commit: str | None = None
    last_commit_subject: str | None = None
    last_commit_time: int | None = None

    def release(self, model: str) -> Release:
        """The release.yaml this status was read from (what an act plans its edit from)."""
        return Release(
            model=model,
            env=self.env,
            stable_version=self.stable_version,
            stable_image=self.stable_image,
            cutoff=self.cutoff,
            canary_version=self.canary_version,
            canary_image=self.canary_image,
            canary_weight=self.canary_weight,
            shadow_version=self.shadow_version,
            shadow_image=self.shadow_image,
        )


class ModelStatus(BaseModel):
    model: str
    envs: dict[str, EnvStatus] = Field(default_factory=dict)
    quarantined: list[QuarantineEntry] = Field(default_factory=list)


class Status(BaseModel):
    remote: str
    branch: str
    commit: str | None = None
    models: list[ModelStatus] = Field(default_factory=list)
    open_prs: list[str] = Field(default_factory=list)

    def model(self, name: str) -> ModelStatus | None:
        return next((m for m in self.models if m.model == name), None)


class _View(BaseModel):
    """Where to read main from: a git dir (bare remote on disk) or the working clone."""

    git_dir: Path | None
    cwd: Path | None
    ref: str

    def args(self) -> list[str]:
        return [f"--git-dir={self.git_dir}"] if self.git_dir else []

    def git(self, *args: str, check: bool = True, input: str | None = None) -> str:
        return run_git([*self.args(), *args], self.cwd, check=check, input=input)


class StateUnreadable(ExternalServiceError):
    """Git could not say what runs where (no such remote or branch, an unreadable overlay).
    Never read as "nothing deployed": the gates would judge the challenger as a first version."""


def _view(settings: PlatformSettings) -> _View | None:
    """Where main is read from; None only for the embedded default not created yet (it is
    seeded with no model, so nothing runs anywhere). A configured remote or branch that cannot
    be read raises StateUnreadable naming it."""
    repo = GitopsRepo.locate(settings)
    local = Path(repo.remote)
    if settings.gitops.remote is None or local.exists():
        if not local.exists():
            return None
        git_dir = local / ".git" if (local / ".git").exists() else local
        view = _View(git_dir=git_dir, cwd=None, ref=f"refs/heads/{repo.branch}")
    else:
        try:
            repo = GitopsRepo.open(settings)  # a URL: the working clone is a cache of it
            repo.git("fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*")
        except ExternalServiceError as exc:
            raise StateUnreadable(
                f"GitOps remote {repo.remote} (gitops.remote) cannot be read: {exc}"
            ) from exc
        view = _View(git_dir=None, cwd=repo.work, ref=repo.main)
    try:
        found = view.git("rev-parse", "--verify", "-q", view.ref, check=False).strip()
    except ExternalServiceError as exc:
        raise StateUnreadable(f"GitOps remote {repo.remote} cannot be read: {exc}") from exc
    if not found:
        raise StateUnreadable(
            f"GitOps remote {repo.remote} has no branch {repo.branch!r} (gitops.branch): what "
            "runs in each environment cannot be read"
        )
    return view


def main_view(settings: PlatformSettings) -> _View | None:
    """Read-only access to main of the GitOps remote, for reading its history and files at any
    of its commits (`mlgate audit`); same rules as `stable_version`: None only when the
    embedded repository does not exist yet, StateUnreadable when a remote cannot be read."""
    return _view(settings)


def stable_version(settings: PlatformSettings, model: str, env: str) -> str | None:
    """The version git's main says runs stable in `env` (the champion), or None when git
    proves there is none (main has no release file there). Anything git cannot read raises
    StateUnreadable: the caller must not mistake it for a first version."""
    view = _view(settings)
    if view is None:
        return None
    path = f"{overlay_dir(model, env)}/{RELEASE_FILE}"
    where = f"{view.ref}:{path}"
    try:
        if not view.git("ls-tree", "--name-only", view.ref, "--", path).strip():
            return None
        text = view.git("show", where)
        return parse_release(text, where).stable_version
    except MlgateError as exc:
        raise StateUnreadable(
            f"the {env} overlay of {model} ({where}) cannot be read: {exc}"
        ) from exc


def canary_started(settings: PlatformSettings, model: str, env: str, version: str) -> int | None:
    """Commit time (epoch seconds) at which `version` entered `env` on main (`canary_start`)."""
    start = canary_start(settings, model, env, version)
    return start.time if start is not None else None


def canary_start(
    settings: PlatformSettings, model: str, env: str, version: str, rev: str | None = None
) -> Change | None:
    """The commit with which `version` entered `env` on main: the oldest of the newest run of
    commits on the env's overlay that carry its Model-Version trailer (its promotion as canary,
    then its weight steps). None when git has no such commit. A canary analysis records it, and
    `canary promote` accepts only an analysis of the canary that started there. `rev`: as of
    that commit of main instead of its tip (the audit)."""
    from mlgate.gitops.history import log

    view = _view(settings)
    if view is None:
        return None
    started = None
    for change in log(view.git_dir, view.cwd, rev or view.ref, [overlay_dir(model, env)]):
        if change.lineage is not None and change.lineage.change in SHADOW:
            continue  # a shadow starting or stopping (even of this version) starts no canary
        if change.lineage is None or change.lineage.model_version != version:
            break
        started = change
    return started


def _cat_files(view: _View, paths: list[str]) -> dict[str, str]:
    if not paths:
        return {}
    proc = subprocess.run(
        ["git", *view.args(), "cat-file", "--batch"],
        cwd=view.cwd,
        input="".join(f"{view.ref}:{p}\n" for p in paths).encode(),
        capture_output=True,
        check=True,
    )
    out, data, pos = {}, proc.stdout, 0
    for path in paths:
        nl = data.index(b"\n", pos)
        header = data[pos:nl].decode()
        pos = nl + 1
        if header.endswith("missing"):
            continue
        size = int(header.split()[2])
        out[path] = data[pos : pos + size].decode("utf-8")
        pos += size + 1
    return out


def _last_changes(
    view: _View, wanted: set[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, int, str]]:
    out: dict[tuple[str, str], tuple[str, int, str]] = {}
    text = view.git(
        "log", "--format=\x1e%H\x1f%ct\x1f%s", "--name-only", view.ref, "--", "manifests/models"
    )
    for rec in text.split("\x1e"):
        if not rec.strip():
            continue
        head, _, files = rec.partition("\n")
        sha, ct, subject = head.split("\x1f", 2)
        for f in files.splitlines():
            parts = f.split("/")
            if len(parts) >= 4:
                key = (parts[2], parts[3])
                if key in wanted and key not in out:
                    out[key] = (sha, int(ct), subject)
        if len(out) == len(wanted):
            break
    return out


def read_status(settings: PlatformSettings) -> Status:
    """Model x env -> stable/canary/cut-off/last commit, plus quarantined versions and open PRs."""
    repo = GitopsRepo.locate(settings)
    view = _view(settings)
    status = Status(remote=repo.remote, branch=repo.branch)
    if view is None:
        return status
    status.commit = view.git("rev-parse", view.ref).strip()
    names = view.git(
        "ls-tree", "-r", "--name-only", view.ref, "--", "manifests/models"
    ).splitlines()
    wanted: list[str] = []
    for name in names:
        parts = name.split("/")
        if len(parts) == 5 and parts[4] == RELEASE_FILE and parts[3] in ENVS:
            wanted.append(name)
        elif len(parts) == 4 and parts[3] == QUARANTINE_FILE:
            wanted.append(name)
    files = _cat_files(view, wanted)
    models: dict[str, ModelStatus] = {}
    for path, text in files.items():
        parts = path.split("/")
        ms = models.setdefault(parts[2], ModelStatus(model=parts[2]))
        if parts[-1] == QUARANTINE_FILE:
            ms.quarantined = parse_quarantine(text, path)
            continue
        rel = parse_release(text, path)
        ms.envs[parts[3]] = EnvStatus(
            env=parts[3],
            stable_version=rel.stable_version,
            stable_image=rel.stable_image,
            stable_traffic=rel.stable_traffic,
            canary_version=rel.canary_version,
            canary_image=rel.canary_image,
            canary_weight=rel.canary_weight,
            shadow_version=rel.shadow_version,
            shadow_image=rel.shadow_image,
            cutoff=rel.cutoff,
        )
    last = _last_changes(view, {(m, e) for m, ms in models.items() for e in ms.envs})
    for (m, e), (sha, ct, subject) in last.items():
        es = models[m].envs[e]
        es.last_commit, es.last_commit_time, es.last_commit_subject = sha, ct, subject
    for ms in models.values():
        ms.envs = {e: ms.envs[e] for e in ENVS if e in ms.envs}
    status.models = [models[k] for k in sorted(models)]
    heads = view.git("for-each-ref", "--format=%(refname)", "refs/heads/", "refs/remotes/origin/")
    prs = set()
    for ref in heads.splitlines():
        short = ref.removeprefix("refs/heads/").removeprefix("refs/remotes/origin/")
        if "/" in short and short.split("/", 1)[0] in PR_PREFIXES:
            prs.add(short)
    status.open_prs = sorted(prs)
    return status


def status_table(st: Status) -> Table:
    """`mlgate status` as a table (model x env): the one rendering the CLI and the demo show."""
    table = Table(title=f"{st.remote} ({st.branch} {(st.commit or 'empty')[:10]})")
    for col in ("model", "env", "stable", "canary", "cut-off", "last change", "quarantined"):
        table.add_column(col)
    for ms in st.models:
        q = ", ".join(e.version for e in ms.quarantined) or "-"
        for env, es in ms.envs.items():
            canary = f"{es.canary_version} @ {es.canary_weight}%" if es.canary_version else "-"
            if es.shadow_version:
                canary += f" (shadow {es.shadow_version})"
            stable = f"{es.stable_version} ({es.stable_image.split('@')[-1][:19]})"
            last = f"{(es.last_commit or '')[:10]} {es.last_commit_subject or ''}"
            table.add_row(ms.model, env, stable, canary, es.cutoff, last, q)
    return table
