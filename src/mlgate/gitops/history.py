"""Commits as changes: subject, author and the lineage trailers mlgate writes.

Every mlgate commit ends with trailers (`Model:`, `Model-Version:`, `Environment:`, `Change:`,
`Image-Digest:`, `MLflow-Run:`, `Data-Fingerprint:`, `Gate-Report:`, `Approved-by:` ...), so
the history alone answers what ran where, who approved it and on what evidence.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from mlgate.gitops.repo import run_git

_FMT = "%H%x1f%an%x1f%ae%x1f%ct%x1f%s%x1f%(trailers:unfold,separator=%x1d)%x1e"


class Change(BaseModel):
    sha: str
    author: str
    author_email: str
    time: int
    subject: str
    trailers: dict[str, list[str]] = Field(default_factory=dict)

    def get(self, key: str) -> str | None:
        values = self.trailers.get(key.lower())
        return values[-1] if values else None


def parse_trailers(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.replace("\x1d", "\n").splitlines():
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        out.setdefault(key.strip().lower(), []).append(value.strip())
    return out


def log(
    git_dir: Path | None,
    cwd: Path | None,
    rev: str,
    paths: list[str] | None = None,
    max_count: int | None = None,
) -> list[Change]:
    """Changes reachable from `rev` (newest first), optionally only those touching `paths`."""
    args = [f"--git-dir={git_dir}"] if git_dir else []
    args += ["log", f"--format={_FMT}"]
    if max_count:
        args.append(f"-{max_count}")
    args.append(rev)
    if paths:
        args += ["--", *paths]
    out = run_git(args, cwd)
    changes = []
    for rec in out.split("\x1e"):
        rec = rec.strip("\n")
        if not rec:
            continue
        sha, an, ae, ct, subject, trailers = (rec.split("\x1f") + [""] * 6)[:6]
        changes.append(
            Change(
                sha=sha,
                author=an,
                author_email=ae,
                time=int(ct or 0),
                subject=subject,
                trailers=parse_trailers(trailers),
            )
        )
    return changes


def message(subject: str, body: str, trailers: list[tuple[str, str]]) -> str:
    """A commit message: subject, body, then one trailer block (git interpret-trailers style)."""
    lines = [subject, ""]
    if body.strip():
        lines += [body.strip(), ""]
    lines += [f"{k}: {v}" for k, v in trailers if v is not None and v != ""]
    return "\n".join(lines) + "\n"
