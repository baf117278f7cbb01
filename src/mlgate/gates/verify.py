"""Verify a gate report against the policy in force: the evidence a promotion rests on.

A report is a file; anyone can write one that says PASS. So a promotion never takes a report's
word: it takes the stored bytes whose sha256 the commit names (`mlgate.gitops.report_store`)
and checks them here, a pure function of the report, what is promoted and the policy:
- the kind of judgement: a promotion report for `promote`, a canary analysis for
  `canary promote` (of this canary: its start commit and weight, decision PROMOTE);
- the policy it was judged under is the policy in force now (`GatePolicy.digest`), the
  version's training data is the data the report saw (`data_fingerprint`), and the champion it
  was compared with is the stable version git runs in the environment now (`champion`);
- the gates are exactly the ones the policy requires there, each with the blocking flag the
  policy gives it, and `overall`/`verdict` are recomputed from the gate statuses: a report that
  says PASS over a failing gate is refused, whatever it claims.
Identity (model, version, environment) is checked by the caller, which knows the canonical
version. Malformed evidence is exit 2; evidence that is not what is promoted, or does not
add up, is refused (exit 1); a verified report that is INCONCLUSIVE is exit 3.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ValidationError

from mlgate.errors import BadInputError, GateFailed, Inconclusive
from mlgate.gates.policy import GatePolicy
from mlgate.gates.result import GateReport, GateStatus, ReportKind
from mlgate.gates.verdict import CANARY_CHECKS, assemble
from mlgate.gates.verdict import required_gates as _required
from mlgate.records.values import canonical_version

__all__ = ["CANARY_CHECKS", "parse_report", "required_gates", "verify_report"]


class EvidenceRefused(GateFailed):
    """The report is not evidence for this change (exit 1): nothing is committed or merged."""


class CanaryClaim(BaseModel):
    """The canary as git runs it now: what a canary analysis must have judged."""

    start_commit: str
    started: str  # ISO time of the start commit
    weight: int
    stable_version: str


class Claim(BaseModel):
    """What is being promoted, as far as the report must agree with it."""

    kind: ReportKind
    data_fingerprint: str | None
    canary: CanaryClaim | None = None
    # A promotion report's champion: the stable version git runs in the env now (None: nothing
    # runs there). A canary analysis is checked against `canary.stable_version` instead.
    champion: str | None = None


def parse_report(raw: bytes, where: str) -> GateReport:
    """The stored bytes as a GateReport; anything else is malformed (exit 2, fields named)."""
    try:
        return GateReport.model_validate_json(raw)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg']}"
            for e in exc.errors()[:10]
        ]
        raise BadInputError(f"{where}: not a gate report mlgate wrote", problems=problems) from None


def required_gates(report: GateReport, policy: GatePolicy) -> dict[str, bool]:
    """Gate name -> blocking, as the policy in force requires them for this report's kind."""
    return _required(report.kind, policy, report.env)


def verify_report(report: GateReport, claim: Claim, policy: GatePolicy, where: str) -> GateReport:
    """Refuse (EvidenceRefused / Inconclusive) unless the report is verified evidence that the
    claimed change passed; returns the report. See the module docstring for the checks."""
    problems: list[str] = []
    if report.kind != claim.kind:
        want = "a canary analysis" if claim.kind == "canary-analysis" else "a promotion report"
        problems.append(f"kind: {report.kind!r}, but this change needs {want} ({claim.kind!r})")
    if not report.policy_sha256:
        problems.append("policy_sha256: missing (the report does not say which policy judged it)")
    elif report.policy_sha256 != policy.digest:
        problems.append(
            f"policy_sha256: judged under policy {report.policy_sha256[:12]}, the policy in force "
            f"({policy.source_file}) is {str(policy.digest)[:12]}: re-run the gates"
        )
    if not claim.data_fingerprint:
        problems.append("data_fingerprint: the version has no data fingerprint in MLflow")
    elif report.data_fingerprint != claim.data_fingerprint:
        problems.append(
            f"data_fingerprint: the report saw {report.data_fingerprint!r}, the version was "
            f"trained on {claim.data_fingerprint!r}"
        )
    problems += _gate_problems(report, policy)
    if claim.kind == "canary-analysis":
        problems += _canary_problems(report, claim.canary, policy)
    elif _canonical(report.champion) != _canonical(claim.champion):
        problems.append(
            f"champion: judged against {report.champion!r}, but {claim.champion!r} runs stable "
            f"in {report.env} now: re-run the gates"
        )
    if problems:
        raise EvidenceRefused(
            f"{where}: gate report not verified; nothing was committed", problems=problems
        )
    if report.overall != GateStatus.PASS:
        short = [
            f"{g.name} {g.status.value}: {r}"
            for g in report.gates
            if g.blocking and g.status != GateStatus.PASS
            for r in (g.reasons or [g.summary or "no reason recorded"])
        ]
        text = (
            f"gate report {where} says {report.overall.value}: {report.model} "
            f"{report.challenger} is not promoted to {report.env}; nothing was committed"
        )
        if report.overall == GateStatus.INCONCLUSIVE:
            raise Inconclusive(text, problems=short)
        raise EvidenceRefused(text, problems=short)
    return report


