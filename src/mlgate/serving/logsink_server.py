"""The request-log sink's HTTP side: a write listener and a read listener on one asyncio loop.

- write (default :8080): `POST /` a CloudEvent (400 naming the header or body, 401 without the
  write credential, 413 beyond `max_body_bytes`, 503 when it could not be made durable), and
  `GET /health`;
- read (default :8081): `GET /requests/<request id>` (200 once the request was logged: the
  PostSync smoke test), `GET /export?namespace=N&deployment=D[&since=RFC3339]` (the stored
  events as JSON lines, streamed chunk by chunk), `GET /health`. Everything but /health needs
  the read token.

Two ports, because the NetworkPolicy in front of the sink works on ports, not paths: the
predictors reach only the write port, the analysis and smoke-test jobs only the read port.

Why asyncio with h11 (the HTTP/1.1 parser uvicorn uses) rather than http.server threads: a
socket that sends nothing must not hold a thread, or a few hundred of them starve everyone
(thread-per-connection) or fill a bounded pool. Here a stalled connection costs one file
descriptor until `request_timeout_s` closes it; the threads are fixed: the loop, the store's
writer and `max_exports` export readers. uvicorn itself has no deadline for a connection that
never sends its request line, and its concurrency limit counts such connections too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import h11
from pydantic import BaseModel

from mlgate.errors import BadInputError
from mlgate.serving.logsink import (
    LogStore,
    authorized,
    dns_label,
    event_id,
    parse_event,
    parse_time,
)

log = logging.getLogger("mlgate.logsink")
Role = Literal["write", "read"]
EXPORT_CHUNK = 256 * 1024


class Limits(BaseModel):
    max_body_bytes: int = 4 * 1024 * 1024  # one event; a 2,000-row V2 request is ~0.5 MB
    max_header_bytes: int = 16 * 1024
    request_timeout_s: float = 10.0  # head and body of one request, idle keep-alive included
    write_timeout_s: float = 30.0  # each chunk of an answer to a reader that does not read
    ack_timeout_s: float = 30.0  # an event not durable by then is answered 503 (retry)
    max_connections: int = 512  # beyond: 503 at once (one fd each; ulimit -n is often 1024)
    max_exports: int = 2  # concurrent /export readers (threads), others queue


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _raw(status: int, payload: dict[str, Any], extra: str = "") -> bytes:
    """An answer that closes the connection, for when h11's state does not allow one."""
    body = json.dumps(payload).encode()
    reason = HTTPStatus(status).phrase
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n"
    )
    return head.encode() + body


