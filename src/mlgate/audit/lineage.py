"""`mlgate audit lineage`: what ran where and when, on what evidence, approved by whom.

Derived from git history and MLflow alone, never from aliases or a workspace's state:
- what ran in an environment at a time: `release.yaml` of that environment as of the commit
  main was at then (first-parent, committer time), stable and canary with their weights, so
  promotions, canary steps, aborts and `git revert` rollbacks are all read the same way (a
  revert restores the earlier file, and with it the earlier version);
- how each version got there: the newest change on main that made it run in that environment
  (`Change: promote` or `canary-promote`, read by the one trailer parser) and the run of
  changes of that version before and after it (canary start, weight steps): author, approvers
  (`Approved-by:`), who merged it (the commit's committer on main), its gate report verified
  against the stored sha256 as of the merge (`audit.asof`);
- what the version is: its image as pinned in `release.yaml`, and the MLflow version's run,
  data fingerprint, feature service and training code commit (`records.tags.read_tags`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from mlgate.audit.asof import ReportCheck, report_check
from mlgate.audit.mainline import MainCommit, Mainline
from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError, MlgateError
from mlgate.gitops.evidence import mlflow_lineage
from mlgate.gitops.overlay import ENVS, Release, check_env, check_model, overlay_dir
from mlgate.records.trailers import ENTERING, ChangeKind
from mlgate.records.values import canonical_version

Role = Literal["stable", "canary"]


def parse_time(text: str, field: str = "--at") -> datetime:
    """An ISO 8601 time (`2026-03-01`, `2026-03-01T12:00:00Z`, `...+01:00`); a time without
    an offset is UTC. Anything else is bad input naming `field` (exit 2)."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInputError(
            f"{field} {text!r}: not an ISO 8601 time (e.g. 2026-03-01 or 2026-03-01T12:00:00Z)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class ChangeFacts(BaseModel):
    """One change on main, as the audit reports it."""

    commit: str
    subject: str
    change: str | None  # Change: trailer; None for a commit mlgate did not write
    time: datetime  # when main got it (committer time)
    author: str
    author_email: str
    merged_by: str  # the committer on main: whoever (or whatever host) merged it
    merged_by_email: str
    approved_by: list[str] = Field(default_factory=list)
    override_reason: str | None = None
    gate_report: ReportCheck | None = None


class MlflowFacts(BaseModel):
    """The registered version, from MLflow (its tags, read by `records.tags.read_tags`)."""

    run_id: str | None = None
    data_fingerprint: str | None = None
    feature_service: str | None = None
    training_commit: str | None = None
    image_digest: str | None = None
    error: str | None = None  # the version could not be read


class VersionFacts(BaseModel):
    role: Role
    version: str
    traffic: int  # percent of requests
    image: str  # as pinned in release.yaml
    entered: ChangeFacts | None  # the change that made it run here (None: not found in history)
    changes: list[ChangeFacts]  # its run of changes here, oldest first (start, weight steps, ...)
    mlflow: MlflowFacts


class EnvAt(BaseModel):
    """What ran for one model in one environment at one time."""

    model: str
    env: str
    at: datetime
    main_commit: str | None  # the commit main was at (None: before the first one)
    last_change: ChangeFacts | None = None  # the newest change to this environment by then
    cutoff: str | None = None
    stable: VersionFacts | None = None
    canary: VersionFacts | None = None


class Period(BaseModel):
    """A stretch of main's history during which a version ran with one role and weight."""

    env: str
    role: Role
    traffic: int
    since: datetime
    since_commit: str
    until: datetime | None  # None: still runs on main's tip
    until_commit: str | None
    facts: VersionFacts


class VersionRuns(BaseModel):
    """Every environment and time a version ran."""

    model: str
    version: str
    mlflow: MlflowFacts
    periods: list[Period]


def _change_facts(
    settings: PlatformSettings, mainline: Mainline, c: MainCommit, with_report: bool = True
) -> ChangeFacts:
    t = c.trailers
    return ChangeFacts(
        commit=c.sha,
        subject=c.subject,
        change=t.change.value if t else None,
        time=c.when,
        author=c.author,
        author_email=c.author_email,
        merged_by=c.committer,
        merged_by_email=c.committer_email,
        approved_by=list(t.approved_by) if t else [],
        override_reason=t.override_reason if t else None,
        gate_report=report_check(settings, mainline, c) if with_report else None,
    )


