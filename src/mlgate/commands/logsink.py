"""`mlgate logsink`: a thin shell over mlgate.serving.logsink_server (the request-log sink)."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from mlgate.commands._common import console, state
from mlgate.errors import BadInputError
from mlgate.serving.logsink import LogStore, load_token
from mlgate.serving.logsink_server import Limits, SinkServer

COMMANDS = ("logsink",)


def register(app: typer.Typer) -> None:
    @app.command("logsink")
    def logsink(
        ctx: typer.Context,
        host: str = typer.Option("127.0.0.1", "--host"),
        port: int = typer.Option(8080, "--port", help="Write port: POST / (the predictors)."),
        read_port: int = typer.Option(
            8081, "--read-port", help="Read port: /export and /requests/<id> (the jobs)."
        ),
        folder: Path | None = typer.Option(
            None, "--folder", help="Where events are stored (default <workspace>/request-log)."
        ),
        read_token_file: Path = typer.Option(
            ...,
            "--read-token-file",
            envvar="MLGATE_LOGSINK_READ_TOKEN_FILE",
            help="File holding the bearer token readers must send (a Secret key).",
        ),
        write_token_file: Path | None = typer.Option(
            None,
            "--write-token-file",
            help="File holding the token writers must send (Bearer, or Basic password).",
        ),
        writes_by_network_policy: bool = typer.Option(
            False,
            "--writes-by-network-policy",
            help="Take writes without a token: only where a NetworkPolicy admits nothing but "
            "the predictors to the write port (Seldon Core v1's logger sends no credentials).",
        ),
        retention_days: int = typer.Option(30, "--retention-days", min=1),
        index_size: int = typer.Option(
            100_000, "--index-size", min=1, help="Event and request ids remembered (dedupe)."
        ),
        max_body_mb: float = typer.Option(4.0, "--max-body-mb", min=0.001),
        max_connections: int = typer.Option(512, "--max-connections", min=1),
        request_timeout: float = typer.Option(10.0, "--request-timeout", min=0.1),
    ) -> None:
        """Receive Seldon's request-logger CloudEvents and serve them back (canary analysis)."""
        if (write_token_file is None) == (not writes_by_network_policy):
            raise BadInputError(
                "logsink: give exactly one of --write-token-file FILE and "
                "--writes-by-network-policy (writes are never open by accident)"
            )
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        read_token = load_token(read_token_file, "--read-token-file")
        write_token = (
            load_token(write_token_file, "--write-token-file") if write_token_file else None
        )
        if write_token == read_token:
            raise BadInputError("logsink: the write and read tokens must differ")
        where = folder or state(ctx).settings().ws().root / "request-log"
        store = LogStore(where, retention_days=retention_days, index_size=index_size)
        limits = Limits(
            max_body_bytes=int(max_body_mb * 1024 * 1024),
            max_connections=max_connections,
            request_timeout_s=request_timeout,
        )
        server = SinkServer(
            store,
            read_token=read_token,
            write_token=write_token,
            limits=limits,
            host=host,
            write_port=port,
            read_port=read_port,
        )
        writes = "token" if write_token else "network policy only"

        def ready() -> None:
            console.print(
                f"request-log sink: write http://{host}:{server.write_port} ({writes}), "
                f"read http://{host}:{server.read_port} (token), storing in {where}",
                soft_wrap=True,
            )
            console.file.flush()

        server.run(ready)
