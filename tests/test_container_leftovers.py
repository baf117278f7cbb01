"""A buildah container a killed run left is removed by the next run (`packaging.containers`).

Real buildah, with `scratch` (an empty image: nothing to build or pull). The kill is
performed: a process enters `container_run`'s container context, the way an image's server
is run, and SIGKILLs itself, so its `finally` never runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlgate.packaging import containers, tools

pytestmark = pytest.mark.skipif(shutil.which("buildah") is None, reason="buildah not installed")

KILLED_RUN = """
import os, signal
from mlgate.config import PlatformSettings
from mlgate.packaging.container_run import _container
with _container(PlatformSettings(), "scratch", pull=False) as (ctr, root, cfg):
    print(ctr, root, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _names() -> list[str]:
    out = tools.buildah(["containers", "--json"]).stdout
    return [c["containername"] for c in json.loads(out or "[]") or []]


def _mounted(path: str) -> bool:
    return any(
        line.split()[4] == path for line in Path("/proc/self/mountinfo").read_text().splitlines()
    )


def _killed_run() -> tuple[str, str]:
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_RUN], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    ctr, root = proc.stdout.split()
    return ctr, root


@pytest.fixture
def cleanup() -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for name in made:
        tools.buildah(["umount", name], check=False)
        tools.buildah(["rm", name], check=False)


def test_a_killed_runs_container_is_removed_and_unmounted_by_the_next(cleanup: list[str]) -> None:
    ctr, root = _killed_run()
    cleanup.append(ctr)
    # The kill left it (the process printed it made and mounted it, then died): no assertion
    # that it is still there, as a parallel test's sweep may already have taken it.
    assert ctr.startswith(containers.PREFIX)
    containers.remove_left_containers()  # (a parallel test's sweep may have come first)
    assert ctr not in _names() and not _mounted(root)


def test_live_owners_and_foreign_containers_are_never_touched(cleanup: list[str]) -> None:
    mine = containers.owned_name()
    foreign = f"someone-else-{os.getpid()}"
    for name in (mine, foreign):
        tools.buildah(["from", "--pull=false", "--name", name, "scratch"])
        cleanup.append(name)
    # Owned-looking, but its pid belongs to a live process with another start time (reused).
    reused = f"{containers.PREFIX}{os.getpid()}-1-0123abcd"
    tools.buildah(["from", "--pull=false", "--name", reused, "scratch"])
    cleanup.append(reused)
    containers.remove_left_containers()
    assert {mine, foreign} <= set(_names()) and reused not in _names()


def test_a_container_a_process_still_runs_in_is_left_until_it_ends(cleanup: list[str]) -> None:
    # The owner is a process of this test, so no sweep (another test's, in parallel) may take
    # the container before the server runs in it; then the owner dies, as a killed run does.
    owner = subprocess.Popen(["sleep", "300"])
    ctr = containers.owned_name(owner.pid)
    tools.buildah(["from", "--pull=false", "--name", ctr, "scratch"])
    cleanup.append(ctr)
    root = tools.buildah(["mount", ctr]).stdout.strip()
    # What a killed `images run` leaves: its server, chrooted in the container, still running.
    for binary in ("/usr/bin/sleep", *_libraries("/usr/bin/sleep")):
        target = Path(root + binary)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, target)
    server = subprocess.Popen(["chroot", root, "/usr/bin/sleep", "300"])
    owner.kill()
    owner.wait(10)
    try:
        assert ctr not in containers.remove_left_containers()
        assert ctr in _names() and _mounted(root)
    finally:
        server.kill()
        server.wait(10)
    containers.remove_left_containers()
    assert ctr not in _names() and not _mounted(root)


def _libraries(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    return [w for line in out.splitlines() for w in line.split() if w.startswith("/")]
