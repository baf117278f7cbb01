"""A hash-locked wheelhouse, built on the host with `pip wheel`.

Published wheels are kept as they are; the few pins PyPI ships only as sdists are built here.

The image installs with `pip install --no-index --require-hashes` from this directory only:
the build is offline, reproducible, and installs exactly the bytes the lock names (a wheel
swapped on the index is a hash mismatch, not a silent change). Versions come from the project's
`requirements.lock` (used as constraints), so the server runs the same library versions that
trained and evaluated the model.

The model server's environment is deliberately small: MLServer, mlflow-skinny (enough for
`mlflow.pyfunc.load_model` of a python_model; the full `mlflow` adds the tracking server, UI and
their dependencies), scikit-learn, pandas, numpy, pydantic(-settings), PyYAML and uvloop. Feast
is not in it: the server scores full feature vectors; `mlgate score` (and the in-cluster caller)
does the online lookup. The platform image's wheelhouse is the whole lock.

Third-party wheels are cached outside the workspace by lock hash
(`~/.cache/mlgate/wheelhouse/<hash>/`) so tests and CI jobs on one machine download them once.
mlgate itself is built as a wheel per build (its source changes more often than its pins).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pydantic import BaseModel

from mlgate.config import REPO_ROOT
from mlgate.errors import ExternalServiceError
from mlgate.packaging.base_image import cache_root

PIP = "pip==24.3.1"  # the installer, run from its own wheel; never installed into the image
MODEL_SERVER_REQUIREMENTS = (
    "mlserver==1.7.1",
    "mlflow-skinny==3.17.2",
    "scikit-learn==1.9.1",
    "pandas==2.3.3",
    "numpy==2.4.6",
    "scipy==1.17.1",
    "pydantic==2.14.3",
    "pydantic-settings==2.16.3",
    "PyYAML==6.0.3",
    "uvloop==0.21.0",
)
_WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


class LockedWheel(BaseModel):
    name: str
    version: str
    filename: str
    sha256: str


class Wheelhouse(BaseModel):
    path: str
    lock_hash: str
    wheels: list[LockedWheel]  # what requirements.txt installs (pip's own wheel excluded)
    pip_wheel: str

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in Path(self.path).glob("*.whl"))


def lock_file() -> Path:
    return REPO_ROOT / "requirements.lock"


def lock_hash(requirements: tuple[str, ...], constraints: Path) -> str:
    h = hashlib.sha256()
    h.update("\n".join(sorted(requirements)).encode())
    h.update(b"\0" + PIP.encode() + b"\0" + sys.version.split()[0].rsplit(".", 1)[0].encode())
    h.update(constraints.read_bytes() if constraints.is_file() else b"")
    return h.hexdigest()[:20]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _locked(path: Path) -> LockedWheel:
    m = _WHEEL.match(path.name)
    if not m:
        raise ExternalServiceError(f"{path.name}: not a wheel file name")
    name = m.group("name").replace("_", "-").lower()
    return LockedWheel(
        name=name, version=m.group("version"), filename=path.name, sha256=_sha256(path)
    )


def _download(dest: Path, requirements: tuple[str, ...], constraints: Path) -> None:
    # `pip wheel` keeps published wheels as they are and builds the few pins PyPI ships only as
    # sdists (kfp-server-api 2.17.0) into wheels here on the host, so the image needs no
    # compiler and installs wheels only. SOURCE_DATE_EPOCH keeps those builds reproducible.
    cmd = [
        sys.executable, "-m", "pip", "wheel", "--quiet", "--prefer-binary",
        "--wheel-dir", str(dest), *requirements,
    ]  # fmt: skip
    if constraints.is_file():
        cmd[4:4] = ["-c", str(constraints)]
    env = dict(os.environ, SOURCE_DATE_EPOCH="315532800")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise ExternalServiceError(f"pip wheel failed: {proc.stderr.strip()[-1500:]}")
    pip_dir = dest / ".pip"
    pip_dir.mkdir(exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--dest", str(pip_dir), PIP],
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise ExternalServiceError(f"pip download {PIP} failed: {proc.stderr.strip()[-800:]}")


def _write_lock(dest: Path) -> list[LockedWheel]:
    wheels = sorted((_locked(p) for p in dest.glob("*.whl")), key=lambda w: w.name)
    lines = [f"{w.name}=={w.version} --hash=sha256:{w.sha256}" for w in wheels]
    (dest / "requirements.txt").write_text("\n".join(lines) + "\n")
    return wheels


def ensure_wheelhouse(
    requirements: tuple[str, ...] = MODEL_SERVER_REQUIREMENTS, constraints: Path | None = None
) -> Wheelhouse:
    """The cached wheelhouse for these requirements (downloaded on first use)."""
    constraints = constraints or lock_file()
    key = lock_hash(requirements, constraints)
    dest = cache_root() / "wheelhouse" / key
    dest.parent.mkdir(parents=True, exist_ok=True)
    with (dest.parent / f".{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (dest / "requirements.txt").is_file():
            tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=dest.parent))
            try:
                _download(tmp, requirements, constraints)
                _write_lock(tmp)
                if dest.exists():
                    shutil.rmtree(dest)
                os.replace(tmp, dest)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    wheels = []
    for line in (dest / "requirements.txt").read_text().splitlines():
        spec, _, digest = line.partition(" --hash=sha256:")
        name, _, version = spec.partition("==")
        match = next(dest.glob(f"*{version}*.whl"), None)
        wheels.append(
            LockedWheel(name=name, version=version, sha256=digest,
                        filename=match.name if match else "")
        )  # fmt: skip
    pip_wheel = next((dest / ".pip").glob("pip-*.whl"))
    return Wheelhouse(path=str(dest), lock_hash=key, wheels=wheels, pip_wheel=pip_wheel.name)


def build_mlgate_wheel(dest: Path) -> LockedWheel:
    """mlgate itself as a wheel (installed --no-deps: its dependencies are in the lock)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlgate-wheel-") as tmp:
        # Build from a copy: an in-tree build would leave build/ and egg-info in the checkout.
        src = Path(tmp) / "src"
        shutil.copytree(
            REPO_ROOT / "src" / "mlgate",
            src / "src" / "mlgate",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        for name in ("pyproject.toml", "README.md"):
            if (REPO_ROOT / name).is_file():
                shutil.copy2(REPO_ROOT / name, src / name)
        env = dict(os.environ, SOURCE_DATE_EPOCH="315532800")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
             "--wheel-dir", str(dest), str(src)],
            capture_output=True, text=True, cwd=tmp, env=env,
        )  # fmt: skip
    if proc.returncode != 0:
        raise ExternalServiceError(f"building the mlgate wheel failed: {proc.stderr[-1500:]}")
    wheel = next(dest.glob("mlgate-*.whl"))
    return _locked(wheel)


def source_hash() -> str:
    """Content hash of mlgate's source (what the mlgate wheel is built from)."""
    h = hashlib.sha256()
    root = REPO_ROOT / "src" / "mlgate"
    for p in sorted(root.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    h.update((REPO_ROOT / "pyproject.toml").read_bytes())
    return h.hexdigest()
