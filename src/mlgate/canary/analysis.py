"""Judge a running prod canary on the requests it served: advance, promote, wait or abort.

The same gate code as a promotion, on live evidence instead of the holdout:
- volume: the canary answered at least `canary.min_requests` requests (else WAIT);
- drift: the served requests against the canary's training set, relative to the stable
  version's (drift both share is the population's, see gates/drift.py);
- fairness: the canary's decisions vs the stable version's on the same requests (every request
  is scored by both: the served score is logged, the other is a shadow score), four-fifths rule
  and no worse than stable beyond the tolerance;
- early delinquency: among requests the canary served and approved whose 3-month outcome is
  known, observed vs expected for their PD mix (the canary's own holdout ratio), once there are
  `canary.min_early_labels` of them (else WAIT).
Any FAIL aborts. All PASS moves to the next step of `canary.steps` (the last one promotes).
Anything inconclusive waits, until `canary.deadline_hours` after the canary started: a canary
that cannot show its evidence in time is aborted, never promoted by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from mlgate.gates.decisions import Cutoffs
from mlgate.gates.drift import drift_gate
from mlgate.gates.fairness import fairness_gate
from mlgate.gates.inputs import DriftData, HoldoutScores
from mlgate.gates.monitor import Expected, early_delinquency_gate
from mlgate.gates.policy import GatePolicy
from mlgate.gates.registry import guarded
from mlgate.gates.result import GateReport, GateResult, GateStatus
from mlgate.gates.verdict import assemble

Decision = Literal["advance", "promote", "wait", "abort"]
EXIT_CODES: dict[str, int] = {"advance": 0, "promote": 0, "abort": 1, "wait": 3}


class CanaryState(BaseModel):
    """What git says runs: the stable and canary versions, the weight, when the canary began."""

    model: str
    env: str
    stable_version: str
    canary_version: str
    weight: int
    cutoff: float
    started: datetime | None = None
    now: datetime
    dropped_requests: int = 0  # logged requests that could not be re-scored (no full vector)


@dataclass
class Traffic:
    """Served requests, each scored by both versions.

    `scores.pd_challenger` is the canary's PD and `scores.pd_champion` the stable version's on
    every request; `scores.early` the 3-month outcome where known (NaN otherwise); `scores.groups`
    the protected attributes; `canary_served` which requests the canary answered."""

    scores: HoldoutScores
    canary_served: np.ndarray


class CanaryVerdict(BaseModel):
    decision: Decision
    next_weight: int | None = None
    reasons: list[str] = Field(default_factory=list)
    report: GateReport

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]


def volume_check(traffic: Traffic | None, policy: GatePolicy) -> GateResult:
    need = policy.canary.min_requests
    n = 0 if traffic is None else int(np.asarray(traffic.canary_served, dtype=bool).sum())
    total = 0 if traffic is None else len(traffic.scores)
    metrics = {"canary_requests": n, "requests": total, "min_requests": need}
    if n < need:
        return GateResult.inconclusive(
            "volume", f"canary served {n} requests (min {need})", **metrics
        )
    return GateResult(
        name="volume",
        status=GateStatus.PASS,
        summary=f"canary served {n} of {total} requests",
        metrics=metrics,
    )


def early_check(
    traffic: Traffic | None, expected: Expected | None, cutoff: float, policy: GatePolicy
) -> GateResult:
    """Early delinquency of the loans the canary itself approved."""
    name = "early_delinquency"
    if traffic is None or traffic.scores.early is None:
        return GateResult.inconclusive(name, "no early outcomes for the served requests yet")
    if expected is None:
        return GateResult.inconclusive(name, "no early-delinquency baseline on the holdout")
    s = traffic.scores
    mine = np.asarray(traffic.canary_served, dtype=bool)
    early = np.asarray(s.early, dtype=float)
    res = early_delinquency_gate(
        early[mine],
        s.pd_challenger[mine],
        cutoff,
        expected,
        policy,
        min_n=policy.canary.min_early_labels,
    )
    stable = ~mine & np.isfinite(early)
    if s.pd_champion is not None:
        stable &= s.pd_champion < cutoff
        if stable.any():
            res.metrics["stable_early_rate"] = float(early[stable].mean())
    return res


def next_step(weight: int, policy: GatePolicy) -> int | None:
    """The next weight of the schedule after `weight` (None or 100: promote)."""
    return policy.canary.next_step(weight)


def judge(
    state: CanaryState,
    traffic: Traffic | None,
    drift: DriftData | None,
    expected: Expected | None,
    policy: GatePolicy,
) -> CanaryVerdict:
    cut = Cutoffs("fixed", state.cutoff, state.cutoff, np.ones(0, dtype=bool))
    checks = [volume_check(traffic, policy)]
    if drift is None:
        checks.append(GateResult.inconclusive("drift", "no served requests to compare"))
    else:
        checks.append(guarded("drift", lambda: drift_gate(drift, policy)))
    if traffic is None or not len(traffic.scores):
        checks.append(GateResult.inconclusive("fairness", "no served requests"))
    else:
        t = traffic
        checks.append(guarded("fairness", lambda: fairness_gate(t.scores, policy, cut)))
    checks.append(
        guarded("early_delinquency", lambda: early_check(traffic, expected, state.cutoff, policy))
    )
    report = assemble(
        model=state.model,
        challenger=state.canary_version,
        champion=state.stable_version,
        env=state.env,
        policy=policy,
        results=checks,
        data_info={"canary_weight": state.weight, "analysis": "canary (served requests)"},
        kind="canary-analysis",
    )
    overall = report.overall
    failing = [f"{c.name}: {c.summary}" for c in report.gates if c.status == GateStatus.FAIL]
    if failing:
        return CanaryVerdict(decision="abort", reasons=failing, report=report)
    if overall == GateStatus.PASS:
        nxt = next_step(state.weight, policy)
        if nxt is None or nxt >= 100:
            return CanaryVerdict(decision="promote", reasons=["every check passed"], report=report)
        return CanaryVerdict(
            decision="advance", next_weight=nxt, reasons=["every check passed"], report=report
        )
    waiting = [f"{c.name}: {c.summary}" for c in report.gates if c.status != GateStatus.PASS]
    if state.started is not None:
        hours = (state.now - state.started).total_seconds() / 3600
        report.data["canary_age_hours"] = round(hours, 2)
        if hours > policy.canary.deadline_hours:
            why = (
                f"no verdict {hours:.0f} h after the canary started "
                f"(deadline {policy.canary.deadline_hours} h)"
            )
            return CanaryVerdict(decision="abort", reasons=[why, *waiting], report=report)
    return CanaryVerdict(decision="wait", reasons=waiting, report=report)
