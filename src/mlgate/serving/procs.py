"""Child processes that cannot outlive the process that started them.

`die_with_parent` runs in a child between fork and exec (`Popen(preexec_fn=...)`): Linux's
PR_SET_PDEATHSIG makes the kernel send it SIGTERM when its parent dies, even by SIGKILL, when no
clean-up code of the parent runs. `mlgate serve --env` starts its model servers this way. Its
own module (stdlib only), so a child's start does not import the serving stack.

The kernel drops that signal when a child changes its user (an image's server runs as the
image's USER through `chroot --userspec`), so a supervisor also records each process group it
starts (`GroupLedger`) in a folder of its workspace, and the next supervisor there stops the
groups a killed one left (`reap_left`). A record names a process by pid and start time, so a
pid the kernel has since given to another process is never signalled.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1
RECORD_PREFIX = "processes-"


def die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot), None if it is gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of proc(5); fields[0] is field 3


class GroupLedger:
    """This process's record of the process groups it started, in `<folder>/processes-<pid>
    .json`: written (atomically) as each group starts, removed when the supervisor ends."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / f"{RECORD_PREFIX}{os.getpid()}.json"
        self._supervisor = {"pid": os.getpid(), "start": start_time(os.getpid())}
        self._groups: list[dict[str, object]] = []

    def add(self, name: str, pid: int) -> None:
        self._groups.append({"name": name, "pid": pid, "start": start_time(pid)})
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        doc = {"supervisor": self._supervisor, "groups": self._groups}
        tmp.write_text(json.dumps(doc), encoding="utf-8")
        os.replace(tmp, self.path)

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def _alive_as_recorded(entry: object) -> int | None:
    if not isinstance(entry, dict):
        return None
    pid, start = entry.get("pid"), entry.get("start")
    if not isinstance(pid, int) or pid <= 1 or not isinstance(start, int):
        return None
    return pid if start_time(pid) == start else None


def _stop_group(pgid: int, timeout: float) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if start_time(pgid) is None:
            return
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def reap_left(folder: Path, timeout: float = 10) -> list[str]:
    """Stop the process groups recorded in `folder` by supervisors that are gone (SIGTERM,
    then SIGKILL); a live supervisor's record is left alone. -> "name (pid N)" per group
    stopped. Unreadable records signal nothing and are removed."""
    stopped: list[str] = []
    if not folder.is_dir():
        return stopped
    own = os.getpgid(0)
    for record in sorted(folder.glob(f"{RECORD_PREFIX}*.json")):
        try:
            doc = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            doc = None
        if isinstance(doc, dict) and _alive_as_recorded(doc.get("supervisor")) is not None:
            continue  # another supervisor still serves: its groups are its own
        groups = doc.get("groups") if isinstance(doc, dict) else None
        for entry in groups if isinstance(groups, list) else []:
            pid = _alive_as_recorded(entry)
            if pid is not None and pid != own:
                _stop_group(pid, timeout)
                stopped.append(f"{entry.get('name')} (pid {pid})")
        record.unlink(missing_ok=True)
    return stopped
