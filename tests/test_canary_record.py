"""The analysis' verdict where Argo CD shows it: the record file, written on a change of state
only, read by the ApplicationSet into the Application's info (issue 16)."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from mlgate.canary.record import (
    AnalysisRecord,
    exit_code_scheduled,
    make_record,
    parse_record,
    record_path,
    record_verdict,
    render_record,
)
from mlgate.config import load_settings
from mlgate.gitops.overlay import RELEASE_FILE, Release, overlay_dir
from mlgate.gitops.repo import GitopsRepo
from tests.gitops_helpers import MODEL, cli

REPO_ROOT = Path(__file__).resolve().parents[1]
APPSET = REPO_ROOT / "argocd" / "applicationset.yaml"
CRONJOB = REPO_ROOT / "manifests" / "components" / "canary" / "canary-analysis-cronjob.yaml"
T0 = datetime(2026, 11, 30, 9, 17, tzinfo=UTC)


def _rec(decision="wait", weight=10, not_passing=("early_delinquency",), reasons=None, hour=0):
    return make_record(
        model=MODEL,
        env="prod",
        decision=decision,
        stable_version="1",
        canary_version="2",
        weight=weight,
        not_passing=list(not_passing),
        reasons=reasons or [f"early_delinquency: {120 + hour} of 200 labels"],
        now=T0.replace(hour=9 + hour),
        started=T0,
        deadline_hours=168,
        report_sha256=f"{hour:064x}",
        evidence=f"runs:/abc/gate-reports/{hour:064x}",
    )


def test_record_round_trips_and_says_when_the_canary_is_aborted() -> None:
    rec = _rec(reasons=["line one\nline two"])
    assert rec.deadline == "2026-12-07T09:17:00Z" and rec.reasons == "line one line two"
    assert parse_record(render_record(rec), "x") == rec
    assert _rec(hour=5).state_key() == rec.state_key()  # counts and time move: same state
    assert _rec(weight=25).state_key() != rec.state_key()
    assert _rec(decision="advance", not_passing=()).state_key() != rec.state_key()


def test_scheduled_run_exits_0_on_wait_only() -> None:
    """Argo CD's CronJob health turns Degraded after a failed run: a WAIT must not fail."""
    assert exit_code_scheduled("wait", 3) == 0
    assert exit_code_scheduled("abort", 1) == 1
    assert exit_code_scheduled("advance", 0) == 0
    args = yaml.safe_load(CRONJOB.read_text())["spec"]["jobTemplate"]["spec"]["template"]["spec"][
        "containers"
    ][0]["args"]
    assert "--scheduled" in args and "--act" in args
    code, out, _ = cli("canary", "analyze", "--help")
    assert code == 0 and "--scheduled" in out


def test_recorded_on_main_only_when_the_state_changes(gitops_ws: Path) -> None:
    settings = load_settings()
    first = record_verdict(settings, _rec())
    assert first is not None
    assert record_verdict(settings, _rec(hour=1)) is None  # an hour later, still waiting
    third = record_verdict(settings, _rec(decision="advance", not_passing=(), hour=2))
    assert third is not None and third != first
    remote = GitopsRepo.locate(settings).remote

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", f"--git-dir={remote}", *args], capture_output=True, text=True, check=True
        ).stdout

    text = git("show", f"main:{record_path(MODEL, 'prod')}")
    rec = parse_record(text, "main")
    assert rec is not None and (rec.verdict, rec.since) == ("ADVANCE", "2026-11-30T11:17:00Z")
    # two record commits, each touching only the record: never a change of an overlay
    touched = git("log", "--format=", "--name-only", "main", "--", "canary-analysis").split()
    assert touched == [record_path(MODEL, "prod")] * 2
    overlays = git("log", "--format=%H", "main", "--", "manifests/models").split()
    assert first not in overlays and third not in overlays


def _template_refs(text: str, root: str) -> set[str]:
    return (
        set(re.findall(rf"\.{root}\.([a-z_]+)", text))
        | set(re.findall(rf'index \.{root} "([a-z_]+)"', text))
        | set(re.findall(rf'hasKey \.{root} "([a-z_]+)"', text))
    )


def test_applicationset_reads_what_the_writers_write() -> None:
    """The Application info reads release.yaml's `data` (Release.data(), its one writer) and
    the record's `analysis` (AnalysisRecord): every key the template names exists there, the
    generators' file patterns match the files the writers put, and both give the same
    `values.app` for an environment (the merge key)."""
    doc = yaml.safe_load(APPSET.read_text())
    text = APPSET.read_text()
    release = Release(
        model=MODEL,
        env="prod",
        stable_version="1",
        stable_image="r@sha256:" + "1" * 64,
        canary_version="2",
        canary_image="r@sha256:" + "2" * 64,
        canary_weight=10,
        shadow_version="3",
        shadow_image="r@sha256:" + "3" * 64,
    )
    assert _template_refs(text, "data") <= set(release.data())
    assert _template_refs(text, "analysis") <= set(AnalysisRecord.model_fields)
    assert {"verdict", "weight", "deadline", "evidence", "since"} <= _template_refs(
        text, "analysis"
    )
    names = [i["name"] for i in doc["spec"]["template"]["spec"]["info"]]
    assert {"Phase", "Canary", "Canary analysis", "Analysis deadline", "Analysis evidence"} <= set(
        names
    )
    merge = doc["spec"]["generators"][0]["merge"]
    assert merge["mergeKeys"] == ["values"]
    rel_gen, rec_gen = (g["git"] for g in merge["generators"])
    assert fnmatch.fnmatch(
        f"{overlay_dir(MODEL, 'prod')}/{RELEASE_FILE}", rel_gen["files"][0]["path"]
    )
    assert fnmatch.fnmatch(record_path(MODEL, "prod"), rec_gen["files"][0]["path"])
    assert not fnmatch.fnmatch(record_path(MODEL, "prod"), "manifests/models/*")
    # the merge key: `{{ .data.model }}/{{ .data.env }}` == `{{ .analysis.model }}/{{ .analysis.env }}`
    key = {
        "release": rel_gen["values"]["app"].replace(".data.", "."),
        "record": rec_gen["values"]["app"].replace(".analysis.", "."),
    }
    assert key["release"] == key["record"]
    assert rec_gen["pathParamPrefix"] and "pathParamPrefix" not in rel_gen


@pytest.mark.parametrize("bad", ["\x1b[31m", "\u202e"])
def test_record_refuses_unsafe_text(bad: str) -> None:
    with pytest.raises(Exception, match="analysis record"):
        _rec(reasons=[f"drift{bad}"])
