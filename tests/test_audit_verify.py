"""`mlgate audit verify` on the shared audit world (tests/fixtures/audit.py): a clean history
passes every check; each attack is performed on the real remote, report store, MLflow and
registry, must be reported (every affected commit, nothing else), and is then put back."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from mlgate.audit.verify import (
    AuditContext,
    CommitContext,
    Gap,
    register_check,
    registered_checks,
    verify_history,
)
from mlgate.cli import app
from mlgate.gitops import canary
from mlgate.gitops.overlay import overlay_dir
from mlgate.gitops.pr import merge_pr
from mlgate.gitops.promote import promote
from mlgate.records.trailers import parse_message
from tests.fixtures.audit import AUDIT_REPOSITORY, AuditWorld
from tests.fixtures.gitops import write_gate_report

pytestmark = pytest.mark.slow  # a real remote, MLflow and docker-registry (one per session)

MODEL = "credit_risk"
BUILT_IN = {"trailers", "mlflow", "gate-report", "image", "approvals"}


def _gaps(world: AuditWorld) -> set[tuple[str, str]]:
    result = verify_history(world.settings(), only=sorted(BUILT_IN))
    return {(g.check, g.commit or "") for g in result.gaps}


def _commits_naming(world: AuditWorld, version: str, trailer: str = "model_version") -> set[str]:
    """Every commit on main whose trailers name `version` (read with the one parser)."""
    out = subprocess.run(
        ["git", "--git-dir", str(world.workspace / "gitops.git"), "log", "-z", "--format=%H%x1f%B"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = set()
    for rec in out.split("\x00"):
        if not rec.strip():
            continue
        sha, msg = rec.split("\x1f", 1)
        t = parse_message(msg, sha)
        if t is not None and getattr(t, trailer) == version:
            found.add(sha.strip())
    return found


@contextmanager
def _main_restored(world: AuditWorld) -> Iterator[None]:
    """Put main of the remote back where it was (the attacks below push to it)."""
    bare = str(world.workspace / "gitops.git")
    before = world.main()
    try:
        yield
    finally:
        subprocess.run(
            ["git", "--git-dir", bare, "update-ref", "refs/heads/main", before], check=True
        )


def test_clean_history_passes_every_check(audit_env: AuditWorld) -> None:
    names = {c.name for c in registered_checks()}
    assert BUILT_IN <= names
    res = CliRunner().invoke(app, ["audit", "verify", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["gaps"] == []
    assert data["changes_checked"] == len(audit_env.commits) == 18
    assert {c["name"] for c in data["checks"]} == names
    human = CliRunner().invoke(app, ["audit", "verify", "--check", "trailers"])
    assert human.exit_code == 0 and "clean" in human.stdout


def test_tampered_report_is_reported(audit_env: AuditWorld) -> None:
    w = audit_env
    sha = _trailer(w, w.commits["v1-prod"], "gate_report")
    stored = w.workspace / "reports" / "by-hash" / sha / "report.json"
    original = stored.read_bytes()
    edited = original.replace(b'"summary": "x"', b'"summary": "all groups within tolerance"', 1)
    assert edited != original
    stored.write_bytes(edited)
    try:
        res = CliRunner().invoke(app, ["audit", "verify", "--json"])
    finally:
        stored.write_bytes(original)
    assert res.exit_code == 1
    gaps = json.loads(res.stdout)["gaps"]
    assert [(g["check"], g["commit"]) for g in gaps] == [("gate-report", w.commits["v1-prod"])]
    gap = gaps[0]
    assert sha in gap["message"] and "hash" in gap["message"]
    assert (gap["model"], gap["env"], gap["version"]) == (MODEL, "prod", "1")


def test_missing_mlflow_run_is_reported_for_every_change_of_its_version(
    audit_env: AuditWorld,
) -> None:
    w = audit_env
    uri = w.settings().mlflow_tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.delete_run(w.runs["2"])
    try:
        gaps = _gaps(w)
    finally:
        client.restore_run(w.runs["2"])
    naming_two = _commits_naming(w, "2")
    assert len(naming_two) == 5  # dev, stage, canary start, weight step, abort
    assert {c for k, c in gaps if k == "mlflow"} == naming_two
    assert {k for k, _ in gaps} == {"mlflow"}


def test_image_missing_from_registry_is_reported(audit_env: AuditWorld) -> None:
    w = audit_env
    digest, manifest = w.images["3"]
    gone = requests.delete(
        f"http://{w.registry}/v2/{AUDIT_REPOSITORY}/manifests/{digest}", timeout=10
    )
    assert gone.status_code == 202, gone.text
    try:
        gaps = _gaps(w)
    finally:
        back = requests.put(
            f"http://{w.registry}/v2/{AUDIT_REPOSITORY}/manifests/3",
            data=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            timeout=10,
        )
        assert back.headers["Docker-Content-Digest"] == digest
    pinning_three = {w.commits[k] for k in ("v3-dev", "v3-stage", "v3-prod", "v3-promote")}
    assert gaps == {("image", c) for c in pinning_three}


def test_a_registry_that_does_not_answer_is_a_gap_not_a_pass(audit_env: AuditWorld) -> None:
    from mlgate.config import RegistrySettings
    from mlgate.packaging import registry

    w = audit_env
    settings = w.settings().model_copy(update={"registry": RegistrySettings(address=w.registry)})
    registry.down(settings)
    try:
        gaps = verify_history(settings, only=["image"]).gaps
    finally:
        registry.up(settings)
    assert gaps and all("did not answer" in g.message for g in gaps)
    assert {g.version for g in gaps} == {"1", "2", "3", "4", "5"}
    assert verify_history(settings, only=["image"]).gaps == []  # back up: every image found


def test_unapproved_prod_change_pushed_to_main_is_reported(audit_env: AuditWorld) -> None:
    """A real promotion of v5 into prod (report verified, trailers fine) pushed to main
    without going through `pr merge`: no approval at all."""
    w = audit_env
    settings = w.settings()
    report = write_gate_report(settings, w.workspace.parent, "5", "prod")
    pr = promote(settings, MODEL, "5", "prod", report)
    bare = str(w.workspace / "gitops.git")
    with _main_restored(w):
        subprocess.run(
            ["git", "--git-dir", bare, "update-ref", "refs/heads/main", pr.sha], check=True
        )
        gaps = verify_history(settings, only=sorted(BUILT_IN)).gaps
        subprocess.run(["git", "--git-dir", bare, "branch", "-D", pr.branch], check=True)
    assert [(g.check, g.commit, g.env, g.version) for g in gaps] == [
        ("approvals", pr.sha, "prod", "5")
    ]
    assert "at least one approval" in gaps[0].message


def test_self_approved_and_hand_edited_prod_changes_are_reported(
    audit_env: AuditWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two commits pushed straight to main: a promotion into prod carrying its author's own
    Approved-by (alice holds the model-risk role), then a hand edit of prod's canary weight
    with no trailers at all."""
    w = audit_env
    monkeypatch.setenv("GIT_AUTHOR_NAME", "alice")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "alice@bank.invalid")
    settings = w.settings()
    report = write_gate_report(settings, w.workspace.parent, "5", "prod")
    pr = promote(settings, MODEL, "5", "prod", report)
    bare = str(w.workspace / "gitops.git")
    work = w.workspace.parent / "attacker"
    git = ["git", "-C", str(work)]
    with _main_restored(w):
        subprocess.run(["git", "clone", "-q", bare, str(work)], check=True)
        subprocess.run([*git, "fetch", "-q", "origin", pr.branch], check=True)
        subprocess.run([*git, "cherry-pick", "FETCH_HEAD"], check=True, capture_output=True)
        msg = subprocess.run(
            [*git, "log", "-1", "--format=%B"], capture_output=True, text=True, check=True
        ).stdout
        signed = msg.rstrip("\n") + "\nApproved-by: alice\n"
        subprocess.run([*git, "commit", "-q", "--amend", "-m", signed], check=True)
        self_approved = w_rev(git, "HEAD")
        release = work / overlay_dir(MODEL, "prod") / "release.yaml"
        text = release.read_text()
        edited = text.replace('stable_traffic: "90"', 'stable_traffic: "50"').replace(
            'canary_traffic: "10"', 'canary_traffic: "50"'
        )
        assert edited != text
        release.write_text(edited)
        subprocess.run([*git, "commit", "-q", "-am", "quick traffic fix"], check=True)
        subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True)
        hand_edit = w.main()
        result = verify_history(settings, only=sorted(BUILT_IN))
        subprocess.run(["git", "--git-dir", bare, "branch", "-D", pr.branch], check=True)
    got = {(g.check, g.commit) for g in result.gaps}
    assert got == {("approvals", self_approved), ("trailers", hand_edit)}
    by_check = {g.check: g for g in result.gaps}
    assert "cannot approve" in by_check["approvals"].message
    assert (by_check["trailers"].model, by_check["trailers"].env) == (MODEL, "prod")


