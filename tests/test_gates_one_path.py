"""One path: the pipeline and the CLI judge at the served cut-off; one monitor, one alert.

On a copy of the session's registered workspace (its MLflow paths rewritten, a GitOps remote of
its own): credit policy moves stage's cut-off in git, and `mlgate gates run`
(`run_gates_for_model`) and the training pipeline's evaluate -> gate tasks -> decide steps,
called with their artifacts, judge the same challenger at that moved cut-off with the same
result. `mlgate monitor` and the monitoring pipeline's step, on the same inputs, give the same
verdict and post the same alert payload.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mlgate.cli import app
from mlgate.config import REPO_ROOT, PlatformSettings, load_settings
from mlgate.gates import registry
from mlgate.gates.run import run_gates_for_model
from mlgate.gitops.overlay import Release, write_release
from mlgate.gitops.repo import GitopsRepo
from mlgate.pipelines.steps import gates, monitoring, training

pytestmark = pytest.mark.slow

POLICY = REPO_ROOT / "config" / "policies" / "credit_risk.yaml"
MODEL_CONFIG = "config/models/credit_risk.yaml"


def copy_workspace(src: Path, dst: Path) -> PlatformSettings:
    """A private copy of a trained workspace: MLflow's absolute artifact paths and Feast's
    config point into the copy; no GitOps repository (each test makes its own remote)."""
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("gitops*"))
    with sqlite3.connect(dst / "mlflow" / "mlflow.db") as db:
        for table, column in (
            ("runs", "artifact_uri"),
            ("experiments", "artifact_location"),
            ("logged_models", "artifact_location"),
            ("model_versions", "storage_location"),
        ):
            db.execute(
                f"UPDATE {table} SET {column} = replace({column}, ?, ?)", (str(src), str(dst))
            )
    store = dst / "feast" / "repo" / "feature_store.yaml"
    if store.is_file():
        store.write_text(store.read_text().replace(str(src), str(dst)))
    return load_settings(workspace=str(dst))


@pytest.fixture
def own_workspace(registered_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    settings = copy_workspace(registered_model.workspace, tmp_path / "ws")
    monkeypatch.setenv("MLGATE_WORKSPACE", str(tmp_path / "ws"))
    # The small world's windows are below the production floors: a policy that suits it.
    doc = yaml.safe_load(POLICY.read_text())
    doc["samples"].update(min_reference=200, min_current=100, min_recent=100)
    doc["fairness"]["min_group_size"] = 30
    policy = tmp_path / "policies" / "credit_risk.yaml"
    policy.parent.mkdir()
    policy.write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("MLGATE_POLICY_DIR", str(policy.parent))
    return settings, registered_model, policy


def serve(settings: PlatformSettings, env: str, version: str, cutoff: str) -> None:
    """What a merged promotion / credit-policy change leaves on the GitOps remote's main."""
    repo = GitopsRepo.open(settings)
    release = Release(
        model="credit_risk", env=env, stable_version=version, cutoff=cutoff,
        stable_image="127.0.0.1:5555/credit_risk@sha256:" + "ab" * 32,
    )  # fmt: skip
    write_release(repo.work, release)
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", f"Credit policy: {env} cut-off {cutoff}")
    repo.git("push", "-q", "origin", "HEAD:main")


def test_pipeline_and_cli_judge_at_the_moved_served_cutoff(
    own_workspace: Any, tmp_path: Path
) -> None:
    settings, reg, policy = own_workspace
    serve(settings, "stage", reg.version, "0.15")
    serve(settings, "stage", reg.version, "0.27")  # credit policy moves stage's cut-off
    cli, _ = run_gates_for_model(
        settings, model="credit_risk", challenger=reg.version, env="stage", policy_file=policy,
        report_dir=tmp_path / "cli", evidently=False, log_mlflow=False,
    )  # fmt: skip
    assert cli.data["cutoff_source"] == "overlay stage: 0.27"
    # The pipeline: evaluate (its artifacts: the data copy, the trained model), one task per
    # registered gate, the decision, each step as the component calls it.
    model_json = tmp_path / "model.json"
    model_json.write_text(json.dumps({"model_version": reg.version}))
    ev = tmp_path / "evidence"
    training.evaluate_model(
        MODEL_CONFIG, str(policy), reg.version, "stage", str(reg.workspace / "data" / "world"),
        str(model_json), str(ev),
    )  # fmt: skip
    results = []
    for name in registry.names():
        results.append(str(tmp_path / f"{name}.json"))
        gates.run_gate(name, str(policy), "stage", str(ev), results[-1])
    gates.decide(
        str(policy), "stage", reg.version, str(ev), results, str(tmp_path / "r.html"),
        str(tmp_path / "piped"),
    )  # fmt: skip
    piped = json.loads((tmp_path / "piped" / "report.json").read_text())
    assert piped["data"]["cutoff_source"] == "overlay stage: 0.27"
    assert piped["policy"]["cutoff"]["value"] == cli.policy["cutoff"]["value"] == 0.27
    by_name = {g["name"]: g for g in piped["gates"]}
    assert by_name["pnl"]["metrics"]["cutoff_challenger"] == 0.27
    assert cli.gate("pnl").metrics["cutoff_challenger"] == 0.27
    for g in cli.gates:  # same evidence, same cut-off: the same numbers and statuses
        mine = by_name[g.name]
        assert (mine["status"], mine["blocking"]) == (g.status.value, g.blocking), g.name
        assert mine["metrics"] == json.loads(json.dumps(g.metrics, default=str)), g.name
    assert (piped["overall"], piped["verdict"]) == (cli.overall.value, cli.verdict.value)
    assert piped["policy_sha256"] == cli.policy_sha256


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alert", received
    finally:
        server.shutdown()
        server.server_close()


