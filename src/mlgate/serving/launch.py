"""`python -m mlgate.serving.launch start <repository>`: MLServer's own CLI with a body cap.

MLServer builds its FastAPI app in `mlserver.rest.server.create_app` and offers no hook for
middleware, so this entrypoint wraps that one function before MLServer's CLI runs: the app it
returns gets `BodyLimit` (the cap from `MLGATE_SERVING_MAX_BODY_BYTES`, default 8 MiB) as its
outermost middleware. Everything else is MLServer unchanged (settings, ports, gRPC, whose
messages grpc itself caps at 4 MiB unless `MLSERVER_GRPC_MAX_MESSAGE_LENGTH` says otherwise).
"""

from __future__ import annotations

from typing import Any

from mlgate.serving.bodylimit import BodyLimit
from mlgate.serving.contract import ServingSettings


def install_body_limit(max_bytes: int) -> None:
    import mlserver.rest.server as rest_server

    original = rest_server.create_app
    if getattr(original, "_mlgate_body_limit", None) == max_bytes:
        return

    def create_app(*args: Any, **kwargs: Any) -> Any:
        app = original(*args, **kwargs)
        app.add_middleware(BodyLimit, max_bytes=max_bytes)
        return app

    create_app._mlgate_body_limit = max_bytes  # type: ignore[attr-defined]
    rest_server.create_app = create_app


def main() -> None:
    from mlserver.cli.main import main as mlserver_main

    install_body_limit(ServingSettings().max_body_bytes)
    mlserver_main()


if __name__ == "__main__":
    main()
