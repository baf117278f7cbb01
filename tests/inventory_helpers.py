"""A real GitOps remote (bare repository) with promotion commits made the way mlgate writes
them (`overlay.write_release`, `records.trailers.commit_message`), at chosen commit times: what
the inventory, the review-date check and `audit explain` read."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from mlgate.gitops.overlay import Release, write_release
from mlgate.records.trailers import ChangeKind, commit_message, make_trailers
from tests.gitops_helpers import cli

IMAGE = "registry.example.invalid/credit-risk@sha256:" + "1" * 64


def _git(cwd: Path, *args: str, when: datetime | None = None) -> str:
    env = dict(os.environ)
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when.isoformat()
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout


def gitops_remote(root: Path) -> tuple[Path, Path]:
    """(bare remote, work clone) with one seed commit on main."""
    bare, work = root / "gitops.git", root / "gitops-clone"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True)
    (work / "README.md").write_text("gitops\n")
    _git(work, "add", "README.md")
    _git(work, "commit", "-q", "-m", "seed", when=datetime(2020, 1, 1, tzinfo=UTC))
    _git(work, "push", "-q", "origin", "HEAD:main")
    return bare, work


def promote(
    work: Path,
    *,
    model: str,
    env: str,
    version: str,
    when: datetime,
    cutoff: str = "0.15",
    approvers: tuple[str, ...] = ("alice",),
    report: str = "ab" * 32,
) -> str:
    """One promotion commit on main (release.yaml + trailers), committed at `when`."""
    write_release(
        work,
        Release(model=model, env=env, stable_version=version, stable_image=IMAGE, cutoff=cutoff),
    )
    trailers = make_trailers(
        model=model,
        model_version=version,
        environment=env,
        change=ChangeKind.PROMOTE,
        gate_report=report,
        gate_result="PASS",
        approved_by=approvers,
    )
    _git(work, "add", "-A")
    _git(
        work,
        "commit",
        "-q",
        "-m",
        commit_message(f"promote {model} {version} to {env}", trailers),
        when=when,
    )
    _git(work, "push", "-q", "origin", "HEAD:main")
    return _git(work, "rev-parse", "HEAD").strip()


def run_cli(*args: str) -> tuple[int, str]:
    """`mlgate ARGS` in-process (tests.gitops_helpers.cli): (exit code, stdout + stderr)."""
    code, out, err = cli(*args)
    return code, out + err
