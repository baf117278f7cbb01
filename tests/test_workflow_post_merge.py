"""The post-merge workflow's own steps, run as GitHub would run them (bash, the step's env),
twice after a real merge: the first run makes MLflow's aliases follow git, the second changes
nothing, and both exit 0."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from mlgate.config import REPO_ROOT, load_settings
from mlgate.gitops.repo import GitopsRepo
from tests.gitops_helpers import MODEL, promote_merged

pytestmark = pytest.mark.slow
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "post-merge.yml"


def _mlgate_steps() -> list[str]:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["sync"]["steps"]
    runs = [s["run"] for s in steps if "run" in s and "mlgate" in s["run"]]
    assert len(runs) == 2  # aliases sync, and the record
    return [r.replace(".venv/bin/", f"{REPO_ROOT}/.venv/bin/") for r in runs]


def _aliases(settings) -> dict[str, str]:
    uri = settings.mlflow_tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return {k: str(v) for k, v in client.get_registered_model(MODEL).aliases.items()}


def test_post_merge_is_idempotent(gitops_ws: Path, gate_report, tmp_path: Path) -> None:
    settings = load_settings()
    merged = promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    checkout = GitopsRepo.locate(settings).work  # a checkout of main holding the merge
    summary = tmp_path / "summary.md"
    env = {**os.environ, "GITHUB_SHA": merged.commit, "GITHUB_STEP_SUMMARY": str(summary)}

    def run_all() -> list[str]:
        outs = []
        for script in _mlgate_steps():
            proc = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", script],
                cwd=checkout,
                env=env,
                capture_output=True,
                text=True,
            )
            assert proc.returncode == 0, proc.stdout + proc.stderr
            outs.append(proc.stdout)
        return outs

    first = run_all()
    assert _aliases(settings) == {"dev": "1"}
    assert "fixed 1" in first[0]
    text = summary.read_text()
    assert f"Merged to main: {merged.commit[:12]}" in text and "Change: promote" in text

    second = run_all()
    assert _aliases(settings) == {"dev": "1"}
    assert "fixed 0" in second[0]
