"""Run a pipeline on this machine with Kubeflow's local runner.

`kfp.local.SubprocessRunner(use_venv=False)` executes each lightweight component in a
subprocess of this Python environment (no cluster, no network), passing Dataset/Model/Metrics
artifacts through files under `<workspace>/kfp/`. It is the same pipeline definition the
Kubeflow UI runs; only the runner differs. The runner ignores `base_image` and cannot run
container components, which is why every step here is a Python component.

kfp prints its task log on stdout. We keep stdout clean (scripts read `--json` there): the log
goes to `<workspace>/kfp/logs/<pipeline>-<stamp>.log`, and the task start/finish lines drive a
progress callback (the CLI shows them with rich).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.pipelines import catalog

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_START = re.compile(r"Executing task '(?P<task>[^']+)'")
_END = re.compile(r"Task '(?P<task>[^']+)' finished with status (?P<status>[A-Z]+)")
_PIPE_END = re.compile(r"Pipeline '(?P<p>[^']+)' finished with status (?P<status>[A-Z]+)")

ProgressFn = Callable[[str, str], None]  # (task, "running" | "SUCCESS" | "FAILURE")


class TaskRecord(BaseModel):
    name: str
    status: str  # SUCCESS | FAILURE | running (never finished)
    seconds: float


class LocalRunResult(BaseModel):
    pipeline: str
    status: str  # SUCCESS | FAILURE
    tasks: list[TaskRecord]
    outputs: dict[str, Any]  # pipeline outputs: parameter values or artifact URIs
    pipeline_root: str
    log: str
    seconds: float

    @property
    def ran(self) -> list[str]:
        return [t.name for t in self.tasks]


class _LogTap(io.TextIOBase):
    """A stdout stand-in: copies kfp's log to a file and reports task starts and ends."""

    def __init__(self, fh: io.TextIOBase, on_line: Callable[[str], None]) -> None:
        self._fh = fh
        self._on_line = on_line
        self._buf = ""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self._fh.write(s)
        self._buf += s
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            self._on_line(_ANSI.sub("", line))
        return len(s)

    def flush(self) -> None:
        self._fh.flush()


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    """Component subprocesses inherit the environment: point them at our settings."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _jsonable_output(value: Any) -> Any:
    uri = getattr(value, "uri", None)
    if uri is not None:
        return {"uri": uri, "metadata": dict(getattr(value, "metadata", {}) or {})}
    if isinstance(value, dict):
        return {k: _jsonable_output(v) for k, v in value.items()}
    return value


def run_local(
    name: str,
    settings: PlatformSettings,
    *,
    arguments: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
) -> LocalRunResult:
    """Run pipeline `name` with the local runner; returns what ran and the pipeline outputs.

    A task that fails (a crash, bad data) fails the run: status FAILURE, nothing after it runs.
    A gate that says FAIL is not a crash: the pipeline routes around the image and promotion
    steps and still finishes SUCCESS, with the gate report as its output.
    """
    from kfp import local

    ws = settings.ws()
    kfp_root = ws.sub("kfp")
    logs = ws.sub("kfp", "logs")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    log_path = logs / f"{name}-{stamp}.log"

    pipeline = catalog.load(name)
    started: dict[str, float] = {}
    tasks: dict[str, TaskRecord] = {}
    final = {"status": "FAILURE"}

    def on_line(line: str) -> None:
        if m := _START.search(line):
            task = m.group("task")
            started[task] = time.monotonic()
            tasks[task] = TaskRecord(name=task, status="running", seconds=0.0)
            if progress:
                progress(task, "running")
        elif m := _END.search(line):
            task, status = m.group("task"), m.group("status")
            secs = time.monotonic() - started.get(task, time.monotonic())
            tasks[task] = TaskRecord(name=task, status=status, seconds=round(secs, 2))
            if progress:
                progress(task, status)
        elif m := _PIPE_END.search(line):
            final["status"] = m.group("status")

    # The steps load their settings in their own process: hand them exactly these (a
    # `--config` file given to the CLI would otherwise be lost on the way).
    settings_file = kfp_root / "settings.yaml"
    settings_file.write_text(
        yaml.safe_dump(settings.model_dump(mode="json", exclude_none=True)), encoding="utf-8"
    )
    env = {
        "MLGATE_CONFIG": str(settings_file),
        "MLGATE_WORKSPACE": str(ws.root),
        catalog.ROOT_ENV: str(catalog.project_root()),
    }
    t0 = time.monotonic()
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(kfp_root),
        raise_on_error=False,
    )
    with (
        open(log_path, "w", encoding="utf-8") as fh,
        _env(env),
        contextlib.redirect_stdout(_LogTap(fh, on_line)),  # type: ignore[type-var]
        warnings.catch_warnings(),
    ):
        # The local runner warns that it ignores base_image and display names: known, noise.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        task = pipeline(**(arguments or {}))
    outputs = dict(getattr(task, "outputs", None) or {}) if task is not None else {}
    return LocalRunResult(
        pipeline=name,
        status=final["status"],
        tasks=list(tasks.values()),
        outputs={k: _jsonable_output(v) for k, v in outputs.items()},
        pipeline_root=str(kfp_root),
        log=str(log_path),
        seconds=round(time.monotonic() - t0, 2),
    )


def log_tail(result: LocalRunResult, lines: int = 40) -> str:
    text = Path(result.log).read_text(encoding="utf-8", errors="replace")
    return "\n".join(_ANSI.sub("", text).splitlines()[-lines:])
