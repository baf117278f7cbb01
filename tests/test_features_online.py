"""Online lookup: equals offline inside the TTL, and expired values are treated as missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlgate.config import load_settings
from mlgate.data import schema
from mlgate.features.online import lookup, materialize
from mlgate.features.store import get_store, open_store
from tests.fixtures.features import ts, write_feature_world

BUREAU = [
    ("a1", "2026-01-01", "2026-01-01", 1.0),
    ("a1", "2026-02-20", "2026-02-20", 2.0),
    ("a1", "2026-02-20", "2026-02-21", 3.0),  # tie: the later created row wins online too
    ("a2", "2026-01-10", "2026-01-10", 5.0),  # 51 days before AT: expired
    ("a3", "2026-02-28", "2026-02-28", 7.0),
    ("a3", "2026-03-05", "2026-03-05", 8.0),  # after AT: not materialized
]
TXNS = [
    ("a1", "2026-02-27", "2026-02-27", 100.0),
    ("a2", "2026-02-20", "2026-02-20", 200.0),  # 9 days before AT: expired (7-day TTL)
]
AT = "2026-03-01T00:00:00"
IDS = ["a1", "a2", "a3", "a4"]


def _offline(at: str) -> pd.DataFrame:
    store = get_store(load_settings())
    entity = pd.DataFrame({schema.APPLICANT_ID: IDS, "event_timestamp": [ts(at)] * len(IDS)})
    df = store.get_historical_features(
        entity_df=entity, features=store.get_feature_service(schema.FEAST_FEATURE_SERVICE)
    ).to_df()
    return df.drop(columns=["event_timestamp"]).set_index(schema.APPLICANT_ID).loc[IDS]


def test_online_equals_offline_and_expired_values_are_missing(workspace: Path) -> None:
    write_feature_world(workspace / "data" / "world", BUREAU, TXNS)
    settings = load_settings()
    result = materialize(settings, end=AT)
    assert result.feature_views == [schema.FEAST_BUREAU_VIEW, schema.FEAST_TRANSACTION_VIEW]

    online = lookup(settings, IDS, at=AT).set_index(schema.APPLICANT_ID)
    offline = _offline(AT)
    assert list(online.columns) == list(offline.columns)
    pd.testing.assert_frame_equal(online, offline, check_dtype=False)

    assert online.loc["a1", "annual_income"] == 3.0
    assert online.loc["a1", "txn_count_30d"] == 100.0
    assert online.loc["a3", "annual_income"] == 7.0
    assert online.loc["a4"].isna().all()  # never seen
    # a2's values are in the online store but older than their TTL: missing for the model
    assert online.loc["a2"].isna().all()
    assert online.attrs["expired"] == len(schema.BUREAU_FEATURES) + len(schema.TRANSACTION_FEATURES)

    # Feast itself returns the expired values (feast-dev/feast#6821): the check is mlgate's.
    store = open_store(settings)
    raw = store.get_online_features(
        features=store.get_feature_service(schema.FEAST_FEATURE_SERVICE),
        entity_rows=[{schema.APPLICANT_ID: "a2"}],
    ).to_dict()
    assert raw["annual_income"] == [5.0] and raw["txn_count_30d"] == [200.0]


def test_lookup_later_expires_what_was_valid(workspace: Path) -> None:
    write_feature_world(workspace / "data" / "world", BUREAU, TXNS)
    settings = load_settings()
    materialize(settings, end=AT)
    later = lookup(settings, ["a1"], at="2026-03-06T00:00:01").set_index(schema.APPLICANT_ID)
    assert later.loc["a1", "annual_income"] == 3.0  # 14 days old: inside 45 days
    assert np.isnan(later.loc["a1", "txn_count_30d"])  # 7 days and 1 second: expired
