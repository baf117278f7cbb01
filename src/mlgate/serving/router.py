"""The local stand-in for Seldon's traffic split: one V2 endpoint in front of an environment's
predictors, splitting at random per request by weight, mirroring to a shadow, logging like
Seldon's executor.

What it does, and how that matches the cluster (Seldon Core v1 on Istio/Ambassador):

- `POST /v2/models/<model>/infer` goes to ONE routed predictor, drawn at random per request
  with the declared weights (the mesh's weighted route is random per request too, so a 90/10
  split is 90/10 in expectation, not an alternation). `seed` makes the draw reproducible.
- A shadow predictor gets a mirrored copy of every request (Istio's `mirror`): sent beside the
  routed call, in the background, its answer discarded. A slow, failing or
  absent shadow never changes, delays or fails an answer; mirrors beyond
  `max_shadow_inflight` are dropped (counted), as a mesh drops mirrors it cannot send.
- Each predictor's executor logs its request and its response as two binary-mode CloudEvents
  (`logsink.event_headers`): `ce-requestid` the Seldon-Puid shared by the pair, a fresh
  `ce-id` each, `ce-endpoint` the predictor that handled it. The routed response is logged when
  the predictor answered 200 (as the executor does) and, unlike the executor, when it refused
  the request as bad input (4xx, as the V2 error object): the analysis then counts a refusal
  apart from a failure (5xx, timeout, no answer: no response logged). The mirrored copy is a request of the
  shadow's own executor, so it has its own request id (the caller's answer carries the routed
  one in `Seldon-Puid`). Unlike the executor's fire-and-forget queue, the routed pair is
  acknowledged by the sink BEFORE the caller gets its answer: when a replay has its answers,
  the log holds them (a sink failure is counted, never fails the answer).
- Nothing else is forwarded: only the model's infer path and the health endpoints exist here
  (404 otherwise), only `Content-Type` goes to the predictor, bodies over `max_body_bytes` are
  413 before they are read, encoded bodies 415, a body that is not a JSON object 400, and more
  than `max_inflight` requests at once 503 (Retry-After).

aiohttp (already in the environment: MLflow's and tritonclient's HTTP library) is both the
server and the pooled client: one event loop, no thread per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel, Field

from mlgate.errors import BadInputError, ExternalServiceError
from mlgate.serving.logsink import dns_label, event_headers

STATS_PATH = "/router/stats"  # what it routed, and "pending": mirrors not yet sent


def wait_mirrored(router_url: str, timeout: float = 120.0) -> None:
    """Return once the router has no mirror to the shadow pending. Mirrors go out in the
    background, after the applicant has the answer: a shadow analysis read before they land
    pairs fewer requests than were served."""
    import requests

    deadline = time.monotonic() + timeout
    while requests.get(router_url + STATS_PATH, timeout=5).json().get("pending", 0):
        if time.monotonic() > deadline:
            raise ExternalServiceError(
                f"{router_url}: mirrors to the shadow still pending after {timeout:.0f} s"
            )
        time.sleep(0.2)


log = logging.getLogger("mlgate.router")
SELDON_PUID = "Seldon-Puid"
DEFAULT_MAX_BODY = 8 * 1024 * 1024  # the model server's own cap (MLGATE_SERVING_MAX_BODY_BYTES)
KEEPALIVE_S = 2.0  # below the model server's idle keep-alive (uvicorn's 5 s)


class Route(BaseModel):
    name: str  # the predictor's name (ce-endpoint)
    url: str  # its model server, e.g. http://127.0.0.1:PORT
    weight: int = Field(ge=0, le=100)
    shadow: bool = False


class RouterConfig(BaseModel):
    model: str  # the V2 model name
    namespace: str
    deployment: str
    routes: list[Route]
    sink_url: str | None = None  # the request-log sink's write endpoint; None: nothing logged
    sink_token: str | None = None  # the sink's write token, if it wants one
    host: str = "127.0.0.1"
    port: int = 0
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_inflight: int = 64
    max_shadow_inflight: int = 64
    timeout_s: float = 60.0
    seed: int | None = None


def check_routes(routes: Sequence[Route]) -> None:
    """Weights of the routed predictors sum to 100; one shadow at most; names are labels."""
    for r in routes:
        dns_label(r.name, "predictor name")
    routed = [r for r in routes if not r.shadow]
    if not routed:
        raise BadInputError("router: no routed predictor (a shadow alone answers nobody)")
    total = sum(r.weight for r in routed)
    if total != 100:
        raise BadInputError(f"router: the routed predictors' weights sum to {total}, not 100")
    if sum(r.shadow for r in routes) > 1:
        raise BadInputError("router: more than one shadow predictor")


def pick(routes: Sequence[Route], rng: random.Random) -> Route:
    """One routed predictor, drawn with probability weight/100 (random per request)."""
    routed = [r for r in routes if not r.shadow and r.weight > 0]
    return rng.choices(routed, weights=[r.weight for r in routed])[0]


def refusal_body(answer: bytes) -> bytes:
    """A predictor's 4xx answer as the V2 protocol's error object (`{"error": ...}`), the
    shape `logsink_client.is_refusal` recognises; a body that is not one is wrapped."""
    try:
        parsed = json.loads(answer)
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict) and "error" in parsed and "outputs" not in parsed:
        return answer
    return json.dumps({"error": answer.decode("utf-8", "replace")[:500]}).encode()


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


class Router:
    """The router on its own event loop thread: `start()` (returns once bound), `url`, `stop()`
    (waits for mirrors and log posts still in flight)."""

    def __init__(self, config: RouterConfig) -> None:
        check_routes(config.routes)
        dns_label(config.namespace, "namespace")
        dns_label(config.deployment, "deployment")
        self.config = config
        self.rng = random.Random(config.seed)
        self.routed = [r for r in config.routes if not r.shadow]
        self.shadow = next((r for r in config.routes if r.shadow), None)
        self.stats: Counter[str] = Counter()
        self.path = f"/v2/models/{config.model}/infer"
        self._inflight = 0
        self._shadow_inflight = 0
        self._background: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self.port = config.port

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def infer_url(self) -> str:
        return self.url + self.path

    # -- lifecycle ---------------------------------------------------------------------------
    def _app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes)
        app.router.add_post(self.path, self._infer)
        app.router.add_get("/v2/health/live", self._live)
        app.router.add_get("/v2/health/ready", self._ready)
        app.router.add_get(f"/v2/models/{self.config.model}/ready", self._ready)
        app.router.add_get(STATS_PATH, self._stats)
        return app

    async def _main(self, ready: threading.Event, failed: list[BaseException]) -> None:
        try:
            self._loop = asyncio.get_running_loop()
            self._stopped = asyncio.Event()
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
                # Idle pooled connections are dropped before the model server (uvicorn: 5 s)
                # closes them: reusing one it closed is a reset, not an answer.
                connector=aiohttp.TCPConnector(
                    limit=self.config.max_inflight * 2, keepalive_timeout=KEEPALIVE_S
                ),
            )
            self._runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.config.host, self.config.port, backlog=256)
            await site.start()
            server = getattr(site, "_server", None)
            sockets = getattr(server, "sockets", None) or []
            if sockets:
                self.port = int(sockets[0].getsockname()[1])
        except BaseException as exc:  # noqa: BLE001 - handed to start(), which raises it
            failed.append(exc)
            ready.set()
            return
        ready.set()
        await self._stopped.wait()
        if self._background:
            await asyncio.wait(set(self._background), timeout=10)
        await self._runner.cleanup()
        await self._session.close()

    def start(self) -> Router:
        ready = threading.Event()
        failed: list[BaseException] = []
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main(ready, failed)), name="router", daemon=True
        )
        self._thread.start()
        ready.wait(30)
        if failed:
            raise BadInputError(f"router: cannot listen on {self.url}: {failed[0]}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(20)

    def drain(self, timeout: float = 30) -> bool:
        """Wait until no mirror or log post is in flight (True), or `timeout` passed (False):
        before reading a shadow's events, whose mirrors run in the background."""
        deadline = time.monotonic() + timeout
        while self._background or self._inflight:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def __enter__(self) -> Router:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- handlers ----------------------------------------------------------------------------
    async def _live(self, request: web.Request) -> web.Response:
        return web.json_response({"live": True})

    async def _ready(self, request: web.Request) -> web.Response:
        """Ready when every routed predictor is (a shadow's readiness never gates traffic)."""
        assert self._session is not None
        for r in self.routed:
            try:
                async with self._session.get(
                    f"{r.url}/v2/models/{self.config.model}/ready",
                    timeout=aiohttp.ClientTimeout(total=2),
                ) as resp:
                    if resp.status != 200:
                        return _error(503, f"predictor {r.name} not ready")
            except (aiohttp.ClientError, TimeoutError):
                return _error(503, f"predictor {r.name} not reachable")
        return web.json_response({"ready": True})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({**self.stats, "pending": len(self._background)})

    async def _infer(self, request: web.Request) -> web.Response:
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            return _error(415, f"Content-Encoding {encoding[:40]!r} is not accepted: send JSON")
        if request.content_length is not None and (
            request.content_length > self.config.max_body_bytes
        ):
            return _error(413, f"request body over {self.config.max_body_bytes} bytes")
        if self._inflight >= self.config.max_inflight:
            self.stats["refused_busy"] += 1
            return _error(503, "too many requests in flight", **{"Retry-After": "1"})
        self._inflight += 1
        try:
            return await self._route(request)
        finally:
            self._inflight -= 1

    async def _route(self, request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"request body over {self.config.max_body_bytes} bytes")
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            return _error(400, "the request body is not JSON")
        if not isinstance(parsed, dict):
            return _error(400, "the request body is not a JSON object (a V2 inference request)")
        route = pick(self.routed, self.rng)
        puid = str(uuid.uuid4())
        # the request's event goes to the sink while the predictor scores (both awaited)
        logged = asyncio.get_running_loop().create_task(self._log("request", route, puid, body))
        if self.shadow is not None:
            self._mirror(self.shadow, body)  # in the background, beside the routed call
        status, answer, ctype = await self._forward(route, body)
        await logged
        if status is None:
            self.stats[f"{route.name}.unreachable"] += 1
            return _error(503, f"predictor {route.name} did not answer: {answer.decode()}")
        refused = 400 <= status < 500
        outcome = "answered" if status == 200 else "refused" if refused else "errors"
        self.stats[f"{route.name}.{outcome}"] += 1
        if status == 200:
            await self._log("response", route, puid, answer)
        elif refused:  # logged, so the analysis tells a refusal from a failure
            await self._log("response", route, puid, refusal_body(answer))
        return web.Response(
            status=status, body=answer, content_type=ctype, headers={SELDON_PUID: puid}
        )

    async def _forward(self, route: Route, body: bytes) -> tuple[int | None, bytes, str]:
        """(status, body, content type) of the predictor's answer; status None if it gave none.
        A pooled connection the server had closed (reset or disconnected before any answer)
        is retried once on a fresh one: scoring has no side effect, and the race is the
        pool's, not the predictor's failure."""
        assert self._session is not None
        for attempt in range(2):
            try:
                async with self._session.post(
                    route.url + self.path, data=body, headers={"Content-Type": "application/json"}
                ) as resp:
                    return resp.status, await resp.read(), resp.content_type or "application/json"
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                if attempt or isinstance(exc, aiohttp.ClientConnectorError):
                    return None, f"{type(exc).__name__}: {exc}"[:300].encode(), "text/plain"
                self.stats["retried_stale_connection"] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                return None, f"{type(exc).__name__}: {exc}"[:300].encode(), "text/plain"
        raise AssertionError("unreachable")

    def _mirror(self, shadow: Route, body: bytes) -> None:
        if self._shadow_inflight >= self.config.max_shadow_inflight:
            self.stats["shadow.dropped"] += 1
            return
        self._shadow_inflight += 1
        self._spawn(self._shadow_call(shadow, body))

    async def _shadow_call(self, shadow: Route, body: bytes) -> None:
        try:
            puid = str(uuid.uuid4())
            await self._log("request", shadow, puid, body)
            status, answer, _ = await self._forward(shadow, body)
            self.stats["shadow.mirrored"] += 1
            if status == 200:
                await self._log("response", shadow, puid, answer)
            else:
                self.stats["shadow.failed"] += 1
        except Exception:  # noqa: BLE001 - a shadow's failure never reaches a caller
            log.exception("mirroring to the shadow failed")
            self.stats["shadow.failed"] += 1
        finally:
            self._shadow_inflight -= 1

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _log(self, kind: str, route: Route, puid: str, body: bytes) -> None:
        """POST one CloudEvent to the sink; a failure is counted and logged, never raised."""
        if not self.config.sink_url:
            return
        assert self._session is not None
        headers = event_headers(
            kind,  # type: ignore[arg-type]
            request_id=puid,
            namespace=self.config.namespace,
            deployment=self.config.deployment,
            predictor=route.name,
            source=self.url + "/",
        )
        if self.config.sink_token:
            headers["Authorization"] = f"Bearer {self.config.sink_token}"
        for attempt in range(2):  # the sink answers 503 "retry" when not durable in time
            try:
                async with self._session.post(
                    self.config.sink_url, data=body, headers=headers
                ) as resp:
                    if resp.status == 200:
                        self.stats["logged"] += 1
                        return
                    text = (await resp.text())[:200]
                    if resp.status != 503 or attempt:
                        log.warning("the sink refused a %s event: %s %s", kind, resp.status, text)
                        break
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("the sink did not take a %s event: %s", kind, exc)
                break
        self.stats["log_failed"] += 1
