"""Training against a broken MLflow: a clear error, and nothing half-registered."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from mlgate.cli import app
from mlgate.errors import ExternalServiceError
from mlgate.training.model_config import DEFAULT_MODEL_CONFIG, load_model_config
from mlgate.training.train import train_model
from tests.fixtures.registry import workspace_with_world


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_tracking_server_is_a_clear_error(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MLGATE_WORKSPACE": str(tmp_path / "ws"),
        "MLGATE_MLFLOW__TRACKING_URI": f"http://127.0.0.1:{_free_port()}",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "mlgate.cli", "train", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "does not answer" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert not (tmp_path / "ws" / "reports").exists()  # nothing written


def test_failed_registration_rolls_back_then_cli_json(
    tmp_path: Path, small_world: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "ws"
    settings = workspace_with_world(ws, small_world[0])
    cfg = load_model_config(DEFAULT_MODEL_CONFIG)

    def broken(self: Any, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("registry went away")

    # The server dies after the version was created: the attempt must undo itself.
    with monkeypatch.context() as m:
        m.setattr(MlflowClient, "set_registered_model_alias", broken)
        with pytest.raises(ExternalServiceError, match="nothing registered"):
            train_model(settings, cfg)
    uri = settings.mlflow_tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert client.search_model_versions("name = 'credit_risk'") == []
    assert client.search_registered_models() == []
    exp = client.get_experiment_by_name("credit_risk")
    assert client.search_runs([exp.experiment_id]) == []  # the run was deleted too
    assert not (ws / "reports" / "model_cards").exists()

    monkeypatch.setenv("MLGATE_WORKSPACE", str(ws))
    res = CliRunner().invoke(app, ["train", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["model"] == "credit_risk" and out["version"] == "1"
    assert out["run_id"] and len(out["training_set_fingerprint"]) == 64
    assert len(out["data_fingerprint"]) == 64
    assert {"auc", "gini", "ks", "brier", "approval_rate"} <= set(out["metrics"])
    assert out["metrics"]["gini"] == pytest.approx(2 * out["metrics"]["auc"] - 1)
    aliases = client.get_registered_model("credit_risk").aliases
    assert {k: str(v) for k, v in aliases.items()} == {"challenger": "1"}
