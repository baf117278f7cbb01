"""Demo step 30: train, evaluate out of time, log to MLflow, register `challenger`, explain.

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
from mlgate.training.model_config import DEFAULT_MODEL_CONFIG, load_model_config
from mlgate.training.registry import load_holdout, load_scorer
from mlgate.training.train import train_model


def run(ctx: DemoContext) -> dict[str, Any]:
    settings = ctx.settings
    if not (world_dir(settings) / f"{schema.APPLICATIONS}.parquet").is_file():
        raise BadInputError(f"{world_dir(settings)}: no world yet: run the data step first")
    cfg = load_model_config(DEFAULT_MODEL_CONFIG)
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
    # Why would the riskiest holdout applicant be declined? (the adverse-action reasons)
    holdout = load_holdout(settings, result.model, str(result.version))
    scorer = load_scorer(settings, result.model, str(result.version))
    pd_ = scorer.predict_pd(holdout)
    worst = holdout.iloc[[int(pd_.argmax())]]
    codes = scorer.reason_codes(worst)[0]
    app_id = worst[schema.APPLICATION_ID].iloc[0] if schema.APPLICATION_ID in worst else "?"
    ctx.console.print(
        f"explain {app_id}: PD {pd_.max():.3f} -> "
        f"{'decline' if pd_.max() >= cfg.cutoff else 'approve'}; reasons: "
        + "; ".join(f"{c.code} (+{c.contribution:.2f})" for c in codes)
    )
    return {
        "model": result.model,
        "version": result.version,
        "run_id": result.run_id,
        "metrics": result.metrics.model_dump(),
        "data_fingerprint": result.data_fingerprint,
        "training_set_fingerprint": result.training_set_fingerprint,
        "model_card": result.model_card,
        "holdout_rows": int(len(pd.Index(holdout.index))),
    }


STEP = DemoStep(
    order=30,
    name="train",
    title="Train + register the challenger (MLflow)",
    run=run,
    chapter=2,
)
