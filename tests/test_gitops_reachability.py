"""NetworkPolicy reachability (`mlgate.gitops.reachability`) on the rendered manifests: the
shipped ones pass; a policy broken on purpose (an egress rule or DNS removed, a wrong port, a
wrong label, an ssh remote no rule admits) is caught naming workload, endpoint and policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlgate.config import REPO_ROOT, load_settings
from mlgate.gitops.reachability import Unreachable, check_reachability, parse_endpoint
from mlgate.gitops.validate import find_targets, render, validate_tree
from tests.test_gitops_validate import inited_copy

LOGSINK_READ = "http://mlgate-logsink.mlgate-system.svc.cluster.local:8081"
MLFLOW = "http://mlflow.mlflow.svc.cluster.local:5000"
CRON = "CronJob/canary-analysis"


def rendered(root: Path) -> dict[str, list[dict[str, Any]]]:
    return {str(t.relative_to(root)): render(t) for t in find_targets(root)}


def findings(root: Path) -> list[Unreachable]:
    return check_reachability(rendered(root))


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return inited_copy(tmp_path / "tree")


def test_shipped_manifests_reach_everything_they_call() -> None:
    docs = rendered(REPO_ROOT)
    assert check_reachability(docs) == []
    # and the check did look: the analysis names the sink, MLflow and the git remote
    from mlgate.gitops.reachability import workload_pods

    cron = next(
        p for t, ds in docs.items() for d in ds for p in workload_pods(t, d) if p.workload == CRON
    )
    assert {e.port for e in cron.endpoints} == {8081, 5000, 443}


def test_removed_egress_rule_names_workload_endpoint_and_policies(tree: Path) -> None:
    _edit(
        tree / "manifests/components/canary/canary-analysis-networkpolicy.yaml",
        "    - to:\n        - namespaceSelector:\n            matchLabels:\n"
        "              kubernetes.io/metadata.name: mlflow\n      ports:\n"
        "        - protocol: TCP\n          port: 5000\n",
        "",
    )
    (f,) = findings(tree)
    assert (f.target, f.workload, f.endpoint, f.side) == (
        "manifests/models/credit_risk/prod",
        CRON,
        MLFLOW,
        "egress",
    )
    assert "env MLGATE_MLFLOW__TRACKING_URI" in f.message
    assert "allow-serving, canary-analysis, default-deny" in f.message


def test_removed_dns_is_caught_for_every_workload_that_resolves_a_name(tree: Path) -> None:
    _edit(
        tree / "manifests/base/networkpolicy.yaml",
        "        - protocol: UDP\n          port: 53\n",
        "",
    )
    got = findings(tree)
    assert got and all(f.side == "dns" for f in got)
    assert all("53/UDP" in f.message and "53/TCP" not in f.message for f in got)
    workloads = {(f.target.rsplit("/", 1)[-1], f.workload) for f in got}
    assert ("prod", CRON) in workloads
    assert ("dev", "Job/smoke-test") in workloads
    assert ("prod", "SeldonDeployment/model predictor canary") in workloads
    assert not any("mlgate-system" in f.target for f in got)  # the sink calls nobody


def test_wrong_port_on_the_callee_side_is_an_ingress_finding(tree: Path) -> None:
    path = tree / "manifests/platform/networkpolicy.yaml"
    text = path.read_text()
    path.write_text(text.replace("port: 8081", "port: 8082"))
    got = findings(tree)
    assert {(f.workload, f.endpoint, f.side) for f in got} == {
        ("Job/smoke-test", LOGSINK_READ, "ingress"),
        (CRON, LOGSINK_READ, "ingress"),
    }
    assert all(
        "Deployment/mlgate-logsink (mlgate-system)" in f.message and "logsink-read" in f.message
        for f in got
    )
    assert len([f for f in got if f.workload == "Job/smoke-test"]) == 3  # dev, stage, prod


def test_wrong_label_on_a_caller_and_on_a_service(tree: Path) -> None:
    _edit(
        tree / "manifests/base/smoke-test-hook.yaml",
        "app.kubernetes.io/component: smoke-test",
        "app.kubernetes.io/component: smoke",
    )
    got = findings(tree)
    assert got and {(f.workload, f.side) for f in got} == {("Job/smoke-test", "ingress")}
    _edit(
        tree / "manifests/platform/logsink.yaml",
        "spec:\n  selector:\n    app.kubernetes.io/name: mlgate-logsink\n",
        "spec:\n  selector:\n    app.kubernetes.io/name: mlgate-log-sink\n",
    )
    selects_none = [f for f in findings(tree) if f.side == "service"]
    assert selects_none and all("selects no pod" in f.message for f in selects_none)
    assert {f.workload for f in selects_none} >= {CRON, "SeldonDeployment/model predictor stable"}


def test_an_ssh_git_remote_needs_its_own_egress_rule(tree: Path) -> None:
    _edit(
        tree / "manifests/components/canary/canary-analysis-cronjob.yaml",
        "value: https://git.bank.example/platform/mlgate.git",
        "value: git@git.bank.example:platform/mlgate.git",
    )
    (f,) = findings(tree)
    assert (f.workload, f.side, f.endpoint) == (
        CRON,
        "egress",
        "git@git.bank.example:platform/mlgate.git",
    )
    assert "outside the cluster on TCP 22" in f.message


def test_validate_reports_reachability_per_overlay(tree: Path) -> None:
    _edit(
        tree / "manifests/base/networkpolicy.yaml",
        "          port: 8081\n",
        "          port: 9081\n",
    )
    report = validate_tree(tree, load_settings().crd_schema_dir())
    probs = [p for p in report.all_problems() if p.check == "reachability"]
    assert {(p.target, p.resource) for p in probs} == {
        (f"manifests/models/credit_risk/{env}", "Job/smoke-test")
        for env in ("dev", "stage", "prod")
    } | {("manifests/models/credit_risk/prod", CRON)}
    assert all(LOGSINK_READ in p.message and "egress" in p.message for p in probs)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("http://svc.ns.svc.cluster.local:8081/x", ("svc.ns.svc.cluster.local", 8081)),
        ("https://github.com/bank/repo.git", ("github.com", 443)),
        ("ssh://git@host.example:2222/r.git", ("host.example", 2222)),
        ("git@github.com:bank/repo.git", ("github.com", 22)),
        ("redis.cache:6379", ("redis.cache", 6379)),
        ("10.0.0.7:5432", ("10.0.0.7", 5432)),
        ("http://$(HOST):80", None),
        ("file:///tmp/gitops.git", None),
        ("http://127.0.0.1:5555", None),
        ("0.0.0.0", None),
        ("12:30", None),
        ("0.25", None),
        ("/etc/mlgate/mlgate.yaml", None),
    ],
)
def test_endpoints_in_env_values_and_args(text: str, expected: tuple[str, int] | None) -> None:
    ep = parse_endpoint(text, "env X")
    assert (None if ep is None else (ep.host, ep.port)) == expected


def _models(docs: dict[str, list[dict[str, Any]]], n: int) -> dict[str, list[dict[str, Any]]]:
    """The shipped tree with its model's three overlays copied to `n` models, each in its own
    namespaces (what a 1,000-model repository renders to)."""
    import json

    out = {t: ds for t, ds in docs.items() if not t.startswith("manifests/models/")}
    for t, ds in docs.items():
        if t.startswith("manifests/models/"):
            for i in range(n):
                text = json.dumps(ds).replace("credit-risk-", f"m{i}-")
                out[t.replace("credit_risk", f"m{i}")] = json.loads(text)
    return out


def test_reachability_work_per_overlay_is_constant(monkeypatch: pytest.MonkeyPatch) -> None:
    """A quadratic check (every workload against every policy or pod of every overlay) took
    25+ minutes at 1,000 models. Counted, not timed: the label-selector evaluations the check
    makes (and the policies it asks whether they select a pod) grow by the same amount for every model added, and the copies are all reachable."""
    import mlgate.gitops.reachability as reach

    calls = 0
    real = reach.selector_matches

    def counting(sel: dict[str, Any] | None, labels: dict[str, str]) -> bool:
        nonlocal calls
        calls += 1
        return real(sel, labels)

    selects = reach.Policy.selects

    def counting_selects(self: reach.Policy, namespace: str, labels: dict[str, str]) -> bool:
        nonlocal calls
        calls += 1
        return selects(self, namespace, labels)

    monkeypatch.setattr(reach, "selector_matches", counting)
    monkeypatch.setattr(reach.Policy, "selects", counting_selects)
    docs = rendered(REPO_ROOT)
    work = {}
    for n in (2, 4, 8):
        calls = 0
        assert check_reachability(_models(docs, n)) == []
        work[n] = calls
    assert work[2] > 0
    assert work[8] - work[4] == 2 * (work[4] - work[2])
