"""The GitOps repository: where what runs in each environment is written down.

`settings.gitops.remote` (+ `branch`) names it. The embedded default is a bare repository
`<workspace>/gitops.git`, seeded once from this project's `manifests/` (base bundle,
components, platform) and `argocd/`; the tools commit in a working clone
`<workspace>/gitops-work` and push. The user's own checkout is never written.

Every operation runs plain `git` (the real thing, hooks and all) under a file lock on the
working clone, starting from a clean detached checkout of the remote's main, so a failed
command leaves neither a half-edited file nor a dangling branch behind.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from mlgate.config import REPO_ROOT, PlatformSettings
from mlgate.errors import ExternalServiceError
from mlgate.gitops.platform_values import InitValues, apply_values, loopback_values
from mlgate.gitops.reviewers import REVIEWERS_FILE

NOTES_REF = "refs/notes/mlgate-pr"
# Seeded into the embedded repository: the reusable parts. Model overlays appear there only
# when a promotion creates them (manifests/models in this checkout are worked examples).
SEED_PATHS = ("manifests/base", "manifests/components", "manifests/platform", "argocd")
# Single files seeded at another path: who may approve (read from main by `pr merge`).
SEED_FILES = {REVIEWERS_FILE: "config/reviewers.yaml"}
_DEFAULT_IDENTITY = {"GIT_AUTHOR_NAME": "mlgate", "GIT_AUTHOR_EMAIL": "mlgate@localhost"}
# With GITHUB_TOKEN set (the scheduled canary analysis: Secret mlgate-git, key token), git
# answers an https remote's password prompt with it: the helper reads the variable when git
# asks, so the token is never in an argument, a URL, a config file or an error message.
TOKEN_ENV = "GITHUB_TOKEN"
_TOKEN_HELPER = (
    '!f() { test "$1" = get || exit 0; echo username=x-access-token; '
    'echo "password=$' + TOKEN_ENV + '"; }; f'
)


class GitError(ExternalServiceError):
    """A git command failed; the message carries git's own words."""


@lru_cache(maxsize=1)
def _configured_identity() -> bool:
    """Does git know who the user is? Then commits carry that name (the author of a change)."""
    proc = subprocess.run(["git", "config", "--get", "user.name"], capture_output=True, text=True)
    return bool(proc.stdout.strip())


