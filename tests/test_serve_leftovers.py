"""Servers a killed `mlgate serve` left behind are stopped by the next one (`serving.procs`).

kill -9 runs no clean-up, and the kernel's parent-death signal does not reach an image's
server (it drops the signal when `chroot --userspec` switches user). So a supervisor records
each process group it starts (`GroupLedger`), and the next supervisor of the environment stops
what a dead one recorded (`reap_left`). Stand-in processes here: `sleep`s in their own session,
started the way `container_run.run_image` starts an image's server (no MLServer needed;
tests/test_serve_topology_served.py checks the record a real serve keeps).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlgate.serving.procs import RECORD_PREFIX, GroupLedger, reap_left, start_time


def _alive(pid: int) -> bool:
    return start_time(pid) is not None


def _wait_gone(pids: list[int], timeout: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


@pytest.fixture
def group() -> Iterator[subprocess.Popen[bytes]]:
    """A process group of two (a leader and its child), in its own session."""
    proc = subprocess.Popen(["sh", "-c", "sleep 300 & exec sleep 301"], start_new_session=True)
    yield proc
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


def _members(pgid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(entry.name))
    return out


def test_a_group_a_killed_supervisor_started_is_stopped_by_the_next(tmp_path: Path) -> None:
    folder = tmp_path / "serve" / "credit_risk-prod"
    pidfile = tmp_path / "group.pid"
    supervisor = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        "from pathlib import Path\n"
        "from mlgate.serving.procs import GroupLedger\n"
        f"ledger = GroupLedger(Path({str(folder)!r}))\n"
        "c = subprocess.Popen(['sh', '-c', 'sleep 300 & exec sleep 301'],\n"
        "                     start_new_session=True)\n"
        "ledger.add('canary', c.pid)\n"
        f"open({str(pidfile)!r}, 'w').write(str(c.pid))\n"
        "time.sleep(300)\n")])  # fmt: skip
    leader = 0
    try:
        deadline = time.monotonic() + 60
        while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        leader = int(pidfile.read_text())
        deadline = time.monotonic() + 10
        while len(_members(leader)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        members = _members(leader)
        assert len(members) == 2
        os.kill(supervisor.pid, signal.SIGKILL)
        supervisor.wait(10)
        time.sleep(0.5)
        assert _wait_gone(members, 0.1) == members  # no clean-up ran: the group outlives it
        stopped = reap_left(folder)
        assert stopped == [f"canary (pid {leader})"]
        assert _wait_gone(members) == []
        assert list(folder.glob(f"{RECORD_PREFIX}*")) == []  # the record went with them
        assert reap_left(folder) == []  # nothing twice
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        if leader:
            try:
                os.killpg(leader, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_live_supervisors_groups_are_its_own(
    tmp_path: Path, group: subprocess.Popen[bytes]
) -> None:
    ledger = GroupLedger(tmp_path)
    ledger.add("stable", group.pid)
    assert reap_left(tmp_path) == []
    assert _alive(group.pid) and ledger.path.is_file()
    ledger.close()
    assert not ledger.path.exists()


def _forge(folder: Path, supervisor: dict[str, object], groups: list[dict[str, object]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{RECORD_PREFIX}999999.json"
    path.write_text(json.dumps({"supervisor": supervisor, "groups": groups}))
    return path


def test_a_pid_given_to_another_process_since_is_never_signalled(
    tmp_path: Path, group: subprocess.Popen[bytes]
) -> None:
    """The record names the pid with another start time: the kernel reused the number."""
    start = start_time(group.pid)
    assert start is not None
    dead = {"pid": 999999, "start": 1}
    record = _forge(tmp_path, dead, [{"name": "canary", "pid": group.pid, "start": start - 1}])
    assert reap_left(tmp_path) == []
    assert _alive(group.pid)
    assert not record.exists()


@pytest.mark.parametrize(
    "content",
    ['{"supervisor": {"pid": 1', "[]", '{"supervisor": 7, "groups": [{"pid": "1"}]}'],
)
def test_an_unreadable_record_signals_nothing_and_is_removed(
    tmp_path: Path, group: subprocess.Popen[bytes], content: str
) -> None:
    record = tmp_path / f"{RECORD_PREFIX}1.json"
    record.write_text(content)
    assert reap_left(tmp_path) == []
    assert _alive(group.pid) and not record.exists()


def test_a_record_naming_the_reapers_own_group_does_not_stop_it(tmp_path: Path) -> None:
    """A forged record naming the process group of the `mlgate serve` that reads it (with the
    right start time): the reaper must not stop itself. Run in a child, in its own session."""
    out = subprocess.run([sys.executable, "-c", (
        "import json, os\n"
        "from pathlib import Path\n"
        "from mlgate.serving.procs import RECORD_PREFIX, reap_left, start_time\n"
        f"folder = Path({str(tmp_path)!r})\n"
        "me = os.getpgid(0)\n"
        "(folder / f'{RECORD_PREFIX}1.json').write_text(json.dumps({\n"
        "    'supervisor': {'pid': 999999, 'start': 1},\n"
        "    'groups': [{'name': 'x', 'pid': me, 'start': start_time(me)}]}))\n"
        "print(reap_left(folder), 'survived')\n")],
        capture_output=True, text=True, timeout=60, start_new_session=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] survived"
