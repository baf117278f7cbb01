"""Feature steps: the point-in-time training set through the step's own Feast repo
over the `data` artifact."""

from __future__ import annotations

import os
from pathlib import Path

from mlgate.pipelines.steps.common import (
    StepOutput,
    dataset_cfg,
    model_cfg,
    settings,
)


def build_training_set(model_config: str, data_path: str, out_path: str) -> StepOutput:
    """The point-in-time correct training set through Feast (the step's own feature repo over
    the `data` artifact), as parquet."""
    from mlgate.features.training_set import build_training_set as build

    st = settings()
    cfg = dataset_cfg(model_cfg(model_config), st, data_path)
    df = build(st, cfg, approved_only=True, matured_only=True)
    target = Path(out_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, target)
    label = df[cfg.label] if cfg.label in df.columns else None
    metrics = {"rows": float(len(df)), "columns": float(len(df.columns))}
    if label is not None and len(df):
        metrics["default_rate"] = float(label.mean())
    meta = {
        "dataset": cfg.name,
        "feature_service": str(df.attrs.get("feature_service", "")),
        "rows": len(df),
    }
    return StepOutput(value=str(len(df)), metrics=metrics, metadata=meta)
