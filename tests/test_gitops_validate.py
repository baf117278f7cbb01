"""`mlgate manifests validate` on the real manifests, and on overlays broken on purpose; the
Argo CD health check for SeldonDeployment in a real Lua 5.1 interpreter."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lupa import lua51

from mlgate.config import REPO_ROOT, load_settings
from mlgate.gitops.placeholders import find_placeholders
from mlgate.gitops.platform_values import InitValues, apply_values
from mlgate.gitops.validate import checkov_bin, validate_tree

VALUES = InitValues(
    repo_url="https://git.bank.example/platform/mlgate.git",
    registry="registry.bank.example",
    platform_image="registry.bank.example/mlgate-platform@sha256:" + "ab" * 32,
)


def inited_copy(dest: Path) -> Path:
    """A copy of the project's manifests/ and argocd/ after `mlgate init` (the worked
    examples' images moved to the bank's registry too), to break."""
    for rel in ("manifests", "argocd"):
        shutil.copytree(REPO_ROOT / rel, dest / rel)
    apply_values(dest, VALUES)
    for release in (dest / "manifests/models").glob("*/*/release.yaml"):
        text = release.read_text().replace("registry.example.invalid", "registry.bank.example")
        release.write_text(text)
    return dest


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return inited_copy(tmp_path / "tree")


def _crds() -> Path:
    return load_settings().crd_schema_dir()


def test_project_manifests_validate() -> None:
    """The project's tree is the template: it validates with its placeholders listed."""
    report = validate_tree(REPO_ROOT, _crds(), template=True)
    assert report.ok, [p.model_dump() for p in report.all_problems()]
    assert {p.file for p in report.placeholders} >= {
        "argocd/applicationset.yaml",
        "argocd/appproject.yaml",
        "argocd/platform-application.yaml",
        "manifests/base/kustomization.yaml",
        "manifests/platform/kustomization.yaml",
        "manifests/components/canary/canary-analysis-cronjob.yaml",
    }
    paths = {t.path for t in report.targets}
    assert {"argocd", "manifests/platform", "manifests/models/credit_risk/prod"} <= paths
    prod = next(t for t in report.targets if t.path.endswith("credit_risk/prod"))
    assert prod.resources >= 10
    if shutil.which("promtool"):
        assert report.promtool.startswith("checked 1")


def test_a_remaining_placeholder_fails_naming_file_field_and_value(tree: Path) -> None:
    assert validate_tree(tree, _crds()).ok  # after init: nothing left
    _edit(
        tree / "argocd/platform-application.yaml",
        "https://git.bank.example/platform/mlgate.git",
        "https://git.example.invalid/your-org/mlgate.git",
    )
    _edit(
        tree / "manifests/platform/kustomization.yaml",
        "ab" * 32,
        "0" * 64,
    )
    report = validate_tree(tree, _crds())
    assert not report.ok
    got = {(p.target, p.message.split(":")[0]) for p in report.problems if p.check == "placeholder"}
    assert got == {
        ("argocd/platform-application.yaml", "spec.source.repoURL"),
        ("manifests/platform/kustomization.yaml", "images[0].digest"),
    }, report.problems
    msgs = " ".join(p.message for p in report.problems)
    assert "git.example.invalid" in msgs and "the unset digest" in msgs
    # comments never count: the template's comment names the marker, and stays
    assert ".invalid" in (tree / "manifests/base/kustomization.yaml").read_text()


