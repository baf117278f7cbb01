"""The GitOps verbs through the real console script: exit codes, --json, the demo step."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from mlgate.cli import app
from mlgate.demo import run_demo
from mlgate.errors import MlgateError
from mlgate.gitops.history import parse_trailers
from mlgate.gitops.repo import GitopsRepo
from mlgate.training.track import card_dir
from tests.fixtures.registry import workspace_with_world


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
    # stage blocks (dev is warn-only): a FAIL report is exit 1, an INCONCLUSIVE one exit 3
    fail = gate_report("1", "stage", "FAIL")
    proc = _script(
        "promote",
        "--model",
        "credit_risk",
        "--version",
        "1",
        "--to",
        "stage",
        "--report",
        str(fail),
    )
    assert proc.returncode == 1 and "says FAIL" in proc.stderr
    inc = gate_report("1", "stage", "INCONCLUSIVE")
    proc = _mlgate(
        "promote", "--model", "credit_risk", "--version", "1", "--to", "stage", "--report", str(inc)
    )
    assert proc.returncode == 3
    proc = _mlgate("rollback", "--model", "credit_risk", "--env", "prod")
    assert proc.returncode == 2 and "never been deployed in prod" in proc.stderr


def _alias(workspace: Path, alias: str, version: str) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{workspace / 'mlflow' / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
        "credit_risk", alias, version
    )


def test_cli_takes_aliases_and_default_report_and_merges_by_model_env(
    gitops_ws: Path, gate_report
) -> None:
    """`--version challenger` is resolved to the registry's number before anything is written:
    the branch, the commit's Model-Version trailer and the report it is checked against all
    carry the number. Without --report, promote takes the folder `gates run` writes by default
    for that number; `pr merge --model --env` merges the one open PR for that model and env."""
    _alias(gitops_ws, "challenger", "3")
    proc = _mlgate("promote", "--model", "credit_risk", "--version", "challenger", "--to", "dev")
    default = gitops_ws / "reports" / "gates" / "credit_risk-v3-dev"
    assert proc.returncode == 2 and str(default) in proc.stderr and "gates run" in proc.stderr
    shutil.copytree(gate_report("3", "dev"), default)
    proc = _mlgate(
        "promote", "--model", "credit_risk", "--version", "challenger", "--to", "dev", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    pr = json.loads(proc.stdout)
    assert pr["branch"] == "promote/credit_risk-3-dev" and pr["version"] == "3"
    assert pr["trailers"]["model-version"] == ["3"]
    assert "challenger" not in json.dumps(pr["trailers"])
    # A second open PR for dev: merging by model and env is ambiguous, and says which ones.
    proc = _mlgate(
        "promote", "--model", "credit_risk", "--version", "4", "--to", "dev",
        "--report", str(gate_report("4", "dev")),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proc = _mlgate("pr", "merge", "--model", "credit_risk", "--env", "dev", "--approver", "bob")
    assert proc.returncode == 2
    assert "promote/credit_risk-3-dev" in proc.stderr and "promote/credit_risk-4-dev" in proc.stderr
    assert _mlgate("pr", "close", "promote/credit_risk-4-dev").returncode == 0
    proc = _mlgate("pr", "merge", "--model", "credit_risk", "--env", "dev", "--approver", "bob")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(_mlgate("status", "--json").stdout)
    assert status["models"][0]["envs"]["dev"]["stable_version"] == "3"
    # Nothing open for stage; half a target, or a branch and a target, are usage errors.
    for args in (
        ("--model", "credit_risk", "--env", "stage"),
        ("--model", "credit_risk"),
        ("promote/credit_risk-3-dev", "--env", "dev"),
        (),
    ):
        proc = _mlgate("pr", "merge", *args, "--approver", "bob")
        assert proc.returncode == 2, (args, proc.stderr)
    # An alias the registry does not have is bad input naming it; nothing is opened.
    proc = _mlgate("promote", "--model", "credit_risk", "--version", "nosuch", "--to", "stage")
    assert proc.returncode == 2 and "nosuch" in proc.stderr
    assert json.loads(_mlgate("pr", "list", "--json").stdout) == []


def test_cli_promote_lists_every_reason_of_an_inconclusive_report(gitops_ws: Path) -> None:
    """Every reason of every gate short of PASS reaches the console (a real stored report,
    assembled by the gates' own rules; in stage every gate blocks)."""
    from mlgate.config import load_settings
    from mlgate.gates.policy import load_policy, policy_path_for
    from mlgate.gates.report import write_report
    from mlgate.gates.result import GateResult, GateStatus
    from mlgate.gates.verdict import assemble
    from mlgate.gitops.report_store import put

    reasons = ["only 120 matured labelled rows, 500 needed", "holdout has 3 defaults, 30 needed"]
    window = "current window [2026-01-01, 2026-04-01): 10 rows, 1000 needed"
    short = {"performance": reasons, "drift": [window]}
    policy = load_policy(policy_path_for("credit_risk"))
    results = [
        GateResult(name=n, status=GateStatus.INCONCLUSIVE, summary=short[n][0], reasons=short[n])
        if n in short
        else GateResult(name=n, status=GateStatus.PASS, summary="passes quietly")
        for n in policy.gates_for("stage")
    ]
    report = assemble(
        model="credit_risk", challenger="1", champion=None, env="stage", policy=policy,
        results=results, data_info={"data_fingerprint": "fp-1"},
    )  # fmt: skip
    d = gitops_ws / "inconclusive"
    write_report(d, report, evidently=False)
    put(load_settings(), d, None)
    proc = _script(
        "promote", "--model", "credit_risk", "--version", "1", "--to", "stage", "--report", str(d)
    )
    assert proc.returncode == 3, proc.stderr
    for text in (*reasons, window):
        assert text in proc.stderr, proc.stderr
    assert "passes quietly" not in proc.stderr


def test_cli_manifests_validate_json() -> None:
    proc = _mlgate("manifests", "validate", "--template", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True and len(report["targets"]) >= 5
    assert report["placeholders"]  # the project is the template: listed, not failed
    # without --template the placeholders fail it (exit 1), each named by file and field
    proc = _mlgate("manifests", "validate", "--json")
    assert proc.returncode == 1
    checks = {p["check"] for p in json.loads(proc.stdout)["problems"]}
    assert checks == {"placeholder"}


@pytest.mark.slow
def test_demo_step_promotes_on_gate_reports(workspace: Path, small_world: tuple[Path, Any]) -> None:
    """Train v1, then the demo's promotion steps: gates per env, a retrained v2 as a canary
    (served and replayed), rollback, abort, and a candidate trained on biased labels stopped at
    the gates."""
    settings = workspace_with_world(workspace, small_world[0])
    steps = ["train", "promote", "canary", "blocked"]
    ctx = run_demo(settings, Console(record=True, width=120), fast=True, only=steps)
    assert set(steps) <= set(ctx.results)
    canary_res, blocked = ctx.results["canary"], ctx.results["blocked"]
    res = {
        "promotions": ctx.results["promote"]["promotions"] + canary_res["promotions"],
        "versions": canary_res["versions"],
        "status": blocked["status"],
        "validate_ok": blocked["validate_ok"],
        "blocked": blocked["blocked"],
    }
    prod = res["status"]["models"][0]["envs"]["prod"]
    v1, v2 = res["versions"]
    assert v1 == ctx.results["train"]["version"] and v2 != v1
    # v2 is a real retrain: its own MLflow run, not v1's artifact re-registered
    client = _client(settings)
    mv1, mv2 = (
        client.get_model_version("credit_risk", v1),
        client.get_model_version("credit_risk", v2),
    )
    assert mv1.run_id != mv2.run_id and mv1.source != mv2.source
    # after canary promote, rollback (canary back) and abort: v1 stable, v2 quarantined
    assert prod["stable_version"] == v1 and prod["canary_version"] is None
    assert [q["version"] for q in res["status"]["models"][0]["quarantined"]] == [v2]
    assert res["validate_ok"] is True
    done = [(p["version"], p["env"]) for p in res["promotions"]]
    assert done == [(v, e) for v in (v1, v2) for e in ("dev", "stage", "prod")]
    remote = GitopsRepo.locate(settings).remote
    for p in res["promotions"]:
        report_json = Path(p["report_dir"]) / "report.json"
        report = json.loads(report_json.read_text())
        assert (report["model"], str(report["challenger"]), report["env"]) == (
            "credit_risk",
            p["version"],
            p["env"],
        )
        # the champion the gates compared with is what git said runs stable there
        want_champion = None if p["version"] == v1 else v1
        assert (report["champion"] and str(report["champion"])) == want_champion
        msg = subprocess.run(
            ["git", f"--git-dir={remote}", "log", "-1", "--format=%B", p["commit"]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        trailers = parse_trailers(msg)
        assert trailers["gate-report"] == [hashlib.sha256(report_json.read_bytes()).hexdigest()]
        assert trailers["gate-result"] == [report["overall"]] == [p["overall"]]
        if report["overall"] == "PASS":
            assert "override-reason" not in trailers and "[GATES OVERRIDDEN]" not in msg
        else:  # break-glass names the gates that did not pass
            not_passed = [
                f"{g['name']} {g['status']}:"
                for g in report["gates"]
                if g["blocking"] and g["status"] != "PASS"
            ]
            (reason,) = trailers["override-reason"]
            assert not_passed and all(gate in reason for gate in not_passed), reason
            assert "[GATES OVERRIDDEN]" in msg
    # dev is warn-only: both versions enter on a PASS report, without break-glass
    assert [p["overall"] for p in res["promotions"] if p["env"] == "dev"] == ["PASS", "PASS"]
    # the candidate trained on biased labels: stage gates FAIL it on fairness for the young,
    # promote refuses, git untouched; the bias is on record with the version
    bad = res["blocked"]
    report = json.loads((Path(bad["report_dir"]) / "report.json").read_text())
    assert bad["overall"] == report["overall"] == "FAIL" and str(report["champion"]) == v2
    fairness = {g["name"]: g for g in report["gates"]}["fairness"]
    assert fairness["status"] == "FAIL" and "age_band" in " ".join(fairness["reasons"])
    assert bad["not_passing"]["fairness"] == "FAIL"
    tags = client.get_model_version("credit_risk", bad["version"]).tags
    assert tags["label_bias"] == bad["label_bias"] and "age_band=18-25" in tags["label_bias"]
    assert "label_bias" not in client.get_model_version("credit_risk", v2).tags
    card = (card_dir(settings, "credit_risk", bad["version"]) / "model_card.html").read_text()
    assert "Labels biased on purpose" in card and "age_band=18-25" in card
    assert bad["refused"].startswith("Refused (exit 1)") and bad["refs_unchanged"] is True
    envs = res["status"]["models"][0]["envs"].values()
    deployed = {e["stable_version"] for e in envs} | {e["canary_version"] for e in envs}
    assert bad["version"] not in deployed


def _client(settings: Any) -> Any:
    from mlflow.tracking import MlflowClient

    uri = settings.mlflow_tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=settings.mlflow.registry_uri or uri)
