"""`mlgate serve --env`: the topology read from rendered overlays, and the router in front of
the predictors (split by weight at random, shadow mirror, Seldon-shaped logging, what it
refuses). Predictors here are tiny HTTP servers that answer like the runtime and record what
reached them; the sink is the real one (tests/test_serve_topology_served.py runs MLServer)."""

from __future__ import annotations

import copy
import json
import math
import random
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from mlgate.errors import BadInputError
from mlgate.gitops.kubectl import kustomize
from mlgate.gitops.overlay import Release, parse_release, write_release
from mlgate.serving.logsink_client import request_frame
from mlgate.serving.router import Route, Router, RouterConfig, pick
from mlgate.serving.supervisor import render_topology
from mlgate.serving.topology import topology
from tests.gitops_helpers import cli
from tests.logsink_helpers import NS, SDEP, WRITE_TOKEN, thread_sink

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "manifests" / "models" / "credit_risk"
MODEL = "credit_risk"
IMG1 = "127.0.0.1:5555/mlgate/credit-risk@sha256:" + "1" * 64
IMG2 = "127.0.0.1:5555/mlgate/credit-risk@sha256:" + "2" * 64


# --- topology --------------------------------------------------------------------------------


def _rendered(overlay: Path) -> tuple[list[dict[str, Any]], Release]:
    docs = [d for d in yaml.safe_load_all(kustomize(overlay)) if d]
    rel = overlay / "release.yaml"
    return docs, parse_release(rel.read_text(), str(rel))


def overlay_root(tmp_path: Path) -> Path:
    """A GitOps tree: the project's base bundle and components, no model yet."""
    root = tmp_path / "gitops"
    for part in ("base", "components"):
        shutil.copytree(REPO / "manifests" / part, root / "manifests" / part)
    return root


def test_stable_only_overlay_serves_stable_at_100() -> None:
    topo = render_topology(EXAMPLES / "dev")
    assert (topo.model, topo.env, topo.namespace, topo.deployment) == (
        MODEL, "dev", "credit-risk-dev", "model")  # fmt: skip
    assert [(p.name, p.role, p.version, p.weight, p.shadow) for p in topo.predictors] == [
        ("stable", "stable", "2", 100, False)
    ]
    assert topo.predictors[0].image.endswith("@sha256:" + "2" * 64)
    assert topo.cutoff == 0.15 and topo.predictors[0].cutoff == 0.15
    assert topo.shadow is None


def test_stable_and_canary_90_10_from_the_rendered_overlay() -> None:
    topo = render_topology(EXAMPLES / "prod")
    assert [(p.name, p.version, p.weight) for p in topo.routed] == [
        ("stable", "1", 90), ("canary", "2", 10)]  # fmt: skip
    canary = topo.predictor("canary")
    assert canary is not None and canary.image.endswith("@sha256:" + "2" * 64)
    assert canary.env["MLSERVER_MODEL_VERSION"] == "2"


def test_a_shadow_predictor_is_mirrored_not_weighted() -> None:
    docs, release = _rendered(EXAMPLES / "prod")
    sdep = next(d for d in docs if d["kind"] == "SeldonDeployment")
    shadow = copy.deepcopy(sdep["spec"]["predictors"][1])
    shadow.update(name="shadow", shadow=True, traffic=0, labels={"version": "3"})
    container = shadow["componentSpecs"][0]["spec"]["containers"][0]
    for e in container["env"]:
        if e["name"] == "MLSERVER_MODEL_VERSION":
            e["value"] = "3"
    sdep["spec"]["predictors"].append(shadow)
    with pytest.raises(BadInputError, match="data.shadow_version is unset"):
        topology(docs, release, "prod")  # release.yaml must say so too
    release = release.model_copy(update={"shadow_version": "3", "shadow_image": container["image"]})
    topo = topology(docs, release, "prod")
    assert topo.shadow is not None and topo.shadow.version == "3" and topo.shadow.weight == 0
    assert sum(p.weight for p in topo.routed) == 100
    assert [p.role for p in topo.predictors] == ["stable", "canary", "shadow"]


