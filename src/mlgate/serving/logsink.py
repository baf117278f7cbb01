"""The request-log sink's events and store: where Seldon's request logger's CloudEvents land.

Seldon Core's executor posts each request and each response of a predictor as a CloudEvent in
binary mode: the V2 payload as the JSON body and the attributes as headers (`ce-id`,
`ce-specversion`, `ce-type` io.seldon.serving.inference.request|response, `ce-requestid`
shared by the pair, `ce-namespace`, `ce-inferenceservicename` the SeldonDeployment,
`ce-endpoint` the predictor, `ce-time`). Those headers come from the network, so every one that
becomes part of a path is checked here before it does: names are DNS-1123 labels, the day
folder is the date of the PARSED `ce-time` (a time that does not parse is refused, so the
canary analysis never meets one), and every path is resolved and must lie inside the store.

Durability rule: an event is acknowledged only after it is on disk. One writer thread appends
the waiting events (group commit), fsyncs every file it touched (and the folder of a new file),
and only then resolves the events' futures, which is when the HTTP handler answers 2xx. A
batch that fails is truncated away again and answered 5xx, so a line on disk was either
acknowledged or is retried by its sender; an event id already stored is acknowledged again
without a second line (de-duplication by `ce-id`, over the newest `index_size` ids).

The HTTP side is mlgate.serving.logsink_server, the reading side (what the canary analysis
gets from /export) mlgate.serving.logsink_client. This module imports no pandas: the sink
process stays small.
"""

from __future__ import annotations

import base64
import functools
import hmac
import json
import logging
import os
import queue
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel

from mlgate.errors import BadInputError

log = logging.getLogger("mlgate.logsink")

TYPES = {
    "io.seldon.serving.inference.request": "request",
    "io.seldon.serving.inference.response": "response",
}
REQUIRED = (
    "ce-id",
    "ce-specversion",
    "ce-type",
    "ce-requestid",
    "ce-namespace",
    "ce-inferenceservicename",
    "ce-endpoint",
    "ce-time",
)
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# RFC 3339 as the executor writes it (nanoseconds, `Z`) or with an offset; nothing else (pandas
# alone would also take "now", "today" or a bare year).
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NS = 1_000_000_000
READ_TOKEN_ENV = "MLGATE_LOGSINK_READ_TOKEN_FILE"
MIN_TOKEN_CHARS = 32


class LogEvent(BaseModel):
    id: str
    kind: Literal["request", "response"]
    request_id: str
    namespace: str
    deployment: str
    predictor: str
    time: str
    body: dict[str, Any]


def dns_label(value: str, what: str) -> str:
    if not DNS_LABEL.fullmatch(value):
        raise BadInputError(f"{what} {value[:80]!r}: not a DNS-1123 label")
    return value


def event_id(value: str, what: str) -> str:
    if not EVENT_ID.fullmatch(value):
        raise BadInputError(f"{what} {value[:80]!r}: not an id (letters, digits, . _ : -)")
    return value


@functools.lru_cache(maxsize=4096)  # one event's time is read at the door, for its path, ...
def parse_time(text: str, what: str, allow_date: bool = False) -> int:
    """An RFC 3339 time as UTC nanoseconds since the epoch (the executor writes nanoseconds
    and `Z`; times compare as times, not strings); with `allow_date` also a bare date."""
    if allow_date and DATE.fullmatch(text):
        text += "T00:00:00Z"
    found = RFC3339.fullmatch(text)
    if not found:
        raise BadInputError(f"{what} {text[:80]!r}: not an RFC 3339 time")
    zone = found.group(2)
    try:
        when = datetime.fromisoformat(text[:19] + ("+00:00" if zone == "Z" else zone))
    except ValueError as exc:
        raise BadInputError(f"{what} {text[:80]!r}: {exc}") from None
    fraction = (found.group(1) or ".")[1:].ljust(9, "0")
    return (when - EPOCH) // timedelta(seconds=1) * NS + int(fraction)


