"""Fairness fails closed on bad joins: unjoined protected attributes and groups of the reference
population that a judged window lacks are INCONCLUSIVE (naming attribute and group), and the
model card shows the same warning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgate.canary.analysis import Traffic, judge
from mlgate.data.group_coverage import coverage_problems, group_counts
from mlgate.gates.decisions import choose_cutoffs
from mlgate.gates.fairness import fairness_gate
from mlgate.gates.inputs import HoldoutScores
from mlgate.gates.policy import GatePolicy
from mlgate.gates.result import GateStatus
from mlgate.pipelines import evidence
from mlgate.training.evaluate import evaluate
from mlgate.training.model_card import GroupRates, ModelCardData, fairness_table, render_markdown
from mlgate.training.split import SplitWindows
from tests.gates_data import holdout
from tests.test_canary_analysis import EXPECTED
from tests.test_canary_analysis import state as canary_state

INC, PASS, FAIL = GateStatus.INCONCLUSIVE, GateStatus.PASS, GateStatus.FAIL
# The training population held three groups; the holdout fixture draws only A and B.
REFERENCE = {"sex": {"A": 40_000, "B": 39_000, "X": 2_000}}


@pytest.fixture(scope="module")
def policy() -> GatePolicy:
    return GatePolicy()


def _with_missing(h: HoldoutScores, rows: int) -> HoldoutScores:
    sex = h.groups["sex"].astype(object).copy()  # type: ignore[index]
    sex.iloc[:rows] = None  # what a left join leaves when the key is not in the table
    h.groups = pd.DataFrame({"sex": sex})
    return h


def test_unjoined_protected_attributes_beyond_the_share_are_inconclusive(
    policy: GatePolicy,
) -> None:
    h = holdout("weak", "weak")
    cut = choose_cutoffs(h, policy)
    assert fairness_gate(_with_missing(h, 150), policy, cut).status == PASS  # 0.75% <= 1%
    res = fairness_gate(_with_missing(holdout("weak", "weak"), 400), policy, cut)  # 2%
    assert res.status == INC
    assert res.reasons[0].startswith("sex: 400 of 20000 rows (2.0%) have no value")
    assert "not joined by the entity key" in res.summary
    tighter = GatePolicy.model_validate({"fairness": {"max_unjoined_share": 0.005}})
    assert fairness_gate(_with_missing(h, 150), tighter, cut).status == INC


def test_a_protected_table_that_joins_nothing_is_not_a_pass(policy: GatePolicy) -> None:
    """The attack: a protected table keyed on something else. Every row's group is missing:
    before, that was one big "(missing)" group with nothing to compare, and the gate passed."""
    h = _with_missing(holdout("weak", "weak"), 20_000)
    res = fairness_gate(h, policy, choose_cutoffs(h, policy))
    assert res.status == INC and "sex: 20000 of 20000 rows (100.0%)" in res.reasons[0]


def test_a_reference_group_absent_from_the_holdout_is_inconclusive(policy: GatePolicy) -> None:
    h = holdout("weak", "weak")
    cut = choose_cutoffs(h, policy)
    assert fairness_gate(h, policy, cut).status == PASS  # no reference: A and B look fine
    h.reference_groups = REFERENCE
    res = fairness_gate(h, policy, cut)
    assert res.status == INC
    assert res.reasons == ["sex=X: absent (n=0); the reference population has 2000"]
    assert "sex=X" in res.summary


def test_a_reference_group_below_the_floor_is_inconclusive(policy: GatePolicy) -> None:
    h = holdout("weak", "weak", group_sizes={"A": 10_000, "B": 9_960, "X": 40})
    h.reference_groups = REFERENCE
    res = fairness_gate(h, policy, choose_cutoffs(h, policy))
    assert res.status == INC
    # Named once, with the reference's size (not again as a plain small group).
    assert res.reasons == ["sex=X: n=40, below the floor 100; the reference population has 2000"]


def test_the_recent_window_must_show_every_reference_group(policy: GatePolicy) -> None:
    h = holdout("weak", "weak", group_sizes={"A": 9_000, "B": 9_000, "X": 2_000})
    recent = holdout(
        "weak", "weak", n=10_000, seed=3, group_sizes={"A": 5_000, "B": 4_950, "X": 50}
    )
    cut = choose_cutoffs(h, policy)
    # Without a reference, a small recent group is listed and left to the holdout's verdict.
    res = fairness_gate(h, policy, cut, recent)
    assert res.status == PASS and res.metrics["recent_small_groups"]
    ref = {"sex": {"A": 40_000, "B": 39_000, "X": 8_000}}
    h.reference_groups = recent.reference_groups = ref
    res = fairness_gate(h, policy, cut, recent)
    assert res.status == INC
    assert res.reasons == [
        "recent applications: sex=X: n=50, below the floor 100; the reference population has 8000"
    ]
    assert res.metrics["recent_small_groups"] == []  # named once, as a coverage problem
    recent.groups = pd.DataFrame({"sex": ["A", "B"] * 5_000})
    res = fairness_gate(h, policy, cut, recent)
    assert res.status == INC and res.reasons[0].startswith("recent applications: sex=X: absent")


def test_normal_windows_still_pass_and_fail_as_before(policy: GatePolicy) -> None:
    ref = {"sex": {"A": 40_000, "B": 40_000}}
    h = holdout("weak", "weak")
    h.reference_groups = ref
    cut = choose_cutoffs(h, policy)
    ok = fairness_gate(h, policy, cut)
    assert ok.status == PASS and ok.metrics["coverage_problems"] == []
    biased = holdout("weak", "weak")
    biased.reference_groups = ref
    is_b = (biased.groups["sex"] == "B").to_numpy()  # type: ignore[index]
    biased.pd_challenger = np.where(is_b, biased.pd_challenger + 0.2, biased.pd_challenger)
    res = fairness_gate(biased, policy, choose_cutoffs(biased, policy))
    assert res.status == FAIL and "sex: adverse impact ratio" in res.reasons[0]


def test_tolerated_unjoined_rows_are_no_group(policy: GatePolicy) -> None:
    """Within the share, rows without a value are reported but not compared as a group: a
    "(missing)" group approved at a different rate must not fail (or pass) the four-fifths
    rule for the real groups."""
    h = _with_missing(holdout("weak", "weak"), 150)
    h.pd_challenger = h.pd_challenger.copy()
    h.pd_challenger[:150] = 0.99  # every unjoined row declined
    res = fairness_gate(h, policy, choose_cutoffs(h, policy))
    assert res.status == PASS, res.reasons
    table = {g["group"]: g for g in res.details["attributes"]["sex"]["groups"]}
    assert table["(missing)"]["n"] == 150 and table["(missing)"]["challenger"] == 0
    assert res.details["attributes"]["sex"]["unjoined_share"] == pytest.approx(0.0075)


def test_integer_codes_that_became_floats_in_a_join_match_the_reference() -> None:
    """A left join that misses a row turns integer group codes into floats; 2.0 is group "2"."""
    ref = group_counts(pd.DataFrame({"region": [1, 2, 2, 3] * 50}))
    assert ref == {"region": {"1": 50, "2": 100, "3": 50}}
    window = pd.DataFrame({"region": [1.0, 2.0, 3.0, np.nan] * 200})
    probs = coverage_problems(window, ["region"], ref, max_unjoined_share=0.3, min_group_size=10)
    assert probs == []


def test_a_canary_window_without_a_training_group_waits(policy: GatePolicy) -> None:
    """The canary's requests are judged against its training population too."""
    n = 4_000
    rng = np.random.default_rng(1)
    pd_ = rng.uniform(0.01, 0.3, n)
    scores = HoldoutScores(
        y=np.full(n, np.nan),
        pd_challenger=pd_,
        pd_champion=pd_,
        groups=pd.DataFrame({"sex": rng.choice(["A", "B"], n)}),
        early=np.where(rng.random(n) < 0.5, (rng.random(n) < 0.05).astype(float), np.nan),
    )
    scores.reference_groups = REFERENCE
    traffic = Traffic(scores=scores, canary_served=rng.random(n) < 0.5)
    v = judge(canary_state(), traffic, None, EXPECTED, policy)
    fair = {g.name: g for g in v.report.gates}["fairness"]
    assert fair.status == INC and "sex=X: absent" in fair.reasons[0]
    assert v.decision == "wait"  # never promoted on a window that lacks a group


