"""`mlgate data generate | validate | fingerprint`: the data a model is built from."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlgate.commands._common import emit_json, out, progress, state
from mlgate.data.dataset_config import DatasetConfig
from mlgate.data.fingerprint import fingerprint
from mlgate.data.sources import dataset_for, world_dir
from mlgate.data.validate import validate_dataset
from mlgate.data.world import generate_world, load_world_spec
from mlgate.errors import EXIT_BAD_INPUT

COMMANDS = ("data",)

data_app = typer.Typer(
    help="The synthetic credit world, external datasets, fingerprints and validation.",
    no_args_is_help=True,
)


@data_app.command("generate")
def generate(
    ctx: typer.Context,
    scenario: list[str] = typer.Option(
        [],
        "--scenario",
        "-s",
        help="Scenario name (config/scenarios/NAME.yaml: baseline, covariate_drift, "
        "concept_drift, bias) or a YAML file; repeat to stack.",
    ),
    n: int | None = typer.Option(None, "--n", help="Number of applications (default 100000)."),
    months: int | None = typer.Option(None, "--months", help="Months of applications (30)."),
    start: str | None = typer.Option(None, "--start", help="First day, YYYY-MM-DD (2024-01-01)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (default: settings.seed)."),
    out_dir: Path | None = typer.Option(
        None, "--out", help="World folder (default <workspace>/data/world)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Generate the synthetic credit world (deterministic by seed), replacing it atomically."""
    settings = state(ctx).settings()
    spec = load_world_spec(
        scenario,
        n_applications=n,
        months=months,
        start=start,
        seed=seed if seed is not None else settings.seed,
    )
    target = out_dir or world_dir(settings)
    with progress(f"world {spec.name}", quiet=as_json) as say:
        manifest = generate_world(spec, target, progress=say)
    if as_json:
        emit_json(manifest)
        return
    table = Table(title=f"world {spec.name} -> {manifest.out_dir}")
    for col in ("table", "rows", "fingerprint"):
        table.add_column(col)
    for name, info in manifest.tables.items():
        table.add_row(name, f"{info.rows:,}", info.fingerprint[:16])
    out.print(table)
    rate = manifest.default_rate_observed
    out.print(
        f"as of {manifest.as_of}; approval rate {manifest.approval_rate_observed:.1%}; "
        f"matured default rate {'n/a' if rate is None else f'{rate:.2%}'}; "
        f"{manifest.seconds:.1f} s"
    )


@data_app.command("validate")
def validate(
    ctx: typer.Context,
    path: Path | None = typer.Argument(
        None,
        help="A world folder, a dataset config (.yaml), or a CSV/parquet file (with --dataset). "
        "Default: the workspace's world.",
    ),
    dataset: Path | None = typer.Option(
        None, "--dataset", "-d", help="Dataset config YAML (keys, timestamp, label, features)."
    ),
    max_missing: float | None = typer.Option(
        None, "--max-missing", min=0.0, max=1.0, help="Missing-value limit per column and overall."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check a dataset; list every problem (column and count) and exit 2 if there are any."""
    settings = state(ctx).settings()
    cfg: DatasetConfig = dataset_for(settings, path, dataset)
    report = validate_dataset(cfg, max_missing=max_missing)
    if as_json:
        emit_json(report)
        if not report.ok:
            raise typer.Exit(EXIT_BAD_INPUT)
        return
    report.raise_for_problems()
    rows = ", ".join(f"{k} {v:,}" for k, v in report.tables.items())
    out.print(f"[green]OK[/] {report.dataset} ({report.path}): {rows}")


@data_app.command("fingerprint")
def fingerprint_cmd(
    path: Path = typer.Argument(..., help="A CSV or parquet file, or a folder of them."),
    as_json: bool = typer.Option(False, "--json", help="Print the fingerprint as JSON."),
) -> None:
    """Content hash of a dataset: independent of row order, column order and file format."""
    fp = fingerprint(path)
    if as_json:
        emit_json(fp)
        return
    out.print(f"{fp.sha256}  {fp.source}  ({fp.rows:,} rows)")
    for name, part in fp.tables.items():
        out.print(f"  {part.sha256[:16]}  {name} ({part.rows:,} rows)")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
