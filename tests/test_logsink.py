"""The request-log sink, fed CloudEvents shaped like Seldon Core's executor sends them."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import requests

from mlgate.canary.analysis import CanaryState
from mlgate.canary.run import read_requests
from mlgate.serving.client import v2_request
from mlgate.serving.logsink import LogStore, fetch_requests, make_server

NS, SDEP = "credit-risk-prod", "model"


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    folder = tmp_path / "log"
    server = make_server(LogStore(folder), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", folder
    finally:
        server.shutdown()
        server.server_close()


def headers(kind: str, request_id: str, predictor: str) -> dict[str, str]:
    """The executor's binary-mode CloudEvent headers (Seldon Core 1.x request logger)."""
    return {
        "Content-Type": "application/json",
        "Ce-Id": str(uuid.uuid4()),
        "Ce-Specversion": "1.0",
        "Ce-Source": "http://:8000/",
        "Ce-Type": f"io.seldon.serving.inference.{kind}",
        "Ce-Requestid": request_id,
        "Ce-Modelid": "model",
        "Ce-Inferenceservicename": SDEP,
        "Ce-Namespace": NS,
        "Ce-Endpoint": predictor,
        "Ce-Time": "2026-06-01T10:00:00.000000000Z",
    }


def response(version: str, n: int) -> dict[str, object]:
    """What mlgate's runtime answers (mlgate.serving.runtime: pd, decision, reason codes,
    model_version per row)."""
    return {
        "model_name": "credit_risk",
        "model_version": version,
        "outputs": [
            {"name": "pd", "datatype": "FP64", "shape": [n, 1], "data": [0.05] * n},
            {"name": "decision", "datatype": "BYTES", "shape": [n, 1], "data": ["approve"] * n},
            {"name": "reason_codes", "datatype": "BYTES", "shape": [n, 1], "data": ["[]"] * n},
            {"name": "model_version", "datatype": "BYTES", "shape": [n, 1], "data": [version] * n},
        ],
    }


def post(url: str, kind: str, rid: str, predictor: str, body: object) -> requests.Response:
    return requests.post(url, data=json.dumps(body), headers=headers(kind, rid, predictor))


def test_requests_are_logged_joined_and_exported(sink: tuple[str, Path]) -> None:
    url, folder = sink
    apps = pd.DataFrame(
        {"application_id": ["a1", "a2"], "income": [52_000.0, float("nan")], "region": ["N", "S"]}
    )
    assert post(url, "request", "r1", "canary", v2_request(apps)).status_code == 200
    assert requests.get(f"{url}/requests/r1").status_code == 200  # what the smoke test polls
    assert requests.get(f"{url}/requests/nope").status_code == 404
    assert post(url, "response", "r1", "canary", response("2", 2)).status_code == 200
    key_only = pd.DataFrame({"application_id": ["a3"], "applicant_id": ["p3"]})
    post(url, "request", "r2", "stable", v2_request(key_only))
    post(url, "response", "r2", "stable", response("1", 1))
    post(url, "request", "r3", "stable", v2_request(apps.head(1)))  # no response yet: left out

    frame = fetch_requests(url, NS, SDEP, since="2026-06-01")
    assert sorted(frame["request_id"].unique()) == ["r1", "r2"]
    got = frame[frame["request_id"] == "r1"].reset_index(drop=True)
    assert list(got["application_id"]) == ["a1", "a2"]
    assert got["income"].iloc[0] == 52_000.0 and pd.isna(got["income"].iloc[1])
    assert list(got["served_by"]) == ["2", "2"] and set(got["predictor"]) == {"canary"}
    assert fetch_requests(url, NS, SDEP, since="2026-06-02").empty
    # Times compare as times, not strings: the executor's nanoseconds and `Z` vs an offset.
    assert len(fetch_requests(url, NS, SDEP, since="2026-06-01T11:59:59+02:00")) == 3
    assert fetch_requests(url, NS, SDEP, since="2026-06-01T10:00:00.000000001Z").empty
    # The index of logged request ids survives a restart (rebuilt from the files).
    assert LogStore(folder).seen("r1") == {"request", "response"}

    # The canary analysis reads it by URL: key-only requests cannot be re-scored, left out.
    state = CanaryState(
        model="credit_risk",
        env="prod",
        stable_version="1",
        canary_version="2",
        weight=10,
        cutoff=0.15,
        started=datetime(2026, 5, 31, tzinfo=UTC),
        now=datetime(2026, 6, 2, tzinfo=UTC),
    )
    log = read_requests(url, ["income", "region"], {"1", "2"}, state)
    assert list(log["application_id"]) == ["a1", "a2"] and state.dropped_requests == 1


def test_bad_events_are_refused_naming_what_is_wrong(sink: tuple[str, Path]) -> None:
    url, _ = sink
    h = headers("request", "r9", "stable")
    del h["Ce-Requestid"]
    r = requests.post(url, data="{}", headers=h)
    assert r.status_code == 400 and "ce-requestid" in r.json()["error"]
    r = requests.post(url, data="not json", headers=headers("request", "r9", "stable"))
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    wrong = {**headers("request", "r9", "stable"), "Ce-Type": "com.example.other"}
    assert requests.post(url, data="{}", headers=wrong).status_code == 400
    assert requests.get(f"{url}/export?namespace={NS}").status_code == 400
    assert requests.get(f"{url}/health").json() == {"status": "ok"}
