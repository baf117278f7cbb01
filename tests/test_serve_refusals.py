"""A request the model server refuses as bad input (4xx) is the caller's fault, not a failing
predictor: the router logs the refusal (the V2 error object), the analysis counts it apart
(`logsink_client.refused_requests`, reported) and only failures (5xx, timeouts, no answer)
feed the canary's error-rate abort."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import requests

from mlgate.canary.analysis import judge
from mlgate.gates.policy import GatePolicy
from mlgate.serving.logsink import LogEvent
from mlgate.serving.logsink_client import (
    is_refusal,
    refused_requests,
    request_frame,
    unanswered_requests,
)
from mlgate.serving.router import Route
from tests.logsink_helpers import NS, SDEP, WRITE_TOKEN, thread_sink
from tests.test_canary_analysis import EXPECTED, shared_drift, state, traffic
from tests.test_serve_topology import REQUEST, Fake, _router, fakes


def test_the_router_logs_a_refusal_apart_from_a_failure(tmp_path: Path) -> None:
    stable, canary = Fake("1", status=400), Fake("2", status=503)
    with fakes(stable, canary), thread_sink(tmp_path / "sink", fsync=False) as (sink, server):
        routes = [Route(name="stable", url=stable.url, weight=50),
                  Route(name="canary", url=canary.url, weight=50)]  # fmt: skip
        with _router(routes, sink_url=sink.write + "/", sink_token=WRITE_TOKEN, seed=1) as r:
            answers = [requests.post(r.infer_url, json=REQUEST, timeout=10) for _ in range(40)]
            stats = dict(r.stats)
        events = list(server.store.events(NS, SDEP))
    by_status = {s: sum(a.status_code == s for a in answers) for s in (400, 503)}
    assert by_status[400] + by_status[503] == 40 and min(by_status.values()) > 0
    assert stats["stable.refused"] == by_status[400] and stats["canary.errors"] == by_status[503]
    responses = [e for e in events if e.kind == "response"]
    # the refusal is logged as the V2 error object (the fake's body wrapped), the 503 is not
    assert len(responses) == by_status[400] and all(e.predictor == "stable" for e in responses)
    assert all(is_refusal(e.body) and isinstance(e.body["error"], str) for e in responses)
    now = datetime.now(UTC).replace(year=datetime.now(UTC).year + 1)  # nothing in flight
    assert unanswered_requests(events, now) == {"canary": by_status[503]}
    assert refused_requests(events) == {"stable": by_status[400]}
    assert len(request_frame(events)) == 0  # nothing was scored: no rows to analyse


def _event(kind: str, rid: str, predictor: str, body: dict) -> LogEvent:  # type: ignore[type-arg]
    return LogEvent(id=f"{kind}-{rid}", kind=kind, request_id=rid, namespace=NS,  # type: ignore[arg-type]
                    deployment=SDEP, predictor=predictor, time="2026-06-01T10:00:00Z",
                    body=body)  # fmt: skip


def test_refusals_are_counted_in_rows_and_a_scored_answer_is_never_one() -> None:
    rows3 = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [3], "data": [1, 2, 3]}]}
    ok = {"outputs": [{"name": "model_version", "data": ["2"]}]}
    events = [
        _event("request", "a", "canary", rows3), _event("response", "a", "canary", {"error": "x"}),
        _event("request", "b", "canary", rows3), _event("response", "b", "canary", ok),
        _event("request", "c", "canary", rows3),  # failed: no response
        # a 200 answer that also says "error" is an answer (it has outputs)
        _event("request", "d", "stable", rows3),
        _event("response", "d", "stable", {**ok, "error": "none"}),
    ]  # fmt: skip
    now = datetime(2026, 6, 2, tzinfo=UTC)
    assert refused_requests(events) == {"canary": 3}
    assert unanswered_requests(events, now) == {"canary": 3}
    assert sorted(set(request_frame(events)["request_id"])) == ["b", "d"]


def test_a_canary_refusing_bad_input_is_not_aborted_but_failing_it_is() -> None:
    policy = GatePolicy()
    good = traffic(n=120_000)
    refusing = dataclasses.replace(good, canary_refused=3000, stable_refused=2500)
    v = judge(state(50), refusing, shared_drift(), EXPECTED, policy)  # type: ignore[arg-type]
    assert v.decision == "promote", v.reasons
    volume = {g.name: g for g in v.report.gates}["volume"]
    assert volume.metrics["canary_refused"] == 3000 and volume.metrics["canary_errors"] == 0
    failing = dataclasses.replace(good, canary_errors=3000)  # the same count, as failures
    assert judge(state(50), failing, shared_drift(), EXPECTED, policy).decision == "abort"  # type: ignore[arg-type]
