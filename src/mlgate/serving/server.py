"""Run a model version's MLServer on loopback: the same runtime and settings as the image.

`model_repository()` writes the MLServer repository (`settings.json` + `<model>/model-settings.json`)
that both `mlgate serve` and the image use, so a local server and the image's server differ only
in where the files live. The model settings carry the dataset config's value ranges the serving
contract checks (`serving_ranges` reads them from the version's training run), and MLServer is
started through `mlgate.serving.launch`, which caps request bodies (HTTP 413). MLServer runs in-process (`parallel_workers: 0`): measured faster for
single-row scoring than its worker pool on 2 cores, and one process is what a pod should run.
MLServer's metrics server is on, on its own loopback port (`ServerInfo.metrics_url`), serving
the runtime's metrics (`mlgate.serving.metrics`) as the pod serves them to Prometheus; the gRPC
and metrics ports are set explicitly so several servers can share a machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import requests
from pydantic import BaseModel

from mlgate.config import PlatformSettings, parse_model
from mlgate.data.dataset_config import DatasetConfig
from mlgate.errors import BadInputError, ConfigError, ExternalServiceError
from mlgate.packaging.model_artifact import export_model, lineage, resolve_version
from mlgate.serving import procs
from mlgate.serving.metrics import METRICS_PATH
from mlgate.serving.runtime import CUTOFF_ENV, RANGES_KEY

RUNTIME = "mlgate.serving.runtime.CreditRiskRuntime"


class ServerInfo(BaseModel):
    model: str
    version: str
    url: str
    metrics_url: str  # MLServer's metrics server: the Prometheus scrape endpoint
    pid: int
    repository: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def model_repository(
    dest: Path,
    *,
    model: str,
    version: str,
    model_uri: str,
    ranges: dict[str, Any],
    server: dict[str, Any] | None = None,
    implementation: str = RUNTIME,
) -> Path:
    """Write `<model>/model-settings.json` (and `settings.json` when `server` is given).

    `ranges` are the dataset config's value ranges (`serving_ranges`): the runtime refuses to
    load without them. The image ships no settings.json: its server settings come from
    MLSERVER_* environment variables (as Seldon sets them), which a settings.json would override.
    """
    (dest / model).mkdir(parents=True, exist_ok=True)
    model_settings = {
        "name": model,
        "implementation": implementation,
        "parameters": {
            "uri": model_uri,
            "version": version,
            "content_type": "pd",
            "extra": {"model_version": version, RANGES_KEY: ranges},
        },
    }
    if server is not None:
        (dest / "settings.json").write_text(json.dumps(server, indent=2) + "\n")
    (dest / model / "model-settings.json").write_text(json.dumps(model_settings, indent=2) + "\n")
    return dest


def serving_ranges(settings: PlatformSettings, model: str, version: str) -> dict[str, Any]:
    """The value ranges of the dataset the version was trained on (its run's dataset config).

    The run keeps the exact config it was trained with (`config/dataset_config.json`), so the
    server checks requests against the ranges the training data was validated against.
    """
    from mlgate.training.registry import read_artifact_json

    run_id = lineage(settings, model, version).run_id
    where = f"{model} version {version}: run {run_id or '?'} config/dataset_config.json"
    try:
        data = read_artifact_json(settings, run_id, "config/dataset_config.json")
    except Exception as exc:  # noqa: BLE001 - MLflow raises several kinds for a missing file
        raise BadInputError(
            f"{where}: cannot read the dataset config the serving contract needs: {exc}"
        ) from exc
    cfg = parse_model(DatasetConfig, data, where)
    features = set(cfg.features)
    return {col: rng.model_dump() for col, rng in cfg.validation.ranges.items() if col in features}


def server_settings(
    http_port: int, grpc_port: int, metrics_port: int, host: str = "127.0.0.1"
) -> dict[str, Any]:
    """In-process inference (no worker pool), the metrics server on, explicit ports."""
    return {
        "host": host,
        "http_port": http_port,
        "grpc_port": grpc_port,
        "parallel_workers": 0,
        "metrics_port": metrics_port,
        "metrics_endpoint": METRICS_PATH,
        "debug": False,
    }


def default_cutoff(model: str) -> float:
    """The cut-off for a local server: MLGATE_CUTOFF, else the model config's policy value."""
    raw = os.environ.get(CUTOFF_ENV)
    if raw:
        return float(raw)
    from mlgate.config import REPO_ROOT

    cfg_path = REPO_ROOT / "config" / "models" / f"{model}.yaml"
    if not cfg_path.is_file():
        raise ConfigError(f"no cut-off: set {CUTOFF_ENV} or pass --cutoff ({cfg_path} not found)")
    from mlgate.training.model_config import load_model_config

    return load_model_config(cfg_path).cutoff


def wait_ready(url: str, model: str, proc: subprocess.Popen[Any] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ExternalServiceError(f"MLServer exited with code {proc.returncode} before ready")
        try:
            r = requests.get(f"{url}/v2/models/{model}/ready", timeout=1)
            if r.status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise ExternalServiceError(f"MLServer at {url} not ready for {model!r} within {timeout:.0f}s")


def mlserver_command(repository: Path) -> list[str]:
    """MLServer's `start`, through the launcher that caps request bodies (as the image runs)."""
    return [sys.executable, "-m", "mlgate.serving.launch", "start", str(repository)]


@dataclass
class Launched:
    """A model server started but not yet known to be ready (`launch`)."""

    info: ServerInfo
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    log_path: str


def launch(
    settings: PlatformSettings,
    model: str,
    version: str,
    *,
    port: int | None = None,
    cutoff: float | None = None,
    log_path: Path | None = None,
    implementation: str = RUNTIME,
    env: dict[str, str] | None = None,
    die_with_parent: bool = False,
) -> Launched:
    """Start MLServer for one registered version on loopback without waiting for it; the
    caller waits (`wait_ready`) and stops it (`stop`). Several can start side by side."""
    number = resolve_version(settings, model, version)
    ws = settings.ws()
    artifact = export_model(
        settings, model, number, ws.sub("serving", "artifacts") / f"{model}-{number}"
    )
    http_port = port or free_port()
    metrics_port = free_port()
    repo = model_repository(
        ws.sub("serving", f"{model}-{number}-{http_port}"),
        model=model,
        version=number,
        model_uri=str(artifact),
        ranges=serving_ranges(settings, model, number),
        server=server_settings(http_port, free_port(), metrics_port),
        implementation=implementation,
    )
    environ = {**os.environ, **(env or {})}
    environ[CUTOFF_ENV] = str(cutoff if cutoff is not None else default_cutoff(model))
    environ["MLGATE_WORKSPACE"] = str(ws.root)
    path = log_path or repo / "mlserver.log"
    log = path.open("ab")
    proc = subprocess.Popen(
        mlserver_command(repo),
        cwd=repo,
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=procs.die_with_parent if die_with_parent else None,  # noqa: PLW1509
    )
    info = ServerInfo(
        model=model,
        version=number,
        url=f"http://127.0.0.1:{http_port}",
        metrics_url=f"http://127.0.0.1:{metrics_port}{METRICS_PATH}",
        pid=proc.pid,
        repository=str(repo),
    )
    return Launched(info=info, proc=proc, log=log, log_path=str(path))


def wait_launched(launched: Launched, timeout: float) -> None:
    """`wait_ready` for a launched server; the error carries the tail of its log."""
    try:
        wait_ready(launched.info.url, launched.info.model, launched.proc, timeout)
    except ExternalServiceError as exc:
        tail = Path(launched.log_path).read_text(errors="replace")[-1500:]
        raise ExternalServiceError(f"{exc}\n{tail}") from exc


def stop_launched(launched: Launched) -> None:
    stop(launched.proc)
    launched.log.close()


@contextmanager
def serving(
    settings: PlatformSettings,
    model: str,
    version: str,
    *,
    port: int | None = None,
    cutoff: float | None = None,
    timeout: float = 90,
    log_path: Path | None = None,
    implementation: str = RUNTIME,
    env: dict[str, str] | None = None,
) -> Iterator[ServerInfo]:
    """Start MLServer for one registered version on loopback; stop it on exit.

    `env` adds environment variables (e.g. `MLGATE_SERVING_*` limits) to the server's.
    """
    launched = launch(
        settings,
        model,
        version,
        port=port,
        cutoff=cutoff,
        log_path=log_path,
        implementation=implementation,
        env=env,
    )
    try:
        wait_launched(launched, timeout)
        yield launched.info
    finally:
        stop_launched(launched)


def stop(proc: subprocess.Popen[Any], timeout: float = 15) -> None:
    """SIGTERM to the server's process group (it runs in its own session), SIGKILL after
    `timeout`: nothing it started outlives it."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def parse_application(raw: str) -> dict[str, Any]:
    """`--application` as JSON text or @file; an object of the application's own fields."""
    text = raw
    if raw.startswith("@"):
        try:
            text = Path(raw[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise BadInputError(f"{raw[1:]}: cannot read the application: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"--application: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadInputError("--application: expected a JSON object of field: value")
    return data
