"""The training pipeline end to end with Kubeflow's local runner (the embedded default).

One workspace on the session's small world (tests/fixtures/world.py): a first run with a
policy whose sample-size minimums suit the small world registers version 1, passes every gate
and opens the promotion branch; a second run under a policy override that makes the
performance gate fail registers version 2 and stops before the image step, its output being
the gate report. Images are configured as built elsewhere (`image_build=skip`): building a
model-server image takes minutes here (tests/test_image_* cover that path), so the fixture
leaves the build record a separate `mlgate image build` would leave for version 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlgate.config import REPO_ROOT, load_settings
from mlgate.pipelines.local import LocalRunResult, run_local

pytestmark = pytest.mark.slow

POLICY = REPO_ROOT / "config" / "policies" / "credit_risk.yaml"
BEFORE_IMAGE = {
    "prepare-data",
    "validate-data",
    "build-training-set",
    "train-model",
    "evaluate-model",
    "decide",
}


def _policy(path: Path, **floors: float) -> Path:
    doc = yaml.safe_load(POLICY.read_text())
    # The small world's 30-day window and smallest groups are below the production minimums,
    # and its top score band is thin (142 loans): a 10-point materiality margin suits it.
    doc["samples"].update(min_reference=200, min_current=100)
    doc["fairness"]["min_group_size"] = 30
    doc["calibration"]["min_abs_diff"] = 0.10
    doc["floors"].update(floors)
    path.write_text(yaml.safe_dump(doc))
    return path


def _image_built_elsewhere(ws: Path, version: str) -> str:
    """The build record `mlgate image build` writes after pushing (what skip mode pins)."""
    repo, digest = "127.0.0.1:5555/credit_risk", "sha256:" + "ab" * 32
    record = ws / "images" / "credit_risk" / f"{version}.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(
        json.dumps(
            {
                "model": "credit_risk",
                "version": version,
                "repository": repo,
                "reference": f"{repo}:{version}-test",
                "digest": digest,
                "labels": {},
                "sbom_digest": "sha256:" + "cd" * 32,
                "created": "2026-11-22T00:00:00+00:00",
                "content_hash": "test",
                "base": "test",
            }
        )
    )
    return f"{repo}@{digest}"


@pytest.fixture(scope="session")
def pipeline_runs(tmp_path_factory: pytest.TempPathFactory, small_world: Any) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("pipeline")
    ws = root / "ws"
    (ws / "data").mkdir(parents=True)
    (ws / "data" / "world").symlink_to(small_world[0], target_is_directory=True)
    out: dict[str, Any] = {"ws": ws}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLGATE_WORKSPACE", str(ws))
        # The small world's policy is this run's reviewed policy (the platform's setting):
        # promote verifies a report only against the policy in force, never a run's argument.
        reviewed = root / "policies"
        reviewed.mkdir()
        _policy(reviewed / "credit_risk.yaml")
        mp.setenv("MLGATE_POLICY_DIR", str(reviewed))
        out["policy_dir"] = reviewed
        settings = load_settings()
        out["image"] = _image_built_elsewhere(ws, "1")
        events: list[tuple[str, str]] = []
        out["pass"] = run_local(
            "training",
            settings,
            arguments={"policy": "", "image_build": "skip"},
            progress=lambda task, what: events.append((task, what)),
        )
        out["events"] = events
        out["fail"] = run_local(
            "training",
            settings,
            arguments={
                "policy": str(_policy(root / "fail.yaml", min_auc=0.99)),
                "image_build": "skip",
            },
        )
        out["settings"] = settings
    return out


def _report(ws: Path, version: str) -> dict[str, Any]:
    return json.loads(
        (ws / "reports" / "gates" / f"credit_risk-v{version}-dev" / "report.json").read_text()
    )


def test_passing_run_registers_reports_and_opens_the_promotion(pipeline_runs) -> None:
    from mlgate.gitops.pr import list_prs
    from mlgate.training.registry import connect, resolve_version

    run: LocalRunResult = pipeline_runs["pass"]
    ws: Path = pipeline_runs["ws"]
    assert run.status == "SUCCESS", Path(run.log).read_text()[-3000:]
    ran = set(run.ran)
    assert BEFORE_IMAGE <= ran
    assert sum(t.startswith("run-gate") for t in ran) == 6  # one task per gate
    assert {"build-image", "open-promotion"} <= ran
    assert all(t.status == "SUCCESS" for t in run.tasks)
    # Progress was reported as tasks started and finished.
    assert ("train-model", "running") in pipeline_runs["events"]
    assert ("open-promotion", "SUCCESS") in pipeline_runs["events"]

    settings = pipeline_runs["settings"]
    mv = resolve_version(connect(settings), "credit_risk", "1")
    assert str(mv.version) == "1"

    report = _report(ws, "1")
    assert report["challenger"] == "1" and report["env"] == "dev"
    assert report["verdict"] == "PASS"
    assert {g["name"] for g in report["gates"]} == {
        "performance", "calibration", "drift", "fairness", "pnl", "swap",
    }  # fmt: skip
    # The pipeline's output is the gate report (HTML), as the Kubeflow UI shows it.
    html = Path(run.outputs["Output"]["uri"])
    assert "credit_risk" in html.read_text()

    prs = {pr.branch: pr for pr in list_prs(settings)}
    pr = prs["promote/credit_risk-1-dev"]
    assert pr.version == "1" and pr.env == "dev"
    assert pr.trailers["image"] == [pipeline_runs["image"]]
    assert pr.trailers["gate-result"] == ["PASS"]


def test_failing_gate_stops_before_the_image_step(pipeline_runs) -> None:
    from mlgate.gitops.pr import list_prs

    run: LocalRunResult = pipeline_runs["fail"]
    ws: Path = pipeline_runs["ws"]
    # A gate FAIL is a decision, not a crash: the run ends green, blocked, with the report.
    assert run.status == "SUCCESS", Path(run.log).read_text()[-3000:]
    assert BEFORE_IMAGE <= set(run.ran)
    assert "build-image" not in run.ran and "open-promotion" not in run.ran
    report = _report(ws, "2")
    perf = next(g for g in report["gates"] if g["name"] == "performance")
    assert perf["status"] == "FAIL"
    assert report["verdict"] == "FAIL"
    assert Path(run.outputs["Output"]["uri"]).is_file()
    branches = {pr.branch for pr in list_prs(pipeline_runs["settings"])}
    assert not any(b.startswith("promote/credit_risk-2-") for b in branches)


def test_monitoring_steps_on_the_merged_version(pipeline_runs, tmp_path: Path) -> None:
    """After the PR merges, version 1 runs stable in dev: the monitoring steps watch it."""
    from mlgate.gitops.pr import merge_pr
    from mlgate.pipelines import steps

    ws: Path = pipeline_runs["ws"]
    policy = str(_policy(tmp_path / "monitor.yaml"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLGATE_WORKSPACE", str(ws))
        mp.setenv("MLGATE_POLICY_DIR", str(pipeline_runs["policy_dir"]))
        merge_pr(pipeline_runs["settings"], "promote/credit_risk-1-dev", ["carol"])
        # 90 days: in 30 days the small world's 65+ group has ~25 applicants, too few to judge.
        window = steps.monitoring_window(
            "config/models/credit_risk.yaml", policy, "dev", 90, str(tmp_path / "ev")
        )
        assert window.value == "1"
        assert window.metrics["current_rows"] > 100
        paths = {}
        for gate in ("drift", "performance", "fairness"):
            paths[gate] = str(tmp_path / f"{gate}.json")
            steps.run_gate(gate, policy, "dev", str(tmp_path / "ev"), paths[gate])
        results = {g: json.loads(Path(p).read_text())["result"] for g, p in paths.items()}
        # The static world has no labels that matured after the training data ended: the
        # performance gate cannot judge, and says so (never a pass).
        assert results["performance"]["status"] == "INCONCLUSIVE"
        assert "no labels matured since training" in results["performance"]["summary"]
        assert results["fairness"]["status"] == "PASS", results["fairness"]["reasons"]
        assert results["drift"]["status"] in ("PASS", "FAIL"), results["drift"]["reasons"]
        summary = steps.monitoring_summary(
            "dev", "1", "", True, paths, str(tmp_path / "summary.html")
        )
        assert summary.value == "INCONCLUSIVE"
        assert summary.metadata["retrain"] == "yes"
