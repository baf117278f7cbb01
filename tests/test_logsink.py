"""The request-log sink, fed CloudEvents shaped like Seldon Core's executor sends them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import requests

from mlgate.canary.analysis import CanaryState
from mlgate.canary.run import read_requests
from mlgate.serving.client import v2_request
from mlgate.serving.logsink import READ_TOKEN_ENV, LogStore
from mlgate.serving.logsink_client import fetch_requests
from tests.logsink_helpers import NS, READ, READ_TOKEN, SDEP, thread_sink, tokens
from tests.logsink_helpers import headers as ce_headers

TOKEN = READ_TOKEN.encode()
DAY = "2026-06-01T10:00:00.000000000Z"


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with thread_sink(tmp_path / "log", retention_days=3650) as (s, _):
        yield s.write, s.read, s.folder  # type: ignore[misc]


def headers(kind: str, request_id: str, predictor: str) -> dict[str, str]:
    return ce_headers(kind, request_id, predictor, time=DAY)


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


def test_requests_are_logged_joined_and_exported(
    sink: tuple[str, str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, read, folder = sink
    apps = pd.DataFrame(
        {"application_id": ["a1", "a2"], "income": [52_000.0, float("nan")], "region": ["N", "S"]}
    )
    assert post(url, "request", "r1", "canary", v2_request(apps)).status_code == 200
    assert requests.get(f"{read}/requests/r1", headers=READ).status_code == 200  # the smoke test
    assert requests.get(f"{read}/requests/nope", headers=READ).status_code == 404
    assert post(url, "response", "r1", "canary", response("2", 2)).status_code == 200
    key_only = pd.DataFrame({"application_id": ["a3"], "applicant_id": ["p3"]})
    post(url, "request", "r2", "stable", v2_request(key_only))
    post(url, "response", "r2", "stable", response("1", 1))
    post(url, "request", "r3", "stable", v2_request(apps.head(1)))  # no response yet: left out

    frame = fetch_requests(read, NS, SDEP, token=TOKEN, since="2026-06-01")
    assert sorted(frame["request_id"].unique()) == ["r1", "r2"]
    got = frame[frame["request_id"] == "r1"].reset_index(drop=True)
    assert list(got["application_id"]) == ["a1", "a2"]
    assert got["income"].iloc[0] == 52_000.0 and pd.isna(got["income"].iloc[1])
    assert list(got["served_by"]) == ["2", "2"] and set(got["predictor"]) == {"canary"}
    assert fetch_requests(read, NS, SDEP, token=TOKEN, since="2026-06-02").empty
    # Times compare as times, not strings: the executor's nanoseconds and `Z` vs an offset.
    assert len(fetch_requests(read, NS, SDEP, token=TOKEN, since="2026-06-01T11:59:59+02:00")) == 3
    assert fetch_requests(read, NS, SDEP, token=TOKEN, since="2026-06-01T10:00:00.000000001Z").empty
    # The index of logged request ids survives a restart (rebuilt from the files).
    again = LogStore(folder, retention_days=3650)
    assert again.seen("r1") == {"request", "response"}
    again.close()

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
    with pytest.raises(Exception, match="401"):  # no read token configured: refused
        read_requests(read, ["income", "region"], {"1", "2"}, state)
    monkeypatch.setenv(READ_TOKEN_ENV, str(tokens(tmp_path / "t")[0]))
    log = read_requests(read, ["income", "region"], {"1", "2"}, state)
    assert list(log["application_id"]) == ["a1", "a2"] and state.dropped_requests == 1


def test_bad_events_are_refused_naming_what_is_wrong(sink: tuple[str, str, Path]) -> None:
    url, read, _ = sink
    h = headers("request", "r9", "stable")
    del h["Ce-Requestid"]
    r = requests.post(url, data="{}", headers=h)
    assert r.status_code == 400 and "ce-requestid" in r.json()["error"]
    r = requests.post(url, data="not json", headers=headers("request", "r9", "stable"))
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    wrong = {**headers("request", "r9", "stable"), "Ce-Type": "com.example.other"}
    assert requests.post(url, data="{}", headers=wrong).status_code == 400
    assert requests.get(f"{read}/export?namespace={NS}", headers=READ).status_code == 400
    assert requests.get(f"{url}/health").json() == {"status": "ok"}
    assert requests.get(f"{read}/health").json() == {"status": "ok"}
