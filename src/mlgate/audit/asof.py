"""The gate report of a change on main, verified as of when it was merged.

`pr merge` verified the report against what git ran then: the champion was the stable version
of the environment before the change, and a canary analysis had to judge the canary running
then. Re-verifying it later against today's main would fail every old promotion, so the audit
hands the one verifier (`gitops.evidence.verify_evidence`: store + sha256, identity,
`gates.verify`) the champion and canary of the commit's first parent. What is still checked
against today: the stored bytes (tampering after the merge shows) and the MLflow version. The
policy is the one in force at the merge: `pr merge` records the digest of the policy it verified
the report under (`Gate-Policy:`) and stores that policy by digest (`gitops.policy_store`), so
the report is verified against exactly those values; a report judged under another policy than
the merge's is a gap. A commit without `Gate-Policy:` (merged before the merge recorded it) is
verified against the policy in force now.
"""

from __future__ import annotations

from typing import cast

from pydantic import BaseModel, Field

from mlgate.audit.mainline import MainCommit, Mainline
from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError, MlgateError
from mlgate.gates.result import ReportKind
from mlgate.gates.verify import CanaryClaim
from mlgate.gitops.evidence import claim_of, verify_evidence
from mlgate.records.trailers import REPORT_KINDS


class ReportCheck(BaseModel):
    """A change's gate report and whether it verifies (as of the merge)."""

    sha256: str | None  # the Gate-Report trailer; None: the commit names none
    verified: bool
    overall: str | None = None  # PASS / FAIL / INCONCLUSIVE as the verified report says
    where: str | None = None  # which stored copy answered
    problem: str | None = None
    problems: list[str] = Field(default_factory=list)


def canary_claim_at(
    settings: PlatformSettings, mainline: Mainline, rev: str | None, model: str, env: str
) -> CanaryClaim:
    """The canary main ran in `env` as of commit `rev`: what a canary promotion merged on top
    of `rev` had to have judged."""
    rel = mainline.release_at(rev, model, env)
    if rev is None or rel is None or rel.canary_version is None or rel.canary_weight is None:
        raise BadInputError(f"no canary of {model} ran in {env} before this change")
    return claim_of(
        settings, model, env, rel.canary_version, rel.canary_weight, rel.stable_version, rev
    )


def report_check(
    settings: PlatformSettings, mainline: Mainline, commit: MainCommit
) -> ReportCheck | None:
    """The verified gate report of `commit`; None for a change that needs none (weight steps,
    aborts, rollbacks, commits mlgate did not write)."""
    t = commit.trailers
    if t is None or t.change not in REPORT_KINDS:
        return None
    if t.gate_report in (None, "none"):
        if t.overridden:
            return ReportCheck(
                sha256=None, verified=True, problem=f"gates overridden: {t.override_reason}"
            )
        return ReportCheck(
            sha256=None,
            verified=False,
            problem="the commit names no gate report and the gates were not overridden",
        )
    kind = cast(ReportKind, REPORT_KINDS[t.change])
    sha = t.gate_report
    try:
        if not t.model_version:
            raise BadInputError("the commit has no Model-Version")
        before = mainline.release_at(commit.parent, t.model, t.environment)
        canary = (
            canary_claim_at(settings, mainline, commit.parent, t.model, t.environment)
            if kind == "canary-analysis"
            else None
        )
        rep = verify_evidence(
            settings,
            sha,
            model=t.model,
            version=t.model_version,
            env=t.environment,
            kind=kind,
            override=t.overridden,
            canary=canary,
            champion=lambda: before.stable_version if before is not None else None,
            policy_sha256=t.gate_policy,
        )
    except MlgateError as exc:
        return ReportCheck(
            sha256=sha, verified=False, problem=exc.message, problems=list(exc.problems)
        )
    return ReportCheck(sha256=sha, verified=True, overall=rep.overall, where=rep.path)
