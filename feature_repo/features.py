"""Feature views and the feature service `credit_risk_v1`.

Where the data lives is configuration, read from the environment when the repo is loaded
(by `mlgate features apply` or `feast apply`):

- MLGATE_FEAST_SOURCE: `file` (default: parquet files, the embedded default), `snowflake` or
  `bigquery` (production warehouses).
- MLGATE_FEAST_DATA_DIR: the folder holding the world's parquet files (file sources). Default:
  `../../data/world` next to this file, which is where it is when mlgate copies this repo into
  `<workspace>/feast/repo/`. Feast's DuckDB store needs absolute paths: they are resolved here.
- MLGATE_FEAST_SNOWFLAKE_DATABASE / MLGATE_FEAST_SNOWFLAKE_SCHEMA, or
  MLGATE_FEAST_BIGQUERY_DATASET (`project.dataset`): where the warehouse tables live.

TTLs are the longest age at which a value still describes the applicant: monthly bureau
snapshots stay valid for 45 days, daily transaction aggregates for 7 days. Older values come
back missing rather than stale, offline and (through mlgate's lookup) online alike.
"""

import os
from datetime import timedelta
from pathlib import Path

from entities import applicant
from feast import (
    BigQuerySource,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    SnowflakeSource,
)
from feast.data_format import ParquetFormat
from feast.data_source import DataSource
from feast.types import Float64

from mlgate.data import schema


def _data_dir() -> Path:
    raw = os.environ.get("MLGATE_FEAST_DATA_DIR")
    if raw:
        return Path(raw).expanduser().resolve()
    return (Path(__file__).resolve().parent / ".." / ".." / "data" / "world").resolve()


def _source(table: str) -> DataSource:
    kind = os.environ.get("MLGATE_FEAST_SOURCE", "file")
    common = {
        "name": table,
        "timestamp_field": schema.EVENT_TS,
        "created_timestamp_column": schema.CREATED_TS,
    }
    if kind == "file":
        return FileSource(
            path=str(_data_dir() / f"{table}.parquet"), file_format=ParquetFormat(), **common
        )
    if kind == "snowflake":
        return SnowflakeSource(
            database=os.environ["MLGATE_FEAST_SNOWFLAKE_DATABASE"],
            schema=os.environ["MLGATE_FEAST_SNOWFLAKE_SCHEMA"],
            table=table.upper(),
            **common,
        )
    if kind == "bigquery":
        return BigQuerySource(
            table=f"{os.environ['MLGATE_FEAST_BIGQUERY_DATASET']}.{table}", **common
        )
    raise ValueError(f"MLGATE_FEAST_SOURCE={kind!r}: expected file, snowflake or bigquery")


def _fields(names: list[str]) -> list[Field]:
    # Float64 throughout: counts too, so a missing value (NaN) has a type and online values
    # (materialized through these types) compare equal to offline ones.
    return [Field(name=n, dtype=Float64) for n in names]


bureau_features = FeatureView(
    name=schema.FEAST_BUREAU_VIEW,
    entities=[applicant],
    ttl=timedelta(days=schema.BUREAU_TTL_DAYS),
    schema=_fields(schema.BUREAU_FEATURES),
    source=_source(schema.BUREAU),
    online=True,
    description="Monthly credit-bureau snapshot per applicant.",
)

transaction_features = FeatureView(
    name=schema.FEAST_TRANSACTION_VIEW,
    entities=[applicant],
    ttl=timedelta(days=schema.TRANSACTION_TTL_DAYS),
    schema=_fields(schema.TRANSACTION_FEATURES),
    source=_source(schema.TRANSACTIONS),
    online=True,
    description="Daily transaction aggregates per applicant (30-day windows).",
)

credit_risk_v1 = FeatureService(
    name=schema.FEAST_FEATURE_SERVICE,
    features=[bureau_features, transaction_features],
    description="Features of the credit-risk PD model, version 1.",
)
