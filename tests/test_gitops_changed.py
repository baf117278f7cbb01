"""`mlgate manifests validate --changed-since BASE`: only the overlays whose inputs changed,
the inputs read from the kustomization files, on a real git checkout of the manifests."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mlgate.config import REPO_ROOT
from mlgate.gitops.changed import changed_targets, overlay_inputs, select
from mlgate.gitops.validate import find_targets
from tests.gitops_helpers import cli

MODELS = "manifests/models"
ENVS = ("dev", "stage", "prod")


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The project's manifests and argocd/ with a second model, committed: BASE is HEAD."""
    root = tmp_path / "tree"
    for rel in ("manifests", "argocd"):
        shutil.copytree(REPO_ROOT / rel, root / rel)
    shutil.copytree(root / MODELS / "credit_risk", root / MODELS / "fraud")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base")
    return root


def _picked(root: Path, base: str = "HEAD") -> list[str]:
    return changed_targets(root, base, find_targets(root)).targets


def _models(*pairs: str) -> list[str]:
    return sorted(f"{MODELS}/{p}" for p in pairs)


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def _validate(root: Path, *args: str) -> tuple[int, dict]:
    # The project's manifests are the template `mlgate init` fills in: placeholders listed.
    code, out, _ = cli("manifests", "validate", "--root", str(root), "--template", *args, "--json")
    return code, (json.loads(out) if out.strip().startswith("{") else {})


def test_one_overlay_change_validates_that_overlay_only(tree: Path) -> None:
    assert _picked(tree) == []
    _append(tree / MODELS / "fraud/stage/release.yaml", "# reviewed\n")
    assert _picked(tree) == _models("fraud/stage")
    code, rep = _validate(tree, "--changed-since", "HEAD")
    assert code == 0, rep
    assert [t["path"] for t in rep["targets"]] == _models("fraud/stage")
    assert rep["targets"][0]["resources"] >= 10  # really rendered
    assert rep["changed_since"]["of"] == 2 + 2 * len(ENVS)  # argocd, platform, 6 overlays


def test_shared_base_change_validates_every_overlay_using_it(tree: Path) -> None:
    _append(tree / "manifests/base/rbac.yaml", "# reviewed\n")
    every = _models(*(f"{m}/{e}" for m in ("credit_risk", "fraud") for e in ENVS))
    assert _picked(tree) == every  # argocd/ and manifests/platform do not use the base


def test_component_change_follows_the_kustomizations_not_the_folder_names(tree: Path) -> None:
    # Only the prod overlays list components/canary: a change there is theirs alone.
    _append(tree / "manifests/components/canary/kustomization.yaml", "# reviewed\n")
    assert _picked(tree) == _models("credit_risk/prod", "fraud/prod")
    # A file in the base folder that no kustomization names changes no render.
    (tree / "manifests/base/NOTES.md").write_text("not a resource\n")
    _git(tree, "add", "-A")
    assert _picked(tree) == _models("credit_risk/prod", "fraud/prod")


def test_unrelated_change_validates_nothing(tree: Path) -> None:
    (tree / "README.md").write_text("docs only\n")
    code, rep = _validate(tree, "--changed-since", "HEAD")
    assert code == 0 and rep["targets"] == [] and rep["ok"] is True


def test_renamed_overlay_is_validated_under_its_new_name(tree: Path) -> None:
    (tree / MODELS / "scorecard").mkdir()
    _git(tree, "mv", f"{MODELS}/fraud/dev", f"{MODELS}/scorecard/dev")
    assert _picked(tree) == _models("scorecard/dev")


def test_deleted_input_selects_its_users_and_fails_their_render(tree: Path) -> None:
    _git(tree, "rm", "-q", "manifests/base/rbac.yaml")
    every = _models(*(f"{m}/{e}" for m in ("credit_risk", "fraud") for e in ENVS))
    assert _picked(tree) == every
    code, rep = _validate(tree, "--changed-since", "HEAD")
    assert code == 1
    assert {p["check"] for t in rep["targets"] for p in t["problems"]} == {"kustomize"}


def test_deleted_overlay_selects_no_other(tree: Path) -> None:
    _git(tree, "rm", "-r", "-q", f"{MODELS}/fraud/prod")
    assert _picked(tree) == []


def test_untracked_new_overlay_is_validated(tree: Path) -> None:
    shutil.copytree(tree / MODELS / "fraud/dev", tree / MODELS / "limits/dev")
    assert _picked(tree) == _models("limits/dev")


def test_bad_base_is_exit_2_naming_it(tree: Path) -> None:
    for base in ("no-such-rev", "--output=/tmp/x", ""):
        code, out, err = cli("manifests", "validate", "--root", str(tree), "--changed-since", base)
        assert code == 2, out + err
        assert f"--changed-since {base!r}" in err
    assert not Path("/tmp/x").exists() or Path("/tmp/x").stat().st_size == 0


def test_base_as_a_sha_of_an_older_commit(tree: Path) -> None:
    first = _git(tree, "rev-parse", "HEAD")
    _append(tree / MODELS / "credit_risk/dev/release.yaml", "# one\n")
    _git(tree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two")
    assert _picked(tree, first) == _models("credit_risk/dev")
    assert _picked(tree, "HEAD") == []


def test_inputs_are_read_from_the_kustomization(tree: Path) -> None:
    deps = overlay_inputs(tree, f"{MODELS}/credit_risk/prod")
    assert f"{MODELS}/credit_risk/prod/release.yaml" in deps
    assert "manifests/base/seldondeployment.yaml" in deps
    assert "manifests/components/canary/kustomization.yaml" in deps
    assert not any(d.startswith(f"{MODELS}/fraud") for d in deps)


def test_select_is_pure_and_always_paths_select_everything() -> None:
    inputs = {"a": {"m/a/release.yaml", "base/x.yaml"}, "b": {"m/b/release.yaml", "gone"}}
    assert select(["m/a/release.yaml"], inputs) == ["a"]
    assert select(["base/x.yaml"], inputs) == ["a"]
    assert select(["gone/file.yaml"], inputs) == ["b"]  # a named folder that no longer exists
    assert select(["m/a/release.yaml.bak"], inputs) == []
    assert select(["crds/seldon.yaml"], inputs, always=["crds"]) == ["a", "b"]
