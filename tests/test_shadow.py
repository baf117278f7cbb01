"""Shadow first: `mlgate shadow start|stop` on a real git remote and MLflow registry, the
rendered overlay with a shadow, the shadow analysis on logged request pairs (PASS on an
identical model, FAIL on one whose flips fall on one group), and a shadow compared and then
started as a canary (which replaces it)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from mlgate.canary.shadow import ShadowPairs, judge_shadow
from mlgate.canary.shadow_run import analyze_shadow, events_file
from mlgate.config import REPO_ROOT, load_settings
from mlgate.data.dataset_config import DatasetConfig
from mlgate.errors import BadInputError
from mlgate.gates.policy import load_policy
from mlgate.gates.result import GateStatus
from mlgate.gitops import canary, shadow
from mlgate.gitops import pr as prmod
from mlgate.gitops.kubectl import kustomize
from mlgate.gitops.overlay import Release, overlay_dir, read_release, write_release
from mlgate.gitops.repo import GitopsRepo
from mlgate.gitops.rollback import rollback
from mlgate.gitops.status import canary_started, read_status
from mlgate.gitops.validate import validate_tree
from mlgate.serving.logsink import LogEvent
from tests.gitops_helpers import MODEL, cli, main_message, promote_merged, remote_refs
from tests.test_attack_merge import _clone, _git, _hand_pr
from tests.test_gitops_validate import inited_copy

MIN_REQUESTS = 400


def _pds(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(PD, group) of n applicants: half in group a, half in b, PDs around the 0.15 cut-off."""
    rng = np.random.default_rng(seed)
    return rng.beta(2, 12, n), np.where(np.arange(n) % 2 == 0, "a", "b")


def _biased(pd_stable: np.ndarray, group: np.ndarray) -> np.ndarray:
    """The shadow scores group b's approved applicants above the cut-off: its flips are all
    added declines in group b."""
    out = pd_stable.copy()
    hit = (group == "b") & (pd_stable < 0.15) & (pd_stable > 0.08)
    out[hit] = 0.2
    return out


# --- the pure judge --------------------------------------------------------------------------


def _policy():
    return load_policy(REPO_ROOT / "config/policies/credit_risk.yaml").for_env("prod")


def _judge(pd_stable, pd_shadow, groups):
    return judge_shadow(
        model=MODEL,
        env="prod",
        stable_version="1",
        shadow_version="2",
        cutoff=0.15,
        pairs=ShadowPairs(pd_stable, pd_shadow, groups),
        policy=_policy(),
    )


def test_identical_shadow_passes_and_biased_one_fails_on_the_group() -> None:
    pd_st, group = _pds(3000)
    groups = pd.DataFrame({"sex": group})
    same = _judge(pd_st, pd_st.copy(), groups)
    assert same.kind == "shadow-analysis" and same.overall == GateStatus.PASS
    assert [g.name for g in same.gates] == ["volume", "score_drift", "decision_flips", "flip_pnl"]
    flips = next(g for g in same.gates if g.name == "decision_flips")
    assert flips.metrics["flips"] == 0

    biased = _judge(pd_st, _biased(pd_st, group), groups)
    assert biased.overall == GateStatus.FAIL
    flips = next(g for g in biased.gates if g.name == "decision_flips")
    assert flips.status == GateStatus.FAIL
    assert any(r.startswith("sex=b:") for r in flips.reasons)
    assert not any(r.startswith("sex=a:") for r in flips.reasons)
    assert flips.metrics["added_approvals"] == 0 and flips.metrics["added_declines"] > 0
    pnl = next(g for g in biased.gates if g.name == "flip_pnl")
    assert pnl.metrics["pnl_difference_per_request"] < 0  # declining good loans costs margin

    # without protected attributes the group check cannot be made: never a PASS
    assert _judge(pd_st, pd_st.copy(), None).overall == GateStatus.INCONCLUSIVE
    # too few paired requests: INCONCLUSIVE
    few = _judge(pd_st[:50], pd_st[:50].copy(), groups[:50])
    assert next(g for g in few.gates if g.name == "volume").status == GateStatus.INCONCLUSIVE


