"""Judge a running prod canary on the requests it served: advance, promote, wait or abort.

The same gate code as a promotion, on live evidence instead of the holdout:
- volume: the canary answered at least `canary.min_requests` requests (else WAIT) and did not
  fail clearly more of them than stable (requests logged with no answer: 5xx, timeouts, no
  answer at all; else ABORT). Requests a version refused as bad input (4xx) are reported
  (`canary_refused`, `stable_refused`) and are not failures: the caller sent bad input;
- drift: the served requests against the canary's training set, relative to the stable
  version's (drift both share is the population's, see gates/drift.py);
- fairness: the canary's decisions vs the stable version's on the same requests (every request
  is scored by both: the served score is logged, the other is a shadow score), four-fifths rule
  and no worse than stable beyond the tolerance;
- early delinquency: the 3-month delinquency rate of the book the canary's decisions make
  against the book stable's make, on the same requests (`same_request_books`), as a risk ratio
  against `monitor.early_delinquency_ratio`, once each side has `canary.min_early_labels`
  outcomes (else WAIT);
- P&L: the canary's profit per request against stable's on the same requests, from early
  delinquency through roll rates estimated from history and from 12-month outcomes once they
  exist (`canary.pnl`), against `canary.pnl_tolerance`.
The checks re-run every hour on growing data, so early delinquency and P&L decide with an
always-valid method (`gates.sequential`, policy `canary.sequential`): FAIL when the canary is
clearly worse, PASS when clearly no worse than the tolerance, WAIT in between, with the
evidence so far and what would end the wait in the report. Analysing every hour does not raise
the error rate.
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

from mlgate.canary.pnl import MIN_OUTCOMES, RollRates, pnl_check
from mlgate.gates.decisions import Cutoffs
from mlgate.gates.drift import drift_gate
from mlgate.gates.fairness import fairness_gate
from mlgate.gates.inputs import DriftData, HoldoutScores
from mlgate.gates.monitor import Expected
from mlgate.gates.policy import GatePolicy
from mlgate.gates.registry import guarded
from mlgate.gates.result import GateReport, GateResult, GateStatus
from mlgate.gates.sequential import as_result, decide_range, range_case
from mlgate.gates.verdict import assemble

Decision = Literal["advance", "promote", "wait", "abort"]
EXIT_CODES: dict[str, int] = {"advance": 0, "promote": 0, "abort": 1, "wait": 3}
# Early outcomes needed in each set the versions decide differently before its rate is used:
# below this the normal approximation the confidence sequence rests on is poor (as canary.pnl).
MIN_DIFFERING_OUTCOMES = MIN_OUTCOMES


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
    unanswered: dict[str, int] = Field(default_factory=dict)  # predictor -> logged, no answer
    refused: dict[str, int] = Field(default_factory=dict)  # predictor -> refused as bad input


@dataclass
class Traffic:
    """Served requests, each scored by both versions.

    `scores.pd_challenger` is the canary's PD and `scores.pd_champion` the stable version's on
    every request; `scores.early` the 3-month outcome where known (NaN otherwise); `scores.groups`
    the protected attributes; `canary_served` which requests the canary answered."""

    scores: HoldoutScores
    canary_served: np.ndarray
    # Requests routed to each version that got no answer (the router logged the request, the
    # predictor never answered it): a dead or failing canary shows here, not in `scores`.
    canary_errors: int = 0
    stable_errors: int = 0
    # Requests each version refused as bad input (4xx): the caller's fault, reported beside
    # the errors and never counted as one (any version refuses a request that breaks the
    # serving contract).
    canary_refused: int = 0
    stable_refused: int = 0


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
    metrics: dict[str, float | int | None] = {
        "canary_requests": n, "requests": total, "min_requests": need}  # fmt: skip
    failed = error_check(traffic, n, total, policy, metrics)
    if failed is not None:
        return failed
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


def error_check(
    traffic: Traffic | None,
    answered: int,
    total: int,
    policy: GatePolicy,
    metrics: dict[str, float | int | None],
) -> GateResult | None:
    """FAIL when the canary fails clearly more of its requests than stable does: the lower
    99% Wilson bound of its error rate above stable's rate + `canary.max_error_rate`. A
    canary killed mid-analysis stops answering, so its answered count alone could still
    reach the volume and promote it; counting its failures is what stops that."""
    if traffic is None:
        return None
    errs_c, errs_s = traffic.canary_errors, traffic.stable_errors
    n_c, n_s = answered + errs_c, (total - answered) + errs_s
    rate_s = errs_s / n_s if n_s else 0.0
    metrics.update(canary_errors=errs_c, stable_errors=errs_s, max_error_rate=(
        policy.canary.max_error_rate), canary_refused=traffic.canary_refused,
        stable_refused=traffic.stable_refused)  # fmt: skip
    if not n_c:
        return None
    rate_c = errs_c / n_c
    z = 2.5758  # one-sided 99.5%: a transient error or two never aborts a canary
    centre = (rate_c + z * z / (2 * n_c)) / (1 + z * z / n_c)
    half = z * np.sqrt(rate_c * (1 - rate_c) / n_c + z * z / (4 * n_c * n_c)) / (1 + z * z / n_c)
    lower = max(centre - half, 0.0)
    metrics.update(canary_error_rate=rate_c, canary_error_rate_lower=lower,
                   stable_error_rate=rate_s)  # fmt: skip
    limit = rate_s + policy.canary.max_error_rate
    if lower <= limit:
        return None
    summary = (
        f"canary failed {errs_c} of {n_c} requests ({rate_c:.1%}, at least {lower:.1%}) vs "
        f"stable {rate_s:.1%} + {policy.canary.max_error_rate:.1%} allowed"
    )
    return GateResult(
        name="volume",
        status=GateStatus.FAIL,
        summary=summary,
        reasons=[f"{summary}: the canary does not answer"],
        metrics=metrics,
    )


class Books(BaseModel):
    """Both versions' books on the same requests: their early-delinquency rates and the log
    risk ratio's standard error (see `same_request_books`)."""

    canary_rate: float
    stable_rate: float
    log_ratio: float
    se: float
    shared_loans: int  # booked by both: outcome seen whichever version served
    canary_only_seen: int  # loans only the canary books, outcome seen (canary served)
    stable_only_seen: int
    # A differing set with too few outcomes to estimate is bounded instead (all its loans bad
    # or all good): the log ratio lies in [low, high], both log_ratio when none is bounded.
    log_ratio_low: float
    log_ratio_high: float
    bounded: list[str] = Field(default_factory=list)