def test_the_model_card_shows_the_same_warning() -> None:
    rng = np.random.default_rng(0)
    n = 2_000
    y = (rng.random(n) < 0.08).astype(int)
    pd_ = rng.uniform(0.01, 0.3, n)
    holdout_groups = pd.DataFrame({"sex": rng.choice(["A", "B"], n).astype(object)})
    holdout_groups.loc[:59, "sex"] = None  # 3% did not join
    training = pd.DataFrame({"sex": rng.choice(["A", "B", "X"], 9_000, p=[0.45, 0.45, 0.1])})
    rows = fairness_table(y, pd_, 0.15, holdout_groups, reference=training)
    by_group = {r.group: r for r in rows}
    assert by_group["X"].n == 0 and by_group["X"].approval_rate is None
    expected = coverage_problems(holdout_groups, ["sex"], group_counts(training))
    assert {r.warning for r in rows if r.warning} == {p.message for p in expected}
    assert by_group["(missing)"].warning and by_group["A"].warning is None

    md = render_markdown(_card(y, pd_, rows))
    assert "Warning: not every protected group can be judged" in md
    for p in expected:
        assert p.message in md
    assert "| sex | X ⚠ | 0 | n/a |" in md
    clean = fairness_table(y, pd_, 0.15, holdout_groups.fillna("A"), reference=training[:10])
    assert not any(r.warning for r in clean)
    assert "Warning" not in render_markdown(_card(y, pd_, clean))


def _card(y: np.ndarray, pd_: np.ndarray, rows: list[GroupRates]) -> ModelCardData:
    w = SplitWindows(
        data_start="2024-01-01",
        validation_start="2025-01-01",
        holdout_start="2025-04-01",
        data_end="2025-08-01",
        train_rows=9_000,
        validation_rows=1_000,
        holdout_rows=len(y),
    )
    return ModelCardData(
        model="credit_risk",
        created="2026-01-01",
        description="d",
        intended_use="u",
        algorithm="logistic_regression",
        params={},
        calibration="isotonic",
        seed=0,
        cutoff=0.15,
        dataset="world",
        dataset_source="synthetic",
        data_fingerprint="f",
        training_set_fingerprint="t",
        feature_service=None,
        feature_views=[],
        git_commit="c",
        windows=w,
        population_rows=10_000,
        numeric_features=["x"],
        categorical_features=[],
        protected_attributes=["sex"],
        evaluation=evaluate(y, pd_, 0.15),
        fairness=rows,
        reason_code_method="m",
    )


def test_reference_groups_travel_with_the_pipeline_evidence(tmp_path: Path) -> None:
    h = holdout("weak", "weak")
    h.reference_groups = REFERENCE
    evidence.save(tmp_path / "ev", holdout=h, drift=None, meta={}, recent=h)
    back = evidence.holdout(tmp_path / "ev")
    assert back is not None and back.reference_groups == REFERENCE
    recent = evidence.recent(tmp_path / "ev")
    assert recent is not None and recent.reference_groups == REFERENCE
