"""Simulated maturity (`canary.oracle`): the loans the serving versions booked get the synthetic
world's true outcomes, declined ones none; a data source without an oracle is refused.

Small hand-made tables (a few rows), no world or server: the end-to-end use (a lenient canary
aborted on P&L once its loans mature) is in tests/test_canary_served_verdicts.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgate.canary.oracle import horizon, mature, read_oracle
from mlgate.data.dataset_config import DatasetConfig
from mlgate.data.sources import credit_world_config
from mlgate.errors import BadInputError
from tests.gitops_helpers import cli

NAN = float("nan")


def _world(tmp: Path, oracle: pd.DataFrame | None) -> DatasetConfig:
    folder = tmp / "world"
    folder.mkdir()
    if oracle is not None:
        oracle.to_parquet(folder / "oracle.parquet", index=False)
    return credit_world_config(folder)


ORACLE = pd.DataFrame(
    {
        "application_id": ["a1", "a2", "a3", "a4"],
        "true_pd": [0.02, 0.4, 0.3, 0.05],
        "true_default_12m": [0, 1, 1, 0],
        "true_early_delinquency_3m": [0, 1, 0, 1],
        "scenario": ["base"] * 4,
    }
)


def _log() -> pd.DataFrame:
    # a4 was booked by the bank back then (its historical outcome is in the log); a5 is not
    # in the oracle at all.
    return pd.DataFrame(
        {
            "application_id": ["a1", "a2", "a3", "a4", "a5"],
            "loan_amount": [1000.0, 2000.0, 3000.0, 4000.0, 5000.0],
            "served_by": ["1", "2", "2", "1", "2"],
            "early_delinquency_3m": [NAN, NAN, NAN, 0.0, NAN],
            "default_12m": [NAN, NAN, NAN, 0.0, NAN],
        }
    )


def test_booked_loans_get_the_oracles_outcomes_and_declined_ones_none(tmp_path: Path) -> None:
    ds = _world(tmp_path, ORACLE)
    booked = np.array([True, True, False, False, True])
    out, matured = mature(_log(), read_oracle(ds), ds, booked, "12m")
    np.testing.assert_array_equal(out["default_12m"].to_numpy(), [0, 1, NAN, NAN, NAN])
    np.testing.assert_array_equal(out["early_delinquency_3m"].to_numpy(), [0, 1, NAN, NAN, NAN])
    # the bank's historical outcome of a4 is gone: the version that served it declined it
    assert matured.booked == 3 and matured.with_12m_outcome == matured.with_early_outcome == 2
    assert matured.oracle.endswith("oracle.parquet") and "simulated" in matured.note
    assert out["loan_amount"].tolist() == _log()["loan_amount"].tolist()  # the rest unchanged


def test_three_months_on_only_the_early_outcome_has_matured(tmp_path: Path) -> None:
    ds = _world(tmp_path, ORACLE)
    out, matured = mature(_log(), read_oracle(ds), ds, np.ones(5, dtype=bool), "3m")
    assert out["default_12m"].isna().all() and matured.with_12m_outcome == 0
    np.testing.assert_array_equal(out["early_delinquency_3m"].to_numpy(), [0, 1, 0, 1, NAN])


def test_a_data_source_without_an_oracle_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"no oracle table") as err:
        read_oracle(_world(tmp_path, None))
    assert str(tmp_path / "world" / "oracle.parquet") in str(err.value)
    flat = DatasetConfig(name="bank", path=str(tmp_path / "loans.csv"), entity_key="customer",
                         row_key="loan", event_timestamp="ts", label="bad",
                         numeric_features=["income"])  # fmt: skip
    with pytest.raises(BadInputError, match=r"'bank'.*csv file, not the synthetic world"):
        read_oracle(flat)


def test_an_oracle_or_log_missing_what_the_match_needs_is_refused(tmp_path: Path) -> None:
    ds = _world(tmp_path, ORACLE.drop(columns="true_default_12m"))
    with pytest.raises(BadInputError, match=r"oracle.parquet: missing column\(s\) true_default"):
        read_oracle(ds)
    (tmp_path / "world" / "oracle.parquet").unlink()
    ORACLE.to_parquet(tmp_path / "world" / "oracle.parquet", index=False)
    with pytest.raises(BadInputError, match=r"no application_id column"):
        mature(_log().drop(columns="application_id"), read_oracle(ds), ds, np.ones(5), "12m")


def test_an_unknown_horizon_exits_2_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"--simulate-outcomes '6m'"):
        horizon("6m")
    code, _out, err = cli("--workspace", str(tmp_path / "ws"), "canary", "analyze",
                          "--model", "credit_risk", "--simulate-outcomes", "6m")  # fmt: skip
    assert code == 2 and "--simulate-outcomes '6m'" in err, err
