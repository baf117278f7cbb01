"""`mlgate traffic replay` without a model server: a tiny in-process V2 stub that checks every
request against the serving contract's own reader, answers as the runtime does, and fails or
refuses on cue; the CLI's bad input."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlgate.data.dataset_config import ColumnRange
from mlgate.errors import BadInputError
from mlgate.serving.contract import FeatureRules, Tensor, check_datatypes, read_inputs
from mlgate.serving.router import SELDON_PUID
from mlgate.serving.traffic import infer_url, send
from tests.gitops_helpers import cli

MODEL = "credit_risk"
RULES = FeatureRules(
    numeric={"income": ColumnRange(min=0), "age": ColumnRange(min=18, max=100)},
    categorical={"purpose": ["car", "home"]},
)


class Stub:
    """A V2 endpoint: 400 for a request the contract refuses, 503 for income 666 (a predictor
    that fails), else version "2" for even ids and "1" for odd ones; records what it got."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()
        self.inflight = 0
        self.max_inflight = 0
        self.hold = 0  # hold requests until this many were in flight at once (once)
        self.reached = threading.Event()

    def handle(self, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            if self.max_inflight >= self.hold:
                self.reached.set()
        try:
            self.reached.wait(5)
            body = json.loads(raw)
            with self.lock:
                self.bodies.append(body)
                self.paths.append(path)
            tensors = [Tensor(i["name"], i["datatype"], i["shape"], i["data"])
                       for i in body["inputs"]]  # fmt: skip
            try:
                columns, n = read_inputs(tensors, 100)
                check_datatypes(tensors, RULES)
            except Exception as exc:  # noqa: BLE001 - the contract's refusal
                return 400, {"error": str(exc)}
            if 666.0 in columns["income"]:
                return 503, {"error": "predictor down"}
            version = ["2" if int(i) % 2 == 0 else "1" for i in columns["id"]]
            return 200, {"outputs": [
                {"name": "pd", "datatype": "FP64", "shape": [n], "data": [0.1] * n},
                {"name": "decision", "datatype": "BYTES", "shape": [n], "data": ["approve"] * n},
                {"name": "reason_codes", "datatype": "BYTES", "shape": [n], "data": ["[]"] * n},
                {"name": "model_version", "datatype": "BYTES", "shape": [n], "data": version},
            ]}  # fmt: skip
        finally:
            with self.lock:
                self.inflight -= 1


@pytest.fixture
def stub() -> Iterator[tuple[Stub, str]]:
    state = Stub()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, body = state.handle(self.path, raw)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header(SELDON_PUID, "puid-1")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def applications(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({
        "id": np.arange(n),
        "application_date": pd.date_range("2025-01-01", periods=n, freq="h", tz="UTC"),
        "income": rng.uniform(1000, 9000, n),
        "age": rng.integers(18, 90, n),
        "purpose": rng.choice(["car", "home"], n),
    })  # fmt: skip


def test_every_application_arrives_as_a_v2_request_in_order_and_is_counted(stub) -> None:
    state, url = stub
    frame = applications(40)
    frame.loc[5, "age"] = np.nan  # a missing value travels as null, not as text
    report = send(url, MODEL, frame, concurrency=1)
    assert (report.sent, report.answered, report.refused, report.errors) == (40, 40, 0, 0)
    assert report.by_version == {"1": 20, "2": 20}
    assert report.by_status == {"200": 40} and report.request_ids == 40
    assert set(state.paths) == {f"/v2/models/{MODEL}/infer"}
    first = {i["name"]: i for i in state.bodies[0]["inputs"]}
    assert first["income"]["datatype"] == "FP64" and first["income"]["shape"] == [1, 1]
    assert first["id"]["datatype"] == "INT64" and first["age"]["datatype"] == "FP64"
    assert first["purpose"]["datatype"] == "BYTES"
    assert first["application_date"]["data"] == ["2025-01-01T00:00:00+00:00"]  # ISO text
    assert state.bodies[0]["parameters"]["content_type"] == "pd"
    assert {i["name"]: i for i in state.bodies[5]["inputs"]}["age"]["data"] == [None]
    # one worker: the arrival order is the applications' order
    assert [b["inputs"][0]["data"][0] for b in state.bodies] == list(range(40))
    # each request has its own V2 id (what pairs a shadow's answer with stable's)
    assert len({b["id"] for b in state.bodies}) == 40 and all(b["id"] for b in state.bodies)


def test_batches_and_bounded_concurrency(stub) -> None:
    state, url = stub
    state.hold = 4  # the first requests wait for each other: they must be in flight together
    report = send(url, MODEL, applications(30), concurrency=4, batch=3)
    assert report.sent == 10 and report.answered == 10 and report.applications == 30
    assert sum(report.by_version.values()) == 30
    assert all(b["inputs"][0]["shape"] == [3, 1] for b in state.bodies)
    assert state.max_inflight == 4  # concurrent, never more than asked


def test_refusals_and_failing_predictors_are_counted_not_raised(stub) -> None:
    state, url = stub
    frame = applications(12)
    frame.loc[[3, 7], "income"] = 666.0  # the predictor answers 503
    frame["purpose"] = frame["purpose"].astype(object)
    bad = frame.copy()
    bad["purpose"] = 1  # a categorical sent as a number: the contract refuses (400)
    report = send(url, MODEL, pd.concat([frame, bad.iloc[:2]], ignore_index=True), concurrency=3)
    assert (report.sent, report.answered, report.errors, report.refused) == (14, 10, 2, 2)
    assert report.by_status == {"200": 10, "400": 2, "503": 2}
    assert any("predictor down" in e for e in report.first_errors)


def test_a_dead_router_is_errors_not_a_crash() -> None:
    report = send("http://127.0.0.1:9", MODEL, applications(3), concurrency=2, timeout=2)
    assert (report.sent, report.answered, report.errors) == (3, 0, 3)
    assert report.by_status == {"no answer": 3}


def test_rate_paces_the_requests(stub, monkeypatch: pytest.MonkeyPatch) -> None:
    """--rate R: the i-th request waits until i / R s after the first (the sleeps asked for
    are recorded, not timed)."""
    import mlgate.serving.traffic as traffic

    slept: list[float] = []
    monkeypatch.setattr(traffic.time, "sleep", lambda s: slept.append(s))
    clock = iter(float(i) * 0.0 for i in range(100))
    monkeypatch.setattr(traffic.time, "monotonic", lambda: next(clock))
    _state, url = stub
    send(url, MODEL, applications(5), concurrency=1, rate=2.0)
    assert slept == pytest.approx([0.5, 1.0, 1.5, 2.0])


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/", "127.0.0.1:8080", "http://user:pw@127.0.0.1:8080",
     "http://127.0.0.1:8080/?x=1", "http:///v2"],
)  # fmt: skip
def test_router_urls_that_are_not_a_plain_http_base_are_refused(url: str) -> None:
    with pytest.raises(BadInputError, match="--url"):
        infer_url(url, MODEL)


def test_router_url_forms() -> None:
    assert infer_url("http://h:1/", MODEL) == f"http://h:1/v2/models/{MODEL}/infer"
    assert infer_url(f"http://h:1/v2/models/{MODEL}/infer", MODEL).count("/v2/") == 1


@pytest.mark.parametrize(
    ("args", "named"),
    [(["--from", "2025-13-01", "--days", "3"], "--from"),
     (["--from", "yesterday", "--days", "3"], "--from"),
     (["--from", "2025-01-01", "--days", "0"], "--days")],
)  # fmt: skip
def test_cli_bad_period_exits_2_naming_the_option(args: list[str], named: str) -> None:
    code, _out, err = cli("traffic", "replay", "--model", MODEL, "--env", "prod", *args)
    assert code == 2 and named in err


def test_cli_options_refused_before_any_request(stub) -> None:
    _state, url = stub
    for kw, named in (({"concurrency": 0}, "--concurrency"), ({"batch": 0}, "--batch"),
                      ({"rate": 0.0}, "--rate")):  # fmt: skip
        with pytest.raises(BadInputError, match=named):
            send(url, MODEL, applications(2), **kw)  # type: ignore[arg-type]
    assert _state.bodies == []