def same_request_books(
    approve_canary: np.ndarray,
    approve_stable: np.ndarray,
    canary_served: np.ndarray,
    early: np.ndarray,
) -> Books:
    """The early-delinquency rate of each version's book on the same requests.

    Why not the rate of the loans each version booked from its own share of the traffic: the
    two shares are different applicants, so even two versions that decide every request alike
    differ by sampling noise, and a confidence sequence on that noise can wait for ever (a
    retrain on the same data, x1.09 on 20,000 loans, never clears a x1.3 limit). Every request
    is scored by both versions, so both decisions are known for all of them. Loans both
    approve are in both books and their outcome is seen whichever version served: they count
    in full on both sides. Loans only one version approves are seen only where that version
    served; routing is random per request, so those seen are a random sample of the set, scaled
    by the share of the set that version served (inverse probability). The uncertainty is
    only in those differing sets (binomial, delta method, half a count added so a zero stays
    finite); with no differing request the books are the same and so are their rates. A
    differing set with fewer than MIN_DIFFERING_OUTCOMES outcomes is not estimated but
    bounded: its loans (the set's size x the share of booked loans whose outcome is seen) all
    bad or all good, so a set of 2 requests in 5,000 barely moves the ratio and a large unseen
    one keeps the check waiting (`gates.sequential.decide_range`).
    A request's outcome is NaN until it matures (and for declined requests); maturity does not
    depend on routing, so the seen share is the same in each set."""
    a_c = np.asarray(approve_canary, dtype=bool)
    a_s = np.asarray(approve_stable, dtype=bool)
    served = np.asarray(canary_served, dtype=bool)
    e = np.asarray(early, dtype=float)
    seen = np.isfinite(e)
    booked = np.where(served, a_c, a_s)
    seen_share = float((booked & seen).sum()) / max(int(booked.sum()), 1)
    both = a_c & a_s & seen
    shared_bad, shared_n = float(e[both].sum()), int(both.sum())
    # name -> (bad, seen loans, variance of bad, outcomes used, bounded size)
    parts: dict[str, tuple[float, float, float, int, float]] = {}
    bounded: list[str] = []
    for name, only, mine in (
        ("canary only", a_c & ~a_s, served),
        ("stable only", a_s & ~a_c, ~served),
    ):
        total = int(only.sum())
        sampled = only & mine
        m_seen = int((sampled & seen).sum())
        if total == 0:
            parts[name] = (0.0, 0.0, 0.0, 0, 0.0)
        elif m_seen < MIN_DIFFERING_OUTCOMES:
            size = total * seen_share
            bounded.append(f"{name}: {total} requests, {m_seen} early outcomes")
            parts[name] = (0.0, 0.0, 0.0, m_seen, size)
        else:
            scale = total / max(int(sampled.sum()), 1)  # 1 / the share of the set it served
            k = float(e[sampled & seen].sum())
            p = (k + 0.5) / (m_seen + 1.0)
            # the set's seen loans at full scale, and the variance of its bad count there
            parts[name] = (scale * k, scale * m_seen, scale**2 * m_seen * p * (1 - p), m_seen, 0.0)
    bad_c, n_c, var_c, m_c, size_c = parts["canary only"]
    bad_s, n_s, var_s, m_s, size_s = parts["stable only"]

    def log_ratio(extra_bad_c: float, extra_bad_s: float) -> float:
        x_c = shared_bad + bad_c + extra_bad_c + 0.5
        x_s = shared_bad + bad_s + extra_bad_s + 0.5
        d_c, d_s = shared_n + n_c + size_c + 1.0, shared_n + n_s + size_s + 1.0
        return float(np.log(x_c / d_c) - np.log(x_s / d_s))

    x_c, x_s = shared_bad + bad_c + 0.5, shared_bad + bad_s + 0.5
    point = float(np.log(x_c / (shared_n + n_c + 1.0)) - np.log(x_s / (shared_n + n_s + 1.0)))
    return Books(
        canary_rate=(shared_bad + bad_c) / max(shared_n + n_c, 1.0),
        stable_rate=(shared_bad + bad_s) / max(shared_n + n_s, 1.0),
        log_ratio=point,
        se=float(np.sqrt(var_c / x_c**2 + var_s / x_s**2)),
        shared_loans=shared_n,
        canary_only_seen=m_c,
        stable_only_seen=m_s,
        # low: the canary's bounded loans all good, stable's all bad; high: the reverse
        log_ratio_low=log_ratio(0.0, size_s) if bounded else point,
        log_ratio_high=log_ratio(size_c, 0.0) if bounded else point,
        bounded=bounded,
    )