def test_monitor_cli_and_pipeline_step_agree_and_send_the_same_alert(
    own_workspace: Any, webhook: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    settings, reg, policy = own_workspace
    serve(settings, "prod", reg.version, "0.15")
    url, received = webhook
    # Drift thresholds any real window crosses: the monitor FAILs and alerts.
    strict = yaml.safe_load(policy.read_text())
    strict["drift"].update(psi_watch=0.0001, psi_act=0.0002, score_psi_act=0.0002)
    policy.write_text(yaml.safe_dump(strict))
    args = ["monitor", "--model", "credit_risk", "--env", "prod", "--window", "90d"]
    run = CliRunner().invoke(app, [*args, "--policy", str(policy), "--webhook", url, "--json"])
    assert run.exit_code == 1, run.output
    by_cli = json.loads(run.output)
    out = monitoring.monitor(
        MODEL_CONFIG, str(policy), "prod", "", 90, url, True, str(tmp_path / "m.json"),
        str(tmp_path / "m.html"),
    )  # fmt: skip
    by_step = json.loads((tmp_path / "m.json").read_text())
    assert out.value == by_cli["overall"] == by_step["overall"] == "FAIL"
    assert by_step["version"] == by_cli["version"] == reg.version
    strip = ("created", "details")  # wall-clock time, per-feature tables
    assert [{k: v for k, v in c.items() if k not in strip} for c in by_step["checks"]] == [
        {k: v for k, v in c.items() if k not in strip} for c in by_cli["checks"]
    ]
    assert by_step["retrain"]["retrain"] is by_cli["retrain"]["retrain"] is True
    assert out.metadata["retrain"] == "yes"
    assert len(received) == 2 and received[0] == received[1]  # one writer, one payload
    alert = received[0]
    assert alert["mlgate"]["status"] == "FAIL" and alert["mlgate"]["env"] == "prod"
    assert "drift" in alert["text"] and alert["blocks"][0]["type"] == "header"
    # Retraining switched off: the same FAIL, but the pipeline does not start a retrain.
    off = monitoring.monitor(
        MODEL_CONFIG, str(policy), "prod", "", 90, "", False, str(tmp_path / "m2.json"),
        str(tmp_path / "m2.html"),
    )  # fmt: skip
    assert off.value == "FAIL" and off.metadata["retrain"] == "no"


def test_monitor_fail_retrains_and_a_new_challenger_is_registered(
    own_workspace: Any, webhook: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """monitor FAIL -> alert -> the training pipeline (local runner) -> version 2, challenger."""
    from mlgate.training.registry import connect, resolve_version

    settings, reg, policy = own_workspace
    serve(settings, "prod", reg.version, "0.15")
    url, received = webhook
    strict = yaml.safe_load(policy.read_text())
    strict["drift"].update(psi_watch=0.0001, psi_act=0.0002, score_psi_act=0.0002)
    policy.write_text(yaml.safe_dump(strict))
    out = monitoring.monitor(
        MODEL_CONFIG, str(policy), "prod", "", 90, url, True, str(tmp_path / "m.json"),
        str(tmp_path / "m.html"),
    )  # fmt: skip
    assert out.value == "FAIL" and out.metadata["retrain"] == "yes"
    assert out.metadata["retrain_reason"].startswith("monitor FAIL: drift")
    assert received and received[0]["mlgate"]["retrain"]["retrain"] is True
    # What the pipeline's retrain branch runs: the training pipeline, here on the local runner.
    started = monitoring.trigger_retrain(
        MODEL_CONFIG, "", "dev", "skip", "", str(tmp_path / "run.json")
    )
    assert started.value == "SUCCESS"
    client = connect(settings)
    new = resolve_version(client, "credit_risk", "challenger")
    assert int(new.version) == int(reg.version) + 1
    assert new.run_id != reg.run_id


def test_inconclusive_from_immature_labels_does_not_retrain(
    own_workspace: Any, webhook: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """Too few matured labels (performance, calibration INCONCLUSIVE), nothing failing: no
    alert, no retrain, though retraining is enabled."""
    settings, reg, policy = own_workspace
    serve(settings, "dev", reg.version, "0.15")
    url, received = webhook
    calm = yaml.safe_load(policy.read_text())
    # Dev's warn-only overrides (stage/prod must keep their risk tier's thresholds): the
    # 12-month labels have "not matured" (floor above the rows there), nothing else can fail.
    calm["environments"]["dev"]["overrides"] = {
        "samples": {"min_labelled": 10_000_000},
        "drift": {"psi_watch": 5.0, "psi_act": 10.0, "score_psi_act": 10.0},
        "fairness": {"four_fifths": 0.01, "champion_tolerance": 1.0},
        "monitor": {"early_delinquency_ratio": 100.0, "alert_on_watch": False},
    }
    policy.write_text(yaml.safe_dump(calm))
    out = monitoring.monitor(
        MODEL_CONFIG, str(policy), "dev", "", 90, url, True, str(tmp_path / "m.json"),
        str(tmp_path / "m.html"),
    )  # fmt: skip
    report = json.loads((tmp_path / "m.json").read_text())
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert status["performance"] == "INCONCLUSIVE" and "FAIL" not in status.values(), status
    assert out.value == "INCONCLUSIVE" and out.metadata["retrain"] == "no"
    assert "INCONCLUSIVE is not a reason" in out.metadata["retrain_reason"]
    assert received == []  # nothing failed: no alert
