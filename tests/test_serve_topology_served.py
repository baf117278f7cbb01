"""`mlgate serve --env` for real: two registered versions as stable and canary in MLServer
(venv runtime), the router, the local request-log sink, all from the CLI; Ctrl-C leaves no
process behind (kill -9: tests/test_serve_topology.py, without MLServer)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from mlgate.gitops.overlay import Release, write_release
from mlgate.serving import client
from mlgate.serving.logsink import load_token
from mlgate.serving.logsink_client import fetch_requests

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
IMAGE = "127.0.0.1:5555/mlgate/credit-risk@sha256:"


def canary_overlay(tmp_path: Path, model: str, stable: str, canary: str, weight: int) -> Path:
    root = tmp_path / "gitops"
    for part in ("base", "components"):
        shutil.copytree(REPO / "manifests" / part, root / "manifests" / part)
    release = Release(model=model, env="prod", stable_version=stable,
                      stable_image=IMAGE + "1" * 64, canary_version=canary,
                      canary_image=IMAGE + "2" * 64, canary_weight=weight)  # fmt: skip
    write_release(root, release)
    return root / "manifests" / "models" / model / "prod"


def _rows(reg: Any, n: int) -> Any:
    from mlgate.training.registry import load_holdout, load_scorer

    features = list(load_scorer(reg.settings, reg.model, reg.version).features)
    return load_holdout(reg.settings, reg.model, reg.version)[features].dropna().head(n)


def _descendants(pid: int) -> list[int]:
    """Every live process whose parent chain reaches `pid`."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    out = []
    for child in parents:
        p = child
        while p in parents and p != pid:
            p = parents[p]
        if p == pid and child != pid:
            out.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _start(tmp_path: Path, reg: Any, overlay: Path, env_name: str) -> tuple[Any, dict[str, Any]]:
    """`mlgate serve --env` as a user runs it; returns once it printed what runs (--json)."""
    env = {**os.environ, "MLGATE_WORKSPACE": str(reg.settings.ws().root),
           "MLGATE_MLFLOW__TRACKING_URI": reg.settings.mlflow_tracking_uri()}  # fmt: skip
    err = tmp_path / "serve.err"
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from mlgate.cli import main; main()", "serve", "--model",
             reg.model, "--env", env_name, "--overlay", str(overlay), "--runtime", "venv",
             "--port", "0", "--seed", "4", "--json"],
            stdout=subprocess.PIPE, stderr=stderr, text=True, env=env,
            # as a terminal's foreground job has it: pytest started in the background by a
            # script (`make test &`) passes SIGINT down ignored, and Ctrl-C would do nothing
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
    line = proc.stdout.readline() if proc.stdout else ""
    if not line:
        proc.kill()
        pytest.fail(err.read_text()[-3000:])
    return proc, json.loads(line)


def _no_orphans(children: list[int], served: dict[str, Any]) -> None:
    deadline = time.monotonic() + 30
    while any(map(_alive, children)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [c for c in children if _alive(c)] == []
    for p in served["predictors"]:
        with pytest.raises(requests.ConnectionError):
            requests.get(p["url"] + "/v2/health/live", timeout=5)


def test_serve_env_answers_from_both_logs_each_request_and_ctrl_c_stops_all(
    registered_two_versions: Any, tmp_path: Path
) -> None:
    first, second = registered_two_versions
    overlay = canary_overlay(tmp_path, first.model, first.version, second.version, 50)
    rows = _rows(first, 24)
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    proc, served = _start(tmp_path, first, overlay, "prod")
    try:
        children = _descendants(proc.pid)
        assert {p["pid"] for p in served["predictors"]} <= set(children)
        # every server's group is on record, for a serve that replaces a killed one
        record = (first.settings.ws().root / "serve" / f"{first.model}-prod"
                  / f"processes-{served['supervisor_pid']}.json")  # fmt: skip
        groups = json.loads(record.read_text())["groups"]
        assert {(g["name"], g["pid"]) for g in groups} == {
            (p["name"], p["pid"]) for p in served["predictors"]}  # fmt: skip
        assert {(p["name"], p["version"], p["weight"], p["runtime"]) for p in served["predictors"]
                } == {("stable", first.version, 50, "venv"), ("canary", second.version, 50, "venv")}  # fmt: skip
        answers = [client.infer(served["router_url"], first.model, rows.iloc[[i]])[0]
                   for i in range(len(rows))]  # fmt: skip
        canary_url = next(p["url"] for p in served["predictors"] if p["name"] == "canary")
        direct = client.infer(canary_url, first.model, rows)
        token = load_token(served["sink_read_token_file"], "token")
        log = fetch_requests(served["sink_read_url"], served["namespace"], served["deployment"],
                             since, token=token)  # fmt: skip
        # Another local process cannot log requests the analysis would judge as served: the
        # sink's write side wants the token only the router holds.
        forged = {"ce-id": "forged", "ce-type": "io.seldon.serving.inference.request",
                  "ce-source": "attacker", "ce-specversion": "1.0",
                  "content-type": "application/json"}  # fmt: skip
        for auth in ({}, {"Authorization": "Bearer " + "0" * 64}):
            r = requests.post(
                served["sink_url"], data=b"{}", headers={**forged, **auth}, timeout=10
            )
            assert r.status_code == 401, (r.status_code, r.text)
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(180) == 0  # a clean stop; under a loaded machine it has taken over 60 s
        _no_orphans(children, served)
        assert not record.exists()  # a clean stop leaves nothing to reap
    finally:
        if proc.poll() is None:
            proc.kill()
    versions = [a.model_version for a in answers]
    assert set(versions) == {first.version, second.version}  # both predictors answered
    # what the router passed on from the canary is what the canary's own server answers
    by_canary = [a.pd for a, v in zip(answers, versions, strict=True) if v == second.version]
    canary_pd = [d.pd for d, v in zip(direct, versions, strict=True) if v == second.version]
    assert by_canary == pytest.approx(canary_pd, abs=1e-12)
    # the sink holds request + response of each, under the predictor that answered
    assert len(log) == len(rows) and sorted(log["served_by"]) == sorted(versions)
    assert {(p, v) for p, v in zip(log["predictor"], log["served_by"], strict=True)} == {
        ("stable", first.version), ("canary", second.version)}  # fmt: skip
