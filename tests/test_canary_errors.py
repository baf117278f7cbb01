"""A canary that stops answering is aborted, never promoted: the requests the router logged
with no answer are counted per predictor (`logsink_client.unanswered_requests`) and the
volume check fails a canary that fails clearly more of its requests than stable."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from mlgate.canary.analysis import judge
from mlgate.gates.policy import GatePolicy
from mlgate.serving.logsink import LogEvent
from mlgate.serving.logsink_client import request_frame, unanswered_requests
from tests.test_canary_analysis import EXPECTED, shared_drift, state, traffic


def test_a_canary_that_fails_its_requests_is_aborted_even_with_the_volume() -> None:
    policy = GatePolicy()
    good = traffic(n=120_000)
    assert judge(state(50), good, shared_drift(), EXPECTED, policy).decision == "promote"  # type: ignore[arg-type]
    dead = dataclasses.replace(good, canary_errors=3000)  # killed after ~36,000 answers
    v = judge(state(50), dead, shared_drift(), EXPECTED, policy)  # type: ignore[arg-type]
    assert v.decision == "abort" and v.exit_code == 1
    volume = {g.name: g for g in v.report.gates}["volume"]
    assert volume.status == "FAIL" and volume.metrics["canary_errors"] == 3000
    assert v.reasons[0].startswith("volume:") and "does not answer" in volume.reasons[0]


def test_a_canary_dead_from_the_start_is_aborted_not_left_waiting() -> None:
    none_answered = dataclasses.replace(
        traffic(n=3000, share=0.0), canary_errors=60, stable_errors=0
    )
    v = judge(state(), none_answered, shared_drift(), EXPECTED, GatePolicy())  # type: ignore[arg-type]
    assert v.decision == "abort"


def test_a_few_errors_like_stable_s_do_not_abort() -> None:
    policy = GatePolicy()
    t = dataclasses.replace(traffic(n=120_000), canary_errors=20, stable_errors=150)
    v = judge(state(50), t, shared_drift(), EXPECTED, policy)  # type: ignore[arg-type]
    assert v.decision == "promote", v.reasons
    volume = {g.name: g for g in v.report.gates}["volume"]
    assert volume.metrics["canary_errors"] == 20 and volume.metrics["stable_errors"] == 150


def _event(kind: str, rid: str, predictor: str, second: int) -> LogEvent:
    return LogEvent(
        id=f"{kind}-{rid}", kind=kind, request_id=rid, namespace="credit-risk-prod",  # type: ignore[arg-type]
        deployment="model", predictor=predictor, time=f"2026-06-01T10:{second // 60:02d}:"
        f"{second % 60:02d}.000000001Z",
        body={"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}],
              "outputs": [{"name": "model_version", "data": ["2"]}]},
    )  # fmt: skip


def test_unanswered_requests_are_counted_by_predictor_except_those_in_flight() -> None:
    events = [
        _event("request", "a", "stable", 0), _event("response", "a", "stable", 1),
        _event("request", "b", "canary", 2),  # never answered: canary failed it
        _event("request", "c", "canary", 3),
        _event("request", "d", "stable", 4),
        _event("request", "e", "canary", 300), _event("response", "e", "canary", 301),
        _event("request", "f", "canary", 290),  # in flight, or failed: depends on the grace
    ]  # fmt: skip
    now = datetime(2026, 6, 1, 10, 5, 51, tzinfo=UTC)  # "f" was logged 61 s ago
    assert unanswered_requests(events, now) == {"canary": 3, "stable": 1}
    assert unanswered_requests(events, now, grace_s=120) == {"canary": 2, "stable": 1}
    # the analysis' rows are only the answered requests
    assert sorted(request_frame(events)["request_id"]) == ["a", "e"]
