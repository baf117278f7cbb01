"""A hash-locked wheelhouse, built on the host with `pip wheel --require-hashes`.

Every distribution comes from `requirements.lock` WITH the lock's sha256s: pip first resolves
which locked distributions the requirements need (a dry run against the lock's pins), then
`pip wheel --require-hashes` fetches exactly those, so a file on the index whose bytes are not in
the lock is refused here, on the host, before any image is built. Published wheels are kept as
they are; the few pins PyPI ships only as sdists (kfp-server-api) are built here from their
hash-checked sdist without build isolation (the host venv's hash-checked setuptools builds them,
so no unhashed build dependency is fetched). pip's own wheel, which the image runs to install,
comes hash-checked from `requirements-bootstrap.txt`.

The image then installs with `pip install --no-index --require-hashes` from this directory only:
offline, reproducible, and only the locked bytes. The server runs the same library versions that
trained and evaluated the model.

The model server's environment is deliberately small: MLServer, mlflow-skinny (enough for
`mlflow.pyfunc.load_model` of a python_model; the full `mlflow` adds the tracking server, UI and
their dependencies), scikit-learn, pandas, numpy, pydantic(-settings), PyYAML and uvloop. Feast
is not in it: the server scores full feature vectors; `mlgate score` (and the in-cluster caller)
does the online lookup. The platform image's wheelhouse is the whole lock.

Each wheel carries its licence (`mlgate.packaging.licences`, the reader `make test` checks the
venv with) for the image SBOM.

Third-party wheels are cached outside the workspace by lock hash
(`~/.cache/mlgate/wheelhouse/<hash>/`) so tests and CI jobs on one machine download them once.
mlgate itself is built as a wheel per build (its source changes more often than its pins).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.utils import canonicalize_name
from pydantic import BaseModel

from mlgate.config import REPO_ROOT
from mlgate.errors import ConfigError, ExternalServiceError
from mlgate.packaging.base_image import cache_root
from mlgate.packaging.licences import LicencePolicy, load_policy, read_licence, wheel_metadata
from mlgate.packaging.lockfile import LockEntry, bootstrap_file, lock_file, read_lock

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
    licence: str | None = None  # SPDX expression (mlgate.packaging.licences), None = unknown


class Wheelhouse(BaseModel):
    path: str
    lock_hash: str
    wheels: list[LockedWheel]  # what requirements.txt installs (pip's own wheel excluded)
    pip_wheel: str

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in Path(self.path).glob("*.whl"))


def lock_hash(requirements: tuple[str, ...], lock: Path) -> str:
    h = hashlib.sha256()
    h.update("\n".join(sorted(requirements)).encode())
    h.update(b"\0" + sys.version.split()[0].rsplit(".", 1)[0].encode())
    for f in (lock, bootstrap_file()):
        h.update(b"\0" + (f.read_bytes() if f.is_file() else b""))
    return h.hexdigest()[:20]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _locked(path: Path, policy: LicencePolicy, sha256: str | None = None) -> LockedWheel:
    m = _WHEEL.match(path.name)
    if not m:
        raise ExternalServiceError(f"{path.name}: not a wheel file name")
    return LockedWheel(
        name=canonicalize_name(m.group("name")),
        version=m.group("version"),
        filename=path.name,
        sha256=sha256 or _sha256(path),
        licence=read_licence(wheel_metadata(path), policy).licence,
    )


def _pip(args: list[str], what: str, *, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise ExternalServiceError(f"{what} failed: {proc.stderr.strip()[-1500:]}")


def _closure(requirements: tuple[str, ...], lock: dict[str, LockEntry], tmp: Path) -> list[str]:
    """The locked distributions `requirements` need: pip resolves them against the lock's pins
    (a dry run that installs nothing); each must be in the lock at that version."""
    pins = tmp / "pins.txt"
    pins.write_text("".join(f"{e.name}=={e.version}\n" for e in lock.values()))
    report = tmp / "resolution.json"
    _pip(
        ["install", "--dry-run", "--ignore-installed", "--quiet", "--no-build-isolation",
         "--prefer-binary", "--report", str(report), "-c", str(pins), *requirements],
        "resolving the wheelhouse against requirements.lock",
    )  # fmt: skip
    names = []
    for item in json.loads(report.read_text())["install"]:
        name = canonicalize_name(item["metadata"]["name"])
        version = item["metadata"]["version"]
        entry = lock.get(name)
        if entry is None or entry.version != version:
            raise ConfigError(
                f"{name}=={version} is needed by {' '.join(requirements)} but requirements.lock "
                f"{'pins ' + entry.version if entry else 'does not have it'} (run scripts/lock.sh)"
            )
        names.append(name)
    return sorted(set(names))


def _download(dest: Path, requirements: tuple[str, ...], lock_path: Path) -> None:
    # `pip wheel --require-hashes` keeps published wheels as they are and builds the few pins
    # PyPI ships only as sdists into wheels here on the host, so the image needs no compiler and
    # installs wheels only. SOURCE_DATE_EPOCH keeps those builds reproducible.
    lock = read_lock(lock_path)
    hashed = dest / ".hashed-requirements.txt"
    names = _closure(requirements, lock, dest)
    hashed.write_text("".join(lock[n].requirement() + "\n" for n in names))
    env = dict(os.environ, SOURCE_DATE_EPOCH="315532800")
    _pip(
        ["wheel", "--quiet", "--require-hashes", "--no-build-isolation", "--prefer-binary",
         "--wheel-dir", str(dest), "-r", str(hashed)],
        "pip wheel --require-hashes", env=env,
    )  # fmt: skip
    pip = read_lock(bootstrap_file())["pip"]
    pip_req = dest / ".pip-requirement.txt"
    pip_req.write_text(pip.requirement() + "\n")
    _pip(
        ["download", "--quiet", "--require-hashes", "--no-deps", "--only-binary=:all:",
         "--dest", str(dest / ".pip"), "-r", str(pip_req)],
        f"pip download pip=={pip.version}",
    )  # fmt: skip
    for f in (hashed, pip_req, dest / "pins.txt", dest / "resolution.json"):
        f.unlink(missing_ok=True)


def _write_lock(dest: Path, policy: LicencePolicy) -> list[LockedWheel]:
    wheels = sorted((_locked(p, policy) for p in dest.glob("*.whl")), key=lambda w: w.name)
    lines = [f"{w.name}=={w.version} --hash=sha256:{w.sha256}" for w in wheels]
    (dest / "requirements.txt").write_text("\n".join(lines) + "\n")
    return wheels


def ensure_wheelhouse(
    requirements: tuple[str, ...] = MODEL_SERVER_REQUIREMENTS, lock: Path | None = None
) -> Wheelhouse:
    """The cached wheelhouse for these requirements (downloaded, hash-checked, on first use)."""
    lock = lock or lock_file()
    policy = load_policy()
    key = lock_hash(requirements, lock)
    dest = cache_root() / "wheelhouse" / key
    dest.parent.mkdir(parents=True, exist_ok=True)
    with (dest.parent / f".{key}.lock").open("w") as flock:
        fcntl.flock(flock, fcntl.LOCK_EX)
        if not (dest / "requirements.txt").is_file():
            tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=dest.parent))
            try:
                _download(tmp, requirements, lock)
                _write_lock(tmp, policy)
                if dest.exists():
                    shutil.rmtree(dest)
                os.replace(tmp, dest)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    wheels = []
    for line in (dest / "requirements.txt").read_text().splitlines():
        spec, _, digest = line.partition(" --hash=sha256:")
        name, _, version = spec.partition("==")
        match = next(
            (p for p in dest.glob("*.whl") if (m := _WHEEL.match(p.name))
             and canonicalize_name(m.group("name")) == name and m.group("version") == version),
            None,
        )  # fmt: skip
        if match is None:
            raise ExternalServiceError(f"{dest}: {name}=={version} is listed but its wheel is gone")
        wheels.append(_locked(match, policy, sha256=digest))
    pip_wheel = next((dest / ".pip").glob("pip-*.whl"))
    return Wheelhouse(path=str(dest), lock_hash=key, wheels=wheels, pip_wheel=pip_wheel.name)


def _place(src: Path, dst: Path) -> None:
    """Hard-link when possible (the cached wheelhouse is large), else copy."""
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise
        shutil.copy2(src, dst)


def stage(wh: Wheelhouse, dst: Path, *, third_party: bool = True) -> None:
    """Put the wheelhouse into a build context's `dst`: pip's wheel (it runs the install) and,
    unless the environment is already in an earlier layer, every locked wheel and the hashed
    requirements.txt."""
    (dst / ".pip").mkdir(parents=True)
    src = Path(wh.path)
    _place(src / ".pip" / wh.pip_wheel, dst / ".pip" / wh.pip_wheel)
    if third_party:
        for f in src.glob("*.whl"):
            _place(f, dst / f.name)
        shutil.copy2(src / "requirements.txt", dst / "requirements.txt")


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
    return _locked(wheel, load_policy())


def source_hash() -> str:
    """Content hash of mlgate's source (what the mlgate wheel is built from)."""
    h = hashlib.sha256()
    root = REPO_ROOT / "src" / "mlgate"
    for p in sorted(root.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    h.update((REPO_ROOT / "pyproject.toml").read_bytes())
    return h.hexdigest()
