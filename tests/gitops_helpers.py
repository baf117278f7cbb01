"""Small helpers shared by the GitOps tests (not fixtures: plain functions)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mlgate.config import PlatformSettings
from mlgate.gitops import pr as prmod
from mlgate.gitops.promote import promote
from mlgate.gitops.repo import GitopsRepo

MODEL = "credit_risk"


def promote_merged(
    settings: PlatformSettings, version: str, env: str, report: Path, approver: str = "alice"
) -> prmod.MergeResult:
    pr = promote(settings, MODEL, version, env, report)
    return prmod.merge_pr(settings, pr.branch, [approver])


def remote_refs(settings: PlatformSettings) -> dict[str, str]:
    """Every ref of the remote -> sha (to prove that nothing was written)."""
    repo = GitopsRepo.locate(settings)
    out = subprocess.run(
        ["git", f"--git-dir={repo.remote}", "for-each-ref", "--format=%(refname) %(objectname)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split() for line in out.splitlines())


def main_message(settings: PlatformSettings, rev: str = "refs/heads/main") -> str:
    repo = GitopsRepo.locate(settings)
    return subprocess.run(
        ["git", f"--git-dir={repo.remote}", "log", "-1", "--format=%B", rev],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def cli(*args: str) -> tuple[int, str, str]:
    """`mlgate ARGS` in-process, the console script's way (errors -> exit codes):
    (exit code, stdout, stderr)."""
    import contextlib
    import sys
    from io import StringIO

    from mlgate.cli import app
    from mlgate.commands._common import run_guarded

    out, err, argv = StringIO(), StringIO(), sys.argv
    sys.argv = ["mlgate", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run_guarded(app)
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()