class _Facts:
    """Per-run caches: MLflow answers and verified reports are fetched once per version and
    commit, however many times and periods ask."""

    def __init__(self, settings: PlatformSettings, mainline: Mainline) -> None:
        self.settings = settings
        self.mainline = mainline
        self._mlflow: dict[tuple[str, str], MlflowFacts] = {}
        self._changes: dict[str, ChangeFacts] = {}

    def mlflow(self, model: str, version: str) -> MlflowFacts:
        key = (model, version)
        if key not in self._mlflow:
            try:
                lin = mlflow_lineage(self.settings, model, version)
                self._mlflow[key] = MlflowFacts(
                    run_id=lin.run_id,
                    data_fingerprint=lin.data_fingerprint,
                    feature_service=lin.feature_service,
                    training_commit=lin.git_commit,
                    image_digest=lin.tags.image_digest,
                )
            except MlgateError as exc:
                self._mlflow[key] = MlflowFacts(error=exc.message)
        return self._mlflow[key]

    def change(self, c: MainCommit) -> ChangeFacts:
        if c.sha not in self._changes:
            self._changes[c.sha] = _change_facts(self.settings, self.mainline, c)
        return self._changes[c.sha]

    def version(
        self, model: str, env: str, rel: Release, role: Role, upto: MainCommit
    ) -> VersionFacts:
        """The facts of the version `rel` runs as `role`, as of main at `upto`."""
        version = rel.stable_version if role == "stable" else str(rel.canary_version)
        history = self.mainline.overlay_changes(model, env, upto)
        entered_at = next(
            (
                i
                for i in range(len(history) - 1, -1, -1)
                if (t := history[i].trailers) is not None
                and t.change in ENTERING
                and t.model_version == version
            ),
            None,
        )
        run: list[MainCommit] = []
        if entered_at is not None:
            start = entered_at
            while start > 0 and _carries(history[start - 1], version):
                start -= 1
            end = entered_at
            while end + 1 < len(history) and _carries(history[end + 1], version):
                end += 1
            run = history[start : end + 1]
        return VersionFacts(
            role=role,
            version=version,
            traffic=rel.stable_traffic if role == "stable" else int(rel.canary_weight or 0),
            image=rel.stable_image if role == "stable" else str(rel.canary_image),
            entered=self.change(history[entered_at]) if entered_at is not None else None,
            changes=[self.change(c) for c in run],
            mlflow=self.mlflow(model, version),
        )

    def env_at(self, model: str, env: str, at: datetime) -> EnvAt:
        commit = self.mainline.in_force_at(at)
        rel = self.mainline.release_at(commit.sha if commit else None, model, env)
        out = EnvAt(model=model, env=env, at=at, main_commit=commit.sha if commit else None)
        if commit is None or rel is None:
            return out
        touched = self.mainline.overlay_changes(model, env, commit)
        out.last_change = self.change(touched[-1]) if touched else None
        out.cutoff = rel.cutoff
        out.stable = self.version(model, env, rel, "stable", commit)
        if rel.canary_version is not None:
            out.canary = self.version(model, env, rel, "canary", commit)
        return out


def _carries(c: MainCommit, version: str) -> bool:
    """Part of a version's run of changes: a change that names it and does not take it out."""
    t = c.trailers
    return (
        t is not None
        and t.model_version == version
        and (t.change in ENTERING or t.change == ChangeKind.CANARY_SET_WEIGHT)
    )


def lineage_at(settings: PlatformSettings, model: str, env: str, at: datetime) -> EnvAt:
    """What ran for `model` in `env` at `at`, with how it got there and what it is."""
    check_model(model)
    check_env(env)
    return _Facts(settings, Mainline(settings)).env_at(model, env, at)


def version_runs(
    settings: PlatformSettings, model: str, version: str, env: str | None = None
) -> VersionRuns:
    """Every environment (or only `env`) and stretch of time `version` ran in, with the same
    facts as `lineage_at` for each stretch."""
    check_model(model)
    version = canonical_version(version)
    envs = [check_env(env)] if env else list(ENVS)
    mainline = Mainline(settings)
    facts = _Facts(settings, mainline)
    periods: list[Period] = []
    for e in envs:
        folder = overlay_dir(model, e)
        current: tuple[Role, int] | None = None
        opened: tuple[MainCommit, VersionFacts] | None = None
        for c in mainline.commits:
            if not c.touches(folder):
                continue
            rel = mainline.release_at(c.sha, model, e)
            state: tuple[Role, int] | None = None
            if rel is not None and rel.stable_version == version:
                state = ("stable", rel.stable_traffic)
            elif rel is not None and rel.canary_version == version:
                state = ("canary", int(rel.canary_weight or 0))
            if state == current:
                continue
            if opened is not None and current is not None:
                periods.append(_period(e, current, opened, c))
            current, opened = state, None
            if state is not None and rel is not None:
                opened = (c, facts.version(model, e, rel, state[0], c))
        if opened is not None and current is not None:
            periods.append(_period(e, current, opened, None))
    periods.sort(key=lambda p: p.since)
    return VersionRuns(
        model=model, version=version, mlflow=facts.mlflow(model, version), periods=periods
    )


def _period(
    env: str,
    state: tuple[Role, int],
    opened: tuple[MainCommit, VersionFacts],
    closed: MainCommit | None,
) -> Period:
    return Period(
        env=env,
        role=state[0],
        traffic=state[1],
        since=opened[0].when,
        since_commit=opened[0].sha,
        until=closed.when if closed else None,
        until_commit=closed.sha if closed else None,
        facts=opened[1],
    )
