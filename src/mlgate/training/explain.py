"""Offline explanation of one application: PD, decision at a cut-off, and reason codes.

The same model object the model server loads (the registered pyfunc), so `mlgate explain`
and the served response agree. The application comes either from the dataset (by its row key,
with point-in-time features from Feast as of the application's timestamp) or from a JSON file
holding the feature values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel

from mlgate.config import PlatformSettings, parse_model
from mlgate.data.dataset_config import DatasetConfig
from mlgate.errors import BadInputError
from mlgate.training.reason_codes import ReasonCode
from mlgate.training.registry import load_scorer, read_artifact_json


class Explanation(BaseModel):
    model: str
    version: str
    application_id: str | None
    pd: float
    decision: str  # "approve" | "decline"
    cutoff: float
    logit: float
    reference_logit: float | None
    reason_codes: list[ReasonCode]


def recorded_dataset(settings: PlatformSettings, run_id: str) -> DatasetConfig:
    """The dataset config a run was trained with (logged with the run)."""
    data = read_artifact_json(settings, run_id, "config/dataset_config.json")
    source = data.pop("source_file", None)
    ds = parse_model(DatasetConfig, data, f"run {run_id}: config/dataset_config.json")
    return ds.model_copy(update={"source_file": source})


def application_row(
    settings: PlatformSettings, dataset: DatasetConfig, application_id: str
) -> pd.DataFrame:
    """One application with its point-in-time features (declined and unlabelled ones too)."""
    from mlgate.features.training_set import application_features

    if not dataset.row_key:
        raise BadInputError(f"dataset {dataset.name!r} has no row_key: use --json-input")
    rows = application_features(settings, dataset)
    hit = rows[rows[dataset.row_key].astype(str) == str(application_id)]
    if hit.empty:
        raise BadInputError(f"application {application_id!r} not found in {dataset.name!r}")
    return hit.head(1).reset_index(drop=True)


def read_json_input(path: str | Path) -> pd.DataFrame:
    """A JSON object of feature values (optionally under "inputs"), as a one-row frame."""
    p = Path(path)
    try:
        data: Any = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputError(f"{p}: file not found") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{p}: not valid JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("inputs"), dict):
        data = data["inputs"]
    if not isinstance(data, dict):
        raise BadInputError(f"{p}: expected a JSON object of feature values")
    return pd.DataFrame([data])


def explain(
    settings: PlatformSettings,
    model: str,
    version_or_alias: str,
    *,
    application_id: str | None = None,
    json_input: str | Path | None = None,
    cutoff: float | None = None,
) -> Explanation:
    if (application_id is None) == (json_input is None):
        raise BadInputError("give exactly one of --application-id or --json-input")
    scorer = load_scorer(settings, model, version_or_alias)
    if json_input is not None:
        row = read_json_input(json_input)
        source = str(json_input)
    else:
        row = application_row(
            settings, recorded_dataset(settings, scorer.run_id), application_id or ""
        )
        source = f"application {application_id}"
    pm = scorer.python_model
    from mlgate.training.pipeline import prepare_frame

    prepare_frame(row, pm.numeric_features, pm.categorical_features, source=source)  # validates
    pd_ = float(scorer.predict_pd(row)[0])
    c = pm.cutoff if cutoff is None else cutoff
    if not 0 < c < 1:
        raise BadInputError(f"--cutoff {c}: must lie strictly between 0 and 1")
    _, ref_logit = pm.contributions(row)
    return Explanation(
        model=model,
        version=scorer.version,
        application_id=application_id,
        pd=pd_,
        decision=pm.decisions([pd_], c)[0],
        cutoff=c,
        logit=float(pm.logit(row)[0]),
        reference_logit=ref_logit,
        reason_codes=scorer.reason_codes(row)[0],
    )
