"""`mlgate serve --model M --env ENV`: run on loopback what an environment's overlay declares.

It renders the overlay (main of the GitOps remote, or a folder given with `overlay=`) into a
`Topology`, starts every predictor as a model server, the router in front of them
(`serving.router`: random split by weight, shadow mirror, Seldon-shaped request logging) and,
unless a sink URL is given, a request-log sink (`mlgate logsink`'s server, on loopback, store
under `<workspace>/serve/<model>-<env>/requests`, kept across runs). `serve_environment` is the
one entry point: the CLI blocks in it until Ctrl-C/SIGTERM, tests and `mlgate traffic replay`
use it as a context manager.

A predictor runs from its image (`packaging.container_run`: read-only, non-root, the pod's
env) when the image can run here: buildah and the namespace tools present, root, and the image
in the configured registry by digest. Otherwise (the embedded default's worked examples, tests,
a machine without buildah) it runs the same MLServer runtime from the venv, with the registered
MLflow version the predictor's `labels.version` names (`serving.server.launch`). `runtime=`
forces one; what each predictor ran on is in `Served`.

No orphans: venv servers run in their own process group and get SIGTERM from the kernel when
the supervisor dies, even by SIGKILL (`PR_SET_PDEATHSIG`); on exit every group is stopped
(SIGTERM, then SIGKILL). Image runs are stopped by `run_image`'s own exit; a SIGKILLed
supervisor cannot run it, and the kernel's signal does not survive the image's user switch, so
every group is also recorded as it starts (`procs.GroupLedger`, under
`<workspace>/serve/<model>-<env>/`) and the next `serve_environment` of that environment stops
what a killed one left (`procs.reap_left`; `Served.reaped` names them).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Literal

import yaml as pyyaml
from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError, ExternalServiceError
from mlgate.gitops.kubectl import kustomize
from mlgate.gitops.overlay import (
    RELEASE_FILE,
    check_env,
    check_model,
    overlay_dir,
    parse_release,
)
from mlgate.gitops.repo import GitopsRepo, run_git
from mlgate.serving import procs
from mlgate.serving.logsink import LogStore, load_token
from mlgate.serving.logsink_server import SinkServer
from mlgate.serving.router import Route, Router, RouterConfig
from mlgate.serving.server import free_port, launch, stop_launched, wait_launched, wait_ready
from mlgate.serving.topology import Predictor, Topology, topology

Runtime = Literal["auto", "venv", "image"]
IMAGE_TOOLS = ("buildah", "unshare", "chroot", "mount")


class ServedPredictor(BaseModel):
    name: str
    role: str
    version: str
    weight: int
    shadow: bool
    image: str
    runtime: Literal["venv", "image"]
    why_venv: str | None = None  # why its image did not run here (`runtime="auto"`)
    url: str  # its own model server (bypassing the router)
    pid: int


class Served(BaseModel):
    """What `serve_environment` runs: the router's URLs, the sink's, and each predictor."""

    model: str
    env: str
    namespace: str
    deployment: str
    router_url: str
    infer_url: str  # POST here: the V2 infer path of the router
    sink_url: str | None  # the sink's write endpoint the router logs to
    sink_read_url: str | None  # the local sink's read side (/export, /requests/<id>)
    sink_read_token_file: str | None  # MLGATE_LOGSINK_READ_TOKEN_FILE for the read side
    supervisor_pid: int
    predictors: list[ServedPredictor]
    reaped: list[str] = []  # "name (pid N)": servers a killed supervisor left, stopped at start

    def predictor(self, name: str) -> ServedPredictor:
        return next(p for p in self.predictors if p.name == name)


def render_topology(overlay: Path) -> Topology:
    """`kubectl kustomize` the overlay folder and read its release.yaml beside it."""
    release_path = overlay / RELEASE_FILE
    if not release_path.is_file():
        raise BadInputError(f"{release_path}: no release.yaml (nothing is deployed there)")
    release = parse_release(release_path.read_text(encoding="utf-8"), str(release_path))
    try:
        docs = [d for d in pyyaml.safe_load_all(kustomize(overlay)) if d]
    except pyyaml.YAMLError as exc:
        raise BadInputError(f"{overlay}: the rendered overlay is not YAML: {exc}") from exc
    return topology(docs, release, str(overlay))


@contextmanager
def main_checkout(settings: PlatformSettings) -> Iterator[Path]:
    """A throw-away shallow clone of the GitOps remote's main (never the tools' work clone,
    which other commands lock and reset)."""
    repo = GitopsRepo.locate(settings)
    remote = repo.remote
    if "://" not in remote and not remote.startswith("git@"):
        path = Path(remote)
        if not path.exists():
            raise BadInputError(
                f"GitOps remote {remote} does not exist yet: nothing is deployed anywhere "
                "(promote a version first, or pass --overlay DIR)"
            )
        remote = path.resolve().as_uri()
    tmp = Path(tempfile.mkdtemp(prefix="mlgate-serve-"))
    try:
        try:
            run_git(
                ["clone", "-q", "--depth", "1", "--branch", repo.branch, remote, str(tmp / "main")]
            )
        except ExternalServiceError as exc:
            raise BadInputError(f"GitOps remote {repo.remote} cannot be read: {exc}") from exc
        yield tmp / "main"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _registry_reachable(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or address, int(port or 443)), timeout=1):
            return True
    except (OSError, ValueError):
        return False


def image_runnable(settings: PlatformSettings, image: str) -> str | None:
    """None when `image` can run here, else why not (said when falling back to the venv)."""
    missing = [t for t in IMAGE_TOOLS if not shutil.which(t)]
    if missing:
        return f"{', '.join(missing)} not installed"
    if os.geteuid() != 0:
        return "running images read-only needs root (mount namespaces)"
    if "@sha256:" not in image:
        return f"{image} is not pinned by digest"
    address = settings.registry.address
    if not image.startswith(address + "/"):
        return f"{image} is not in the configured registry {address}"
    if not _registry_reachable(address):
        return f"registry {address} does not answer"
    return None


def _runtime_of(
    settings: PlatformSettings, pred: Predictor, runtime: Runtime
) -> tuple[Literal["venv", "image"], str | None]:
    """(runtime, why not the image) for one predictor."""
    if runtime == "venv":
        return "venv", "--runtime venv"
    why = image_runnable(settings, pred.image)
    if runtime == "image" and why is not None:
        raise BadInputError(f"predictor {pred.name}: its image cannot run here: {why}")
    return ("venv", why) if why is not None else ("image", None)


def _sink_token(folder: Path) -> Path:
    """The local sink's read token: made once (0600), reused, so a reader keeps working."""
    path = folder / "read-token"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    return path


