"""Reading the request-log sink: what `mlgate canary analyze --requests URL` gets from /export.

`request_frame` joins requests with their responses into one row per scored application: the
request's inputs (features, keys), `inputs_sent` (which inputs the request carried: a request
with only the applicant key had its features looked up by the runtime and cannot be re-scored
from the log), `served_by` (the `model_version` the runtime answered with), `predictor` and
`request_time`. That frame is the request log the analysis reads. The export is read line by
line as it streams, with the read token (mlgate.serving.logsink.read_token_from_env).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import requests

from mlgate.errors import BadInputError, ExternalServiceError
from mlgate.serving.logsink import READ_TOKEN_ENV, LogEvent


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


def is_refusal(body: dict[str, Any]) -> bool:
    """A logged response that is the V2 protocol's error object (`{"error": ...}`, no
    `outputs`): the predictor refused the request as bad input (4xx). The router logs no
    other unsuccessful answer, so a request with no response at all is a failure (5xx, timeout,
    no answer) and one with a refusal is not."""
    return "error" in body and "outputs" not in body


def request_frame(events: Iterable[LogEvent]) -> pd.DataFrame:
    """Requests joined with their responses: one row per scored application. A request whose
    response never arrived is left out (nobody knows which version answered it), and so is one
    the predictor refused (nothing was scored)."""
    requests_: dict[str, LogEvent] = {}
    responses: dict[str, LogEvent] = {}
    for ev in events:
        (requests_ if ev.kind == "request" else responses)[ev.request_id] = ev
    frames = []
    for rid, req in requests_.items():
        resp = responses.get(rid)
        if resp is None or is_refusal(resp.body):
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


def _rows(body: dict[str, Any]) -> int:
    """How many applications a V2 request carries (its first input's length), at least 1."""
    inputs = body.get("inputs") or [{}]
    shape = inputs[0].get("shape") or [len(inputs[0].get("data") or [None])]
    return max(int(shape[0]), 1) if isinstance(shape[0], int) else 1


def unanswered_requests(
    events: Iterable[LogEvent], now: datetime, grace_s: float = 60
) -> dict[str, int]:
    """Predictor -> applications in requests logged without a response: the predictor
    failed them (5xx, a timeout, no answer: the router logs a response only for a 200 or a
    refusal, the executor only for a 200). Counted in rows, like the answered requests the
    analysis scores. A request logged less than `grace_s` before `now` may still be in flight
    and is not counted."""
    pending: dict[str, LogEvent] = {}
    answered: set[str] = set()
    for ev in events:
        if ev.kind == "request":
            pending[ev.request_id] = ev
        else:
            answered.add(ev.request_id)
    cutoff = pd.Timestamp(now) - pd.Timedelta(seconds=grace_s)
    out: dict[str, int] = {}
    for rid, req in pending.items():
        if rid in answered or pd.Timestamp(req.time) > cutoff:
            continue
        out[req.predictor] = out.get(req.predictor, 0) + _rows(req.body)
    return out


def refused_requests(events: Iterable[LogEvent]) -> dict[str, int]:
    """Predictor -> applications in requests it refused as bad input (a logged refusal,
    `is_refusal`): the caller's fault, not the predictor's, so reported beside the failures
    and never counted as one."""
    bodies: dict[str, LogEvent] = {}
    refused: set[str] = set()
    for ev in events:
        if ev.kind == "request":
            bodies[ev.request_id] = ev
        elif is_refusal(ev.body):
            refused.add(ev.request_id)
    out: dict[str, int] = {}
    for rid in refused & bodies.keys():
        req = bodies[rid]
        out[req.predictor] = out.get(req.predictor, 0) + _rows(req.body)
    return out


LOGGED_OUTPUTS = ("pd", "decision", "reason_codes", "refer_reason")


def logged_decision(request: LogEvent, response: LogEvent) -> pd.DataFrame:
    """One logged request with what the runtime answered: `request_frame`'s columns plus
    `logged_pd` (NaN for a referred row), `logged_decision`, `logged_reason_codes` (a list of
    dicts per row) and `logged_refer_reason`, the audit's view of a decision (`mlgate audit
    explain`). Bad input, naming the request, when the response does not answer every row."""
    rows = request_frame([request, response])
    outs = {str(o.get("name")): o for o in response.body.get("outputs") or []}
    for name in LOGGED_OUTPUTS:
        data = list(np.ravel(np.asarray((outs.get(name) or {}).get("data", []), dtype=object)))
        if name == "refer_reason" and not data:
            data = [""] * len(rows)
        if len(data) != len(rows):
            raise BadInputError(
                f"request {request.request_id}: the logged response has {len(data)} "
                f"{name!r} value(s) for {len(rows)} row(s)"
            )
        if name == "pd":
            rows["logged_pd"] = [np.nan if v is None else float(v) for v in data]
        elif name == "reason_codes":
            try:
                rows["logged_reason_codes"] = [json.loads(v) if v else [] for v in data]
            except (TypeError, json.JSONDecodeError) as exc:
                raise BadInputError(
                    f"request {request.request_id}: logged reason_codes are not JSON: {exc}"
                ) from None
        else:
            rows[f"logged_{name}"] = [str(v) for v in data]
    return rows


def fetch_requests(
    url: str,
    namespace: str,
    deployment: str,
    since: str | None,
    token: bytes | None = None,
    timeout: float = 60,
) -> pd.DataFrame:
    """The joined request log of one SeldonDeployment, streamed from a running sink's /export."""
    return request_frame(fetch_events(url, namespace, deployment, since, token, timeout))


def fetch_events(
    url: str,
    namespace: str,
    deployment: str,
    since: str | None,
    token: bytes | None = None,
    timeout: float = 60,
) -> Iterator[LogEvent]:
    """The events of one SeldonDeployment as a running sink's /export streams them, one at a
    time (the shadow analysis pairs them itself)."""
    params = {"namespace": namespace, "deployment": deployment}
    if since:
        params["since"] = since
    headers = {"Authorization": f"Bearer {token.decode()}"} if token else {}
    try:
        with requests.get(
            f"{url.rstrip('/')}/export",
            params=params,
            headers=headers,
            timeout=timeout,
            stream=True,
        ) as r:
            if r.status_code == 401:
                raise ExternalServiceError(
                    f"request-log sink {url} answered 401: set {READ_TOKEN_ENV} to the file "
                    "holding the sink's read token"
                )
            if r.status_code != 200:
                raise ExternalServiceError(
                    f"request-log sink {url} answered {r.status_code}: {r.text[:500]}"
                )
            for line in r.iter_lines():
                if line.strip():
                    yield LogEvent.model_validate_json(line)
    except requests.RequestException as exc:
        raise ExternalServiceError(f"request-log sink {url} did not answer: {exc}") from exc
