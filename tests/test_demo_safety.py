"""`mlgate demo` refuses what it cannot do before doing anything, and is safe to re-run after
being killed: cheap checks, no demo step runs (tests/test_demo.py runs the demo itself).

- A step name that names no step (`--only canry`, `--until nope`) is bad input (exit 2) naming
  it and the valid steps, and nothing is written: before, `--only` with a typo ran nothing and
  said "demo complete".
- The demo's loopback registry runs in its own session, so it outlives a SIGKILLed demo. The
  kill is performed here while the registry is starting (the moment no pid file used to record
  it): the next run's start-and-stop (what `--fast`'s image step does) and `mlgate registry
  down` must both find it and stop it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlgate.cli import app_for
from mlgate.commands._common import run_guarded
from mlgate.config import RegistrySettings, load_settings
from mlgate.demo import discover
from mlgate.packaging import registry, tools
from mlgate.serving.server import free_port


def _mlgate_in_process(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """`mlgate ARGS` as the console script runs it (errors -> exit codes), in this process."""
    monkeypatch.setattr(sys, "argv", ["mlgate", *args])
    return run_guarded(app_for(list(args)))


@pytest.mark.parametrize(
    ("args", "unknown"),
    [
        (["--only", "canry"], ["'canry'"]),
        (["--only", "canary", "--only", "audti"], ["'audti'"]),
        (["--until", "nope"], ["'nope'"]),
        (["--only", "x", "--until", "y"], ["'x'", "'y'"]),
    ],
)
def test_an_unknown_step_name_is_refused_before_any_work(
    args: list[str],
    unknown: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = tmp_path / "ws"
    monkeypatch.setenv("MLGATE_WORKSPACE", str(ws))
    code = _mlgate_in_process(monkeypatch, "demo", *args)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert all(name in err for name in unknown), err
    for step in discover():  # the valid ones are listed
        assert step.name in err, err
    assert "'canary'" not in err  # a valid name is not called unknown
    assert not ws.exists()  # nothing written: not even the workspace


def _ours(config: Path) -> list[int]:
    """Every live docker-registry serving `config`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if entry.name.isdigit() and argv[1:3] == [b"serve", str(config).encode()]:
            found.append(int(entry.name))
    return found


def _gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except OSError:
            return True
        if state == "Z":  # exited, waiting for its (other) parent to reap it
            return True
        time.sleep(0.1)
    return False


def _killed_while_starting(tmp_path: Path) -> tuple[dict[str, str], Path, int]:
    """Start the registry as the demo does (`registry.up`) in a child process and SIGKILL the
    child as soon as docker-registry is running, usually before it answers. -> (env, the
    registry's config path, the orphan's pid)."""
    try:
        tools.require("docker-registry")
    except Exception:  # noqa: BLE001
        pytest.skip("docker-registry is not installed (make debs installs it)")
    ws = tmp_path / "ws"
    env = {
        **os.environ,
        "MLGATE_WORKSPACE": str(ws),
        "MLGATE_REGISTRY__ADDRESS": f"127.0.0.1:{free_port()}",
    }
    config = ws / "registry" / "config.yml"
    code = (
        "import time\n"
        "from mlgate.config import load_settings\n"
        "from mlgate.packaging import registry\n"
        "registry.up(load_settings())\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.monotonic() + 120
        while not _ours(config) and time.monotonic() < deadline:
            assert child.poll() is None, "the child exited before starting the registry"
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    (orphan,) = _ours(config)
    assert not _gone(orphan, timeout=0.5)  # it outlived the run that started it
    return env, config, orphan


def test_registry_down_stops_the_registry_a_killed_run_left(tmp_path: Path) -> None:
    env, config, orphan = _killed_while_starting(tmp_path)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mlgate.cli", "registry", "down"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert _gone(orphan) and _ours(config) == []
    finally:
        for pid in _ours(config):
            os.kill(pid, signal.SIGKILL)


def test_the_next_run_reuses_then_stops_the_registry_a_killed_run_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the next `mlgate demo --fast` does with the registry: up (reusing the one that
    answers), then down: the killed run's registry is gone afterwards."""
    env, config, orphan = _killed_while_starting(tmp_path)
    try:
        monkeypatch.setenv("MLGATE_WORKSPACE", env["MLGATE_WORKSPACE"])
        settings = load_settings().model_copy(
            update={"registry": RegistrySettings(address=env["MLGATE_REGISTRY__ADDRESS"])}
        )
        st = registry.up(settings)
        assert st.answering and st.pid == orphan  # reused, known as this workspace's
        registry.down(settings)
        assert _gone(orphan) and _ours(config) == []
    finally:
        for pid in _ours(config):
            os.kill(pid, signal.SIGKILL)
