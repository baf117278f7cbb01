"""The platform image is complete: what pipeline steps and scheduled jobs read by relative path
is inside it, and a process that runs where the image puts it (no checkout) finds it all.

Building the ~1.9 GB image is left to `mlgate image build --platform`; here the build context
is staged exactly as the build stages it and a fresh interpreter runs with the image's
`MLGATE_PROJECT_ROOT` pointing at it, from a working directory that holds nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlgate.packaging.build import PROJECT_FILES, project_hash, stage_project
from mlgate.packaging.containerfile import PROJECT_DIR, ContainerfileSpec, render

# What a step resolves in a pod: the model config a pipeline parameter names, its dataset and
# policy, the feature repo Feast renders, and the compiled YAML the retrain trigger submits.
PROBE = """
import json, sys
from mlgate.config import REPO_ROOT
from mlgate.features.store import TEMPLATE_DIR
from mlgate.pipelines import catalog
from mlgate.pipelines.steps import common as steps
cfg = steps.model_cfg("config/models/credit_risk.yaml")
found = {
    "root": str(REPO_ROOT),
    "model": str(steps.resolve("config/models/credit_risk.yaml")),
    "dataset": str(cfg.dataset_path()),
    "dataset_exists": cfg.dataset_path().is_file(),
    "policy_exists": steps.resolve("config/policies/credit_risk.yaml").is_file(),
    "feature_repo": (TEMPLATE_DIR / "feature_store.yaml").is_file(),
    "compiled": [catalog.compiled_path(n).is_file() for n in catalog.names()],
}
print(json.dumps(found))
"""


def _spec(kind: str) -> ContainerfileSpec:
    return ContainerfileSpec(
        kind=kind,  # type: ignore[arg-type]
        base="localhost/mlgate-base:abc",
        pip_wheel="pip-24.3.1-py3-none-any.whl",
        labels={},
        model="credit_risk" if kind == "model-server" else None,
    )


def _probe(project: Path, cwd: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "MLGATE_PROJECT_ROOT": str(project), "HOME": str(cwd)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return dict(json.loads(proc.stdout.splitlines()[-1]))


def test_the_platform_containerfile_carries_the_project_files() -> None:
    text = render(_spec("platform"))
    assert f"COPY project {PROJECT_DIR}" in text
    assert f"ENV MLGATE_PROJECT_ROOT={PROJECT_DIR}" in text
    # before USER: the files belong to root and the read-only root filesystem
    assert text.index("COPY project") < text.index("USER 10001")
    assert "COPY project" not in render(_spec("model-server"))


def test_a_step_finds_its_config_feature_repo_and_pipelines_where_the_image_puts_them(
    tmp_path: Path,
) -> None:
    ctx = tmp_path / "ctx"
    stage_project(ctx)
    assert {p.name for p in (ctx / "project").iterdir()} == set(PROJECT_FILES)
    empty = tmp_path / "cwd"
    empty.mkdir()
    found = _probe(ctx / "project", empty)
    assert found["root"] == str(ctx / "project")
    assert found["model"].startswith(str(ctx / "project"))
    assert found["dataset"].startswith(str(ctx / "project"))
    assert found["dataset_exists"] and found["policy_exists"] and found["feature_repo"]
    assert found["compiled"] and all(found["compiled"])  # package data, not the checkout


def test_the_probe_notices_a_missing_project_file(tmp_path: Path) -> None:
    """Mutation check: without feature_repo/ in the image a step could not build its store."""
    ctx = tmp_path / "ctx"
    stage_project(ctx)
    shutil.rmtree(ctx / "project" / "feature_repo")
    empty = tmp_path / "cwd"
    empty.mkdir()
    assert _probe(ctx / "project", empty)["feature_repo"] is False


def test_the_image_content_hash_follows_the_project_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config change is a new platform image (the build's content hash covers it)."""
    from mlgate.packaging import build

    copy = tmp_path / "project"
    stage_project(tmp_path)
    monkeypatch.setattr(build, "REPO_ROOT", copy)
    before = project_hash()
    policy = copy / "config" / "policies" / "credit_risk.yaml"
    policy.write_text(policy.read_text() + "\n# reviewed change\n")
    assert project_hash() != before


def test_the_environment_layer_holds_the_lock_and_the_platform_layer_only_mlgate() -> None:
    """The cached environment layer installs every locked wheel and not mlgate (which changes
    with every commit); the platform image FROM it installs only mlgate, --no-deps."""
    from mlgate.packaging.containerfile import render_env

    env = render_env("localhost/mlgate-base:abc", "pip-24.3.1-py3-none-any.whl")
    assert "-r /wheelhouse/requirements.txt" in env and "mlgate.txt" not in env
    assert "useradd --system --uid 10001" in env
    top = render(_spec("platform").model_copy(update={"base": "localhost/mlgate-platform-env:k"}))
    assert top.splitlines()[2] == "FROM localhost/mlgate-platform-env:k"
    assert "--no-deps -r /wheelhouse/mlgate.txt" in top and "requirements.txt" not in top


def test_the_environment_layer_key_follows_base_lock_and_containerfile() -> None:
    """A new lock, base or install recipe is a new environment layer, never a stale reuse."""
    from mlgate.packaging.env_layer import env_key
    from mlgate.packaging.wheelhouse import Wheelhouse

    wh = Wheelhouse(path="/x", lock_hash="lock-a", wheels=[], pip_wheel="pip.whl")
    key = env_key("base-1", wh, "FROM b\n")
    assert key == env_key("base-1", wh, "FROM b\n")
    assert key != env_key("base-2", wh, "FROM b\n")
    assert key != env_key("base-1", wh.model_copy(update={"lock_hash": "lock-b"}), "FROM b\n")
    assert key != env_key("base-1", wh, "FROM c\n")
