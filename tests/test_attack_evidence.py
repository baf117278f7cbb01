"""Attacks on the evidence a promotion rests on, each performed end to end on a real git remote
and a real MLflow registry, each asserting that nothing was committed, pushed or merged.

Reports are made the way `mlgate gates run` / `canary analyze` make them (fixtures
`gate_report`, `canary_report`: the gates' own assembly, written and stored by sha256); the
attacker then writes, copies, edits or re-labels them, or the policy, by hand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from mlgate.config import load_settings
from mlgate.errors import BadInputError, ConfigError, GateFailed, Inconclusive
from mlgate.gates.policy import load_policy
from mlgate.gitops import canary
from mlgate.gitops import pr as prmod
from mlgate.gitops.promote import promote
from mlgate.gitops.repo import GitopsRepo
from mlgate.gitops.report_store import local_dir, put, report_sha
from mlgate.gitops.status import read_status
from tests.gitops_helpers import MODEL, promote_merged, remote_refs

POLICY = Path(__file__).parents[1] / "config" / "policies" / "credit_risk.yaml"


@pytest.fixture
def settings(gitops_ws: Path):
    s = load_settings()
    GitopsRepo.open(s)  # the embedded remote exists before the first attack: refs to compare
    return s


def _refused(settings, code: int, fn, *args, match: str, **kw) -> None:
    """`fn` raises an mlgate error with exit `code` matching `match`; the remote is unchanged
    (no branch, no commit, no note) and no pull request is open."""
    before = remote_refs(settings)
    prs_before = [p.branch for p in prmod.list_prs(settings)]
    with pytest.raises((BadInputError, GateFailed, Inconclusive), match=match) as err:
        fn(*args, **kw)
    assert err.value.exit_code == code, err.value
    assert remote_refs(settings) == before
    assert [p.branch for p in prmod.list_prs(settings)] == prs_before


def _rewrite(folder: Path, change) -> Path:
    """Edit report.json in place as an attacker would (json in, json out)."""
    path = folder / "report.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc, indent=2))
    return folder


def test_hand_written_four_key_report_is_refused(settings, tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "report.json").write_text(
        json.dumps({"model": MODEL, "challenger": "1", "env": "dev", "overall": "PASS"})
    )
    # Not in the store: only reports mlgate wrote and stored are evidence.
    _refused(settings, 1, promote, settings, MODEL, "1", "dev", fake, match="not in the report")
    # Even copied into the store under its true sha256, it is no gate report (exit 2).
    put(settings, fake, None)
    _refused(settings, 2, promote, settings, MODEL, "1", "dev", fake, match="not a gate report")


def test_real_report_for_another_version_env_or_model_is_refused(settings, gate_report) -> None:
    for other, field in (
        (gate_report("2", "dev"), "challenger"),
        (gate_report("1", "stage"), "env"),
        (gate_report("1", "dev", model="other_model", policy=POLICY), "model"),
    ):
        _refused(settings, 2, promote, settings, MODEL, "1", "dev", other, match="another change")
        with pytest.raises(BadInputError) as err:
            promote(settings, MODEL, "1", "dev", other)
        assert f"`{field}`" in str(err.value)
    # A canary analysis is not a promotion report either (kind), even for the right version.
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    rep = gate_report("1", "stage")
    _rewrite(rep, lambda d: d.update(kind="canary-analysis"))
    put(settings, rep, None)
    _refused(settings, 1, promote, settings, MODEL, "1", "stage", rep, match="not verified")


def test_report_edited_after_the_fact_is_refused(settings, gate_report) -> None:
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    # FAIL in stage, edited to PASS in the folder: its bytes are no longer the stored ones.
    edited = gate_report("1", "stage", "FAIL")
    _rewrite(edited, lambda d: d.update(overall="PASS", verdict="PASS"))
    _refused(settings, 1, promote, settings, MODEL, "1", "stage", edited, match="not in the report")
    # The stored copy itself edited: its bytes no longer hash to its name.
    real = gate_report("1", "stage")
    sha = report_sha(real)
    _rewrite(local_dir(settings, sha), lambda d: d.update(champion="forged"))
    _refused(settings, 1, promote, settings, MODEL, "1", "stage", real, match="edited after")


def test_failing_gates_under_an_overall_pass_are_refused(settings, gate_report) -> None:
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))

    def forged(change) -> Path:
        rep = _rewrite(gate_report("1", "stage", "FAIL"), change)
        put(settings, rep, None)  # the attacker can write the store: the content must add up
        return rep

    def overall_pass(d: dict) -> None:
        d.update(overall="PASS", verdict="PASS")

    def non_blocking(d: dict) -> None:
        overall_pass(d)
        for g in d["gates"]:
            g["blocking"] = g["status"] == "PASS"

    def gate_dropped(d: dict) -> None:
        overall_pass(d)
        d["gates"] = [g for g in d["gates"] if g["status"] == "PASS"]

    for change, why in (
        (overall_pass, "its gates add up to FAIL"),
        (non_blocking, "fairness.blocking: False"),
        (gate_dropped, "the policy requires"),
    ):
        _refused(settings, 1, promote, settings, MODEL, "1", "stage", forged(change), match=why)
    # The real FAIL and INCONCLUSIVE reports are refused with their own exit codes.
    fail = gate_report("1", "stage", "FAIL")
    _refused(settings, 1, promote, settings, MODEL, "1", "stage", fail, match="says FAIL")
    inc = gate_report("1", "stage", "INCONCLUSIVE")
    _refused(settings, 3, promote, settings, MODEL, "1", "stage", inc, match="INCONCLUSIVE")


@pytest.mark.parametrize(
    "policy_text,field",
    [
        ("environments:\n  dev: {enforce: false}\n  stage: {}\n  prod: {gates: []}\n",
         "environments.prod.gates: empty"),
        ("environments:\n  dev: {enforce: false}\n  stage: {}\n  prod: {enforce: false}\n",
         "environments.prod.enforce"),
        ("environments:\n  dev: {}\n  stage: {gates: [performance]}\n  prod: {}\n",
         "environments.stage.gates: leaves out calibration"),
        ("environments:\n  stage: {}\n  prod: {overrides: {drift: {blocking: false}}}\n",
         "environments.prod.overrides.drift.blocking"),
        ("fairness: {blocking: false}\n", "fairness.blocking"),
    ],
)  # fmt: skip
def test_policy_switching_gates_off_in_stage_or_prod_is_refused(
    settings, gate_report, tmp_path: Path, policy_text: str, field: str
) -> None:
    policies = tmp_path / "lax"
    policies.mkdir()
    lax = policies / f"{MODEL}.yaml"
    lax.write_text(policy_text)
    with pytest.raises(ConfigError) as err:
        load_policy(lax)
    assert str(lax) in str(err.value) and field in str(err.value)
    # End to end: the promotion that would be judged under it is refused (exit 2).
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    rep = gate_report("1", "stage")
    _refused(
        settings, 2, promote, settings, MODEL, "1", "stage", rep, policies_dir=policies, match=field
    )


def test_report_judged_under_another_policy_is_refused(
    settings, gate_report, tmp_path: Path
) -> None:
    """A valid but different policy (fewer samples needed): its report does not promote under
    the policy in force, and a report of the real policy does not promote under a changed one."""
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    other = tmp_path / "other.yaml"
    other.write_text(POLICY.read_text().replace("min_labelled: 500", "min_labelled: 50"))
    rep = gate_report("1", "stage", policy=other)
    _refused(settings, 1, promote, settings, MODEL, "1", "stage", rep, match="policy_sha256")


@pytest.fixture
def prod_canary(settings, gate_report):
    """1 stable everywhere; 2 through dev and stage and a 10% canary in prod."""
    for env in ("dev", "stage", "prod"):
        promote_merged(settings, "1", env, gate_report("1", env))
    for env in ("dev", "stage"):
        promote_merged(settings, "2", env, gate_report("2", env))
    holdout = gate_report("2", "prod")
    pr = canary.start(settings, MODEL, "prod", "2", holdout, weight=10)
    prmod.merge_pr(settings, pr.branch, ["carol"])
    return holdout


def test_canary_promote_with_the_pre_canary_holdout_report_is_refused(
    settings, prod_canary: Path, canary_report
) -> None:
    holdout = prod_canary
    _refused(
        settings, 1, canary.promote_canary, settings, MODEL, "prod", holdout,
        match="needs a canary analysis",
    )  # fmt: skip
    # An analysis of this canary at 10% says ADVANCE, not PROMOTE: refused too.
    early = canary_report()
    _refused(
        settings, 1, canary.promote_canary, settings, MODEL, "prod", early,
        match="canary.decision",
    )  # fmt: skip
    # Relabelled as a promote decision: the policy's steps say 10% does not promote.
    _rewrite(early, lambda d: d["canary"].update(decision="promote"))
    put(settings, early, None)
    _refused(
        settings, 1, canary.promote_canary, settings, MODEL, "prod", early,
        match="say not promote",
    )  # fmt: skip
    # At 50% the analysis of this canary, made after it started, promotes; and merges.
    pr = canary.set_weight(settings, MODEL, "prod", 50)
    prmod.merge_pr(settings, pr.branch, ["carol"])
    ok = canary_report()
    pr = canary.promote_canary(settings, MODEL, "prod", ok)
    assert pr.trailers["gate-report"] == [report_sha(ok)]
    prmod.merge_pr(settings, pr.branch, ["carol"])
    prod = read_status(settings).model(MODEL).envs["prod"]
    assert (prod.stable_version, prod.canary_version) == ("2", None)


def test_pr_merge_refuses_a_report_tampered_after_the_pr_was_opened(
    settings, gate_report, tmp_path: Path
) -> None:
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    rep = gate_report("1", "stage")
    pr = promote(settings, MODEL, "1", "stage", rep)
    assert _ci_check(pr.branch) == 0  # the CI check runs the same verification as the merge
    stored = local_dir(settings, report_sha(rep))
    original = (stored / "report.json").read_bytes()
    _rewrite(stored, lambda d: d["gates"][0].update(summary="edited"))
    _refused(settings, 1, prmod.merge_pr, settings, pr.branch, ["alice"], match="edited after")
    assert _ci_check(pr.branch) == 1
    (stored / "report.json").write_bytes(original)
    # The version's tag now names a policy outside the reviewed directory: the merge refuses
    # to take it as the policy in force (exit 2, naming the tag and the version).
    other = tmp_path / "other.yaml"
    other.write_text(POLICY.read_text().replace("min_labelled: 500", "min_labelled: 50"))
    client = _client(settings)
    client.set_model_version_tag(MODEL, "1", "gate_policy", str(other))
    _refused(
        settings, 2, prmod.merge_pr, settings, pr.branch, ["alice"],
        match=f"gate_policy of {MODEL} version 1",
    )  # fmt: skip
    client.delete_model_version_tag(MODEL, "1", "gate_policy")
    prmod.merge_pr(settings, pr.branch, ["alice"])
    assert read_status(settings).model(MODEL).envs["stage"].stable_version == "1"


def _client(settings) -> MlflowClient:
    uri = settings.mlflow_tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_report_judged_against_another_champion_is_refused(settings, gate_report) -> None:
    """`gates run --champion 1` (an old, weak version) or a report made when the environment
    was empty (champion null) is no evidence once git runs another stable version there: at
    promote and at merge the champion must be the one git runs now."""
    for v in ("1", "2"):
        promote_merged(settings, v, "dev", gate_report(v, "dev"))
        promote_merged(settings, v, "stage", gate_report(v, "stage"))
    promote_merged(settings, "3", "dev", gate_report("3", "dev"))
    old = gate_report("3", "stage", champion="1")
    _refused(settings, 1, promote, settings, MODEL, "3", "stage", old, match="champion: judged")
    empty = gate_report("3", "stage", champion=None)
    _refused(settings, 1, promote, settings, MODEL, "3", "stage", empty, match="'2' runs stable")
    # Judged against 2 (git's stable version), the PR opens; then 4 lands in stage first: the
    # report no longer says how 3 compares with what runs, the merge and the CI check refuse it.
    pr = promote(settings, MODEL, "3", "stage", gate_report("3", "stage"))
    promote_merged(settings, "4", "dev", gate_report("4", "dev"))
    promote_merged(settings, "4", "stage", gate_report("4", "stage"))
    _refused(settings, 1, prmod.merge_pr, settings, pr.branch, ["alice"], match="champion")
    assert _ci_check(pr.branch) == 1
    assert read_status(settings).model(MODEL).envs["stage"].stable_version == "4"


def test_champion_unreadable_from_git_is_inconclusive(settings, gate_report) -> None:
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    rep = gate_report("1", "stage")
    broken = settings.model_copy(
        update={"gitops": settings.gitops.model_copy(update={"branch": "no-such-branch"})}
    )
    with pytest.raises(Inconclusive, match="cannot be read"):
        from mlgate.gitops.evidence import verify_evidence

        verify_evidence(broken, report_sha(rep), model=MODEL, version="1", env="stage")
    assert read_status(settings).model(MODEL).envs.get("stage") is None


@pytest.mark.parametrize(
    "named",
    ["{lax}", "../policies/credit_risk.yaml", "policies/credit_risk.yaml", "..", "nope.yaml"],
)
def test_gate_policy_tag_outside_the_reviewed_directory_is_refused(
    settings, gate_report, tmp_path: Path, named: str
) -> None:
    """The author sets `gate_policy` on their own version to a lax policy (1 labelled row is
    enough) and judges under it: the digests match, but gates run and promote refuse the tag."""
    from mlgate.gates.run import run_gates_for_model

    lax = tmp_path / "lax.yaml"
    lax.write_text(POLICY.read_text().replace("min_labelled: 500", "min_labelled: 1"))
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    rep = gate_report("1", "stage", policy=lax)
    client = _client(settings)
    client.set_model_version_tag(MODEL, "1", "gate_policy", named.format(lax=lax))
    why = f"MLflow tag gate_policy of {MODEL} version 1"
    _refused(settings, 2, promote, settings, MODEL, "1", "stage", rep, match=why)
    with pytest.raises(BadInputError, match=why):  # before any work, nothing written
        run_gates_for_model(
            settings, model=MODEL, challenger="1", env="stage", report_dir=tmp_path / "out"
        )
    assert not (tmp_path / "out").exists()
    # The reviewed policy named by its file name is the policy in force: the real report passes.
    client.set_model_version_tag(MODEL, "1", "gate_policy", "credit_risk.yaml")
    promote_merged(settings, "1", "stage", gate_report("1", "stage"))
    assert read_status(settings).model(MODEL).envs["stage"].stable_version == "1"


def test_served_cutoff_unreadable_is_never_the_policy_value(settings, gate_report) -> None:
    """`cutoff.method: overlay` with git unreadable: no silent fall back to the policy's value."""
    from mlgate.gates.collect import overlay_cutoff, with_served_cutoff
    from mlgate.gates.policy import load_policy
    from mlgate.gitops.status import StateUnreadable

    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    assert overlay_cutoff(settings, MODEL, "dev") is not None
    broken = settings.model_copy(
        update={"gitops": settings.gitops.model_copy(update={"branch": "no-such-branch"})}
    )
    policy = load_policy(POLICY)
    policy = policy.model_copy(
        update={"cutoff": policy.cutoff.model_copy(update={"method": "overlay"})}
    )
    with pytest.raises(StateUnreadable):
        overlay_cutoff(broken, MODEL, "dev")
    with pytest.raises(StateUnreadable):
        with_served_cutoff(broken, MODEL, "dev", policy)


