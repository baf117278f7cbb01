"""Gate steps: one task per registered gate (a ParallelFor over `mlgate.gates.registry.names()`;
each shows its own verdict and metrics in the Kubeflow UI), then one step that adds them up
with the one assembler (`mlgate.gates.verdict.assemble`) and writes the gate report."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Output

from mlgate.pipelines.platform import platform_image


@dsl.component(base_image=platform_image(), install_kfp_package=False)
def run_gate(
    gate: str,
    policy: str,
    env: str,
    gate_inputs: Input[Dataset],
    result: Output[Artifact],
    metrics: Output[Metrics],
) -> str:
    """Run one gate on the evaluation's evidence. Returns PASS, FAIL or INCONCLUSIVE; a FAIL
    does not fail the task (the decision step routes the run), a crash is INCONCLUSIVE."""
    from mlgate.pipelines.steps import gates as stage

    out = stage.run_gate(gate, policy, env, gate_inputs.path, result.path)
    for key, value in out.metrics.items():
        metrics.log_metric(key, value)
    return out.value


@dsl.component(base_image=platform_image(), install_kfp_package=False)
def decide(
    policy: str,
    env: str,
    model_version: str,
    gate_inputs: Input[Dataset],
    results: Input[list[Artifact]],
    report: Output[HTML],
    report_files: Output[Artifact],
    metrics: Output[Metrics],
) -> str:
    """Add the gate tasks' results up (`results`: collected from the ParallelFor over the
    registered gates): PASS only if every gate the policy applies in `env` passed. Writes
    the gate report: HTML to view here, and the folder (report.json/.md/.html) that the
    promotion PR carries. Returns PASS, FAIL or INCONCLUSIVE."""
    from mlgate.pipelines.steps import gates as stage

    out = stage.decide(
        policy,
        env,
        model_version,
        gate_inputs.path,
        [r.path for r in results],
        report.path,
        report_files.path,
    )
    report_files.metadata.update(out.metadata)
    for key, value in out.metrics.items():
        metrics.log_metric(key, value)
    return out.value
