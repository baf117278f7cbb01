"""Sequential decisions over hourly looks, and the canary's P&L as outcomes mature.

Monte Carlo checks are seeded (not flaky) and judged with a tolerance from the binomial: the
always-valid method's chance of ever deciding wrongly over many looks stays <= alpha, while a
fixed-sample test re-run at every look exceeds it (why the canary needs the former)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlgate.canary.analysis import CanaryState, Traffic, judge
from mlgate.canary.pnl import pnl_check, roll_rates
from mlgate.gates.inputs import HoldoutScores
from mlgate.gates.policy import GatePolicy, SequentialPolicy
from mlgate.gates.sequential import decide, decide_range

ALPHA = 0.05
REPS, LOOKS, PER_LOOK = 600, 40, 50


# Textbook estimators fed to `decide` below: the always-valid property is the boundary's,
# whatever the (asymptotically normal) estimate it is given.
def mean_estimate(values: np.ndarray) -> tuple[float, float]:
    """(mean, standard error) of independent observations."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        raise ValueError(f"a mean's standard error needs 2 observations, got {len(x)}")
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x)))


def two_proportions(
    k1: int, n1: int, k2: int, n2: int, scale: Literal["difference", "log_ratio"] = "difference"
) -> tuple[float, float]:
    """(estimate, standard error) comparing proportion k1/n1 with k2/n2: their difference
    (Wald), or the log of their ratio (delta method, half a count added to every cell so a
    zero count stays finite)."""
    if min(n1, n2) < 1:
        raise ValueError(f"proportions need observations on both sides (n1={n1}, n2={n2})")
    if scale == "log_ratio":
        a, b = k1 + 0.5, k2 + 0.5
        m1, m2 = n1 + 1.0, n2 + 1.0
        est = math.log(a / m1) - math.log(b / m2)
        return est, math.sqrt(1 / a - 1 / m1 + 1 / b - 1 / m2)
    p1, p2 = k1 / n1, k2 / n2
    return p1 - p2, math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)


def binomial_ceiling(p: float, reps: int) -> float:
    """Upper end of the 99.9% range of a rate p over reps runs (a seeded test, not a flake)."""
    return float(stats.binom.ppf(0.999, reps, p) / reps)


def test_the_mixture_method_keeps_alpha_over_many_looks_where_a_naive_test_does_not() -> None:
    pol = SequentialPolicy(alpha=ALPHA)
    rng = np.random.default_rng(11)
    threshold = 0.3  # the truth sits exactly on the threshold: any verdict is wrong
    wrong_seq = wrong_naive = 0
    z = stats.norm.ppf(1 - ALPHA / 2)
    for _ in range(REPS):
        x = rng.normal(threshold, 2.0, size=LOOKS * PER_LOOK)
        seq = naive = False
        for look in range(1, LOOKS + 1):
            est, se = mean_estimate(x[: look * PER_LOOK])
            ev = decide(
                est, se, look * PER_LOOK, threshold=threshold, worse="above", margin=0.5, policy=pol
            )
            seq |= ev.decision != "continue"
            naive |= abs(est - threshold) > z * se  # the fixed-sample test, re-run every hour
        wrong_seq += seq
        wrong_naive += naive
    assert wrong_seq / REPS <= binomial_ceiling(ALPHA, REPS), wrong_seq
    # 40 uncorrected looks: far above alpha (about 0.3 in theory for this many looks).
    assert wrong_naive / REPS > binomial_ceiling(ALPHA, REPS) * 2, wrong_naive


def test_the_risk_ratio_of_two_proportions_keeps_alpha_too() -> None:
    """Early delinquency, canary vs stable, the canary's true rate exactly limit x stable's."""
    pol = SequentialPolicy(alpha=ALPHA)
    rng = np.random.default_rng(5)
    limit, p_s = 1.3, 0.05
    wrong = 0
    for _ in range(REPS):
        c = rng.random(LOOKS * 100) < p_s * limit
        s = rng.random(LOOKS * 400) < p_s
        for look in range(2, LOOKS + 1):
            kc, nc = int(c[: look * 100].sum()), look * 100
            ks, ns = int(s[: look * 400].sum()), look * 400
            est, se = two_proportions(kc, nc, ks, ns, scale="log_ratio")
            ev = decide(
                est, se, nc + ns, threshold=np.log(limit), worse="above",
                margin=np.log(limit), policy=pol,
            )  # fmt: skip
            if ev.decision != "continue":
                wrong += 1
                break
    assert wrong / REPS <= binomial_ceiling(ALPHA, REPS), wrong


