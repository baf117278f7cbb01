"""`mlgate audit lineage` on a real git remote, MLflow and registry (tests/fixtures/audit.py):
what ran at a point in time across promotions, canary steps, an abort and a `git revert`
rollback, and every time a version ran, read from git history and MLflow alone."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from mlgate.audit.lineage import EnvAt, lineage_at, version_runs
from mlgate.cli import app
from tests.fixtures.audit import APPROVER, AUTHOR, MERGER, AuditWorld
from tests.inventory_helpers import run_cli

pytestmark = pytest.mark.slow  # a real remote, MLflow and docker-registry (one per session)

MODEL = "credit_risk"


def _at(world: AuditWorld, env: str, day: int, hours: int = 2) -> EnvAt:
    return lineage_at(world.settings(), MODEL, env, world.days[day] + timedelta(hours=hours))


def _running(res: EnvAt) -> tuple:
    canary = (res.canary.version, res.canary.traffic) if res.canary else None
    return (res.stable.version, res.stable.traffic) if res.stable else None, canary


def test_prod_at_each_step_of_promotions_canaries_and_an_abort(audit_env: AuditWorld) -> None:
    w = audit_env
    assert _running(_at(w, "prod", 2)) == (None, None)  # not yet in prod
    first = _at(w, "prod", 3)
    assert _running(first) == (("1", 100), None)
    entered = first.stable.entered
    assert entered is not None and entered.commit == w.commits["v1-prod"]
    assert (entered.change, entered.author, entered.merged_by) == ("promote", AUTHOR, MERGER)
    assert entered.approved_by == [APPROVER]
    assert entered.gate_report is not None and entered.gate_report.verified
    assert first.stable.image == w.image("1")
    assert first.stable.mlflow.run_id == w.runs["1"]
    assert first.stable.mlflow.data_fingerprint == "fp-1"
    assert first.stable.mlflow.feature_service == "credit_risk_v1"
    assert first.stable.mlflow.training_commit == "1" * 40
    # the hour between opening and merging: main still had v1 in stage only
    assert _running(_at(w, "prod", 3, hours=0)) == (None, None)

    started = _at(w, "prod", 6)
    assert _running(started) == (("1", 90), ("2", 10))
    assert started.canary.entered.commit == w.commits["v2-prod"]
    assert started.canary.image == w.image("2")
    assert started.canary.mlflow.run_id == w.runs["2"]
    stepped = _at(w, "prod", 7)
    assert _running(stepped) == (("1", 50), ("2", 50))
    assert [c.change for c in stepped.canary.changes] == ["promote", "canary-set-weight"]
    assert stepped.last_change.commit == w.commits["v2-weight-50"]
    aborted = _at(w, "prod", 8)
    assert _running(aborted) == (("1", 100), None)
    assert aborted.last_change.change == "canary-abort"
    assert aborted.stable.entered.commit == w.commits["v1-prod"]  # still the day-3 promotion


def test_a_canary_promoted_to_stable_carries_its_whole_run(audit_env: AuditWorld) -> None:
    w = audit_env
    res = _at(w, "prod", 13)
    assert _running(res) == (("3", 100), None)
    stable = res.stable
    assert stable.entered.commit == w.commits["v3-promote"]
    assert stable.entered.gate_report.verified  # the canary analysis, verified as of the merge
    assert [c.commit for c in stable.changes] == [
        w.commits["v3-prod"],
        w.commits["v3-weight-50"],
        w.commits["v3-promote"],
    ]
    assert all(c.gate_report.verified for c in stable.changes if c.gate_report)
    assert stable.image == w.image("3")


def test_after_a_git_revert_rollback_the_earlier_version_runs_again(
    audit_env: AuditWorld,
) -> None:
    w = audit_env
    assert _running(_at(w, "stage", 15)) == (("4", 100), None)
    back = _at(w, "stage", 16)
    assert _running(back) == (("3", 100), None)
    assert back.last_change.commit == w.commits["v4-stage-rollback"]
    assert back.last_change.change == "rollback"
    # the version that runs again is described by its own promotion, not by the revert
    assert back.stable.entered.commit == w.commits["v3-stage"]
    assert back.stable.image == w.image("3")
    assert back.stable.mlflow.run_id == w.runs["3"]


def test_every_time_a_version_ran(audit_env: AuditWorld) -> None:
    w = audit_env
    runs = version_runs(w.settings(), MODEL, "2")
    got = [(p.env, p.role, p.traffic, p.since_commit, p.until_commit) for p in runs.periods]
    assert got == [
        ("dev", "stable", 100, w.commits["v2-dev"], w.commits["v3-dev"]),
        ("stage", "stable", 100, w.commits["v2-stage"], w.commits["v3-stage"]),
        ("prod", "canary", 10, w.commits["v2-prod"], w.commits["v2-weight-50"]),
        ("prod", "canary", 50, w.commits["v2-weight-50"], w.commits["v2-abort"]),
    ]
    assert runs.mlflow.run_id == w.runs["2"]
    assert all(p.facts.entered.approved_by == [APPROVER] for p in runs.periods)

    four = version_runs(w.settings(), MODEL, "004", env="stage")  # canonical spelling
    assert four.version == "4"
    assert [(p.since_commit, p.until_commit) for p in four.periods] == [
        (w.commits["v4-stage"], w.commits["v4-stage-rollback"])
    ]
    prod_one = version_runs(w.settings(), MODEL, "1", env="prod").periods
    # stable's share follows each canary beside it, until v3 replaces it
    assert [(p.traffic, p.until_commit) for p in prod_one] == [
        (100, w.commits["v2-prod"]),
        (90, w.commits["v2-weight-50"]),
        (50, w.commits["v2-abort"]),
        (100, w.commits["v3-prod"]),
        (90, w.commits["v3-weight-50"]),
        (50, w.commits["v3-promote"]),
    ]
    assert version_runs(w.settings(), MODEL, "5", env="prod").periods == []
    stage_five = version_runs(w.settings(), MODEL, "5", env="stage").periods
    assert stage_five[-1].until is None  # still runs on main's tip


def test_cli_json_and_table(audit_env: AuditWorld) -> None:
    w = audit_env
    at = (w.days[7] + timedelta(hours=2)).isoformat()
    res = CliRunner().invoke(
        app, ["audit", "lineage", "--model", MODEL, "--env", "prod", "--at", at, "--json"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert (data["stable"]["version"], data["canary"]["version"]) == ("1", "2")
    assert data["canary"]["traffic"] == 50
    assert data["canary"]["entered"]["approved_by"] == [APPROVER]
    table = CliRunner().invoke(app, ["audit", "lineage", "--model", MODEL, "--env", "prod"])
    assert table.exit_code == 0, table.output
    assert "canary-promote" in table.stdout and w.commits["v3-promote"][:10] in table.stdout
    runs = CliRunner().invoke(app, ["audit", "lineage", "--model", MODEL, "--version", "2"])
    assert runs.exit_code == 0, runs.output
    assert runs.stdout.count("canary 10%") == 1 and runs.stdout.count("canary 50%") == 1
    assert w.image("2") in runs.stdout
    listed = CliRunner().invoke(
        app, ["audit", "lineage", "--model", MODEL, "--version", "2", "--env", "prod", "--json"]
    )
    periods = json.loads(listed.stdout)["periods"]
    assert [(p["role"], p["traffic"], p["facts"]["image"]) for p in periods] == [
        ("canary", 10, w.image("2")),
        ("canary", 50, w.image("2")),
    ]


@pytest.mark.parametrize(
    "args, names",
    [
        (["--env", "prod", "--at", "yesterday"], "--at"),
        (["--env", "prod", "--at", "2026-13-01"], "--at"),
        (["--env", "prod", "--at", "2026-01-01T10:00:00Z; rm -rf /"], "--at"),
        (["--env", "qa"], "environment"),
        (["--version", "2", "--at", "2026-01-01"], "--at"),
        ([], "--env"),
        (["--version", "2.0"], "--version"),
    ],
)
def test_bad_input_exits_2_naming_it(audit_env: AuditWorld, args: list[str], names: str) -> None:
    code, output = run_cli("audit", "lineage", "--model", MODEL, *args)
    assert code == 2, output
    assert names in output