def early_check(
    traffic: Traffic | None, expected: Expected | None, cutoff: float, policy: GatePolicy
) -> GateResult:
    """Early delinquency of the canary's book against stable's on the same requests: the
    risk ratio's confidence sequence against the policy's limit (`same_request_books`)."""
    name = "early_delinquency"
    if traffic is None or traffic.scores.early is None:
        return GateResult.inconclusive(name, "no early outcomes for the served requests yet")
    s = traffic.scores
    if s.pd_champion is None:
        return GateResult.inconclusive(name, "no stable score on the requests")
    mine = np.asarray(traffic.canary_served, dtype=bool)
    early = np.asarray(s.early, dtype=float)
    seen = np.isfinite(early)
    approve_c, approve_s = s.pd_challenger < cutoff, s.pd_champion < cutoff
    booked_c = mine & seen & approve_c
    booked_s = ~mine & seen & approve_s
    n_c, n_s = int(booked_c.sum()), int(booked_s.sum())
    k_c, k_s = int(early[booked_c].sum()), int(early[booked_s].sum())
    limit = policy.monitor.early_delinquency_ratio
    metrics: dict[str, float | int | str | None] = {
        "n": n_c,
        "n_stable": n_s,
        "observed_rate": k_c / n_c if n_c else None,
        "stable_early_rate": k_s / n_s if n_s else None,
        "limit": limit,
    }
    if expected is not None and expected.early_per_pd is not None and n_c:
        metrics["expected_rate"] = min(
            float(expected.early_per_pd * s.pd_challenger[booked_c].mean()), 1.0
        )
    need = max(policy.canary.min_early_labels, 1)
    if min(n_c, n_s) < need:
        return GateResult.inconclusive(
            name,
            f"too few booked loans with an early outcome: canary {n_c}, stable {n_s} "
            f"(min {need} each)",
            **metrics,
        )
    books = same_request_books(approve_c, approve_s, mine, early)
    metrics.update(
        canary_book_rate=books.canary_rate,
        stable_book_rate=books.stable_rate,
        shared_loans=books.shared_loans,
        canary_only_seen=books.canary_only_seen,
        stable_only_seen=books.stable_only_seen,
    )
    margin = float(np.log(limit))
    ev = decide_range(
        books.log_ratio_low,
        books.log_ratio_high,
        books.se,
        n_c + n_s,
        threshold=margin,
        worse="above",
        margin=margin,
        policy=policy.canary.sequential,
    )
    seq = policy.canary.sequential
    lo, hi = float(np.exp(ev.lower)), float(np.exp(ev.upper))
    metrics.update(
        ratio=float(np.exp(books.log_ratio)), ratio_lower=lo, ratio_upper=hi, **ev.metrics()
    )
    summary = (
        f"early delinquency of the canary's book {books.canary_rate:.2%} vs stable's "
        f"{books.stable_rate:.2%} on the same requests ({books.shared_loans} loans in both, "
        f"{books.canary_only_seen} canary-only and {books.stable_only_seen} stable-only seen): "
        f"x{np.exp(books.log_ratio):.2f}, {1 - seq.alpha:.0%} {seq.method} CI "
        f"[x{lo:.2f}, x{hi:.2f}] vs limit x{limit}"
    )
    if books.bounded:
        summary += (
            f"; the CI is the bounded sets' {range_case(ev)}, too few outcomes to estimate: "
            + ", ".join(books.bounded)
        )
    wait = ev.wait_text("booked loans with an early outcome")
    return as_result(
        ev,
        name,
        summary,
        metrics,
        fail_reason=f"{summary}: the canary's loans go bad early",
        wait_summary=f"{summary}: {wait}",
        wait_reason=f"CI straddles x{limit}; {wait}",
    )


def next_step(weight: int, policy: GatePolicy) -> int | None:
    """The next weight of the schedule after `weight` (None or 100: promote)."""
    return policy.canary.next_step(weight)


def judge(
    state: CanaryState,
    traffic: Traffic | None,
    drift: DriftData | None,
    expected: Expected | None,
    policy: GatePolicy,
    roll: RollRates | None = None,
) -> CanaryVerdict:
    """The verdict on the canary; `roll`: the roll rates the P&L converts early outcomes
    with (from the canary's matured history; None: only 12-month outcomes value a loan)."""
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
    if traffic is None or not len(traffic.scores):
        checks.append(GateResult.inconclusive("pnl", "no served requests"))
    else:
        t = traffic
        checks.append(
            guarded("pnl", lambda: pnl_check(t.scores, t.canary_served, roll, state.cutoff, policy))
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
