"""`mlgate pipeline compile | run | submit | schedule`: Kubeflow pipelines, here and in a cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from mlgate.commands._common import console, emit_json, out, progress, state
from mlgate.errors import EXIT_FAIL, BadInputError

COMMANDS = ("pipeline",)

pipeline_app = typer.Typer(
    help="Kubeflow pipelines: compile for the Kubeflow UI, run locally, submit, schedule.",
    no_args_is_help=True,
)


def _params(values: list[str]) -> dict[str, Any]:
    """--param key=value (value parsed as JSON when it is JSON, else kept as a string)."""
    params: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise BadInputError(f"--param {item!r}: expected KEY=VALUE")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


@pipeline_app.command("compile")
def compile_cmd(
    names: list[str] = typer.Argument(None, help="Pipelines to compile (default: all)."),
    check: bool = typer.Option(
        False, "--check", help="Write nothing; exit 1 if the compiled YAML is out of date."
    ),
    image: str | None = typer.Option(
        None,
        "--image",
        help="The platform image every step runs in, pinned by digest (REPOSITORY@sha256:...). "
        "Default: the image the committed YAML already pins.",
    ),
    out_dir: Path | None = typer.Option(
        None, "--out", help="Folder of the compiled YAML (default: the package's compiled/)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Compile the pipelines to compiled/<name>.yaml (what the Kubeflow UI uploads)."""
    from mlgate.pipelines import compiling

    results = compiling.compile_all(names or None, check=check, image=image, folder=out_dir)
    bad = compiling.stale(results)
    if as_json:
        emit_json({"check": check, "ok": not bad, "pipelines": results})
    else:
        for r in results:
            colour = "red" if r in bad else "green"
            console.print(f"[{colour}]{r.status:>11}[/] {r.name:<12} {r.tasks:>2} tasks  {r.path}")
        if bad:
            console.print(
                "[red]compiled YAML is out of date:[/] run `mlgate pipeline compile` and commit"
            )
    if bad:
        raise typer.Exit(EXIT_FAIL)


@pipeline_app.command("run")
def run_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Pipeline name (training, monitoring)."),
    local: bool = typer.Option(
        False, "--local", help="Run with Kubeflow's local runner on this machine."
    ),
    param: list[str] = typer.Option([], "--param", "-p", help="Pipeline parameter KEY=VALUE."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Run a pipeline. Only --local is run from here; use `submit` for a Kubeflow cluster."""
    from mlgate.pipelines import local as local_run

    if not local:
        raise BadInputError(
            "`mlgate pipeline run` runs on this machine: add --local "
            "(for a cluster use `mlgate pipeline submit NAME --host URL`)"
        )
    settings = state(ctx).settings()
    with progress(f"pipeline {name}", quiet=as_json) as say:

        def on_task(task: str, what: str) -> None:
            if what == "running":
                say(f"running {task}")
            elif not as_json:
                colour = "green" if what == "SUCCESS" else "red"
                console.print(f"  [{colour}]{what:<8}[/] {task}")

        result = local_run.run_local(name, settings, arguments=_params(param), progress=on_task)
    if as_json:
        emit_json(result)
    else:
        colour = "green" if result.status == "SUCCESS" else "red"
        console.print(
            f"pipeline [bold]{name}[/] finished [{colour}]{result.status}[/] in "
            f"{result.seconds:.1f}s, {len(result.tasks)} tasks (log: {result.log})"
        )
        for key, value in result.outputs.items():
            shown = value["uri"] if isinstance(value, dict) and "uri" in value else value
            out.print(f"{key}: {shown}")
    if result.status != "SUCCESS":
        if not as_json:
            console.print(local_run.log_tail(result), markup=False, highlight=False)
        raise typer.Exit(EXIT_FAIL)


@pipeline_app.command("submit")
def submit_cmd(
    name: str = typer.Argument(..., help="Pipeline name."),
    host: str = typer.Option(..., "--host", help="Kubeflow Pipelines API URL."),
    experiment: str = typer.Option("mlgate", "--experiment", help="Experiment to run in."),
    run_name: str | None = typer.Option(None, "--run-name", help="Run name (default: NAME-time)."),
    param: list[str] = typer.Option([], "--param", "-p", help="Pipeline parameter KEY=VALUE."),
    namespace: str | None = typer.Option(None, "--namespace", help="Kubeflow profile namespace."),
    token: str | None = typer.Option(
        None, "--token", envvar="MLGATE_KFP_TOKEN", help="Bearer token for the API."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Upload the committed compiled YAML and start a run in a Kubeflow cluster."""
    from mlgate.pipelines import remote

    result = remote.submit(
        name,
        host,
        experiment=experiment,
        run_name=run_name,
        params=_params(param),
        namespace=namespace,
        token=token,
    )
    if as_json:
        emit_json(result)
        return
    table = Table(show_header=False, box=None)
    table.add_row("pipeline", f"{result.pipeline.display_name} ({result.pipeline.version_name})")
    table.add_row("uploaded", "yes" if result.pipeline.uploaded else "no (same YAML already there)")
    table.add_row("experiment", result.experiment)
    table.add_row("run", f"{result.run_name} ({result.run_id})")
    table.add_row("url", result.url)
    out.print(table)


@pipeline_app.command("schedule")
def schedule_cmd(
    name: str = typer.Argument(..., help="Pipeline name (usually monitoring)."),
    cron: str = typer.Option(
        ...,
        "--cron",
        help="5-field cron ('0 6 * * *', converted to KFP's 6 fields) or KFP's 6 fields.",
    ),
    host: str = typer.Option(..., "--host", help="Kubeflow Pipelines API URL."),
    experiment: str = typer.Option("mlgate", "--experiment", help="Experiment to run in."),
    job_name: str | None = typer.Option(None, "--name", help="Recurring run name."),
    param: list[str] = typer.Option([], "--param", "-p", help="Pipeline parameter KEY=VALUE."),
    namespace: str | None = typer.Option(None, "--namespace", help="Kubeflow profile namespace."),
    token: str | None = typer.Option(
        None, "--token", envvar="MLGATE_KFP_TOKEN", help="Bearer token for the API."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Create a Kubeflow recurring run of a pipeline on a cron schedule."""
    from mlgate.pipelines import remote

    result = remote.schedule(
        name,
        host,
        cron=cron,
        experiment=experiment,
        job_name=job_name,
        params=_params(param),
        namespace=namespace,
        token=token,
    )
    if as_json:
        emit_json(result)
        return
    table = Table(show_header=False, box=None)
    table.add_row("pipeline", f"{result.pipeline.display_name} ({result.pipeline.version_name})")
    table.add_row("cron", f"{result.cron}   (from '{result.cron_input}')")
    table.add_row("recurring run", f"{result.recurring_run_name} ({result.recurring_run_id})")
    table.add_row("url", result.url)
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(pipeline_app, name="pipeline")
