"""Replayed traffic: applications sent to a running router over the V2 protocol, as applicants'
requests would arrive.

The canary analysis must judge what was really served and logged, so a rehearsal (the demo,
the tests, a user's laptop) needs traffic that goes through the same router, the same model
servers and the same request logger as in the cluster. `send` posts each application (or
`batch` of them) as one V2 request (`serving.client.v2_request`: one input per column, the
runtime's own encoding) to the router, in application-date order, from a bounded pool of
workers (the router and the predictors see concurrent callers, as in production), optionally
paced to `rate` requests per second. Each answer is counted: answered (200, by the
`model_version` that answered), refused (4xx: the contract turned the request down) or an
error (5xx, no answer). A failing predictor is what the canary analysis must notice, so errors
are counted and reported, never raised.

Each request carries its own V2 `id` (a fresh UUID), which the router forwards unchanged to
the routed predictor and to a shadow: the shadow analysis pairs the two answers by it.

The row key, entity key and application time travel as inputs beside the features (the
runtime ignores inputs it does not score): the logged request then carries what the analysis
joins outcomes and protected attributes by.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import requests
from pydantic import BaseModel, Field

from mlgate.errors import BadInputError
from mlgate.serving.client import parse_response, v2_request
from mlgate.serving.router import SELDON_PUID

Tick = Callable[[int, int], None]  # (requests done, requests in total)


class TrafficReport(BaseModel):
    """What a replay sent and what came back; `by_version` counts answered rows by the
    `model_version` of the predictor that answered them."""

    url: str
    window: list[str] = Field(default_factory=list)  # [from, to) of the applications
    applications: int = 0
    sent: int = 0  # requests
    answered: int = 0
    refused: int = 0  # 4xx: the request broke the serving contract
    errors: int = 0  # 5xx or no answer: a predictor failed
    by_version: dict[str, int] = Field(default_factory=dict)
    by_status: dict[str, int] = Field(default_factory=dict)
    request_ids: int = 0  # answers carrying the router's Seldon-Puid (logged requests)
    first_errors: list[str] = Field(default_factory=list)  # up to 5, to say what failed


def infer_url(url: str, model: str) -> str:
    """The router's infer endpoint from its base URL (or the endpoint itself); only http(s)
    to a host, no credentials in it (they would be printed in the report)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInputError(f"--url {url!r}: the router's http(s) URL, e.g. http://127.0.0.1:8080")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise BadInputError(f"--url: the router's base URL, without credentials or query: {url!r}")
    base = url.rstrip("/")
    path = f"/v2/models/{model}/infer"
    return base if base.endswith(path) else base + path


def wire_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns as the V2 encoding takes them: times as ISO-8601 text (the runtime and the
    log carry text; `pd.to_datetime` reads it back)."""
    out = frame.reset_index(drop=True).copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].map(lambda t: None if pd.isna(t) else t.isoformat())
    return out


def batches(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), size):
        yield frame.iloc[start : start + size]


class _Pace:
    """At most `rate` requests per second from all workers together: the i-th request starts
    no earlier than i / rate seconds after the first."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.start = time.monotonic()
        self.count = 0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.rate:
            return
        with self.lock:
            due = self.start + self.count / self.rate
            self.count += 1
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def _post(session: requests.Session, url: str, body: dict[str, Any], timeout: float) -> tuple:
    """(status or None, parsed body or error text, has request id) of one request."""
    try:
        r = session.post(url, json=body, timeout=timeout)
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"[:300], False
    puid = bool(r.headers.get(SELDON_PUID))
    if r.status_code == 200:
        try:
            return 200, r.json(), puid
        except ValueError:
            return 502, f"200 with a body that is not JSON: {r.text[:200]}", puid
    return r.status_code, f"{r.status_code}: {r.text[:300]}", puid


def send(
    url: str,
    model: str,
    frame: pd.DataFrame,
    *,
    concurrency: int = 8,
    rate: float | None = None,
    batch: int = 1,
    timeout: float = 60,
    tick: Tick | None = None,
) -> TrafficReport:
    """Post `frame`'s rows (already in the order they should arrive) to the router at `url`
    and count what came back."""
    if concurrency < 1:
        raise BadInputError(f"--concurrency {concurrency}: must be at least 1")
    if batch < 1:
        raise BadInputError(f"--batch {batch}: must be at least 1")
    if rate is not None and rate <= 0:
        raise BadInputError(f"--rate {rate}: requests per second must be above 0")
    endpoint = infer_url(url, model)
    wire = wire_frame(frame)
    total = (len(wire) + batch - 1) // batch
    report = TrafficReport(url=endpoint, applications=len(wire))
    by_version: Counter[str] = Counter()
    by_status: Counter[str] = Counter()
    pace = _Pace(rate)
    local = threading.local()

    def one(rows: pd.DataFrame) -> tuple:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        pace.wait()
        body = v2_request(rows)
        # The V2 request's own id: the router forwards it unchanged to the routed predictor
        # and the shadow alike, so the shadow analysis pairs the two answers by it.
        body["id"] = str(uuid.uuid4())
        return _post(local.session, endpoint, body, timeout)

    def count(result: tuple) -> None:
        status, body, puid = result
        report.sent += 1
        report.request_ids += int(puid)
        by_status[str(status) if status is not None else "no answer"] += 1
        if status == 200:
            try:
                scores = parse_response(body)
            except Exception as exc:  # noqa: BLE001 - a malformed answer is an error, counted
                status, body = 502, f"answer without the V2 outputs: {exc}"[:300]
            else:
                report.answered += 1
                by_version.update(s.model_version for s in scores)
                return
        if status is not None and 400 <= status < 500:
            report.refused += 1
        else:
            report.errors += 1
        if len(report.first_errors) < 5:
            report.first_errors.append(str(body))

    # Submit in order, at most `concurrency` in flight: the arrival order is the applications'
    # order, and memory holds only the requests in flight.
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="replay") as pool:
        pending: set[Future[tuple]] = set()
        for rows in batches(wire, batch):
            if len(pending) >= concurrency:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    count(f.result())
                if tick:
                    tick(report.sent, total)
            pending.add(pool.submit(one, rows))
        for f in pending:
            count(f.result())
    if tick:
        tick(report.sent, total)
    report.by_version = dict(sorted(by_version.items()))
    report.by_status = dict(sorted(by_status.items()))
    return report
