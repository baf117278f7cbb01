"""Validation: every bad input gets a clear error naming column and count, exit 2, no writes."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mlgate.cli import app
from mlgate.data import schema as S
from mlgate.data.dataset_config import DatasetConfig, load_dataset_config
from mlgate.data.validate import validate_dataset
from mlgate.data.world import WorldManifest
from mlgate.errors import MlgateError

EXAMPLE_CONFIG = Path(__file__).resolve().parents[1] / "config/datasets/example_external.yaml"
EXAMPLE_CSV = Path(__file__).resolve().parents[1] / "examples/external_loans.csv"


def invoke(args: list[str]) -> tuple[int, str]:
    """Run the CLI in-process; MlgateError -> (its exit code, its message), as the shell does."""
    result = CliRunner().invoke(app, args)
    if isinstance(result.exception, MlgateError):
        return result.exception.exit_code, str(result.exception)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.fixture
def external(tmp_path: Path) -> tuple[pd.DataFrame, Path, Path]:
    """A copy of the example external dataset and its config, to break."""
    df = pd.read_csv(EXAMPLE_CSV)
    cfg = tmp_path / "loans.yaml"
    cfg.write_text(EXAMPLE_CONFIG.read_text().replace("../../examples/", ""))
    return df, tmp_path / "external_loans.csv", cfg


def check(df: pd.DataFrame, csv: Path, cfg: Path) -> tuple[int, str]:
    df.to_csv(csv, index=False)
    before = sorted(p.name for p in csv.parent.iterdir())
    code, text = invoke(["data", "validate", str(cfg)])
    assert sorted(p.name for p in csv.parent.iterdir()) == before  # writes nothing
    return code, text


def test_example_external_dataset_validates_without_code() -> None:
    code, text = invoke(["data", "validate", str(EXAMPLE_CONFIG)])
    assert code == 0, text
    assert "example_external" in text and "400" in text
    cfg = load_dataset_config(EXAMPLE_CONFIG)
    assert cfg.resolved_format == "csv" and cfg.resolve_path() == EXAMPLE_CSV
    assert validate_dataset(cfg).ok


def test_missing_column(external: tuple[pd.DataFrame, Path, Path]) -> None:
    df, csv, cfg = external
    code, text = check(df.drop(columns=["annual_income"]), csv, cfg)
    assert code == 2
    assert "required column 'annual_income' is missing" in text


def test_wrong_type(external: tuple[pd.DataFrame, Path, Path]) -> None:
    df, csv, cfg = external
    df["loan_amount"] = df["loan_amount"].astype(object)
    df.loc[[3, 50, 90], "loan_amount"] = "n/a-amount"
    code, text = check(df, csv, cfg)
    assert code == 2
    assert "'loan_amount' must be numeric, but 3 value(s) are not numbers" in text
    assert "n/a-amount" in text


def test_twenty_percent_missing(external: tuple[pd.DataFrame, Path, Path]) -> None:
    df, csv, cfg = external
    df.loc[df.sample(frac=0.2, random_state=0).index, "credit_utilization"] = np.nan
    code, text = check(df, csv, cfg)
    assert code == 2
    assert "'credit_utilization' has 80 missing value(s) (20.0% > 5.0%)" in text
    # a looser limit from the command line lets it through
    code, _ = invoke(["data", "validate", str(cfg), "--max-missing", "0.25"])
    assert code == 0


def test_negative_loan_amount(external: tuple[pd.DataFrame, Path, Path]) -> None:
    df, csv, cfg = external
    df.loc[:4, "loan_amount"] = -100.0
    df.loc[5, "loan_amount"] = 0.0
    code, text = check(df, csv, cfg)
    assert code == 2
    assert "'loan_amount' has 6 value(s) outside the allowed range (> 0" in text


def test_future_timestamps(external: tuple[pd.DataFrame, Path, Path]) -> None:
    df, csv, cfg = external
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    df.loc[[1, 2, 3, 4], "applied_at"] = future
    code, text = check(df, csv, cfg)
    assert code == 2
    assert "'applied_at' has 4 timestamp(s) in the future" in text


def test_duplicate_keys(external: tuple[pd.DataFrame, Path, Path]) -> None:
    df, csv, cfg = external
    df.loc[10:15, "loan_id"] = df.loc[0, "loan_id"]
    code, text = check(df, csv, cfg)
    assert code == 2
    assert "6 duplicate key(s) on ['loan_id']" in text


def test_unreadable_file(external: tuple[pd.DataFrame, Path, Path]) -> None:
    _, csv, cfg = external
    csv.write_bytes(b"\x00\xff\xfe garbage \x00" * 10)
    code, text = invoke(["data", "validate", str(cfg)])
    assert code == 2
    assert "unreadable" in text and str(csv) in text
    cfg.write_text(cfg.read_text().replace("external_loans.csv", "external_loans.parquet"))
    csv.with_suffix(".parquet").write_bytes(b"PAR1 this is not parquet")
    code, text = invoke(["data", "validate", str(cfg)])
    assert code == 2
    assert "unreadable parquet" in text


def test_all_problems_reported_at_once(external: tuple[pd.DataFrame, Path, Path]) -> None:
    df, csv, cfg = external
    df = df.drop(columns=["payment_score"])
    df.loc[0, "loan_amount"] = -1.0
    df.loc[5:9, "loan_id"] = "L00000"
    df.loc[df.sample(frac=0.3, random_state=1).index, "annual_income"] = np.nan
    df.to_csv(csv, index=False)
    report = validate_dataset(load_dataset_config(cfg))
    checks = {(p.check, p.column) for p in report.problems}
    assert ("missing_column", "payment_score") in checks
    assert ("range", "loan_amount") in checks
    assert ("duplicate", "loan_id") in checks
    assert ("missing", "annual_income") in checks
    assert not report.ok
    code, out = invoke(["data", "validate", str(cfg), "--json"])
    assert code == 2
    doc = json.loads(out)
    assert doc["ok"] is False and len(doc["problems"]) == len(report.problems)


def test_console_script_exits_2_with_message(external: tuple[pd.DataFrame, Path, Path]) -> None:
    df, csv, cfg = external
    df.loc[:2, "loan_amount"] = -5.0
    df.to_csv(csv, index=False)
    proc = subprocess.run(
        [sys.executable, "-m", "mlgate.cli", "data", "validate", str(cfg)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    stderr = " ".join(proc.stderr.split())  # rich wraps long lines
    assert "'loan_amount' has 3 value(s) outside the allowed range" in stderr


def test_data_file_without_config_is_refused(external: tuple[pd.DataFrame, Path, Path]) -> None:
    df, csv, cfg = external
    df.to_csv(csv, index=False)
    code, text = invoke(["data", "validate", str(csv)])
    assert code == 2 and "--dataset" in text
    code, text = invoke(["data", "validate", str(csv), "--dataset", str(cfg)])
    assert code == 0, text


def test_dataframe_in_memory(external: tuple[pd.DataFrame, Path, Path]) -> None:
    df, _, cfg = external
    config = load_dataset_config(cfg)
    assert validate_dataset(config, df=df).ok
    bad = df.assign(defaulted=df["defaulted"].replace({1: 7}))
    report = validate_dataset(config, df=bad)
    assert [(p.column, p.check) for p in report.problems] == [("defaulted", "range")]


def test_generated_world_validates(
    small_world: tuple[Path, WorldManifest], world_dataset_config: DatasetConfig
) -> None:
    report = validate_dataset(world_dataset_config)
    assert report.ok, report.problems
    assert report.tables[S.APPLICATIONS] == small_world[1].tables[S.APPLICATIONS].rows
    code, text = invoke(["data", "validate", str(small_world[0])])
    assert code == 0, text


def test_broken_world_lists_problems_per_table(
    small_world: tuple[Path, WorldManifest], world_dataset_config: DatasetConfig, tmp_path: Path
) -> None:
    world = tmp_path / "world"
    shutil.copytree(small_world[0], world)
    apps = pd.read_parquet(world / f"{S.APPLICATIONS}.parquet")
    declined = apps.loc[apps[S.BANK_DECISION] == S.DECLINED, S.APPLICATION_ID].head(2)
    out = pd.read_parquet(world / f"{S.OUTCOMES}.parquet")
    extra = out.head(2).assign(**{S.APPLICATION_ID: declined.to_numpy()})
    pd.concat([out, extra]).to_parquet(world / f"{S.OUTCOMES}.parquet")
    bureau = pd.read_parquet(world / f"{S.BUREAU}.parquet")
    bureau.loc[100:109, "credit_utilization"] = -0.5
    pd.concat([bureau, bureau.head(3)]).to_parquet(world / f"{S.BUREAU}.parquet")
    (world / f"{S.TRANSACTIONS}.parquet").write_text("not parquet")
    code, text = invoke(["data", "validate", str(world)])
    assert code == 2
    assert "outcomes: 2 outcome(s) for applications that are unknown or were not approved" in text
    assert "bureau_snapshots: column 'credit_utilization' has 10 value(s) outside" in text
    assert "bureau_snapshots: 3 duplicate key(s) on ['applicant_id', 'event_timestamp']" in text
    assert "transactions_daily" in text and "unreadable" in text
