"""The request-log sink under load and a crash, on loopback (issue: "a sink that can be exposed").

Measured in one run, each sink a separate process (`mlgate logsink`'s server, real sockets):
1. load: 50,000 CloudEvents (~1 KB V2 requests) from 16 concurrent senders (processes, one
   keep-alive connection each): throughput and latency (p50/p99) with the durability rule on
   (group commit: fsync before every 2xx), and the same load with fsync off side by side;
2. crash: a second 50,000-event run killed with SIGKILL half-way, then restarted on the same
   ports and folder while the senders retry whatever was not acknowledged: acknowledged before
   the kill, stored after it, lost (acknowledged but not stored; target 0), duplicated lines
   (target 0), and acknowledged in the end. A SIGKILL keeps the page cache, so it checks the
   ack-after-write and dedupe rules; fsync is what covers a power cut, which a bench cannot;
3. export: 300,000 stored events streamed through /export: peak RSS of the sink process
   (VmHWM; target < 256 MB) and its start-up time, next to the previous implementation (read
   from git history, if there) exporting the same folder.
Writes bench/results/logsink_load.json. Usage: python bench/logsink_load.py [--events N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import requests

RESULTS = Path(__file__).resolve().parent / "results" / "logsink_load.json"
ROOT = Path(__file__).resolve().parents[1]
NS, SDEP = "credit-risk-prod", "model"
READ_TOKEN, WRITE_TOKEN = "r" * 48, "w" * 48
OLD_COMMIT = "e6c7442"  # the sink before issue 13 (one port, no auth, whole-string export)
SENDERS = 16
TARGETS = {"lost": 0, "duplicated": 0, "events_per_s": 2000, "export_peak_rss_mb": 256}

LAUNCH = """
import sys
from mlgate.serving.logsink import LogStore
from mlgate.serving.logsink_server import SinkServer
folder, wport, rport, fsync, read, write = sys.argv[1:7]
store = LogStore(folder, retention_days=3650, fsync=fsync == "1")
server = SinkServer(store, read_token=read.encode(), write_token=write.encode(),
                    host="127.0.0.1", write_port=int(wport), read_port=int(rport))