def test_the_shadow_component_adds_a_mirrored_predictor(tmp_path: Path) -> None:
    """release.yaml with a shadow (`mlgate shadow start`) renders through the shadow component."""
    root = overlay_root(tmp_path)
    img3 = IMG1.replace("1" * 64, "3" * 64)
    write_release(root, Release(model=MODEL, env="prod", stable_version="1", stable_image=IMG1,
                                shadow_version="3", shadow_image=img3))  # fmt: skip
    topo = render_topology(root / "manifests/models/credit_risk/prod")
    assert [(p.name, p.version, p.weight, p.shadow, p.image) for p in topo.predictors] == [
        ("stable", "1", 100, False, IMG1), ("shadow", "3", 0, True, img3)]  # fmt: skip
    assert topo.shadow is not None and topo.shadow.env["MLSERVER_MODEL_VERSION"] == "3"


def test_weights_that_do_not_sum_to_100_name_the_file(tmp_path: Path) -> None:
    root = overlay_root(tmp_path)
    rel = Release(model=MODEL, env="prod", stable_version="1", stable_image=IMG1,
                  canary_version="2", canary_image=IMG2, canary_weight=10)  # fmt: skip
    write_release(root, rel)
    overlay = root / "manifests/models/credit_risk/prod"
    text = (overlay / "release.yaml").read_text().replace('stable_traffic: "90"',
                                                         'stable_traffic: "80"')  # fmt: skip
    (overlay / "release.yaml").write_text(text)
    with pytest.raises(BadInputError) as exc:
        render_topology(overlay)
    assert str(overlay) in exc.value.message and "sums to 90, not 100" in exc.value.message


def test_release_and_render_that_disagree_are_refused(tmp_path: Path) -> None:
    """A canary in release.yaml whose component is missing from the kustomization: the cluster
    would run stable alone; serving what release.yaml says would be a lie."""
    root = overlay_root(tmp_path)
    rel = Release(model=MODEL, env="prod", stable_version="1", stable_image=IMG1,
                  canary_version="2", canary_image=IMG2, canary_weight=10)  # fmt: skip
    write_release(root, rel)
    overlay = root / "manifests/models/credit_risk/prod"
    kus = overlay / "kustomization.yaml"
    kus.write_text(kus.read_text().replace("  - ../../../components/canary\n", ""))
    with pytest.raises(BadInputError) as exc:
        render_topology(overlay)
    assert "release.yaml data.canary_version is set" in exc.value.message


def test_bad_cutoff_and_missing_release_are_bad_input(tmp_path: Path) -> None:
    docs, release = _rendered(EXAMPLES / "dev")
    with pytest.raises(BadInputError, match="data.cutoff 'x'"):
        topology(docs, release.model_copy(update={"cutoff": "x"}), "dev")
    with pytest.raises(BadInputError, match="renders 0 SeldonDeployments"):
        topology([d for d in docs if d["kind"] != "SeldonDeployment"], release, "dev")
    with pytest.raises(BadInputError, match="no release.yaml"):
        render_topology(tmp_path)


def test_cli_exits_2_without_a_release_or_with_a_bad_weight(tmp_path: Path) -> None:
    code, _, err = cli("serve", "--model", MODEL, "--env", "prod", "--port", "0")
    assert code == 2 and "does not exist yet" in err
    root = overlay_root(tmp_path)
    write_release(root, Release(model=MODEL, env="prod", stable_version="1", stable_image=IMG1,
                                canary_version="2", canary_image=IMG2, canary_weight=10))  # fmt: skip
    overlay = root / "manifests/models/credit_risk/prod"
    text = (overlay / "release.yaml").read_text().replace('canary_traffic: "10"',
                                                         'canary_traffic: "ten"')  # fmt: skip
    (overlay / "release.yaml").write_text(text)
    code, _, err = cli("serve", "--model", MODEL, "--env", "prod", "--overlay", str(overlay))
    assert code == 2 and "release.yaml" in err
    code, _, err = cli("serve", "--model", MODEL, "--env", "prod", "--version", "1")
    assert code == 2 and "exactly one of --version" in err
    code, _, err = cli("serve", "--model", MODEL, "--env", "qa", "--overlay", str(overlay))
    assert code == 2 and "environment 'qa'" in err