def utc_day(ns: int) -> str:
    return datetime.fromtimestamp(ns // NS, UTC).date().isoformat()


def parse_event(headers: Mapping[str, str], body: bytes) -> LogEvent:
    """A binary-mode CloudEvent -> LogEvent; bad input names the header or the body."""
    h = {k.lower(): v for k, v in headers.items()}
    missing = [k for k in REQUIRED if not h.get(k)]
    if missing:
        raise BadInputError(f"CloudEvent without header(s) {', '.join(missing)}")
    kind = TYPES.get(h["ce-type"])
    if kind is None:
        raise BadInputError(f"ce-type {h['ce-type'][:80]!r}: not a Seldon inference event")
    parse_time(h["ce-time"], "ce-time")
    try:
        payload = json.loads(body or b"{}")
    except (ValueError, RecursionError) as exc:
        raise BadInputError(f"CloudEvent {h['ce-id'][:80]}: body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadInputError(f"CloudEvent {h['ce-id'][:80]}: body is not a JSON object")
    return LogEvent(
        id=event_id(h["ce-id"], "ce-id"),
        kind=kind,  # type: ignore[arg-type]
        request_id=event_id(h["ce-requestid"], "ce-requestid"),
        namespace=dns_label(h["ce-namespace"], "ce-namespace"),
        deployment=dns_label(h["ce-inferenceservicename"], "ce-inferenceservicename"),
        predictor=dns_label(h["ce-endpoint"], "ce-endpoint"),
        time=h["ce-time"],
        body=payload,
    )


def event_headers(
    kind: Literal["request", "response"],
    *,
    request_id: str,
    namespace: str,
    deployment: str,
    predictor: str,
    source: str,
    model_id: str = "model",
    protocol: str = "v2",
) -> dict[str, str]:
    """The binary-mode CloudEvent headers Seldon Core v1's executor sends for one logged
    request or response (`executor/logger/worker.go`): a fresh `ce-id` per event, `ce-requestid`
    (the Seldon-Puid) shared by the pair, `ce-endpoint` the predictor that handled it. The
    writer beside `parse_event`, its parser (`mlgate serve`'s router logs with it)."""
    kinds = {v: k for k, v in TYPES.items()}
    return {
        "Content-Type": "application/json",
        "Ce-Id": str(uuid.uuid4()),
        "Ce-Specversion": "1.0",
        "Ce-Source": source,
        "Ce-Type": kinds[kind],
        "Ce-Time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z"),
        "Ce-Requestid": request_id,
        "Ce-Modelid": model_id,
        "Ce-Inferenceservicename": deployment,
        "Ce-Namespace": namespace,
        "Ce-Endpoint": predictor,
        "Ce-Protocol": protocol,
    }


LINE_HEAD = re.compile(rb'\{"id":"([^"\\]+)","kind":"(request|response)","request_id":"([^"\\]+)"')


def _index_key(line: bytes) -> tuple[str, str, str] | None:
    """(event id, request id, kind) of a stored line: its head as LogEvent writes it (fast),
    else parsed; None for a line that is not an event (logged, skipped)."""
    head = LINE_HEAD.match(line)
    if head:
        return head.group(1).decode(), head.group(3).decode(), head.group(2).decode()
    if not line.strip():
        return None
    try:
        row = json.loads(line)
        return str(row["id"]), str(row["request_id"]), str(row["kind"])
    except (ValueError, KeyError, TypeError):
        log.warning("skipping a stored line that is not an event: %r", line[:80])
        return None


def _lines_backward(path: Path, block: int = 1 << 20) -> Iterator[bytes]:
    """A file's lines (without newlines), last first, read in blocks from its end."""
    with path.open("rb") as f:
        pos = f.seek(0, os.SEEK_END)
        rest = b""
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            lines = (f.read(step) + rest).split(b"\n")
            rest = lines[0]  # the start of a line that began in the block before
            yield from reversed(lines[1:])
        if rest:
            yield rest


def load_token(path: str | Path, what: str) -> bytes:
    """A bearer token from a file (a mounted Secret key); short tokens are refused."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{what} {path}: cannot read: {exc}") from None
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise BadInputError(
            f"{what} {path}: a token of at least {MIN_TOKEN_CHARS} characters without spaces"
        )
    return token.encode()


def authorized(header: str | None, token: bytes) -> bool:
    """`Authorization: Bearer <token>`, or Basic with the token as password (what Go's HTTP
    client sends for a URL with user info), compared in constant time."""
    if not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    given = b""
    if scheme.lower() == "bearer":
        given = value.strip().encode()
    elif scheme.lower() == "basic":
        try:
            given = base64.b64decode(value.strip(), validate=True).partition(b":")[2]
        except ValueError:
            return False
    return hmac.compare_digest(given, token)


class LogStore:
    """Append-only JSON lines per namespace/deployment/day, written by one group-commit thread;
    bounded indexes of event ids (de-duplication) and request ids (the smoke test)."""

    def __init__(
        self,
        folder: str | Path,
        *,
        retention_days: int = 30,
        index_size: int = 100_000,
        fsync: bool = True,
        max_batch: int = 512,
    ) -> None:
        if retention_days < 1 or index_size < 1:
            raise BadInputError("log store: retention_days and index_size must be at least 1")
        self.folder = Path(folder).resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.retention_days = retention_days
        self.index_size = index_size
        self.fsync = fsync
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._requests: OrderedDict[str, set[str]] = OrderedDict()
        self._handles: OrderedDict[Path, IO[bytes]] = OrderedDict()
        self._folders: dict[tuple[str, str], Path] = {}
        self._queue: queue.Queue[tuple[LogEvent, Future[bool]] | None] = queue.Queue()
        self._swept: date | None = None
        self.recovered = self._recover_torn_tails()
        self._sweep(datetime.now(UTC).date())
        self._load_index()
        self._writer = threading.Thread(target=self._write_loop, name="logsink-writer", daemon=True)
        self._writer.start()

    # -- paths -------------------------------------------------------------------------------
    def _inside(self, *parts: str) -> Path:
        path = self.folder.joinpath(*parts).resolve()
        if path == self.folder or self.folder not in path.parents:
            raise BadInputError(f"path {'/'.join(parts)[:120]!r} is outside the log store")
        return path

    def _file(self, ev: LogEvent) -> Path:
        """The event's day file. Its folder is resolved once and must lie inside the store;
        the file name is a date, so it cannot leave that folder."""
        key = (dns_label(ev.namespace, "namespace"), dns_label(ev.deployment, "deployment"))
        folder = self._folders.get(key)
        if folder is None:
            folder = self._inside(*key)
            if len(self._folders) > 4096:
                self._folders.clear()
            self._folders[key] = folder
        return folder / (utc_day(parse_time(ev.time, "ce-time")) + ".jsonl")

    def _day_files(self) -> list[Path]:
        return sorted(p for p in self.folder.glob("*/*/*.jsonl") if p.is_file())

    def admit(self, ev: LogEvent, now: datetime | None = None) -> None:
        """At the door: its file must lie inside the store (a symlinked folder would not), and
        an event older than the retention or more than a day ahead would land in a folder the
        sweep deletes or nobody reads."""
        self._file(ev)
        when = parse_time(ev.time, "ce-time")
        now_ns = ((now or datetime.now(UTC)) - EPOCH) // timedelta(microseconds=1) * 1000
        day_ns = 86_400 * NS
        if when < now_ns - self.retention_days * day_ns or when > now_ns + day_ns:
            raise BadInputError(
                f"ce-time {ev.time!r}: outside the store's window "
                f"({self.retention_days} days back, one day ahead)"
            )

    # -- start-up ----------------------------------------------------------------------------
    def _recover_torn_tails(self) -> list[str]:
        """A last line without its newline (a crash or a full disk mid-write) was never
        acknowledged: it is moved to `<file>.torn-<time>` and cut off, not fatal."""
        recovered = []
        for path in self._day_files():
            size = path.stat().st_size
            if not size:
                continue
            with path.open("r+b") as f:
                f.seek(size - 1)
                if f.read(1) == b"\n":
                    continue
                pos = size
                while pos > 0:
                    step = min(65536, pos)
                    f.seek(pos - step)
                    chunk = f.read(step)
                    nl = chunk.rfind(b"\n")
                    if nl >= 0:
                        pos = pos - step + nl + 1
                        break
                    pos -= step
                f.seek(pos)
                torn = f.read()
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
                quarantine = path.with_name(f"{path.name}.torn-{stamp}")
                quarantine.write_bytes(torn)
                f.truncate(pos)
                f.flush()
                os.fsync(f.fileno())
            log.warning(
                "%s: torn last line (%d bytes) moved to %s", path, len(torn), quarantine.name
            )
            recovered.append(str(path))
        return recovered

    def _load_index(self) -> None:
        """The newest `index_size` events' ids: newest files first, each read from its end, so
        start-up reads about `index_size` lines however long the log is."""
        files = sorted(self._day_files(), key=lambda p: (p.stem, str(p)), reverse=True)
        newest_first: list[tuple[str, str, str]] = []
        for path in files:
            for line in _lines_backward(path):
                key = _index_key(line)
                if key is not None:
                    newest_first.append(key)
                    if len(newest_first) >= self.index_size:
                        break
            if len(newest_first) >= self.index_size:
                break
        for ev_id, rid, kind in reversed(newest_first):  # the newest end up last (kept longest)
            self._remember(ev_id, rid, kind)

    def _remember(self, ev_id: str, rid: str, kind: str) -> None:
        self._ids[ev_id] = None
        self._ids.move_to_end(ev_id)
        if len(self._ids) > self.index_size:
            self._ids.popitem(last=False)
        self._requests.setdefault(rid, set()).add(kind)
        self._requests.move_to_end(rid)
        if len(self._requests) > self.index_size:
            self._requests.popitem(last=False)

    def _sweep(self, today: date) -> None:
        """Retention: day files older than `retention_days` are deleted."""
        if self._swept == today:
            return
        self._swept = today
        oldest = (today - timedelta(days=self.retention_days)).isoformat()
        for path in self._day_files():
            if path.stem < oldest:
                handle = self._handles.pop(path, None)
                if handle is not None:
                    handle.close()
                path.unlink()
                log.info("%s: older than %d days, deleted", path, self.retention_days)

    # -- writing -----------------------------------------------------------------------------
    def submit(self, ev: LogEvent) -> Future[bool]:
        """Queue an event; the future is True once it is durable, False if its id was stored
        before, an exception if the write failed (nothing of it stays on disk)."""
        fut: Future[bool] = Future()
        self._queue.put((ev, fut))
        return fut

    def append(self, ev: LogEvent) -> bool:
        return self.submit(ev).result()

    def close(self) -> None:
        if self._writer.is_alive():
            self._queue.put(None)
            self._writer.join()
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def _handle(self, path: Path, new_dirs: set[Path]) -> IO[bytes]:
        handle = self._handles.get(path)
        if handle is None:
            if not path.parent.exists():
                path.parent.mkdir(parents=True)
                new_dirs.update(p for p in (path.parent, path.parent.parent, self.folder))
            if not path.exists():
                new_dirs.add(path.parent)
            handle = path.open("ab")
            self._handles[path] = handle
        self._handles.move_to_end(path)
        return handle

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            items = [item for item in batch if item is not None]
            if items:
                self._commit(items)
            if any(item is None for item in batch):
                return

    def _commit(self, items: list[tuple[LogEvent, Future[bool]]]) -> None:
        results: list[tuple[Future[bool], bool]] = []
        starts: dict[IO[bytes], int] = {}
        new_dirs: set[Path] = set()
        fresh: set[str] = set()
        try:
            self._sweep(datetime.now(UTC).date())
            for ev, fut in items:
                with self._lock:
                    dup = ev.id in self._ids or ev.id in fresh
                if dup:
                    results.append((fut, False))
                    continue
                handle = self._handle(self._file(ev), new_dirs)
                starts.setdefault(handle, handle.tell())
                handle.write(ev.model_dump_json().encode() + b"\n")
                fresh.add(ev.id)
                results.append((fut, True))
            for handle in starts:
                handle.flush()
                if self.fsync:
                    os.fsync(handle.fileno())
            if self.fsync:
                for folder in new_dirs:
                    fd = os.open(folder, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
        except Exception as exc:  # noqa: BLE001 - every waiting sender gets the failure (5xx)
            log.exception("writing %d events failed; cut back", len(items))
            for handle, start in starts.items():
                try:
                    handle.truncate(start)
                    handle.seek(start)
                except OSError:
                    log.exception("could not cut %s back", getattr(handle, "name", "?"))
            for _, fut in items:
                fut.set_exception(exc)
            return
        while len(self._handles) > 64:  # open files stay bounded (after their fsync)
            self._handles.popitem(last=False)[1].close()
        with self._lock:
            for ev, _ in items:
                if ev.id in fresh:
                    self._remember(ev.id, ev.request_id, ev.kind)
        for fut, stored in results:
            fut.set_result(stored)

    # -- reading -----------------------------------------------------------------------------
    def seen(self, request_id: str) -> set[str]:
        with self._lock:
            return set(self._requests.get(request_id, set()))

    def export_lines(
        self, namespace: str, deployment: str, since: str | None = None
    ) -> Iterator[bytes]:
        """The stored lines of one deployment, file by file (bounded memory). Only the files
        of the `since` day itself are parsed to compare times; later days stream as stored."""
        folder = self._inside(
            dns_label(namespace, "namespace"), dns_label(deployment, "deployment")
        )
        start = parse_time(since, "since", allow_date=True) if since else None
        first_day = utc_day(start) if start is not None else ""
        for path in sorted(folder.glob("*.jsonl")):
            if path.stem < first_day:
                continue
            path = self._inside(namespace, deployment, path.name)
            with path.open("rb") as f:
                for line in f:
                    if not line.strip():
                        continue
                    if start is not None and path.stem == first_day:
                        try:
                            when = parse_time(json.loads(line)["time"], "stored time")
                        except (BadInputError, ValueError, KeyError, TypeError):
                            # A line from before times were checked at the door: left out,
                            # so one bad line never stops an analysis.
                            log.warning("%s: skipping a line without a valid time", path)
                            continue
                        if when < start:
                            continue
                    yield line

    def events(
        self, namespace: str, deployment: str, since: str | None = None
    ) -> Iterator[LogEvent]:
        for line in self.export_lines(namespace, deployment, since):
            yield LogEvent.model_validate_json(line)


def read_token_from_env() -> bytes | None:
    """The read token the analysis and smoke-test jobs mount from the Secret, if configured."""
    path = os.environ.get(READ_TOKEN_ENV)
    return load_token(path, READ_TOKEN_ENV) if path else None
