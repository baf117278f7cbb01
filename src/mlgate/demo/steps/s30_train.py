"""Demo step 30: v1 trained, evaluated out of time, logged to MLflow, registered, explained.

The full demo trains v1 as a bank would: the Kubeflow training pipeline (the YAML users upload
in the Kubeflow UI) run by Kubeflow's local runner, each task in its own empty workspace as in
a pod: data, validation, the Feast training set, training, evaluation, one task per gate for
dev, the decision. Its image step is configured as skipped (the image step builds it next), so
its promotion step waits for that. The fast demo (what the tests run) trains in-process with
`mlgate train`'s library call: a local run costs about two minutes, which
tests/test_pipeline_local.py already spends on the same pipeline.

Works from the workspace alone (the world step 10 wrote), so `mlgate demo --only train` can be
re-run; every run registers one more version.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mlgate.data import schema
from mlgate.data.sources import world_dir
from mlgate.demo import DemoContext, DemoStep
from mlgate.errors import BadInputError
from mlgate.gitops.evidence import load_report
from mlgate.pipelines.local import gate_report_dir, run_local
from mlgate.training.model_config import DEFAULT_MODEL_CONFIG, load_model_config
from mlgate.training.registry import load_holdout, load_scorer
from mlgate.training.track import fetch_card
from mlgate.training.train import train_model


def _by_pipeline(ctx: DemoContext) -> dict[str, Any]:
    def progress(task: str, what: str) -> None:
        if what != "running":
            ctx.console.print(f"  {what:<8} {task}")

    ctx.console.print("training pipeline, local runner (kfp.local.SubprocessRunner):")
    with ctx.progress("Kubeflow training pipeline (local runner)"):
        # policy "": the platform's policy in force, as `mlgate gates run` judges
        result = run_local(
            "training",
            ctx.settings,
            arguments={"image_build": "skip", "policy": ""},
            progress=progress,
        )
    report_dir = gate_report_dir(result)
    report = load_report(report_dir)
    ctx.say(
        f"the Kubeflow training pipeline trained {report.model} v{report.challenger} "
        f"({len(result.tasks)} tasks, {result.seconds:.0f}s, log {result.log}); its dev gates: "
        f"{report.overall}; its promotion step waits for the image (built next)"
    )
    ctx.console.print(f"gate report (the run's output artifact): {report_dir}")
    card = fetch_card(ctx.settings, report.model, report.challenger)  # the task's: in MLflow
    ctx.console.print(f"model card (from the run's MLflow artifacts): {card}")
    return {
        "model": report.model,
        "version": report.challenger,
        "model_card": str(card),
        "pipeline": {"status": result.status, "tasks": result.ran, "log": result.log},
        "report_dir": str(report_dir),
    }


def run(ctx: DemoContext) -> dict[str, Any]:
    settings = ctx.settings
    if not (world_dir(settings) / f"{schema.APPLICATIONS}.parquet").is_file():
        raise BadInputError(f"{world_dir(settings)}: no world yet: run the data step first")
    cfg = load_model_config(DEFAULT_MODEL_CONFIG)
    if not ctx.fast:
        out = _by_pipeline(ctx)
        _explain(ctx, out["model"], out["version"], cfg.cutoff)
        return out
    with ctx.progress("training") as say:
        result = train_model(settings, cfg, progress=say)
    m = result.metrics
    w = result.windows
    ctx.say(
        f"{result.model} v{result.version} ({result.algorithm}) registered as challenger: "
        f"out-of-time AUC {m.auc:.3f}, KS {m.ks:.3f}; model card {result.model_card}"
    )
    ctx.console.print(
        f"{result.model} v{result.version} ({result.algorithm}) registered as challenger, "
        f"run {result.run_id}\n"
        f"out-of-time holdout {w.holdout_start[:10]}..{w.data_end[:10]} ({m.n:,} rows, "
        f"{m.defaults} defaults): AUC {m.auc:.3f}, Gini {m.gini:.3f}, KS {m.ks:.3f}, "
        f"Brier {m.brier:.4f}; approval {m.approval_rate:.1%} at PD < {m.cutoff:g}\n"
        f"training set {result.training_set_fingerprint[:12]} (kept with the run), "
        f"model card: {result.model_card}"
    )
    holdout_rows = _explain(ctx, result.model, str(result.version), cfg.cutoff)
    return {
        "model": result.model,
        "version": result.version,
        "run_id": result.run_id,
        "metrics": result.metrics.model_dump(),
        "data_fingerprint": result.data_fingerprint,
        "training_set_fingerprint": result.training_set_fingerprint,
        "model_card": result.model_card,
        "holdout_rows": holdout_rows,
    }


def _explain(ctx: DemoContext, model: str, version: str, cutoff: float) -> int:
    """Why would the riskiest holdout applicant be declined? (the adverse-action reasons)
    -> the holdout's rows."""
    holdout = load_holdout(ctx.settings, model, version)
    scorer = load_scorer(ctx.settings, model, version)
    pd_ = scorer.predict_pd(holdout)
    worst = holdout.iloc[[int(pd_.argmax())]]
    codes = scorer.reason_codes(worst)[0]
    app_id = worst[schema.APPLICATION_ID].iloc[0] if schema.APPLICATION_ID in worst else "?"
    ctx.console.print(
        f"explain {app_id}: PD {pd_.max():.3f} -> "
        f"{'decline' if pd_.max() >= cutoff else 'approve'}; reasons: "
        + "; ".join(f"{c.code} (+{c.contribution:.2f})" for c in codes)
    )
    return int(len(pd.Index(holdout.index)))


STEP = DemoStep(
    order=30,
    name="train",
    title="Train + register the challenger (MLflow)",
    run=run,
    chapter=2,
)
