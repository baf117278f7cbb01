"""Run a pipeline on this machine with Kubeflow's local runner, each task as isolated as a pod.

`kfp.local.SubprocessRunner(use_venv=False)` executes each lightweight component in a
subprocess of this Python environment (no cluster, no network), passing Dataset/Model/Metrics
artifacts through files under `<workspace>/kfp/`. It is the same pipeline definition the
Kubeflow UI runs; only the runner differs. The runner ignores `base_image` and cannot run
container components, which is why every step here is a Python component.

In a cluster every task is a pod with its own empty filesystem. Here every task gets the same:
its own empty workspace (`MLGATE_WORKSPACE`, the working directory and `TMPDIR`), created when
the task starts and removed when it ends, so a step that reads what another step left in its
workspace fails here as it would in the cluster. What tasks share is what pods share: the
artifacts (the pipeline root) and the configured services, which the runner pins to absolute
locations in the settings it hands the tasks (the workspace's MLflow and git remote when no
server is configured: the embedded default's stand-ins for the real ones). kfp 2.17 has no
hook for this, so `isolated_tasks` wraps the function its subprocess runner starts a task
with (`kfp.local.subprocess_task_handler.run_local_subprocess`); `tests/test_pipeline_isolation.py`
fails if that stops taking effect.

kfp prints its task log on stdout. We keep stdout clean (scripts read `--json` there): the log
goes to `<workspace>/kfp/logs/<pipeline>-<stamp>.log`, and the task start/finish lines drive a
progress callback (the CLI shows them with rich).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.errors import ConfigError, ExternalServiceError
from mlgate.gitops.repo import GitopsRepo, seed_embedded
from mlgate.pipelines import catalog

if TYPE_CHECKING:  # the hook's type only: running in an image is the caller's choice
    from mlgate.packaging.container_run import TaskWrap

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
def _no_stale_taps() -> Iterator[None]:
    """kfp's local runner binds a root-logger handler to sys.stdout (our tap) and restores the
    handlers it found when it ends; a run that ends mid-way can leave one bound to a tap whose
    log file is closed, and the next run in the process then loses its task-status lines
    ("I/O operation on closed file"). Drop handlers writing to a tap before and after a run."""

    def drop() -> None:
        root = logging.getLogger()
        for h in root.handlers[:]:
            if isinstance(getattr(h, "stream", None), _LogTap):
                root.removeHandler(h)

    drop()
    try:
        yield
    finally:
        drop()


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


def _launch(command: list[str], env: dict[str, str], cwd: Path) -> int:
    """Start one task and copy its output to our stdout line by line (as kfp's runner does)."""
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env=env,
        cwd=cwd,
    ) as proc:
        if proc.stdout:
            for line in iter(proc.stdout.readline, ""):
                print(line, end="")
            print("\n")
        return proc.wait()


@contextlib.contextmanager
def isolated_tasks(root: Path, wrap: TaskWrap | None = None) -> Iterator[None]:
    """While active, every task kfp's subprocess runner starts runs in a fresh, empty workspace
    under `root`, removed when the task ends. `wrap(command, env, workspace)` may rewrite the
    command: `mlgate.packaging.container_run.image_tasks` starts it inside the platform image
    as a container runner would (tests/test_pipeline_local.py runs the training pipeline so)."""
    from kfp.local import subprocess_task_handler as handler

    root.mkdir(parents=True, exist_ok=True)
    original = getattr(handler, "run_local_subprocess", None)
    if original is None:  # another kfp: running without isolation would hide leaks
        raise ConfigError(
            "kfp.local.subprocess_task_handler.run_local_subprocess is gone (kfp changed?): "
            "mlgate cannot isolate the local runner's tasks; pin kfp 2.17"
        )

    def run(full_command: list[str], env_vars: dict[str, str] | None = None) -> int:
        ws = Path(tempfile.mkdtemp(prefix="task-", dir=root))
        (ws / "tmp").mkdir()
        env = {
            **os.environ,
            **(env_vars or {}),
            "MLGATE_WORKSPACE": str(ws),
            "TMPDIR": str(ws / "tmp"),
        }
        try:
            command = wrap(list(full_command), env, ws) if wrap else list(full_command)
            return _launch(command, env, ws)
        finally:
            shutil.rmtree(ws, ignore_errors=True)

    handler.run_local_subprocess = run
    try:
        yield
    finally:
        handler.run_local_subprocess = original


def task_settings(settings: PlatformSettings) -> PlatformSettings:
    """The settings tasks get: services at absolute locations, no workspace of their own.

    On the embedded default the MLflow store and the GitOps remote live in the CLI's workspace;
    tasks reach them there as pods reach the real services (the remote is seeded first, as the
    CLI would seed it). Each task's workspace is its own (MLGATE_WORKSPACE)."""
    repo = GitopsRepo.locate(settings)
    if settings.gitops.remote is None and not Path(repo.remote).exists():
        seed_embedded(settings, Path(repo.remote), repo.branch)
    return settings.model_copy(
        update={
            "workspace": None,
            "mlflow": settings.mlflow.model_copy(
                update={"tracking_uri": settings.mlflow_tracking_uri()}
            ),
            "gitops": settings.gitops.model_copy(update={"remote": repo.remote}),
        }
    )


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
    wrap: TaskWrap | None = None,
) -> LocalRunResult:
    """Run pipeline `name` with the local runner; returns what ran and the pipeline outputs.

    A task that fails (a crash, bad data) fails the run: status FAILURE, nothing after it runs.
    A gate that says FAIL is not a crash: the pipeline routes around the image and promotion
    steps and still finishes SUCCESS, with the gate report as its output.
    """
    pipeline = catalog.load(name)
    args = {**workspace_data(pipeline, settings), **(arguments or {})}
    return run_pipeline(pipeline, name, settings, arguments=args, progress=progress, wrap=wrap)


