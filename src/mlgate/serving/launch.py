"""`python -m mlgate.serving.launch start <repository>`: MLServer's own CLI with a body cap.

MLServer builds its FastAPI app in `mlserver.rest.server.create_app` and offers no hook for
middleware, so this entrypoint wraps that one function before MLServer's CLI runs: the app it
returns gets `BodyLimit` (the cap from `MLGATE_SERVING_MAX_BODY_BYTES`, default 8 MiB) as its
outermost middleware. Everything else is MLServer unchanged (settings, ports, gRPC, whose
messages grpc itself caps at 4 MiB unless `MLSERVER_GRPC_MAX_MESSAGE_LENGTH` says otherwise).
"""

from __future__ import annotations

import logging
import os
import sys
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
    """MLServer's CLI, then out without the interpreter's teardown. By the time MLServer's
    CLI returns, its servers are closed and its log is written; what is left is Python's
    finalization of every module MLServer, MLflow, scikit-learn and pandas loaded, a full
    garbage collection that took 5-20 s on a loaded 2-core machine, during which the port is
    closed yet the process lingers and whoever stops it (the supervisor, SIGTERM) waits."""
    from mlserver.cli.main import main as mlserver_main

    install_body_limit(ServingSettings().max_body_bytes)
    try:
        mlserver_main()
        code = 0
    except SystemExit as exc:  # click's exit: its code, as the interpreter would report it
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
