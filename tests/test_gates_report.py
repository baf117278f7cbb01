"""Reports: the files promotion tooling and reviewers read, written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlgate.gates.evaluate import run_gates
from mlgate.gates.policy import GatePolicy
from mlgate.gates.report import to_markdown, write_report
from mlgate.gates.verify import parse_report
from tests.gates_data import drift_data, holdout


def test_report_files_and_contract(tmp_path: Path) -> None:
    h, d = holdout("weak", "weak", n=6000), drift_data(n_ref=3000, n_cur=2000, shift={"f2": 1.5})
    # The champion was trained on data like today's: f2's shift is the challenger's own.
    d.champion_reference = drift_data(n_cur=3000, shift={"f2": 1.5}, seed=1).current
    policy = GatePolicy()
    report = run_gates(
        model="credit_risk",
        challenger="2",
        champion="1",
        env="stage",
        policy=policy,
        holdout=h,
        drift=d,
    )
    paths = write_report(tmp_path / "r", report, holdout=h, drift=d)
    assert set(paths) == {"report.json", "report.md", "report.html", "evidently_drift.html"}
    data = json.loads(paths["report.json"].read_text())
    for key in ("model", "challenger", "champion", "env", "overall", "gates"):
        assert key in data
    assert data["overall"] == "FAIL" and data["champion"] == "1"
    assert {g["name"] for g in data["gates"]} >= {"performance", "drift", "fairness", "pnl"}
    assert all({"name", "status", "blocking", "summary"} <= set(g) for g in data["gates"])
    md = paths["report.md"].read_text()
    assert "| drift | ❌ FAIL |" in md and "f2" in md
    page = paths["report.html"].read_text()
    assert page.count("data:image/png;base64,") == 5  # ROC, calibration, drift, groups, P&L
    assert "PSI of today" in page  # the drift figure, champion markers included, was drawn
    assert not [w for w in data.get("warnings", []) if "plots not drawn" in w]
    ev = paths["evidently_drift.html"].read_text()
    assert "psi" in ev.lower()
    assert (
        parse_report((tmp_path / "r" / "report.json").read_bytes(), "r").overall == report.overall
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_failed_write_leaves_previous_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = holdout("weak", "weak", n=3000)
    report = run_gates(
        model="m",
        challenger="2",
        champion="1",
        env="prod",
        policy=GatePolicy(),
        holdout=h,
        drift=None,
    )
    out = tmp_path / "r"
    write_report(out, report, holdout=h)
    before = (out / "report.json").read_text()

    def boom(*_a: object, **_k: object) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr("mlgate.gates.report.to_html", boom)
    with pytest.raises(RuntimeError):
        write_report(out, report, holdout=h)
    assert (out / "report.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r"]


def test_markdown_first_version_mentions_floors() -> None:
    h = holdout("true", None, n=4000)
    report = run_gates(
        model="m",
        challenger="1",
        champion=None,
        env="dev",
        policy=GatePolicy(),
        holdout=h,
        drift=None,
    )
    md = to_markdown(report)
    assert "first version" in md and "warn-only" in md
