"""The canary analysis on served and logged traffic, end to end on the embedded default.

Two registered versions of the small world run in prod as git says (v1 stable, v2 a 50 %
canary, merged through the promotion PRs), served by `serve_environment` (venv predictors, the
router, the local request-log sink); applications are replayed through the router
(`serving.traffic.send`, what `mlgate traffic replay` does) and `canary analyze` reads the
sink. One served environment for the module; the scenarios run in order on its growing log:
recent traffic has no early outcomes yet -> WAIT, and ABORT once the deadline has passed;
then the canary's server is killed mid-analysis -> ABORT on its failures, never PROMOTE.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from mlgate.canary.replay import period_applications
from mlgate.canary.run import analyze, canary_state
from mlgate.config import PlatformSettings, load_settings
from mlgate.errors import BadInputError
from mlgate.gitops import canary
from mlgate.gitops import pr as prmod
from mlgate.serving.logsink import READ_TOKEN_ENV
from mlgate.serving.supervisor import Served, serve_environment
from mlgate.serving.traffic import send
from tests.fixtures.gitops import write_gate_report
from tests.gitops_helpers import promote_merged

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DAYS = 20  # ~450 applications of the small world: ~220 to each version at 50 %
BATCH = 10  # applications per request: fewer requests and events to log, same rows


def _image_records(settings: PlatformSettings, model: str, versions: list[str]) -> None:
    """Build records as `image build` writes them (the venv runtime serves the version, not
    the image; a promotion pins the recorded image)."""
    for v in versions:
        rec = settings.ws().root / "images" / model / f"{v}.json"
        rec.parent.mkdir(parents=True, exist_ok=True)
        digest = "sha256:" + hashlib.sha256(f"image-{v}".encode()).hexdigest()
        rec.write_text(json.dumps({
            "model": model, "version": v, "repository": "127.0.0.1:5555/mlgate/credit-risk",
            "reference": f"127.0.0.1:5555/mlgate/credit-risk:{v}", "digest": digest}))  # fmt: skip


def _policy(tmp: Path) -> Path:
    """The model's policy with the volume floors of a small world."""
    data = yaml.safe_load((REPO / "config/policies/credit_risk.yaml").read_text())
    data["canary"].update(min_requests=100, min_early_labels=50)
    path = tmp / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def served(
    registered_two_versions: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[PlatformSettings, Served, Path]]:
    first, second = registered_two_versions
    root = tmp_path_factory.mktemp("served") / "ws"
    shutil.copytree(first.workspace, root, symlinks=True)  # its own GitOps remote and reports
    settings = load_settings(workspace=str(root))
    model = first.model
    _image_records(settings, model, [first.version, second.version])
    for env in ("dev", "stage", "prod"):
        promote_merged(settings, first.version, env, write_gate_report(settings, root,
                       first.version, env))  # fmt: skip
    for env in ("dev", "stage"):
        promote_merged(settings, second.version, env, write_gate_report(settings, root,
                       second.version, env))  # fmt: skip
    pr = canary.start(settings, model, "prod", second.version,
                      write_gate_report(settings, root, second.version, "prod"), weight=50)  # fmt: skip
    prmod.merge_pr(settings, pr.branch, ["carol"])
    old = os.environ.get(READ_TOKEN_ENV)
    with serve_environment(settings, model, "prod", runtime="venv", seed=7) as srv:
        os.environ[READ_TOKEN_ENV] = str(srv.sink_read_token_file)
        try:
            yield settings, srv, _policy(root)
        finally:
            if old is None:
                os.environ.pop(READ_TOKEN_ENV, None)
            else:
                os.environ[READ_TOKEN_ENV] = old


def _newest_days(settings: PlatformSettings, model: str) -> str:
    """--from for the newest DAYS of applications (outcomes not matured yet)."""
    from mlgate.gates.collect import newest_application, run_dataset
    from mlgate.training.registry import load_scorer

    state = canary_state(settings, model, "prod")
    ds = run_dataset(settings, load_scorer(settings, model, state.canary_version).run_id)
    return (newest_application(settings, ds) - pd.Timedelta(days=DAYS - 1)).strftime("%Y-%m-%d")


