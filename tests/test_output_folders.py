"""Commands never destroy what they did not create: report and world folders replace only an
absent, empty or mlgate-written folder; anything else is exit 2 naming the path, with the
user's files untouched and nothing half-written next to them."""

from __future__ import annotations

import contextlib
import json
import sys
from io import StringIO
from pathlib import Path

import pytest

from mlgate.cli import app
from mlgate.commands._common import run_guarded
from mlgate.data.world import WorldSpec, generate_world
from mlgate.errors import BadInputError
from mlgate.gates.evaluate import run_gates
from mlgate.gates.policy import GatePolicy
from mlgate.gates.report import write_report
from mlgate.gates.result import GateReport
from mlgate.outdir import MARKER, check_replaceable, new_folder, written_by
from tests.gates_data import holdout

POLICY = "config/policies/credit_risk.yaml"


def _invoke(args: list[str]) -> tuple[int, str]:
    """The CLI as the console script runs it (errors -> exit codes); (code, stderr)."""
    err = StringIO()
    old = sys.argv
    sys.argv = ["mlgate", *args]
    try:
        with contextlib.redirect_stdout(StringIO()), contextlib.redirect_stderr(err):
            code = run_guarded(app)
    finally:
        sys.argv = old
    return code, err.getvalue()


def _foreign(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    thesis = folder / "thesis.docx"
    thesis.write_bytes(b"four years of work")
    return thesis


def _siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir())


def _report(n: int = 2000) -> GateReport:
    h = holdout("weak", "weak", n=n)
    return run_gates(
        model="m",
        challenger="2",
        champion="1",
        env="prod",
        policy=GatePolicy(),
        holdout=h,
        drift=None,
    )


# --- the library function ------------------------------------------------------------------


def test_absent_and_empty_targets_are_written_with_a_marker(tmp_path: Path) -> None:
    for target in (tmp_path / "new" / "deeper", tmp_path / "empty"):
        if target.name == "empty":
            target.mkdir()
        with new_folder(target, "mlgate test") as tmp:
            assert tmp.parent == target.parent and tmp != target
            (tmp / "a.txt").write_text("a")
        assert (target / "a.txt").read_text() == "a"
        assert written_by(target) == "mlgate test"
    assert _siblings(tmp_path / "empty") == ["empty", "new"]  # no temp folders left


def test_a_folder_mlgate_wrote_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with new_folder(target, "mlgate test") as tmp:
        (tmp / "old.txt").write_text("old")
    with new_folder(target, "mlgate test") as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "new.txt"]
    assert _siblings(target) == ["out"]


def test_a_foreign_folder_is_refused_naming_it(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    thesis = _foreign(target)
    with pytest.raises(BadInputError) as exc, new_folder(target, "mlgate test") as tmp:
        (tmp / "x").write_text("x")
    assert str(target) in str(exc.value) and "thesis.docx" in str(exc.value)
    assert thesis.read_bytes() == b"four years of work"
    assert _siblings(target) == ["mine"]
    # A file where the folder should be, or a marker that is not mlgate's (a symlink, junk).
    (tmp_path / "f").write_text("f")
    with pytest.raises(BadInputError, match="not a folder"):
        check_replaceable(tmp_path / "f")
    (target / MARKER).symlink_to(tmp_path / "f")
    with pytest.raises(BadInputError, match="did not write"):
        check_replaceable(target)
    (target / MARKER).unlink()
    (target / MARKER).write_text("not json")
    with pytest.raises(BadInputError, match="did not write"):
        check_replaceable(target)


def test_files_added_after_the_check_are_not_deleted_at_the_swap(tmp_path: Path) -> None:
    """The race: the folder was mlgate's when the run began; a user saved a file into it
    meanwhile and removed the marker. The swap checks again what it is about to delete."""
    target = tmp_path / "out"
    with new_folder(target, "mlgate test") as tmp:
        (tmp / "r.json").write_text("{}")
    with pytest.raises(BadInputError, match="did not write"), new_folder(target, "t") as tmp:
        (tmp / "r.json").write_text("{}")
        (target / MARKER).unlink()
        (target / "notes.txt").write_text("mine")
    assert (target / "notes.txt").read_text() == "mine"
    assert _siblings(target) == ["out"]


def test_an_error_while_writing_leaves_the_target_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with new_folder(target, "mlgate test") as tmp:
        (tmp / "v1").write_text("1")
    with pytest.raises(RuntimeError), new_folder(target, "mlgate test") as tmp:
        (tmp / "v2").write_text("2")
        raise RuntimeError("disk full")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "v1"]
    assert _siblings(target) == ["out"]


