"""Demo step 10: generate the synthetic credit world into the workspace and validate it."""

from __future__ import annotations

from mlgate.data.sources import credit_world_config, world_dir
from mlgate.data.validate import validate_dataset
from mlgate.data.world import WorldManifest, WorldSpec, generate_world
from mlgate.demo import DemoContext, DemoStep, acts


def run(ctx: DemoContext) -> WorldManifest:
    spec = WorldSpec(n_applications=acts.world_size(ctx), seed=ctx.settings.seed)
    out = world_dir(ctx.settings)
    manifest = generate_world(spec, out)
    rate = manifest.default_rate_observed
    ctx.say(
        f"world: {spec.n_applications:,} applications, {spec.months} months to {manifest.as_of}, "
        f"approval {manifest.approval_rate_observed:.1%}, matured default rate "
        f"{'n/a' if rate is None else f'{rate:.2%}'} -> {out}"
    )
    report = validate_dataset(credit_world_config(out))
    report.raise_for_problems()
    ctx.console.print(f"validation OK: {report.tables}")
    return manifest


STEP = DemoStep(
    order=10,
    name="data",
    title="Synthetic credit world: generate + validate",
    run=run,
    chapter=1,
)
