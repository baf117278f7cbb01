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
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.errors import ExternalServiceError
from mlgate.packaging import containers, tools
from mlgate.packaging.containerfile import VENV


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


class Bind(BaseModel):
    """A host path mounted at the same path inside (a pod's volume); read-only unless writable."""

    path: str
    writable: bool = False


def _script(
    root: Path,
    cfg: ImageConfig,
    env: dict[str, str],
    argv: list[str],
    binds: list[Bind] | tuple[Bind, ...] = (),
    workdir: str | None = None,
) -> str:
    q = shlex.quote
    lines = [
        "set -e",
        "mount --make-rprivate /",
        f"mount --bind {q(str(root))} {q(str(root))}",
    ]
    for vol in cfg.volumes:
        lines.append(f"mount -t tmpfs -o size=256m,mode=1777 tmpfs {q(str(root) + vol)}")
    # Mount points are made while the root is still writable (in the container's own layer,
    # or in a volume's tmpfs), then the root goes read-only: only the volumes stay writable.
    for bind in binds:
        target = q(str(root) + bind.path)
        make = "mkdir -p" if Path(bind.path).is_dir() else "mkdir -p $(dirname {t}) && touch"
        lines.append(f"{make.format(t=target)} {target}")
        lines.append(f"mount --bind {q(bind.path)} {target}")
        if not bind.writable:
            lines.append(f"mount -o remount,bind,ro {target}")
    lines += [
        f"mount -o remount,bind,ro {q(str(root))}",
        f"mount --rbind /dev {q(str(root / 'dev'))}",
        f"mount -t proc proc {q(str(root / 'proc'))}",
    ]
    env_args = " ".join(q(f"{k}={v}") for k, v in sorted(env.items()))
    cmd = " ".join(q(a) for a in argv)
    cwd = workdir or cfg.workdir
    lines.append(
        f"exec chroot --userspec={q(_userspec(cfg))} {q(str(root))} /usr/bin/env -i {env_args} "
        f"sh -c {q('cd ' + shlex.quote(cwd) + ' && exec ' + cmd)}"
    )
    return "\n".join(lines) + "\n"


def _userspec(cfg: ImageConfig) -> str:
    return cfg.user if ":" in cfg.user else f"{cfg.user}:{cfg.user}"


_UNSHARE = ["unshare", "--mount", "--propagation", "private"]


def task_command(
    root: Path,
    cfg: ImageConfig,
    argv: list[str],
    env: dict[str, str],
    binds: list[Bind],
    workdir: str,
) -> list[str]:
    """The command that runs `argv` in the foreground inside the mounted image `root`, as the
    server runner does (read-only root, tmpfs volumes, the image's USER) with `binds` mounted
    and `env` as its whole environment; it exits with the task's exit code."""
    return [*_UNSHARE, "sh", "-c", _script(root, cfg, env, argv, binds, workdir)]


def _require_tools() -> None:
    tools.require("buildah")
    for tool in ("unshare", "chroot", "mount"):
        if not shutil.which(tool):
            raise ExternalServiceError(f"{tool} (util-linux/coreutils) is required to run images")


