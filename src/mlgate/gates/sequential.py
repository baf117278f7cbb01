"""Always-valid decisions for checks that are re-run on a schedule (the canary's hourly looks).

Why: a fixed-sample test at level alpha, re-run every hour on the growing data with no
correction, is a new chance to be wrong at every run: under a true null its chance of ever
rejecting grows toward 1 with the number of looks (tests/test_sequential.py shows it). A canary
analysis is exactly that schedule, so its re-run checks decide with a method whose error rate
holds over every look at once.

Method `mixture` (default): the normal-mixture confidence sequence (Robbins 1970; Howard,
Ramdas, McAuliffe & Sekhon 2021, the two-sided normal-mixture boundary; for A/B tests the mSPRT
of Johari, Pekelis & Walsh 2017). An effect estimate theta_hat with standard error se carries
information I = 1 / se^2; S = (theta_hat - theta) x I behaves like a Brownian motion in I, and
mixing exp(lambda S - lambda^2 I / 2) over lambda ~ N(0, tau^2) gives the test martingale

    M = sqrt(rho / (I + rho)) x exp(S^2 / (2 (I + rho))),  rho = 1 / tau^2.

Ville's inequality, P(sup M >= 1/alpha) <= alpha, turns it into the confidence sequence

    theta in theta_hat +- sqrt((I + rho) log((I + rho) / (rho alpha^2))) / I,

which covers the true effect at every look simultaneously with probability >= 1 - alpha,
however many looks are taken and whenever. `e_value` is M at theta = the check's threshold:
the evidence against "the effect sits exactly at the tolerance". tau (the mixture's spread) is
`mixture_scale` x the check's margin, fixed before any data (from the policy): the boundary is
tightest for effects of about that size.

Method `fixed_horizon` (the classical baseline, kept for comparison and for policies that
want it): wait until the information planned for power `power` at the margin,
((z_{1-alpha/2} + z_power) / margin)^2, then test once at level alpha: accept when the
(1 - alpha) interval clears the tolerance, otherwise reject (the study is over). Valid only
because it tests once; looking earlier decides nothing.

Error rate: with either method, the chance of a wrong verdict (rejecting an effect on the good
side of the threshold, or accepting one on the bad side) is at most alpha over the whole
analysis.

Assumptions: observations are independent (random routing of requests makes the canary's and
stable's samples independent; loans are independent of each other); the estimate is close to
normal with its estimated standard error (an asymptotic confidence sequence, Waudby-Smith,
Arbour, Sinha, Kennedy & Ramdas 2023: exact for Gaussian data with known variance, valid as
the sample grows otherwise; hence the callers' minimum counts before any verdict); the
threshold and tau are fixed before the data are seen.

Decisions: `reject` when the interval lies wholly on the worse side of the threshold (FAIL),
`accept` when wholly on the better side (no worse than the tolerance: PASS), else `continue`
(WAIT) with `n_needed`: the sample size at which the interval would exclude the threshold if
the estimate stayed where it is (what would end the wait).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel
from scipy import optimize, stats

from mlgate.gates.policy import SequentialPolicy
from mlgate.gates.result import GateResult, GateStatus

Worse = Literal["above", "below"]  # which side of the threshold is the bad one
Verdict = Literal["reject", "accept", "continue"]


class Evidence(BaseModel):
    """The evidence so far and what it decides; flat scalars, so it reads as gate metrics."""

    method: str
    alpha: float
    estimate: float
    se: float
    threshold: float
    worse: Worse
    lower: float
    upper: float
    n: int
    information: float
    decision: Verdict
    e_value: float | None = None  # mixture: the test martingale against theta = threshold
    planned_information: float | None = None  # fixed_horizon: when the one test is taken
    n_needed: int | None = None  # continue: n at which the interval would clear the threshold

    def metrics(self, prefix: str = "seq_") -> dict[str, Any]:
        return {f"{prefix}{k}": v for k, v in self.model_dump().items()}

    def wait_text(self, unit: str = "observations") -> str:
        """What would end the wait, in words (empty unless the decision is `continue`)."""
        if self.decision != "continue":
            return ""
        if self.n <= 0:
            return f"no {unit} yet: nothing decides until some arrive"
        if self.method == "fixed_horizon":
            return f"the fixed-horizon test is taken at about {self.n_needed} {unit} (now {self.n})"
        if self.n_needed is None:
            return "the estimate sits on the tolerance: no sample size decides at this effect"
        return f"at the current effect a verdict needs about {self.n_needed} {unit} (now {self.n})"


def mixture_precision(margin: float, scale: float) -> float:
    """rho = 1 / tau^2 with tau = scale x margin (the effect size the boundary is tuned to)."""
    tau = scale * margin
    if not tau > 0:
        raise ValueError(f"mixture spread must be positive (margin {margin}, scale {scale})")
    return 1.0 / tau**2


def mixture_halfwidth(information: float, rho: float, alpha: float) -> float:
    """Half-width of the normal-mixture confidence sequence at information I (see module)."""
    v = information + rho
    return math.sqrt(v * math.log(v / (rho * alpha**2))) / information


def mixture_e_value(estimate: float, threshold: float, information: float, rho: float) -> float:
    v = information + rho
    s = (estimate - threshold) * information
    log_m = 0.5 * math.log(rho / v) + s * s / (2 * v)
    return math.exp(min(log_m, 700.0))


def decide(
    estimate: float,
    se: float,
    n: int,
    *,
    threshold: float,
    worse: Worse,
    margin: float,
    policy: SequentialPolicy,
) -> Evidence:
    """The decision on an effect estimate (and its standard error from n observations)
    against `threshold`, bad on the `worse` side, with the policy's method and alpha."""
    if not (math.isfinite(estimate) and math.isfinite(se) and se >= 0):
        raise ValueError(f"estimate {estimate} / standard error {se} must be finite")
    alpha = policy.alpha
    # No observations decide nothing: a zero standard error from an empty sample is not
    # certainty (fail closed, WAIT), whatever the estimate defaults to.
    info = 0.0 if n <= 0 else math.inf if se == 0 else 1.0 / se**2
    base: dict[str, Any] = {
        "method": policy.method,
        "alpha": alpha,
        "estimate": estimate,
        "se": se,
        "threshold": threshold,
        "worse": worse,
        "n": n,
        "information": info,
    }
    if n <= 0:
        return Evidence(**base, lower=-math.inf, upper=math.inf, decision="continue")
    if policy.method == "fixed_horizon":
        z = stats.norm.ppf(1 - alpha / 2)
        planned = ((z + stats.norm.ppf(policy.power)) / margin) ** 2
        half = z * se
        lo, hi = estimate - half, estimate + half
        if info < planned:
            need = math.ceil(n * planned / info) if n and info > 0 else None
            return Evidence(
                **base,
                lower=lo,
                upper=hi,
                decision="continue",
                planned_information=planned,
                n_needed=need,
            )
        good = hi < threshold if worse == "above" else lo > threshold
        return Evidence(
            **base,
            lower=lo,
            upper=hi,
            decision="accept" if good else "reject",
            planned_information=planned,
        )
    rho = mixture_precision(margin, policy.mixture_scale)
    half = 0.0 if math.isinf(info) else mixture_halfwidth(info, rho, alpha)
    lo, hi = estimate - half, estimate + half
    e_value = math.inf if math.isinf(info) else mixture_e_value(estimate, threshold, info, rho)
    if (lo > threshold) if worse == "above" else (hi < threshold):
        decision: Verdict = "reject"
    elif (hi < threshold) if worse == "above" else (lo > threshold):
        decision = "accept"
    else:
        decision = "continue"
    need = None
    gap = abs(estimate - threshold)
    if decision == "continue" and gap > 0 and n > 0:
        # Information scales with n at a fixed mix: solve halfwidth(I') = gap for I' >= I.
        def f(i: float) -> float:
            return mixture_halfwidth(i, rho, alpha) - gap

        hi_i = info * 2
        while f(hi_i) > 0 and hi_i < info * 1e12:
            hi_i *= 4
        if f(hi_i) <= 0:
            need = math.ceil(n * optimize.brentq(f, info, hi_i) / info)
    return Evidence(**base, lower=lo, upper=hi, decision=decision, e_value=e_value, n_needed=need)


