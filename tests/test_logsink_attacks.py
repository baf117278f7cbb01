"""The request-log sink attacked as a hostile or clumsy client would, on loopback: every attack
is performed against a real sink (a thread, or the `mlgate logsink` process) and refused."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from mlgate.cli import app
from mlgate.commands._common import run_guarded
from mlgate.serving.logsink import LogStore
from mlgate.serving.logsink_server import Limits
from tests.logsink_helpers import (
    NS,
    READ,
    READ_TOKEN,
    SDEP,
    WRITE,
    WRITE_TOKEN,
    Sink,
    headers,
    now_time,
    post,
    start_process_sink,
    stored_lines,
    thread_sink,
    tokens,
)

BODY = {"inputs": [{"name": "income", "datatype": "FP64", "shape": [1], "data": [1.0]}]}


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    with thread_sink(tmp_path / "store" / "log") as (s, _):
        yield s


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def raw(port_url: str) -> socket.socket:
    host, port = port_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def export(sink: Sink, **params: str) -> requests.Response:
    return requests.get(f"{sink.read}/export", params=params, headers=READ, timeout=30)


# -- hostile headers and parameters --------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Ce-Namespace", "../../x"),
        ("Ce-Namespace", "/tmp/evil"),
        ("Ce-Namespace", ".."),
        ("Ce-Inferenceservicename", "../../../etc"),
        ("Ce-Inferenceservicename", "Model"),  # not lower case: not a DNS label
        ("Ce-Endpoint", "a/b"),
        ("Ce-Time", "../../x/ab/../..T00:00:00Z"),  # first ten characters as a path
        ("Ce-Time", "2026-06-01/../../x"),
        ("Ce-Time", "now"),
        ("Ce-Time", "2026-13-45T25:00:00Z"),
        ("Ce-Time", ""),
        ("Ce-Id", "../x"),
        ("Ce-Requestid", "a b"),
    ],
)
def test_hostile_headers_are_refused_and_write_nothing(
    sink: Sink, tmp_path: Path, header: str, value: str
) -> None:
    before = files_under(tmp_path)
    h = headers("request", "r1")
    h[header] = value
    r = requests.post(sink.write, data=json.dumps(BODY), headers=h, timeout=30)
    assert r.status_code == 400, r.text
    assert header.lower() in r.json()["error"]
    assert files_under(tmp_path) == before  # nothing written, inside the store or outside


def test_times_outside_the_window_are_refused_at_the_door(sink: Sink) -> None:
    old = (datetime.now(UTC) - timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ahead = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for when in (old, ahead):
        r = post(sink, "request", "r1", BODY, time=when)
        assert r.status_code == 400 and "window" in r.json()["error"]
    # A time with an offset is parsed: its UTC date names the folder, not its first characters.
    utc = (datetime.now(UTC) - timedelta(days=1)).replace(hour=20, minute=30)
    local = utc.astimezone(timezone(timedelta(hours=5))).isoformat()
    assert local[:10] != utc.date().isoformat()
    assert post(sink, "request", "r2", BODY, time=local).status_code == 200
    assert [p.stem for p in sink.folder.glob(f"{NS}/{SDEP}/*.jsonl")] == [utc.date().isoformat()]


@pytest.mark.parametrize(
    "params",
    [
        {"namespace": "../..", "deployment": SDEP},
        {"namespace": "/etc", "deployment": SDEP},
        {"namespace": NS, "deployment": "../../.."},
        {"namespace": NS, "deployment": SDEP, "since": "../../etc"},
        {"namespace": NS, "deployment": SDEP, "since": "yesterday"},
        {"namespace": NS},
    ],
)
def test_hostile_export_parameters_are_refused(sink: Sink, params: dict[str, str]) -> None:
    r = export(sink, **params)
    assert r.status_code == 400, r.text


def test_request_lookup_and_paths_cannot_leave_the_store(sink: Sink, tmp_path: Path) -> None:
    for rid in ("..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "a%00b"):
        r = requests.get(f"{sink.read}/requests/{rid}", headers=READ, timeout=30)
        assert r.status_code == 400, rid
    # A folder inside the store that is a symlink to elsewhere: neither written nor read.
    outside = tmp_path / "outside"
    (outside / SDEP).mkdir(parents=True)
    (outside / SDEP / "2026-01-01.jsonl").write_text('{"secret": 1}\n')
    (sink.folder / "evil-ns").symlink_to(outside, target_is_directory=True)
    r = post(sink, "request", "r1", BODY, **{"Ce-Namespace": "evil-ns"})
    assert r.status_code == 400 and "outside the log store" in r.json()["error"]
    assert export(sink, namespace="evil-ns", deployment=SDEP).status_code == 400
    assert files_under(outside) == {f"{SDEP}/2026-01-01.jsonl"}


# -- credentials ---------------------------------------------------------------------------------
def test_forged_events_and_exports_without_credentials_are_refused(sink: Sink) -> None:
    body = json.dumps(BODY)
    no_auth = {k: v for k, v in headers("request", "forged").items() if k != "Authorization"}
    for auth in (
        None,
        "Bearer wrong-token-of-some-length-000000000",
        f"Bearer {READ_TOKEN}",
        "Basic !!",
    ):
        h = no_auth if auth is None else {**no_auth, "Authorization": auth}
        r = requests.post(sink.write, data=body, headers=h, timeout=30)
        assert r.status_code == 401, auth
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert stored_lines(sink.folder) == []
    assert requests.get(f"{sink.read}/requests/forged", headers=READ, timeout=30).status_code == 404
    # Go's HTTP client sends a URL's user info as Basic: the token as password is accepted.
    basic = base64.b64encode(f"seldon:{WRITE_TOKEN}".encode()).decode()
    r = requests.post(sink.write, data=body, headers={**no_auth, "Authorization": f"Basic {basic}"})
    assert r.status_code == 200
    # Reading: no token, the write token, or through the write port: refused.
    for h in ({}, WRITE):
        r = requests.get(
            f"{sink.read}/export", params={"namespace": NS, "deployment": SDEP}, headers=h
        )
        assert r.status_code == 401
        assert requests.get(f"{sink.read}/requests/forged", headers=h).status_code == 401
    assert requests.get(f"{sink.write}/export", headers=READ, timeout=30).status_code == 404
    assert requests.get(f"{sink.read}/", headers=READ, timeout=30).status_code == 404
    assert requests.post(sink.read, data=body, headers=headers("request", "x")).status_code == 405
    assert len(export(sink, namespace=NS, deployment=SDEP).content.splitlines()) == 1


def test_the_cli_never_starts_with_open_or_weak_credentials(tmp_path: Path) -> None:
    read, write = tokens(tmp_path / "t")
    short = tmp_path / "short"
    short.write_text("abc")
    base = ["logsink", "--folder", str(tmp_path / "log"), "--port", "0", "--read-port", "0"]
    cases = [
        [*base, "--read-token-file", str(read)],  # neither a write token nor the network rule
        [*base, "--read-token-file", str(read), "--write-token-file", str(read)],  # same token
        [*base, "--read-token-file", str(short), "--write-token-file", str(write)],
        [*base, "--read-token-file", str(tmp_path / "missing"), "--write-token-file", str(write)],
    ]
    for args in cases:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("sys.argv", ["mlgate", *args])
            assert run_guarded(app) == 2, args
    assert not (tmp_path / "log").exists()  # refused before anything was created


# -- sizes and broken bodies ---------------------------------------------------------------------
def test_oversize_bodies_get_413_and_the_sink_stays_up(tmp_path: Path) -> None:
    with thread_sink(tmp_path / "log", Limits(max_body_bytes=2000)) as (sink, _):
        big = {"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1], "data": ["a" * 5000]}]}
        r = post(sink, "request", "big", big)
        assert r.status_code == 413
        # Chunked (no Content-Length): counted while it arrives.
        chunks = (json.dumps(big)[i : i + 500].encode() for i in range(0, 5100, 500))
        r = requests.post(sink.write, data=chunks, headers=headers("request", "big2"), timeout=30)
        assert r.status_code == 413
        # A header section over the limit is refused too.
        r = requests.post(
            sink.write, data="{}", headers={**headers("request", "h"), "X-Pad": "p" * 40_000}
        )
        assert r.status_code in (400, 431)
        assert post(sink, "request", "small", BODY).status_code == 200
        assert [e["request_id"] for e in stored_lines(sink.folder)] == ["small"]


def test_truncated_and_stalled_bodies_store_nothing(tmp_path: Path) -> None:
    with thread_sink(tmp_path / "log", Limits(request_timeout_s=0.5)) as (sink, _):
        body = json.dumps(BODY).encode()
        head = "".join(f"{k}: {v}\r\n" for k, v in headers("request", "torn").items())
        request = f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{head}\r\n"
        # The client closes half-way through the body.
        s = raw(sink.write)
        s.sendall(request.encode() + body[:10])
        s.shutdown(socket.SHUT_WR)
        answer = s.recv(65536)
        s.close()
        assert answer == b"" or answer.startswith(b"HTTP/1.1 400")
        # The client stops sending half-way and waits: 408 once the deadline passes.
        s = raw(sink.write)
        s.sendall(request.encode() + body[:10])
        assert s.recv(65536).startswith(b"HTTP/1.1 408")
        s.close()
        assert stored_lines(sink.folder) == []
        assert requests.get(f"{sink.read}/requests/torn", headers=READ).status_code == 404
        # Not JSON, truncated JSON and a nesting bomb: 400 naming the body.
        for data in (b'{"inputs": [', b"[" * 100_000 + b"]" * 100_000):
            r = requests.post(sink.write, data=data, headers=headers("request", "bad"), timeout=30)
            assert r.status_code in (400, 413) and "body" in r.json()["error"]


# -- stalled clients and concurrency --------------------------------------------------------------
def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_stalled_clients_neither_block_others_nor_take_threads(tmp_path: Path) -> None:
    sink = start_process_sink(tmp_path / "log", "--request-timeout", "5")
    assert sink.process is not None
    try:
        assert post(sink, "request", "warm", BODY).status_code == 200
        threads = threads_of(sink.process.pid)
        stalled = [raw(sink.write) for _ in range(150)] + [raw(sink.read) for _ in range(150)]
        half = raw(sink.write)
        half.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Len")  # a head that never ends
        # Everyone else is answered while 301 sockets send nothing (or half a head).
        for i in range(20):
            assert post(sink, "request", f"r{i}", BODY).status_code == 200
        r = requests.get(f"{sink.read}/requests/r19", headers=READ, timeout=30)
        assert r.status_code == 200
        assert threads_of(sink.process.pid) <= threads + 1  # no thread per connection
        # The deadline closes the stalled sockets (the half-sent head gets a 408).
        assert half.recv(65536).startswith(b"HTTP/1.1 408")
        for s in stalled[:5]:
            assert s.recv(1) == b""
        for s in [*stalled, half]:
            s.close()
    finally:
        sink.process.kill()
        sink.process.wait()


def test_connections_beyond_the_limit_get_503_not_a_hang(tmp_path: Path) -> None:
    with thread_sink(tmp_path / "log", Limits(max_connections=5)) as (sink, _):
        stalled = [raw(sink.write) for _ in range(5)]
        time.sleep(0.2)  # let the loop accept them
        r = post(sink, "request", "r1", BODY)
        assert r.status_code == 503
        for s in stalled:
            s.close()
        for _ in range(50):  # the loop notices the closed sockets
            r = post(sink, "request", "r1", BODY)
            if r.status_code == 200:
                break
            time.sleep(0.1)
        assert r.status_code == 200


# -- faults --------------------------------------------------------------------------------------
def test_a_torn_log_file_at_start_is_cut_and_quarantined_not_fatal(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    with thread_sink(folder) as (sink, _):
        assert post(sink, "request", "whole", BODY).status_code == 200
    day = next(folder.glob(f"{NS}/{SDEP}/*.jsonl"))
    whole = day.read_bytes()
    day.write_bytes(whole + b'{"id": "torn", "kind": "requ')  # as a crash or a full disk leaves it
    with thread_sink(folder) as (sink, server):
        assert server.store.recovered == [str(day)]
        assert day.read_bytes() == whole
        quarantined = list(day.parent.glob(f"{day.name}.torn-*"))
        assert [q.read_bytes() for q in quarantined] == [b'{"id": "torn", "kind": "requ']
        assert post(sink, "request", "after", BODY).status_code == 200
        lines = export(sink, namespace=NS, deployment=SDEP).content.splitlines()
        assert [json.loads(x)["request_id"] for x in lines] == ["whole", "after"]


def test_a_failed_write_is_a_5xx_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    with thread_sink(tmp_path / "log") as (sink, server):
        assert post(sink, "request", "ok", BODY).status_code == 200
        # Tomorrow's file cannot be created (a directory is in its way): the write fails.
        # Tomorrow's first second is a day ahead at most, so the door admits it at any hour.
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0)
        blocked = sink.folder / NS / SDEP / f"{tomorrow.date().isoformat()}.jsonl"
        blocked.mkdir(exist_ok=True)
        when = tomorrow.strftime("%Y-%m-%dT%H:%M:%SZ")
        r = post(sink, "request", "fails", BODY, time=when)
        assert r.status_code == 503 and "retry" in r.json()["error"]
        assert requests.get(f"{sink.read}/requests/fails", headers=READ).status_code == 404

        def broken(_rid: str) -> set[str]:
            raise RuntimeError("index broken")

        server.store.seen = broken  # type: ignore[method-assign]
        r = requests.get(f"{sink.read}/requests/ok", headers=READ, timeout=30)
        assert r.status_code == 500 and "RuntimeError" in r.json()["error"]
        assert requests.get(f"{sink.read}/health").status_code == 200


def test_events_are_deduplicated_by_id_across_restarts(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    h = headers("request", "r1")
    with thread_sink(folder) as (sink, _):
        first = requests.post(sink.write, data=json.dumps(BODY), headers=h, timeout=30)
        again = requests.post(sink.write, data=json.dumps(BODY), headers=h, timeout=30)
        assert first.json() == {"stored": h["Ce-Id"]} and again.json() == {"duplicate": h["Ce-Id"]}
    with thread_sink(folder) as (sink, _):
        r = requests.post(sink.write, data=json.dumps(BODY), headers=h, timeout=30)
        assert r.status_code == 200 and r.json() == {"duplicate": h["Ce-Id"]}
    assert [e["id"] for e in stored_lines(folder)] == [h["Ce-Id"]]


def test_the_id_index_is_bounded_and_retention_drops_old_days(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    old_day = folder / NS / SDEP / (datetime.now(UTC) - timedelta(days=40)).date().isoformat()
    old_day.parent.mkdir(parents=True)
    old_day.with_suffix(".jsonl").write_text("")
    with thread_sink(folder, retention_days=30, index_size=3) as (sink, _):
        assert not old_day.with_suffix(".jsonl").exists()
        for i in range(5):
            assert post(sink, "request", f"r{i}", BODY).status_code == 200
        found = [
            requests.get(f"{sink.read}/requests/r{i}", headers=READ).status_code for i in range(5)
        ]
        assert found == [404, 404, 200, 200, 200]  # the newest three are remembered
    # At start the index is refilled from the newest events only.
    store = LogStore(folder, index_size=2)
    assert [bool(store.seen(f"r{i}")) for i in range(5)] == [False] * 3 + [True] * 2
    store.close()


def test_every_acknowledged_event_survives_kill_9_once(tmp_path: Path) -> None:
    """Senders post until the sink process is killed with SIGKILL mid-stream; after a restart
    every event that was answered 2xx is stored exactly once, and re-sending all is deduped."""
    folder = tmp_path / "log"
    sink = start_process_sink(folder)
    assert sink.process is not None
    sent: dict[str, dict[str, str]] = {}
    acked: set[str] = set()
    lock = threading.Lock()

    def sender(n: int) -> None:
        session = requests.Session()
        for i in range(100_000):
            h = headers("request", f"s{n}-{i}")
            with lock:
                sent[h["Ce-Id"]] = h
            try:
                r = session.post(sink.write, data=json.dumps(BODY), headers=h, timeout=10)
            except requests.RequestException:
                return
            if r.status_code == 200:
                with lock:
                    acked.add(h["Ce-Id"])

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    while len(acked) < 300:
        time.sleep(0.01)
    os.kill(sink.process.pid, signal.SIGKILL)
    sink.process.wait()
    for t in threads:
        t.join()
    sink = start_process_sink(folder)
    assert sink.process is not None
    try:
        ids = [e["id"] for e in stored_lines(folder)]
        assert len(ids) == len(set(ids))  # no duplicates
        assert acked <= set(ids)  # nothing acknowledged was lost
        # The senders retry everything: acknowledged ones are duplicates, the rest are stored.
        session = requests.Session()
        answers = [
            session.post(sink.write, data=json.dumps(BODY), headers=h, timeout=30).json()
            for h in sent.values()
        ]
        assert {a["duplicate"] for a in answers if "duplicate" in a} >= acked
        ids = [e["id"] for e in stored_lines(folder)]
        assert sorted(ids) == sorted(sent)
    finally:
        sink.process.terminate()
        sink.process.wait()


def test_export_streams_the_newest_events_of_one_deployment(sink: Sink) -> None:
    for i in range(30):
        assert post(sink, "request", f"r{i}", BODY, predictor="canary").status_code == 200
    other = post(sink, "request", "x", BODY, **{"Ce-Inferenceservicename": "other"})
    assert other.status_code == 200
    r = requests.get(
        f"{sink.read}/export",
        params={"namespace": NS, "deployment": SDEP, "since": now_time()[:10]},
        headers=READ,
        stream=True,
        timeout=30,
    )
    assert r.headers.get("Transfer-Encoding") == "chunked"
    got = [json.loads(line)["request_id"] for line in r.iter_lines() if line]
    assert got == [f"r{i}" for i in range(30)]
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert export(sink, namespace=NS, deployment=SDEP, since=later).content == b""
    assert uuid.UUID(json.loads(export(sink, namespace=NS, deployment="other").content)["id"])


def test_a_stored_line_with_a_bad_time_never_stops_an_export(sink: Sink) -> None:
    """Lines an older sink wrote without checking times: left out of a `since` export."""
    assert post(sink, "request", "good", BODY).status_code == 200
    day = next(sink.folder.glob(f"{NS}/{SDEP}/*.jsonl"))
    good = json.loads(day.read_text())
    with day.open("a") as f:
        f.write(json.dumps({**good, "id": "old", "request_id": "old", "time": "now"}) + "\n")
    lines = export(sink, namespace=NS, deployment=SDEP, since=day.stem).content.splitlines()
    assert [json.loads(x)["request_id"] for x in lines] == ["good"]
