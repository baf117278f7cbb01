"""Attacks on the lineage contract (issue 12), each performed end to end on a real git remote
and a real MLflow registry, each asserting that nothing was committed, pushed or merged.

- trailer injection through an MLflow version tag the model's author controls;
- through `--reason` (break-glass promote, canary abort, rollback): a prod promotion turned into
  a "rollback" by a forged `Change:` trailer;
- through `--approver`: a forged `Model-Version:` that would take a version to stage that was
  never in dev, and a forged `Change: rollback` that would make the change unrevertable;
- a commit on main whose trailers mlgate never wrote;
- a quarantined version respelled (`002`) coming back; other spellings of a number;
- a foreign image pinned under a version (`--image`, a copied build record, a disagreeing tag).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from mlgate.config import PlatformSettings, load_settings
from mlgate.errors import BadInputError
from mlgate.gitops import canary
from mlgate.gitops import pr as prmod
from mlgate.gitops.promote import promote
from mlgate.gitops.repo import GitopsRepo
from mlgate.gitops.rollback import rollback
from mlgate.gitops.status import read_status
from tests.gitops_helpers import MODEL, main_message, promote_merged, remote_refs


@pytest.fixture
def settings(gitops_ws: Path) -> PlatformSettings:
    s = load_settings()
    GitopsRepo.open(s)  # the embedded remote exists (seeded), so "nothing pushed" can be read
    return s


def _client(settings: PlatformSettings) -> MlflowClient:
    uri = settings.mlflow_tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _record(ws: Path, version: str) -> dict[str, str]:
    return json.loads((ws / "images" / MODEL / f"{version}.json").read_text())


def _image(ws: Path, version: str) -> str:
    rec = _record(ws, version)
    return f"{rec['repository']}@{rec['digest']}"


# --- injection through an MLflow tag the author controls ------------------------------------


@pytest.mark.parametrize("tag", ["feature_service", "data_fingerprint", "git_commit"])
def test_attack_mlflow_tag_injects_trailers(settings, gate_report, tag) -> None:
    """The author sets a tag whose value carries a newline and trailers of their choosing; the
    promotion would copy it into the commit. Refused, naming the tag and the version."""
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    report = gate_report("1", "stage")
    _client(settings).set_model_version_tag(
        MODEL, "1", tag, "x\nChange: rollback\nOverride-Reason: none needed\nApproved-by: eve"
    )
    before = remote_refs(settings)
    with pytest.raises(BadInputError, match=f"MLflow tag {tag} of {MODEL} version 1") as exc:
        promote(settings, MODEL, "1", "stage", report)
    assert exc.value.exit_code == 2
    assert remote_refs(settings) == before  # no branch, no commit, no note


# --- injection through --reason -------------------------------------------------------------

FORGED = "regulator deadline\n\nChange: rollback\nApproved-by: carol\nApproved-by: dana"


def test_attack_reason_turns_prod_promotion_into_rollback(settings, gate_report) -> None:
    """Break-glass into prod with a reason that carries `Change: rollback`: had it landed, the
    prod promotion would read as a restoring change (one approver, the author) that
    `mlgate rollback` refuses to undo."""
    for env in ("dev", "stage"):
        promote_merged(settings, "1", env, gate_report("1", env))
    before = remote_refs(settings)
    with pytest.raises(BadInputError, match="^--reason: .*control character") as exc:
        promote(settings, MODEL, "1", "prod", None, override_reason=FORGED)
    assert exc.value.exit_code == 2
    assert remote_refs(settings) == before
    assert read_status(settings).model(MODEL).envs.get("prod") is None


def test_attack_reason_in_canary_abort_and_rollback(settings, gate_report) -> None:
    for env in ("dev", "stage", "prod"):
        promote_merged(settings, "1", env, gate_report("1", env))
    for env in ("dev", "stage"):
        promote_merged(settings, "2", env, gate_report("2", env))
    pr = canary.start(settings, MODEL, "prod", "2", gate_report("2", "prod"), weight=10)
    prmod.merge_pr(settings, pr.branch, ["carol"])
    before = remote_refs(settings)
    with pytest.raises(BadInputError, match="^--reason: "):
        canary.abort(settings, MODEL, "prod", "bad\nChange: promote\nModel-Version: 2")
    with pytest.raises(BadInputError, match="^--reason: "):
        rollback(settings, MODEL, "stage", "late\rChange: promote")
    assert remote_refs(settings) == before


# --- injection through --approver -----------------------------------------------------------


def test_attack_approver_forges_model_version(settings, gate_report) -> None:
    """Merging v1's dev promotion with an approver name that adds `Model-Version: 3` would have
    recorded v3 as promoted to dev (the last value won), opening stage to a version never in
    dev. Refused before anything moves; v3 still cannot go to stage."""
    pr = promote(settings, MODEL, "1", "dev", gate_report("1", "dev"))
    before = remote_refs(settings)
    with pytest.raises(BadInputError, match="^--approver") as exc:
        prmod.merge_pr(settings, pr.branch, ["alice\nModel-Version: 3"])
    assert exc.value.exit_code == 2
    assert remote_refs(settings) == before  # main not moved, the PR still open
    assert pr.branch in {p.branch for p in prmod.list_prs(settings)}
    prmod.merge_pr(settings, pr.branch, ["alice"])
    assert main_message(settings).count("Model-Version:") == 1
    with pytest.raises(prmod.Refused, match="has not been promoted to dev"):
        promote(settings, MODEL, "3", "stage", gate_report("3", "stage"))


def test_attack_approver_forges_rollback_so_it_cannot_be_undone(settings, gate_report) -> None:
    for env in ("dev", "stage"):
        promote_merged(settings, "1", env, gate_report("1", env))
    pr = promote(settings, MODEL, "1", "prod", gate_report("1", "prod"))
    before = remote_refs(settings)
    with pytest.raises(BadInputError, match="^--approver"):
        prmod.merge_pr(settings, pr.branch, ["carol\nChange: rollback"])
    assert remote_refs(settings) == before
    prmod.merge_pr(settings, pr.branch, ["carol"])
    assert "Change: promote" in main_message(settings)
    undo = rollback(settings, MODEL, "prod", "late defaults")  # the promotion stays revertable
    assert undo.change == "rollback" and undo.version == "1"


def test_attack_commit_on_main_with_forged_trailers_stops_the_order_check(
    settings, gate_report
) -> None:
    """Someone pushes to main by hand a commit whose trailer block says v3 entered dev twice
    over. mlgate never writes such a block: reading the history stops (exit 2, naming the
    commit) instead of believing either value, and nothing is proposed."""
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    repo = GitopsRepo.open(settings)
    with repo.session():
        overlay = repo.work / "manifests" / "models" / MODEL / "dev" / "release.yaml"
        overlay.write_text(overlay.read_text().replace('cutoff: "0.15"', 'cutoff: "0.16"'))
        repo.git("add", "-A")
        msg = (
            "Tune cut-off\n\nModel: credit_risk\nModel-Version: 1\nEnvironment: dev\n"
            "Change: promote\nModel-Version: 3\n"
        )
        repo.git("commit", "-q", "-F", "-", input=msg)
        sha = repo.rev("HEAD")
        repo.git("push", "-q", "origin", f"HEAD:refs/heads/{repo.branch}")
    before = remote_refs(settings)
    with pytest.raises(BadInputError, match=f"commit {sha[:10]}: trailer Model-Version appears"):
        promote(settings, MODEL, "3", "stage", gate_report("3", "stage"))
    assert remote_refs(settings) == before


# --- versions respelled ---------------------------------------------------------------------


def _quarantine_2(settings, gate_report) -> None:
    promote_merged(settings, "2", "dev", gate_report("2", "dev"))
    pr = rollback(settings, MODEL, "dev", "late defaults")
    prmod.merge_pr(settings, pr.branch, ["alice"])
    assert [q.version for q in read_status(settings).model(MODEL).quarantined] == ["2"]


def test_attack_quarantined_version_respelled_comes_back(settings, gate_report) -> None:
    _quarantine_2(settings, gate_report)
    before = remote_refs(settings)
    with pytest.raises(prmod.Refused, match="version 2 is quarantined") as exc:
        promote(settings, MODEL, "002", "dev", gate_report("2", "dev"))
    assert exc.value.exit_code == 1
    for spelling in ("+2", " 2", "2.0", "2 ", "٢"):
        with pytest.raises(BadInputError, match="^--version: "):
            promote(settings, MODEL, spelling, "dev", gate_report("2", "dev"))
    assert remote_refs(settings) == before


def test_attack_hand_written_quarantine_entry_in_another_spelling_still_holds(
    settings, gate_report
) -> None:
    """A reviewer adds `version: 003` (or an unquoted number) to quarantine.yaml by hand: it
    quarantines version 3, whatever spelling the promotion then uses."""
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    repo = GitopsRepo.open(settings)
    with repo.session():
        path = repo.work / "manifests" / "models" / MODEL / "quarantine.yaml"
        path.write_text(
            'versions:\n  - version: "003"\n    reason: r\n  - version: 4\n    reason: r\n'
        )
        repo.git("add", "-A")
        repo.git("commit", "-q", "-m", "Quarantine 3 and 4 (reviewed)")
        repo.git("push", "-q", "origin", f"HEAD:refs/heads/{repo.branch}")
    before = remote_refs(settings)
    for version, spelling in (("3", "3"), ("3", "0003"), ("4", "04")):
        with pytest.raises(prmod.Refused, match=f"version {version} is quarantined"):
            promote(settings, MODEL, spelling, "dev", gate_report(version, "dev"))
    assert remote_refs(settings) == before


# --- a foreign image under a version --------------------------------------------------------


def test_attack_foreign_image_pinned_under_a_version(settings, gate_report, gitops_ws) -> None:
    report = gate_report("1", "dev")
    recorded = _image(gitops_ws, "1")
    before = remote_refs(settings)
    for foreign in (_image(gitops_ws, "2"), "evil.example/x@sha256:" + "e" * 64):
        with pytest.raises(BadInputError, match="^--image ") as exc:
            promote(settings, MODEL, "1", "dev", report, image=foreign)
        assert exc.value.exit_code == 2
        assert f"{MODEL} version 1" in str(exc.value) and recorded in str(exc.value)
    assert remote_refs(settings) == before
    pr = promote(settings, MODEL, "1", "dev", report, image=recorded)  # the same image: fine
    assert pr.trailers["image"] == [recorded]


def test_attack_build_record_copied_from_another_version(settings, gate_report, gitops_ws) -> None:
    """v2's record copied over v1's file: the record says which version it was built for."""
    records = gitops_ws / "images" / MODEL
    (records / "1.json").write_text((records / "2.json").read_text())
    before = remote_refs(settings)
    with pytest.raises(BadInputError, match="record is for credit_risk version 2, not"):
        promote(settings, MODEL, "1", "dev", gate_report("1", "dev"))
    assert remote_refs(settings) == before


def test_attack_build_record_and_mlflow_tag_disagree(settings, gate_report, gitops_ws) -> None:
    """The workspace's record is edited to another digest; the MLflow tag the build wrote still
    names the real one: the two records disagree and nothing is pinned."""
    _client(settings).set_model_version_tag(
        MODEL, "1", "image_digest", _record(gitops_ws, "1")["digest"]
    )
    path = gitops_ws / "images" / MODEL / "1.json"
    doc = json.loads(path.read_text())
    doc["digest"] = "sha256:" + "f" * 64
    path.write_text(json.dumps(doc))
    before = remote_refs(settings)
    with pytest.raises(BadInputError, match="build record says sha256:f+, the MLflow tag"):
        promote(settings, MODEL, "1", "dev", gate_report("1", "dev"))
    assert remote_refs(settings) == before


def test_git_agrees_with_mlgate_on_a_merged_promotion(settings, gate_report) -> None:
    """What git itself reads as the trailers of a merged mlgate commit is what mlgate wrote."""
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    remote = GitopsRepo.locate(settings).remote
    git_view = subprocess.run(
        ["git", f"--git-dir={remote}", "log", "-1", "--format=%(trailers:only,unfold)", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    from mlgate.records.trailers import parse_message

    parsed = parse_message(main_message(settings), "main")
    assert parsed is not None and git_view.split("\n") == [f"{k}: {v}" for k, v in parsed.pairs()]
    assert parsed.approved_by == ("alice",)


# --- the same attacks through the console script: exit codes and messages as users see them --


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlgate.cli", *args], capture_output=True, text=True, check=False
    )


def test_attacks_through_the_cli_exit_2_naming_the_field(settings, gate_report, gitops_ws) -> None:
    report = str(gate_report("1", "dev"))
    base = ("promote", "--model", MODEL, "--to", "dev", "--report", report)
    before = remote_refs(settings)
    proc = _cli(*base, "--version", "1", "--image", _image(gitops_ws, "2"))
    assert proc.returncode == 2 and "--image" in proc.stderr, proc.stderr
    assert _record(gitops_ws, "1")["digest"] in proc.stderr
    proc = _cli(*base, "--version", "1.0")
    assert proc.returncode == 2 and "--version" in proc.stderr, proc.stderr
    proc = _cli(*base, "--version", "1", "--override-gates", "--reason", "x\nChange: rollback")
    assert proc.returncode == 2 and "--reason" in proc.stderr, proc.stderr
    assert remote_refs(settings) == before
    proc = _cli(*base, "--version", "001", "--json")
    assert proc.returncode == 0, proc.stderr
    pr = json.loads(proc.stdout)
    assert pr["version"] == "1" and pr["branch"] == f"promote/{MODEL}-1-dev"
    before = remote_refs(settings)
    proc = _cli("pr", "merge", pr["branch"], "--approver", "alice\nModel-Version: 3")
    assert proc.returncode == 2 and "--approver" in proc.stderr, proc.stderr
    assert remote_refs(settings) == before