def test_a_clear_effect_is_rejected_and_a_clear_good_one_accepted_with_the_wait_named() -> None:
    pol = SequentialPolicy()
    bad = decide(2.0, 0.3, 500, threshold=1.0, worse="above", margin=1.0, policy=pol)
    assert bad.decision == "reject" and bad.lower > 1.0 and bad.e_value and bad.e_value > 20
    good = decide(0.0, 0.2, 500, threshold=1.0, worse="above", margin=1.0, policy=pol)
    assert good.decision == "accept" and good.upper < 1.0
    unsure = decide(0.6, 0.3, 500, threshold=1.0, worse="above", margin=1.0, policy=pol)
    assert unsure.decision == "continue" and unsure.lower < 1.0 < unsure.upper
    # What would end the wait: at the n it names, the same estimate decides.
    assert unsure.n_needed is not None and unsure.n_needed > 500
    se_then = 0.3 * np.sqrt(500 / unsure.n_needed)
    then = decide(
        0.6, se_then, unsure.n_needed, threshold=1.0, worse="above", margin=1.0, policy=pol
    )
    assert then.decision == "accept"
    assert "needs about" in unsure.wait_text()
    # The fixed horizon decides nothing before its planned sample, then exactly once.
    fixed = SequentialPolicy(method="fixed_horizon")
    early = decide(0.0, 0.5, 100, threshold=1.0, worse="above", margin=1.0, policy=fixed)
    assert early.decision == "continue" and early.n_needed and early.n_needed > 100
    done = decide(0.97, 0.05, 5000, threshold=1.0, worse="above", margin=1.0, policy=fixed)
    assert done.decision == "reject"  # non-inferiority not shown when the study ends


# --- P&L on maturing outcomes -----------------------------------------------------------------

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def history(n: int = 20_000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Matured loans: 12-month default and its 3-month early flag (60% of defaulters were
    early-delinquent, 2% of the others)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.06).astype(float)
    early = (rng.random(n) < np.where(y == 1, 0.6, 0.02)).astype(float)
    return early, y


def requests(n: int, pd_shift: float, seed: int = 8, y_share: float = 0.0) -> Traffic:
    """Every request scored by both; the canary's PDs are `pd_shift` x stable's (optimistic
    below 1: it approves riskier applicants). Outcomes only where the serving version
    approved; early flags for all of those, 12-month outcomes for `y_share` of them."""
    rng = np.random.default_rng(seed)
    true_pd = np.clip(rng.beta(1.5, 9, size=n), 1e-4, 0.9)
    pd_stable = true_pd
    pd_canary = np.clip(true_pd * pd_shift, 1e-4, 0.99)
    served = rng.random(n) < 0.3
    default = rng.random(n) < true_pd
    early = (rng.random(n) < np.where(default, 0.6, 0.02)).astype(float)
    approved = np.where(served, pd_canary < 0.15, pd_stable < 0.15)
    early = np.where(approved, early, np.nan)
    y = np.where(approved & (rng.random(n) < y_share), default.astype(float), np.nan)
    return Traffic(
        scores=HoldoutScores(
            y=y,
            pd_challenger=pd_canary,
            pd_champion=pd_stable,
            early=early,
            groups=pd.DataFrame({"sex": rng.choice(["A", "B"], size=n)}),
        ),  # fmt: skip
        canary_served=served,
    )


def test_roll_rates_come_from_history_and_are_stated() -> None:
    early, y = history()
    roll = roll_rates(early, y, "canary holdout")
    assert roll is not None
    truth = 0.06 * 0.6 / (0.06 * 0.6 + 0.94 * 0.02)  # P(default | early) in this history
    assert abs(roll.roll_rate - truth) < 0.05
    assert roll.n_delinquent == int(((early == 1) & np.isfinite(y)).sum())
    assert "early-delinquent loans" in roll.text() and str(roll.n_delinquent) in roll.text()
    assert roll_rates(None, y, "x") is None


def test_a_worse_pnl_canary_fails_once_enough_outcomes_matured() -> None:
    policy = GatePolicy()
    roll = roll_rates(*history(), "canary holdout")
    res = pnl_check(**_args(requests(40_000, 0.35), roll), policy=policy)
    assert res.status == "FAIL", res.summary
    assert res.metrics["seq_upper"] < -policy.canary.pnl_tolerance
    assert res.metrics["roll_rate_n"] == roll.n_delinquent  # type: ignore[union-attr]
    assert "roll rate" in res.summary
    # Too few matured loans where the versions disagree: WAIT, naming the count.
    thin = pnl_check(**_args(requests(100, 0.35), roll), policy=policy)
    assert thin.status == "INCONCLUSIVE", thin.summary
    assert "too few matured outcomes (min 30)" in thin.summary and "matured" in thin.summary


def test_a_handful_of_differing_requests_is_bounded_not_waited_on() -> None:
    """A retrain that decides 3 requests of 20,000 differently: their outcomes may never be
    seen (30 needed), but even if every one defaulted the uplift is within the tolerance."""
    policy = GatePolicy()
    roll = roll_rates(*history(), "canary holdout")
    t = requests(20_000, 1.0)
    pd_c = np.asarray(t.scores.pd_champion).copy()
    flip = np.flatnonzero(pd_c >= 0.15)[:3]
    pd_c[flip] = 0.01  # the canary approves 3 applicants stable declines
    t.scores.pd_challenger = pd_c
    res = pnl_check(**_args(t, roll), policy=policy)
    assert res.status == "PASS", res.summary
    assert "the CI is the bounded sets' worst case" in res.summary
    assert "canary only: 3 requests" in res.summary
    assert res.metrics["matured_canary_only"] < 30


