"""The CRD schemas ship inside the package, match their recorded upstream, and
scripts/fetch-crds.sh refuses any difference (performed here against a file:// upstream)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mlgate.config import REPO_ROOT, PlatformSettings, load_settings
from mlgate.errors import BadInputError
from mlgate.gitops.validate import crd_validators, validate_tree

SCRIPT = REPO_ROOT / "scripts" / "fetch-crds.sh"
VENDORED = REPO_ROOT / "src" / "mlgate" / "gitops" / "crds"
# Every custom resource kind the project's manifests use needs its upstream schema.
USED = {
    ("machinelearning.seldon.io/v1", "SeldonDeployment"),
    ("argoproj.io/v1alpha1", "Application"),
    ("argoproj.io/v1alpha1", "ApplicationSet"),
    ("argoproj.io/v1alpha1", "AppProject"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}


def test_the_default_is_the_package_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLGATE_CRD_SCHEMAS", raising=False)
    crd = load_settings().crd_schema_dir()
    assert crd.resolve() == VENDORED.resolve()
    assert (crd / "SOURCES.txt").is_file()
    assert USED <= set(crd_validators(str(crd)))


def test_the_override_wins_and_a_bad_one_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-crds"
    empty.mkdir()
    monkeypatch.setenv("MLGATE_CRD_SCHEMAS", str(empty))
    crd = load_settings().crd_schema_dir()
    assert crd == empty
    with pytest.raises(BadInputError, match="CRD schemas not found in .*no-crds"):
        validate_tree(REPO_ROOT, crd)
    assert PlatformSettings(crd_schemas=None).crd_schema_dir() != empty


def _sources() -> list[list[str]]:
    lines = (VENDORED / "SOURCES.txt").read_text().splitlines()
    return [ln.split() for ln in lines if ln.strip() and not ln.startswith("#")]


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    """A file:// stand-in for raw.githubusercontent.com holding what SOURCES.txt names."""
    root = tmp_path / "upstream"
    for file, repo, tag, path, _sha in _sources():
        dest = root / repo / tag / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(VENDORED / file, dest)
    return root


def _fetch(upstream: Path, *args: str, vendored: Path = VENDORED) -> subprocess.CompletedProcess:
    env = {**os.environ, "CRD_UPSTREAM": upstream.as_uri(), "CRD_VENDORED": str(vendored)}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, check=False
    )


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_vendored_copies_match_sources_and_the_script_agrees(upstream: Path) -> None:
    rows = _sources()
    assert sorted(r[0] for r in rows) == sorted(p.name for p in VENDORED.glob("*.yaml"))
    for file, _repo, _tag, _path, sha in rows:
        assert _sha(VENDORED / file) == sha, file
    proc = _fetch(upstream)
    assert proc.returncode == 0, proc.stderr
    assert f"all {len(rows)} CRD schemas match" in proc.stdout


def test_a_changed_upstream_file_fails_loudly_and_replaces_nothing(
    upstream: Path, tmp_path: Path
) -> None:
    file, repo, tag, path, sha = _sources()[0]
    with (upstream / repo / tag / path).open("a") as fh:
        fh.write("# moved tag\n")
    before = _sha(VENDORED / file)
    proc = _fetch(upstream, str(tmp_path / "dl"))
    assert proc.returncode == 1
    assert f"MISMATCH upstream {upstream.as_uri()}/{repo}/{tag}/{path}" in proc.stderr
    assert f"SOURCES.txt says {sha}" in proc.stderr
    assert (tmp_path / "dl" / file).is_file()  # kept to compare
    assert _sha(VENDORED / file) == before


def test_an_edited_vendored_copy_or_an_unlisted_file_fails(upstream: Path, tmp_path: Path) -> None:
    copy = tmp_path / "crds"
    shutil.copytree(VENDORED, copy)
    file = _sources()[1][0]
    (copy / file).write_text((copy / file).read_text().replace("type: object", "type: string", 1))
    (copy / "extra.yaml").write_text("kind: CustomResourceDefinition\n")
    proc = _fetch(upstream, vendored=copy)
    assert proc.returncode == 1
    assert f"MISMATCH vendored {file}" in proc.stderr
    assert "extra.yaml is vendored but has no line in SOURCES.txt" in proc.stderr


def test_an_unreachable_upstream_fails(tmp_path: Path) -> None:
    proc = _fetch(tmp_path / "nowhere")
    assert proc.returncode == 1
    assert "cannot download" in proc.stderr
