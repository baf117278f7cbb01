"""The embedded default's image registry: Debian's `docker-registry` on loopback.

It is the CNCF distribution registry (v2.8), the same server most production registries are
built on, serving the OCI distribution API at `http://<registry.address>/v2/`. State lives in the
workspace (`<workspace>/registry/`: config, blob storage, pid file, log), so `mlgate registry
down` plus deleting the workspace removes every trace. Plain HTTP on loopback only; pushes use
`--tls-verify=false` because `registry.insecure` is true for it. In production, point
`registry.address` at the real registry and set `registry.insecure: false`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import requests
import yaml
from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.errors import ExternalServiceError
from mlgate.packaging import tools


class RegistryStatus(BaseModel):
    address: str
    answering: bool
    pid: int | None = None  # the process mlgate started, if it is ours
    storage: str
    readonly: bool = False


def _dir(settings: PlatformSettings) -> Path:
    return settings.ws().sub("registry")


def answering(address: str, timeout: float = 1.0) -> bool:
    try:
        return requests.get(f"http://{address}/v2/", timeout=timeout).status_code in (200, 401)
    except requests.RequestException:
        return False


def _serves_ours(pid: int, config: Path) -> bool:
    """Is `pid` a docker-registry serving this workspace's config? (A recorded pid may have
    been reused by another process since: that one is never signalled.)"""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return len(argv) >= 3 and argv[1:3] == [b"serve", str(config).encode()]


def _orphan(config: Path) -> int | None:
    """A docker-registry serving this workspace's config that no pid file records: left by a
    run killed (SIGKILL) between starting it and recording it."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _serves_ours(int(entry.name), config):
            return int(entry.name)
    return None


def _pid(settings: PlatformSettings) -> int | None:
    """The registry this workspace started, still running: the pid file's, else one found
    serving this workspace's config (the registry outlives a killed `mlgate`: its own session)."""
    d = _dir(settings)
    f = d / "registry.pid"
    config = d / "config.yml"
    if f.is_file():
        try:
            pid = int(f.read_text().strip())
        except ValueError:
            pid = None
        if pid is not None and _serves_ours(pid, config):
            return pid
        f.unlink(missing_ok=True)
    found = _orphan(config)
    if found is not None:
        f.write_text(f"{found}\n")
    return found


def status(settings: PlatformSettings) -> RegistryStatus:
    d = _dir(settings)
    return RegistryStatus(
        address=settings.registry.address,
        answering=answering(settings.registry.address),
        pid=_pid(settings),
        storage=str(d / "data"),
        readonly=(d / "READONLY").exists(),
    )


def write_config(settings: PlatformSettings, *, readonly: bool = False) -> Path:
    d = _dir(settings)
    cfg = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(d / "data")},
            "delete": {"enabled": True},
            # Read-only maintenance mode refuses every push: what `--readonly` is for.
            "maintenance": {"readonly": {"enabled": readonly}, "uploadpurging": {"enabled": False}},
        },
        "http": {"addr": settings.registry.address, "secret": "mlgate-embedded-default"},
    }
    path = d / "config.yml"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(cfg, sort_keys=True))
    os.replace(tmp, path)
    return path


def up(
    settings: PlatformSettings, *, readonly: bool = False, timeout: float = 20
) -> RegistryStatus:
    """Start the registry unless something already answers at the address."""
    addr = settings.registry.address
    if answering(addr):
        return status(settings)
    binary = tools.require("docker-registry")
    d = _dir(settings)
    (d / "data").mkdir(parents=True, exist_ok=True)
    cfg = write_config(settings, readonly=readonly)
    (d / "READONLY").unlink(missing_ok=True)
    if readonly:
        (d / "READONLY").touch()
    log = (d / "registry.log").open("ab")
    proc = subprocess.Popen(
        [binary, "serve", str(cfg)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=d,
    )
    log.close()
    # Recorded at once, not once it answers: a run killed while waiting must not leave a
    # registry that `down` (or the next run) cannot find.
    (d / "registry.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            (d / "registry.pid").unlink(missing_ok=True)
            tail = (d / "registry.log").read_text(errors="replace")[-800:]
            raise ExternalServiceError(
                f"docker-registry exited ({proc.returncode}) at {addr}: {tail}"
            )
        if answering(addr, timeout=0.5):
            return status(settings)
        time.sleep(0.1)
    down(settings)
    raise ExternalServiceError(f"docker-registry did not answer at http://{addr}/v2/ in {timeout}s")


def down(settings: PlatformSettings, timeout: float = 10) -> RegistryStatus:
    """Stop the registry this workspace started (never a process it did not start)."""
    pid = _pid(settings)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            try:  # reap it if it is our child (tests start and stop in one process)
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
        (_dir(settings) / "registry.pid").unlink(missing_ok=True)
    return status(settings)


def require_up(settings: PlatformSettings) -> None:
    addr = settings.registry.address
    if not answering(addr, timeout=2):
        raise ExternalServiceError(
            f"image registry at {addr} is not answering (http://{addr}/v2/): "
            "start it with `mlgate registry up` or set registry.address"
        )