def w_rev(git: list[str], rev: str) -> str:
    return subprocess.run(
        [*git, "rev-parse", rev], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_break_glass_abort_passes_but_an_unapproved_commit_dressed_as_one_does_not(
    audit_env: AuditWorld,
) -> None:
    """The scheduled analysis's abort lands on main without approval by design
    (`canary.abort_now`); the audit accepts it only because its diff is exactly an abort. A
    commit with the same trailers that also repoints prod's stable image is reported."""
    w = audit_env
    settings = w.settings()
    report = write_gate_report(settings, w.workspace.parent, "5", "prod")
    bare = str(w.workspace / "gitops.git")
    work = w.workspace.parent / "forger"
    git = ["git", "-C", str(work)]
    with _main_restored(w):
        pr = promote(settings, MODEL, "5", "prod", report)
        merge_pr(settings, pr.branch, ["carol"])
        aborted = canary.abort_now(settings, MODEL, "prod", "approval rate collapsed").commit
        subprocess.run(["git", "clone", "-q", bare, str(work)], check=True)
        msg = subprocess.run(
            [*git, "log", "-1", "--format=%B"], capture_output=True, text=True, check=True
        ).stdout
        release = work / overlay_dir(MODEL, "prod") / "release.yaml"
        text = release.read_text()
        release.write_text(text.replace(w.image("3"), w.image("1")))
        assert release.read_text() != text
        subprocess.run([*git, "commit", "-q", "-am", msg], check=True)
        subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True)
        forged = w.main()
        gaps = verify_history(settings, only=sorted(BUILT_IN)).gaps
    assert aborted != forged
    assert [(g.check, g.commit) for g in gaps] == [("approvals", forged)]
    assert "at least one approval" in gaps[0].message


