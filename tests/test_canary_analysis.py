"""Canary analysis on constructed traffic whose right verdict is known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from mlgate.canary.analysis import CanaryState, Traffic, judge, same_request_books
from mlgate.gates.inputs import HoldoutScores
from mlgate.gates.monitor import Expected
from mlgate.gates.policy import GatePolicy
from tests.gates_data import drift_data, world

NOW = datetime(2026, 6, 1, tzinfo=UTC)
EXPECTED = Expected(auc=0.8, early_per_pd=0.5)


@pytest.fixture(scope="module")
def policy() -> GatePolicy:
    return GatePolicy()


def state(weight: int = 10, hours: float = 2.0) -> CanaryState:
    return CanaryState(
        model="credit_risk",
        env="prod",
        stable_version="1",
        canary_version="2",
        weight=weight,
        cutoff=0.15,
        started=NOW - timedelta(hours=hours),
        now=NOW,
    )


def traffic(
    n: int = 30_000, share: float = 0.3, lenient: float = 1.0, penalty_b: float = 0.0
) -> Traffic:
    """Requests scored by both versions (the same calibrated PD unless the canary penalises
    group B or under-states risk: its PD x `lenient`); early delinquency ~ 0.5 x the true PD
    (stable's), whichever version served: a loan's outcome is its applicant's."""
    w = world(n, seed=4)
    rng: np.random.Generator = w["rng"]  # type: ignore[assignment]
    pd_stable = w["weak_pd"]
    sex = rng.choice(["A", "B"], size=n)
    pd_canary = np.where(sex == "B", pd_stable + penalty_b, pd_stable) * lenient
    served = rng.random(n) < share
    early = (rng.random(n) < np.minimum(0.5 * pd_stable, 1)).astype(float)
    early[rng.random(n) < 0.4] = np.nan  # loans too young for an outcome
    return Traffic(
        scores=HoldoutScores(
            y=np.full(n, np.nan),
            pd_challenger=pd_canary,
            pd_champion=pd_stable,
            groups=pd.DataFrame({"sex": sex}),
            early=early,
        ),
        canary_served=served,
    )


def shared_drift() -> object:
    d = drift_data()
    d.champion_reference = drift_data(seed=1).reference
    return d


def test_a_good_canary_advances_then_promotes(policy: GatePolicy) -> None:
    # Showing the early rate is no worse than x1.3 stable's takes tens of thousands of loans.
    v = judge(state(10), traffic(n=120_000), shared_drift(), EXPECTED, policy)  # type: ignore[arg-type]
    assert v.decision == "advance" and v.next_weight == 25, v.reasons
    assert v.exit_code == 0 and v.report.overall == "PASS"
    assert v.report.challenger == "2" and v.report.champion == "1"
    last = judge(state(50), traffic(n=120_000), shared_drift(), EXPECTED, policy)  # type: ignore[arg-type]
    assert last.decision == "promote" and last.next_weight is None


def test_too_little_evidence_waits_then_aborts_at_the_deadline(policy: GatePolicy) -> None:
    thin = traffic(n=3000, share=0.1)  # about 300 canary requests, min 1000
    v = judge(state(hours=5), thin, shared_drift(), EXPECTED, policy)  # type: ignore[arg-type]
    assert v.decision == "wait" and v.exit_code == 3
    assert any(r.startswith("volume:") for r in v.reasons)
    late = judge(state(hours=200), thin, shared_drift(), EXPECTED, policy)  # type: ignore[arg-type]
    assert late.decision == "abort" and "deadline 168 h" in late.reasons[0]
    nothing = judge(state(), None, None, EXPECTED, policy)
    assert nothing.decision == "wait"
    assert {g.name: g.status for g in nothing.report.gates}["volume"] == "INCONCLUSIVE"


def test_a_canary_that_declines_one_group_is_aborted(policy: GatePolicy) -> None:
    v = judge(state(), traffic(penalty_b=0.08), shared_drift(), EXPECTED, policy)  # type: ignore[arg-type]
    assert v.decision == "abort" and v.exit_code == 1
    assert v.reasons[0].startswith("fairness:") and "sex" in v.reasons[0]


def test_a_canary_whose_loans_go_bad_early_is_aborted(policy: GatePolicy) -> None:
    # It under-states risk: it books the riskier applicants stable declines.
    v = judge(state(), traffic(lenient=0.4), shared_drift(), EXPECTED, policy)  # type: ignore[arg-type]
    assert v.decision == "abort", v.reasons
    early = {g.name: g for g in v.report.gates}["early_delinquency"]
    assert early.status == "FAIL" and early.metrics["ratio"] > 1.3
    assert early.metrics["stable_early_rate"] < early.metrics["observed_rate"]


def test_drift_of_the_canary_own_is_an_abort(policy: GatePolicy) -> None:
    own = drift_data(shift={"f3": 1.0})
    own.champion_reference = drift_data(seed=2, shift={"f3": 1.0}).current
    v = judge(state(), traffic(), own, EXPECTED, policy)
    assert v.decision == "abort" and "f3" in v.reasons[0]


def test_request_log_errors_name_the_file_and_column(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mlgate.canary.run import read_requests
    from mlgate.errors import BadInputError

    log = pd.DataFrame({"x": [1.0, 2.0], "served_by": ["2", "1"]})
    good = tmp_path / "log.csv"
    log.to_csv(good, index=False)
    assert list(read_requests(good, ["x"], {"1", "2"})["served_by"]) == ["2", "1"]
    with pytest.raises(BadInputError, match=r"log.csv: missing column\(s\) y"):
        read_requests(good, ["x", "y"], {"1", "2"})
    with pytest.raises(BadInputError, match="served_by has version.* 1 that do not run"):
        read_requests(good, ["x"], {"2", "3"})
    with pytest.raises(BadInputError, match="file not found"):
        read_requests(tmp_path / "none.parquet", ["x"], {"1"})


def test_versions_that_decide_alike_have_the_same_book(policy: GatePolicy) -> None:
    """A retrain on the same data decides every request as stable does: its book is stable's,
    whatever sampling noise separates the loans each happened to serve (the README's v2)."""
    t = traffic(n=40_000, share=0.5)
    mine = np.asarray(t.canary_served)
    e = np.asarray(t.scores.early)
    booked = np.isfinite(e) & (t.scores.pd_champion < 0.15)
    served_rates = np.nanmean(e[booked & mine]), np.nanmean(e[booked & ~mine])
    assert served_rates[0] != served_rates[1]  # the two halves differ by chance
    books = same_request_books(t.scores.pd_challenger < 0.15, t.scores.pd_champion < 0.15, mine, e)
    assert books.log_ratio == 0 and books.se == 0
    assert books.canary_rate == books.stable_rate
    early = {g.name: g for g in judge(state(50), t, shared_drift(), EXPECTED, policy).report.gates}  # type: ignore[arg-type]
    assert early["early_delinquency"].status == "PASS"


def test_the_books_estimate_what_each_version_would_book_on_all_requests() -> None:
    """Loans only one version approves are seen only where it served: scaled by its share,
    the estimate matches the rate of its whole book (known here, unknowable in production)."""
    rng = np.random.default_rng(11)
    n = 200_000
    risk = rng.beta(1.2, 12, n)
    bad = (rng.random(n) < risk).astype(float)
    a_s = risk < 0.10
    a_c = risk * 0.6 < 0.10  # lenient: books riskier applicants too
    served = rng.random(n) < 0.2
    seen = rng.random(n) < 0.7  # matured, whoever served
    booked = np.where(served, a_c, a_s) & seen
    early = np.where(booked, bad, np.nan)
    books = same_request_books(a_c, a_s, served, early)
    true_c, true_s = bad[a_c & seen].mean(), bad[a_s & seen].mean()
    assert books.stable_rate == pytest.approx(true_s, rel=0.03)
    assert books.canary_rate == pytest.approx(true_c, rel=0.05)
    assert abs(books.log_ratio - np.log(true_c / true_s)) < 3 * books.se
    assert books.canary_only_seen > 0 and books.stable_only_seen == 0


def test_a_few_differing_requests_are_bounded_a_large_unseen_set_waits(
    policy: GatePolicy,
) -> None:
    t = traffic(n=30_000, share=0.3)
    pd_c = np.asarray(t.scores.pd_challenger).copy()
    risky = np.flatnonzero(np.asarray(t.scores.pd_champion) >= 0.15)
    pd_c[risky[:3]] = 0.0  # 3 requests only the canary approves: even all bad, no matter
    t.scores.pd_challenger = pd_c
    early = {g.name: g for g in judge(state(50), t, shared_drift(), EXPECTED, policy).report.gates}  # type: ignore[arg-type]
    assert early["early_delinquency"].status == "PASS", early["early_delinquency"].summary
    assert "the CI is the bounded sets' worst case" in early["early_delinquency"].summary
    # Thousands the canary alone approves, none matured yet: all bad would breach x1.3.
    pd_c[risky] = 0.0
    e = np.asarray(t.scores.early).copy()
    e[risky] = np.nan
    t.scores.pd_challenger, t.scores.early = pd_c, e
    early = {g.name: g for g in judge(state(50), t, shared_drift(), EXPECTED, policy).report.gates}  # type: ignore[arg-type]
    assert early["early_delinquency"].status == "INCONCLUSIVE", early["early_delinquency"].summary
    assert "the CI is the bounded sets' worst to best case" in early["early_delinquency"].summary
