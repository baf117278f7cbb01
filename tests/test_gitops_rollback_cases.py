"""Rollback and quarantine agree with what serves (issue 16), each case on a real git remote.

The rule (`quarantine.quarantined_by_revert`): a revert quarantines exactly the versions that
ran in the environment before it and run there in no role after it. `mlgate rollback` writes
that, `pr merge` refuses a rollback whose quarantine.yaml says anything else.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlgate.config import PlatformSettings, load_settings
from mlgate.gitops import canary
from mlgate.gitops import pr as prmod
from mlgate.gitops.overlay import Release
from mlgate.gitops.quarantine import quarantine_path, quarantined_by_revert
from mlgate.gitops.repo import GitopsRepo
from mlgate.gitops.rollback import rollback
from mlgate.gitops.status import read_status
from tests.gitops_helpers import MODEL, main_message, promote_merged, remote_refs

IMG = "registry/credit-risk@sha256:" + "1" * 64


def _rel(stable: str, canary_v: str | None = None, weight: int | None = None, shadow=None):
    return Release(
        model=MODEL,
        env="prod",
        stable_version=stable,
        stable_image=IMG,
        canary_version=canary_v,
        canary_image=IMG if canary_v else None,
        canary_weight=weight,
        shadow_version=shadow,
        shadow_image=IMG if shadow else None,
    )


@pytest.mark.parametrize(
    ("case", "before", "after", "quarantined"),
    [
        ("weight step 25 -> 10", _rel("1", "2", 25), _rel("1", "2", 10), ()),
        ("canary start", _rel("1", "2", 10), _rel("1"), ("2",)),
        ("canary promote", _rel("2"), _rel("1", "2", 50), ()),
        ("stable promotion", _rel("3"), _rel("2"), ("3",)),
        ("first promotion (overlay removed)", _rel("1"), None, ("1",)),
        ("shadow start", _rel("1", shadow="3"), _rel("1"), ("3",)),
        ("shadow -> canary start", _rel("1", "3", 10), _rel("1", shadow="3"), ()),
    ],
)
def test_the_rule_quarantines_what_stops_running(case, before, after, quarantined) -> None:
    assert quarantined_by_revert(before, after) == quarantined, case


@pytest.fixture
def settings(gitops_ws: Path) -> PlatformSettings:
    return load_settings()


def _prod(settings):
    return read_status(settings).model(MODEL).envs["prod"]


def _quarantined(settings) -> list[str]:
    return [q.version for q in read_status(settings).model(MODEL).quarantined]


@pytest.fixture
def prod_canary(settings, gate_report):
    """1 stable everywhere; 2 in dev and stage and as a 10% canary in prod."""
    for env in ("dev", "stage", "prod"):
        promote_merged(settings, "1", env, gate_report("1", env))
    for env in ("dev", "stage"):
        promote_merged(settings, "2", env, gate_report("2", env))
    pr = canary.start(settings, MODEL, "prod", "2", gate_report("2", "prod"), weight=10)
    prmod.merge_pr(settings, pr.branch, ["carol"])
    return settings


def _git(clone: Path, *args: str, input: str | None = None) -> str:
    return subprocess.run(
        ["git", "-C", str(clone), *args], capture_output=True, text=True, check=True, input=input
    ).stdout


def _tamper(settings, tmp_path: Path, branch: str, edit) -> None:
    """Rewrite the PR's one commit (same message) after `edit(clone)`, push it over the branch."""
    clone = tmp_path
    subprocess.run(["git", "clone", "-q", GitopsRepo.locate(settings).remote, str(clone)])
    _git(clone, "checkout", "-q", "-B", "work", f"origin/{branch}")
    edit(clone)
    _git(clone, "add", "-A")
    msg = _git(clone, "log", "-1", "--format=%B")
    _git(clone, "commit", "-q", "--amend", "-F", "-", input=msg)
    _git(clone, "push", "-q", "-f", "origin", f"HEAD:refs/heads/{branch}")


def test_reverting_a_weight_step_restores_the_weight_and_quarantines_nothing(prod_canary, tmp_path):
    """25 -> 10 undone: v2 still serves as the canary, so nothing is quarantined. A hand-edited
    rollback (one approver of any role) that quarantines v2 anyway is refused, main unchanged."""
    settings = prod_canary
    prmod.merge_pr(settings, canary.set_weight(settings, MODEL, "prod", 25).branch, ["carol"])
    assert _prod(settings).canary_weight == 25
    rb = rollback(settings, MODEL, "prod", "too fast")
    assert "quarantined" not in rb.trailers

    def add_entry(clone: Path) -> None:
        f = clone / quarantine_path(MODEL)
        f.write_text("versions:\n  - {version: '2', reason: slipped in}\n", encoding="utf-8")

    _tamper(settings, tmp_path / "a", rb.branch, add_entry)
    before = remote_refs(settings)
    with pytest.raises(prmod.Refused, match="adds 2 .* stop running in prod are nothing"):
        prmod.merge_pr(settings, rb.branch, ["bob"])
    assert remote_refs(settings) == before

    prmod.close_pr(settings, rb.branch)
    prmod.merge_pr(settings, rollback(settings, MODEL, "prod", "too fast").branch, ["bob"])
    prod = _prod(settings)
    assert (prod.stable_version, prod.canary_version, prod.canary_weight) == ("1", "2", 10)
    assert _quarantined(settings) == []
    assert "Quarantined:" not in main_message(settings)


def test_reverting_a_canary_start_removes_and_quarantines_the_canary(prod_canary, tmp_path):
    """The canary stops serving, so it is quarantined; a hand-edited rollback that leaves it
    out of quarantine.yaml is refused."""
    settings = prod_canary
    rb = rollback(settings, MODEL, "prod", "wrong version")
    assert rb.trailers["quarantined"] == ["2"]
    _tamper(settings, tmp_path / "a", rb.branch, lambda c: (c / quarantine_path(MODEL)).unlink())
    before = remote_refs(settings)
    with pytest.raises(prmod.Refused, match="adds nothing .* stop running in prod are 2"):
        prmod.merge_pr(settings, rb.branch, ["bob"])
    assert remote_refs(settings) == before

    prmod.close_pr(settings, rb.branch)
    prmod.merge_pr(settings, rollback(settings, MODEL, "prod", "wrong version").branch, ["bob"])
    prod = _prod(settings)
    assert (prod.stable_version, prod.canary_version) == ("1", None)
    assert _quarantined(settings) == ["2"]


def test_reverting_a_stable_promotion_quarantines_the_reverted_stable(settings, gate_report):
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    promote_merged(settings, "2", "dev", gate_report("2", "dev"))
    rb = rollback(settings, MODEL, "dev", "late defaults")
    prmod.merge_pr(settings, rb.branch, ["bob"])
    assert read_status(settings).model(MODEL).envs["dev"].stable_version == "1"
    assert _quarantined(settings) == ["2"]