def test_a_changed_overlay_check_scans_only_that_overlays_inputs(tree: Path) -> None:
    """`--changed-since` validates one overlay: its placeholder scan reads the files that
    overlay renders from (release.yaml, the base, the components), not the 6,000 other files
    of a big repository, so a placeholder elsewhere is the full check's to report."""
    _edit(
        tree / "argocd/platform-application.yaml",
        "https://git.bank.example/platform/mlgate.git",
        "https://git.example.invalid/your-org/mlgate.git",
    )
    dev = tree / "manifests/models/credit_risk/dev"
    _edit(dev / "release.yaml", "registry.bank.example", "registry.example.invalid")
    scoped = validate_tree(tree, _crds(), targets=[dev])
    assert {p.file for p in scoped.placeholders} == {
        "manifests/models/credit_risk/dev/release.yaml"
    }
    assert not scoped.ok
    full = validate_tree(tree, _crds())
    assert {p.file for p in full.placeholders} == {
        "argocd/platform-application.yaml",
        "manifests/models/credit_risk/dev/release.yaml",
    }
    # only the paths given are read; one that does not exist is no error
    assert find_placeholders(tree, ["manifests/models/credit_risk/prod/release.yaml"]) == []
    assert find_placeholders(tree, ["argocd/platform-application.yaml", "nope.yaml"])


def test_unset_digest_on_a_loopback_registry_is_the_embedded_default(tree: Path) -> None:
    """Where nothing pulls (the embedded default's loopback registry), the unset digest stands
    for a platform image not built yet; anywhere else it is a placeholder."""
    for rel in ("manifests/base/kustomization.yaml", "manifests/platform/kustomization.yaml"):
        _edit(tree / rel, "registry.bank.example/mlgate-platform", "127.0.0.1:5555/mlgate-platform")
        _edit(tree / rel, "ab" * 32, "0" * 64)
    assert validate_tree(tree, _crds()).ok


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _problems(root: Path) -> list[str]:
    return [f"{p.check}: {p.message}" for p in validate_tree(root, _crds()).all_problems()]


def test_unknown_field_in_seldondeployment_is_an_error(tree: Path) -> None:
    _edit(
        tree / "manifests/base/seldondeployment.yaml",
        "  protocol: v2\n",
        "  protocol: v2\n  replicaz: 3\n",
    )
    problems = _problems(tree)
    assert any("schema" in p and "replicaz" in p for p in problems), problems


def test_unknown_field_in_core_kind_and_unknown_kind_are_errors(tree: Path) -> None:
    _edit(
        tree / "manifests/base/rbac.yaml",
        "  name: mlgate-gate\nrules:",
        "  name: mlgate-gate\nrulez: []\nrules:",
    )
    (tree / "manifests/platform/extra.yaml").write_text(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"
    )
    _edit(
        tree / "manifests/platform/kustomization.yaml",
        "  - logsink.yaml\n",
        "  - logsink.yaml\n  - extra.yaml\n",
    )
    problems = _problems(tree)
    assert any("schema" in p and "rulez" in p for p in problems), problems
    assert any("unknown kind Widget" in p for p in problems), problems


def test_traffic_not_summing_to_100_is_an_error(tree: Path) -> None:
    _edit(
        tree / "manifests/models/credit_risk/prod/release.yaml",
        'stable_traffic: "90"',
        'stable_traffic: "80"',
    )
    problems = _problems(tree)
    assert any("seldon: traffic of the predictors sums to 90" in p for p in problems), problems


def test_missing_run_as_non_root_is_an_error(tree: Path) -> None:
    path = tree / "manifests/base/seldondeployment.yaml"
    text = path.read_text()
    path.write_text(text.replace("runAsNonRoot: true", "runAsNonRoot: false"))
    problems = _problems(tree)
    assert any(
        "pod-security" in p
        and "predictors[stable].componentSpecs[0].containers[model]: runAsNonRoot" in p
        for p in problems
    ), problems


def test_container_name_must_equal_graph_name(tree: Path) -> None:
    _edit(
        tree / "manifests/base/seldondeployment.yaml",
        "      graph:\n        name: model\n",
        "      graph:\n        name: scorer\n",
    )
    problems = _problems(tree)
    assert any("container 'model' matches no graph node" in p for p in problems), problems
    assert any("graph node 'scorer' has no container" in p for p in problems), problems