def _ci_check(branch: str) -> int:
    """`mlgate pr verify BRANCH` as the CLI runs it: its exit code."""
    from typer.testing import CliRunner

    from mlgate.cli import app
    from mlgate.errors import MlgateError

    result = CliRunner().invoke(app, ["pr", "verify", branch, "--json"])
    if isinstance(result.exception, MlgateError):
        return result.exception.exit_code
    return result.exit_code


def test_report_found_in_mlflow_when_the_workspace_copy_is_gone(settings, gate_report) -> None:
    """The store's MLflow copy (the version's run) serves a machine without the workspace
    copy: what `pr merge` on another machine or a CI check does."""
    rep = gate_report("1", "dev")
    pr = promote(settings, MODEL, "1", "dev", rep)
    shutil.rmtree(local_dir(settings, report_sha(rep)))
    prmod.merge_pr(settings, pr.branch, ["alice"])
    assert read_status(settings).model(MODEL).envs["dev"].stable_version == "1"


def test_break_glass_needs_a_reason_and_two_approvers_other_than_the_author(
    settings, gate_report
) -> None:
    promote_merged(settings, "1", "dev", gate_report("1", "dev"))
    fail = gate_report("1", "stage", "FAIL")
    _refused(
        settings, 2, promote, settings, MODEL, "1", "stage", fail, override_reason="  ",
        match="reason",
    )  # fmt: skip
    pr = promote(settings, MODEL, "1", "stage", fail, override_reason="incident 42: fix now")
    assert pr.trailers["override-reason"] == ["incident 42: fix now"]
    _refused(settings, 1, prmod.merge_pr, settings, pr.branch, ["alice"], match="two approvers")
    prmod.merge_pr(settings, pr.branch, ["alice", "bob"])
    assert read_status(settings).model(MODEL).envs["stage"].stable_version == "1"


def test_the_verifier_requires_exactly_the_checks_the_canary_judge_runs() -> None:
    """`gates.verify.CANARY_CHECKS` is what a canary analysis must contain: the judge's own."""
    from datetime import UTC, datetime

    from mlgate.canary.analysis import CanaryState, judge
    from mlgate.gates.policy import GatePolicy
    from mlgate.gates.verify import CANARY_CHECKS

    state = CanaryState(
        model=MODEL, env="prod", stable_version="1", canary_version="2", weight=10,
        cutoff=0.15, now=datetime.now(UTC),
    )  # fmt: skip
    verdict = judge(state, None, None, None, GatePolicy())
    assert [g.name for g in verdict.report.gates] == list(CANARY_CHECKS)
