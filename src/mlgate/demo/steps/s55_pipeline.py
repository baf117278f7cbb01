"""Demo step 55: the Kubeflow pipelines users upload in the Kubeflow UI, compile-checked.

The committed YAML (mlgate/kubeflow/pipelines/compiled/*.yaml) must be what the pipeline
definitions compile to. The full demo already ran the training pipeline with Kubeflow's local
runner: it trained v1 (step 30); tests/test_pipeline_local.py runs it in the platform image.
"""

from __future__ import annotations

from typing import Any

from mlgate.demo import DemoContext, DemoStep
from mlgate.pipelines import compiling


def run(ctx: DemoContext) -> dict[str, Any]:
    results = compiling.compile_all(check=True)
    for r in results:
        ctx.console.print(f"compiled YAML {r.name}: {r.status} ({r.tasks} top-level tasks)")
    ctx.say("Kubeflow pipelines compiled: " + ", ".join(f"{r.name} {r.status}" for r in results))
    if compiling.stale(results):
        ctx.console.print("[yellow]run `mlgate pipeline compile`: the committed YAML is stale")
    if ctx.fast:
        ctx.say(
            "fast mode: v1 was trained in-process, not by a local pipeline run "
            "(tests/test_pipeline_local.py runs it end to end); "
            "`mlgate pipeline run training --local` runs it on this workspace"
        )
    return {"compiled": [r.model_dump() for r in results]}


STEP = DemoStep(
    order=55,
    name="pipeline",
    title="Kubeflow pipelines: the compiled YAML checked",
    run=run,
    chapter=2,
)
