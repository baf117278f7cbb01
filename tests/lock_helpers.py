"""Helpers for the supply-chain tests (plain functions): a counterfeit wheel, a subset of the
hashed lock, and the Makefile's own install line pointed at a local folder instead of an index."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

from mlgate.config import REPO_ROOT
from mlgate.packaging.lockfile import read_lock


def makefile_pip_lines() -> list[list[str]]:
    """Every `pip install` line of the Makefile's recipes, split into arguments."""
    lines = (REPO_ROOT / "Makefile").read_text().splitlines()
    return [shlex.split(ln.strip()) for ln in lines if ln.startswith("\t") and "pip install" in ln]


def makefile_lock_install() -> list[str]:
    """The Makefile's install of requirements.lock, as arguments after the interpreter."""
    (args,) = [a for a in makefile_pip_lines() if "requirements.lock" in a]
    assert args[0] == "$(BIN)/python", args
    return args[1:]


def lock_subset(dest: Path, *names: str) -> Path:
    """A requirement file holding only these distributions' lock entries, hashes included."""
    lock = read_lock()
    dest.write_text("".join(lock[n].requirement() + "\n" for n in names))
    return dest


def counterfeit_wheel(folder: Path, name: str, version: str, payload: dict[str, str]) -> Path:
    """A wheel with a locked distribution's name and version and other bytes: what a
    compromised index or a poisoned cache would serve."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{name.replace('-', '_')}-{version}"
    wheel = folder / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in payload.items():
            zf.writestr(path, text)
        zf.writestr(
            f"{stem}.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        )
        zf.writestr(f"{stem}.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n")
    return wheel


def install_from_folder(
    subset: Path, folder: Path, target: Path
) -> subprocess.CompletedProcess[str]:
    """The Makefile's lock install line, reading `subset` and finding files only in `folder`
    (no index, no pip configuration), into `target`."""
    args = [a if a != "requirements.lock" else str(subset) for a in makefile_lock_install()]
    assert "--require-hashes" in args
    return subprocess.run(
        [sys.executable, *args, "--no-index", "--find-links", str(folder), "--target", str(target)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    )
