"""The gates on constructed data whose right answer is known (see tests/gates_data.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from mlgate.gates import calibration
from mlgate.gates.calibration import calibration_gate
from mlgate.gates.decisions import choose_cutoffs, row_profit
from mlgate.gates.drift import drift_gate, numeric_drift
from mlgate.gates.evaluate import run_gates
from mlgate.gates.fairness import fairness_gate
from mlgate.gates.performance import delong, performance_gate
from mlgate.gates.pnl import bootstrap_mean, pnl_gate
from mlgate.gates.policy import GatePolicy
from mlgate.gates.result import GateStatus
from mlgate.gates.swap import swap_gate
from tests.gates_data import drift_data, holdout

P, F, INC = GateStatus.PASS, GateStatus.FAIL, GateStatus.INCONCLUSIVE


@pytest.fixture(scope="module")
def policy() -> GatePolicy:
    return GatePolicy()


def test_delong_matches_sklearn_auc_and_bootstrap_variance() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    y = rng.random(n) < 0.2
    s1 = y * 1.0 + rng.normal(size=n)
    s2 = s1 + rng.normal(scale=0.8, size=n)  # correlated with s1, weaker
    aucs, cov = delong(y, s1, s2)
    assert aucs[0] == pytest.approx(roc_auc_score(y, s1), abs=1e-12)
    assert aucs[1] == pytest.approx(roc_auc_score(y, s2), abs=1e-12)
    diffs = []
    for _ in range(250):
        i = rng.integers(0, n, n)
        diffs.append(roc_auc_score(y[i], s1[i]) - roc_auc_score(y[i], s2[i]))
    se_boot = float(np.std(diffs))
    se_delong = float(np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]))
    assert se_delong == pytest.approx(se_boot, rel=0.2)
    se_single = float(np.std([roc_auc_score(y[i], s1[i]) for i in _idx(rng, n, 250)]))
    assert float(np.sqrt(cov[0, 0])) == pytest.approx(se_single, rel=0.2)


def _idx(rng: np.random.Generator, n: int, k: int) -> list[np.ndarray]:
    return [rng.integers(0, n, n) for _ in range(k)]


def test_delong_small_known_value() -> None:
    # 2 positives, 3 negatives: AUC = (concordant + ties/2) / 6 = 5.5 / 6
    y = np.array([1, 1, 0, 0, 0])
    s = np.array([0.9, 0.4, 0.4, 0.3, 0.1])
    aucs, _ = delong(y, s)
    assert aucs[0] == pytest.approx(5.5 / 6)


def test_better_challenger_passes_performance_and_calibration(policy: GatePolicy) -> None:
    h = holdout("true", "weak")
    perf = performance_gate(h, policy)
    assert perf.status == P, perf.reasons
    assert perf.metrics["auc_diff_lower"] > 0.05
    assert calibration_gate(h, policy).status == P


def test_worse_challenger_fails_performance(policy: GatePolicy) -> None:
    res = performance_gate(holdout("weak", "true"), policy)
    assert res.status == F
    assert "worse than the champion" in res.reasons[0]


def test_miscalibrated_challenger_with_equal_auc_fails_naming_bands(policy: GatePolicy) -> None:
    h = holdout("weak", "weak")
    # A monotone distortion: same ranking (same AUC), PDs too low in the upper bands.
    h.pd_challenger = stats.norm.cdf(stats.norm.ppf(h.pd_champion) - 0.4)
    perf = performance_gate(h, policy)
    assert perf.metrics["auc_diff"] == pytest.approx(0.0, abs=1e-12)
    res = calibration_gate(h, policy)
    assert res.status == F
    assert res.metrics["failed_bands"]
    assert all(f"band {b}" in " ".join(res.reasons) for b in res.metrics["failed_bands"])
    assert "band" in res.summary


def test_first_version_below_floor_fails_and_above_passes(policy: GatePolicy) -> None:
    h = holdout("weak", None)
    rng = np.random.default_rng(1)
    h.pd_challenger = rng.uniform(0.01, 0.3, size=len(h))  # no skill: AUC ~ 0.5
    res = performance_gate(h, policy)
    assert res.status == F
    assert "below the floor" in res.reasons[0]
    assert performance_gate(holdout("true", None), policy).status == P


def test_missing_labels_inconclusive(policy: GatePolicy) -> None:
    h = holdout("true", "weak")
    h.y = np.full(len(h), np.nan)
    report = run_gates(
        model="m", challenger="2", champion="1", env="prod", policy=policy, holdout=h, drift=None
    )
    for name in ("performance", "calibration", "pnl"):
        assert report.gate(name).status == INC
    assert report.gate("drift").status == INC
    assert report.overall == INC


def test_nan_scores_inconclusive(policy: GatePolicy) -> None:
    h = holdout("true", "weak")
    h.pd_challenger = h.pd_challenger.copy()
    h.pd_challenger[h.labelled.nonzero()[0][:5]] = np.nan
    assert performance_gate(h, policy).status == INC
    assert calibration_gate(h, policy).status == INC


def test_no_drift_passes_and_two_shifted_features_fail_by_name(policy: GatePolicy) -> None:
    assert drift_gate(drift_data(), policy).status == P
    res = drift_gate(drift_data(shift={"f3": 1.0, "f5": -0.9}), policy)
    assert res.status == F
    assert set(res.metrics["act_features"]) == {"f3", "f5"}
    assert "f3" in res.summary and "f5" in res.summary


def test_drift_the_champion_shares_is_population_drift_not_the_challengers(
    policy: GatePolicy,
) -> None:
    shift = {"f3": 1.0, "f5": -0.9}
    shared = drift_data(shift=shift)
    shared.champion_reference = drift_data(seed=1).reference  # trained before the shift too
    res = drift_gate(shared, policy)
    assert res.status == P
    assert set(res.metrics["population_act_features"]) == {"f3", "f5"}
    assert res.metrics["act_features"] == []
    assert "population drift" in res.summary and "f3" in res.summary
    # The champion was trained on data like today's: the shift is the challenger's own.
    own = drift_data(shift=shift)
    own.champion_reference = drift_data(seed=2, shift=shift).current
    res = drift_gate(own, policy)
    assert res.status == F and set(res.metrics["act_features"]) == {"f3", "f5"}
    assert "champion 0.0" in res.reasons[0]
    # Switched off, or a champion reference too small to read: absolute levels again.
    off = policy.model_copy(
        update={"drift": policy.drift.model_copy(update={"relative_to_champion": False})}
    )
    assert drift_gate(shared, off).status == F
    tiny = drift_data(shift=shift)
    tiny.champion_reference = drift_data(seed=1).reference.head(50)
    assert drift_gate(tiny, policy).status == F


def test_drift_statistics_agree_with_scipy() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=3000), rng.normal(0.3, 1.2, size=2000)
    out = numeric_drift(a, b, 10)
    assert out["ks"] == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    assert out["wasserstein"] == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)


def test_drift_statistics_with_ties_agree_with_scipy() -> None:
    rng = np.random.default_rng(6)
    a = rng.poisson(3, size=4000).astype(float)  # a count feature: heavy ties
    b = rng.poisson(3.4, size=2500).astype(float)
    a[:40] = np.nan  # missing values are their own PSI bin, not part of the CDFs
    out = numeric_drift(a, b, 10)
    ok = a[np.isfinite(a)]
    assert out["ks"] == pytest.approx(stats.ks_2samp(ok, b).statistic, abs=1e-12)
    assert out["wasserstein"] == pytest.approx(stats.wasserstein_distance(ok, b), rel=1e-9)
    assert out["missing_reference"] == pytest.approx(0.01)


def test_psi_standard_error_matches_its_sampling_spread() -> None:
    rng = np.random.default_rng(8)
    ref = rng.normal(size=100_000)
    estimates, errors = [], []
    for _ in range(200):
        out = numeric_drift(ref, rng.normal(0.4, 1, size=5000), 10)
        estimates.append(out["psi"])
        errors.append(out["psi_se"])
    assert np.mean(errors) == pytest.approx(np.std(estimates), rel=0.2)
    stable = numeric_drift(ref, rng.normal(size=5000), 10)
    assert stable["psi_se"] < 0.01  # no drift: the gradient vanishes, no false alarms


def test_drift_too_few_rows_inconclusive(policy: GatePolicy) -> None:
    res = drift_gate(drift_data(n_cur=200), policy)
    assert res.status == INC and "too few rows" in res.summary


def test_biased_challenger_fails_fairness(policy: GatePolicy) -> None:
    h = holdout("weak", "weak")
    group_b = (h.groups["sex"] == "B").to_numpy()
    h.pd_challenger = np.where(group_b, h.pd_champion + 0.08, h.pd_champion)
    res = fairness_gate(h, policy, choose_cutoffs(h, policy))
    assert res.status == F
    assert "sex" in res.reasons[0] and "group B" in res.reasons[0]
    fair = fairness_gate(holdout("weak", "weak"), policy, choose_cutoffs(h, policy))
    assert fair.status == P


def test_disparity_only_on_recent_applications_fails_fairness(policy: GatePolicy) -> None:
    h = holdout("weak", "weak")
    cut = choose_cutoffs(h, policy)
    recent = holdout("weak", "weak", seed=3)
    assert fairness_gate(h, policy, cut, recent).status == P
    group_b = (recent.groups["sex"] == "B").to_numpy()
    recent.pd_challenger = np.where(group_b, recent.pd_champion + 0.08, recent.pd_champion)
    recent.y = np.full(len(recent), np.nan)  # recent applications have no outcome yet
    res = fairness_gate(h, policy, cut, recent)
    assert res.status == F
    assert res.reasons[0].startswith("recent applications: sex")
    assert res.metrics["recent_impact_ratio_sex"] < policy.fairness.four_fifths
    assert fairness_gate(h, policy, cut).status == P  # the holdout alone cannot see it


def test_small_group_makes_fairness_inconclusive(policy: GatePolicy) -> None:
    h = holdout("weak", "weak", group_sizes={"A": 10_000, "B": 9_960, "X": 40})
    res = fairness_gate(h, policy, choose_cutoffs(h, policy))
    assert res.status == INC
    assert "sex=X" in res.reasons[0]


def test_better_auc_worse_profit_fails_pnl(policy: GatePolicy) -> None:
    h = holdout("true", "weak")
    # Better ranking, but PDs scaled down: at the fixed cut-off it approves far too many.
    h.pd_challenger = h.pd_challenger / 4
    assert performance_gate(h, policy).status == P
    res = pnl_gate(h, policy, choose_cutoffs(h, policy))
    assert res.status == F
    assert res.metrics["uplift_upper"] < res.metrics["uplift_threshold"]


def test_pnl_identical_models_pass_and_bootstrap_is_reproducible(policy: GatePolicy) -> None:
    h = holdout("weak", "weak")
    res = pnl_gate(h, policy, choose_cutoffs(h, policy))
    assert res.status == P and res.metrics["uplift_per_application"] == 0
    v = np.random.default_rng(0).normal(size=5000) * (np.arange(5000) % 7 == 0)
    d1, d2 = bootstrap_mean(v, 500, 7), bootstrap_mean(v, 500, 7)
    assert np.array_equal(d1, d2)
    se = v.std() / np.sqrt(len(v))
    assert d1.std() == pytest.approx(se, rel=0.15)


def test_unobserved_applicant_is_valued_at_one_rate_whichever_way_it_is_decided(
    policy: GatePolicy,
) -> None:
    cost = policy.cost_model
    margin = 10_000 * (cost.interest_margin - cost.funding_cost)
    y = np.array([np.nan, np.nan, 0.0, 1.0])
    amount = np.full(4, 10_000.0)
    declined = row_profit(np.zeros(4, dtype=bool), y, amount, cost, 0.2)
    assert declined == pytest.approx([-0.8 * margin, -0.8 * margin, -margin, 0.0])
    approved = row_profit(np.ones(4, dtype=bool), y, amount, cost, 0.2)
    loss = -10_000 * (cost.lgd * cost.ead_share + cost.funding_cost)
    expected = 0.8 * margin + 0.2 * loss - cost.operating_cost
    assert approved[0] == pytest.approx(expected)


def test_max_profit_cutoff_is_chosen_on_validation_window(policy: GatePolicy) -> None:
    pol = policy.model_copy(
        update={"cutoff": policy.cutoff.model_copy(update={"method": "max_profit"})}
    )
    h = holdout("true", "weak")
    cut = choose_cutoffs(h, pol)
    assert cut.method == "max_profit"
    assert int((~cut.eval_mask).sum()) == int(0.3 * len(h))
    assert not cut.eval_mask[: int(0.3 * len(h))].any()  # earliest rows are validation
    assert 0 < cut.challenger < 1


def test_many_swap_ins_inconclusive(policy: GatePolicy) -> None:
    h = holdout("weak", "weak", bank_cutoff=0.06)  # a strict bank: many declines, no outcomes
    h.pd_champion = h.pd_champion * 3  # and a strict champion: declines what the bank declined
    h.pd_challenger = h.pd_challenger / 6  # approves most of what both declined
    res = swap_gate(h, policy, choose_cutoffs(h, policy))
    assert res.status == INC
    assert res.metrics["swap_in_share"] > policy.swap.max_swap_in_share
    assert "no outcome" in res.reasons[0]
    first = holdout("weak", None, bank_cutoff=0.06)
    first.pd_challenger = first.pd_challenger / 6
    assert swap_gate(first, policy, choose_cutoffs(first, policy)).status == INC
    same = holdout("weak", "weak", bank_cutoff=0.06)
    ok = swap_gate(same, policy, choose_cutoffs(same, policy))
    assert ok.status == P and ok.metrics["unobserved_swap_ins"] == 0
    assert ok.metrics["swap_ins"] > 0  # champion approves some the bank declined: not new


def test_gate_that_raises_is_inconclusive_never_pass(
    policy: GatePolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_a: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(calibration, "calibration_gate", boom)  # what its runner calls
    report = run_gates(
        model="m",
        challenger="2",
        champion="1",
        env="prod",
        policy=policy,
        holdout=holdout("weak", "weak"),
        drift=drift_data(),
    )
    cal = report.gate("calibration")
    assert cal.status == INC and "ZeroDivisionError" in cal.summary
    assert report.overall == INC


def test_overall_pass_and_dev_is_warn_only(policy: GatePolicy) -> None:
    h = holdout("weak", "weak")
    ok = run_gates(
        model="m",
        challenger="2",
        champion="1",
        env="prod",
        policy=policy,
        holdout=h,
        drift=drift_data(),
    )
    assert ok.overall == P and ok.exit_code == 0
    bad = drift_data(shift={"f1": 2.0})
    prod = run_gates(
        model="m", challenger="2", champion="1", env="prod", policy=policy, holdout=h, drift=bad
    )
    assert prod.overall == F and prod.exit_code == 1
    dev = run_gates(
        model="m", challenger="2", champion="1", env="dev", policy=policy, holdout=h, drift=bad
    )
    assert dev.overall == P and dev.verdict == F and not dev.enforced
    assert any(w.startswith("drift: FAIL") for w in dev.warnings)
    assert not any(g.blocking for g in dev.gates)


def test_protected_values_missing_beyond_the_share_are_inconclusive(policy: GatePolicy) -> None:
    h = holdout("weak", "weak")
    sex = h.groups["sex"].astype(object).copy()
    sex.iloc[:300] = None  # 1.5% of 20,000 rows, above the 1% the policy allows
    h.groups = pd.DataFrame({"sex": sex})
    res = fairness_gate(h, policy, choose_cutoffs(h, policy))
    assert res.status == INC and res.reasons[0].startswith("sex: 300 of 20000 rows")


def test_weighted_fairlearn_equals_row_by_row() -> None:
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    from mlgate.gates.fairness import compress

    rng = np.random.default_rng(0)
    n = 5000
    g = pd.Series(rng.choice(["a", "b", "c"], n))
    yt = rng.random(n) < 0.1
    yp = rng.random(n) < (0.2 + 0.1 * (g == "b").to_numpy())
    t, p, gg, w = compress(yt, yp, g)
    assert len(w) <= 12 and w.sum() == n
    assert demographic_parity_difference(
        t, p, sensitive_features=gg, sample_weight=w
    ) == pytest.approx(demographic_parity_difference(yt, yp, sensitive_features=g), abs=1e-12)
    assert equalized_odds_difference(t, p, sensitive_features=gg, sample_weight=w) == pytest.approx(
        equalized_odds_difference(yt, yp, sensitive_features=g), abs=1e-12
    )


def test_first_version_pnl_ci_bootstrap_and_normal_agree(
    policy: GatePolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlgate.gates import pnl

    h = holdout("true", None)
    boot = pnl_gate(h, policy, choose_cutoffs(h, policy))
    assert boot.status == P and boot.metrics["ci_method"] == "bootstrap"
    monkeypatch.setattr(pnl, "BOOTSTRAP_BUDGET", 0)
    norm = pnl_gate(h, policy, choose_cutoffs(h, policy))
    assert norm.metrics["ci_method"].startswith("normal")
    width = boot.metrics["profit_upper"] - boot.metrics["profit_lower"]
    assert norm.metrics["profit_lower"] == pytest.approx(
        boot.metrics["profit_lower"], abs=0.1 * width
    )
    assert norm.metrics["profit_upper"] == pytest.approx(
        boot.metrics["profit_upper"], abs=0.1 * width
    )
