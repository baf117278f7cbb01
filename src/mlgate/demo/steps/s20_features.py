"""Demo step 20: register the Feast repo, build a point-in-time training set, serve online.

Works from the workspace alone (the world step 10 wrote), so it can be re-run with
`mlgate demo --only features`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mlgate.data import schema
from mlgate.data.sources import credit_world_config, world_dir
from mlgate.demo import DemoContext, DemoStep
from mlgate.errors import BadInputError
from mlgate.features.online import lookup, materialize
from mlgate.features.store import describe, get_store
from mlgate.features.training_set import build_training_set, write_training_set


def run(ctx: DemoContext) -> dict[str, Any]:
    settings = ctx.settings
    world = world_dir(settings)
    if not (world / f"{schema.APPLICATIONS}.parquet").is_file():
        raise BadInputError(f"{world}: no world yet: run the data step first (mlgate demo)")
    info = describe(get_store(settings, data_dir=world))
    ctx.console.print(
        f"feast apply: {len(info.feature_views)} feature views, services "
        f"{', '.join(info.feature_services)}, offline store {info.offline_store.rsplit('.', 1)[-1]}"
    )
    dataset = credit_world_config(world)
    df = build_training_set(settings, dataset)
    target = settings.ws().sub("features") / f"{dataset.name}_training_set.parquet"
    written = write_training_set(df, target)
    ctx.say(
        f"training set: {written.rows:,} rows x {len(written.columns)} columns "
        f"(approved, matured, point-in-time), default rate {df[dataset.label].mean():.2%}, "
        f"fingerprint {written.fingerprint[:12]} -> {written.path}"
    )
    apps = pd.read_parquet(
        world / f"{schema.APPLICATIONS}.parquet",
        columns=[schema.APPLICANT_ID, schema.APPLICATION_TS],
    )
    as_of = apps[schema.APPLICATION_TS].max()
    mat = materialize(settings, end=as_of.to_pydatetime(), data_dir=world)
    recent = apps.sort_values(schema.APPLICATION_TS).tail(3)[schema.APPLICANT_ID].tolist()
    online = lookup(settings, recent, at=as_of.to_pydatetime())
    filled = online.drop(columns=[schema.APPLICANT_ID]).notna().mean().mean()
    ctx.console.print(
        f"online: materialized {', '.join(mat.feature_views)} as of {as_of:%Y-%m-%d %H:%M}; "
        f"lookup of {len(recent)} recent applicants -> {online.shape[1] - 1} features, "
        f"{filled:.0%} present, {online.attrs['expired']} expired by TTL"
    )
    return {
        "training_set": written.path,
        "rows": written.rows,
        "columns": written.columns,
        "fingerprint": written.fingerprint,
        "feature_service": written.feature_service,
        "as_of": as_of.isoformat(),
        "online_example": online.to_dict(orient="records")[0],
    }


STEP = DemoStep(
    order=20,
    name="features",
    title="Feast: training set + online features",
    run=run,
    chapter=1,
)
