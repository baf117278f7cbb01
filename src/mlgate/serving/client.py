"""A thin V2 (Open Inference Protocol) client for the credit-risk runtime.

It encodes a table as the runtime expects it (`content_type: pd`, one input per column, strings
as BYTES marked `content_type: str`) and decodes the four outputs back into `Score` records.
A referred row (`decision: refer`) has no PD: null on the wire, NaN in `Score.pd`, and
`refer_reason` says why. `score()` is what `mlgate score` does: look the applicant's features up in Feast's online store
(TTL-checked), overlay the application's own fields, send the full vector.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import requests
from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.errors import ExternalServiceError

KEY = "applicant_id"


class Score(BaseModel):
    pd: float  # NaN when the row was referred (no score)
    decision: str  # approve | decline | refer
    reason_codes: list[dict[str, Any]]
    model_version: str
    refer_reason: str = ""


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _input(name: str, series: pd.Series) -> dict[str, Any]:
    kind = series.dtype.kind
    values = series.tolist() if kind == "O" else []
    if values and all(v is None or _is_number(v) for v in values) and any(map(_is_number, values)):
        kind = "f"  # numbers with gaps (object dtype): FP64 with nulls, not text
    if kind in "iu":
        return {"name": name, "datatype": "INT64", "shape": [len(series), 1],
                "data": [int(v) for v in series]}  # fmt: skip
    if kind == "b":  # sent as what it is: the server refuses booleans as numbers
        return {"name": name, "datatype": "BOOL", "shape": [len(series), 1],
                "data": [bool(v) for v in series]}  # fmt: skip
    if kind == "f":
        vals = [
            None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
            for v in series
        ]
        return {"name": name, "datatype": "FP64", "shape": [len(series), 1], "data": vals}
    return {
        "name": name,
        "datatype": "BYTES",
        "shape": [len(series), 1],
        "data": ["" if v is None else str(v) for v in series],
        "parameters": {"content_type": "str"},
    }


def v2_request(df: pd.DataFrame, as_of: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"content_type": "pd"}
    if as_of:
        params["as_of"] = as_of
    return {
        "parameters": params,
        "inputs": [_input(str(c), df[c]) for c in df.columns],
    }


def parse_response(body: dict[str, Any]) -> list[Score]:
    outs = {o["name"]: o["data"] for o in body.get("outputs", [])}
    missing = {"pd", "decision", "reason_codes", "model_version"} - set(outs)
    if missing:
        raise ExternalServiceError(f"response lacks outputs {sorted(missing)}: {body}")
    n = len(outs["pd"])
    refer = outs.get("refer_reason") or [""] * n
    return [
        Score(
            pd=math.nan if p is None else float(p),
            decision=d,
            reason_codes=json.loads(r),
            model_version=str(v),
            refer_reason=str(why),
        )
        for p, d, r, v, why in zip(
            outs["pd"],
            outs["decision"],
            outs["reason_codes"],
            outs["model_version"],
            refer,
            strict=True,
        )
    ]


def infer(
    url: str, model: str, df: pd.DataFrame, *, as_of: str | None = None, timeout: float = 10
) -> list[Score]:
    try:
        r = requests.post(
            f"{url}/v2/models/{model}/infer", json=v2_request(df, as_of), timeout=timeout
        )
    except requests.RequestException as exc:
        raise ExternalServiceError(f"model server {url} did not answer: {exc}") from exc
    if r.status_code != 200:
        raise ExternalServiceError(f"model server {url} answered {r.status_code}: {r.text[:500]}")
    return parse_response(r.json())


def score(
    settings: PlatformSettings,
    url: str,
    model: str,
    applicant_id: str,
    application: dict[str, Any],
    *,
    at: str | None = None,
) -> Score:
    """Online lookup (TTL-checked, as of `at` or now) + the application's own fields -> Score."""
    from mlgate.features.online import lookup

    online = lookup(settings, [applicant_id], at)
    row: dict[str, Any] = {str(k): v for k, v in online.iloc[0].items()} if len(online) else {}
    row[KEY] = applicant_id
    row.update(application)
    return infer(url, model, pd.DataFrame([row]), as_of=at)[0]