def test_cli_exits_2_for_an_env_main_does_not_deploy(workspace: Path) -> None:
    from mlgate.config import load_settings
    from mlgate.gitops.repo import seed_embedded

    settings = load_settings(workspace=str(workspace))
    seed_embedded(settings, workspace / "gitops.git", "main")
    code, _, err = cli("serve", "--model", MODEL, "--env", "stage", "--port", "0")
    assert code == 2 and "not deployed in stage" in err


# --- the router, in front of recording predictors ---------------------------------------------


@dataclass
class Fake:
    """A predictor: answers 200 with its version as `model_version` (or `status`), records
    each request's path, headers and body; `hold` blocks answers until set."""

    version: str
    status: int = 200
    hold: threading.Event | None = None
    seen: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@contextmanager
def fakes(*predictors: Fake) -> Iterator[list[Fake]]:
    servers = []
    for fake in predictors:

        class Handler(BaseHTTPRequestHandler):
            me = fake

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                n = int(self.headers.get("Content-Length") or 0)
                self.me.seen.append((self.path, dict(self.headers), self.rfile.read(n)))
                if self.me.hold is not None:
                    self.me.hold.wait(30)
                out = {"model_name": MODEL, "outputs": [
                    {"name": "model_version", "datatype": "BYTES", "shape": [1, 1],
                     "data": [self.me.version]}]}  # fmt: skip
                body = json.dumps(out).encode()
                self.send_response(self.me.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        fake.url = f"http://127.0.0.1:{srv.server_address[1]}"
        servers.append(srv)
    try:
        yield list(predictors)
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()


def _router(routes: list[Route], **kw: Any) -> Router:
    return Router(RouterConfig(model=MODEL, namespace=NS, deployment=SDEP, routes=routes, **kw))


REQUEST = {"inputs": [{"name": "income", "datatype": "FP64", "shape": [1, 1], "data": [1.0]}]}


def _within(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """A binomial count within `sigmas` standard deviations of n*p (fails ~1 in 3.5 million)."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("weights", [(90, 10), (50, 50), (99, 1)])
def test_the_split_follows_the_weights_at_random(weights: tuple[int, int]) -> None:
    routes = [Route(name="stable", url="x", weight=weights[0]),
              Route(name="canary", url="y", weight=weights[1])]  # fmt: skip
    n = 20_000
    draws = [pick(routes, random.Random(7)).name for _ in range(3)]
    assert len(set(draws)) == 1  # one seed, one sequence
    rng = random.Random(11)
    seq = [pick(routes, rng).name for _ in range(n)]
    assert _within(seq.count("canary"), n, weights[1] / 100)
    # random per request, not a fixed pattern: runs of canary behave like independent draws
    switches = sum(a != b for a, b in zip(seq, seq[1:], strict=False))
    p = weights[1] / 100
    assert _within(switches, n - 1, 2 * p * (1 - p))


def test_router_splits_mirrors_and_logs_pairs_by_request_id(tmp_path: Path) -> None:
    stable, canary, shadow = Fake("1"), Fake("2"), Fake("3")
    n = 200
    with (
        fakes(stable, canary, shadow),
        thread_sink(tmp_path / "sink", fsync=False) as (sink, server),
    ):
        router = _router(
            [
                Route(name="stable", url=stable.url, weight=80),
                Route(name="canary", url=canary.url, weight=20),
                Route(name="shadow", url=shadow.url, weight=0, shadow=True),
            ],  # fmt: skip
            sink_url=sink.write + "/",
            sink_token=WRITE_TOKEN,
            seed=3,
        )
        with router:
            answers = [requests.post(router.infer_url, json=REQUEST, timeout=30)
                       for _ in range(n)]  # fmt: skip
            assert router.drain()
            stats = requests.get(router.url + "/router/stats", timeout=5).json()
        events = list(server.store.events(NS, SDEP))
    versions = Counter(r.json()["outputs"][0]["data"][0] for r in answers)
    assert all(r.status_code == 200 for r in answers)
    assert versions["3"] == 0  # the shadow's answer never reaches a caller
    assert versions["1"] + versions["2"] == n and _within(versions["2"], n, 0.2)
    assert len(shadow.seen) == n and stats["shadow.mirrored"] == n
    assert {b for _, _, b in shadow.seen} == {json.dumps(REQUEST).encode()}
    # Seldon's shape: per predictor, request + response under one ce-requestid, distinct ce-ids
    by_rid: dict[str, dict[str, Any]] = {}
    for ev in events:
        by_rid.setdefault(ev.request_id, {})[ev.kind] = ev
    assert len({ev.id for ev in events}) == len(events) == 4 * n
    puids = {r.headers["Seldon-Puid"]: r.json()["outputs"][0]["data"][0] for r in answers}
    for rid, version in puids.items():
        pair = by_rid.pop(rid)
        assert set(pair) == {"request", "response"}
        assert pair["request"].predictor == pair["response"].predictor == (
            "stable" if version == "1" else "canary")  # fmt: skip
        assert pair["response"].body["outputs"][0]["data"] == [version]
    assert len(by_rid) == n and all(  # what is left: the shadow's own pairs
        {e.predictor for e in pair.values()} == {"shadow"} and len(pair) == 2
        for pair in by_rid.values()
    )
    frame = request_frame(events)  # what the canary analysis reads
    assert dict(Counter(zip(frame["predictor"], frame["served_by"], strict=True))) == {
        ("stable", "1"): versions["1"], ("canary", "2"): versions["2"], ("shadow", "3"): n}  # fmt: skip


@pytest.mark.parametrize("failure", ["500", "down", "slow"])
def test_a_failing_shadow_changes_no_answer(failure: str, tmp_path: Path) -> None:
    hold = threading.Event()
    stable = Fake("1")
    shadow = Fake("3", status=500 if failure == "500" else 200,
                  hold=hold if failure == "slow" else None)  # fmt: skip
    with fakes(stable, shadow):
        url = "http://127.0.0.1:9" if failure == "down" else shadow.url
        routes = [Route(name="stable", url=stable.url, weight=100),
                  Route(name="shadow", url=url, weight=0, shadow=True)]  # fmt: skip
        bound = 4 if failure == "slow" else 64
        with _router(routes, max_shadow_inflight=bound) as router:
            answers = [requests.post(router.infer_url, json=REQUEST, timeout=10)
                       for _ in range(10)]  # fmt: skip
            hold.set()
            assert router.drain()
            stats = dict(router.stats)
    assert [(r.status_code, r.json()["outputs"][0]["data"]) for r in answers] == [(200, ["1"])] * 10
    assert stats["stable.answered"] == 10
    if failure == "slow":  # mirrors beyond the bound are dropped, answers never wait
        assert stats["shadow.dropped"] >= 6
    else:
        assert stats["shadow.failed"] == 10


def test_router_forwards_only_the_infer_path_and_bounded_bodies() -> None:
    """Attacks: other paths, other models, path tricks, oversized, compressed and non-JSON
    bodies, smuggled headers. None reaches the predictor except the one good request, which
    carries only its Content-Type."""
    stable = Fake("1")
    with fakes(stable), _router([Route(name="stable", url=stable.url, weight=100)],
                                max_body_bytes=10_000) as router:  # fmt: skip
        base = router.url
        bad = {
            "other path": requests.post(f"{base}/v2/repository/index", json={}, timeout=5),
            "other model": requests.post(f"{base}/v2/models/other/infer", json={}, timeout=5),
            "traversal": requests.post(
                f"{base}/v2/models/{MODEL}/infer/../../repository/index", json={}, timeout=5),
            "encoded": requests.post(f"{base}/v2/models/{MODEL}%2Finfer", json={}, timeout=5),
            "get": requests.get(router.infer_url, timeout=5),
            "big": requests.post(router.infer_url, data=b"{" + b" " * 20_000 + b"}", timeout=5),
            "big chunked": requests.post(
                router.infer_url, data=iter([b"{", b" " * 20_000, b"}"]), timeout=5),
            "gzip": requests.post(router.infer_url, data=b"{}", timeout=5,
                                  headers={"Content-Encoding": "gzip"}),
            "not json": requests.post(router.infer_url, data=b"inputs=1", timeout=5),
            "not an object": requests.post(router.infer_url, json=[1, 2], timeout=5),
        }  # fmt: skip
        good = requests.post(router.infer_url, json=REQUEST, timeout=5,
                             headers={"Authorization": "Bearer x", "X-Forwarded-For": "1.2.3.4",
                                      "Seldon-Puid": "../../etc"})  # fmt: skip
    codes = {k: r.status_code for k, r in bad.items()}
    assert codes == {"other path": 404, "other model": 404, "traversal": 404, "encoded": 404,
                     "get": 405, "big": 413, "big chunked": 413, "gzip": 415, "not json": 400,
                     "not an object": 400}  # fmt: skip
    assert good.status_code == 200
    assert len(stable.seen) == 1
    path, headers, body = stable.seen[0]
    assert path == f"/v2/models/{MODEL}/infer" and json.loads(body) == REQUEST
    lowered = {k.lower() for k in headers}
    assert not lowered & {"authorization", "x-forwarded-for", "seldon-puid"}
    assert good.headers["Seldon-Puid"] != "../../etc"


def test_requests_beyond_the_concurrency_bound_are_503_not_queued() -> None:
    hold = threading.Event()
    stable = Fake("1", hold=hold)
    with fakes(stable), _router([Route(name="stable", url=stable.url, weight=100)],
                                max_inflight=2) as router:  # fmt: skip
        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(requests.post, router.infer_url, json=REQUEST, timeout=30)
                       for _ in range(6)]  # fmt: skip
            deadline = time.monotonic() + 20
            while router.stats["refused_busy"] < 4 and time.monotonic() < deadline:
                time.sleep(0.02)
            hold.set()
            codes = sorted(f.result().status_code for f in futures)
    assert codes == [200, 200, 503, 503, 503, 503]
    assert len(stable.seen) == 2


def test_a_server_dies_with_the_supervisor_even_on_kill_9(tmp_path: Path) -> None:
    """kill -9 runs no clean-up: what `serving.server.launch(die_with_parent=True)` starts
    (`serving.procs`) is signalled by the kernel when its parent dies (PR_SET_PDEATHSIG). A
    stand-in parent starts a child the same way and is killed; the child must not survive it."""
    import os
    import signal
    import subprocess
    import sys

    pidfile = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        "from mlgate.serving.procs import die_with_parent\n"
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'],\n"
        "                     start_new_session=True, preexec_fn=die_with_parent)\n"
        f"open({str(pidfile)!r}, 'w').write(str(c.pid))\n"
        "time.sleep(120)\n")])  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(pidfile.read_text())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 20
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_an_image_that_cannot_run_here_falls_back_to_the_venv_only_when_allowed(
    workspace: Path,
) -> None:
    """`--runtime auto` says why a predictor runs from the venv; `--runtime image` refuses."""
    from mlgate.config import load_settings
    from mlgate.serving.supervisor import _runtime_of

    settings = load_settings(workspace=str(workspace))
    pred = render_topology(EXAMPLES / "dev").predictors[0]  # registry.example.invalid/...
    runtime, why = _runtime_of(settings, pred, "auto")
    assert runtime == "venv" and why
    with pytest.raises(BadInputError, match="predictor stable: its image cannot run here"):
        _runtime_of(settings, pred, "image")
    assert _runtime_of(settings, pred, "venv") == ("venv", "--runtime venv")
