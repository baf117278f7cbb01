"""Training sets: entity rows = applications, filters, columns, order; external datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgate.config import REPO_ROOT, load_settings
from mlgate.data import schema
from mlgate.data.dataset_config import DatasetConfig, load_dataset_config
from mlgate.errors import BadInputError
from mlgate.features.training_set import (
    application_features,
    build_training_set,
    feature_service_name,
    output_columns,
)
from tests.fixtures.features import ts, write_applications, write_feature_world

BUREAU = [
    ("a1", "2026-01-01", "2026-01-01", 1.0),
    ("a1", "2026-02-01", "2026-02-01", 2.0),
    ("a2", "2026-01-05", "2026-01-05", 5.0),
    ("a2", "2026-03-05", "2026-03-05", 6.0),
]
TXNS = [("a1", "2026-01-30", "2026-01-30", 100.0), ("a2", "2026-03-01", "2026-03-01", 200.0)]
APPS = [  # id, applicant, time, decision
    ("p1", "a1", "2026-01-31", "approved"),
    ("p2", "a2", "2026-01-10", "approved"),
    ("p3", "a1", "2026-02-03", "approved"),
    ("p4", "a3", "2026-02-10", "declined"),
    ("p5", "a2", "2026-03-02", "approved"),
    ("p6", "a2", "2026-03-06", "approved"),
    ("p7", "a1", "2026-01-15", "declined"),
]


@pytest.fixture
def world(workspace: Path) -> DatasetConfig:
    wdir = workspace / "data" / "world"
    write_feature_world(wdir, BUREAU, TXNS)
    write_applications(wdir, APPS)
    return load_dataset_config(REPO_ROOT / "config" / "datasets" / "credit_world.yaml")


def test_training_set_is_approved_matured_point_in_time(world: DatasetConfig) -> None:
    settings = load_settings()
    df = build_training_set(settings, world)
    # approved: p1 p2 p3 p5 p6 -> labels [0, 1, NaN, 1, 0]: p3 has not matured
    assert list(df[schema.APPLICATION_ID]) == ["p2", "p1", "p5", "p6"]
    assert list(df.columns) == output_columns(world)
    assert set(world.features) <= set(df.columns)
    assert df[schema.LABEL].notna().all()
    assert (df[schema.BANK_DECISION] == "approved").all()
    by_id = df.set_index(schema.APPLICATION_ID)
    assert by_id.loc["p1", "annual_income"] == 1.0  # the Feb snapshot is after Jan 31
    assert by_id.loc["p6", "annual_income"] == 6.0  # Mar 5 snapshot, app on Mar 6
    assert np.isnan(by_id.loc["p5", "annual_income"])  # Jan 5 snapshot: 56 days > 45-day TTL
    assert by_id.loc["p1", "txn_count_30d"] == 100.0
    assert np.isnan(by_id.loc["p2", "txn_count_30d"])  # no transactions before Jan 10
    assert by_id.loc["p1", "loan_amount"] == 1000.0  # the application's own field
    assert df.attrs["feature_service"] == feature_service_name(world) == "credit_risk_v1"
    assert df[schema.APPLICATION_TS].is_monotonic_increasing


def test_application_features_include_declined_and_unmatured(world: DatasetConfig) -> None:
    df = application_features(load_settings(), world, start="2026-01-20", end="2026-03-02")
    assert list(df[schema.APPLICATION_ID]) == ["p1", "p3", "p4"]  # end is exclusive
    p4 = df.set_index(schema.APPLICATION_ID).loc["p4"]
    assert p4[schema.BANK_DECISION] == "declined"
    assert np.isnan(p4["annual_income"])  # a3 has no history: row kept, features missing


def test_missing_world_is_a_clear_error(workspace: Path) -> None:
    ds = load_dataset_config(REPO_ROOT / "config" / "datasets" / "credit_world.yaml")
    with pytest.raises(BadInputError, match="applications.parquet: not found"):
        build_training_set(load_settings(), ds)


def _external(tmp_path: Path, df: pd.DataFrame) -> DatasetConfig:
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "loans.csv"
    df.to_csv(data, index=False)
    cfg = tmp_path / "loans.yaml"
    cfg.write_text(
        "name: loans\npath: loans.csv\nentity_key: customer\nrow_key: loan_id\n"
        "event_timestamp: applied_at\nlabel: bad\nnumeric_features: [income, amount]\n"
        "categorical_features: [region]\nprotected_attributes: [gender]\n",
        encoding="utf-8",
    )
    return load_dataset_config(cfg)


def _loans() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "loan_id": [1, 2, 3, 4],
            "customer": ["x", "y", "x", "z"],
            "applied_at": ["2025-05-01", "2025-05-02", "2025-06-01T10:00:00", "2025-06-03"],
            "income": [10.0, 20.0, 11.0, 30.0],
            "amount": [1.0, 2.0, 3.0, 4.0],
            "region": ["n", "s", "n", "e"],
            "gender": ["f", "m", "f", "m"],
            "bad": [0, 1, 0, None],
        }
    )


def test_external_dataset_goes_through_feast_with_its_own_rows(tmp_path: Path) -> None:
    ds = _external(tmp_path, _loans())
    df = build_training_set(load_settings(), ds)
    assert list(df["loan_id"]) == [1, 2, 3]  # loan 4 has no label yet
    assert list(df["income"]) == [10.0, 20.0, 11.0]  # each row's own values, x's later row too
    assert list(df["region"]) == ["n", "s", "n"]
    assert "gender" not in df.columns
    assert df.attrs["feature_service"] == "loans_features"


def test_external_dataset_bad_input_names_the_problem(tmp_path: Path) -> None:
    loans = _loans().drop(columns=["amount"])
    with pytest.raises(BadInputError, match="missing column.*amount"):
        build_training_set(load_settings(), _external(tmp_path, loans))
    dup = _loans()
    dup.loc[1, ["customer", "applied_at"]] = ["x", "2025-05-01"]
    with pytest.raises(BadInputError, match="share \\(customer, applied_at\\)"):
        build_training_set(load_settings(), _external(tmp_path / "d", dup))


def test_caller_entity_rows_are_completed_from_the_dataset(world: DatasetConfig) -> None:
    logged = pd.DataFrame(
        {
            schema.APPLICATION_ID: ["p4", "p1"],
            schema.APPLICANT_ID: ["a3", "a1"],
            # scored later than the application: the caller's timestamp is the one used
            schema.APPLICATION_TS: [ts("2026-02-10"), ts("2026-02-02")],
        }
    )
    df = build_training_set(
        load_settings(), world, entity_df=logged, approved_only=False, matured_only=False
    ).set_index(schema.APPLICATION_ID)
    assert df.loc["p1", "annual_income"] == 2.0  # Feb 1 snapshot, visible on Feb 2
    assert df.loc["p1", "loan_amount"] == 1000.0 and df.loc["p1", schema.LABEL] == 0.0
    assert df.loc["p4", schema.BANK_DECISION] == "declined"
    assert np.isnan(df.loc["p4", schema.LABEL])
