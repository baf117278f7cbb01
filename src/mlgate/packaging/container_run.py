"""Run an image's entrypoint on the host, as Kubernetes would: non-root, read-only root.

Without a container engine, buildah gives us the image's root filesystem (`buildah from` +
`buildah mount`). `buildah run` has no read-only-root option, so the runner does what the
kubelet's `readOnlyRootFilesystem: true` + `runAsUser` amount to, with plain kernel features:

- a private mount namespace (`unshare --mount`), so nothing below leaks onto the host and every
  mount disappears with the process;
- the rootfs bind-mounted onto itself and remounted read-only (`mount -o remount,bind,ro`):
  the kernel refuses any write outside the volumes;
- each VOLUME the image declares (only /tmp for mlgate's images) gets a fresh tmpfs, like an
  `emptyDir`; /dev and /proc are provided as a runtime would;
- `chroot --userspec=<image USER>` runs the image's ENTRYPOINT/CMD with the image's ENV, plus
  the variables the caller passes (the overlay's MLGATE_CUTOFF, the ports).

It shares the host's network namespace, so the server answers on loopback.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.errors import ExternalServiceError
from mlgate.packaging import tools


class ImageConfig(BaseModel):
    entrypoint: list[str]
    cmd: list[str]
    env: dict[str, str]
    user: str
    workdir: str
    volumes: list[str]


class RunningContainer(BaseModel):
    container: str
    rootfs: str
    pid: int
    log: str


def _tls(settings: PlatformSettings) -> str:
    return f"--tls-verify={'false' if settings.registry.insecure else 'true'}"


def image_config(container: str) -> ImageConfig:
    raw = tools.buildah(["inspect", "--type", "container", container]).stdout
    cfg: dict[str, Any] = json.loads(raw)["OCIv1"].get("config") or {}
    env = dict(e.split("=", 1) for e in cfg.get("Env") or [] if "=" in e)
    return ImageConfig(
        entrypoint=list(cfg.get("Entrypoint") or []),
        cmd=list(cfg.get("Cmd") or []),
        env=env,
        user=str(cfg.get("User") or "0:0"),
        workdir=str(cfg.get("WorkingDir") or "/"),
        volumes=sorted((cfg.get("Volumes") or {}).keys()),
    )


def _script(root: Path, cfg: ImageConfig, env: dict[str, str], argv: list[str]) -> str:
    q = shlex.quote
    lines = [
        "set -e",
        "mount --make-rprivate /",
        f"mount --bind {q(str(root))} {q(str(root))}",
        f"mount -o remount,bind,ro {q(str(root))}",
    ]
    for vol in cfg.volumes:
        lines.append(f"mount -t tmpfs -o size=256m,mode=1777 tmpfs {q(str(root) + vol)}")
    lines += [
        f"mount --rbind /dev {q(str(root / 'dev'))}",
        f"mount -t proc proc {q(str(root / 'proc'))}",
    ]
    user = cfg.user if ":" in cfg.user else f"{cfg.user}:{cfg.user}"
    env_args = " ".join(q(f"{k}={v}") for k, v in sorted(env.items()))
    cmd = " ".join(q(a) for a in argv)
    lines.append(
        f"exec chroot --userspec={q(user)} {q(str(root))} /usr/bin/env -i {env_args} "
        f"sh -c {q('cd ' + shlex.quote(cfg.workdir) + ' && exec ' + cmd)}"
    )
    return "\n".join(lines) + "\n"


@contextmanager
def run_image(
    settings: PlatformSettings,
    image: str,
    *,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    pull: bool = True,
) -> Iterator[RunningContainer]:
    """Run `image` (e.g. `repo@sha256:...` from the registry) read-only as its USER; clean up."""
    tools.require("buildah")
    for tool in ("unshare", "chroot", "mount"):
        if not shutil.which(tool):
            raise ExternalServiceError(f"{tool} (util-linux/coreutils) is required to run images")
    source = f"docker://{image}" if pull else image
    proc_from = tools.buildah(["from", _tls(settings), "--pull-always" if pull else "--pull=false",
                               source], check=False)  # fmt: skip
    if proc_from.returncode != 0:
        raise ExternalServiceError(
            f"cannot create a container from {image}: {proc_from.stderr[-800:]}"
        )
    ctr = proc_from.stdout.strip().splitlines()[-1]
    proc: subprocess.Popen[bytes] | None = None
    logdir = Path(tempfile.mkdtemp(prefix="mlgate-run-"))
    try:
        cfg = image_config(ctr)
        root = Path(tools.buildah(["mount", ctr]).stdout.strip())
        full_env = {**cfg.env, **(env or {})}
        argv = [*cfg.entrypoint, *(args if args is not None else cfg.cmd)]
        script = _script(root, cfg, full_env, argv)
        (logdir / "run.sh").write_text(script)
        log = (logdir / "container.log").open("ab")
        proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", str(logdir / "run.sh")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        yield RunningContainer(
            container=ctr, rootfs=str(root), pid=proc.pid, log=str(logdir / "container.log")
        )
    finally:
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, 15)
                proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(proc.pid, 9)
                except ProcessLookupError:
                    pass
                proc.wait()
        time.sleep(0.1)
        tools.buildah(["umount", ctr], check=False)
        tools.buildah(["rm", ctr], check=False)
        if pull:  # drop the pulled name; layers shared with other images stay
            tools.buildah(["rmi", image], check=False)
        shutil.rmtree(logdir, ignore_errors=True)
