"""`mlgate serve` (one version, or an environment behind its router) and `mlgate score`."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import typer

from mlgate.commands._common import console, emit_json, fail, out, state
from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError

COMMANDS = ("serve", "score")


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model"),
        version: str | None = typer.Option(
            None, "--version", help="Serve one version (number or alias) with MLServer."
        ),
        env: str | None = typer.Option(
            None, "--env", help="Serve what this environment's overlay declares, behind a router."
        ),
        port: int = typer.Option(
            8080, "--port", help="HTTP port on 127.0.0.1 (the router's with --env; 0: any)."
        ),
        cutoff: float | None = typer.Option(
            None,
            "--cutoff",
            help="Decision cut-off with --version (default MLGATE_CUTOFF, else the model config).",
        ),
        sink: str | None = typer.Option(
            None, "--sink", help="--env: log to this request-log sink (default: a local one)."
        ),
        sink_token_file: Path | None = typer.Option(
            None, "--sink-token-file", help="--env: the --sink's write token, from a file."
        ),
        runtime: str = typer.Option(
            "auto", "--runtime", help="--env: predictors from their image, the venv, or auto."
        ),
        overlay: Path | None = typer.Option(
            None, "--overlay", help="--env: this overlay folder instead of main's."
        ),
        seed: int | None = typer.Option(None, "--seed", help="--env: seed the traffic split."),
        as_json: bool = typer.Option(False, "--json", help="--env: print what runs as JSON."),
    ) -> None:
        """Serve a registered version, or an environment's predictors behind a router, on
        loopback until interrupted (Ctrl-C or SIGTERM stops everything)."""
        if (version is None) == (env is None):
            raise fail(BadInputError("give exactly one of --version V and --env ENV"))
        settings = state(ctx).settings()
        signal.signal(signal.SIGTERM, _interrupt)
        if env is not None:
            _serve_env(settings, model, env, port, sink, sink_token_file, runtime, overlay,
                       seed, as_json)  # fmt: skip
            return
        from mlgate.serving.server import serving

        assert version is not None
        with serving(settings, model, version, port=port, cutoff=cutoff) as srv:
            console.print(
                f"serving {srv.model} v{srv.version} at {srv.url}/v2/models/{srv.model}/infer, "
                f"metrics at {srv.metrics_url} (Ctrl-C stops)"
            )
            _wait()

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


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _wait() -> None:
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping")


def _serve_env(
    settings: PlatformSettings,
    model: str,
    env: str,
    port: int,
    sink: str | None,
    sink_token_file: Path | None,
    runtime: str,
    overlay: Path | None,
    seed: int | None,
    as_json: bool,
) -> None:
    from mlgate.serving.logsink import load_token
    from mlgate.serving.supervisor import serve_environment

    if runtime not in ("auto", "venv", "image"):
        raise fail(BadInputError(f"--runtime {runtime!r}: one of auto, venv, image"))
    token = load_token(sink_token_file, "--sink-token-file").decode() if sink_token_file else None
    with serve_environment(
        settings,
        model,
        env,
        overlay=overlay,
        sink_url=sink,
        sink_token=token,
        runtime=runtime,  # type: ignore[arg-type]
        port=port,
        seed=seed,
    ) as served:
        if as_json:
            print(served.model_dump_json(), flush=True)
        else:
            if served.reaped:
                console.print("stopped what a killed serve left: " + ", ".join(served.reaped))
            console.print(f"{served.model} in {env}: router {served.infer_url}")
            for p in served.predictors:
                share = "shadow (mirrored)" if p.shadow else f"{p.weight}%"
                why = f": {p.why_venv}" if p.why_venv else ""
                console.print(
                    f"  {p.name:7} v{p.version} {share:>17} at {p.url} "
                    f"({p.runtime}{why}, pid {p.pid})"
                )
            console.print(f"  request log -> {served.sink_url}")
            if served.sink_read_url:
                console.print(
                    f"  read it at {served.sink_read_url}/export (token in "
                    f"{served.sink_read_token_file})"
                )
            console.print("Ctrl-C stops everything")
        _wait()
