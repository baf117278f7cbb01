"""Fingerprints: same data -> same hash whatever the row order or file format; any change shows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from mlgate.cli import app
from mlgate.data.fingerprint import fingerprint
from mlgate.data.world import WorldManifest


def frame(n: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "amount": rng.normal(1000, 200, n).round(2),
            "grade": rng.choice(["A", "B", "C"], n),
            "flag": rng.random(n) < 0.3,
            "ts": pd.Timestamp("2025-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
            "maybe": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
        }
    )


def test_row_and_column_order_do_not_matter() -> None:
    df = frame()
    shuffled = df.sample(frac=1.0, random_state=1).reset_index(drop=True)
    assert fingerprint(shuffled).sha256 == fingerprint(df).sha256
    assert fingerprint(df[df.columns[::-1]]).sha256 == fingerprint(df).sha256


def test_csv_and_parquet_of_the_same_data_agree(tmp_path: Path) -> None:
    df = frame()
    df.to_parquet(tmp_path / "d.parquet")
    df.to_csv(tmp_path / "d.csv", index=False)
    df.sample(frac=1.0, random_state=3).to_parquet(
        tmp_path / "d2.parquet", compression="gzip", row_group_size=50
    )
    fp_parquet = fingerprint(tmp_path / "d.parquet")
    assert fingerprint(tmp_path / "d.csv").sha256 == fp_parquet.sha256
    assert fingerprint(tmp_path / "d2.parquet").sha256 == fp_parquet.sha256
    assert fp_parquet.sha256 == fingerprint(df).sha256
    assert fp_parquet.rows == 500
    assert fp_parquet.columns == list(df.columns)
    assert fp_parquet.logical_types["ts"] == "timestamp"
    assert fp_parquet.column_types["grade"] == "string"


def test_any_change_changes_the_hash() -> None:
    df = frame()
    base = fingerprint(df).sha256
    changed = df.copy()
    changed.loc[17, "amount"] += 0.01
    assert fingerprint(changed).sha256 != base
    changed = df.copy()
    changed.loc[3, "grade"] = "Z"
    assert fingerprint(changed).sha256 != base
    changed = df.copy()
    changed.loc[5, "maybe"] = np.nan if not np.isnan(df.loc[5, "maybe"]) else 0.5
    assert fingerprint(changed).sha256 != base
    assert fingerprint(df.rename(columns={"amount": "amt"})).sha256 != base
    assert fingerprint(pd.concat([df, df.iloc[:1]])).sha256 != base  # a duplicated row
    assert fingerprint(df.iloc[1:]).sha256 != base
    # swapping two values between rows of one column is a different dataset
    swapped = df.copy()
    swapped.loc[[0, 1], "amount"] = df.loc[[1, 0], "amount"].to_numpy()
    assert fingerprint(swapped).sha256 != base


def test_world_fingerprints_match_the_manifest(small_world: tuple[Path, WorldManifest]) -> None:
    world, manifest = small_world
    fp = fingerprint(world)
    assert fp.format == "folder"
    assert {name: t.sha256 for name, t in fp.tables.items()} == {
        name: info.fingerprint for name, info in manifest.tables.items()
    }


def test_cli_fingerprint_json(tmp_path: Path) -> None:
    frame().to_csv(tmp_path / "d.csv", index=False)
    result = CliRunner().invoke(app, ["data", "fingerprint", str(tmp_path / "d.csv"), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["sha256"] == fingerprint(frame()).sha256
    assert doc["rows"] == 500
    assert doc["column_types"]["amount"] == "double"
