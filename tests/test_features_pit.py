"""Point-in-time correctness of Feast training-set joins, on both offline stores.

Every case runs against Feast's built-in DuckDB store and mlgate's ASOF-join plug-in: the
plug-in is only allowed to be the default because it gives the same answers here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlgate.data import schema
from mlgate.features.store import get_store
from tests.fixtures.features import OFFLINE_STORES, settings_for, ts, write_feature_world

BUREAU = [  # applicant, event ts, created ts, v
    ("a1", "2026-01-01", "2026-01-01", 1.0),
    ("a1", "2026-02-01", "2026-02-01", 2.0),
    ("a1", "2026-03-01", "2026-03-01", 3.0),
    # three rows on one event timestamp: the latest created (v=11) must win, whatever the order
    ("a2", "2026-01-10", "2026-01-12", 11.0),
    ("a2", "2026-01-10", "2026-01-10", 10.0),
    ("a2", "2026-01-10", "2026-01-11", 12.0),
    ("a4", "2026-01-01", "2026-01-01", 40.0),
]
TXNS = [
    ("a1", "2026-01-25", "2026-01-26", 101.0),
    ("a1", "2026-01-25", "2026-01-25", 100.0),
]
ENTITIES = [  # row id, applicant, timestamp
    ("after", "a1", "2026-01-20"),
    ("exact", "a1", "2026-02-01T00:00:00"),
    ("exact_dup", "a1", "2026-02-01T00:00:00"),
    ("just_before", "a1", "2026-01-31T23:59:59"),
    ("txn_expired", "a1", "2026-02-01T00:00:01"),
    ("tie", "a2", "2026-01-20"),
    ("no_history", "a3", "2026-01-20"),
    ("before_any", "a1", "2025-12-01"),
    ("ttl_edge", "a4", "2026-02-15T00:00:00"),  # exactly 45 days: still valid
    ("ttl_expired", "a4", "2026-02-15T00:00:01"),
]
B = f"{schema.FEAST_BUREAU_VIEW}__annual_income"
T = f"{schema.FEAST_TRANSACTION_VIEW}__txn_count_30d"


def _entity_df() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": [e[0] for e in ENTITIES],
            schema.APPLICANT_ID: [e[1] for e in ENTITIES],
            "event_timestamp": [ts(e[2]) for e in ENTITIES],
        }
    )


def _historical(store: Any, entity_df: pd.DataFrame) -> pd.DataFrame:
    service = store.get_feature_service(schema.FEAST_FEATURE_SERVICE)
    job = store.get_historical_features(
        entity_df=entity_df, features=service, full_feature_names=True
    )
    return job.to_df()


@pytest.fixture(scope="module", params=OFFLINE_STORES)
def pit(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    ws = tmp_path_factory.mktemp(f"pit-{request.param}")
    settings = settings_for(ws, request.param)
    write_feature_world(ws / "data" / "world", BUREAU, TXNS)
    store = get_store(settings)
    df = _historical(store, _entity_df())
    return request.param, store, df.set_index("row")


def test_the_selected_store_runs(pit: Any) -> None:
    kind, store, _ = pit
    used = type(store._get_provider().offline_store).__name__
    assert used == ("DuckDBAsofOfflineStore" if kind == "asof" else "DuckDBOfflineStore")


def test_every_entity_row_is_kept_once(pit: Any) -> None:
    _, _, df = pit
    assert sorted(df.index) == sorted(e[0] for e in ENTITIES)


def test_value_after_the_application_is_never_used(pit: Any) -> None:
    _, _, df = pit
    assert df.loc["after", B] == 1.0  # the 2026-02-01 snapshot is in its future
    assert np.isnan(df.loc["after", T])  # the only transaction row is 5 days later
    assert df.loc["just_before", B] == 1.0
    assert np.isnan(df.loc["before_any", B])
    # In general: a value's source row (identified by v) is never later than the entity row.
    when = {v: ts(e) for _, e, _, v in BUREAU}
    for row, _app, at in ENTITIES:
        v = df.loc[row, B]
        if not np.isnan(v):
            assert when[v] <= ts(at), (row, v)


def test_value_at_exactly_the_application_timestamp_is_used(pit: Any) -> None:
    _, _, df = pit
    assert df.loc["exact", B] == 2.0
    assert df.loc["exact_dup", B] == 2.0
    # all features of the view come from the same source row
    assert df.loc["exact", f"{schema.FEAST_BUREAU_VIEW}__payment_score"] == 2.0 + 3


def test_rows_without_feature_history_are_kept_with_missing_values(pit: Any) -> None:
    _, _, df = pit
    feature_cols = [c for c in df.columns if "__" in c]
    assert len(feature_cols) == len(schema.BUREAU_FEATURES) + len(schema.TRANSACTION_FEATURES)
    assert df.loc["no_history", feature_cols].isna().all()


def test_ttl_expiry_gives_missing_values(pit: Any) -> None:
    _, _, df = pit
    assert df.loc["ttl_edge", B] == 40.0  # 45 days old: inside the TTL (inclusive)
    assert np.isnan(df.loc["ttl_expired", B])  # one second older than 45 days
    assert df.loc["exact", T] == 101.0  # 7 days old: inside the transaction TTL
    assert np.isnan(df.loc["txn_expired", T])  # 7 days and one second


def test_ties_on_event_timestamp_are_broken_by_created_timestamp(pit: Any) -> None:
    _, _, df = pit
    assert df.loc["tie", B] == 11.0
    assert df.loc["just_before", T] == 101.0


def test_plugin_equals_builtin_store(tmp_path: Path) -> None:
    """Same frame, same dtypes, from both stores, on randomised data with many ties."""
    frames = {}
    bureau, txns, entity = _random_world(seed=3)
    for kind in OFFLINE_STORES:
        settings = settings_for(tmp_path / kind, kind)
        write_feature_world(tmp_path / kind / "data" / "world", bureau, txns)
        df = _historical(get_store(settings), entity)
        frames[kind] = df.sort_values("row").reset_index(drop=True)
    pd.testing.assert_frame_equal(frames["duckdb"], frames["asof"])
    expected = _reference(bureau, entity, days=schema.BUREAU_TTL_DAYS)
    got = frames["asof"].set_index("row")[B].reindex(expected.index)
    pd.testing.assert_series_equal(got, expected, check_names=False)
    assert got.notna().sum() > 50 and got.isna().sum() > 20  # both cases exercised


def _random_world(seed: int) -> tuple[list[Any], list[Any], pd.DataFrame]:
    rng = np.random.default_rng(seed)
    days = pd.date_range("2026-01-01", periods=90, freq="D", tz="UTC")
    ids = [f"c{i}" for i in range(30)]
    bureau = []
    for n in range(400):
        d = days[rng.integers(0, 90)]
        created = d + pd.Timedelta(minutes=int(n))  # unique created: a unique right answer
        bureau.append((ids[rng.integers(0, 30)], str(d), str(created), float(n)))
    txns = [
        (ids[rng.integers(0, 30)], str(d), str(d + pd.Timedelta(minutes=n)), float(n))
        for n, d in enumerate(days[rng.integers(0, 90, 200)])
    ]
    at = [days[0] + pd.Timedelta(hours=int(h)) for h in rng.integers(0, 24 * 100, 300)]
    keys = ids + ["unknown"]  # an applicant with no history at all
    entity = pd.DataFrame(
        {
            "row": [f"r{i:03d}" for i in range(300)],
            schema.APPLICANT_ID: [keys[k] for k in rng.integers(0, 31, 300)],
            "event_timestamp": at,
        }
    )
    return bureau, txns, entity


def _reference(bureau: list[Any], entity: pd.DataFrame, days: int) -> pd.Series:
    """Brute force: latest (event, created) row with at - ttl <= event <= at, per entity row."""
    rows = pd.DataFrame(bureau, columns=["id", "ev", "cr", "v"])
    rows["ev"] = pd.to_datetime(rows["ev"], utc=True)
    rows["cr"] = pd.to_datetime(rows["cr"], utc=True)
    out = {}
    for _, e in entity.iterrows():
        at = e["event_timestamp"]
        c = rows[(rows.id == e[schema.APPLICANT_ID]) & (rows.ev <= at)]
        c = c[c.ev >= at - pd.Timedelta(days=days)]
        out[e["row"]] = c.sort_values(["ev", "cr"]).v.iloc[-1] if len(c) else np.nan
    return pd.Series(out, dtype="float64").sort_index()
