"""`mlgate audit verify`: does every change on main still add up? A registry of checks.

An auditor needs every gap at once, not the first one: a check returns the gaps it finds
(`list[Gap]`, empty when clean) and never stops the walk; an mlgate error raised inside a check
(MLflow down, a file git cannot read) becomes a gap of that check, naming the commit, because
evidence that cannot be checked is not evidence (fail closed).

Adding a check (see docs/audit.md): put a module in `mlgate/audit/checks/` with

    from mlgate.audit.verify import CommitContext, Gap, register_check

    @register_check("my-check", about="what it proves")
    def my_check(ctx: CommitContext) -> list[Gap]:
        return [ctx.gap("my-check", "what is wrong")] if ... else []

`scope="commit"` (default) runs the check once per change on main (every first-parent commit
that carries mlgate trailers, fails to parse, or changes a file of a model's folder
`manifests/models/<model>/`); `scope="audit"`
runs it once per verify with an `AuditContext` (e.g. something about the state main is in now,
or about every model). `registered_checks` imports every module of `mlgate.audit.checks`, so a
check is registered by existing; nothing lists them.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, Field

from mlgate.audit.mainline import MainCommit, Mainline
from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError, MlgateError
from mlgate.records.trailers import Trailers
from mlgate.training.registry import connect

Scope = Literal["commit", "audit"]


class Gap(BaseModel):
    """One thing on main that does not add up."""

    check: str
    message: str
    commit: str | None = None  # full sha; None for a check about main as a whole
    subject: str | None = None
    model: str | None = None
    env: str | None = None
    version: str | None = None
    problems: list[str] = Field(default_factory=list)


@dataclass
class AuditContext:
    """What every check may read, fetched once per verify run."""

    settings: PlatformSettings
    mainline: Mainline
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Answers checks share within one run (e.g. ("image", ref) -> found), so a version named by
    # ten commits is looked up once; never kept across runs.
    cache: dict[Any, Any] = field(default_factory=dict)

    @cached_property
    def mlflow(self) -> Any:
        """The MLflow client of the platform settings (tracking + registry)."""
        return connect(self.settings)

    def gap(self, check: str, message: str, **about: Any) -> Gap:
        """A gap about main as a whole (or the model/env/version given in `about`)."""
        return Gap(check=check, message=message, **about)

    @property
    def changes(self) -> list[MainCommit]:
        """The commits `scope="commit"` checks run on (oldest first)."""
        return [
            c
            for c in self.mainline.commits
            if c.trailers is not None or c.trailer_error or c.model_paths
        ]


@dataclass(frozen=True)
class CommitContext:
    """One change on main, for a `scope="commit"` check."""

    audit: AuditContext
    commit: MainCommit

    @property
    def settings(self) -> PlatformSettings:
        return self.audit.settings

    @property
    def mainline(self) -> Mainline:
        return self.audit.mainline

    @property
    def trailers(self) -> Trailers | None:
        return self.commit.trailers

    def gap(self, check: str, message: str, problems: list[str] | None = None, **about: Any) -> Gap:
        """A gap about this commit, naming its model, environment and version (from its
        trailers, or `about` for a commit without them)."""
        t = self.commit.trailers
        fields: dict[str, Any] = {
            "model": t.model if t else None,
            "env": t.environment if t else None,
            "version": t.model_version if t else None,
        }
        fields.update(about)
        return Gap(
            check=check,
            message=message,
            commit=self.commit.sha,
            subject=self.commit.subject,
            problems=problems or [],
            **fields,
        )


CommitCheck = Callable[[CommitContext], list[Gap]]
AuditCheck = Callable[[AuditContext], list[Gap]]


@dataclass(frozen=True)
class RegisteredCheck:
    name: str
    scope: Scope
    about: str
    run: Callable[[Any], list[Gap]]


_CHECKS: dict[str, RegisteredCheck] = {}


def register_check(
    name: str, *, scope: Scope = "commit", about: str = ""
) -> Callable[[Callable[[Any], list[Gap]]], Callable[[Any], list[Gap]]]:
    """Register the decorated function as check `name` of `audit verify` (see module doc).
    A second check of the same name from another function is a programming error."""

    def add(fn: Callable[[Any], list[Gap]]) -> Callable[[Any], list[Gap]]:
        known = _CHECKS.get(name)
        if known is not None and known.run.__qualname__ != fn.__qualname__:
            raise ValueError(f"audit check {name!r} is registered twice")
        _CHECKS[name] = RegisteredCheck(name, scope, about or (fn.__doc__ or "").strip(), fn)
        return fn

    return add


def registered_checks() -> list[RegisteredCheck]:
    """Every check, after importing each module of `mlgate.audit.checks` (registration order:
    modules by name, checks as each module defines them)."""
    from mlgate.audit import checks

    for info in sorted(pkgutil.iter_modules(checks.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"mlgate.audit.checks.{info.name}")
    return list(_CHECKS.values())


class CheckInfo(BaseModel):
    name: str
    scope: Scope
    about: str


class VerifyResult(BaseModel):
    head: str
    commits: int  # first-parent commits on main
    changes_checked: int
    checks: list[CheckInfo]
    gaps: list[Gap]

    @property
    def clean(self) -> bool:
        return not self.gaps


def _guarded(check: RegisteredCheck, arg: AuditContext | CommitContext) -> list[Gap]:
    try:
        return list(check.run(arg))
    except MlgateError as exc:
        message = f"could not be checked: {exc.message}"
        if isinstance(arg, CommitContext):
            return [arg.gap(check.name, message, list(exc.problems))]
        return [Gap(check=check.name, message=message, problems=list(exc.problems))]


def verify_history(
    settings: PlatformSettings,
    *,
    only: list[str] | None = None,
    now: datetime | None = None,
    say: Callable[[str, float], None] | None = None,
) -> VerifyResult:
    """Run every registered check (or those named in `only`) over main; every gap found."""
    checks = registered_checks()
    if only:
        unknown = sorted(set(only) - {c.name for c in checks})
        if unknown:
            raise BadInputError(
                f"--check {', '.join(unknown)}: no such audit check (known: "
                f"{', '.join(c.name for c in checks)})"
            )
        checks = [c for c in checks if c.name in only]
    audit = AuditContext(settings, Mainline(settings), now or datetime.now(UTC))
    changes = audit.changes
    gaps: list[Gap] = []
    for i, commit in enumerate(changes):
        if say is not None:
            say(f"{commit.short} {commit.subject[:60]}", i / max(len(changes), 1))
        ctx = CommitContext(audit, commit)
        gaps += [g for c in checks if c.scope == "commit" for g in _guarded(c, ctx)]
    gaps += [g for c in checks if c.scope == "audit" for g in _guarded(c, audit)]
    return VerifyResult(
        head=audit.mainline.head,
        commits=len(audit.mainline.commits),
        changes_checked=len(changes),
        checks=[CheckInfo(name=c.name, scope=c.scope, about=c.about) for c in checks],
        gaps=gaps,
    )
