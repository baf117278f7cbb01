"""`mlgate traffic replay`: a thin shell over `canary.replay.period_applications` (what to
send) and `serving.traffic.send` (sending it through the router); without `--url` the
environment is served in process for the replay (`serving.supervisor`)."""

from __future__ import annotations

from contextlib import ExitStack

import typer

from mlgate.canary.replay import period_applications
from mlgate.commands._common import emit_json, out, progress, state
from mlgate.serving.supervisor import serve_environment
from mlgate.serving.traffic import send

COMMANDS = ("traffic",)

traffic_app = typer.Typer(
    help="Traffic through a served environment's router (`mlgate serve --env`).",
    no_args_is_help=True,
)


@traffic_app.command("replay")
def replay(
    ctx: typer.Context,
    model: str = typer.Option(..., "--model"),
    env: str = typer.Option("prod", "--env"),
    start: str = typer.Option(..., "--from", help="First application day, YYYY-MM-DD (UTC)."),
    days: int = typer.Option(..., "--days", help="Days of applications from --from."),
    rate: float | None = typer.Option(None, "--rate", help="At most R requests per second."),
    url: str | None = typer.Option(
        None,
        "--url",
        help="The router (`mlgate serve --env` prints it); default: serve ENV here for the replay.",
    ),
    concurrency: int = typer.Option(8, "--concurrency", help="Requests in flight at most."),
    batch: int = typer.Option(1, "--batch", help="Applications per request."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Send the data source's applications of [--from, --from + --days) to the environment's
    router over the V2 protocol, in application order, and count the answers: exit 0 when
    every request was answered, 1 when some failed (errors or refusals), 2 bad input."""
    settings = state(ctx).settings()
    frame, _dataset, window = period_applications(settings, model, env, start, days)
    with ExitStack() as stack:
        if url is None:
            served = stack.enter_context(serve_environment(settings, model, env))
            url = served.router_url
        with progress(f"replaying {len(frame)} applications", quiet=as_json) as say:
            report = send(
                url,
                model,
                frame,
                concurrency=concurrency,
                rate=rate,
                batch=batch,
                tick=lambda done, total: say(f"{done}/{total} requests", done / max(total, 1)),
            )
    report.window = window
    if as_json:
        emit_json(report)
    else:
        versions = ", ".join(f"v{v}: {n}" for v, n in report.by_version.items()) or "none"
        out.print(
            f"{report.sent} requests to {report.url}: {report.answered} answered ({versions}), "
            f"{report.refused} refused, {report.errors} errors",
            highlight=False,
        )
        for err in report.first_errors:
            out.print(f"  {err}", markup=False, highlight=False)
    raise typer.Exit(0 if report.answered == report.sent else 1)


def register(app: typer.Typer) -> None:
    app.add_typer(traffic_app, name="traffic")