def test_a_check_is_added_by_registering_it(audit_env: AuditWorld) -> None:
    """The registry is the extension point: a commit check and an audit-wide check registered
    here run with the rest; an error inside a check is a gap of that check, not a crash."""
    seen: list[str] = []

    @register_check("test-every-commit", about="counts")
    def every(ctx: CommitContext) -> list[Gap]:
        seen.append(ctx.commit.sha)
        if ctx.commit.sha == audit_env.commits["v2-abort"]:
            return [ctx.gap("test-every-commit", "abort seen")]
        return []

    @register_check("test-once", scope="audit")
    def once(ctx: AuditContext) -> list[Gap]:
        from mlgate.errors import ExternalServiceError

        raise ExternalServiceError("inventory service down")

    try:
        result = verify_history(audit_env.settings(), only=["test-every-commit", "test-once"])
    finally:
        from mlgate.audit import verify as registry

        registry._CHECKS.pop("test-every-commit")
        registry._CHECKS.pop("test-once")
    assert len(seen) == 18
    assert [(g.check, g.commit, g.version) for g in result.gaps] == [
        ("test-every-commit", audit_env.commits["v2-abort"], "2"),
        ("test-once", None, None),
    ]
    assert "could not be checked: inventory service down" in result.gaps[1].message
    with pytest.raises(ValueError, match="registered twice"):
        register_check("approvals")(lambda ctx: [])


def test_unknown_check_is_bad_input(audit_env: AuditWorld) -> None:
    from tests.inventory_helpers import run_cli

    code, output = run_cli("audit", "verify", "--check", "nope")
    assert code == 2 and "--check nope" in output


def _trailer(world: AuditWorld, sha: str, field: str) -> str:
    msg = subprocess.run(
        ["git", "--git-dir", str(world.workspace / "gitops.git"), "log", "-1", "--format=%B", sha],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    t = parse_message(msg, sha)
    assert t is not None
    return str(getattr(t, field))


def test_a_change_whose_release_pins_other_than_its_trailers_is_reported(
    audit_env: AuditWorld,
) -> None:
    """A real canary start of v5 in prod, edited before it is pushed to main around the merge:
    release.yaml now routes the canary slot to version 4 while the trailers (the lineage a
    reviewer reads) still say 5. Check `release` names the field and both values."""
    w = audit_env
    settings = w.settings()
    report = write_gate_report(settings, w.workspace.parent, "5", "prod")
    pr = promote(settings, MODEL, "5", "prod", report)
    bare = str(w.workspace / "gitops.git")
    work = w.workspace.parent / "swapper"
    git = ["git", "-C", str(work)]
    with _main_restored(w):
        subprocess.run(["git", "clone", "-q", bare, str(work)], check=True)
        subprocess.run([*git, "fetch", "-q", "origin", pr.branch], check=True)
        subprocess.run([*git, "cherry-pick", "FETCH_HEAD"], check=True, capture_output=True)
        release = work / overlay_dir(MODEL, "prod") / "release.yaml"
        text = release.read_text()
        swapped = text.replace('canary_version: "5"', 'canary_version: "4"')
        assert swapped != text, text
        release.write_text(swapped)
        subprocess.run([*git, "commit", "-q", "--amend", "--no-edit", "-a"], check=True)
        subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True)
        swapped_sha = w.main()
        gaps = verify_history(settings, only=["release"]).gaps
        subprocess.run(["git", "--git-dir", bare, "branch", "-D", pr.branch], check=True)
    assert [(g.check, g.commit, g.env, g.version) for g in gaps] == [
        ("release", swapped_sha, "prod", "5")
    ]
    assert gaps[0].problems == ["canary_version is '4', its trailers say '5'"]