def decide_range(
    low: float,
    high: float,
    se: float,
    n: int,
    *,
    threshold: float,
    worse: Worse,
    margin: float,
    policy: SequentialPolicy,
) -> Evidence:
    """The decision when part of the effect is known only to lie in a range: a set too small
    to estimate (a handful of requests the versions decide differently, fewer outcomes than
    the normal approximation needs) bounded by its worst and best case instead. Waiting on
    such a set for its 30 outcomes would wait for ever when it holds 2 requests in 5,000;
    bounding it is conservative: accept only if even the worst case is accepted, reject only
    if even the best case is rejected (the error rate of `decide` holds at each bound, so it
    holds for the truth between them)."""
    bad, good = (high, low) if worse == "above" else (low, high)
    ev_bad = decide(bad, se, n, threshold=threshold, worse=worse, margin=margin, policy=policy)
    if low == high or ev_bad.decision == "accept":
        return ev_bad
    ev_good = decide(good, se, n, threshold=threshold, worse=worse, margin=margin, policy=policy)
    if ev_good.decision == "reject":
        return ev_good
    return ev_bad.model_copy(
        update={
            "decision": "continue",
            "lower": min(ev_bad.lower, ev_good.lower),
            "upper": max(ev_bad.upper, ev_good.upper),
        }
    )


def range_case(ev: Evidence) -> str:
    """Which end of a `decide_range` the interval `ev` reports is at, for a summary that
    prints it beside the point estimate: an accept is the worst case's interval, a reject the
    best case's, a wait spans both (so "x1.00, CI [x2.43, x2.43]" is not read as one)."""
    return {"accept": "worst case", "reject": "best case"}.get(ev.decision, "worst to best case")


def as_result(
    ev: Evidence,
    name: str,
    summary: str,
    metrics: dict[str, Any],
    *,
    fail_reason: str,
    wait_summary: str,
    wait_reason: str,
) -> GateResult:
    """One mapping of a sequential decision to a check's status, for every re-run check:
    reject is FAIL, accept is PASS, anything else waits (INCONCLUSIVE), never PASS."""
    if ev.decision == "reject":
        return GateResult(
            name=name,
            status=GateStatus.FAIL,
            summary=summary,
            reasons=[fail_reason],
            metrics=metrics,
        )
    if ev.decision == "accept":
        return GateResult(name=name, status=GateStatus.PASS, summary=summary, metrics=metrics)
    return GateResult(
        name=name,
        status=GateStatus.INCONCLUSIVE,
        summary=wait_summary,
        reasons=[wait_reason],
        metrics=metrics,
    )
