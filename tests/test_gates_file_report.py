"""A gate report another runner wrote (a pipeline run's `report_files`) kept beside the
workspace's own reports (`gates.run.file_report`), where the demo page lists them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlgate.config import load_settings
from mlgate.errors import BadInputError
from mlgate.gates.result import GateReport, GateStatus
from mlgate.gates.run import default_report_dir, file_report


def _report(folder: Path, **fields: str) -> Path:
    folder.mkdir(parents=True)
    doc = GateReport(
        model=fields.get("model", "credit_risk"),
        challenger=fields.get("challenger", "1"),
        champion=None,
        env=fields.get("env", "dev"),
        overall=GateStatus.PASS,
        verdict=GateStatus.PASS,
    )
    (folder / "report.json").write_text(doc.model_dump_json())
    (folder / "report.html").write_text("<html></html>")
    return folder


def test_a_pipeline_report_is_kept_where_the_workspace_keeps_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLGATE_WORKSPACE", str(tmp_path / "ws"))
    settings = load_settings()
    src = _report(tmp_path / "kfp" / "decide" / "report_files")
    out = file_report(settings, src)
    assert out == default_report_dir(settings, "credit_risk", "1", "dev")
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json"]
    assert (out / "report.json").read_bytes() == (src / "report.json").read_bytes()
    (src / "report.html").write_text("<html>again</html>")
    assert (file_report(settings, src) / "report.html").read_text() == "<html>again</html>"
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temp folder left


@pytest.mark.parametrize(
    "fields", [{"model": "../../../escaped"}, {"env": "dev/../../x"}, {"challenger": "1/2"}]
)
def test_names_from_the_file_never_make_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fields: dict[str, str]
) -> None:
    monkeypatch.setenv("MLGATE_WORKSPACE", str(tmp_path / "ws"))
    src = _report(tmp_path / "src", **fields)
    with pytest.raises(BadInputError, match="report.json: "):
        file_report(load_settings(), src)
    assert list(tmp_path.rglob("report.json")) == [src / "report.json"]  # nothing copied


def test_a_folder_without_a_report_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLGATE_WORKSPACE", str(tmp_path / "ws"))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "report.json").write_text(json.dumps({"model": "credit_risk"}))
    with pytest.raises(BadInputError, match=r"src/report.json: not a gate report"):
        file_report(load_settings(), tmp_path / "src")
