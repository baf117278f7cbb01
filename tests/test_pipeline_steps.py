"""The step functions the components call, without Kubeflow: evidence files, one gate per
step, the decision and the local runner's log parsing (the monitor step: test_monitor_one)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgate.config import REPO_ROOT
from mlgate.errors import BadInputError
from mlgate.gates.inputs import DriftData, HoldoutScores
from mlgate.pipelines import evidence
from mlgate.pipelines.local import _LogTap
from mlgate.pipelines.steps import gates as steps

POLICY = str(REPO_ROOT / "config" / "policies" / "credit_risk.yaml")


def _holdout(n: int = 4000, *, informative: bool = True, seed: int = 3) -> HoldoutScores:
    rng = np.random.default_rng(seed)
    risk = rng.uniform(0.01, 0.4, n)
    y = (rng.random(n) < risk).astype(float)
    pd_ch = risk if informative else rng.uniform(0.01, 0.4, n)
    groups = pd.DataFrame({"sex": rng.choice(["F", "M"], n)})
    return HoldoutScores(
        y=y,
        pd_challenger=pd_ch,
        amount=np.full(n, 10_000.0),
        order=pd.date_range("2025-01-01", periods=n, freq="h", tz="UTC").to_numpy(),
        groups=groups,
    )


def _drift(n: int = 3000) -> DriftData:
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(["a", "b"], n)})
    cur = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(["a", "b"], n)})
    return DriftData(ref, cur, numeric=["x"], categorical=["c"])


def _save(folder: Path, holdout: HoldoutScores) -> Path:
    meta = {"model": "credit_risk", "challenger": "7", "champion": None, "why_missing": {}}
    evidence.save(folder, holdout=holdout, drift=_drift(), meta=meta)
    return folder


def test_evidence_round_trip(tmp_path: Path) -> None:
    h = _holdout(500)
    folder = _save(tmp_path / "ev", h)
    back = evidence.holdout(folder)
    assert back is not None
    np.testing.assert_array_equal(back.y, h.y)
    np.testing.assert_array_equal(back.pd_challenger, h.pd_challenger)
    assert back.pd_champion is None
    assert list(back.groups["sex"]) == list(h.groups["sex"])  # type: ignore[index]
    d = evidence.drift(folder)
    assert d is not None and d.numeric == ["x"] and len(d.current) == 3000
    assert d.champion_reference is None and evidence.recent(folder) is None
    assert evidence.meta(folder)["challenger"] == "7"
    # With a champion: its training set and scores, and the recent decisions, travel too.
    drift = _drift()
    drift.champion_reference = drift.reference.head(100)
    drift.champion_current_score = np.linspace(0, 1, len(drift.current))
    recent = _holdout(300, seed=9)
    meta = {"model": "credit_risk", "challenger": "7", "champion": "6", "why_missing": {}}
    evidence.save(tmp_path / "ev2", holdout=h, drift=drift, meta=meta, recent=recent)
    d2 = evidence.drift(tmp_path / "ev2")
    assert d2 is not None and d2.champion_reference is not None
    pd.testing.assert_frame_equal(d2.champion_reference, drift.champion_reference)
    np.testing.assert_array_equal(d2.champion_current_score, drift.champion_current_score)
    assert d2.champion_reference_score is None
    r2 = evidence.recent(tmp_path / "ev2")
    assert r2 is not None
    np.testing.assert_array_equal(r2.pd_challenger, recent.pd_challenger)


def test_gate_steps_and_decision(tmp_path: Path) -> None:
    good = _save(tmp_path / "good", _holdout())
    out = steps.run_gate("performance", POLICY, "stage", str(good), str(tmp_path / "perf.json"))
    assert out.value == "PASS"
    assert out.metrics["auc_challenger"] > 0.65 and out.metrics["pass"] == 1.0

    bad = _save(tmp_path / "bad", _holdout(informative=False))
    results = []
    for gate in ("performance", "drift"):
        res = steps.run_gate(gate, POLICY, "stage", str(bad), str(tmp_path / f"{gate}.json"))
        results.append(str(tmp_path / f"{gate}.json"))
        if gate == "performance":
            assert res.value == "FAIL"  # AUC ~0.5, below the floor
    decision = steps.decide(
        POLICY, "stage", "7", str(bad), results, str(tmp_path / "r.html"), str(tmp_path / "rep")
    )
    assert decision.value == "FAIL"
    assert decision.metrics["gate_performance_pass"] == 0.0
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["challenger"] == "7" and report["verdict"] == "FAIL"
    assert (tmp_path / "rep" / "report.md").is_file()
    assert "performance" in (tmp_path / "r.html").read_text()

    with pytest.raises(BadInputError, match="unknown gate"):
        steps.run_gate("vibes", POLICY, "stage", str(bad), str(tmp_path / "x.json"))


def test_log_tap_reports_task_progress(tmp_path: Path) -> None:
    lines: list[str] = []
    with open(tmp_path / "log", "w") as fh:
        tap = _LogTap(fh, lines.append)
        tap.write("12:00 - INFO - Executing task \x1b[96m'train-model'\x1b[0m\n12:01 - INFO")
        tap.write(" - Task 'train-model' finished with status \x1b[92mSUCCESS\x1b[0m\n")
    assert lines == [
        "12:00 - INFO - Executing task 'train-model'",
        "12:01 - INFO - Task 'train-model' finished with status SUCCESS",
    ]
    assert "\x1b[96m" in (tmp_path / "log").read_text()  # the log file keeps kfp's output
