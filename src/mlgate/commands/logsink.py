"""`mlgate logsink`: a thin shell over mlgate.serving.logsink (the request-log sink)."""

from __future__ import annotations

from pathlib import Path

import typer

from mlgate.commands._common import console, state


def register(app: typer.Typer) -> None:
    @app.command("logsink")
    def logsink(
        ctx: typer.Context,
        host: str = typer.Option("127.0.0.1", "--host"),
        port: int = typer.Option(8080, "--port"),
        folder: Path | None = typer.Option(
            None, "--folder", help="Where events are stored (default <workspace>/request-log)."
        ),
    ) -> None:
        """Receive Seldon's request-logger CloudEvents and serve them back (canary analysis)."""
        from mlgate.serving.logsink import LogStore, make_server

        where = folder or state(ctx).settings().ws().root / "request-log"
        server = make_server(LogStore(where), host, port)
        console.print(f"request-log sink on http://{host}:{server.server_port}, storing in {where}")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
