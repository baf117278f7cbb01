"""buildah working containers that outlive no one: each is named for the process that owns it.

mlgate makes a buildah container to run an image (`container_run`) or to assemble the base
image (`base_image`), and removes it in a `finally`. SIGKILL (a closed terminal, the OOM
killer, a CI timeout) runs no `finally`, and the container stays, mounted: an overlay mount
and a copy of the image's writable layer per killed run, seen piling up on this machine.

So the container's name says who owns it, `mlgate-run-<pid>-<start time>-<random>`, and
before mlgate makes a container it removes the ones whose owner is gone
(`remove_left_containers`). A pid the kernel has since given to another process does not keep
a container (the start time differs); a live owner's container, a container mlgate did not
name, and one in which a process still runs (its root inside the container's mount point: the
server a killed `mlgate images run` left keeps its root until someone stops it) are never
touched.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
from pathlib import Path

from mlgate.packaging import tools
from mlgate.serving.procs import start_time

PREFIX = "mlgate-run-"
_OWNED = re.compile(r"^mlgate-run-(\d+)-(\d+)-[0-9a-f]{8}$")

log = logging.getLogger(__name__)


def owned_name(pid: int | None = None) -> str:
    """A name for a new container owned by process `pid`, this one by default (`buildah from
    --name`)."""
    pid = os.getpid() if pid is None else pid
    return f"{PREFIX}{pid}-{start_time(pid)}-{secrets.token_hex(4)}"


def owner_alive(name: str) -> bool:
    """True unless `name` is an owned name whose owner (pid and start time) is gone."""
    m = _OWNED.match(name)
    return m is None or start_time(int(m[1])) == int(m[2])


def _roots() -> set[str]:
    """Every process's root directory (a chrooted server's is inside its container's mount)."""
    roots = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                roots.add(os.readlink(entry / "root"))
            except OSError:
                continue
    return roots


def _mount_point(name: str) -> str:
    proc = tools.buildah(["inspect", "--type", "container", name], check=False)
    if proc.returncode != 0:
        return ""
    try:
        return str(json.loads(proc.stdout).get("MountPoint") or "")
    except ValueError:
        return ""


def remove_left_containers() -> list[str]:
    """Unmount and remove the owned containers whose owner is gone and in which nothing runs;
    return their names. Failing to list them is no reason to stop the caller's work."""
    listed = tools.buildah(["containers", "--json"], check=False)
    if listed.returncode != 0:
        return []
    try:
        names = [str(c.get("containername", "")) for c in json.loads(listed.stdout or "[]") or []]
    except (ValueError, AttributeError):
        return []
    left = [n for n in names if n.startswith(PREFIX) and not owner_alive(n)]
    if not left:
        return []
    roots = _roots()
    removed = []
    for name in left:
        mount = _mount_point(name)
        if mount and any(r == mount or r.startswith(mount + "/") for r in roots):
            log.warning("container %s: its owner is gone but a process runs in it; left", name)
            continue
        tools.buildah(["umount", name], check=False)
        if tools.buildah(["rm", name], check=False).returncode == 0:
            removed.append(name)
            log.info("removed container %s, left by a killed run", name)
    return removed
