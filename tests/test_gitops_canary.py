"""Canary steps and MLflow alias mirroring, on a real git remote and a real MLflow registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from mlgate.config import load_settings
from mlgate.errors import BadInputError
from mlgate.gitops import canary
from mlgate.gitops import pr as prmod
from mlgate.gitops.aliases import sync_aliases
from mlgate.gitops.kubectl import kustomize
from mlgate.gitops.repo import GitopsRepo
from mlgate.gitops.rollback import rollback
from mlgate.gitops.status import canary_started, read_status
from tests.gitops_helpers import MODEL, main_message, promote_merged, remote_refs


@pytest.fixture
def settings(gitops_ws: Path):
    return load_settings()


def _prod(settings):
    return read_status(settings).model(MODEL).envs["prod"]


def _aliases(settings) -> dict[str, str]:
    uri = settings.mlflow_tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return {k: str(v) for k, v in client.get_registered_model(MODEL).aliases.items()}


@pytest.fixture
def prod_with_canary(settings, gate_report):
    """1 stable in every env, 2 in dev and stage and as a 10% canary in prod."""
    for env in ("dev", "stage", "prod"):
        promote_merged(settings, "1", env, gate_report("1", env))
    for env in ("dev", "stage"):
        promote_merged(settings, "2", env, gate_report("2", env))
    pr = canary.start(settings, MODEL, "prod", "2", gate_report("2", "prod"), weight=10)
    prmod.merge_pr(settings, pr.branch, ["carol"])
    return settings


def _render_prod(settings) -> str:
    repo = GitopsRepo.locate(settings)
    return kustomize(repo.work / "manifests/models/credit_risk/prod")


def test_canary_set_weight_promote_and_aliases(
    prod_with_canary, gate_report, canary_report
) -> None:
    settings = prod_with_canary
    assert (_prod(settings).canary_version, _prod(settings).canary_weight) == ("2", 10)
    fixed = sync_aliases(settings)
    assert {(f.alias, f.after) for f in fixed.fixed} == {
        ("dev", "2"),
        ("stage", "2"),
        ("prod", "1"),
        ("champion", "1"),
    }
    assert sync_aliases(settings).fixed == []  # idempotent

    with pytest.raises(BadInputError, match="1..99"):
        canary.set_weight(settings, MODEL, "prod", 0)
    entered = canary_started(settings, MODEL, "prod", "2")
    assert entered is not None and entered == _prod(settings).last_commit_time
    pr = canary.set_weight(settings, MODEL, "prod", 50)
    prmod.merge_pr(settings, pr.branch, ["carol"])
    assert (_prod(settings).canary_weight, _prod(settings).stable_traffic) == (50, 50)
    # A weight step is not a new start: the canary's deadline still counts from its entry.
    assert canary_started(settings, MODEL, "prod", "2") == entered
    assert canary_started(settings, MODEL, "prod", "1") is None  # v1 is not what changed last
    rendered = _render_prod(settings)
    assert rendered.count("traffic: 50") == 2

    # only an analysis of this canary that decides PROMOTE promotes it (tests/test_attack_evidence)
    with pytest.raises(prmod.Refused, match="FAIL"):
        canary.promote_canary(settings, MODEL, "prod", canary_report(status="FAIL"))
    # nor one judged on outcomes simulated from the synthetic world's oracle
    with pytest.raises(prmod.Refused, match="outcomes_simulated"):
        canary.promote_canary(settings, MODEL, "prod", canary_report(simulated=True))
    pr = canary.promote_canary(settings, MODEL, "prod", canary_report())
    prmod.merge_pr(settings, pr.branch, ["carol"])
    prod = _prod(settings)
    assert (prod.stable_version, prod.canary_version, prod.stable_traffic) == ("2", None, 100)
    rendered = _render_prod(settings)
    assert "name: canary\n" not in rendered and "traffic: 100" in rendered
    assert "Change: canary-promote" in main_message(settings)
    fixed = sync_aliases(settings)
    assert {(f.alias, f.before, f.after) for f in fixed.fixed} == {
        ("prod", "1", "2"),
        ("champion", "1", "2"),
    }

    # rollback of the canary promotion: canary back at 50%; version 2 still serves (as the
    # canary), so it is not quarantined (gitops.quarantine.quarantined_by_revert)
    rb = rollback(settings, MODEL, "prod", "late defaults")
    assert "quarantined" not in rb.trailers
    prmod.merge_pr(settings, rb.branch, ["carol"])
    prod = _prod(settings)
    assert (prod.stable_version, prod.canary_version, prod.canary_weight) == ("1", "2", 50)
    assert read_status(settings).model(MODEL).quarantined == []
    fixed = sync_aliases(settings)
    assert {(f.alias, f.after) for f in fixed.fixed} == {("prod", "1"), ("champion", "1")}
    assert _aliases(settings) == {"dev": "2", "stage": "2", "prod": "1", "champion": "1"}


def test_canary_abort_quarantines_and_is_break_glass(prod_with_canary) -> None:
    settings = prod_with_canary
    pr = canary.abort(settings, MODEL, "prod", "approval rate collapsed")
    # restoring change: one listed approver of any role (no model-risk needed in prod), never
    # its author
    with pytest.raises(BadInputError, match="mlgate-test"):
        prmod.merge_pr(settings, pr.branch, ["mlgate-test"])
    prmod.merge_pr(settings, pr.branch, ["bob"])
    st = read_status(settings).model(MODEL)
    assert st.envs["prod"].canary_version is None and st.envs["prod"].stable_traffic == 100
    assert [q.version for q in st.quarantined] == ["2"]
    assert "approval rate collapsed" in st.quarantined[0].reason
    with pytest.raises(prmod.Refused, match="no canary"):
        canary.set_weight(settings, MODEL, "prod", 20)
    with pytest.raises(prmod.Refused, match="itself a canary-abort"):
        rollback(settings, MODEL, "prod")


def test_canary_needs_a_stable_version(settings, gate_report) -> None:
    with pytest.raises(prmod.Refused, match="no stable version"):
        canary.start(settings, MODEL, "prod", "1", gate_report("1", "prod"))


def test_canary_analysis_verdicts_become_their_pull_requests(prod_with_canary, tmp_path) -> None:
    from mlgate.canary.analysis import CanaryVerdict
    from mlgate.canary.run import act_on
    from mlgate.gates.result import GateReport

    settings = prod_with_canary
    check_scheduled_analysis_runs_only_where_a_canary_runs(settings)

    def verdict(decision: str, **kw: object) -> CanaryVerdict:
        report = GateReport(
            model=MODEL, challenger="2", champion="1", env="prod", overall="PASS", verdict="PASS"
        )
        return CanaryVerdict(decision=decision, report=report, **kw)  # type: ignore[arg-type]

    assert act_on(settings, verdict("wait"), tmp_path) is None
    step = act_on(settings, verdict("advance", next_weight=25), tmp_path)
    assert step.branch.endswith("-weight-25") and "10% -> 25%" in step.subject
    assert _prod(settings).canary_weight == 10  # advancing waits for a reviewer's merge
    # Abort is break-glass: pushed to main at once, canary removed and version quarantined,
    # no pull request and no approval.
    before = remote_refs(settings)
    stop = act_on(settings, verdict("abort", reasons=["fairness: sex 0.7 < 0.8"]), tmp_path)
    after = remote_refs(settings)
    assert stop.commit == after["refs/heads/main"] != before["refs/heads/main"]
    assert {r for r in after if r.startswith("refs/heads/")} == {
        r for r in before if r.startswith("refs/heads/")
    }  # no abort branch: nothing waits for a merge
    st = read_status(settings).model(MODEL)
    assert st.envs["prod"].canary_version is None  # all traffic back to stable
    assert st.envs["prod"].stable_version == "1"
    assert [q.version for q in st.quarantined] == ["2"]
    message = main_message(settings)
    assert "canary analysis: fairness: sex 0.7 < 0.8" in message
    assert "Change: canary-abort" in message and "Approved-by" not in message
    assert "Break-glass abort by the scheduled canary analysis" in message
    assert "kind: CronJob" not in _render_prod(settings)  # the analysis went with the canary


def _docs(settings, env: str) -> list[dict]:
    repo = GitopsRepo.locate(settings)
    return [
        d for d in yaml.safe_load_all(kustomize(repo.work / f"manifests/models/{MODEL}/{env}")) if d
    ]


def check_scheduled_analysis_runs_only_where_a_canary_runs(settings) -> None:
    """Rendered from the GitOps repository: the CronJob (with --act, the Secrets' keys, the
    pinned platform image) exists only in the overlay with a canary."""
    from mlgate.pipelines.platform import GIT_ENV, GIT_SECRET, MLFLOW_ENV, MLFLOW_SECRET

    for env in ("dev", "stage"):  # no canary there: no CronJob, no analysis policy
        kinds = {(d["kind"], d["metadata"]["name"]) for d in _docs(settings, env)}
        assert ("CronJob", "canary-analysis") not in kinds
        assert ("NetworkPolicy", "canary-analysis") not in kinds
    prod = _docs(settings, "prod")
    (cron,) = [d for d in prod if d["kind"] == "CronJob"]
    (smoke,) = [d for d in prod if d["kind"] == "Job" and d["metadata"]["name"] == "smoke-test"]
    assert any(
        d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "canary-analysis" for d in prod
    )
    (c,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert c["args"][:2] == ["canary", "analyze"] and "--act" in c["args"]
    assert c["args"][c["args"].index("--requests") + 1] == "$(LOGSINK_URL)"
    env = {e["name"]: e for e in c["env"]}
    assert env["MLGATE_MODEL"]["value"] == MODEL and env["MLGATE_ENV"]["value"] == "prod"
    # the platform image as the base bundle pins it (one digest, the smoke test's)
    assert c["image"] == smoke["spec"]["template"]["spec"]["containers"][0]["image"]
    assert "@sha256:" in c["image"]
    # the git remote is the GitOps repository itself; credentials come from the pipelines'
    # Secrets under the same keys and variable names
    assert (
        env["MLGATE_GITOPS__REMOTE"]["value"]
        == Path(GitopsRepo.locate(settings).remote).resolve().as_uri()
    )
    refs = {
        name: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for name, e in env.items()
        if "valueFrom" in e
    }
    wanted = {var: (GIT_SECRET, key) for key, var in GIT_ENV.items()} | {
        var: (MLFLOW_SECRET, key) for key, var in MLFLOW_ENV.items()
    }
    assert refs and all(wanted[var] == ref for var, ref in refs.items()), refs
    assert refs["GITHUB_TOKEN"] == (GIT_SECRET, "token")
    assert not env["GITHUB_TOKEN"]["valueFrom"]["secretKeyRef"].get("optional")  # fail closed


def test_git_answers_an_https_remote_with_the_token_of_the_secret(monkeypatch) -> None:
    """The CronJob pushes with GITHUB_TOKEN (Secret mlgate-git): git's own credential protocol
    gets it from the environment, for https only, and no argument or URL carries it."""
    from mlgate.gitops.repo import run_git

    monkeypatch.setenv("GITHUB_TOKEN", "ghs_" + "t" * 36)
    ask = "protocol=https\nhost=git.bank.example\npath=platform/mlgate.git\n\n"
    got = run_git(["credential", "fill"], input=ask)
    assert "username=x-access-token" in got and "password=ghs_" + "t" * 36 in got
    plain = run_git(["credential", "fill"], input="protocol=http\nhost=h.example\n\n", check=False)
    assert "ghs_" not in plain
    monkeypatch.delenv("GITHUB_TOKEN")
    assert "ghs_" not in run_git(["credential", "fill"], input=ask, check=False)
