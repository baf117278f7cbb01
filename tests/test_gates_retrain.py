"""When to retrain: a monitor FAIL or the policy's max model age; never INCONCLUSIVE alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mlgate.gates.monitor import summarize
from mlgate.gates.policy import GatePolicy, MonitorPolicy
from mlgate.gates.result import GateResult, GateStatus
from mlgate.gates.retrain import retrain_decision

NOW = datetime(2026, 11, 30, tzinfo=UTC)
IMMATURE = GateResult.inconclusive(
    "performance", "holdout window has 40 labelled rows, floor 500 (samples.min_labelled)"
)
OK = GateResult(name="fairness", status=GateStatus.PASS, summary="ok")
DRIFT = GateResult(name="drift", status=GateStatus.FAIL, summary="watch-level drift in income")


def test_a_fail_retrains_immature_labels_do_not() -> None:
    policy = GatePolicy()
    fail = retrain_decision(summarize("m", "3", "prod", [IMMATURE, DRIFT]), policy, NOW, NOW)
    assert fail.retrain and fail.reason == "monitor FAIL: drift: watch-level drift in income"
    waiting = retrain_decision(summarize("m", "3", "prod", [IMMATURE, OK]), policy, NOW, NOW)
    assert not waiting.retrain
    assert "INCONCLUSIVE is not a reason" in waiting.reason and "labelled rows" in waiting.reason
    calm = retrain_decision(summarize("m", "3", "prod", [OK]), policy, NOW, NOW)
    assert not calm.retrain and calm.reason == "every check passed"


def test_the_schedule_retrains_an_old_model_whatever_the_labels_say() -> None:
    policy = GatePolicy(monitor=MonitorPolicy(max_model_age_days=365))
    report = summarize("m", "3", "prod", [IMMATURE, OK])
    young = retrain_decision(report, policy, NOW - timedelta(days=200), NOW)
    assert not young.retrain
    old = retrain_decision(report, policy, NOW - timedelta(days=400), NOW)
    assert old.retrain and "400 days old (monitor.max_model_age_days 365)" in old.reason
    unknown_age = retrain_decision(report, policy, None, NOW)  # no registration time: no schedule
    assert not unknown_age.retrain