def test_the_current_directory_is_never_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for target in (".", "..", str(work)):
        with pytest.raises(BadInputError, match="current directory"):
            check_replaceable(target)
    check_replaceable("report")  # a folder inside it is fine


def test_write_report_keeps_a_users_folder_and_replaces_its_own(tmp_path: Path) -> None:
    report = _report()
    thesis = _foreign(tmp_path / "docs")
    with pytest.raises(BadInputError, match="docs"):
        write_report(tmp_path / "docs", report)
    assert thesis.is_file() and _siblings(thesis.parent) == ["docs"]
    out = tmp_path / "r"
    write_report(out, report)
    (out / "report.md").write_text("stale")
    write_report(out, report)
    assert (out / "report.md").read_text() != "stale"
    assert written_by(out) == "mlgate gates report"


# --- the commands --------------------------------------------------------------------------


def test_gates_run_refuses_a_foreign_report_folder(tmp_path: Path) -> None:
    thesis = _foreign(tmp_path / "mine")
    args = ["gates", "run", "--model", "credit_risk", "--env", "prod", "--policy", POLICY]
    code, err = _invoke([*args, "--report", str(tmp_path / "mine")])
    assert code == 2 and str(tmp_path / "mine") in err.replace("\n", "")
    assert thesis.read_bytes() == b"four years of work"
    assert _siblings(thesis.parent) == ["mine"]


def test_report_dot_is_refused_when_the_current_directory_has_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    thesis = _foreign(tmp_path / "home")
    monkeypatch.chdir(tmp_path / "home")
    policy = str(Path(__file__).resolve().parents[1] / POLICY)
    args = ["gates", "run", "--model", "credit_risk", "--env", "prod", "--policy", policy]
    code, err = _invoke([*args, "--report", "."])
    assert code == 2 and "current directory" in err
    assert sorted(p.name for p in thesis.parent.iterdir()) == ["thesis.docx"]
    code, err = _invoke(["canary", "analyze", "--model", "credit_risk", "--report", "."])
    assert code == 2 and "current directory" in err
    assert sorted(p.name for p in thesis.parent.iterdir()) == ["thesis.docx"]


def test_canary_analyze_refuses_a_foreign_report_folder(tmp_path: Path) -> None:
    thesis = _foreign(tmp_path / "mine")
    code, err = _invoke(
        ["canary", "analyze", "--model", "credit_risk", "--report", str(tmp_path / "mine")]
    )
    assert code == 2 and str(tmp_path / "mine") in err.replace("\n", "")
    assert "did not write" in err
    assert thesis.read_bytes() == b"four years of work"


def test_data_generate_refuses_a_foreign_folder_and_replaces_its_own(tmp_path: Path) -> None:
    thesis = _foreign(tmp_path / "mine")
    base = ["data", "generate", "--n", "500", "--months", "6", "--json"]
    code, err = _invoke([*base, "--out", str(tmp_path / "mine")])
    assert code == 2 and str(tmp_path / "mine") in err.replace("\n", "")
    assert sorted(p.name for p in thesis.parent.iterdir()) == ["thesis.docx"]
    world = tmp_path / "world"
    assert _invoke([*base, "--seed", "1", "--out", str(world)])[0] == 0
    assert written_by(world) == "mlgate data generate"
    assert _invoke([*base, "--seed", "2", "--out", str(world)])[0] == 0
    manifest = json.loads((world / "manifest.json").read_text())
    assert manifest["spec"]["seed"] == 2
    assert _siblings(world) == ["mine", "world"]


def test_generate_world_checks_before_the_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _foreign(tmp_path / "mine")

    def never(*_a: object, **_k: object) -> None:
        raise AssertionError("generated a world it could not write")

    monkeypatch.setattr("mlgate.data.world._write_tables", never)
    monkeypatch.setattr("mlgate.data.world._bureau_table", never)
    with pytest.raises(BadInputError, match="mine"):
        generate_world(WorldSpec(n_applications=500, months=6), tmp_path / "mine")
