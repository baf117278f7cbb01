"""A Feast offline store whose point-in-time join is one DuckDB `ASOF LEFT JOIN` per view.

Feast 0.63's built-in DuckDB store (via ibis) joins every entity row with every earlier feature
row of its key and then deduplicates with a window function: on 1M entity rows it takes about
6.6x as long as a hand-written DuckDB ASOF join. This store keeps Feast's API, registry and
definitions (select it in feature_store.yaml with
`offline_store: {type: mlgate.features.duckdb_asof_store.DuckDBAsofOfflineStore}`) and
reproduces the built-in store's semantics exactly:

- a feature row is visible to an entity row iff `feature_ts <= entity_ts` (inclusive) and, when
  the view has a TTL, `feature_ts >= entity_ts - ttl` (inclusive);
- among visible rows the latest event timestamp wins, ties broken by the latest created
  timestamp (rows sharing keys and event timestamp are reduced to the latest created one
  first, then ASOF picks the latest event);
- entity rows that match nothing are kept, with missing features;
- `full_feature_names` gives `<view>__<feature>`; field mappings and join-key maps apply.

Materialization, `pull_*` and writes are inherited from the built-in DuckDB store. Requests this
store does not plan itself (an entity SQL query instead of a DataFrame, non-parquet sources,
substrait on-demand views) are handed to the built-in store unchanged. Unlike the built-in
store, rows come back in the entity DataFrame's order.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from feast.data_format import ParquetFormat
from feast.feature_view import FeatureView
from feast.infra.offline_stores import offline_utils
from feast.infra.offline_stores.duckdb import DuckDBOfflineStore, DuckDBOfflineStoreConfig
from feast.infra.offline_stores.file_source import FileSource
from feast.infra.offline_stores.offline_store import RetrievalJob, RetrievalMetadata
from feast.infra.registry.base_registry import BaseRegistry
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.repo_config import RepoConfig
from feast.saved_dataset import SavedDatasetStorage
from pydantic import StrictStr

ROW_ID = "__mlgate_row"


class DuckDBAsofOfflineStoreConfig(DuckDBOfflineStoreConfig):
    """Same options as Feast's DuckDB store; only the type differs."""

    type: StrictStr = "mlgate.features.duckdb_asof_store.DuckDBAsofOfflineStore"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _ViewPlan:
    """What one feature view contributes: its source, keys, timestamps, TTL and output names."""

    def __init__(
        self, fv: FeatureView, feature_refs: list[str], full_feature_names: bool, repo: str
    ) -> None:
        source = fv.batch_source
        assert isinstance(source, FileSource)
        self.path = FileSource.get_uri_for_file_path(repo_path=repo, uri=source.path)
        self.ts = source.timestamp_field
        self.created = source.created_timestamp_column or None
        self.ttl_us = int(fv.ttl.total_seconds() * 1_000_000) if fv.ttl else 0
        # feature table column -> entity column
        self.join_keys: dict[str, str] = dict(
            fv.projection.join_key_map or {e.name: e.name for e in fv.entity_columns}
        )
        prefix = fv.projection.name_to_use()
        base = fv.projection.name_alias or fv.name
        names = [r.split(":", 1)[1] for r in feature_refs if r.startswith(f"{prefix}:")]
        # field_mapping: source column -> feature name
        reverse = {v: k for k, v in source.field_mapping.items()}
        self.features = [
            (reverse.get(n, n), f"{base}__{n}" if full_feature_names else n) for n in names
        ]

    def relation_sql(self, alias: str) -> str:
        """The view's rows, one per (keys, event timestamp): the latest created one.

        The tie-break is a hash aggregate (`arg_max_null` of the row as a struct, so all
        features come from one row) rather than a window sort: measured 2-3x faster. A NULL
        created timestamp loses to any other, as in Feast's `ORDER BY created DESC`.
        """
        src = f"read_parquet({_lit(str(self.path))})"
        keys = [f"{_q(k)} AS {_q(f'{alias}_k{i}')}" for i, k in enumerate(self.join_keys)]
        ts = f"CAST({_q(self.ts)} AS TIMESTAMPTZ) AS {_q(alias + '_ts')}"
        names = [_q(f"{alias}_f{i}") for i in range(len(self.features))]
        if not self.created:
            feats = [
                f"{_q(src_col)} AS {n}"
                for (src_col, _), n in zip(self.features, names, strict=True)
            ]
            return f"SELECT {', '.join([*keys, ts, *feats])} FROM {src}"
        if not self.features:
            return f"SELECT DISTINCT {', '.join([*keys, ts])} FROM {src}"
        packed = ", ".join(
            f"{n} := {_q(src_col)}" for (src_col, _), n in zip(self.features, names, strict=True)
        )
        created = f"coalesce(CAST({_q(self.created)} AS TIMESTAMPTZ), '-infinity'::TIMESTAMPTZ)"
        inner = (
            f"SELECT {', '.join([*keys, ts])}, "
            f"arg_max_null(struct_pack({packed}), {created}) AS {_q(alias + '_row')} "
            f"FROM {src} GROUP BY ALL"
        )
        unpack = ", ".join(f"{_q(alias + '_row')}.{n} AS {n}" for n in names)
        outer = [_q(f"{alias}_k{i}") for i in range(len(self.join_keys))] + [_q(alias + "_ts")]
        return f"SELECT {', '.join(outer)}, {unpack} FROM ({inner})"


