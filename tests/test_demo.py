"""`mlgate demo --fast`: the whole lifecycle on the embedded default, as a user runs it.

One end-to-end run through the real console script; the assertions read the state each
capability leaves behind (world, registry, gate report, image record, git), not the console text,
so the test fails when a step stops doing its job even if it still prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlgate.gates.verdict import CANARY_CHECKS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    ws = tmp_path_factory.mktemp("demo") / "ws"
    env = {**os.environ, "MLGATE_WORKSPACE": str(ws), "COLUMNS": "160"}
    proc = subprocess.run(
        [sys.executable, "-m", "mlgate.cli", "demo", "--fast"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1500,
        check=False,
    )
    return ws, proc


def _mlgate(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLGATE_WORKSPACE": str(ws)}
    return subprocess.run(
        [sys.executable, "-m", "mlgate.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_demo_completes(demo_run) -> None:
    ws, proc = demo_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "demo complete" in proc.stderr + proc.stdout


def test_demo_leaves_a_valid_world(demo_run) -> None:
    ws, _ = demo_run
    manifest = json.loads((ws / "data" / "world" / "manifest.json").read_text())
    assert manifest["tables"]["applications"]["rows"] > 0
    proc = _mlgate(ws, "data", "validate", "--json")
    assert proc.returncode == 0, proc.stderr


def test_demo_registers_versions_with_lineage(demo_run, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlgate.config import load_settings
    from mlgate.training.registry import version_lineage

    ws, _ = demo_run
    monkeypatch.setenv("MLGATE_WORKSPACE", str(ws))
    lineage = version_lineage(load_settings(), "credit_risk", "1")
    assert lineage.run_id and lineage.data_fingerprint and lineage.feature_service


def test_demo_writes_a_gate_report(demo_run) -> None:
    ws, _ = demo_run
    reports = sorted((ws / "reports" / "gates").glob("*/report.json"))
    assert reports, "no gate report in the workspace"
    report = json.loads(reports[0].read_text())
    assert report["model"] == "credit_risk"
    assert report["overall"] in {"PASS", "FAIL", "INCONCLUSIVE"}
    assert {g["name"] for g in report["gates"]} >= {"performance", "calibration", "fairness"}
    assert (reports[0].parent / "report.html").is_file()


def test_demo_git_says_what_runs_where(demo_run) -> None:
    ws, _ = demo_run
    proc = _mlgate(ws, "status", "--json")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    (model,) = [m for m in status["models"] if m["model"] == "credit_risk"]
    assert set(model["envs"]) == {"dev", "stage", "prod"}
    prod = model["envs"]["prod"]
    assert prod["stable_version"] and prod["stable_image"].count("@sha256:") == 1
    # The demo rolls a canary back: that version is quarantined and not what prod runs.
    quarantined = {q["version"] for q in model["quarantined"]}
    assert quarantined and prod["stable_version"] not in quarantined


def test_demo_manifests_validate(demo_run) -> None:
    ws, _ = demo_run
    # the demo's own GitOps repository: seeded with the embedded default's values, no
    # placeholder left (the project's tree is the template: `--template`)
    proc = _mlgate(ws, "manifests", "validate", "--gitops", "--json")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_demo_canary_analysis_judged_replayed_traffic(demo_run) -> None:
    ws, _ = demo_run
    (req,) = (ws / "reports" / "canary").glob("requests-credit_risk-prod-*.parquet")
    (rep_file,) = (ws / "reports" / "canary").glob("credit_risk-v*-prod-*/report.json")
    report = json.loads(rep_file.read_text())
    checks = {g["name"]: g for g in report["gates"]}
    assert set(checks) == set(CANARY_CHECKS)  # every check the canary phase holds
    assert report["champion"] != report["challenger"]
    assert 0 < report["data"]["canary_requests"] < report["data"]["requests"]
    # Early outcomes were joined from the data source by row key (the log has none).
    early = checks["early_delinquency"]
    assert early["metrics"]["n"] > 0 and early["metrics"]["n_stable"] > 0, early
    assert not early["summary"].startswith("no early outcomes"), early
    # The demo ends with the canary aborted: analysing now is bad input, exit 2.
    proc = _mlgate(ws, "canary", "analyze", "--model", "credit_risk", "--requests", str(req))
    assert proc.returncode == 2 and "no canary" in proc.stderr + proc.stdout


def test_demo_ends_with_prod_lineage_and_a_clean_audit(demo_run) -> None:
    """Step 80 prints the lineage of prod and `audit verify`; re-run on what the demo left
    (git, MLflow, report and policy stores, and the registry every promoted image was pushed
    to), verify finds no gap and lineage names prod's stable version with verified evidence."""
    ws, proc = demo_run
    out = proc.stdout + proc.stderr
    assert "mlgate audit lineage --model credit_risk --env prod" in out
    assert "mlgate audit verify" in out
    status = json.loads(_mlgate(ws, "status", "--json").stdout)
    (model,) = [m for m in status["models"] if m["model"] == "credit_risk"]
    lineage = _mlgate(ws, "audit", "lineage", "--model", "credit_risk", "--env", "prod", "--json")
    assert lineage.returncode == 0, lineage.stdout[-2000:] + lineage.stderr[-2000:]
    stable = json.loads(lineage.stdout)["stable"]
    assert stable["version"] == model["envs"]["prod"]["stable_version"]
    assert stable["image"] == model["envs"]["prod"]["stable_image"]
    report = stable["entered"]["gate_report"]
    assert report is None or report["verified"], report
    # The fast demo stops its registry after each step: up for the image check, then down.
    up = _mlgate(ws, "registry", "up")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        verify = _mlgate(ws, "audit", "verify", "--json")
    finally:
        _mlgate(ws, "registry", "down")
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-2000:]
    result = json.loads(verify.stdout)
    assert result["gaps"] == [] and result["changes_checked"] > 0
