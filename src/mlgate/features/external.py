"""Feast definitions generated from a dataset config, for datasets mlgate did not generate.

An external dataset is one table (csv or parquet) holding keys, timestamp, label and features.
To give it the same training-set path as the synthetic world, mlgate registers an entity
(`entity_key`), a feature view over the table (its features, no TTL: a row's own values are
valid at its own timestamp) and a feature service `<name>_features`. Feast's DuckDB stores read
parquet only, with microsecond UTC timestamps, so the table is first normalised into
`<workspace>/feast/sources/<name>.parquet` (rewritten only when the source file changed).

Rows sharing (entity_key, event_timestamp) are ambiguous for a point-in-time join (which row's
features belong to which?): they are rejected with the offending key named.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from mlgate.config import PlatformSettings
from mlgate.data.dataset_config import DatasetConfig
from mlgate.errors import BadInputError


def service_name(dataset: DatasetConfig) -> str:
    return f"{dataset.name}_features"


def view_name(dataset: DatasetConfig) -> str:
    return f"{dataset.name}_view"


def to_utc(col: pd.Series, what: str) -> pd.Series:
    """Timestamps as datetime64[us, UTC] (naive ones are taken as UTC); ISO 8601 text first."""
    try:
        if pd.api.types.is_datetime64_any_dtype(col):
            out = pd.to_datetime(col, utc=True)
        else:
            try:
                out = pd.to_datetime(col, utc=True, format="ISO8601")
            except (ValueError, TypeError):
                out = pd.to_datetime(col, utc=True, format="mixed")
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadInputError(f"{what} is not a timestamp: {exc}") from exc
    return out.astype("datetime64[us, UTC]")


def _read_source(dataset: DatasetConfig) -> pd.DataFrame:
    path = dataset.resolve_path()
    if not path.is_file():
        raise BadInputError(f"{path}: dataset file not found (dataset {dataset.name!r})")
    try:
        if dataset.resolved_format == "csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
        raise BadInputError(f"{path}: cannot read as {dataset.resolved_format}: {exc}") from exc


def normalized_table(settings: PlatformSettings, dataset: DatasetConfig) -> Path:
    """The dataset as parquet with a UTC microsecond event timestamp, in the workspace."""
    src = dataset.resolve_path()
    out_dir = settings.ws().feast_dir / "sources"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{dataset.name}.parquet"
    if out.is_file() and src.is_file() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    df = _read_source(dataset)
    needed = [dataset.entity_key, dataset.event_timestamp, dataset.label, *dataset.features]
    needed += [c for c in (dataset.row_key, dataset.early_label, dataset.decision_column) if c]
    missing = [c for c in dict.fromkeys(needed) if c not in df.columns]
    if missing:
        raise BadInputError(f"{src}: missing column(s): {', '.join(missing)}")
    df[dataset.event_timestamp] = to_utc(
        df[dataset.event_timestamp], f"{src}: column {dataset.event_timestamp!r}"
    )
    dup = df.duplicated([dataset.entity_key, dataset.event_timestamp], keep=False)
    if dup.any():
        first = df.loc[dup].iloc[0]
        raise BadInputError(
            f"{src}: {int(dup.sum())} rows share ({dataset.entity_key}, "
            f"{dataset.event_timestamp}) with another row, e.g. "
            f"{first[dataset.entity_key]!r} at {first[dataset.event_timestamp]}: "
            "a point-in-time join cannot tell their features apart"
        )
    for c in dataset.categorical_features:
        df[c] = df[c].astype("string")
    for c in dataset.numeric_features:
        if not pd.api.types.is_numeric_dtype(df[c]):
            raise BadInputError(f"{src}: numeric feature {c!r} has non-numeric values")
        df[c] = df[c].astype("float64")
    fd, tmp = tempfile.mkstemp(suffix=".parquet", dir=out_dir)
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def definitions(settings: PlatformSettings, dataset: DatasetConfig) -> list[Any]:
    """Entity, feature view and feature service for an external dataset."""
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.data_format import ParquetFormat
    from feast.types import Float64, String

    table = normalized_table(settings, dataset)
    key_dtype = pd.read_parquet(table, columns=[dataset.entity_key])[dataset.entity_key].dtype
    is_int = pd.api.types.is_integer_dtype(key_dtype)
    entity = Entity(
        name=f"{dataset.name}_{dataset.entity_key}",
        join_keys=[dataset.entity_key],
        value_type=ValueType.INT64 if is_int else ValueType.STRING,
    )
    fields = [Field(name=c, dtype=Float64) for c in dataset.numeric_features]
    fields += [Field(name=c, dtype=String) for c in dataset.categorical_features]
    view = FeatureView(
        name=view_name(dataset),
        entities=[entity],
        ttl=None,
        schema=fields,
        source=FileSource(
            name=f"{dataset.name}_source",
            path=str(table),
            file_format=ParquetFormat(),
            timestamp_field=dataset.event_timestamp,
        ),
        online=True,
    )
    service = FeatureService(name=service_name(dataset), features=[view])
    return [entity, view, service]