def workspace_data(pipeline: Any, settings: PlatformSettings) -> dict[str, str]:
    """On this machine the data source defaults to the workspace's world (`mlgate data
    generate`, the demo's scenarios) when the pipeline takes a `data_source` and one exists:
    the tasks cannot see this workspace, so it is handed to the data step explicitly."""
    from mlgate.data.sources import world_dir

    spec = getattr(pipeline, "component_spec", None)
    takes = "data_source" in (getattr(spec, "inputs", None) or {})
    world = world_dir(settings)
    return {"data_source": str(world.resolve())} if takes and world.is_dir() else {}


def run_pipeline(
    pipeline: Any,
    name: str,
    settings: PlatformSettings,
    *,
    arguments: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
    wrap: TaskWrap | None = None,
) -> LocalRunResult:
    """Run a pipeline function (`@dsl.pipeline`) with the local runner, tasks isolated."""
    from kfp import local

    ws = settings.ws()
    kfp_root = ws.sub("kfp")
    logs = ws.sub("kfp", "logs")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    log_path = logs / f"{name}-{stamp}.log"

    started: dict[str, float] = {}
    tasks: list[TaskRecord] = []  # in start order; a task of a loop appears once per iteration
    final = {"status": "FAILURE"}

    def on_line(line: str) -> None:
        if m := _START.search(line):
            task = m.group("task")
            started[task] = time.monotonic()
            tasks.append(TaskRecord(name=task, status="running", seconds=0.0))
            if progress:
                progress(task, "running")
        elif m := _END.search(line):
            task, status = m.group("task"), m.group("status")
            secs = time.monotonic() - started.get(task, time.monotonic())
            record = next(
                (t for t in reversed(tasks) if t.name == task and t.status == "running"), None
            )
            if record is None:
                record = TaskRecord(name=task, status="running", seconds=0.0)
                tasks.append(record)
            record.status, record.seconds = status, round(secs, 2)
            if progress:
                progress(task, status)
        elif m := _PIPE_END.search(line):
            final["status"] = m.group("status")

    # The steps load their settings in their own process: hand them exactly these (a
    # `--config` file given to the CLI would otherwise be lost on the way).
    settings_file = kfp_root / "settings.yaml"
    settings_file.write_text(
        yaml.safe_dump(task_settings(settings).model_dump(mode="json", exclude_none=True)),
        encoding="utf-8",
    )
    env = {"MLGATE_CONFIG": str(settings_file)}
    t0 = time.monotonic()
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(kfp_root),
        raise_on_error=False,
    )
    with (
        _no_stale_taps(),
        open(log_path, "w", encoding="utf-8") as fh,
        _env(env),
        isolated_tasks(ws.sub("kfp", "tasks"), wrap),
        contextlib.redirect_stdout(_LogTap(fh, on_line)),  # type: ignore[type-var]
        warnings.catch_warnings(),
    ):
        # The local runner warns that it ignores base_image and display names: known, noise.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        task = pipeline(**(arguments or {}))
    if final["status"] == "SUCCESS":
        # kfp runs a ParallelFor's iterations in threads that each swap the root logger's
        # handler in and out, so one iteration's "finished" line can reach no handler (seen:
        # 5 of 6 gate tasks' ends in the log). A pipeline that ends SUCCESS ran every task to
        # SUCCESS (kfp fails it on any task failure), so a task still open here finished.
        for record in tasks:
            if record.status == "running":
                record.status = "SUCCESS"
    outputs = dict(getattr(task, "outputs", None) or {}) if task is not None else {}
    return LocalRunResult(
        pipeline=name,
        status=final["status"],
        tasks=tasks,
        outputs={k: _jsonable_output(v) for k, v in outputs.items()},
        pipeline_root=str(kfp_root),
        log=str(log_path),
        seconds=round(time.monotonic() - t0, 2),
    )


def gate_report_dir(result: LocalRunResult) -> Path:
    """The training run's gate report (report.json/.md/.html): the decision step's
    `report_files` artifact, beside the run's output (the report's HTML). A run that failed
    has no output: an error naming its tasks and the tail of its log."""
    output = result.outputs.get("Output")
    if result.status != "SUCCESS" or not isinstance(output, dict) or "uri" not in output:
        raise ExternalServiceError(
            f"{result.pipeline} pipeline {result.status}: no gate report "
            f"({', '.join(f'{t.name} {t.status}' for t in result.tasks)}):\n"
            f"{log_tail(result, 25)}",
            problems=[result.log],
        )
    return Path(output["uri"]).parent / "report_files"


def log_tail(result: LocalRunResult, lines: int = 40) -> str:
    text = Path(result.log).read_text(encoding="utf-8", errors="replace")
    return "\n".join(_ANSI.sub("", text).splitlines()[-lines:])
