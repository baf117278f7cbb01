"""Promotion PRs on a real git remote: order, evidence, quarantine, four eyes, stale bases."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mlgate.config import load_settings
from mlgate.errors import BadInputError, Inconclusive
from mlgate.gitops import pr as prmod
from mlgate.gitops.promote import promote
from mlgate.gitops.rollback import rollback
from mlgate.gitops.status import read_status, stable_version
from tests.gitops_helpers import MODEL, main_message, promote_merged, remote_refs


@pytest.fixture
def settings(gitops_ws: Path):
    return load_settings()


def test_stable_version_without_repo_creates_nothing(settings, workspace: Path) -> None:
    assert stable_version(settings, MODEL, "prod") is None
    assert not (workspace / "gitops.git").exists()
    assert read_status(settings).models == []
    assert not (workspace / "gitops.git").exists()


def test_promote_dev_stage_prod_with_lineage_trailers(settings, gate_report) -> None:
    rep = gate_report("1", "dev")
    pr = promote(settings, MODEL, "1", "dev", rep)
    assert pr.branch == "promote/credit_risk-1-dev"
    assert pr.description.startswith("## Promote credit_risk 1 to dev")
    assert "# Gate report credit_risk 1 -> dev: PASS" in pr.description
    # not yet merged: main says nothing runs in dev
    assert stable_version(settings, MODEL, "dev") is None
    prmod.merge_pr(settings, pr.branch, ["alice"])
    assert stable_version(settings, MODEL, "dev") == "1"
    msg = main_message(settings)
    sha = hashlib.sha256((rep / "report.json").read_bytes()).hexdigest()
    for trailer in (
        "Model: credit_risk",
        "Model-Version: 1",
        "Environment: dev",
        f"Gate-Report: {sha}",
        "Data-Fingerprint: fp-1",
        "Approved-by: alice",
    ):
        assert trailer in msg
    assert "Image-Digest: sha256:" + hashlib.sha256(b"image-1").hexdigest() in msg
    assert "MLflow-Run: " in msg and "MLflow-Run: unknown" not in msg

    promote_merged(settings, "1", "stage", gate_report("1", "stage"))
    promote_merged(settings, "1", "prod", gate_report("1", "prod"))
    # second version: prod entry is a canary at the default initial weight (no policy file)
    for env in ("dev", "stage"):
        promote_merged(settings, "2", env, gate_report("2", env))
    pr = promote(settings, MODEL, "2", "prod", gate_report("2", "prod"))
    assert "as canary at 10%" in pr.subject
    prmod.merge_pr(settings, pr.branch, ["alice"])
    prod = read_status(settings).model(MODEL).envs["prod"]
    assert (prod.stable_version, prod.canary_version, prod.canary_weight) == ("1", "2", 10)
    assert prod.stable_traffic == 90
    assert stable_version(settings, MODEL, "prod") == "1"


def test_policy_initial_weight_is_used(settings, gate_report, tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "credit_risk.yaml").write_text("canary:\n  initial_weight: 5\n")
    for env in ("dev", "stage", "prod"):
        promote_merged(settings, "1", env, gate_report("1", env))
    for env in ("dev", "stage"):
        promote_merged(settings, "2", env, gate_report("2", env))
    # the prod report is judged under that same policy: it is the policy in force here
    rep = gate_report("2", "prod", policy=policies / "credit_risk.yaml")
    pr = promote(settings, MODEL, "2", "prod", rep, policies_dir=policies)
    assert pr.trailers["canary-weight"] == ["5"]


def test_out_of_order_refused(settings, gate_report) -> None:
    with pytest.raises(prmod.Refused, match="has not been promoted to dev"):
        promote(settings, MODEL, "1", "stage", gate_report("1", "stage"))
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    with pytest.raises(prmod.Refused, match="has not been promoted to stage"):
        promote(settings, MODEL, "1", "prod", gate_report("1", "prod"))


@pytest.mark.parametrize("overall,error", [("FAIL", prmod.Refused), ("INCONCLUSIVE", Inconclusive)])
def test_failing_or_inconclusive_report_commits_nothing(
    settings, gate_report, overall, error
) -> None:
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    before = remote_refs(settings)
    with pytest.raises(error, match=overall):
        promote(settings, MODEL, "1", "stage", gate_report("1", "stage", overall))
    assert remote_refs(settings) == before  # no branch, no commit, no note
    assert prmod.list_prs(settings) == []


def test_report_for_another_version_or_env_is_bad_input(settings, gate_report) -> None:
    with pytest.raises(BadInputError, match="challenger"):
        promote(settings, MODEL, "1", "dev", gate_report("2", "dev"))
    with pytest.raises(BadInputError, match="`env`"):
        promote(settings, MODEL, "1", "dev", gate_report("1", "stage"))
    with pytest.raises(BadInputError, match="nonexistent: gate report not found"):
        promote(settings, MODEL, "1", "dev", Path("/nonexistent"))


def test_missing_image_record_or_mlflow_version_is_bad_input(
    settings, gate_report, gitops_ws
) -> None:
    with pytest.raises(BadInputError, match="no version 9"):
        promote(
            settings, MODEL, "9", "dev", gate_report("9", "dev"), image="r/x@sha256:" + "a" * 64
        )
    (gitops_ws / "images" / MODEL / "1.json").unlink()
    with pytest.raises(BadInputError, match="1.json: no image build record"):
        promote(settings, MODEL, "1", "dev", gate_report("1", "dev"))
    with pytest.raises(BadInputError, match="not pinned by digest"):
        promote(settings, MODEL, "1", "dev", gate_report("1", "dev"), image="r/x:latest")


def test_quarantined_version_refused(settings, gate_report) -> None:
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    promote_merged(settings, "2", "dev", gate_report("2", "dev"))
    rb = rollback(settings, MODEL, "dev", "bad calibration")
    prmod.merge_pr(settings, rb.branch, ["alice"])
    st = read_status(settings).model(MODEL)
    assert st.envs["dev"].stable_version == "1"
    assert [q.version for q in st.quarantined] == ["2"]
    with pytest.raises(prmod.Refused, match="quarantined"):
        promote(settings, MODEL, "2", "dev", gate_report("2", "dev"))


def test_author_cannot_approve_own_prod_promotion(settings, gate_report) -> None:
    for env in ("dev", "stage"):
        promote_merged(settings, "1", env, gate_report("1", env))
    pr = promote(settings, MODEL, "1", "prod", gate_report("1", "prod"))
    assert pr.author == "mlgate-test"
    before = remote_refs(settings)
    # the author is not a listed reviewer (tests/test_attacks_approvals.py: a listed one who
    # wrote the change is refused for segregation of duties)
    with pytest.raises(BadInputError, match="not on the reviewers list"):
        prmod.merge_pr(settings, pr.branch, ["mlgate-test"])
    with pytest.raises(BadInputError, match="not on the reviewers list"):
        prmod.merge_pr(settings, pr.branch, ["carol", "test@mlgate.invalid"])
    with pytest.raises(prmod.Refused, match="at least one"):
        prmod.merge_pr(settings, pr.branch, [])
    assert remote_refs(settings) == before
    res = prmod.merge_pr(settings, pr.branch, ["carol"])
    assert res.approvers == ["carol"]


def test_override_needs_reason_and_two_approvers(settings, gate_report) -> None:
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    with pytest.raises(BadInputError, match="reason"):
        promote(settings, MODEL, "1", "stage", None, override_reason=" ")
    pr = promote(settings, MODEL, "1", "stage", None, override_reason="regulator deadline, INC-42")
    assert "GATES OVERRIDDEN" in pr.subject
    assert pr.trailers["override-reason"] == ["regulator deadline, INC-42"]
    with pytest.raises(prmod.Refused, match="two approvers"):
        prmod.merge_pr(settings, pr.branch, ["alice"])
    res = prmod.merge_pr(settings, pr.branch, ["alice", "bob"])
    msg = main_message(settings)
    assert "Approved-by: alice\nApproved-by: bob" in msg
    assert "Override-Reason: regulator deadline, INC-42" in msg
    assert res.version == "1"


def test_concurrent_promotions_second_merge_refused_nothing_lost(settings, gate_report) -> None:
    for v in ("1", "2"):
        promote_merged(settings, v, "dev", gate_report(v, "dev"))
    first = promote(settings, MODEL, "1", "stage", gate_report("1", "stage"))
    second = promote(settings, MODEL, "2", "stage", gate_report("2", "stage"))
    prmod.merge_pr(settings, first.branch, ["alice"])
    before = remote_refs(settings)
    with pytest.raises(prmod.Refused, match="stale.*champion there is now 1.*Re-run the gates"):
        prmod.merge_pr(settings, second.branch, ["alice"])
    assert remote_refs(settings) == before  # main keeps the first, the second PR stays open
    assert stable_version(settings, MODEL, "stage") == "1"
    assert [p.branch for p in prmod.list_prs(settings)] == [second.branch]
    prmod.close_pr(settings, second.branch)
    assert prmod.list_prs(settings) == []
    assert stable_version(settings, MODEL, "stage") == "1"


def test_open_pr_twice_refused(settings, gate_report) -> None:
    promote(settings, MODEL, "1", "dev", gate_report("1", "dev"))
    with pytest.raises(BadInputError, match="already open"):
        promote(settings, MODEL, "1", "dev", gate_report("1", "dev"))
