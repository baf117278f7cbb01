"""The GitOps verbs through the real console script: exit codes, --json, the demo step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from mlgate.cli import app
from mlgate.config import load_settings
from mlgate.demo import run_demo
from mlgate.errors import MlgateError


def _mlgate(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in-process (as the console script would: errors -> exit codes)."""
    result = CliRunner().invoke(app, list(args))
    code = result.exit_code
    err = result.stderr
    if isinstance(result.exception, MlgateError):
        code, err = result.exception.exit_code, err + str(result.exception)
    return subprocess.CompletedProcess(list(args), code, result.stdout, err)


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlgate.cli", *args], capture_output=True, text=True, check=False
    )


def test_cli_promote_merge_status_and_exit_codes(gitops_ws: Path, gate_report) -> None:
    proc = _mlgate("status", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["models"] == []

    proc = _mlgate(
        "promote", "--model", "credit_risk", "--version", "1", "--to", "qa", "--report", "x"
    )
    assert proc.returncode == 2 and "environment 'qa'" in proc.stderr
    fail = gate_report("1", "dev", "FAIL")
    proc = _script(
        "promote", "--model", "credit_risk", "--version", "1", "--to", "dev", "--report", str(fail)
    )
    assert proc.returncode == 1 and "says FAIL" in proc.stderr
    inc = gate_report("1", "dev", "INCONCLUSIVE")
    proc = _mlgate(
        "promote", "--model", "credit_risk", "--version", "1", "--to", "dev", "--report", str(inc)
    )
    assert proc.returncode == 3

    ok = gate_report("1", "dev")
    proc = _mlgate(
        "promote",
        "--model",
        "credit_risk",
        "--version",
        "1",
        "--to",
        "dev",
        "--report",
        str(ok),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    branch = json.loads(proc.stdout)["branch"]
    listed = json.loads(_mlgate("pr", "list", "--json").stdout)
    assert [p["branch"] for p in listed] == [branch]
    shown = _mlgate("pr", "show", branch)
    assert "Gate report credit_risk 1 -> dev: PASS" in shown.stdout
    assert '+  stable_version: "1"' in shown.stdout
    proc = _mlgate("pr", "merge", branch, "--approver", "alice", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["approvers"] == ["alice"]
    status = json.loads(_mlgate("status", "--json").stdout)
    assert status["models"][0]["envs"]["dev"]["stable_version"] == "1"
    proc = _mlgate("rollback", "--model", "credit_risk", "--env", "prod")
    assert proc.returncode == 2 and "never been deployed in prod" in proc.stderr


def test_cli_manifests_validate_json() -> None:
    proc = _mlgate("manifests", "validate", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True and len(report["targets"]) >= 5


def test_demo_step_runs_on_the_workspace(gitops_ws: Path) -> None:
    ctx = run_demo(load_settings(), Console(record=True, width=120), fast=True, only=["gitops"])
    res = ctx.results["gitops"]
    prod = res["status"]["models"][0]["envs"]["prod"]
    v1, v2 = res["versions"]
    # after canary promote, rollback (canary back) and abort: v1 stable, v2 quarantined
    assert prod["stable_version"] == v1 and prod["canary_version"] is None
    assert [q["version"] for q in res["status"]["models"][0]["quarantined"]] == [v2]
    assert res["validate_ok"] is True