class DuckDBAsofRetrievalJob(RetrievalJob):
    def __init__(
        self,
        entity_df: pd.DataFrame,
        event_timestamp_col: str,
        plans: list[_ViewPlan],
        odfvs: list[OnDemandFeatureView],
        full_feature_names: bool,
        metadata: RetrievalMetadata,
    ) -> None:
        super().__init__()
        self._entity_df = entity_df
        self._ts_col = event_timestamp_col
        self._plans = plans
        self._odfvs = odfvs
        self._full_feature_names = full_feature_names
        self._metadata = metadata

    def to_sql(self) -> str:
        entity_cols = list(self._entity_df.columns)
        select = [f"e.{_q(c)}" for c in entity_cols]
        ctes = []
        joins = []
        ets = f"e.{_q(self._ts_col)}"
        for i, plan in enumerate(self._plans):
            a = f"v{i}"
            ctes.append(f"{a} AS ({plan.relation_sql(a)})")
            on = [
                f"e.{_q(ecol)} = {a}.{_q(f'{a}_k{j}')}"
                for j, ecol in enumerate(plan.join_keys.values())
            ]
            on.append(f"{ets} >= {a}.{_q(a + '_ts')}")
            joins.append(f"ASOF LEFT JOIN {a} ON {' AND '.join(on)}")
            for j, (_, out) in enumerate(plan.features):
                col = f"{a}.{_q(f'{a}_f{j}')}"
                if plan.ttl_us:
                    cutoff = f"{ets} - to_microseconds({plan.ttl_us})"
                    col = f"CASE WHEN {a}.{_q(a + '_ts')} >= {cutoff} THEN {col} END"
                select.append(f"{col} AS {_q(out)}")
        with_sql = f"WITH {', '.join(ctes)} " if ctes else ""
        return (
            f"{with_sql}SELECT {', '.join(select)} FROM entity_df e {' '.join(joins)} "
            f"ORDER BY e.{_q(ROW_ID)}"
        )

    def _to_arrow_internal(self, timeout: int | None = None) -> pa.Table:
        # DuckDB scans the pandas frame in place (no Arrow conversion of the entity rows first);
        # a row number column restores the caller's row order at the end.
        entity = self._entity_df.copy(deep=False)
        entity[ROW_ID] = np.arange(len(entity), dtype="int64")
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.register("entity_df", entity)
            table = con.sql(self.to_sql()).to_arrow_table()
        finally:
            con.close()
        return table

    def _to_df_internal(self, timeout: int | None = None) -> pd.DataFrame:
        return self._to_arrow_internal(timeout).to_pandas()

    @property
    def full_feature_names(self) -> bool:
        return self._full_feature_names

    @property
    def on_demand_feature_views(self) -> list[OnDemandFeatureView]:
        return self._odfvs

    @property
    def metadata(self) -> RetrievalMetadata | None:
        return self._metadata

    def persist(
        self,
        storage: SavedDatasetStorage,
        allow_overwrite: bool = False,
        timeout: int | None = None,
    ) -> None:
        source = storage.to_data_source()
        assert isinstance(source, FileSource)
        path = Path(source.path)
        if path.exists() and not allow_overwrite:
            from feast.errors import SavedDatasetLocationAlreadyExists

            raise SavedDatasetLocationAlreadyExists(location=source.path)
        pq.write_table(self.to_arrow(), str(path))


def _plannable(fv: FeatureView) -> bool:
    src = fv.batch_source
    return isinstance(src, FileSource) and isinstance(src.file_format, ParquetFormat)


def _as_utc(col: pd.Series) -> pd.Series:
    col = col.infer_objects()
    if pd.api.types.is_string_dtype(col) or pd.api.types.is_object_dtype(col):
        return pd.to_datetime(col, utc=True)
    if getattr(col.dt, "tz", None) is None:
        col = col.dt.tz_localize("UTC")
    # DuckDB compares TIMESTAMPTZ (microseconds) with TIMESTAMPTZ only: no nanoseconds.
    return col.dt.tz_convert("UTC").astype("datetime64[us, UTC]")


class DuckDBAsofOfflineStore(DuckDBOfflineStore):
    """Feast's DuckDB store with an ASOF-join `get_historical_features`."""

    @staticmethod
    def get_historical_features(
        config: RepoConfig,
        feature_views: list[FeatureView],
        feature_refs: list[str],
        entity_df: pd.DataFrame | str,
        registry: BaseRegistry,
        project: str,
        full_feature_names: bool = False,
    ) -> RetrievalJob:
        odfvs = OnDemandFeatureView.get_requested_odfvs(feature_refs, project, registry)
        if (
            not isinstance(entity_df, pd.DataFrame)
            or not all(_plannable(fv) for fv in feature_views)
            or any(o.mode == "substrait" for o in odfvs)
            or ROW_ID in entity_df.columns
        ):
            return DuckDBOfflineStore.get_historical_features(
                config,
                feature_views,
                feature_refs,
                entity_df,
                registry,
                project,
                full_feature_names,
            )
        schema = dict(zip(entity_df.columns, entity_df.dtypes, strict=True))
        ts_col = offline_utils.infer_event_timestamp_from_entity_df(entity_schema=schema)
        entity_df = entity_df.copy(deep=False)
        entity_df[ts_col] = _as_utc(entity_df[ts_col])
        lo, hi = entity_df[ts_col].min(), entity_df[ts_col].max()
        repo = str(config.repo_path) if config.repo_path else ""
        plans = [_ViewPlan(fv, feature_refs, full_feature_names, repo) for fv in feature_views]
        metadata = RetrievalMetadata(
            features=feature_refs,
            keys=list(set(entity_df.columns) - {ts_col}),
            min_event_timestamp=_pydt(lo),
            max_event_timestamp=_pydt(hi),
        )
        return DuckDBAsofRetrievalJob(entity_df, ts_col, plans, odfvs, full_feature_names, metadata)


def _pydt(value: Any) -> datetime | None:
    return None if pd.isna(value) else pd.Timestamp(value).to_pydatetime()
