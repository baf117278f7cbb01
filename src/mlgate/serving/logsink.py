"""The request-log sink: where Seldon's request logger sends every request and response.

Seldon Core's executor posts each request and each response of a predictor as a CloudEvent in
binary mode: the V2 payload as the JSON body and the attributes as headers (`ce-id`,
`ce-specversion`, `ce-type` io.seldon.serving.inference.request|response, `ce-requestid`
shared by the pair, `ce-namespace`, `ce-inferenceservicename` the SeldonDeployment,
`ce-endpoint` the predictor, `ce-time`). The sink appends them, one JSON line each, to
`<folder>/<namespace>/<deployment>/<day>.jsonl` and serves them back:

- `POST /` a CloudEvent (400 naming the missing header or a body that is not JSON);
- `GET /health`;
- `GET /requests/<request id>`: 200 once the request was logged (the PostSync smoke test);
- `GET /export?namespace=N&deployment=D[&since=ISO]`: the stored events as JSON lines.

`request_frame` joins requests with their responses into one row per scored application: the
request's inputs (features, keys), `inputs_sent` (which inputs the request carried: a request
with only the applicant key had its features looked up by the runtime and cannot be re-scored
from the log), `served_by` (the `model_version` the runtime answered with), `predictor` and
`request_time`. That frame is the request log `mlgate canary analyze` reads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import requests
from pydantic import BaseModel

from mlgate.errors import BadInputError, ExternalServiceError

TYPES = {
    "io.seldon.serving.inference.request": "request",
    "io.seldon.serving.inference.response": "response",
}
REQUIRED = ("ce-id", "ce-specversion", "ce-type", "ce-requestid")


class LogEvent(BaseModel):
    id: str
    kind: Literal["request", "response"]
    request_id: str
    namespace: str
    deployment: str
    predictor: str
    time: str
    body: dict[str, Any]


def parse_event(headers: Mapping[str, str], body: bytes) -> LogEvent:
    """A binary-mode CloudEvent -> LogEvent; bad input names the header or the body."""
    h = {k.lower(): v for k, v in headers.items()}
    missing = [k for k in REQUIRED if not h.get(k)]
    if missing:
        raise BadInputError(f"CloudEvent without header(s) {', '.join(missing)}")
    kind = TYPES.get(h["ce-type"])
    if kind is None:
        raise BadInputError(f"ce-type {h['ce-type']!r}: not a Seldon inference request/response")
    try:
        payload = json.loads(body or b"{}")
    except ValueError as exc:
        raise BadInputError(f"CloudEvent {h['ce-id']}: body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadInputError(f"CloudEvent {h['ce-id']}: body is not a JSON object")
    return LogEvent(
        id=h["ce-id"],
        kind=kind,  # type: ignore[arg-type]
        request_id=h["ce-requestid"],
        namespace=h.get("ce-namespace") or "unknown",
        deployment=h.get("ce-inferenceservicename") or "unknown",
        predictor=h.get("ce-endpoint") or "unknown",
        time=h.get("ce-time") or datetime.now(UTC).isoformat(),
        body=payload,
    )


class LogStore:
    """Append-only JSON lines per namespace/deployment/day, plus an index of request ids."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._seen: dict[str, set[str]] = {}
        for ev in self._read(self.folder.glob("*/*/*.jsonl")):
            self._seen.setdefault(ev.request_id, set()).add(ev.kind)

    def _file(self, ev: LogEvent) -> Path:
        day = ev.time[:10] if len(ev.time) >= 10 else datetime.now(UTC).date().isoformat()
        return self.folder / ev.namespace / ev.deployment / f"{day}.jsonl"

    def append(self, ev: LogEvent) -> None:
        line = ev.model_dump_json() + "\n"
        path = self._file(ev)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(line)
            self._seen.setdefault(ev.request_id, set()).add(ev.kind)

    def seen(self, request_id: str) -> set[str]:
        with self._lock:
            return set(self._seen.get(request_id, set()))

    def events(
        self, namespace: str, deployment: str, since: str | None = None
    ) -> Iterator[LogEvent]:
        files = sorted((self.folder / namespace / deployment).glob("*.jsonl"))
        start = _utc(since) if since else None
        if start is not None:
            files = [f for f in files if f.stem >= start.date().isoformat()]
        for ev in self._read(files):
            if start is None or _utc(ev.time) >= start:
                yield ev

    @staticmethod
    def _read(files: Iterable[Path]) -> Iterator[LogEvent]:
        for path in files:
            with path.open(encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        yield LogEvent.model_validate_json(line)


def _utc(text: str) -> pd.Timestamp:
    """An event time as UTC (the executor writes nanoseconds and `Z`; naive means UTC)."""
    ts = pd.Timestamp(text)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _inputs_frame(body: dict[str, Any]) -> pd.DataFrame:
    """A V2 request's inputs (one per column, `shape` [n] or [n, 1]) as n rows."""
    cols: dict[str, Any] = {}
    for inp in body.get("inputs") or []:
        data = list(np.ravel(np.asarray(inp.get("data", []), dtype=object)))
        if inp.get("datatype") in ("FP32", "FP64"):
            data = [np.nan if v is None else float(v) for v in data]
        cols[str(inp.get("name"))] = data
    lengths = {len(v) for v in cols.values()}
    if len(lengths) > 1:
        raise BadInputError(f"request {body.get('id', '?')}: inputs of different lengths")
    return pd.DataFrame(cols)


def _served_by(body: dict[str, Any], n: int) -> list[str]:
    for out in body.get("outputs") or []:
        if out.get("name") == "model_version":
            values = [str(v) for v in np.ravel(np.asarray(out.get("data", []), dtype=object))]
            if len(values) == n:
                return values
    return [str(body.get("model_version") or "")] * n


def request_frame(events: Iterable[LogEvent]) -> pd.DataFrame:
    """Requests joined with their responses: one row per scored application. A request whose
    response never arrived is left out (nobody knows which version answered it)."""
    requests_: dict[str, LogEvent] = {}
    responses: dict[str, LogEvent] = {}
    for ev in events:
        (requests_ if ev.kind == "request" else responses)[ev.request_id] = ev
    frames = []
    for rid, req in requests_.items():
        resp = responses.get(rid)
        if resp is None:
            continue
        rows = _inputs_frame(req.body)
        if not len(rows):
            continue
        rows["inputs_sent"] = ",".join(str(c) for c in rows.columns)
        rows["served_by"] = _served_by(resp.body, len(rows))
        rows["predictor"] = req.predictor
        rows["request_time"] = req.time
        rows["request_id"] = rid
        frames.append(rows)
    if not frames:
        return pd.DataFrame(
            columns=["inputs_sent", "served_by", "predictor", "request_time", "request_id"]
        )
    return pd.concat(frames, ignore_index=True)


def fetch_requests(
    url: str, namespace: str, deployment: str, since: str | None, timeout: float = 60
) -> pd.DataFrame:
    """The joined request log of one SeldonDeployment, from a running sink's /export."""
    params = {"namespace": namespace, "deployment": deployment}
    if since:
        params["since"] = since
    try:
        r = requests.get(f"{url.rstrip('/')}/export", params=params, timeout=timeout)
    except requests.RequestException as exc:
        raise ExternalServiceError(f"request-log sink {url} did not answer: {exc}") from exc
    if r.status_code != 200:
        raise ExternalServiceError(f"request-log sink {url} answered {r.status_code}: {r.text}")
    events = (LogEvent.model_validate_json(line) for line in r.text.splitlines() if line.strip())
    return request_frame(events)


def make_server(store: LogStore, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_a: object) -> None:  # access logs would be the payloads again
            pass

        def _send(self, status: int, payload: Any, ctype: str = "application/json") -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                ev = parse_event(dict(self.headers.items()), body)
            except BadInputError as exc:
                self._send(400, {"error": str(exc)})
                return
            store.append(ev)
            self._send(200, {"stored": ev.id})

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlparse(self.path)
            if url.path == "/health":
                self._send(200, {"status": "ok"})
            elif url.path.startswith("/requests/"):
                rid = url.path.removeprefix("/requests/")
                kinds = store.seen(rid)
                if "request" in kinds:
                    self._send(200, {"request_id": rid, "logged": sorted(kinds)})
                else:
                    self._send(404, {"error": f"request {rid} not logged"})
            elif url.path == "/export":
                q = {k: v[-1] for k, v in parse_qs(url.query).items()}
                if not q.get("namespace") or not q.get("deployment"):
                    self._send(400, {"error": "export needs namespace and deployment"})
                    return
                lines = "".join(
                    ev.model_dump_json() + "\n"
                    for ev in store.events(q["namespace"], q["deployment"], q.get("since"))
                )
                self._send(200, lines.encode(), "application/x-ndjson")
            else:
                self._send(404, {"error": f"no such path {url.path}"})

    return ThreadingHTTPServer((host, port), Handler)