def test_decide_range_accepts_only_the_worst_case_and_rejects_only_the_best() -> None:
    seq = GatePolicy().canary.sequential
    kw = {"threshold": 0.26, "worse": "above", "margin": 0.26, "policy": seq}
    assert decide_range(0.0, 0.1, 0.01, 10_000, **kw).decision == "accept"  # type: ignore[arg-type]
    assert decide_range(0.0, 0.5, 0.01, 10_000, **kw).decision == "continue"  # type: ignore[arg-type]
    assert decide_range(0.4, 0.5, 0.01, 10_000, **kw).decision == "reject"  # type: ignore[arg-type]
    spread = decide_range(0.0, 0.5, 0.01, 10_000, **kw)  # type: ignore[arg-type]
    assert spread.lower < 0.0 and spread.upper > 0.5


def test_a_straddling_pnl_waits_and_says_what_would_end_the_wait() -> None:
    policy = GatePolicy()
    roll = roll_rates(*history(), "canary holdout")
    res = pnl_check(**_args(requests(3_000, 0.5), roll), policy=policy)
    assert res.status == "INCONCLUSIVE", res.summary
    assert res.metrics["seq_lower"] < -policy.canary.pnl_tolerance < res.metrics["seq_upper"]
    assert "straddles" in res.summary and "needs about" in res.summary
    assert res.metrics["seq_n_needed"] > res.metrics["seq_n"]


def test_twelve_month_outcomes_are_used_once_they_exist() -> None:
    policy = GatePolicy()
    t = requests(40_000, 0.35, y_share=1.0)
    without_roll = pnl_check(**_args(t, None), policy=policy)  # no history: 12-month only
    assert without_roll.status == "FAIL", without_roll.summary
    assert without_roll.metrics["with_12m_outcome"] > 1000
    none = requests(40_000, 0.35)
    assert pnl_check(**_args(none, None), policy=policy).status == "INCONCLUSIVE"


def test_no_observations_decide_nothing_and_an_identical_canary_never_passes_on_zero_loans() -> (
    None
):
    for method in ("mixture", "fixed_horizon"):
        pol = SequentialPolicy(alpha=ALPHA, method=method)
        ev = decide(0.0, 0.0, 0, threshold=-1.0, worse="below", margin=1.0, policy=pol)
        assert ev.decision == "continue" and "no matured" in ev.wait_text("matured loans")
    # A canary that decides every one of 40,000 requests as stable does has no disagreement
    # set: its P&L on them equals stable's by construction, judged on the requests (not 0
    # matured loans); with no requests at all nothing is decided.
    roll = roll_rates(*history(), "canary holdout")
    same = requests(40_000, 1.0)
    res = pnl_check(**_args(same, roll), policy=GatePolicy())
    assert res.metrics["matured_canary_only"] == res.metrics["matured_stable_only"] == 0
    assert res.status == "PASS" and res.metrics["seq_n"] == 40_000, res.summary


def _args(t: Traffic, roll: object) -> dict[str, object]:
    return {"scores": t.scores, "canary_served": t.canary_served, "roll": roll, "cutoff": 0.15}


def test_the_judge_aborts_a_worse_pnl_canary_and_waits_then_aborts_on_a_straddling_one() -> None:
    policy = GatePolicy()
    roll = roll_rates(*history(), "canary holdout")

    def state(hours: float) -> CanaryState:
        return CanaryState(
            model="m", env="prod", stable_version="1", canary_version="2", weight=10,
            cutoff=0.15, started=NOW - timedelta(hours=hours), now=NOW,
        )  # fmt: skip

    bad = judge(state(5), requests(40_000, 0.35), None, None, policy, roll)
    assert bad.decision == "abort"
    assert any(r.startswith("pnl:") for r in bad.reasons), bad.reasons
    pnl = bad.report.gate("pnl")
    assert pnl.status == "FAIL" and pnl.metrics["roll_rate"] == roll.roll_rate  # type: ignore[union-attr]
    unsure = requests(3_000, 0.5)
    assert judge(state(5), unsure, None, None, policy, roll).decision == "wait"
    late = judge(state(200), unsure, None, None, policy, roll)
    assert late.decision == "abort" and "deadline" in late.reasons[0]
    assert any(r.startswith("pnl:") and "straddles" in r for r in late.reasons)


def test_the_policy_names_its_sequential_method_and_tolerance() -> None:
    from mlgate.gates.policy import load_policy

    pol = load_policy("config/policies/credit_risk.yaml")
    assert pol.canary.sequential.method == "mixture" and pol.canary.sequential.alpha == 0.05
    assert pol.canary.pnl_tolerance > 0
    with pytest.raises(ValueError, match="method"):
        SequentialPolicy(method="peek_every_hour")  # type: ignore[arg-type]
