"""Compiling the pipelines for the Kubeflow UI, and the CI check that the committed YAML is
up to date (`mlgate pipeline compile --check` runs here, so `make test` is that CI check)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgate.cli import app
from mlgate.errors import BadInputError
from mlgate.pipelines import catalog, compiling
from mlgate.pipelines.platform import DEFAULT_PLATFORM_IMAGE


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "mlgate.cli", "pipeline", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_committed_yaml_is_up_to_date(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CI check: exit 0 only if pipelines/compiled/ matches what the code compiles to."""
    monkeypatch.delenv("MLGATE_PLATFORM_IMAGE", raising=False)
    proc = _cli("compile", "--check", env={"MLGATE_PLATFORM_IMAGE": ""})
    assert proc.returncode == 0, proc.stderr
    assert "up-to-date" in proc.stderr


@pytest.mark.parametrize("name", ["training", "monitoring"])
def test_compiled_yaml_loads_back_with_the_sdk(name: str) -> None:
    path = catalog.compiled_path(name)
    component = compiling.load_compiled(path)
    assert component.name == f"mlgate-{name}"
    spec, platform = compiling.normalise(path.read_text())
    # Every step runs in the platform image, with kfp baked in (no pip install at start).
    for executor in spec["deploymentSpec"]["executors"].values():
        container = executor["container"]
        assert container["image"] == DEFAULT_PLATFORM_IMAGE
        assert "pip install" not in " ".join(container["command"])
    assert platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_training_graph_gates_each_step_and_promotes_only_on_pass() -> None:
    spec, platform = compiling.normalise(catalog.compiled_path("training").read_text())
    tasks = spec["root"]["dag"]["tasks"]
    shown = {t["taskInfo"]["name"] for t in tasks.values()}
    for gate in ("performance", "calibration", "drift", "fairness", "pnl", "swap"):
        assert f"gate: {gate}" in shown
    # The image and the promotion sit inside the condition on the decision's output.
    (cond_name,) = [n for n in tasks if n.startswith("condition")]
    cond = tasks[cond_name]
    assert "PASS" in cond["triggerPolicy"]["condition"]
    inner = spec["components"][cond["componentRef"]["name"]]["dag"]["tasks"]
    assert {t["taskInfo"]["name"] for t in inner.values()} == {"model-server image", "promotion PR"}
    # Secrets: MLflow for training, the registry login for the image, the git token for the PR.
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    secrets = {
        name: {s["secretName"] for s in cfg.get("secretAsEnv", [])} for name, cfg in k8s.items()
    }
    assert "mlgate-mlflow" in secrets["exec-train-model"]
    assert "mlgate-registry" in secrets["exec-build-image"]
    assert secrets["exec-open-promotion"] == {"mlgate-git", "mlgate-mlflow"}
    assert "exec-run-gate" not in secrets or not secrets["exec-run-gate"]  # gates read artifacts
    assert k8s["exec-train-model"]["nodeSelector"]["labels"] == {"mlgate.io/pool": "ml-compute"}
    # Outputs the UI shows: the gate report.
    assert (
        spec["root"]["outputDefinitions"]["artifacts"]["Output"]["artifactType"]["schemaTitle"]
        == "system.HTML"
    )


def test_check_fails_on_stale_yaml_and_compile_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    for part in ("pipelines", "components"):
        shutil.copytree(catalog.project_root() / part, root / part)
    stale = root / "pipelines" / "compiled" / "training.yaml"
    stale.write_text(stale.read_text().replace("gate: drift", "gate: drifted"))
    (root / "pipelines" / "compiled" / "monitoring.yaml").unlink()
    monkeypatch.setenv("MLGATE_PROJECT_ROOT", str(root))
    monkeypatch.delenv("MLGATE_PLATFORM_IMAGE", raising=False)
    runner = CliRunner()
    try:
        res = runner.invoke(app, ["pipeline", "compile", "--check", "--json"])
        assert res.exit_code == 1
        body = json.loads(res.stdout)
        assert {p["name"]: p["status"] for p in body["pipelines"]} == {
            "monitoring": "missing",
            "training": "out-of-date",
        }
        assert "gate: drifted" in stale.read_text()  # --check writes nothing
        assert not (root / "pipelines" / "compiled" / "monitoring.yaml").exists()

        assert runner.invoke(app, ["pipeline", "compile"]).exit_code == 0
        assert "gate: drifted" not in stale.read_text()
        assert runner.invoke(app, ["pipeline", "compile", "--check"]).exit_code == 0
        # The copy was imported, not the checkout's modules.
        assert str(root) in sys.modules["pipelines.training"].__file__
    finally:
        monkeypatch.delenv("MLGATE_PROJECT_ROOT")
        catalog.load("training")  # re-import the checkout's modules for later tests


def test_unknown_pipeline_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="unknown pipeline 'nope'"):
        compiling.compile_all(["nope"])