@contextmanager
def _container(
    settings: PlatformSettings, image: str, pull: bool
) -> Iterator[tuple[str, Path, ImageConfig]]:
    """A container of `image` (pulled from the registry when `pull`), mounted; removed after."""
    _require_tools()
    containers.remove_left_containers()
    source = f"docker://{image}" if pull else image
    pulling = "--pull-always" if pull else "--pull=false"
    name = containers.owned_name()
    proc_from = tools.buildah(
        ["from", _tls(settings), pulling, "--name", name, source], check=False
    )
    if proc_from.returncode != 0:
        raise ExternalServiceError(
            f"cannot create a container from {image}: {proc_from.stderr[-800:]}"
        )
    ctr = proc_from.stdout.strip().splitlines()[-1]
    try:
        cfg = image_config(ctr)
        root = Path(tools.buildah(["mount", ctr]).stdout.strip())
        yield ctr, root, cfg
    finally:
        time.sleep(0.1)
        tools.buildah(["umount", ctr], check=False)
        tools.buildah(["rm", ctr], check=False)
        if pull:  # drop the pulled name; layers shared with other images stay
            tools.buildah(["rmi", image], check=False)


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
    proc: subprocess.Popen[bytes] | None = None
    logdir = Path(tempfile.mkdtemp(prefix="mlgate-run-"))
    try:
        with _container(settings, image, pull) as (ctr, root, cfg):
            try:
                full_env = {**cfg.env, **(env or {})}
                argv = [*cfg.entrypoint, *(args if args is not None else cfg.cmd)]
                (logdir / "run.sh").write_text(_script(root, cfg, full_env, argv))
                log = (logdir / "container.log").open("ab")
                proc = subprocess.Popen(
                    [*_UNSHARE, "sh", str(logdir / "run.sh")],
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
                    _stop(proc)
    finally:
        shutil.rmtree(logdir, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=15)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        proc.wait()


TaskWrap = Callable[[list[str], dict[str, str], Path], list[str]]
# What a task inherits from the runner's environment: mlgate's settings and MLflow's client
# variables (a pod gets them from its spec and Secrets); nothing of the host's PATH or venv.
TASK_ENV_PREFIXES = ("MLGATE_", "MLFLOW_")


def _share(path: Path, gid: int, writable: bool) -> None:
    """Give the task's group a volume, as a pod's `fsGroup` does: group-owned, group-readable
    (and writable if the volume is). The owner stays: git refuses a repository owned by
    another user than the one running it, on the host as in the task."""
    add_dir, add_file = (0o070, 0o060) if writable else (0o050, 0o040)
    paths = [str(path)]
    if path.is_dir():
        for dirpath, dirnames, filenames in os.walk(path):
            paths += [os.path.join(dirpath, n) for n in dirnames + filenames]
    for p in paths:
        try:
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                continue
            add = add_dir if stat.S_ISDIR(st.st_mode) else add_file
            if st.st_mode & 0o100:  # executable by its owner: by the group too
                add |= 0o010
            os.chown(p, -1, gid)
            os.chmod(p, stat.S_IMODE(st.st_mode) | add)
        except FileNotFoundError:
            # A ParallelFor's iterations start in threads: a sibling task that ends removes its
            # workspace (under the pipeline root, a bind) while this one's walk lists it. What
            # is gone needs no sharing; failing here failed the starting task (seen on CI).
            continue


@contextmanager
def image_tasks(
    settings: PlatformSettings, image: str, binds: list[Bind], *, pull: bool = True
) -> Iterator[TaskWrap]:
    """A `wrap` for `mlgate.pipelines.local.run_local`: each task's command runs inside `image`
    (pulled once, e.g. the pushed platform image by digest) as a container runner starts a
    pod: read-only root, /tmp a fresh tmpfs, the image's non-root USER and ENV, the image's
    Python instead of the host's, and only the task's workspace and `binds` mounted, shared
    with the image's group (`_share`). A git
    repository among the binds belongs to another uid, as a mounted volume would: it is listed
    as a git `safe.directory` in a git config handed to the task (GIT_CONFIG_GLOBAL)."""
    tmp = Path(tempfile.mkdtemp(prefix="mlgate-tasks-"))
    gitconfig = tmp / "gitconfig"
    gitconfig.write_text("".join(f"[safe]\n\tdirectory = {b.path}\n" for b in binds))
    gitconfig.chmod(0o644)
    tmp.chmod(0o755)
    try:
        with _container(settings, image, pull) as (_ctr, root, cfg):
            gid = int(_userspec(cfg).split(":")[1])
            python = f"{cfg.env.get('VIRTUAL_ENV') or VENV}/bin/python"

            def wrap(command: list[str], env: dict[str, str], workspace: Path) -> list[str]:
                for bind in binds:
                    _share(Path(bind.path), gid, bind.writable)
                _share(workspace, gid, writable=True)
                argv = [a.replace(sys.executable, python) for a in command]
                passed = {k: v for k, v in env.items() if k.startswith(TASK_ENV_PREFIXES)}
                task_env = {
                    **passed,
                    **cfg.env,  # the image's own (MLGATE_PROJECT_ROOT, PATH, HOME) win
                    "TMPDIR": env.get("TMPDIR", "/tmp"),
                    "GIT_CONFIG_GLOBAL": str(gitconfig),
                }
                mounts = [
                    *binds,
                    Bind(path=str(gitconfig)),
                    Bind(path=str(workspace), writable=True),
                ]
                return task_command(root, cfg, argv, task_env, mounts, str(workspace))

            yield wrap
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
