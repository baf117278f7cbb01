"""The MLflow model version a change names exists, and so does its run (the one the commit's
`MLflow-Run:` names, which must be the version's own): training lineage that has gone missing
cannot be audited."""

from __future__ import annotations

from typing import Any

from mlgate.audit.verify import CommitContext, Gap, register_check

CHECK = "mlflow"


def _version(ctx: CommitContext, model: str, version: str) -> Any:
    """The ModelVersion, or the MLflow error text (cached for the run)."""
    from mlflow.exceptions import MlflowException

    key = (CHECK, "version", model, version)
    if key not in ctx.audit.cache:
        try:
            ctx.audit.cache[key] = ctx.audit.mlflow.get_model_version(model, version)
        except MlflowException as exc:
            ctx.audit.cache[key] = str(exc).splitlines()[0][:200]
    return ctx.audit.cache[key]


def _run_problem(ctx: CommitContext, run_id: str) -> str | None:
    from mlflow.exceptions import MlflowException

    key = (CHECK, "run", run_id)
    if key not in ctx.audit.cache:
        try:
            run = ctx.audit.mlflow.get_run(run_id)
            deleted = run.info.lifecycle_stage == "deleted"
            ctx.audit.cache[key] = "is deleted" if deleted else None
        except MlflowException as exc:
            ctx.audit.cache[key] = f"does not exist ({str(exc).splitlines()[0][:200]})"
    problem: str | None = ctx.audit.cache[key]
    return problem


@register_check(CHECK, about="the MLflow model version and its run exist")
def mlflow_version_and_run(ctx: CommitContext) -> list[Gap]:
    t = ctx.trailers
    if t is None or not t.model_version:
        return []
    mv = _version(ctx, t.model, t.model_version)
    if isinstance(mv, str):
        return [ctx.gap(CHECK, f"MLflow has no version {t.model_version} of {t.model}: {mv}")]
    gaps = []
    if t.mlflow_run and t.mlflow_run != mv.run_id:
        gaps.append(
            ctx.gap(
                CHECK,
                f"the commit names MLflow run {t.mlflow_run}, but version {t.model_version} "
                f"was registered from run {mv.run_id}",
            )
        )
    for run_id in dict.fromkeys(r for r in (t.mlflow_run, mv.run_id) if r):
        problem = _run_problem(ctx, run_id)
        if problem:
            gaps.append(
                ctx.gap(CHECK, f"MLflow run {run_id} of {t.model} {t.model_version} {problem}")
            )
    return gaps