def _folder(settings: PlatformSettings, model: str, env: str) -> Path:
    """The environment's serving state in the workspace: the local sink's store and token,
    and the supervisors' process records."""
    return settings.ws().sub("serve", f"{model}-{env}")


@contextmanager
def _local_sink(
    settings: PlatformSettings, model: str, env: str
) -> Iterator[tuple[str, str, Path, str]]:
    """-> (write URL, read URL, read token file, write token). The write token lives only in
    this process (the router is the one writer): another local process cannot log requests the
    canary analysis would then judge as served."""
    folder = _folder(settings, model, env)
    token_file = _sink_token(folder)
    write_token = secrets.token_hex(32)
    server = SinkServer(
        LogStore(folder / "requests"),
        read_token=load_token(token_file, "local sink read token"),
        write_token=write_token.encode(),
        write_port=0,
        read_port=0,
    )
    server.start_in_thread()
    try:
        yield (
            f"http://127.0.0.1:{server.write_port}/",
            f"http://127.0.0.1:{server.read_port}",
            token_file,
            write_token,
        )
    finally:
        server.stop()


@contextmanager
def _image_predictor(
    settings: PlatformSettings,
    pred: Predictor,
    model: str,
    timeout: float,
    ledger: procs.GroupLedger,
) -> Iterator[tuple[str, int]]:
    from mlgate.packaging.container_run import run_image

    port = free_port()
    env = {
        **pred.env,
        "MLSERVER_HTTP_PORT": str(port),
        "MLSERVER_GRPC_PORT": str(free_port()),
        "MLSERVER_METRICS_PORT": str(free_port()),
        "MLSERVER_HOST": "127.0.0.1",
    }
    with run_image(settings, pred.image, env=env) as ctr:
        ledger.add(pred.name, ctr.pid)  # before the wait: a kill while it starts leaves it
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, model, None, timeout)
        except ExternalServiceError as exc:
            tail = Path(ctr.log).read_text(errors="replace")[-1500:]
            raise ExternalServiceError(
                f"predictor {pred.name} ({pred.image}): {exc}\n{tail}"
            ) from exc
        yield url, ctr.pid


