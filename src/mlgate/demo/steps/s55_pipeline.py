"""Demo step 55: the Kubeflow pipelines: compile check, then the training pipeline run locally.

The same pipeline definition users upload in the Kubeflow UI (mlgate/kubeflow/pipelines/
compiled/*.yaml) runs here with Kubeflow's local runner on the embedded default, each task in
its own empty workspace as in a pod: the workspace's world (step 10) handed to the data step as
`data_source` and copied into the `data` artifact, Feast per task over that copy, and the
workspace's MLflow and gitops repository as the services. The fast demo (what the tests run)
only checks the compiled YAML; tests/test_pipeline_local.py covers the local run itself. The
image build is configured as skipped (the images step builds images; a cluster run builds with
buildah), so a run whose gates all pass proposes the promotion only if this version's image is
recorded (MLflow tags), and says so otherwise.
"""

from __future__ import annotations

from typing import Any

from mlgate.demo import DemoContext, DemoStep
from mlgate.errors import ExternalServiceError
from mlgate.pipelines import compiling
from mlgate.pipelines.local import log_tail, run_local


def run(ctx: DemoContext) -> dict[str, Any]:
    results = compiling.compile_all(check=True)
    for r in results:
        ctx.console.print(f"compiled YAML {r.name}: {r.status} ({r.tasks} top-level tasks)")
    ctx.say("Kubeflow pipelines compiled: " + ", ".join(f"{r.name} {r.status}" for r in results))
    stale = compiling.stale(results)
    if stale:
        ctx.console.print("[yellow]run `mlgate pipeline compile`: the committed YAML is stale")

    if ctx.fast:
        # A local run is ~14 tasks of a few seconds each (each a fresh Python process): about
        # two minutes, which tests/test_pipeline_local.py already spends on the same run.
        ctx.say(
            "fast mode: local pipeline run skipped (tests/test_pipeline_local.py runs it end "
            "to end); `mlgate pipeline run training --local` runs it on this workspace"
        )
        return {"compiled": [r.model_dump() for r in results], "status": "skipped (fast)"}

    def progress(task: str, what: str) -> None:
        if what != "running":
            ctx.console.print(f"  {what:<8} {task}")

    ctx.console.print("training pipeline, local runner (kfp.local.SubprocessRunner):")
    result = run_local(
        "training", ctx.settings, arguments={"image_build": "skip"}, progress=progress
    )
    ran = set(result.ran)
    promoted = "open-promotion" in ran
    ctx.say(
        f"pipeline {result.status} in {result.seconds:.0f}s: {len(result.tasks)} tasks; "
        + ("gates passed, promotion step ran" if promoted else "stopped at the gate decision")
        + f" (log {result.log})"
    )
    if result.status != "SUCCESS":
        raise ExternalServiceError(
            f"training pipeline failed locally:\n{log_tail(result, 25)}", problems=[result.log]
        )
    report = result.outputs.get("Output", {})
    if isinstance(report, dict) and "uri" in report:
        ctx.console.print(f"gate report (the run's output artifact): {report['uri']}")
    return {
        "compiled": [r.model_dump() for r in results],
        "status": result.status,
        "tasks": result.ran,
        "promotion_step": promoted,
        "log": result.log,
    }


STEP = DemoStep(
    order=55,
    name="pipeline",
    title="Kubeflow pipelines: compile check + local training run",
    run=run,
    chapter=2,
)
