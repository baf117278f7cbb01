"""The training pipeline end to end with Kubeflow's local runner, every task isolated as a pod.

Every task runs inside the pushed platform image (tests/fixtures/platform_image.py, by digest),
started as a container runner starts a pod (mlgate.packaging.container_run.image_tasks): the
image's Python and project files, uid 10001, a read-only root, its own empty workspace removed
when it ends (mlgate.pipelines.local), and mounted only the pipeline root (the artifacts) and
the volumes a pod would get: the data source, the reviewed policies, the GitOps remote (a bare
repository, read-only). It reaches the real `mlflow server` process over loopback.
A first run with a policy whose sample-size minimums suit the small world registers version 1
and passes every gate; its images are configured as built elsewhere (`image_build=skip`) and
none was built for the new version, so the promotion step proposes nothing and says so. A CI
job then builds it (here: the MLflow tags `mlgate image build` writes) and the promotion step
opens the PR from the run's own gate-report artifact. A second run under a policy override
that makes the performance gate fail registers version 2 and stops before the image step, its
output being the gate report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlgate.config import REPO_ROOT, load_settings
from mlgate.packaging.container_run import Bind, image_tasks
from mlgate.pipelines.local import LocalRunResult, gate_report_dir, run_local
from tests.fixtures.services import gitops_remote

# The first test to use the platform image on a fresh machine also builds its cached
# environment layer (docs/pipelines.md "Test budget": ~18 min cold on a loaded 2-core box).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2700)]

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


IMAGE = "127.0.0.1:5555/credit_risk@sha256:" + "ab" * 32


def _report_files(run: LocalRunResult) -> Path:
    """The decision step's `report_files` artifact (report.json/.md/.html) of a run."""
    return gate_report_dir(run)  # a failed run: which task failed and how


def _report(run: LocalRunResult) -> dict[str, Any]:
    return json.loads((_report_files(run) / "report.json").read_text())


@pytest.fixture(scope="session")
def pipeline_runs(
    tmp_path_factory: pytest.TempPathFactory,
    platform_image_pushed: Any,
    small_world: Any,
    mlflow_service: str,
) -> dict[str, Any]:
    from mlgate.pipelines.steps import release
    from mlgate.records.tags import image_tags
    from mlgate.training.track import tag_version

    root = tmp_path_factory.mktemp("pipeline")
    ws = root / "ws"
    # The CLI's workspace holds a world (the runner hands it to the monitoring pipeline as its
    # data source); the tasks never see this workspace: they read the data source they are
    # given (the training tasks a copy of it, the `data` artifact).
    (ws / "data").mkdir(parents=True)
    (ws / "data" / "world").symlink_to(small_world[0], target_is_directory=True)
    out: dict[str, Any] = {"ws": ws}
    remote = gitops_remote(root)
    run_policies = root / "run-policies"  # policies handed to a run as a parameter
    run_policies.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLGATE_WORKSPACE", str(ws))
        mp.setenv("MLGATE_MLFLOW__TRACKING_URI", mlflow_service)
        mp.setenv("MLGATE_GITOPS__REMOTE", str(remote))
        # The small world's policy is this run's reviewed policy (the platform's setting):
        # promote verifies a report only against the policy in force, never a run's argument.
        reviewed = root / "policies"
        reviewed.mkdir()
        _policy(reviewed / "credit_risk.yaml")
        mp.setenv("MLGATE_POLICY_DIR", str(reviewed))
        out["policy_dir"] = reviewed
        settings = load_settings()
        data = {"data_source": str(small_world[0]), "image_build": "skip"}
        events: list[tuple[str, str]] = []
        volumes = [
            Bind(path=str(ws / "kfp"), writable=True),  # the pipeline root: artifacts, settings
            Bind(path=str(small_world[0])),
            Bind(path=str(reviewed)),
            Bind(path=str(run_policies)),
            Bind(path=str(remote)),
        ]
        (ws / "kfp").mkdir(parents=True)
        pushed = platform_image_pushed
        with image_tasks(pushed.settings, pushed.image, volumes) as wrap:
            out["pass"] = run_local(
                "training",
                settings,
                arguments={"policy": "", **data},
                progress=lambda task, what: events.append((task, what)),
                wrap=wrap,
            )
            out["events"] = events
            # A CI job builds version 1's image and records it where pods find it: MLflow.
            repo, digest = IMAGE.split("@")
            tag_version(settings, "credit_risk", "1", image_tags(repo, digest))
            out["promotion"] = release.open_promotion(
                "credit_risk",
                "1",
                "dev",
                "",
                str(_report_files(out["pass"])),
                str(root / "pr.json"),
            )
            out["fail"] = run_local(
                "training",
                settings,
                arguments={
                    "policy": str(_policy(run_policies / "fail.yaml", min_auc=0.99)),
                    **data,
                },
                wrap=wrap,
            )
        out["settings"] = settings
    return out


