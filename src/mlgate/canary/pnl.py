"""The canary's P&L against stable's on the same requests, as outcomes mature.

Every request is scored by both versions (the served score and the other one, re-scored), so
both decisions are known for every applicant. Where they agree, the P&L is the same whichever
version served. What differs is the requests one version approves and the other declines, and
their outcome is seen only when the version that served the request approved it. Routing is
random per request, so the served part of each such set is a random sample of it:

    uplift per request = q_cs x mean(d | canary approves, stable declines)
                       + q_sc x mean(d | stable approves, canary declines),

the shares q from every request (no outcome needed), the means from the loans booked in each
set whose outcome has matured (as a difference estimator: the gain stable's PD expects, known
for every request of the set, plus the matured loans' mean deviation from it; unbiased by the
random routing whatever the PD's quality, and less noisy), d = the profit of the canary's decision minus stable's under the
policy's cost model (`gates.decisions.row_profit`, the P&L gate's valuation). A loan's default
probability is its 12-month outcome once known, else its early-delinquency outcome converted
with rates estimated from history (`RollRates`, from the matured loans where both are known,
stated in the report with their counts): the roll rate (the share 3-month delinquent that
defaulted within 12 months) and, per loan, Bayes' rule on stable's PD with the early flag's
rates among defaulters and non-defaulters. A flat roll rate would value a current loan at
the portfolio's cure rate whatever its risk, and undervalue exactly the riskier loans a
lenient canary books; stable's PD is the prior for both versions alike (the incumbent's, so
a canary cannot improve its own valuation by scoring lower).

The uplift's confidence sequence (`gates.sequential`) decides against -`canary.pnl_tolerance`:
FAIL when it is clearly below (the canary loses money), PASS when clearly above, WAIT while it
straddles the tolerance, with what would end the wait; the canary judge aborts at its deadline.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel

from mlgate.gates.decisions import amounts, approve, row_profit
from mlgate.gates.inputs import HoldoutScores
from mlgate.gates.policy import GatePolicy
from mlgate.gates.result import GateResult
from mlgate.gates.sequential import as_result, decide_range, range_case

NAME = "pnl"
# Matured loans needed in each set the versions decide differently before its mean is used:
# below this the normal approximation the confidence sequence rests on is poor.
MIN_OUTCOMES = 30


class RollRates(BaseModel):
    """12-month default given the 3-month status, estimated from matured history."""

    roll_rate: float  # P(default within 12 months | 30+ dpd at 3 months)
    current_default_rate: float  # P(default within 12 months | current at 3 months)
    n_delinquent: int
    n_current: int
    source: str
    early_if_default: float  # P(30+ dpd at 3 months | default within 12 months)
    early_if_good: float  # P(30+ dpd at 3 months | no default)

    @property
    def n(self) -> int:
        return self.n_delinquent + self.n_current

    def text(self) -> str:
        return (
            f"roll rate {self.roll_rate:.1%} of {self.n_delinquent} early-delinquent loans, "
            f"{self.current_default_rate:.1%} of {self.n_current} current ones "
            f"({self.source})"
        )


def roll_rates(early: np.ndarray | None, y: np.ndarray, source: str) -> RollRates | None:
    """Roll rates from loans whose 3-month and 12-month outcomes are both known; None when
    history holds neither a delinquent nor a current such loan."""
    if early is None:
        return None
    e, d = np.asarray(early, dtype=float), np.asarray(y, dtype=float)
    both = np.isfinite(e) & np.isfinite(d)
    late, current = both & (e == 1), both & (e == 0)
    if not late.any() or not current.any():
        return None
    return RollRates(
        roll_rate=float(d[late].mean()),
        current_default_rate=float(d[current].mean()),
        n_delinquent=int(late.sum()),
        n_current=int(current.sum()),
        source=source,
        early_if_default=float(e[both & (d == 1)].mean()) if (both & (d == 1)).any() else 1.0,
        early_if_good=float(e[both & (d == 0)].mean()) if (both & (d == 0)).any() else 0.0,
    )


def default_probability(
    early: np.ndarray | None,
    y: np.ndarray,
    roll: RollRates | None,
    prior: np.ndarray | None = None,
) -> np.ndarray:
    """Per request: the 12-month outcome where known, else the early outcome converted (with
    `prior`, a PD per request: Bayes' rule with the early flag's rates; without: the flat roll
    and current-default rates), else NaN (nothing matured yet)."""
    p = np.asarray(y, dtype=float).copy()
    if early is None or roll is None:
        return p
    e = np.asarray(early, dtype=float)
    fill = ~np.isfinite(p) & np.isfinite(e)
    if prior is None:
        p[fill] = np.where(e[fill] == 1, roll.roll_rate, roll.current_default_rate)
        return p
    q = np.clip(np.asarray(prior, dtype=float)[fill], 1e-6, 1 - 1e-6)
    a, b = roll.early_if_default, roll.early_if_good
    late = e[fill] == 1
    like_d = np.where(late, a, 1 - a)
    like_g = np.where(late, b, 1 - b)
    p[fill] = like_d * q / np.maximum(like_d * q + like_g * (1 - q), 1e-12)
    return p


def pnl_check(
    scores: HoldoutScores,
    canary_served: np.ndarray,
    roll: RollRates | None,
    cutoff: float,
    policy: GatePolicy,
) -> GateResult:
    """The canary's P&L uplift per request over stable's (see the module docstring)."""
    if scores.pd_champion is None:
        return GateResult.inconclusive(NAME, "no stable score on the requests")
    n = len(scores)
    mine = np.asarray(canary_served, dtype=bool)
    app_c = approve(scores.pd_challenger, cutoff)
    app_s = approve(scores.pd_champion, cutoff)
    p = default_probability(scores.early, scores.y, roll, scores.pd_champion)
    known = np.isfinite(p)
    amount = amounts(scores, policy.cost_model)
    pz = np.nan_to_num(p)
    yes, no = np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    prior = np.clip(np.nan_to_num(scores.pd_champion, nan=1.0), 0.0, 1.0)

    def gain_at(prob: np.ndarray) -> np.ndarray:  # approving instead of declining, per request
        cost = policy.cost_model
        return row_profit(yes, prob, amount, cost, 0.0) - row_profit(no, prob, amount, cost, 0.0)

    gain, expected_gain = gain_at(pz), gain_at(prior)
    sets = {
        "canary_only": (app_c & ~app_s, mine, 1.0),  # canary approves, stable declines
        "stable_only": (app_s & ~app_c, ~mine, -1.0),
    }
    tol = policy.canary.pnl_tolerance
    metrics: dict[str, Any] = {
        "requests": n,
        "pnl_tolerance": tol,
        "with_12m_outcome": int(np.isfinite(np.asarray(scores.y, dtype=float)).sum()),
    }
    if roll is not None:
        metrics.update(
            roll_rate=roll.roll_rate,
            roll_rate_n=roll.n_delinquent,
            current_default_rate=roll.current_default_rate,
            roll_history_n=roll.n,
            early_if_default=roll.early_if_default,
            early_if_good=roll.early_if_good,
            roll_source=roll.source,
        )
    estimate, var, short = 0.0, 0.0, []
    bound_lo = bound_hi = 0.0  # the bounded sets' share of the uplift lies in [lo, hi]
    means: dict[str, float] = {}
    for name, (in_set, served_by_approver, sign) in sets.items():
        q = float(in_set.mean()) if n else 0.0
        seen = in_set & served_by_approver & known
        m = int(seen.sum())
        metrics[f"share_{name}"] = q
        metrics[f"matured_{name}"] = m
        if q == 0:
            continue
        if m < MIN_OUTCOMES:
            # Too few outcomes to estimate the set's mean: bound it by every loan of the set
            # defaulting or none (`gates.sequential.decide_range`): 2 requests in 5,000 barely
            # move the uplift, a large unseen set keeps the check waiting.
            ends = np.stack(
                [sign * gain_at(np.ones(n))[in_set], sign * gain_at(np.zeros(n))[in_set]]
            )
            lo, hi = float(ends.min(axis=0).mean()), float(ends.max(axis=0).mean())
            bound_lo += q * lo
            bound_hi += q * hi
            var += max(lo * lo, hi * hi) * q * (1 - q) / n
            short.append(f"{name.replace('_', ' ')}: {int(in_set.sum())} requests, {m} matured")
            continue
        # Difference estimator: the gain stable's PD expects, known for every request of the
        # set, plus the matured loans' mean deviation from it. Unbiased whatever the PD's
        # quality (the matured loans are a random sample of the set); less noisy when the PD
        # explains part of the outcome.
        g0 = sign * expected_gain[in_set]
        resid = sign * gain[seen] - sign * expected_gain[seen]
        mu = float(g0.mean() + resid.mean())
        s2 = float(resid.var(ddof=1)) / m + float(g0.var()) / max(int(in_set.sum()), 1)
        means[name] = mu
        estimate += q * mu
        var += q * q * s2 + mu * mu * q * (1 - q) / n
    if len(means) == 2:  # the two shares are multinomial: negatively correlated
        var -= (
            2
            * means["canary_only"]
            * means["stable_only"]
            * (metrics["share_canary_only"] * metrics["share_stable_only"] / n)
        )
    wait_roll = "" if roll is not None else "; no roll rate from history (early outcomes unused)"
    # Where the versions decide no request differently (or only in bounded sets), the
    # observations are the requests themselves, not matured loans.
    ev = decide_range(
        estimate + bound_lo,
        estimate + bound_hi,
        float(np.sqrt(max(var, 0.0))),
        sum(metrics[f"matured_{k}"] for k in means) if means else n,
        threshold=-tol,
        worse="below",
        margin=tol,
        policy=policy.canary.sequential,
    )
    metrics.update(uplift_per_request=estimate, **ev.metrics())
    seq = policy.canary.sequential
    ci = f"{1 - seq.alpha:.0%} {seq.method} CI [{ev.lower:+.2f}, {ev.upper:+.2f}]"
    summary = f"P&L uplift/request {estimate:+.2f}, {ci} vs tolerance {-tol:+.2f}"
    if short:
        summary += (
            f"; the CI is the bounded sets' {range_case(ev)}, too few matured outcomes "
            f"(min {MIN_OUTCOMES}) to estimate: " + ", ".join(short)
        )
    if roll is not None:
        summary += f"; {roll.text()}"
    wait = ev.wait_text("matured loans decided differently")
    return as_result(
        ev,
        NAME,
        summary,
        metrics,
        fail_reason=f"canary earns less than stable on the same requests: {summary}",
        wait_summary=f"{summary}: straddles the tolerance; {wait}{wait_roll}",
        wait_reason=f"{ci} straddles the tolerance {-tol:+.2f}; {wait}",
    )