def test_flips_with_no_group_large_enough_to_judge_are_inconclusive_not_pass() -> None:
    pd_st, _ = _pds(3000)
    # every applicant in their own group: none reaches min_group_size, so nothing is judged
    groups = pd.DataFrame({"sex": [f"g{i}" for i in range(len(pd_st))]})
    rep = _judge(pd_st, pd_st.copy(), groups)
    flips = next(g for g in rep.gates if g.name == "decision_flips")
    assert flips.status == GateStatus.INCONCLUSIVE, flips.summary
    assert not any(row["judged"] for row in flips.details["by_group"])
    assert rep.overall != GateStatus.PASS


# --- the overlay -----------------------------------------------------------------------------


def test_rendered_overlay_with_a_shadow_validates(tmp_path: Path) -> None:
    tree = inited_copy(tmp_path / "tree")
    rel = read_release(tree, "credit_risk", "prod")
    assert rel is not None and rel.canary_version == "2"
    image = "registry.bank.example/credit-risk@sha256:" + "3" * 64
    write_release(tree, rel.model_copy(update={"shadow_version": "3", "shadow_image": image}))
    report = validate_tree(tree, load_settings().crd_schema_dir())
    assert report.ok, [p.model_dump() for p in report.all_problems()]
    docs = list(yaml.safe_load_all(kustomize(tree / overlay_dir("credit_risk", "prod"))))
    sdep = next(d for d in docs if d and d["kind"] == "SeldonDeployment")
    preds = {p["name"]: p for p in sdep["spec"]["predictors"]}
    assert set(preds) == {"stable", "canary", "shadow"}
    sh = preds["shadow"]
    assert sh["shadow"] is True and "traffic" not in sh and sh["labels"]["version"] == "3"
    container = sh["componentSpecs"][0]["spec"]["containers"][0]
    assert container["image"] == image
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLSERVER_MODEL_VERSION"] == "3" and env["MLGATE_CUTOFF"] == "0.15"
    assert sh["graph"]["logger"] == preds["stable"]["graph"]["logger"]  # request logging
    # a version never runs as shadow and canary at once
    with pytest.raises(ValueError, match="shadow and as stable or canary"):
        Release.model_validate(rel.model_dump() | {"shadow_version": "2", "shadow_image": image})
    # stopping the shadow removes the component again
    write_release(tree, rel)
    kus = (tree / overlay_dir("credit_risk", "prod") / "kustomization.yaml").read_text()
    assert "components/shadow" not in kus


# --- start / stop / analyze / canary, on a real remote ---------------------------------------


@pytest.fixture
def shadow_first(gitops_ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Policies with canary.phases [shadow, canary, full] (a small shadow volume), and the
    dataset config logged with every version's run (protected attribute `sex` by customer)."""
    policies = tmp_path / "policies"
    policies.mkdir()
    doc = yaml.safe_load((REPO_ROOT / "config/policies/credit_risk.yaml").read_text())
    doc["canary"]["phases"] = ["shadow", "canary", "full"]
    doc["canary"]["shadow"]["min_requests"] = MIN_REQUESTS
    doc["canary"]["shadow"]["min_group_size"] = 50
    (policies / "credit_risk.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("MLGATE_POLICY_DIR", str(policies))
    n = 1000
    pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "sex": _pds(n)[1]}).to_parquet(
        tmp_path / "protected.parquet"
    )
    ds = DatasetConfig(
        name="shadow_world",
        format="parquet",
        path=str(tmp_path / "apps.parquet"),
        entity_key="customer_id",
        event_timestamp="application_date",
        label="default_12m",
        numeric_features=["income"],
        protected_attributes=["sex"],
        protected_path=str(tmp_path / "protected.parquet"),
    )
    settings = load_settings()
    uri = settings.mlflow_tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for mv in client.search_model_versions(f"name='{MODEL}'"):
        client.log_dict(mv.run_id, ds.model_dump(mode="json"), "config/dataset_config.json")
    return settings


