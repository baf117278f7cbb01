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
from mlgate.config import REPO_ROOT
from mlgate.errors import BadInputError
from mlgate.gates import registry
from mlgate.pipelines import catalog, compiling

PRODUCTION = "registry.bank.example/ml/mlgate-platform@sha256:" + "5e" * 32


def manifests_platform_image() -> str:
    """The platform image the manifests pin (kustomize `images:` entry mlgate-platform)."""
    import yaml

    doc = yaml.safe_load((REPO_ROOT / "manifests" / "base" / "kustomization.yaml").read_text())
    (entry,) = [i for i in doc["images"] if i["name"] == "mlgate-platform"]
    return f"{entry['newName']}@{entry['digest']}"


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
    """The CI check: exit 0 only if the committed compiled YAML matches what the code compiles to."""
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
    # Every step runs in the platform image the manifests pin (never the embedded default's
    # loopback registry), with kfp baked in (no pip install at start).
    for executor in spec["deploymentSpec"]["executors"].values():
        container = executor["container"]
        assert container["image"] == manifests_platform_image()
        assert not container["image"].startswith(("127.", "localhost"))
        assert "pip install" not in " ".join(container["command"])
    assert platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_training_graph_gates_each_step_and_promotes_only_on_pass() -> None:
    spec, platform = compiling.normalise(catalog.compiled_path("training").read_text())
    tasks = spec["root"]["dag"]["tasks"]
    # One gate task per registered gate: a ParallelFor over mlgate.gates.registry.names().
    (loop,) = [t for t in tasks.values() if "parameterIterator" in t]
    assert json.loads(loop["parameterIterator"]["items"]["raw"]) == list(registry.names())
    looped = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert {t["taskInfo"]["name"] for t in looped.values()} == {"gate"}
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
    out = tmp_path / "compiled"
    shutil.copytree(catalog.compiled_dir(), out)
    stale = out / "training.yaml"
    stale.write_text(stale.read_text().replace("train + register", "train + registered"))
    (out / "monitoring.yaml").unlink()
    monkeypatch.delenv("MLGATE_PLATFORM_IMAGE", raising=False)
    runner = CliRunner()
    res = runner.invoke(app, ["pipeline", "compile", "--check", "--json", "--out", str(out)])
    assert res.exit_code == 1
    body = json.loads(res.stdout)
    assert {p["name"]: p["status"] for p in body["pipelines"]} == {
        "monitoring": "missing",
        "training": "out-of-date",
    }
    assert "train + registered" in stale.read_text()  # --check writes nothing
    assert not (out / "monitoring.yaml").exists()

    assert runner.invoke(app, ["pipeline", "compile", "--out", str(out)]).exit_code == 0
    assert "train + registered" not in stale.read_text()
    assert runner.invoke(app, ["pipeline", "compile", "--check", "--out", str(out)]).exit_code == 0
    # The recompiled copy kept the image the committed YAML pins.
    assert compiling.pinned_image(stale) == compiling.pinned_image(
        catalog.compiled_path("training")
    )


def test_compile_image_writes_the_production_reference_and_check_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "compiled"
    shutil.copytree(catalog.compiled_dir(), out)
    monkeypatch.delenv("MLGATE_PLATFORM_IMAGE", raising=False)
    runner = CliRunner()
    res = runner.invoke(app, ["pipeline", "compile", "--out", str(out), "--image", PRODUCTION])
    assert res.exit_code == 0, res.output
    for name in catalog.names():
        text = (out / f"{name}.yaml").read_text()
        assert compiling.step_images(text) == {PRODUCTION}
        # Only the image changed: the graph is what the committed YAML says.
        committed = compiling.normalise(catalog.compiled_path(name).read_text())
        assert compiling.normalise(compiling.with_image(text, compiling.pinned_image(
            catalog.compiled_path(name)) or "")) == committed  # fmt: skip
    # A later plain compile and the CI check keep the production reference (exact, no drift).
    assert runner.invoke(app, ["pipeline", "compile", "--check", "--out", str(out)]).exit_code == 0
    assert runner.invoke(app, ["pipeline", "compile", "--out", str(out)]).exit_code == 0
    assert compiling.pinned_image(out / "training.yaml") == PRODUCTION


@pytest.mark.parametrize(
    "image",
    [
        "registry.bank.example/ml/mlgate-platform:latest",  # a tag can move: not pinned
        "registry.bank.example/ml/p@sha256:" + "5e" * 32 + "\n        command: [sh]",  # YAML
        "registry.bank.example/ml/p@sha256:" + "5e" * 32 + " ; rm -rf /",
    ],
    ids=["tag", "yaml-injection", "spaces"],
)
def test_compile_refuses_an_image_that_is_not_a_pinned_reference(
    image: str, tmp_path: Path
) -> None:
    out = tmp_path / "compiled"
    shutil.copytree(catalog.compiled_dir(), out)
    before = {p.name: p.read_text() for p in out.iterdir()}
    proc = _cli("compile", "--out", str(out), "--image", image)
    assert proc.returncode == 2
    assert "--image" in proc.stderr
    assert {p.name: p.read_text() for p in out.iterdir()} == before  # nothing written


def test_unknown_pipeline_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="unknown pipeline 'nope'"):
        compiling.compile_all(["nope"])