class SinkServer:
    """Both listeners over one LogStore; `run()` blocks (the CLI), `start_in_thread()` and
    `stop()` are for tests and benchmarks in one process."""

    def __init__(
        self,
        store: LogStore,
        *,
        read_token: bytes,
        write_token: bytes | None,
        limits: Limits | None = None,
        host: str = "127.0.0.1",
        write_port: int = 8080,
        read_port: int = 8081,
    ) -> None:
        if write_token is not None and write_token == read_token:
            raise BadInputError("log sink: the write and read tokens must differ")
        self.store = store
        self.read_token = read_token
        self.write_token = write_token
        self.limits = limits or Limits()
        self.host = host
        self.write_port = write_port
        self.read_port = read_port
        self._open = 0
        self._pool = ThreadPoolExecutor(self.limits.max_exports, thread_name_prefix="export")
        self._exports: asyncio.Semaphore | None = None
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._exports = asyncio.Semaphore(self.limits.max_exports)
        roles: tuple[Role, Role] = ("write", "read")
        for role in roles:
            port = self.write_port if role == "write" else self.read_port
            server = await asyncio.start_server(
                functools.partial(self._connection, role=role), self.host, port, backlog=512
            )
            bound = server.sockets[0].getsockname()[1]
            if role == "write":
                self.write_port = bound
            else:
                self.read_port = bound
            self._servers.append(server)

    async def _main(self, ready: Callable[[], None] | None = None) -> None:
        await self._start()
        if ready is not None:
            ready()
        assert self._stopped is not None
        await self._stopped.wait()
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run(self, ready: Callable[[], None] | None = None) -> None:
        """Serve until SIGTERM/SIGINT (`ready` once both ports are bound); the store's
        pending events are written before exit."""

        # The store's writer thread comes back from fsync needing the GIL while the loop
        # thread parses requests: at the default 5 ms switch interval every acknowledgement
        # would wait for it. This process runs only the sink.
        sys.setswitchinterval(0.0005)

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._request_stop)
            await self._main(ready)

        try:
            asyncio.run(main())
        finally:
            self.store.close()

    def start_in_thread(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main(ready.set)), name="logsink-loop", daemon=True
        )
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("log sink did not start")

    def _request_stop(self) -> None:
        if self._stopped is not None:
            self._stopped.set()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._request_stop)
        if self._thread is not None:
            self._thread.join(10)
        self.store.close()

    # -- one connection ----------------------------------------------------------------------
    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, role: Role
    ) -> None:
        if self._open >= self.limits.max_connections:
            writer.write(_raw(503, {"error": "too many connections"}, "Retry-After: 1\r\n"))
            await self._close(writer)
            return
        self._open += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header_bytes)
        try:
            while True:
                try:
                    async with asyncio.timeout(self.limits.request_timeout_s):
                        req = await self._head(conn, reader)
                        if req is None:
                            return
                        self._admit(role, req)
                        body = await self._body(conn, reader)
                except TimeoutError:
                    if conn.their_state is not h11.IDLE or conn.trailing_data[0]:
                        writer.write(_raw(408, {"error": "request not received in time"}))
                    return
                except _Reject as exc:
                    headers = 'WWW-Authenticate: Bearer realm="mlgate-logsink"\r\n'
                    writer.write(
                        _raw(exc.status, {"error": str(exc)}, headers * (exc.status == 401))
                    )
                    return
                except h11.RemoteProtocolError as exc:
                    writer.write(_raw(exc.error_status_hint, {"error": f"bad HTTP: {exc}"}))
                    return
                await self._answer(conn, writer, role, req, body)
                if h11.MUST_CLOSE in (conn.our_state, conn.their_state):
                    return
                try:
                    conn.start_next_cycle()
                except h11.LocalProtocolError:
                    return
        except (ConnectionError, TimeoutError, asyncio.CancelledError):
            return  # the peer left, or the server stops
        finally:
            self._open -= 1
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()

    @staticmethod
    async def _close(writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1):
                await writer.drain()
        writer.close()

    @staticmethod
    async def _head(conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Request | None:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                return event
            elif isinstance(event, h11.ConnectionClosed):
                return None
            else:
                raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}")

    async def _body(self, conn: h11.Connection, reader: asyncio.StreamReader) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > self.limits.max_body_bytes:
                    raise _Reject(413, f"body over {self.limits.max_body_bytes} bytes")
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            else:
                raise h11.RemoteProtocolError("connection closed inside the body")

    def _admit(self, role: Role, req: h11.Request) -> None:
        """Route, method, credentials and declared size, before any body is read."""
        size = len(req.target) + sum(len(k) + len(v) + 4 for k, v in req.headers)
        if size > self.limits.max_header_bytes:  # h11 limits only a head still arriving
            raise _Reject(431, f"request head over {self.limits.max_header_bytes} bytes")
        path = urlsplit(req.target.decode("latin-1")).path
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in req.headers}
        if path == "/health":
            return
        if role == "write":
            if path != "/":
                raise _Reject(404, f"no such path {path[:80]} on the write port")
            if req.method != b"POST":
                raise _Reject(405, "the write port takes POST /")
            if self.write_token is not None and not authorized(
                headers.get("authorization"), self.write_token
            ):
                raise _Reject(401, "the write token is required")
        else:
            if req.method != b"GET":
                raise _Reject(405, "the read port takes GET")
            if path != "/export" and not path.startswith("/requests/"):
                raise _Reject(404, f"no such path {path[:80]}")
            if not authorized(headers.get("authorization"), self.read_token):
                raise _Reject(401, "the read token is required")
        length = headers.get("content-length", "0")
        if length.isdigit() and int(length) > self.limits.max_body_bytes:
            raise _Reject(413, f"body over {self.limits.max_body_bytes} bytes")

    # -- answers -----------------------------------------------------------------------------
    async def _send(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        status: int,
        payload: dict[str, Any],
    ) -> None:
        data = json.dumps(payload).encode()
        headers = [("content-type", "application/json"), ("content-length", str(len(data)))]
        head = conn.send(h11.Response(status_code=status, headers=headers)) or b""
        rest = (conn.send(h11.Data(data=data)) or b"") + (conn.send(h11.EndOfMessage()) or b"")
        writer.write(head + rest)  # one send: no head/body split for Nagle to delay
        async with asyncio.timeout(self.limits.write_timeout_s):
            await writer.drain()

    async def _answer(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        role: Role,
        req: h11.Request,
        body: bytes,
    ) -> None:
        url = urlsplit(req.target.decode("latin-1"))
        try:
            if url.path == "/health":
                await self._send(conn, writer, 200, {"status": "ok"})
            elif role == "write":
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in req.headers}
                status, payload = await self._store(headers, body)
                await self._send(conn, writer, status, payload)
            elif url.path == "/export":
                await self._export(conn, writer, url.query)
            else:
                rid = event_id(unquote(url.path.removeprefix("/requests/")), "request id")
                kinds = self.store.seen(rid)
                if "request" in kinds:
                    await self._send(
                        conn, writer, 200, {"request_id": rid, "logged": sorted(kinds)}
                    )
                else:
                    await self._send(conn, writer, 404, {"error": f"request {rid} not logged"})
        except (ConnectionError, TimeoutError):
            raise
        except Exception as exc:  # noqa: BLE001 - a handler error is a 500, not a dropped socket
            if conn.our_state is not h11.SEND_RESPONSE:
                # Mid-stream: cut the connection, so the reader sees an incomplete export.
                log.exception("%s failed after its head was sent", url.path[:80])
                raise ConnectionError("answer failed after its head was sent") from exc
            if isinstance(exc, BadInputError):
                await self._send(conn, writer, 400, {"error": str(exc)})
            else:
                log.exception("%s %s failed", req.method.decode(), url.path[:80])
                error = f"internal error: {type(exc).__name__}"
                await self._send(conn, writer, 500, {"error": error})

    async def _store(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        ev = parse_event(headers, body)
        self.store.admit(ev)
        try:
            async with asyncio.timeout(self.limits.ack_timeout_s):
                stored = await asyncio.wrap_future(self.store.submit(ev))
        except TimeoutError:
            return 503, {"error": f"event {ev.id} not durable in time; retry"}
        except Exception as exc:  # noqa: BLE001 - the write failed and was cut back: retry
            return 503, {"error": f"event {ev.id} not stored ({type(exc).__name__}); retry"}
        return 200, ({"stored": ev.id} if stored else {"duplicate": ev.id})

    async def _export(self, conn: h11.Connection, writer: asyncio.StreamWriter, query: str) -> None:
        try:
            params = parse_qs(query, strict_parsing=bool(query), max_num_fields=8)
        except ValueError as exc:
            raise BadInputError(f"export: bad query: {exc}") from None
        q = {k: v[-1] for k, v in params.items()}
        if not q.get("namespace") or not q.get("deployment"):
            raise BadInputError("export needs namespace and deployment")
        ns = dns_label(q["namespace"], "namespace")
        sdep = dns_label(q["deployment"], "deployment")
        since = q.get("since")
        if since:
            parse_time(since, "since", allow_date=True)
        assert self._exports is not None and self._loop is not None
        async with self._exports:
            lines = self.store.export_lines(ns, sdep, since)
            first = await self._loop.run_in_executor(self._pool, _chunk, lines)
            head = h11.Response(status_code=200, headers=[("content-type", "application/x-ndjson")])
            writer.write(conn.send(head))
            chunk = first
            while chunk:
                writer.write(conn.send(h11.Data(data=chunk)))
                async with asyncio.timeout(self.limits.write_timeout_s):
                    await writer.drain()
                chunk = await self._loop.run_in_executor(self._pool, _chunk, lines)
            writer.write(conn.send(h11.EndOfMessage()))
            async with asyncio.timeout(self.limits.write_timeout_s):
                await writer.drain()


def _chunk(lines: Iterator[bytes]) -> bytes:
    """The next ~256 KB of export lines (read in an export thread, sent by the loop)."""
    parts: list[bytes] = []
    size = 0
    for line in lines:
        parts.append(line)
        size += len(line)
        if size >= EXPORT_CHUNK:
            break
    return b"".join(parts)
