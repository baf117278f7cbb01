"""`mlgate features apply | materialize | training-set | lookup`: Feast, the feature store."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlgate.commands._common import emit_json, out, progress, state
from mlgate.data.sources import dataset_for

COMMANDS = ("features",)

features_app = typer.Typer(
    help="Feast feature store: register definitions, point-in-time training sets, online features.",
    no_args_is_help=True,
)


@features_app.command("apply")
def apply(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print what was registered as JSON."),
) -> None:
    """Render the feature repo into the workspace and register its definitions."""
    from mlgate.features.store import describe, get_store

    with progress("registering the feature repo with Feast", quiet=as_json):
        info = describe(get_store(state(ctx).settings()))
    if as_json:
        emit_json(info)
        return
    table = Table("feature view", "ttl", "features", "source")
    for fv in info.feature_views:
        ttl = "-" if fv.ttl_seconds is None else f"{fv.ttl_seconds / 86400:g} d"
        table.add_row(fv.name, ttl, str(len(fv.features)), fv.source)
    out.print(table)
    out.print(
        f"services: {', '.join(info.feature_services)}; offline store {info.offline_store}, "
        f"online store {info.online_store}; repo {info.repo}"
    )


@features_app.command("materialize")
def materialize(
    ctx: typer.Context,
    end: str | None = typer.Option(None, "--end", help="As-of time (ISO 8601; default now)."),
    start: str | None = typer.Option(
        None, "--start", help="Oldest event time to consider (default: all history)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Load each applicant's latest feature values (as of --end) into the online store."""
    from mlgate.features.online import materialize as run

    with progress("materializing feature views into the online store", quiet=as_json):
        result = run(state(ctx).settings(), end=end, start=start)
    if as_json:
        emit_json(result)
        return
    out.print(f"materialized {', '.join(result.feature_views)} up to {result.end.isoformat()}")


@features_app.command("training-set")
def training_set(
    ctx: typer.Context,
    dataset: Path | None = typer.Option(
        None, "--dataset", "-d", help="Dataset config YAML (default: the workspace's world)."
    ),
    out_path: Path | None = typer.Option(
        None, "--out", "-o", help="Parquet file to write (default <workspace>/features/)."
    ),
    start: str | None = typer.Option(None, "--start", help="First application time (incl.)."),
    end: str | None = typer.Option(None, "--end", help="Last application time (excl.)."),
    all_decisions: bool = typer.Option(
        False, "--all-decisions", help="Include declined applications (no outcomes)."
    ),
    unmatured: bool = typer.Option(
        False, "--include-unmatured", help="Include rows whose label is not known yet."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Build a point-in-time correct training set through Feast and write it as parquet."""
    from mlgate.features.training_set import build_training_set, write_training_set

    settings = state(ctx).settings()
    cfg = dataset_for(settings, None, dataset)
    with progress(f"point-in-time join for {cfg.name}", quiet=as_json):
        df = build_training_set(
            settings,
            cfg,
            approved_only=not all_decisions,
            matured_only=not unmatured,
            start=start,
            end=end,
        )
        target = out_path or settings.ws().sub("features") / f"{cfg.name}_training_set.parquet"
        result = write_training_set(df, target)
    if as_json:
        emit_json(result)
        return
    out.print(
        f"{result.rows:,} rows x {len(result.columns)} columns from {result.feature_service} "
        f"-> {result.path}\nfingerprint {result.fingerprint}"
    )


@features_app.command("lookup")
def lookup(
    ctx: typer.Context,
    applicant_ids: list[str] = typer.Argument(..., help="Applicant ids."),
    at: str | None = typer.Option(None, "--at", help="As-of time (ISO 8601; default now)."),
    as_json: bool = typer.Option(False, "--json", help="Print the feature vectors as JSON."),
) -> None:
    """Online feature vectors (expired values, past their view's TTL, are missing)."""
    from mlgate.features.online import lookup as run

    df = run(state(ctx).settings(), applicant_ids, at=at)
    records = df.astype(object).where(df.notna(), None).to_dict(orient="records")
    if as_json:
        emit_json({"at": df.attrs["at"], "expired": df.attrs["expired"], "rows": records})
        return
    table = Table("feature", *applicant_ids)
    for col in df.columns[1:]:
        cells = (r[col] for r in records)
        table.add_row(
            col,
            *("-" if v is None else f"{v:g}" if isinstance(v, float) else str(v) for v in cells),
        )
    out.print(table)
    out.print(f"as of {df.attrs['at']}; {df.attrs['expired']} value(s) past their TTL")


def register(app: typer.Typer) -> None:
    app.add_typer(features_app, name="features")