def _period(settings: PlatformSettings, model: str) -> pd.DataFrame:
    """The newest DAYS of applications, without those the serving contract refuses (more than
    a quarter of the features missing: 400 from either version alike, and a refused batch
    would take its valid neighbours with it)."""
    frame, dataset, _window = period_applications(settings, model, "prod",
                                                  _newest_days(settings, model), DAYS)  # fmt: skip
    return frame[frame[dataset.features].isna().mean(axis=1) <= 0.25].reset_index(drop=True)


def _analyze(settings: PlatformSettings, srv: Served, policy: Path, tmp: Path, **kw: Any) -> Any:
    verdict, _paths, _pr = analyze(settings, model=srv.model, env="prod",
                                   requests=str(srv.sink_read_url), policy_file=policy,
                                   report_dir=tmp / "report", **kw)  # fmt: skip
    return verdict


def test_served_traffic_without_outcomes_waits_then_aborts_at_the_deadline(
    served: tuple[PlatformSettings, Served, Path], tmp_path: Path
) -> None:
    settings, srv, policy = served
    frame = _period(settings, srv.model)
    sent = send(srv.router_url, srv.model, frame, concurrency=4, batch=BATCH)
    assert sent.answered == sent.sent and sent.errors == sent.refused == 0 and len(frame) > 250
    assert sum(sent.by_version.values()) == len(frame)
    canary_v = canary_state(settings, srv.model, "prod").canary_version
    v = _analyze(settings, srv, policy, tmp_path)
    data = v.report.data
    # the analysis read exactly what the router logged: each answered request, by who answered
    assert data["requests"] == len(frame)
    assert data["canary_requests"] == sent.by_version[canary_v]
    assert data["requests_without_full_features"] == 0
    gates = {g.name: g for g in v.report.gates}
    assert gates["volume"].status == "PASS"
    assert gates["early_delinquency"].status == "INCONCLUSIVE"  # outcomes not matured yet
    assert v.decision == "wait" and v.exit_code == 3, v.reasons
    started = canary_state(settings, srv.model, "prod").started
    assert started is not None
    late = _analyze(settings, srv, policy, tmp_path / "late",
                    now=started + timedelta(hours=169))  # fmt: skip
    assert late.decision == "abort" and "deadline 168 h" in late.reasons[0]


def test_a_canary_server_killed_mid_analysis_is_aborted_never_promoted(
    served: tuple[PlatformSettings, Served, Path], tmp_path: Path
) -> None:
    settings, srv, policy = served
    os.kill(srv.predictor("canary").pid, signal.SIGKILL)  # the venv server this module started
    frame = _period(settings, srv.model)
    sent = send(srv.router_url, srv.model, frame, concurrency=4, batch=BATCH)
    stable_v = canary_state(settings, srv.model, "prod").stable_version
    failed = len(frame) - sum(sent.by_version.values())
    assert sent.errors > 5 and failed > 50 and set(sent.by_version) == {stable_v}  # stable only
    # as if analysed two minutes later: no failed request can still be in flight
    v = _analyze(settings, srv, policy, tmp_path, now=datetime.now(UTC) + timedelta(minutes=2))
    assert v.decision == "abort" and v.exit_code == 1, v.reasons
    volume = {g.name: g for g in v.report.gates}["volume"]
    assert volume.status == "FAIL" and volume.metrics["canary_errors"] == failed
    assert "does not answer" in volume.reasons[0]


def test_a_period_without_applications_is_bad_input_naming_the_options(
    served: tuple[PlatformSettings, Served, Path],
) -> None:
    settings, srv, _policy = served
    with pytest.raises(BadInputError, match="--from 1990-01-01 --days 3: no applications"):
        period_applications(settings, srv.model, "prod", "1990-01-01", 3)
