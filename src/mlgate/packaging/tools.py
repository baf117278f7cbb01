"""The container tools mlgate drives: buildah and skopeo, always the same way.

buildah runs daemonless with `chroot` isolation (no user namespaces, no runc) and the `overlay`
storage driver where the kernel offers it to root, else `vfs` (works in any container or VM). Every call goes through
here so the flags are set in one place and a missing tool is one clear error naming the Debian
package, not a FileNotFoundError.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from mlgate.errors import ConfigError, ExternalServiceError

PACKAGES = {
    "buildah": "buildah",
    "skopeo": "skopeo",
    "docker-registry": "docker-registry",
    "debootstrap": "debootstrap",
}


def require(tool: str) -> str:
    path = shutil.which(tool) or (
        f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else None
    )
    if not path:
        pkg = PACKAGES.get(tool, tool)
        raise ConfigError(
            f"{tool} is not installed: apt-get install {pkg} (or run `make debs` as root)"
        )
    return path


STORAGE_ENV = "MLGATE_BUILDAH_STORAGE"  # auto | overlay | vfs
OVERLAY_ROOT = "/var/lib/containers/mlgate-overlay"
OVERLAY_RUNROOT = "/run/containers/mlgate-overlay"


@functools.cache
def storage_driver() -> str:
    """overlay when the kernel has it and we are root (40x faster `from`), else vfs.

    vfs works anywhere (inside unprivileged containers too) but copies every layer in full for
    each container and commit. The two drivers keep separate storage roots, so switching
    never meets a storage database made by the other.
    """
    want = os.environ.get(STORAGE_ENV, "auto")
    if want in ("vfs", "overlay"):
        return want
    try:
        has_overlay = "overlay" in Path("/proc/filesystems").read_text()
    except OSError:
        has_overlay = False
    return "overlay" if has_overlay and os.geteuid() == 0 else "vfs"


def storage_args() -> list[str]:
    if storage_driver() == "overlay":
        return ["--root", OVERLAY_ROOT, "--runroot", OVERLAY_RUNROOT, "--storage-driver", "overlay"]
    return ["--storage-driver", "vfs"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("BUILDAH_ISOLATION", "chroot")
    return env


def buildah(
    args: Sequence[str], *, check: bool = True, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `buildah <storage flags> ARGS`; on failure raise with buildah's own words."""
    cmd = [require("buildah"), *storage_args(), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=timeout)
    if check and proc.returncode != 0:
        raise _failed(args, proc)
    return proc


def _failed(args: Sequence[str], proc: subprocess.CompletedProcess[str]) -> ExternalServiceError:
    return ExternalServiceError(
        f"buildah {args[0]} failed (exit {proc.returncode}): "
        + (proc.stderr.strip() or proc.stdout.strip())[-2000:]
    )


# buildah's chroot runtime re-executes itself from a sealed memfd copy of its binary. The
# kernel refuses the seal (EBUSY) while it still holds a reference to one of the copy's pages,
# e.g. reclaim or writeback in flight, so a build fails for no reason of its own: seen once
# in seven full demo runs (about 20 builds) on this machine (2026-11-30), and the next run's
# builds succeeded. Only that failure is retried; any other fails at once.
TRANSIENT = ("sealing memfd copy: Device or resource busy",)
BUILD_ATTEMPTS = 3


def build(ctx: Path, tag: str, build_args: dict[str, str] | None = None) -> None:
    """`buildah build` of ctx/Containerfile into the local image `tag`: chroot isolation, no
    intermediate layers kept, nothing pulled (FROM names a local image)."""
    args = ["build", "--isolation", "chroot", "--layers=false", "--pull=never"]
    for key, value in sorted((build_args or {}).items()):
        args += ["--build-arg", f"{key}={value}"]
    args += ["-f", str(ctx / "Containerfile"), "-t", tag, str(ctx)]
    for attempt in range(1, BUILD_ATTEMPTS + 1):
        proc = buildah(args, check=False)
        if proc.returncode == 0:
            return
        said = proc.stderr + proc.stdout
        if attempt == BUILD_ATTEMPTS or not any(t in said for t in TRANSIENT):
            raise _failed(args, proc)
        time.sleep(attempt)


def skopeo(args: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [require("skopeo"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise ExternalServiceError(
            f"skopeo {args[0]} failed (exit {proc.returncode}): {proc.stderr.strip()[-1500:]}"
        )
    return proc