def _events(path: Path, stable: str, shadow_v: str, shadow_pd) -> Path:
    """The sink's export as the router logs it: per batch of 100 applicants one V2 request
    (`id` the caller's) answered by stable, and its mirrored copy answered by the shadow under
    its own Seldon-Puid."""
    pd_st, _ = _pds(MIN_REQUESTS + 200)
    pd_sh = shadow_pd(pd_st, _pds(MIN_REQUESTS + 200)[1])
    events: list[LogEvent] = []
    for b in range(0, len(pd_st), 100):
        ids = [f"c{i}" for i in range(b, b + 100)]
        body = {
            "id": f"batch-{b}",
            "inputs": [
                {"name": "customer_id", "datatype": "BYTES", "shape": [100], "data": ids},
                {"name": "income", "datatype": "FP64", "shape": [100], "data": [1.0] * 100},
            ],
        }
        for predictor, version, values in (
            ("stable", stable, pd_st),
            ("shadow", shadow_v, pd_sh),
        ):
            puid = str(uuid.uuid4())
            answer = {
                "id": f"batch-{b}",
                "outputs": [
                    {
                        "name": "pd",
                        "datatype": "FP64",
                        "shape": [100],
                        "data": list(values[b : b + 100]),
                    },
                    {
                        "name": "model_version",
                        "datatype": "BYTES",
                        "shape": [100],
                        "data": [version] * 100,
                    },
                ],
            }
            for kind, payload in (("request", body), ("response", answer)):
                events.append(
                    LogEvent(
                        id=str(uuid.uuid4()),
                        kind=kind,
                        request_id=puid,
                        namespace="credit-risk-prod",
                        deployment="model",
                        predictor=predictor,
                        time="2026-11-30T09:00:00Z",
                        body=payload,
                    )
                )
    return events_file(events, path)


def test_shadow_start_analyze_then_canary_replaces_it(
    shadow_first, gate_report, tmp_path: Path
) -> None:
    settings = shadow_first
    for env in ("dev", "stage", "prod"):
        promote_merged(settings, "1", env, gate_report("1", env), approver="carol")
    for env in ("dev", "stage"):
        promote_merged(settings, "2", env, gate_report("2", env))

    # evidence: a gate report is required, and only a verified PASS starts a shadow
    before = remote_refs(settings)
    with pytest.raises(BadInputError, match="--report"):
        shadow.start(settings, MODEL, "prod", "2", None)
    with pytest.raises(prmod.Refused, match="FAIL"):
        shadow.start(settings, MODEL, "prod", "2", gate_report("2", "prod", "FAIL"))
    with pytest.raises(prmod.Refused, match="not been promoted to stage"):
        shadow.start(settings, MODEL, "prod", "3", gate_report("3", "prod"))
    assert remote_refs(settings) == before

    report = gate_report("2", "prod")
    pr = shadow.start(settings, MODEL, "prod", "2", report)
    assert pr.branch == "shadow/credit_risk-2-prod-start" and pr.change == "shadow-start"
    assert pr.trailers["gate-report"] and pr.trailers["image"][0].endswith(
        pr.trailers["image-digest"][0]
    )

    # the merge's diff check: a shadow start that also moves the cut-off is refused
    clone = _clone(settings, tmp_path, pr.branch)
    release = clone / overlay_dir(MODEL, "prod") / "release.yaml"
    release.write_text(release.read_text().replace('cutoff: "0.15"', 'cutoff: "0.30"'))
    _hand_pr(clone, pr.branch, _git(clone, "log", "-1", "--format=%B"), amend=True)
    before = remote_refs(settings)
    with pytest.raises(prmod.Refused, match="changes more than the shadow"):
        prmod.merge_pr(settings, pr.branch, ["carol"])
    assert remote_refs(settings) == before
    prmod.close_pr(settings, pr.branch)

    pr = shadow.start(settings, MODEL, "prod", "2", report)
    prmod.merge_pr(settings, pr.branch, ["carol"])
    prod = read_status(settings).model(MODEL).envs["prod"]
    assert (prod.stable_version, prod.shadow_version, prod.canary_version) == ("1", "2", None)
    assert prod.stable_traffic == 100
    assert "Change: shadow-start" in main_message(settings)
    rendered = kustomize(GitopsRepo.locate(settings).work / overlay_dir(MODEL, "prod"))
    assert "shadow: true" in rendered
    with pytest.raises(prmod.Refused, match="already runs"):
        shadow.start(settings, MODEL, "prod", "2", report)

    # the policy declares shadow first: no canary without the shadow's verdict
    with pytest.raises(BadInputError, match="--shadow-report"):
        canary.start(settings, MODEL, "prod", "2", report)

    # a biased shadow FAILs (exit 1) and is no evidence for a canary
    biased = _events(tmp_path / "biased.jsonl", "1", "2", _biased)
    code, out, err = cli(
        "shadow", "analyze", "--model", MODEL, "--env", "prod", "--requests", str(biased),
        "--report", str(tmp_path / "shadow-biased"), "--json",
    )  # fmt: skip
    assert code == 1, err
    rep = json.loads(out)["report"]
    flips = next(g for g in rep["gates"] if g["name"] == "decision_flips")
    assert flips["status"] == "FAIL"
    assert any(r.startswith("sex=b:") for r in flips["reasons"]), flips["reasons"]
    with pytest.raises(prmod.Refused, match="FAIL"):
        canary.start(settings, MODEL, "prod", "2", report, shadow_report=tmp_path / "shadow-biased")

    # the identical shadow PASSes; it starts the canary, which replaces the shadow
    same = _events(tmp_path / "same.jsonl", "1", "2", lambda p, _g: p.copy())
    verdict, _ = analyze_shadow(
        settings, model=MODEL, env="prod", requests=same, report_dir=tmp_path / "shadow-ok"
    )
    assert verdict.overall == GateStatus.PASS, verdict.warnings
    assert verdict.data["paired"] == MIN_REQUESTS + 200
    pr = canary.start(settings, MODEL, "prod", "2", report, shadow_report=tmp_path / "shadow-ok")
    assert pr.trailers["shadow-report"] and pr.trailers["canary-weight"] == ["10"]
    # the merge re-checks the shadow phase: the same commit without its Shadow-Report is refused
    clone = _clone(settings, tmp_path / "c2", pr.branch)
    message = _git(clone, "log", "-1", "--format=%B")
    stripped = "\n".join(x for x in message.splitlines() if not x.startswith("Shadow-Report:"))
    _hand_pr(clone, pr.branch, stripped + "\n", amend=True)
    with pytest.raises(prmod.Refused, match="names no shadow analysis"):
        prmod.merge_pr(settings, pr.branch, ["carol"])
    prmod.close_pr(settings, pr.branch)
    pr = canary.start(settings, MODEL, "prod", "2", report, shadow_report=tmp_path / "shadow-ok")
    prmod.merge_pr(settings, pr.branch, ["carol"])
    prod = read_status(settings).model(MODEL).envs["prod"]
    assert (prod.canary_version, prod.canary_weight, prod.shadow_version) == ("2", 10, None)
    rendered = kustomize(GitopsRepo.locate(settings).work / overlay_dir(MODEL, "prod"))
    assert "shadow: true" not in rendered and "name: canary" in rendered
    # the canary's clock starts with the canary, not with the shadow before it
    assert canary_started(settings, MODEL, "prod", "2") == prod.last_commit_time


