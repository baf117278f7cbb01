"""The scheduled analysis' latest verdict, where Argo CD shows it (`canary analyze --record`).

Argo CD reads git, so the verdict is a small file in the GitOps repository,
`canary-analysis/<model>/<env>.yaml`, which the ApplicationSet merges into the environment's
Application `spec.info` (argocd/applicationset.yaml) next to what release.yaml says runs.

Why there, and why only on a change of state:
- It lives outside `manifests/models/`: nothing that decides what runs reads it, and the
  readers of an environment's history (rollback's "latest change", the stale-PR check, the
  canary's start commit, `audit verify`) never see it, so an hourly analysis can neither make
  a reviewed PR stale nor become the change a rollback reverts.
- The analysis runs hourly and mostly WAITs; a commit per run would bury main's history. The
  file is rewritten only when the state changes: another decision, another canary version or
  weight, or another set of checks holding it (`state_key`). The evidence link is the report
  of the run that reached the state; the hourly reports stay in the report store.
- It is pushed straight to main by the analysis' own identity (the one that may already push
  the break-glass abort); it carries no lineage trailers because it changes nothing that runs.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import yaml
from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError
from mlgate.gitops.repo import GitopsRepo
from mlgate.records.values import check_text

RECORD_DIR = "canary-analysis"
PHASE = "canary"
_HEADER = (
    "# The latest verdict of the scheduled canary analysis of {model} in {env}, shown by Argo CD\n"
    "# (Application info). Written by `mlgate canary analyze --record` when the state changes;\n"
    "# it decides nothing (what runs is manifests/models/{model}/{env}/release.yaml).\n"
)


class AnalysisRecord(BaseModel):
    """What Argo CD shows of the analysis. Every value is one safe line (it ends up in YAML
    read by the ApplicationSet and in the UI)."""

    model: str
    env: str
    phase: str = PHASE
    verdict: str  # WAIT | ADVANCE | PROMOTE | ABORT
    stable_version: str
    canary_version: str
    weight: str
    checks: str  # the checks not passing ("" when all pass): part of the state
    reasons: str
    since: str  # when this state was first seen (UTC, ISO 8601)
    deadline: str  # when a canary still waiting is aborted ("" if its start is unknown)
    report: str  # sha256 of the report.json that reached this state
    evidence: str  # where that report is (MLflow runs:/ URI, else the report store folder)

    def state_key(self) -> tuple[str, ...]:
        """What counts as a change of state: not the time, the report or the wording of the
        reasons (counts move every hour while a check waits)."""
        return (self.verdict, self.stable_version, self.canary_version, self.weight, self.checks)


def record_path(model: str, env: str) -> str:
    return f"{RECORD_DIR}/{model}/{env}.yaml"


def _one_line(text: str, limit: int = 400) -> str:
    flat = " ".join(str(text).split())
    flat = flat if len(flat) <= limit else flat[: limit - 1] + "…"
    return check_text(flat, "analysis record") if flat else ""


def make_record(
    *,
    model: str,
    env: str,
    decision: str,
    stable_version: str,
    canary_version: str,
    weight: int,
    not_passing: list[str],
    reasons: list[str],
    now: datetime,
    started: datetime | None,
    deadline_hours: float,
    report_sha256: str,
    evidence: str,
) -> AnalysisRecord:
    """The record of one analysis (pure)."""
    deadline = started + timedelta(hours=deadline_hours) if started is not None else None
    return AnalysisRecord(
        model=model,
        env=env,
        verdict=decision.upper(),
        stable_version=stable_version,
        canary_version=canary_version,
        weight=str(weight),
        checks=_one_line(", ".join(sorted(not_passing))),
        reasons=_one_line("; ".join(reasons)),
        since=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        deadline=deadline.strftime("%Y-%m-%dT%H:%M:%SZ") if deadline else "",
        report=report_sha256,
        evidence=_one_line(evidence),
    )


def render_record(rec: AnalysisRecord) -> str:
    """The file's text: one top-level `analysis:` mapping (the ApplicationSet reads `.analysis`)."""
    buf = io.StringIO()
    yaml.safe_dump({"analysis": rec.model_dump()}, buf, sort_keys=False, allow_unicode=True)
    return _HEADER.format(model=rec.model, env=rec.env) + buf.getvalue()


def parse_record(text: str | None, source: str) -> AnalysisRecord | None:
    if not text or not text.strip():
        return None
    try:
        doc = yaml.safe_load(text) or {}
        return AnalysisRecord.model_validate(doc["analysis"])
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"{source}: not an analysis record: {exc}") from exc


def record_verdict(settings: PlatformSettings, rec: AnalysisRecord) -> str | None:
    """Push `rec` to main when its state differs from the recorded one; the commit, else None.

    A record main already has in the same state is left alone (its `since` stays the time the
    state began). An unreadable record on main is replaced rather than blocking the analysis.
    """
    repo = GitopsRepo.open(settings)
    path = record_path(rec.model, rec.env)
    with repo.session():
        text = repo.git("show", f"{repo.main}:{path}", check=False)
        try:
            current = parse_record(text, path)
        except BadInputError:
            current = None
        if current is not None and current.state_key() == rec.state_key():
            return None
        target = repo.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_record(rec), encoding="utf-8")
        repo.git("add", "--", path)
        subject = (
            f"Canary analysis of {rec.model} {rec.canary_version} in {rec.env}: {rec.verdict} "
            f"at {rec.weight}%"
        )
        msg = f"{subject}\n\nRecorded for Argo CD; changes nothing that runs.\n"
        repo.git("commit", "-q", "-F", "-", input=msg)
        sha = repo.rev("HEAD")
        repo.git("push", "-q", "origin", f"HEAD:refs/heads/{repo.branch}")
        repo.git("fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*")
    return sha


def exit_code_scheduled(decision: str, exit_code: int) -> int:
    """The CronJob's exit code: a WAIT is the normal state of a scheduled analysis, not a
    failed run. Argo CD's own CronJob health check turns Degraded when the last run failed,
    which would mark the whole Application Degraded for as long as the analysis waits; so the
    scheduled run exits 0 on WAIT (and keeps 1 for an abort, 2 for anything it could not do)."""
    return 0 if decision == "wait" else exit_code