def test_passing_run_registers_reports_and_opens_the_promotion(pipeline_runs) -> None:
    from mlgate.gitops.pr import list_prs
    from mlgate.training.registry import connect, resolve_version

    run: LocalRunResult = pipeline_runs["pass"]
    ws: Path = pipeline_runs["ws"]
    assert run.status == "SUCCESS", Path(run.log).read_text()[-3000:]
    ran = set(run.ran)
    assert BEFORE_IMAGE <= ran
    assert sum(t.startswith("run-gate") for t in run.ran) == 6  # one task per gate
    assert {"build-image", "open-promotion"} <= ran
    assert all(t.status == "SUCCESS" for t in run.tasks), [(t.name, t.status) for t in run.tasks]
    # Progress was reported as tasks started and finished.
    assert ("train-model", "running") in pipeline_runs["events"]
    assert ("open-promotion", "SUCCESS") in pipeline_runs["events"]

    settings = pipeline_runs["settings"]
    mv = resolve_version(connect(settings), "credit_risk", "1")
    assert str(mv.version) == "1"

    report = _report(run)
    assert report["challenger"] == "1" and report["env"] == "dev"
    assert report["verdict"] == "PASS"
    assert {g["name"] for g in report["gates"]} == {
        "performance", "calibration", "drift", "fairness", "pnl", "swap",
    }  # fmt: skip
    # The pipeline's output is the gate report (HTML), as the Kubeflow UI shows it.
    html = Path(run.outputs["Output"]["uri"])
    assert "credit_risk" in html.read_text()

    # Every task's workspace was removed when it ended (a pod's filesystem goes with the pod).
    assert not any((ws / "kfp" / "tasks").iterdir())
    # No image was built for the new version yet: the promotion step proposed nothing.
    (said_file,) = Path(run.pipeline_root).rglob("open-promotion/pull_request")
    said = json.loads(said_file.read_text())
    assert said["opened"] is False and "no image for credit_risk 1" in said["reason"]

    # Once CI recorded the image in MLflow, the promotion from the run's report artifact opens.
    assert pipeline_runs["promotion"].metadata["opened"] is True
    prs = {pr.branch: pr for pr in list_prs(settings)}
    pr = prs["promote/credit_risk-1-dev"]
    assert pr.version == "1" and pr.env == "dev"
    assert pr.trailers["image"] == [IMAGE]
    assert pr.trailers["gate-result"] == ["PASS"]


def test_failing_gate_stops_before_the_image_step(pipeline_runs) -> None:
    from mlgate.gitops.pr import list_prs

    run: LocalRunResult = pipeline_runs["fail"]
    # A gate FAIL is a decision, not a crash: the run ends green, blocked, with the report.
    assert run.status == "SUCCESS", Path(run.log).read_text()[-3000:]
    assert BEFORE_IMAGE <= set(run.ran)
    assert "build-image" not in run.ran and "open-promotion" not in run.ran
    report = _report(run)
    perf = next(g for g in report["gates"] if g["name"] == "performance")
    assert perf["status"] == "FAIL"
    assert report["verdict"] == "FAIL"
    assert Path(run.outputs["Output"]["uri"]).is_file()
    branches = {pr.branch for pr in list_prs(pipeline_runs["settings"])}
    assert not any(b.startswith("promote/credit_risk-2-") for b in branches)


def test_monitoring_pipeline_on_the_merged_version(pipeline_runs, tmp_path: Path) -> None:
    """After the PR merges, version 1 runs stable in dev: the monitoring pipeline watches it,
    its task in its own empty workspace, reading the applications from the data source it is
    handed (the version's run recorded the training task's copy, which a pod never sees)."""
    from mlgate.gitops.pr import merge_pr

    ws: Path = pipeline_runs["ws"]
    policy = str(_policy(tmp_path / "monitor.yaml"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLGATE_WORKSPACE", str(ws))
        mp.setenv("MLGATE_POLICY_DIR", str(pipeline_runs["policy_dir"]))
        settings = pipeline_runs["settings"]  # the same services as the runs
        mp.setenv("MLGATE_MLFLOW__TRACKING_URI", str(settings.mlflow.tracking_uri))
        mp.setenv("MLGATE_GITOPS__REMOTE", str(settings.gitops.remote))
        merge_pr(settings, "promote/credit_risk-1-dev", ["carol"])
        # The one monitor (mlgate monitor's run_monitor) on git's stable version in dev; 90
        # days: in 30 days the small world's 65+ group has ~25 applicants, too few to judge.
        # No data_source argument: the runner hands the task the workspace's world.
        run = run_local(
            "monitoring",
            load_settings(),
            arguments={"policy": policy, "env": "dev", "window_days": 90},
        )
    assert run.status == "SUCCESS", Path(run.log).read_text()[-3000:]
    assert run.ran == ["monitor"]
    assert not any((ws / "kfp" / "tasks").iterdir())  # its workspace went with the task
    (report_file,) = Path(run.pipeline_root).rglob("monitor/monitor_report")
    report = json.loads(report_file.read_text())
    assert report["version"] == "1"
    names = [c["name"] for c in report["checks"]]
    assert names == ["performance", "calibration", "early_delinquency", "drift", "fairness"]
    assert report["data"]["recent_rows"] > 0  # it read the applications it was handed
    # retrain_on_alert is off by default: the branch did not run, whatever the verdict.
    assert "trigger-retrain" not in run.ran
