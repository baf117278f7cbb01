"""`mlgate features ...`: JSON output, files written, nothing written on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from mlgate.cli import app
from mlgate.data import schema
from mlgate.errors import BadInputError
from mlgate.features.store import ASOF_STORE
from tests.fixtures.features import write_applications, write_feature_world

runner = CliRunner()
BUREAU = [("a1", "2026-01-01", "2026-01-01", 1.0), ("a2", "2026-01-02", "2026-01-02", 2.0)]
TXNS = [("a1", "2026-01-10", "2026-01-10", 10.0)]
APPS = [
    ("p1", "a1", "2026-01-12", "approved"),
    ("p2", "a2", "2026-01-13", "approved"),
    ("p3", "a3", "2026-01-14", "declined"),
]


def test_apply_training_set_materialize_lookup(workspace: Path, tmp_path: Path) -> None:
    world = write_feature_world(workspace / "data" / "world", BUREAU, TXNS)
    write_applications(world, APPS)

    res = runner.invoke(app, ["features", "apply", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["offline_store"] == ASOF_STORE  # the plug-in is the embedded default
    ttl = {v["name"]: v["ttl_seconds"] for v in info["feature_views"]}
    assert ttl == {"bureau_features": 45 * 86400.0, "transaction_features": 7 * 86400.0}
    assert info["feature_services"] == ["credit_risk_v1"]

    out = tmp_path / "ts.parquet"
    res = runner.invoke(
        app, ["features", "training-set", "--all-decisions", "--out", str(out), "--json"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    df = pd.read_parquet(out)
    # p3 is declined: with --all-decisions it is a candidate, but it has no outcome (matured only)
    assert summary["rows"] == len(df) == 2 and list(df[schema.APPLICATION_ID]) == ["p1", "p2"]
    assert summary["path"] == str(out) and len(summary["fingerprint"]) == 64
    assert df.loc[0, "txn_count_30d"] == 10.0

    res = runner.invoke(app, ["features", "materialize", "--end", "2026-01-15", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["feature_views"] == ["bureau_features", "transaction_features"]
    res = runner.invoke(app, ["features", "lookup", "a1", "a3", "--at", "2026-01-15", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["rows"]
    assert rows[0][schema.APPLICANT_ID] == "a1" and rows[0]["annual_income"] == 1.0
    assert rows[1]["annual_income"] is None


def test_training_set_bad_dataset_writes_nothing(tmp_path: Path) -> None:
    cfg = tmp_path / "d.yaml"
    cfg.write_text(
        "name: d\npath: missing.csv\nentity_key: k\nevent_timestamp: t\nlabel: y\n"
        "numeric_features: [x]\n",
        encoding="utf-8",
    )
    out = tmp_path / "never.parquet"
    res = runner.invoke(app, ["features", "training-set", "--dataset", str(cfg), "--out", str(out)])
    assert isinstance(res.exception, BadInputError)
    assert "missing.csv: dataset file not found" in str(res.exception)
    assert not out.exists()
