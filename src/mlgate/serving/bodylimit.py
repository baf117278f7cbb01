"""Refuse oversized request bodies before MLServer reads them: HTTP 413 at the REST layer.

MLServer 1.7.1 has no body-size setting (SeldonIO/MLServer#444 is open): its REST endpoint
reads the whole body and parses it into pydantic models, so a 42 MB request took 1.9 GB
before the runtime saw a single row. This ASGI middleware answers 413 on a `Content-Length`
over the limit without reading the body, and counts the bytes of bodies without one (chunked)
while buffering them, stopping at the limit. MLServer gunzips `Content-Encoding: gzip` bodies
without a bound, so a small compressed body can expand to gigabytes: encoded bodies answer 415
(send plain JSON; compression buys nothing on a pod-local hop).

`python -m mlgate.serving.launch` installs it into MLServer's app (see `launch.py`); the image's
entrypoint and `mlgate serve` both start MLServer that way.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _answer(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: at most `max_bytes` of identity-encoded request body (else 413/415)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"", b"identity"):
            await _answer(send, 415, f"Content-Encoding {encoding.decode(errors='replace')!r} "
                          "is not accepted: send the JSON body uncompressed")  # fmt: skip
            return
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _answer(send, 400, "Content-Length is not a number")
                return
            if size > self.max_bytes:
                await _answer(send, 413, self._too_large(f"{size} bytes"))
                return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await _answer(send, 413, self._too_large(f"more than {self.max_bytes} bytes"))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self, what: str) -> str:
        return (
            f"request body of {what} exceeds the limit of {self.max_bytes} bytes "
            "(MLGATE_SERVING_MAX_BODY_BYTES); split the batch"
        )
