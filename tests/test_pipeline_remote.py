"""Submit and schedule through kfp.Client against a loopback KFP API server that validates
every request with the pinned kfp-server-api models (tests/fixtures/kfp_api.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mlgate.cli import app
from mlgate.errors import BadInputError, ExternalServiceError
from mlgate.pipelines import catalog, compiling, remote


def _committed_spec(name: str) -> dict:
    return compiling.normalise(catalog.compiled_path(name).read_text())[0]


def test_submit_uploads_the_committed_yaml_and_runs_it(kfp_api_server) -> None:
    result = remote.submit(
        "training",
        kfp_api_server.url,
        experiment="credit-risk",
        run_name="nightly-1",
        params={"env": "stage", "world_applications": 3000},
    )
    assert not kfp_api_server.rejected
    # The server stored exactly the committed pipeline spec, as a named version.
    assert len(kfp_api_server.pipelines) == 1
    pipeline = next(iter(kfp_api_server.pipelines.values()))
    assert pipeline["display_name"] == "mlgate-training"
    version = kfp_api_server.versions[result.pipeline.pipeline_version_id]
    assert version["spec"] == _committed_spec("training")
    assert version["display_name"] == result.pipeline.version_name
    assert result.pipeline.version_name.startswith("training-")
    # One run, in the experiment we named, pointing at that version, with our parameters.
    (run,) = kfp_api_server.runs
    assert run.display_name == "nightly-1"
    assert kfp_api_server.experiments[run.experiment_id]["display_name"] == "credit-risk"
    assert run.pipeline_version_reference.pipeline_version_id == version["pipeline_version_id"]
    assert run.runtime_config.parameters == {"env": "stage", "world_applications": 3000}
    assert result.run_id == run.run_id
    assert result.url.endswith(f"/#/runs/details/{run.run_id}")

    # Submitting the same YAML again reuses the version and the experiment.
    again = remote.submit("training", kfp_api_server.url, experiment="credit-risk")
    assert again.pipeline.uploaded is False
    assert again.pipeline.pipeline_version_id == result.pipeline.pipeline_version_id
    assert len(kfp_api_server.experiments) == 1
    assert len(kfp_api_server.runs) == 2


def test_schedule_sends_a_six_field_cron(kfp_api_server) -> None:
    result = remote.schedule("monitoring", kfp_api_server.url, cron="30 6 * * 1-5")
    assert not kfp_api_server.rejected
    (job,) = kfp_api_server.recurring_runs
    assert job.trigger.cron_schedule.cron == "0 30 6 * * 1-5"
    assert job.mode == "ENABLE"
    assert job.no_catchup is True
    assert int(job.max_concurrency) == 1
    assert kfp_api_server.spec_of(job) == _committed_spec("monitoring")
    assert result.cron == "0 30 6 * * 1-5"
    assert result.recurring_run_id == job.recurring_run_id


def test_server_rejects_what_the_real_api_would(kfp_api_server) -> None:
    """The fixture is strict: an unknown parameter is a 400, surfaced as a clear error."""
    with pytest.raises(ExternalServiceError) as err:
        remote.submit("training", kfp_api_server.url, params={"no_such_param": 1})
    assert "HTTP 400" in str(err.value)
    assert "no_such_param" in str(err.value)
    assert kfp_api_server.runs == []


def test_bad_cron_fails_before_contacting_the_server(kfp_api_server) -> None:
    with pytest.raises(BadInputError, match="expected 5 fields"):
        remote.schedule("monitoring", kfp_api_server.url, cron="0 6 * *")
    assert kfp_api_server.requests == []


def test_unreachable_host_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ExternalServiceError, match="127.0.0.1:9"):
        remote.submit("training", "http://127.0.0.1:9")


def test_cli_submit_and_schedule_json(kfp_api_server) -> None:
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "pipeline",
            "schedule",
            "monitoring",
            "--cron",
            "@daily",
            "--host",
            kfp_api_server.url,
            "--experiment",
            "monitoring",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert body["cron"] == "0 0 0 * * *"
    assert kfp_api_server.recurring_runs[0].trigger.cron_schedule.cron == "0 0 0 * * *"

    res = runner.invoke(
        app,
        ["pipeline", "submit", "training", "--host", kfp_api_server.url, "-p", "env=stage"],
    )
    assert res.exit_code == 0, res.output
    assert kfp_api_server.runs[0].runtime_config.parameters == {"env": "stage"}


def test_cli_bad_cron_exits_2_with_a_clear_message() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mlgate.cli", "pipeline", "schedule", "monitoring"]
        + ["--cron", "0 6 * * 7", "--host", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "use 0 for Sunday" in proc.stderr
