"""`mlgate gates run` end to end on a trained, registered model, and its bad-input paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mlgate.gates.collect as gate_collect
from mlgate.cli import app
from mlgate.commands._common import run_guarded
from mlgate.config import DEFAULT_POLICY_DIR
from mlgate.gates.policy import load_policy


def _invoke(args: list[str]) -> tuple[int, str, str]:
    """Run the CLI the way the console script does (errors -> exit codes), capturing output."""
    import contextlib
    import sys
    from io import StringIO

    out, err = StringIO(), StringIO()
    old_argv = sys.argv
    sys.argv = ["mlgate", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run_guarded(app)
    finally:
        sys.argv = old_argv
    return code, out.getvalue(), err.getvalue()


def test_malformed_policy_exits_2_naming_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("drift:\n  psi_act: high\nfairness:\n  four_fiths: 0.8\n")
    code, _, err = _invoke(
        ["gates", "run", "--model", "credit_risk", "--env", "prod", "--policy", str(bad)]
    )
    assert code == 2
    assert str(bad) in err and "drift.psi_act" in err and "fairness.four_fiths" in err


def test_bad_env_override_and_unknown_env_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("environments:\n  prod:\n    overrides:\n      drift: {psi_watch: 0.5}\n")
    code, _, err = _invoke(["gates", "run", "--model", "m", "--env", "prod", "--policy", str(bad)])
    assert code == 2 and "environments.prod.overrides" in err and "psi_watch" in err
    code, _, err = _invoke(
        [
            "gates",
            "run",
            "--model",
            "credit_risk",
            "--env",
            "qa",
            "--policy",
            "config/policies/credit_risk.yaml",
        ]
    )
    assert code == 2 and "'qa'" in err


@pytest.mark.slow
def test_gates_run_on_registered_model(  # type: ignore[no-untyped-def]
    registered_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = registered_model
    out = tmp_path / "report"
    code, stdout, err = _invoke(
        [
            "--workspace",
            str(reg.workspace),
            "gates",
            "run",
            "--model",
            reg.model,
            "--challenger",
            reg.version,
            "--env",
            "stage",
            "--report",
            str(out),
            "--json",
        ]
    )
    data = json.loads(stdout)
    assert code == {"PASS": 0, "FAIL": 1, "INCONCLUSIVE": 3}[data["overall"]], err
    assert data["champion"] is None  # no git stable version: first version, held to floors
    gates = {g["name"]: g for g in data["gates"]}
    assert set(gates) == {"performance", "calibration", "drift", "fairness", "pnl", "swap"}
    perf = gates["performance"]
    assert perf["metrics"]["auc_challenger"] > 0.6, perf
    assert "first version" in perf["summary"]
    # The holdout got the bank's declined applications: the swap set is measurable.
    assert data["data"]["holdout_declined_rows"] > 0
    assert gates["swap"]["metrics"]["swap_ins"] >= 0
    assert gates["drift"]["metrics"]["n_current"] > 0, gates["drift"]
    assert set(gates["fairness"]["details"]["attributes"]) == {"age_band", "sex", "marital_status"}
    # The next decisions are judged too: the newest fairness.recent_days of applications.
    assert gates["fairness"]["metrics"]["n_recent"] == data["data"]["recent_rows"] > 0
    for name in ("report.json", "report.md", "report.html", "evidently_drift.html"):
        assert (out / name).is_file()
    assert data["data"]["mlflow_artifacts"] == f"runs:/{reg.run_id}/gates/stage"
    # The champion comes from git (gitops status); here git says this very version runs
    # stable in dev: identical models, no P&L uplift either way.
    monkeypatch.setattr(gate_collect, "stable_version", lambda _s, _m, env: reg.version)
    # The fixture's world has a few hundred applications a month: a policy that accepts a
    # smaller current window, so the drift gate has something to compare (JSON is YAML).
    policy = load_policy(DEFAULT_POLICY_DIR / "credit_risk.yaml").model_dump(mode="json")
    policy["samples"]["min_current"] = 100
    small = tmp_path / "policy.yaml"
    small.write_text(json.dumps(policy))
    code2, stdout2, _ = _invoke(
        [
            "--workspace",
            str(reg.workspace),
            "gates",
            "run",
            "--model",
            reg.model,
            "--challenger",
            reg.version,
            "--env",
            "dev",
            "--report",
            str(tmp_path / "r2"),
            "--policy",
            str(small),
            "--no-evidently",
            "--json",
        ]
    )
    d2 = json.loads(stdout2)
    assert code2 == 0 and d2["overall"] == "PASS" and d2["enforced"] is False  # dev warns only
    assert d2["champion"] == reg.version and d2["data"]["champion_source"] == "git stable in dev"
    g2 = {g["name"]: g for g in d2["gates"]}
    assert g2["pnl"]["metrics"]["uplift_per_application"] == 0
    assert g2["performance"]["metrics"]["auc_diff"] == 0
    # The champion's own training set is the drift baseline for what the challenger adds:
    # the same training set, so whatever moved is population drift, none the challenger's.
    drift2 = g2["drift"]
    assert drift2["metrics"]["relative_to_champion"] is True
    assert drift2["metrics"]["n_champion_reference"] == d2["data"]["reference_rows"]
    for row in drift2["details"]["features"]:
        assert row["psi_champion"] == pytest.approx(row["psi"])
    assert drift2["metrics"]["act_features"] == [] and drift2["status"] == "PASS"
    # A champion that does not exist is bad input.
    code3, _, err3 = _invoke(
        [
            "--workspace",
            str(reg.workspace),
            "gates",
            "run",
            "--model",
            reg.model,
            "--champion",
            "99",
            "--env",
            "dev",
            "--report",
            str(tmp_path / "r3"),
        ]
    )
    assert code3 == 2 and "99" in err3
    assert not (tmp_path / "r3").exists()
    # A current window without the model's features is bad input naming the columns.
    import pandas as pd

    cur = tmp_path / "current.parquet"
    pd.DataFrame({"loan_amount": [1000.0, 2000.0]}).to_parquet(cur)
    code4, _, err4 = _invoke(
        [
            "--workspace",
            str(reg.workspace),
            "gates",
            "run",
            "--model",
            reg.model,
            "--env",
            "dev",
            "--current",
            str(cur),
            "--report",
            str(tmp_path / "r4"),
        ]
    )
    assert code4 == 2 and "annual_income" in err4 and str(cur) in err4
    assert not (tmp_path / "r4").exists()
