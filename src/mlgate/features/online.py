"""Online features for serving: materialize into the online store, look applicants up.

Feast 0.63's online reads ignore the feature views' TTL (feast-dev/feast#6821): a bureau
snapshot from last year comes back marked PRESENT. A credit decision on stale data is worse
than one on missing data (the model and the policy know how to treat missing), so `lookup`
checks each returned value's event timestamp against its view's TTL and blanks expired values,
the same rule the offline point-in-time join applies: valid iff `at - ttl <= event_ts <= at`.
With that, online values equal offline values for the same applicant and timestamp.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.data import schema
from mlgate.errors import ConfigError
from mlgate.features.store import get_store, open_store

EPOCH = datetime(1970, 1, 2, tzinfo=UTC)


class MaterializeResult(BaseModel):
    start: datetime
    end: datetime
    feature_views: list[str]


def _utc(value: datetime | str | None, default: datetime) -> datetime:
    if value is None:
        return default
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def materialize(
    settings: PlatformSettings,
    end: datetime | str | None = None,
    *,
    start: datetime | str | None = None,
    data_dir: Path | None = None,
) -> MaterializeResult:
    """Load each view's latest value per applicant as of `end` (default now) into the online store.

    `start` defaults to the distant past: the online store should hold the latest value however
    old (expired ones are filtered at lookup), not only values younger than the TTL.
    """
    store = get_store(settings, data_dir=data_dir)
    lo = _utc(start, EPOCH)
    hi = _utc(end, datetime.now(UTC))
    views = [fv.name for fv in store.list_feature_views() if fv.online]
    # Feast prints a coloured banner per view on stdout; stdout is for what scripts read
    # (--json), and callers show their own progress.
    # Feast's ibis layer also warns about a duckdb API rename on every view: not ours to fix.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        store.materialize(start_date=lo, end_date=hi, feature_views=views)
    return MaterializeResult(start=lo, end=hi, feature_views=sorted(views))


def _service(store: Any, name: str) -> Any:
    try:
        return store.get_feature_service(name)
    except Exception as exc:  # FeatureServiceNotFoundException
        raise ConfigError(
            f"feature service {name!r} is not registered: run `mlgate features apply` "
            "and `mlgate features materialize` first"
        ) from exc


def feature_ttls(store: Any, service: Any) -> dict[str, timedelta | None]:
    """Feature name -> its view's TTL (None: never expires)."""
    out: dict[str, timedelta | None] = {}
    for proj in service.feature_view_projections:
        fv = store.get_feature_view(proj.name)
        ttl = fv.ttl if fv.ttl and fv.ttl.total_seconds() > 0 else None
        for f in proj.features:
            out[f.name] = ttl
    return out


def lookup(
    settings: PlatformSettings,
    applicant_ids: Sequence[str],
    at: datetime | str | None = None,
    *,
    service_name: str = schema.FEAST_FEATURE_SERVICE,
    store: Any = None,
) -> pd.DataFrame:
    """Online feature vectors of `applicant_ids` as of `at` (default now), expired values NaN.

    One row per id, in the given order: the entity key and every feature of the service.
    `df.attrs["expired"]` counts values blanked by the TTL check.
    """
    store = store if store is not None else open_store(settings)
    service = _service(store, service_name)
    when = _utc(at, datetime.now(UTC))
    rows = [{schema.APPLICANT_ID: a} for a in applicant_ids]
    raw = store.get_online_features(features=service, entity_rows=rows).to_dict(
        include_event_timestamps=True
    )
    at_s = when.timestamp()
    out: dict[str, Any] = {schema.APPLICANT_ID: list(applicant_ids)}
    expired = 0
    for feature, ttl in feature_ttls(store, service).items():
        values = pd.Series(raw.get(feature, [None] * len(rows)))
        if values.isna().all():
            values = values.astype("float64")
        ts = np.array(raw.get(f"{feature}__ts", [0] * len(rows)), dtype="float64")
        valid = ts <= at_s
        if ttl is not None:
            valid &= ts >= at_s - ttl.total_seconds()
        expired += int((~valid & values.notna().to_numpy()).sum())
        out[feature] = values.where(valid).to_numpy()
    df = pd.DataFrame(out)
    df.attrs["expired"] = expired
    df.attrs["at"] = when.isoformat()
    return df
