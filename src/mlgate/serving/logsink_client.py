"""Reading the request-log sink: what `mlgate canary analyze --requests URL` gets from /export.

`request_frame` joins requests with their responses into one row per scored application: the
request's inputs (features, keys), `inputs_sent` (which inputs the request carried: a request
with only the applicant key had its features looked up by the runtime and cannot be re-scored
from the log), `served_by` (the `model_version` the runtime answered with), `predictor` and
`request_time`. That frame is the request log the analysis reads. The export is read line by
line as it streams, with the read token (mlgate.serving.logsink.read_token_from_env).
"""

from __future__ import annotations

from collections.abc import Iterable
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
    url: str,
    namespace: str,
    deployment: str,
    since: str | None,
    token: bytes | None = None,
    timeout: float = 60,
) -> pd.DataFrame:
    """The joined request log of one SeldonDeployment, streamed from a running sink's /export."""
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
            events = (LogEvent.model_validate_json(line) for line in r.iter_lines() if line.strip())
            return request_frame(events)
    except requests.RequestException as exc:
        raise ExternalServiceError(f"request-log sink {url} did not answer: {exc}") from exc