def test_broken_kustomization_is_reported_per_overlay(tree: Path) -> None:
    (tree / "manifests/models/credit_risk/dev/release.yaml").unlink()
    report = validate_tree(tree, _crds())
    dev = next(t for t in report.targets if t.path.endswith("credit_risk/dev"))
    assert dev.problems and dev.problems[0].check == "kustomize"
    assert all(not t.problems for t in report.targets if t is not dev)


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (Debian package prometheus)"
)
def test_promtool_catches_bad_promql(tree: Path) -> None:
    _edit(tree / "manifests/base/monitoring.yaml", "> 0.5", "> > 0.5")
    problems = _problems(tree)
    assert any(p.startswith("promtool:") for p in problems), problems


@pytest.mark.slow
def test_checkov_passes_on_the_project_manifests() -> None:
    checkov_bin(create=True)  # its own venv, made on first use (~30 s)
    report = validate_tree(REPO_ROOT, _crds(), checkov=True, template=True)
    assert report.checkov.startswith("passed") and ", failed 0," in report.checkov, report.checkov
    assert report.ok


HEALTH = REPO_ROOT / "argocd" / "health" / "seldondeployment.lua"


def _health(obj: dict) -> dict:
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    assert "Lua 5.1" in lua.eval("_VERSION")

    def to_lua(v):
        if isinstance(v, dict):
            return lua.table_from({k: to_lua(x) for k, x in v.items()})
        if isinstance(v, list):
            return lua.table_from([to_lua(x) for x in v])
        return v

    fn = lua.eval("function(obj) " + HEALTH.read_text() + " end")
    res = fn(to_lua(obj))
    return {"status": res["status"], "message": res["message"]}


@pytest.mark.parametrize(
    "status,expected",
    [
        (None, "Progressing"),
        ({"state": "Creating"}, "Progressing"),
        ({"state": "Available"}, "Healthy"),
        ({"state": "Failed", "description": "image pull failed"}, "Degraded"),
        (
            {
                "state": "Available",
                "deploymentStatus": {"model-canary": {"replicas": 2, "availableReplicas": 1}},
            },
            "Progressing",
        ),
        (
            {
                "state": "Available",
                "deploymentStatus": {"model-stable": {"replicas": 2, "availableReplicas": 2}},
            },
            "Healthy",
        ),
    ],
)
def test_argocd_health_check_lua(status, expected) -> None:
    obj = {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": "m"},
    }
    if status is not None:
        obj["status"] = status
    res = _health(obj)
    assert res["status"] == expected
    if expected == "Degraded":
        assert res["message"] == "image pull failed"


def _predictor(name: str, version: str, traffic: int | None = None, shadow: bool = False):
    p: dict = {"name": name, "labels": {"version": version}, "graph": {"name": "model"}}
    if shadow:
        p["shadow"] = True
    else:
        p["traffic"] = traffic
    return p


@pytest.mark.parametrize(
    ("predictors", "says"),
    [
        ([_predictor("stable", "1", 100)], "stable v1 100%"),
        (  # a canary waiting for its analysis' evidence: Healthy, never Progressing/Degraded
            [_predictor("stable", "1", 90), _predictor("canary", "2", 10)],
            "stable v1 90%, canary v2 10%",
        ),
        (
            [_predictor("stable", "1", 100), _predictor("shadow", "3", shadow=True)],
            "stable v1 100%, shadow v3 (shadow, answers nobody)",
        ),
    ],
)
def test_argocd_health_names_what_serves_while_the_analysis_waits(predictors, says) -> None:
    """What runs during a canary (or shadow) phase is Healthy with a message naming each
    predictor's version and traffic: an analysis waiting for evidence changes nothing in the
    SeldonDeployment, so the Application stays Healthy (its verdict is in the Application's
    info). A missing replica still shows Progressing, naming the predictor."""
    obj = {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": "model"},
        "spec": {"predictors": predictors},
        "status": {"state": "Available"},
    }
    assert _health(obj) == {"status": "Healthy", "message": f"All predictors available: {says}"}
    obj["status"]["deploymentStatus"] = {"model-canary": {"replicas": 1, "availableReplicas": 0}}
    assert _health(obj) == {
        "status": "Progressing",
        "message": "model-canary: 0/1 replicas available",
    }
