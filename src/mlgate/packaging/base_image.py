"""The base image every mlgate image starts FROM.

Configurable (`image.base_image`, e.g. a pinned `python:3.11-slim@sha256:...` from a mirror the
cluster trusts). When none is configured, or none can be pulled (no registry reachable, as on an
air-gapped build machine), mlgate builds one from Debian packages alone with debootstrap:
`--variant=minbase --include=python3,python3-venv,ca-certificates bookworm`. That takes about a
minute, so it is done once and cached outside the workspace (`~/.cache/mlgate/base/<key>/`,
keyed by the parameters) where every test run and CI job on the machine reuses it, then imported
into buildah's local storage as `localhost/mlgate-base:<key>`.

Debian's bookworm ships Python 3.11, the same minor version as the host, so wheels downloaded on
the host install unchanged inside the image.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pydantic import BaseModel

from mlgate.errors import ExternalServiceError
from mlgate.packaging import containers, tools

SUITE = "bookworm"
INCLUDE = ("python3", "python3-venv", "ca-certificates")
# The platform image's steps also read and push the GitOps repository with the git CLI.
PLATFORM_INCLUDE = (*INCLUDE, "git")
# Removed from the base before it is tarred: no pip (and no pip wheel for ensurepip) in any layer.
STRIP = ("usr/share/python-wheels", "var/cache/apt/archives", "var/lib/apt/lists")


class BaseImage(BaseModel):
    """What FROM names, and where it came from."""

    reference: str  # as the Containerfile's FROM names it
    source: str  # "configured" | "debootstrap"
    key: str | None = None
    dpkg_status: str | None = None  # the base's /var/lib/dpkg/status (for the SBOM), if known


def cache_root() -> Path:
    raw = os.environ.get("MLGATE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mlgate"
    )
    return Path(raw)


def debian_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror the machine's apt already uses (deb822 or one-line sources)."""
    files = sorted(sources_dir.glob("sources.list.d/*.sources")) + sorted(
        sources_dir.glob("sources.list.d/*.list")
    )
    files.append(sources_dir / "sources.list")
    for f in files:
        if not f.is_file():
            continue
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            s = line.strip()
            if s.startswith("URIs:"):
                for uri in s.split()[1:]:
                    if "security" not in uri:
                        return uri
            elif s.startswith("deb ") and "security" not in s:
                parts = [p for p in s.split() if not p.startswith("[")]
                if len(parts) >= 2:
                    return parts[1]
    return "http://deb.debian.org/debian"


def base_key(mirror: str, suite: str = SUITE, include: tuple[str, ...] = INCLUDE) -> str:
    blob = json.dumps(
        {
            "suite": suite,
            "variant": "minbase",
            "include": list(include),
            "mirror": mirror,
            "strip": list(STRIP),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _build_rootfs_tar(mirror: str, key: str, include: tuple[str, ...]) -> Path:
    """debootstrap once into the cache; concurrent callers wait on a lock file."""
    out = cache_root() / "base" / key
    tar = out / "rootfs.tar"
    if tar.is_file():
        return tar
    out.mkdir(parents=True, exist_ok=True)
    import fcntl

    with (out / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tar.is_file():
            return tar
        tools.require("debootstrap")
        with tempfile.TemporaryDirectory(prefix="mlgate-debootstrap-", dir=out) as tmp:
            root = Path(tmp) / "rootfs"
            cmd = [
                "debootstrap", "--variant=minbase", f"--include={','.join(include)}",
                SUITE, str(root), mirror,
            ]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise ExternalServiceError(
                    f"debootstrap of the base image failed (mirror {mirror}): "
                    + (proc.stderr or proc.stdout)[-1500:]
                )
            shutil.copy2(root / "var/lib/dpkg/status", out / "dpkg-status")
            for rel in STRIP:
                shutil.rmtree(root / rel, ignore_errors=True)
            partial = Path(tmp) / "rootfs.tar"
            subprocess.run(
                ["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], check=True
            )
            os.replace(partial, tar)
    return tar


def ensure_base(
    configured: str | None, mirror: str | None = None, include: tuple[str, ...] = INCLUDE
) -> BaseImage:
    """The configured base if it exists locally or can be pulled; else the debootstrap one
    with the Debian packages `include` names (each set is its own cached base)."""
    if configured:
        local = tools.buildah(["inspect", "--type", "image", configured], check=False)
        if local.returncode == 0:
            return BaseImage(reference=configured, source="configured")
        pulled = tools.buildah(["pull", configured], check=False)
        if pulled.returncode == 0:
            return BaseImage(reference=configured, source="configured")
        raise ExternalServiceError(
            f"base image {configured!r} is neither local nor pullable: {pulled.stderr.strip()[-500:]}"
            " (unset image.base_image to build one from Debian packages)"
        )
    mirror = mirror or debian_mirror()
    key = base_key(mirror, include=include)
    ref = f"localhost/mlgate-base:{key}"
    status = cache_root() / "base" / key / "dpkg-status"
    # Reuse the built base only together with its package list: without it the SBOM would
    # silently lose the Debian packages (e.g. after ~/.cache was cleared), so rebuild instead.
    if (
        status.is_file()
        and tools.buildah(["inspect", "--type", "image", ref], check=False).returncode == 0
    ):
        return BaseImage(reference=ref, source="debootstrap", key=key, dpkg_status=str(status))
    tar = _build_rootfs_tar(mirror, key, include)
    containers.remove_left_containers()
    ctr = tools.buildah(["from", "--name", containers.owned_name(), "scratch"]).stdout.strip()
    try:
        tools.buildah(["add", ctr, str(tar), "/"])
        tools.buildah(["config", "--env", "LANG=C.UTF-8", "--cmd", "/usr/bin/python3", ctr])
        tools.buildah(["commit", "--rm", ctr, ref])
    except BaseException:
        tools.buildah(["rm", ctr], check=False)
        raise
    return BaseImage(
        reference=ref,
        source="debootstrap",
        key=key,
        dpkg_status=str(status) if status.is_file() else None,
    )