@contextmanager
def serve_environment(
    settings: PlatformSettings,
    model: str,
    env: str,
    *,
    overlay: Path | None = None,
    sink_url: str | None = None,
    sink_token: str | None = None,
    runtime: Runtime = "auto",
    port: int = 0,
    seed: int | None = None,
    max_inflight: int = 64,
    timeout: float = 120,
) -> Iterator[Served]:
    """Run the environment's predictors, router and (without `sink_url`) a local sink; stop
    all of them on exit. `overlay`: an overlay folder instead of main's
    manifests/models/<model>/<env>."""
    check_model(model)
    check_env(env)
    folder = _folder(settings, model, env)
    reaped = procs.reap_left(folder)
    with ExitStack() as stack:
        ledger = procs.GroupLedger(folder)
        stack.callback(ledger.close)  # last out: after every group below is stopped
        if overlay is None:
            root = stack.enter_context(main_checkout(settings))
            overlay = root / overlay_dir(model, env)
            if not (overlay / RELEASE_FILE).is_file():
                raise BadInputError(
                    f"{overlay_dir(model, env)}/{RELEASE_FILE} is not on main of the GitOps "
                    f"remote: {model} is not deployed in {env}"
                )
        topo = render_topology(overlay)
        if topo.env != env:
            raise BadInputError(f"{overlay}/{RELEASE_FILE}: data.env is {topo.env!r}, not {env!r}")
        kinds = {p.name: _runtime_of(settings, p, runtime) for p in topo.predictors}
        served: list[ServedPredictor] = []
        started: list[tuple[Predictor, Any]] = []
        for pred in topo.predictors:  # start every venv server first, then wait for all
            if kinds[pred.name][0] == "venv":
                launched = launch(
                    settings, topo.model, pred.version, cutoff=pred.cutoff, die_with_parent=True
                )
                stack.callback(stop_launched, launched)
                ledger.add(pred.name, launched.info.pid)
                started.append((pred, launched))
        for pred, launched in started:
            wait_launched(launched, timeout)
            served.append(
                _served(pred, "venv", launched.info.url, launched.info.pid, kinds[pred.name][1])
            )
        for pred in topo.predictors:
            if kinds[pred.name][0] == "image":
                url, pid = stack.enter_context(
                    _image_predictor(settings, pred, topo.model, timeout, ledger)
                )
                served.append(_served(pred, "image", url, pid))
        order = [p.name for p in topo.predictors]
        served.sort(key=lambda s: order.index(s.name))
        read_url = token_file = None
        if sink_url is None:
            sink_url, read_url, token_path, sink_token = stack.enter_context(
                _local_sink(settings, topo.model, env)
            )
            token_file = str(token_path)
        router = Router(
            RouterConfig(
                model=topo.model,
                namespace=topo.namespace,
                deployment=topo.deployment,
                routes=[
                    Route(name=s.name, url=s.url, weight=s.weight, shadow=s.shadow) for s in served
                ],  # fmt: skip
                sink_url=sink_url,
                sink_token=sink_token,
                port=port,
                seed=seed,
                max_inflight=max_inflight,
            )
        )
        stack.enter_context(router)
        yield Served(
            model=topo.model,
            env=env,
            namespace=topo.namespace,
            deployment=topo.deployment,
            router_url=router.url,
            infer_url=router.infer_url,
            sink_url=sink_url,
            sink_read_url=read_url,
            sink_read_token_file=token_file,
            supervisor_pid=os.getpid(),
            predictors=served,
            reaped=reaped,
        )


def _served(
    pred: Predictor,
    runtime: Literal["venv", "image"],
    url: str,
    pid: int,
    why_venv: str | None = None,
) -> ServedPredictor:
    return ServedPredictor(
        name=pred.name,
        role=pred.role,
        version=pred.version,
        weight=pred.weight,
        shadow=pred.shadow,
        image=pred.image,
        runtime=runtime,
        why_venv=why_venv,
        url=url,
        pid=pid,
    )
