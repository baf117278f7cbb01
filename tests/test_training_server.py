"""Training against a real `mlflow server` process (SQLite backend, local artifacts, loopback).

Also: reproduction after the source data changed falls back to the content-addressed copy of
the training set kept with the run, and still gives identical holdout predictions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlgate.training.model_config import DEFAULT_MODEL_CONFIG, load_model_config
from mlgate.training.registry import load_holdout, load_scorer, version_lineage
from mlgate.training.train import reproduce_version, train_model
from tests.fixtures.registry import workspace_with_world
from tests.fixtures.services import mlflow_server_at


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    with mlflow_server_at(tmp_path) as url:
        yield url


@pytest.mark.slow
def test_train_against_real_server_and_reproduce_after_source_change(
    mlflow_server: str, tmp_path: Path, small_world: tuple[Path, Any]
) -> None:
    ws = tmp_path / "ws"
    settings = workspace_with_world(ws, small_world[0], copy=True)
    settings = settings.model_copy(
        update={"mlflow": settings.mlflow.model_copy(update={"tracking_uri": mlflow_server})}
    )
    result = train_model(settings, load_model_config(DEFAULT_MODEL_CONFIG))
    assert result.version == "1"
    assert not (ws / "mlflow" / "mlflow.db").exists()  # everything went to the server
    lin = version_lineage(settings, "credit_risk", "1")
    assert lin.aliases == ["challenger"] and lin.run_id == result.run_id
    holdout = load_holdout(settings, "credit_risk", "1")
    scorer = load_scorer(settings, "credit_risk", "challenger")
    assert len(scorer.predict_pd(holdout)) == result.metrics.n

    # The source changes after training: some matured outcomes are restated.
    outcomes = ws / "data" / "world" / "outcomes.parquet"
    df = pd.read_parquet(outcomes)
    matured = df.index[df["default_12m"].notna()][:200]
    df.loc[matured, "default_12m"] = 1 - df.loc[matured, "default_12m"]
    df.to_parquet(outcomes, index=False)

    res = reproduce_version(settings, "credit_risk/1")
    assert res.training_set_source.startswith("stored copy")
    assert res.holdout_identical is True
    assert res.training_set_fingerprint == lin.training_set_fingerprint
    np.testing.assert_array_equal(
        scorer.predict_pd(holdout), load_scorer(settings, "credit_risk", "1").predict_pd(holdout)
    )
