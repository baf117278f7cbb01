"""Main of the GitOps remote as the audit reads it: its first-parent commits, each message
handed to the one trailer parser once, and its files as of any of those commits.

First-parent, because main's first-parent chain is the sequence of states the cluster was
synced to (a merge commit is one step; the commits of a merged branch never ran on their own).
A message the parser refuses does not stop the read here, unlike `gitops.history.log`: an
audit must see every commit, so the refusal is kept on the commit (`trailer_error`) and
`audit verify` reports it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property

from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError, MlgateError
from mlgate.gitops.overlay import (
    ENVS,
    RELEASE_FILE,
    Release,
    model_dir,
    overlay_dir,
    parse_release,
)
from mlgate.gitops.status import StateUnreadable, main_view
from mlgate.records.trailers import Trailers, parse_message

_FIELDS = ("%H", "%P", "%an", "%ae", "%at", "%cn", "%ce", "%ct", "%B")


class MainCommit(BaseModel):
    """One commit of main's first-parent chain."""

    sha: str
    parent: str | None  # first parent; None for the root commit
    author: str
    author_email: str
    author_time: int
    committer: str  # who put it on main: the merge (local: `pr merge`; GitHub: its merge API)
    committer_email: str
    time: int  # committer time (epoch s): when main got it, what `git log --before` compares
    subject: str
    message: str
    trailers: Trailers | None = None  # None: not an mlgate commit, or refused (trailer_error)
    trailer_error: str | None = None
    paths: tuple[str, ...] = ()  # changed against the first parent

    @property
    def short(self) -> str:
        return self.sha[:10]

    @property
    def when(self) -> datetime:
        return datetime.fromtimestamp(self.time, UTC)

    def touches(self, prefix: str) -> bool:
        folder = prefix.rstrip("/") + "/"
        return any(p.startswith(folder) for p in self.paths)

    @property
    def model_paths(self) -> list[str]:
        """Changed files inside a model's folder (`manifests/models/<model>/...`): its overlays
        and quarantine list, what decides what runs."""
        return [
            p
            for p in self.paths
            if len(parts := p.split("/")) >= 4 and "/".join(parts[:3]) == model_dir(parts[2])
        ]

    @property
    def overlays(self) -> set[tuple[str, str]]:
        """(model, env) of every environment overlay the commit changed."""
        out = set()
        for p in self.paths:
            parts = p.split("/")
            if len(parts) >= 5 and "/".join(parts[:3]) == model_dir(parts[2]) and parts[3] in ENVS:
                out.add((parts[2], parts[3]))
        return out


class Mainline:
    """Main's first-parent commits (oldest first) and its files at any commit."""

    def __init__(self, settings: PlatformSettings) -> None:
        view = main_view(settings)
        if view is None:
            raise StateUnreadable(
                "the GitOps repository does not exist yet (nothing was ever promoted): there is "
                "no history to audit"
            )
        self._view = view
        self.head = view.git("rev-parse", view.ref).strip()

    @cached_property
    def commits(self) -> list[MainCommit]:
        text = self._view.git(
            "log", "--first-parent", "-z", f"--format={'%x1f'.join(_FIELDS)}", self.head
        )
        paths = self._paths()
        out = []
        for rec in text.split("\x00"):
            if not rec.strip("\n"):
                continue
            sha, parents, an, ae, at, cn, ce, ct, msg = rec.split("\x1f", 8)
            trailers, error = None, None
            try:
                trailers = parse_message(msg, f"commit {sha[:10]}")
            except BadInputError as exc:
                error = exc.message
            out.append(
                MainCommit(
                    sha=sha,
                    parent=parents.split()[0] if parents.strip() else None,
                    author=an,
                    author_email=ae,
                    author_time=int(at),
                    committer=cn,
                    committer_email=ce,
                    time=int(ct),
                    subject=msg.split("\n", 1)[0],
                    message=msg,
                    trailers=trailers,
                    trailer_error=error,
                    paths=paths.get(sha, ()),
                )
            )
        out.reverse()
        return out

    def _paths(self) -> dict[str, tuple[str, ...]]:
        text = self._view.git(
            "log",
            "--first-parent",
            "--diff-merges=first-parent",
            "--no-renames",
            "-z",
            "--name-only",
            "--format=%x1e%H",
            self.head,
        )
        out: dict[str, tuple[str, ...]] = {}
        for rec in text.split("\x1e"):
            if not rec.strip("\x00\n"):
                continue
            # "<sha>\0\n<path>\0<path>\0...": names are NUL-terminated, never unquoted
            tokens = [t.strip("\n") for t in rec.split("\x00")]
            out[tokens[0]] = tuple(t for t in tokens[1:] if t)
        return out

    @cached_property
    def by_sha(self) -> dict[str, MainCommit]:
        return {c.sha: c for c in self.commits}

    def in_force_at(self, when: datetime) -> MainCommit | None:
        """The commit main was at at `when`: the newest first-parent commit that reached main
        at or before it (committer time; as `git log --first-parent --before` picks it)."""
        stamp = when.timestamp()
        found = None
        for c in self.commits:
            if c.time <= stamp:
                found = c
        return found

    def show(self, rev: str, path: str) -> str | None:
        """The file at `path` as of commit `rev`, None when it did not exist there."""
        if not self._view.git("ls-tree", "--name-only", rev, "--", path).strip():
            return None
        return self._view.git("show", f"{rev}:{path}")

    def release_at(self, rev: str | None, model: str, env: str) -> Release | None:
        """What ran for `model` in `env` as of commit `rev` (None: nothing ran there)."""
        if rev is None:
            return None
        path = f"{overlay_dir(model, env)}/{RELEASE_FILE}"
        text = self.show(rev, path)
        if text is None:
            return None
        try:
            return parse_release(text, f"{rev[:10]}:{path}")
        except MlgateError as exc:
            raise StateUnreadable(f"{rev[:10]}:{path} cannot be read: {exc}") from exc

    def overlay_changes(self, model: str, env: str, upto: MainCommit) -> list[MainCommit]:
        """The commits (oldest first, up to and including `upto`) that changed the overlay."""
        folder = overlay_dir(model, env)
        out = []
        for c in self.commits:
            if c.touches(folder):
                out.append(c)
            if c.sha == upto.sha:
                break
        return out