def run_git(
    args: list[str], cwd: Path | None = None, *, check: bool = True, input: str | None = None
) -> str:
    env = dict(os.environ)
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    if not _configured_identity():
        for key, value in _DEFAULT_IDENTITY.items():
            env.setdefault(key, value)
            env.setdefault(key.replace("AUTHOR", "COMMITTER"), value)
    if env.get(TOKEN_ENV):
        n = int(env.get("GIT_CONFIG_COUNT") or 0)
        env |= {
            "GIT_CONFIG_COUNT": str(n + 1),
            f"GIT_CONFIG_KEY_{n}": "credential.https://.helper",
            f"GIT_CONFIG_VALUE_{n}": _TOKEN_HELPER,
        }
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env=env, input=input, check=False
    )
    if check and proc.returncode != 0:
        raise GitError(
            f"git {' '.join(args[:3])} failed: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc.stdout


def seed_bare(
    bare: Path,
    source_root: Path = REPO_ROOT,
    branch: str = "main",
    values: InitValues | None = None,
) -> None:
    """Create `bare` with one commit holding the seed paths of `source_root`, the template's
    placeholders replaced by `values` (the embedded default's own: `loopback_values`)."""
    tmp = Path(tempfile.mkdtemp(prefix="gitops-seed-", dir=bare.parent))
    try:
        for rel in SEED_PATHS:
            src = source_root / rel
            if src.exists():
                shutil.copytree(src, tmp / rel)
        for target, rel in SEED_FILES.items():
            if (source_root / rel).is_file():
                shutil.copyfile(source_root / rel, tmp / target)
        if values is not None:
            apply_values(tmp, values)
        (tmp / "manifests" / "models").mkdir(parents=True, exist_ok=True)
        (tmp / "manifests" / "models" / "README.md").write_text(
            "One folder per model, one per environment below it; created by `mlgate promote`.\n",
            encoding="utf-8",
        )
        run_git(["init", "-q", "-b", branch], tmp)
        run_git(["add", "-A"], tmp)
        run_git(["commit", "-q", "-m", "Seed the GitOps repository from the mlgate project"], tmp)
        staging = bare.with_name(bare.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        run_git(["clone", "-q", "--bare", str(tmp), str(staging)])
        staging.rename(bare)  # appears whole or not at all
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def seed_embedded(settings: PlatformSettings, bare: Path, branch: str) -> None:
    """The embedded default's remote, made once: seeded from this project with its own values
    (`platform_values.loopback_values`), so it holds no placeholder. Every path that may be the
    first to need the remote (the CLI, the local pipeline runner) seeds it here."""
    seed_bare(bare, branch=branch, values=loopback_values(settings, bare))


@dataclass(frozen=True)
class GitopsRepo:
    """The remote (URL or path), its main branch, and the working clone the tools commit in."""

    remote: str
    branch: str
    work: Path

    @classmethod
    def locate(cls, settings: PlatformSettings) -> GitopsRepo:
        ws = settings.ws()
        remote = settings.gitops.remote or str(ws.root / "gitops.git")
        return cls(remote=remote, branch=settings.gitops.branch, work=ws.root / "gitops-work")

    @classmethod
    def open(cls, settings: PlatformSettings) -> GitopsRepo:
        """Locate, seeding the embedded default on first use, and make the working clone."""
        repo = cls.locate(settings)
        if settings.gitops.remote is None and not Path(repo.remote).exists():
            seed_embedded(settings, Path(repo.remote), repo.branch)
        if not (repo.work / ".git").exists():
            staging = repo.work.with_name(repo.work.name + ".tmp")
            shutil.rmtree(staging, ignore_errors=True)
            run_git(["clone", "-q", repo.remote, str(staging)])
            staging.rename(repo.work)
        elif repo.git("remote", "get-url", "origin", check=False).strip() != repo.remote:
            # The clone is a cache of the configured remote, never of one configured before.
            repo.git("remote", "set-url", "origin", repo.remote)
        return repo

    @property
    def main(self) -> str:
        return f"origin/{self.branch}"

    def git(self, *args: str, check: bool = True, input: str | None = None) -> str:
        return run_git(list(args), self.work, check=check, input=input)

    @contextmanager
    def session(self) -> Iterator[GitopsRepo]:
        """Lock the clone, fetch, and start from a clean detached checkout of main."""
        lock_path = self.work.with_name(self.work.name + ".lock")
        with lock_path.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self.sync()
                yield self
            finally:
                self.git("checkout", "-q", "-f", "--detach", self.main, check=False)
                self.git("clean", "-qfdx", check=False)
                fcntl.flock(lock, fcntl.LOCK_UN)

    def sync(self) -> None:
        self.git(
            "fetch",
            "-q",
            "--prune",
            "origin",
            "+refs/heads/*:refs/remotes/origin/*",
            "+refs/notes/*:refs/notes/*",
        )
        self.git("checkout", "-q", "-f", "--detach", self.main)
        self.git("clean", "-qfdx")

    def remote_branches(self, prefix: str = "") -> list[str]:
        out = self.git("for-each-ref", "--format=%(refname:short)", f"refs/remotes/origin/{prefix}")
        names = [line.removeprefix("origin/") for line in out.splitlines() if line.strip()]
        return [n for n in names if n not in (self.branch, "HEAD")]

    def rev(self, ref: str) -> str:
        return self.git("rev-parse", "--verify", "-q", ref).strip()

    def remote_refs(self) -> str:
        """Every ref of the remote with its commit (`git ls-remote`): what a refused change
        must leave exactly as it was."""
        return run_git(["ls-remote", self.remote], None)

    def last_change(self, path: str, ref: str | None = None) -> str | None:
        out = self.git("log", "-1", "--format=%H", ref or self.main, "--", path).strip()
        return out or None
