"""Commits as changes: who made each one, when, and its lineage trailers.

The trailers themselves (keys, change kinds, the writer and the parser) live in
`mlgate.records.trailers`; this module only reads commits from git and hands each message to
that parser, so what the history says is read exactly the way it was written. A commit on main
whose trailer block mlgate would never have written stops the read (exit 2, naming the commit)
rather than being half-understood.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from mlgate.gitops.repo import run_git
from mlgate.records.trailers import Trailers, parse_message

_FMT = "%H%x1f%an%x1f%ae%x1f%ct%x1f%B"


class Change(BaseModel):
    sha: str
    author: str
    author_email: str
    time: int
    subject: str
    lineage: Trailers | None = None  # None: a commit mlgate did not write

    @property
    def trailers(self) -> dict[str, list[str]]:
        return self.lineage.as_dict() if self.lineage else {}


def parse_trailers(message: str) -> dict[str, list[str]]:
    """A whole commit message's trailers, lower-cased key -> values (for display and tests)."""
    lineage = parse_message(message, "commit message")
    return lineage.as_dict() if lineage else {}


def log(
    git_dir: Path | None,
    cwd: Path | None,
    rev: str,
    paths: list[str] | None = None,
    max_count: int | None = None,
) -> list[Change]:
    """Changes reachable from `rev` (newest first), optionally only those touching `paths`."""
    args = [f"--git-dir={git_dir}"] if git_dir else []
    args += ["log", "-z", f"--format={_FMT}"]
    if max_count:
        args.append(f"-{max_count}")
    args.append(rev)
    if paths:
        args += ["--", *paths]
    out = run_git(args, cwd)
    changes = []
    for rec in out.split("\x00"):
        if not rec.strip("\n"):
            continue
        sha, an, ae, ct, msg = (rec.split("\x1f", 4) + [""] * 5)[:5]
        changes.append(
            Change(
                sha=sha,
                author=an,
                author_email=ae,
                time=int(ct or 0),
                subject=msg.split("\n", 1)[0],
                lineage=parse_message(msg, f"commit {sha[:10]}"),
            )
        )
    return changes
