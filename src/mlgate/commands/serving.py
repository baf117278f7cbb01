"""`mlgate serve` and `mlgate score`: a version's MLServer on loopback, and lookup + infer."""

from __future__ import annotations

import time

import typer

from mlgate.commands._common import console, emit_json, out, state


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model"),
        version: str = typer.Option(..., "--version", help="Version number or alias."),
        port: int = typer.Option(8080, "--port", help="HTTP port on 127.0.0.1."),
        cutoff: float | None = typer.Option(
            None,
            "--cutoff",
            help="Decision cut-off (default MLGATE_CUTOFF, else the model config).",
        ),
    ) -> None:
        """Serve a registered version with MLServer on loopback until interrupted."""
        from mlgate.serving.server import serving

        settings = state(ctx).settings()
        with serving(settings, model, version, port=port, cutoff=cutoff) as srv:
            console.print(
                f"serving {srv.model} v{srv.version} at {srv.url}/v2/models/{srv.model}/infer, "
                f"metrics at {srv.metrics_url} (Ctrl-C stops)"
            )
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                console.print("stopping")

    @app.command("score")
    def score(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model"),
        applicant_id: str = typer.Option(..., "--applicant-id"),
        application: str = typer.Option(
            "{}", "--application", help="The application's own fields: JSON object or @file."
        ),
        url: str = typer.Option("http://127.0.0.1:8080", "--url", help="The model server."),
        at: str | None = typer.Option(None, "--at", help="Look features up as of (ISO time)."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Look the applicant up in the online store, add the application, score it."""
        from mlgate.serving.client import score as do_score
        from mlgate.serving.server import parse_application

        fields = parse_application(application)
        result = do_score(state(ctx).settings(), url, model, applicant_id, fields, at=at)
        if as_json:
            emit_json(result)
            return
        out.print(f"PD {result.pd:.4f}  decision {result.decision}  model v{result.model_version}")
        for rc in result.reason_codes:
            out.print(f"  {rc['code']}: {rc['description']} ({rc['contribution']:+.3f})")
