"""Training steps: fit + register in MLflow (the model card is the step's output),
then the gate evidence from the `data` artifact, MLflow and git, once for every gate."""

from __future__ import annotations

import json
from pathlib import Path

from mlgate.errors import BadInputError
from mlgate.pipelines.steps.common import (
    StepOutput,
    dataset_cfg,
    model_cfg,
    numbers,
    policy_for,
    settings,
    write_json,
    write_text,
)


def train_model(
    model_config: str,
    data_fingerprint: str,
    data_path: str,
    training_set_path: str,
    model_path: str,
    card_path: str,
) -> StepOutput:
    """Fit, evaluate, log to MLflow and register a version from the step's training set; the
    model card is an output of this step (HTML)."""
    import pandas as pd

    from mlgate.training.train import train_on_frame

    st = settings()
    mcfg = model_cfg(model_config)
    dataset = dataset_cfg(mcfg, st, data_path)
    frame = pd.read_parquet(training_set_path)
    result = train_on_frame(st, mcfg, dataset, frame, data_fingerprint=data_fingerprint)
    if not result.version:
        raise BadInputError(f"training {mcfg.name}: no version was registered")
    info = {
        "model_name": result.model,
        "model_version": result.version,
        "run_id": result.run_id,
        "model_uri": f"models:/{result.model}/{result.version}",
        "mlflow_tracking_uri": st.mlflow_tracking_uri(),
    }
    write_json(model_path, info)
    card = Path(result.model_card) if result.model_card else None
    if card is not None and card.is_file():
        write_text(card_path, card.read_text(encoding="utf-8"))
    else:
        write_text(card_path, f"<html><body>No model card for {mcfg.name} {result.version}.")
    return StepOutput(
        value=str(result.version),
        metrics=numbers(result.metrics.model_dump(mode="json"), "holdout_"),
        metadata=info,
    )


def evaluate_model(
    model_config: str,
    policy: str,
    model_version: str,
    env: str,
    data_path: str,
    model_path: str,
    evidence_path: str,
) -> StepOutput:
    """Score challenger and champion (git's stable version in `env`) on the same holdout and
    take the drift windows from the `data` artifact, once, for every gate step
    (mlgate.gates.collect), at the cut-off the environment serves (git), resolved by the
    same `gates.run.gather` as `mlgate gates run`."""
    from mlgate.gates.run import gather
    from mlgate.pipelines import evidence

    st = settings()
    mcfg = model_cfg(model_config)
    trained = json.loads(Path(model_path).read_text(encoding="utf-8"))
    if str(trained.get("model_version")) != str(model_version):
        raise BadInputError(
            f"model artifact {model_path}: version {trained.get('model_version')!r}, "
            f"not the {model_version!r} this step was asked to evaluate"
        )
    pol = policy_for(policy, mcfg.name)
    pol.for_env(env)  # unknown environment: bad input before any work
    _pol, data = gather(
        st,
        model=mcfg.name,
        challenger=model_version,
        env=env,
        policy=pol,
        data_path=data_path,
    )
    info = {
        "model": mcfg.name,
        "challenger": data.challenger,
        "champion": data.champion,
        "champion_source": data.champion_source,
        "run_id": data.run_id,
        "info": data.info,
        "why_missing": data.why_missing,
    }
    evidence.save(
        evidence_path, holdout=data.holdout, drift=data.drift, meta=info, recent=data.recent
    )
    metrics = {"champion_present": float(data.champion is not None)}
    if data.holdout is not None:
        metrics["holdout_rows"] = float(len(data.holdout))
        metrics["holdout_labelled"] = float(data.holdout.labelled.sum())
    if data.drift is not None:
        metrics["drift_reference_rows"] = float(len(data.drift.reference))
        metrics["drift_current_rows"] = float(len(data.drift.current))
    return StepOutput(
        value=data.champion or "",
        metrics=metrics,
        metadata={k: v for k, v in info.items() if k != "info"},
    )
