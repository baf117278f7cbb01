"""Attacks on `pr merge` (issue 12), each performed end to end on a real git remote, each
asserting that main did not move.

Trailers are text anyone with push access can write, and they choose the rules a merge applies
(approver role, evidence). So a hand-pushed PR commit whose trailers say one thing while its diff
does another is refused: a "rollback of dev" that edits prod's release.yaml or reviewers.yaml, a
promotion of a verified version whose release.yaml pins another, a commit that brings its own
`Approved-by:`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlgate.config import PlatformSettings, load_settings
from mlgate.gitops import pr as prmod
from mlgate.gitops.overlay import overlay_dir
from mlgate.gitops.promote import promote
from mlgate.gitops.repo import GitopsRepo
from mlgate.gitops.rollback import rollback
from mlgate.records.trailers import with_approvals
from tests.gitops_helpers import MODEL, main_message, promote_merged, remote_refs


@pytest.fixture
def settings(gitops_ws: Path) -> PlatformSettings:
    s = load_settings()
    GitopsRepo.open(s)
    return s


def _git(clone: Path, *args: str, input: str | None = None) -> str:
    return subprocess.run(
        ["git", "-C", str(clone), *args], capture_output=True, text=True, check=True, input=input
    ).stdout


def _clone(settings: PlatformSettings, tmp: Path, ref: str) -> Path:
    clone = tmp / "attacker"
    remote = str(GitopsRepo.locate(settings).remote)
    subprocess.run(["git", "clone", "-q", remote, str(clone)], check=True)
    _git(clone, "checkout", "-q", "-B", "work", f"origin/{ref}")
    return clone


def _hand_pr(clone: Path, branch: str, message: str, amend: bool) -> None:
    """Commit what the attacker changed in `clone` as one commit and push it as `branch`."""
    _git(clone, "add", "-A")
    _git(clone, "commit", "-q", *(["--amend"] if amend else []), "-F", "-", input=message)
    _git(clone, "push", "-q", "-f", "origin", f"HEAD:refs/heads/{branch}")


# --- the diff, not the trailers ------------------------------------------------------------


@pytest.mark.parametrize("path", [f"{overlay_dir(MODEL, 'prod')}/release.yaml", "reviewers.yaml"])
def test_attack_rollback_of_dev_that_edits_prod_or_reviewers(
    settings, gate_report, tmp_path: Path, path: str
) -> None:
    """A hand-pushed `rollback/` branch whose trailers say `Change: rollback`, `Environment: dev`
    (one approver of any role, no evidence) but whose diff writes prod's release.yaml or adds a
    reviewer: refused naming the path, main unchanged."""
    merged = promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    clone = _clone(settings, tmp_path, "main")
    target = clone / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        (target.read_text() if target.exists() else "")
        + "  - {name: mallory, roles: [model-risk]}\n",
        encoding="utf-8",
    )
    message = (
        f"Roll back {MODEL} in dev\n\n"
        f"Model: {MODEL}\nModel-Version: 1\nEnvironment: dev\nChange: rollback\n"
        f"Reverts: {merged.commit}\nQuarantined: 1\n"
    )
    _hand_pr(clone, "rollback/x", message, amend=False)
    before = remote_refs(settings)
    with pytest.raises(prmod.Refused, match=f"changes {path}, outside") as exc:
        prmod.merge_pr(settings, "rollback/x", ["bob"])
    assert exc.value.exit_code == 1
    assert remote_refs(settings) == before
    assert "mallory" not in main_message(settings)


def test_attack_promote_of_a_verified_version_that_pins_another(
    settings, gate_report, tmp_path: Path
) -> None:
    """The real PR promotes v1 with a verified report; the attacker rewrites its release.yaml to
    pin v2 (never gated) keeping the trailers: refused naming stable_version."""
    pr = promote(settings, MODEL, "1", "dev", gate_report("1", "dev"))
    clone = _clone(settings, tmp_path, pr.branch)
    release = clone / overlay_dir(MODEL, "dev") / "release.yaml"
    text = release.read_text(encoding="utf-8")
    assert "stable_version: " in text
    forged = "\n".join(
        '  stable_version: "2"' if line.strip().startswith("stable_version:") else line
        for line in text.splitlines()
    )
    release.write_text(forged + "\n", encoding="utf-8")
    _hand_pr(clone, pr.branch, _git(clone, "log", "-1", "--format=%B"), amend=True)
    before = remote_refs(settings)
    with pytest.raises(prmod.Refused, match="stable_version is '2' but the commit's trailers"):
        prmod.merge_pr(settings, pr.branch, ["alice"])
    assert remote_refs(settings) == before


def test_attack_canary_start_with_another_weight(settings, gate_report, tmp_path: Path) -> None:
    """A canary start whose trailers say 10% but whose release.yaml sends 90% to the canary."""
    for env in ("dev", "stage", "prod"):
        promote_merged(settings, "1", env, gate_report("1", env), approver="carol")
    for env in ("dev", "stage"):
        promote_merged(settings, "2", env, gate_report("2", env))
    pr = promote(settings, MODEL, "2", "prod", gate_report("2", "prod"))
    clone = _clone(settings, tmp_path, pr.branch)
    release = clone / overlay_dir(MODEL, "prod") / "release.yaml"
    text = release.read_text(encoding="utf-8")
    assert "canary_traffic" in text
    release.write_text(
        text.replace('stable_traffic: "90"', 'stable_traffic: "10"').replace(
            'canary_traffic: "10"', 'canary_traffic: "90"'
        ),
        encoding="utf-8",
    )
    _hand_pr(clone, pr.branch, _git(clone, "log", "-1", "--format=%B"), amend=True)
    before = remote_refs(settings)
    with pytest.raises(prmod.Refused, match="canary_weight is 90"):
        prmod.merge_pr(settings, pr.branch, ["carol"])
    assert remote_refs(settings) == before


def test_legitimate_rollback_still_merges(settings, gate_report) -> None:
    """A revert restores the release before the reverted commit, plus the quarantine entry."""
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    promote_merged(settings, "2", "dev", gate_report("2", "dev"))
    pr = rollback(settings, MODEL, "dev", "bad")
    assert prmod.merge_pr(settings, pr.branch, ["bob"]).change == "rollback"
    assert "Change: rollback" in main_message(settings)


# --- approvals come from the merge, never from the commit -----------------------------------


def test_attack_pr_commit_carries_its_own_approved_by(
    settings, gate_report, tmp_path: Path
) -> None:
    """A PR commit pushed with `Approved-by: alice` would have been merged with alice on record
    though she never approved: refused naming the trailer, main unchanged."""
    pr = promote(settings, MODEL, "1", "dev", gate_report("1", "dev"))
    clone = _clone(settings, tmp_path, pr.branch)
    message = _git(clone, "log", "-1", "--format=%B").rstrip("\n") + "\nApproved-by: alice\n"
    _hand_pr(clone, pr.branch, message, amend=True)
    before = remote_refs(settings)
    with pytest.raises(prmod.Refused, match="already carries Approved-by: alice"):
        prmod.merge_pr(settings, pr.branch, ["bob"])
    assert remote_refs(settings) == before
    assert "alice" not in main_message(settings)


def test_with_approvals_sets_the_list() -> None:
    text = (
        f"Promote {MODEL} 1 to dev\n\nModel: {MODEL}\nModel-Version: 1\nEnvironment: dev\n"
        "Change: promote\nApproved-by: alice\n"
    )
    out = with_approvals(text, ["bob"], "test", "--approver")
    assert "Approved-by: bob" in out and "alice" not in out


def test_attack_mislabelled_set_weight_that_moves_stable_fails_pr_verify(
    settings, gate_report, tmp_path: Path
) -> None:
    """A hand-pushed branch labelled `Change: canary-set-weight` (a kind with no gate report,
    which the required check used to pass as "no-report") whose release.yaml swaps dev's stable
    version for an ungated one: `pr verify` fails naming the problem, and merge refuses it."""
    from tests.gitops_helpers import cli

    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    clone = _clone(settings, tmp_path, "main")
    release = clone / overlay_dir(MODEL, "dev") / "release.yaml"
    text = release.read_text(encoding="utf-8")
    forged = "\n".join(
        '  stable_version: "2"' if line.strip().startswith("stable_version:") else line
        for line in text.splitlines()
    )
    release.write_text(forged + "\n", encoding="utf-8")
    message = (
        f"Set the canary weight of {MODEL} in dev\n\n"
        f"Model: {MODEL}\nEnvironment: dev\nChange: canary-set-weight\n"
    )
    _hand_pr(clone, "canary/x", message, amend=False)
    code, out, err = cli("pr", "verify", "canary/x")
    assert code == 1, (out, err)
    assert "changes more than the canary's weight" in out + err
    before = remote_refs(settings)
    with pytest.raises(prmod.Refused, match="changes more than the canary's weight"):
        prmod.merge_pr(settings, "canary/x", ["bob"])
    assert remote_refs(settings) == before
