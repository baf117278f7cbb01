"""A real request-log sink on loopback for tests: in a thread, or as the `mlgate logsink` CLI
in its own process (for kill -9 and thread counts), plus CloudEvents shaped like Seldon's."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests

from mlgate.serving.logsink import LogStore
from mlgate.serving.logsink_server import Limits, SinkServer

NS, SDEP = "credit-risk-prod", "model"
READ_TOKEN = "r" * 40
WRITE_TOKEN = "w" * 40
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}


@dataclass
class Sink:
    write: str  # http://127.0.0.1:<write port>
    read: str
    folder: Path
    process: subprocess.Popen[str] | None = None


def now_time() -> str:
    """`ce-time` as the executor writes it (nanoseconds, Z)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def headers(
    kind: str, request_id: str, predictor: str = "stable", time: str | None = None, **extra: str
) -> dict[str, str]:
    """The executor's binary-mode CloudEvent headers (Seldon Core 1.x request logger)."""
    return {
        "Content-Type": "application/json",
        "Ce-Id": str(uuid.uuid4()),
        "Ce-Specversion": "1.0",
        "Ce-Source": "http://:8000/",
        "Ce-Type": f"io.seldon.serving.inference.{kind}",
        "Ce-Requestid": request_id,
        "Ce-Modelid": "model",
        "Ce-Inferenceservicename": SDEP,
        "Ce-Namespace": NS,
        "Ce-Endpoint": predictor,
        "Ce-Time": time or now_time(),
        **WRITE,
        **extra,
    }


def tokens(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    read, write = folder / "read-token", folder / "write-token"
    read.write_text(READ_TOKEN + "\n")
    write.write_text(WRITE_TOKEN + "\n")
    return read, write


@contextmanager
def thread_sink(
    folder: Path, limits: Limits | None = None, **store_args: int
) -> Iterator[tuple[Sink, SinkServer]]:
    store = LogStore(folder, **store_args)  # type: ignore[arg-type]
    server = SinkServer(
        store,
        read_token=READ_TOKEN.encode(),
        write_token=WRITE_TOKEN.encode(),
        limits=limits,
        write_port=0,
        read_port=0,
    )
    server.start_in_thread()
    try:
        yield (
            Sink(
                f"http://127.0.0.1:{server.write_port}",
                f"http://127.0.0.1:{server.read_port}",
                folder,
            ),
            server,
        )
    finally:
        server.stop()


def start_process_sink(folder: Path, *extra: str) -> Sink:
    """`mlgate logsink` in its own process, on free ports; returns once it listens."""
    read, write = tokens(folder.parent / "tokens")
    cmd = [
        sys.executable,
        "-c",
        "from mlgate.cli import main; main()",
        "logsink",
        "--port",
        "0",
        "--read-port",
        "0",
        "--folder",
        str(folder),
        "--read-token-file",
        str(read),
        "--write-token-file",
        str(write),
        "--retention-days",
        "3650",
        *extra,
    ]
    log = folder.parent / f"sink-{uuid.uuid4().hex[:8]}.log"  # a file: a full pipe would block it
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, text=True)
    for _ in range(1200):
        found = re.search(r"write http://[\d.]+:(\d+).*read http://[\d.]+:(\d+)", log.read_text())
        if found or proc.poll() is not None:
            break
        time.sleep(0.05)
    if not found:
        proc.kill()
        raise AssertionError(f"sink did not start: {log.read_text()}")
    return Sink(
        f"http://127.0.0.1:{found.group(1)}", f"http://127.0.0.1:{found.group(2)}", folder, proc
    )


def post(sink: Sink, kind: str, rid: str, body: object, **kw: str) -> requests.Response:
    return requests.post(
        sink.write, data=json.dumps(body), headers=headers(kind, rid, **kw), timeout=30
    )


def stored_lines(folder: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for path in sorted(folder.glob("*/*/*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