def _gate_problems(report: GateReport, policy: GatePolicy) -> list[str]:
    """The report re-derived by the one assembler (`gates.verdict.assemble`) from its own gate
    results under the policy in force: the gate set, each blocking flag, `enforced`,
    `overall` and `verdict` must be what that gives."""
    want = required_gates(report, policy)
    names = [g.name for g in report.gates]
    out = []
    if sorted(names) != sorted(want):
        out.append(
            f"gates: the report has [{', '.join(names)}], the policy requires "
            f"[{', '.join(want)}] in {report.env}"
        )
        return out
    again = assemble(
        model=report.model,
        challenger=report.challenger,
        champion=report.champion,
        env=report.env,
        policy=policy,
        results=report.gates,
        kind=report.kind,
    )
    for g in report.gates:
        if g.blocking != want[g.name]:
            out.append(
                f"gates.{g.name}.blocking: {g.blocking}, the policy in force says {want[g.name]}"
            )
    if report.enforced != again.enforced:
        out.append(f"enforced: {report.enforced}, the policy in force says {again.enforced}")
    if report.overall != again.overall:
        out.append(
            f"overall: says {report.overall.value}, its gates add up to {again.overall.value}"
        )
    if report.verdict != again.verdict:
        out.append(
            f"verdict: says {report.verdict.value}, its gates add up to {again.verdict.value}"
        )
    return out


def _canary_problems(
    report: GateReport, claim: CanaryClaim | None, policy: GatePolicy
) -> list[str]:
    """A canary analysis of this canary, made after it started, whose decision is PROMOTE."""
    run = report.canary
    if run is None or claim is None:
        return ["canary: the report does not name the canary it judged"]
    out = []
    if run.start_commit != claim.start_commit:
        out.append(
            f"canary.start_commit: {run.start_commit[:10]}, the running canary started at "
            f"{claim.start_commit[:10]} (an analysis of another canary)"
        )
    if _when(report.created, "created") < _when(claim.started, "canary start"):
        out.append(f"created: {report.created}, before the canary started ({claim.started})")
    if report.champion != claim.stable_version:
        out.append(f"champion: {report.champion!r}, the stable version is {claim.stable_version!r}")
    if run.weight != claim.weight:
        out.append(f"canary.weight: {run.weight}%, the canary runs at {claim.weight}%")
    if report.data.get("outcomes_simulated"):  # `canary analyze --simulate-outcomes`
        out.append(
            "data.outcomes_simulated: the analysis judged outcomes drawn from the synthetic "
            "world's oracle, not the canary's real loans; it can abort a canary, never promote one"
        )
    nxt = policy.canary.next_step(run.weight)
    promotes = report.overall == GateStatus.PASS and (nxt is None or nxt >= 100)
    if run.decision != "promote" or not promotes:
        out.append(
            f"canary.decision: {run.decision!r}; at {run.weight}% with {report.overall.value} the "
            f"policy's steps {policy.canary.steps} say {'promote' if promotes else 'not promote'}"
        )
    return out


def _canonical(version: str | None) -> str | None:
    try:
        return None if version is None else canonical_version(version, "champion")
    except BadInputError:
        return f"unparseable {version!r}"  # never equal to a real version


def _when(text: str, field: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadInputError(f"{field}: {text!r} is not an ISO time") from exc
    return t if t.tzinfo else t.replace(tzinfo=UTC)
