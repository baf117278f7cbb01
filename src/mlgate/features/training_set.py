"""Point-in-time correct training sets from Feast.

Entity rows are applications with their own timestamps; Feast's `get_historical_features` adds
each applicant's feature values as they were at that moment (never a later one, nothing older
than the view's TTL). The application's own fields, the outcome (label, early label) and the
bank's decision are joined by application, not through Feast: they are facts about the
application, not about the applicant over time.

Two kinds of dataset, one code path:
- `format: synthetic`: the world's tables (applications, outcomes) plus the repo's feature
  views and the feature service `credit_risk_v1`.
- an external file (csv/parquet, one table holding everything): mlgate generates a feature view
  over the file from the dataset config (entity = `entity_key`, timestamp = `event_timestamp`)
  and a feature service `<name>_features`; each row's own timestamp is its entity timestamp.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.data import schema
from mlgate.data.dataset_config import DatasetConfig
from mlgate.data.fingerprint import fingerprint
from mlgate.data.sources import check_source_columns
from mlgate.errors import BadInputError
from mlgate.features import external
from mlgate.features.store import get_store

FEAST_TS = "event_timestamp"  # the entity DataFrame's timestamp column as Feast reads it


def feature_service_name(dataset: DatasetConfig) -> str:
    """The Feast feature service a training set of this dataset comes from."""
    if dataset.resolved_format == "synthetic":
        return schema.FEAST_FEATURE_SERVICE
    return external.service_name(dataset)


def output_columns(dataset: DatasetConfig) -> list[str]:
    """Column order of every training set: keys, timestamp, features, labels, decision."""
    cols = [c for c in (dataset.row_key, dataset.entity_key, dataset.event_timestamp) if c]
    cols += dataset.features
    cols += [c for c in (dataset.label, dataset.early_label, dataset.decision_column) if c]
    return list(dict.fromkeys(cols))


def _read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    if not path.is_file():
        raise BadInputError(f"{path}: not found (generate the world first: mlgate data generate)")
    try:
        df = pd.read_parquet(path, columns=columns)
    except Exception as exc:  # pyarrow raises several types for unreadable/mismatched files
        raise BadInputError(f"{path}: cannot read: {exc}") from exc
    return df


def _synthetic_entity_rows(dataset: DatasetConfig) -> pd.DataFrame:
    world = dataset.resolve_path()
    apps = _read_parquet(world / f"{schema.APPLICATIONS}.parquet")
    outcomes_path = world / f"{schema.OUTCOMES}.parquet"
    outcome_cols = [c for c in (dataset.label, dataset.early_label) if c]
    if outcomes_path.is_file() and dataset.row_key:
        outcomes = _read_parquet(outcomes_path)
        keep = [dataset.row_key] + [c for c in outcome_cols if c in outcomes.columns]
        apps = apps.merge(outcomes[keep], on=dataset.row_key, how="left", validate="one_to_one")
    for c in outcome_cols:
        if c not in apps.columns:
            apps[c] = float("nan")
    return apps


def _entity_rows(settings: PlatformSettings, dataset: DatasetConfig) -> pd.DataFrame:
    check_source_columns(dataset)  # a misspelt label is bad input, not an empty training set
    if dataset.resolved_format == "synthetic":
        return _synthetic_entity_rows(dataset)
    table = external.normalized_table(settings, dataset)
    cols = [
        c
        for c in (
            dataset.row_key,
            dataset.entity_key,
            dataset.event_timestamp,
            dataset.label,
            dataset.early_label,
            dataset.decision_column,
        )
        if c
    ]
    return _read_parquet(table, columns=list(dict.fromkeys(cols)))


def _complete(
    settings: PlatformSettings, dataset: DatasetConfig, rows: pd.DataFrame
) -> pd.DataFrame:
    """Caller-given entity rows + what the dataset knows about them (by row key).

    E.g. logged canary applications carry keys and timestamps; their own fields, decision and
    (matured) outcomes come from the dataset. Columns the caller gave win.
    """
    key = dataset.row_key
    if not key or key not in rows.columns:
        return rows
    known = _entity_rows(settings, dataset)
    extra = [c for c in known.columns if c not in rows.columns]
    if not extra:
        return rows
    return rows.merge(known[[key, *extra]], on=key, how="left", validate="many_to_one")


def _bound(value: datetime | str | None) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _filter(
    rows: pd.DataFrame,
    dataset: DatasetConfig,
    approved_only: bool,
    matured_only: bool,
    start: datetime | str | None,
    end: datetime | str | None,
) -> pd.DataFrame:
    ts = rows[dataset.event_timestamp]
    keep = pd.Series(True, index=rows.index)
    lo, hi = _bound(start), _bound(end)
    if lo is not None:
        keep &= ts >= lo
    if hi is not None:
        keep &= ts < hi
    if approved_only and dataset.decision_column and dataset.decision_column in rows.columns:
        keep &= rows[dataset.decision_column] == dataset.approved_value
    if matured_only:
        if dataset.label not in rows.columns:
            raise BadInputError(f"label column {dataset.label!r} not found in the entity rows")
        keep &= rows[dataset.label].notna()
    return rows.loc[keep]


def build_training_set(
    settings: PlatformSettings,
    dataset: DatasetConfig,
    *,
    approved_only: bool = True,
    matured_only: bool = True,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    entity_df: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """A point-in-time correct training set.

    Rows: applications (or `entity_df`'s rows, completed from the dataset by row key) with
    event timestamp in [start, end), by default
    only approved ones whose label has matured (the only ones a lender observes outcomes for).
    Columns: `output_columns(dataset)`, sorted by (event timestamp, row key). Feature values
    come from Feast as of each row's timestamp; rows with no history keep missing values.
    `df.attrs` records the feature service and the row count before filtering.
    """
    if entity_df is None:
        rows = _entity_rows(settings, dataset)
    else:
        rows = _complete(settings, dataset, entity_df.copy())
    for col in (dataset.entity_key, dataset.event_timestamp):
        if col not in rows.columns:
            raise BadInputError(f"entity rows: required column {col!r} is missing")
    rows[dataset.event_timestamp] = external.to_utc(
        rows[dataset.event_timestamp], f"entity rows: column {dataset.event_timestamp!r}"
    )
    n_candidates = len(rows)
    rows = _filter(rows, dataset, approved_only, matured_only, start, end)

    store, service_name = _store_for(settings, dataset)
    service = store.get_feature_service(service_name)
    feast_features = [f.name for proj in service.feature_view_projections for f in proj.features]
    wanted = output_columns(dataset)
    from_rows = [c for c in wanted if c in rows.columns and c not in feast_features]
    missing = [c for c in dataset.features if c not in from_rows and c not in feast_features]
    if missing:
        raise BadInputError(
            f"dataset {dataset.name!r}: features not in the entity rows nor in feature service "
            f"{service_name!r}: {', '.join(missing)}"
        )
    entity = rows[from_rows].rename(columns={dataset.event_timestamp: FEAST_TS})
    if dataset.event_timestamp != FEAST_TS and FEAST_TS in from_rows:
        raise BadInputError(f"entity rows: column {FEAST_TS!r} clashes with the event timestamp")
    entity = entity.reset_index(drop=True)

    if len(entity):
        job = store.get_historical_features(entity_df=entity, features=service)
        df = job.to_df()
    else:
        df = entity.copy()
        for f in feast_features:
            df[f] = pd.Series(dtype="float64")
    df = df.rename(columns={FEAST_TS: dataset.event_timestamp})
    for c in wanted:
        if c not in df.columns:
            df[c] = float("nan")
    df = df[wanted]
    sort_by = [dataset.event_timestamp] + ([dataset.row_key] if dataset.row_key else [])
    sort_by += [dataset.entity_key] if not dataset.row_key else []
    df = df.sort_values(sort_by, kind="mergesort").reset_index(drop=True)
    df.attrs.update(
        {
            "dataset": dataset.name,
            "feature_service": service_name,
            "candidate_rows": n_candidates,
        }
    )
    return df


def application_features(
    settings: PlatformSettings,
    dataset: DatasetConfig,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
) -> pd.DataFrame:
    """Every application in [start, end) with its point-in-time features, declined ones too.

    The "current window" for drift monitoring: what the model saw (or would see), regardless
    of decision or whether an outcome is known yet (labels are NaN where not matured).
    """
    return build_training_set(
        settings, dataset, approved_only=False, matured_only=False, start=start, end=end
    )


def _store_for(settings: PlatformSettings, dataset: DatasetConfig) -> tuple[Any, str]:
    if dataset.resolved_format == "synthetic":
        return get_store(settings, data_dir=dataset.resolve_path()), schema.FEAST_FEATURE_SERVICE
    objects = external.definitions(settings, dataset)
    return get_store(settings, extra=objects), external.service_name(dataset)


class TrainingSetResult(BaseModel):
    """A training set written to disk: where, how big, and its content fingerprint."""

    path: str
    dataset: str
    feature_service: str
    rows: int
    columns: list[str]
    fingerprint: str


def write_training_set(df: pd.DataFrame, out: Path) -> TrainingSetResult:
    """Write parquet atomically (temp file + rename) and fingerprint the frame."""
    out = out.expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".parquet.tmp", dir=out.parent)
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return TrainingSetResult(
        path=str(out),
        dataset=str(df.attrs.get("dataset", "")),
        feature_service=str(df.attrs.get("feature_service", "")),
        rows=len(df),
        columns=list(df.columns),
        fingerprint=fingerprint(df).sha256,
    )