server.run(lambda: print("ready", flush=True))
"""

OLD_LAUNCH = """
import sys, types
module = types.ModuleType("old_logsink")
sys.modules["old_logsink"] = module  # pydantic resolves the models' annotations through it
exec(compile(sys.stdin.read(), "old_logsink.py", "exec"), module.__dict__)
server = module.make_server(module.LogStore(sys.argv[1]), "127.0.0.1", int(sys.argv[2]))
print("ready", flush=True)
server.serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    folder: Path, wport: int, rport: int, fsync: bool = True
) -> tuple[subprocess.Popen[str], float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, str(folder), str(wport), str(rport), "1" if fsync else "0"]
        + [READ_TOKEN, WRITE_TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("sink did not start")
    return proc, time.perf_counter() - t0


def body(i: int) -> bytes:
    names = [f"feature_{k:02d}" for k in range(20)]
    inputs = [
        {"name": n, "datatype": "FP64", "shape": [1], "data": [round(i * 0.37 + k, 3)]}
        for k, n in enumerate(names)
    ]
    return json.dumps({"id": f"app-{i}", "inputs": inputs}).encode()


def request_bytes(ev_id: str, payload: bytes) -> bytes:
    """One POST as the executor sends it (binary CloudEvent), pre-built: the senders spend
    their CPU on sending, not on an HTTP library, so the sink is what is measured."""
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    head = (
        f"POST / HTTP/1.1\r\nHost: sink\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nAuthorization: Bearer {WRITE_TOKEN}\r\n"
        f"Ce-Id: {ev_id}\r\nCe-Specversion: 1.0\r\n"
        f"Ce-Type: io.seldon.serving.inference.request\r\nCe-Requestid: req-{ev_id}\r\n"
        f"Ce-Namespace: {NS}\r\nCe-Inferenceservicename: {SDEP}\r\nCe-Endpoint: stable\r\n"
        f"Ce-Time: {when}\r\n\r\n"
    )
    return head.encode() + payload


def exchange(sock: socket.socket, data: bytes) -> int:
    """Send one request, read its whole answer (Content-Length framed); the status code."""
    sock.sendall(data)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        rest += chunk
    return int(head[9:12])


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def sender(args: tuple[int, int, int, str, float]) -> dict[str, list[float] | list[str] | int]:
    """One sender: its share of events over one keep-alive connection; a failed send is
    retried (new connection) until acknowledged or `deadline`. Returns per-event ack times."""
    n, count, port, run_id, deadline = args
    payloads = [body(j) for j in range(64)]
    sock: socket.socket | None = None
    latencies: list[float] = []
    acked: list[str] = []
    ack_times: list[float] = []
    retries = 0
    for j in range(count):
        ev_id = f"{run_id}-{n}-{j}"
        data = request_bytes(ev_id, payloads[j % 64])
        while True:
            t0 = time.perf_counter()
            try:
                sock = sock or connect(port)
                if exchange(sock, data) == 200:
                    break
            except OSError:
                pass
            retries += 1
            if sock is not None:
                sock.close()
                sock = None
            if time.time() > deadline:
                return {
                    "latencies": latencies,
                    "acked": acked,
                    "ack_times": ack_times,
                    "retries": retries,
                }
            time.sleep(0.05)
        latencies.append(time.perf_counter() - t0)
        acked.append(ev_id)
        ack_times.append(time.time())
    if sock is not None:
        sock.close()
    return {"latencies": latencies, "acked": acked, "ack_times": ack_times, "retries": retries}


def stored_ids(folder: Path) -> list[str]:
    ids = []
    for path in sorted(folder.glob("*/*/*.jsonl")):
        with path.open("rb") as f:
            for line in f:
                if line.endswith(b"\n"):
                    ids.append(json.loads(line)["id"])
    return ids


def stored_lines(folder: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in folder.glob("*/*/*.jsonl"))


def load(folder: Path, events: int, fsync: bool) -> dict[str, object]:
    wport, rport = free_port(), free_port()
    proc, _ = start(folder, wport, rport, fsync)
    run_id = uuid.uuid4().hex[:8]
    per = events // SENDERS
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(SENDERS) as pool:
        results = pool.map(
            sender, [(n, per, wport, run_id, time.time() + 600) for n in range(SENDERS)]
        )
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(proc.pid)
    proc.terminate()
    proc.wait()
    lat = np.concatenate([np.asarray(r["latencies"]) for r in results]) * 1000
    ids = stored_ids(folder)
    return {
        "fsync": fsync,
        "events": per * SENDERS,
        "acknowledged": int(sum(len(r["acked"]) for r in results)),  # type: ignore[arg-type]
        "stored": len(set(ids)),
        "duplicated": len(ids) - len(set(ids)),
        "seconds": round(wall, 2),
        "events_per_s": round(per * SENDERS / wall),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        # The sink's own CPU per event: what the throughput would be per free core, whatever
        # else the machine (and the 16 senders on it) were doing.
        "sink_cpu_us_per_event": round(cpu / (per * SENDERS) * 1e6, 1),
    }


def crash(folder: Path, events: int) -> dict[str, object]:
    wport, rport = free_port(), free_port()
    proc, _ = start(folder, wport, rport)
    run_id = uuid.uuid4().hex[:8]
    per = events // SENDERS
    ctx = mp.get_context("fork")
    with ctx.Pool(SENDERS) as pool:
        pending = pool.map_async(
            sender, [(n, per, wport, run_id, time.time() + 900) for n in range(SENDERS)]
        )
        while stored_lines(folder) < events // 2:
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed_at = time.time()
        survived = set(stored_ids(folder))  # what is on disk while the sink is dead
        time.sleep(1.0)
        proc, restart_s = start(folder, wport, rport)
        results = pending.get()
    proc.terminate()
    proc.wait()
    acked_before = {
        ev
        for r in results
        for ev, t in zip(r["acked"], r["ack_times"], strict=True)  # type: ignore[arg-type]
        if t < killed_at
    }
    ids = stored_ids(folder)
    acked_all = {ev for r in results for ev in r["acked"]}  # type: ignore[attr-defined]
    return {
        "events": per * SENDERS,
        "acknowledged_before_kill": len(acked_before),
        "stored_after_kill": len(survived),
        "lost": len(acked_before - survived),
        "restart_seconds": round(restart_s, 2),
        "retries_by_senders": int(sum(r["retries"] for r in results)),  # type: ignore[misc]
        "acknowledged_in_the_end": len(acked_all),
        "stored_in_the_end": len(set(ids)),
        "duplicated": len(ids) - len(set(ids)),
        "lost_in_the_end": len(acked_all - set(ids)),
    }


def write_stored(folder: Path, n: int) -> None:
    """n events as the sink stores them (one day file), written directly: fast to set up."""
    day = datetime.now(UTC).date().isoformat()
    target = folder / NS / SDEP / f"{day}.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = json.loads(body(1))
    with target.open("w") as f:
        for i in range(n):
            f.write(
                json.dumps(
                    {
                        "id": f"e{i}",
                        "kind": "request",
                        "request_id": f"r{i}",
                        "namespace": NS,
                        "deployment": SDEP,
                        "predictor": "stable",
                        "time": f"{day}T10:00:00.000000000Z",
                        "body": payload,
                    }
                )
                + "\n"
            )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def export(folder: Path, n: int) -> dict[str, object]:
    write_stored(folder, n)
    wport, rport = free_port(), free_port()
    proc, start_s = start(folder, wport, rport)
    before = peak_rss_mb(proc.pid)
    t0 = time.perf_counter()
    lines = 0
    with requests.get(
        f"http://127.0.0.1:{rport}/export",
        params={"namespace": NS, "deployment": SDEP},
        headers={"Authorization": f"Bearer {READ_TOKEN}"},
        stream=True,
        timeout=600,
    ) as r:
        for chunk in r.iter_content(1 << 20):
            lines += chunk.count(b"\n")
    row = {
        "events": n,
        "exported": lines,
        "seconds": round(time.perf_counter() - t0, 2),
        "start_seconds": round(start_s, 2),
        "peak_rss_mb_after_start": round(before, 1),
        "peak_rss_mb": round(peak_rss_mb(proc.pid), 1),
    }
    proc.terminate()
    proc.wait()
    return row


def export_old(folder: Path, n: int) -> dict[str, object]:
    """The previous implementation (from git history) exporting the same folder."""
    try:
        source = subprocess.run(
            ["git", "show", f"{OLD_COMMIT}:src/mlgate/serving/logsink.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        return {"skipped": f"previous implementation not in git history: {exc}"}
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", OLD_LAUNCH, str(folder), str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(source)
    proc.stdin.close()
    if proc.stdout.readline().strip() != "ready":
        return {"skipped": "previous implementation did not start"}
    start_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = requests.get(
        f"http://127.0.0.1:{port}/export", params={"namespace": NS, "deployment": SDEP}, timeout=900
    )
    row = {
        "events": n,
        "exported": r.content.count(b"\n"),
        "seconds": round(time.perf_counter() - t0, 2),
        "start_seconds": round(start_s, 2),
        "peak_rss_mb": round(peak_rss_mb(proc.pid), 1),
    }
    proc.terminate()
    proc.wait()
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--export-events", type=int, default=300_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print("load: durable (group commit + fsync) ...", flush=True)
        durable = load(work / "durable", args.events, fsync=True)
        print(json.dumps(durable), flush=True)
        print("load: baseline, fsync off ...", flush=True)
        no_fsync = load(work / "nofsync", args.events, fsync=False)
        print(json.dumps(no_fsync), flush=True)
        print("crash: kill -9 half-way, restart, senders retry ...", flush=True)
        crashed = crash(work / "crash", args.events)
        print(json.dumps(crashed), flush=True)
        print(f"export: {args.export_events} events ...", flush=True)
        exported = export(work / "export", args.export_events)
        print(json.dumps(exported), flush=True)
        old = export_old(work / "export", args.export_events)
        print(json.dumps(old), flush=True)
    met = {
        "events_per_s": durable["events_per_s"] >= TARGETS["events_per_s"],  # type: ignore[operator]
        "lost": crashed["lost"] == 0 and crashed["lost_in_the_end"] == 0,
        "duplicated": crashed["duplicated"] == 0 and durable["duplicated"] == 0,
        "export_peak_rss_mb": exported["peak_rss_mb"] < TARGETS["export_peak_rss_mb"],  # type: ignore[operator]
    }
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m_at_end": os.getloadavg()[0],
        },
        "senders": SENDERS,
        "targets": TARGETS,
        "met": met,
        "load": {"durable": durable, "baseline_fsync_off": no_fsync},
        "crash": crashed,
        "export": {"sink": exported, "baseline_previous_implementation": old},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