def test_shadow_stop_and_quarantine(shadow_first, gate_report) -> None:
    settings = shadow_first
    for env in ("dev", "stage"):
        promote_merged(settings, "1", env, gate_report("1", env), approver="carol")
    promote_merged(settings, "2", "dev", gate_report("2", "dev"))
    # 3 reaches dev and is rolled back: quarantined, it never runs as a shadow
    promote_merged(settings, "3", "dev", gate_report("3", "dev"))
    prmod.merge_pr(settings, rollback(settings, MODEL, "dev", "bad").branch, ["bob"])
    with pytest.raises(prmod.Refused, match="quarantined"):
        shadow.start(settings, MODEL, "dev", "3", gate_report("3", "dev"))

    pr = shadow.start(settings, MODEL, "stage", "2", gate_report("2", "stage"))
    prmod.merge_pr(settings, pr.branch, ["alice"])
    assert read_status(settings).model(MODEL).envs["stage"].shadow_version == "2"
    # stopping restores what ran before: one listed approver, no model-risk role needed
    stop = shadow.stop(settings, MODEL, "stage")
    assert stop.change == "shadow-stop" and stop.trailers.get("gate-report") is None
    prmod.merge_pr(settings, stop.branch, ["bob"])
    assert read_status(settings).model(MODEL).envs["stage"].shadow_version is None
    with pytest.raises(prmod.Refused, match="no shadow runs"):
        shadow.stop(settings, MODEL, "stage")
