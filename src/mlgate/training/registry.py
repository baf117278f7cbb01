"""The MLflow registry, read side: find a version, load it, and trace where it came from.

Other capabilities (gates, packaging, gitops, serving, audit) depend on these functions and on
the model-version tags `data_fingerprint`, `feature_service`, `git_commit`,
`training_set_fingerprint` (plus `feature_views`, `dataset`, `training_set_uri`,
`holdout_uri`, `windows`). The tracking URI always comes from the platform settings; the
embedded default is SQLite with artifacts in `<workspace>/mlflow/artifacts`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import requests
from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.data.label_bias import LabelBias
from mlgate.errors import BadInputError, ExternalServiceError
from mlgate.records.tags import read_tags
from mlgate.records.values import canonical_version, is_version_number
from mlgate.training.reason_codes import ReasonCode
from mlgate.training.split import SplitWindows

CHALLENGER = "challenger"
# The label bias a version was trained with, as its spec (its MLflow tag is the text): written
# with the run's artifacts by `training.track`, read here for a reproduction.
LABEL_BIAS_ARTIFACT = "config/label_bias.json"
# The tags a version needs for its lineage (`records.tags` holds them all, writer and parser).
LINEAGE_TAGS = (
    "data_fingerprint",
    "feature_service",
    "git_commit",
    "training_set_fingerprint",
    "feature_views",
    "dataset",
    "training_set_uri",
    "holdout_uri",
    "windows",
)


class Lineage(BaseModel):
    model: str
    version: str
    run_id: str
    data_fingerprint: str
    training_set_fingerprint: str
    training_set_uri: str
    holdout_uri: str
    feature_service: str | None
    feature_views: list[str]
    dataset: str
    git_commit: str
    created: str
    aliases: list[str]
    windows: SplitWindows
    event_timestamp_column: str | None = None
    label_bias: str | None = None  # the labels were biased on purpose (data.label_bias)


def is_local_uri(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:", "/")) or "://" not in uri


def connect(settings: PlatformSettings) -> Any:
    """An MlflowClient on the configured tracking server, checked to answer (else a clear error).

    Also points the fluent API (used by log_model) at the same server: callers must not rely on
    any other tracking URI being set globally.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    # Quiet: MLflow's INFO lines and progress bars would bury the command's own output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*noload.*")  # SQLAlchemy, inside MLflow's store
    # log_model's CloudPickle notice: the model object is ours, by design (see pyfunc.py).
    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
    uri = settings.mlflow_tracking_uri()
    registry_uri = settings.mlflow.registry_uri or uri
    if uri.startswith(("http://", "https://")):
        try:
            resp = requests.get(uri.rstrip("/") + "/health", timeout=5)
        except requests.RequestException as exc:
            raise ExternalServiceError(
                f"MLflow tracking server {uri} does not answer ({type(exc).__name__}); "
                "check mlflow.tracking_uri / MLGATE_MLFLOW__TRACKING_URI"
            ) from None
        if resp.status_code != 200:
            raise ExternalServiceError(
                f"MLflow tracking server {uri} answered /health with HTTP {resp.status_code}"
            )
    elif uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        if not db.parent.is_dir():
            raise ExternalServiceError(
                f"MLflow tracking URI {uri}: folder {db.parent} does not exist"
            )
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(registry_uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=registry_uri)
    try:
        client.search_experiments(max_results=1)
    except Exception as exc:  # any backend failure: a service problem, not a traceback
        raise ExternalServiceError(
            f"MLflow tracking URI {uri} is not usable: {str(exc).splitlines()[0][:300]}"
        ) from None
    return client


def resolve_version(client: Any, model: str, version_or_alias: str | int) -> Any:
    """A ModelVersion from a number or an alias; unknown ones are bad input."""
    from mlflow.exceptions import MlflowException

    ref = str(version_or_alias)
    try:
        if is_version_number(ref):
            return client.get_model_version(model, canonical_version(ref))
        return client.get_model_version_by_alias(model, ref)
    except MlflowException as exc:
        raise BadInputError(f"model {model!r} has no version or alias {ref!r}") from exc


def version_lineage(settings: PlatformSettings, model: str, version: str | int) -> Lineage:
    """Where a registered version came from, read from its tags (written at registration)."""
    client = connect(settings)
    mv = resolve_version(client, model, version)
    tags = read_tags(mv.tags, model, str(mv.version))
    tags.require(*LINEAGE_TAGS, source=f"{model} version {mv.version}")
    try:
        windows = SplitWindows.model_validate_json(str(tags.windows))
    except ValueError as exc:
        raise BadInputError(f"MLflow tag windows of {model} version {mv.version}: {exc}") from None
    return Lineage(
        model=model,
        version=str(mv.version),
        run_id=str(mv.run_id),
        data_fingerprint=str(tags.data_fingerprint),
        training_set_fingerprint=str(tags.training_set_fingerprint),
        training_set_uri=str(tags.training_set_uri),
        holdout_uri=str(tags.holdout_uri),
        feature_service=tags.feature_service or None,
        feature_views=tags.feature_view_list,
        dataset=str(tags.dataset),
        git_commit=str(tags.git_commit),
        created=datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC).isoformat(),
        aliases=sorted(getattr(mv, "aliases", []) or []),
        windows=windows,
        event_timestamp_column=tags.event_timestamp_column,
        label_bias=tags.label_bias,
    )


def _download(settings: PlatformSettings, uri: str) -> Path:
    import mlflow

    connect(settings)
    dest = Path(tempfile.mkdtemp(prefix="mlgate-artifact-"))
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest)))
    except Exception as exc:
        raise ExternalServiceError(f"cannot download {uri}: {str(exc)[:300]}") from None


def read_artifact_json(settings: PlatformSettings, run_id: str, path: str) -> Any:
    return json.loads(_download(settings, f"runs:/{run_id}/{path}").read_text())


def recorded_label_bias(settings: PlatformSettings, lineage: Lineage) -> LabelBias | None:
    """The label bias a version was trained with, None if none (its tag says which)."""
    if not lineage.label_bias:
        return None
    raw = read_artifact_json(settings, lineage.run_id, LABEL_BIAS_ARTIFACT)
    try:
        return LabelBias.model_validate(raw)
    except ValueError as exc:
        where = f"{lineage.model} version {lineage.version}: {LABEL_BIAS_ARTIFACT}"
        raise BadInputError(f"{where}: {str(exc).splitlines()[0]}") from None


def load_training_set(
    settings: PlatformSettings,
    model: str,
    version: str | int,
    window: Literal["train", "validation", "holdout", "all"] = "train",
) -> pd.DataFrame:
    """The exact training set a version was built from (parquet kept with its run).

    `window="train"` (default) is what the classifier was fitted on: the drift reference.
    `"all"` is the whole matured, approved set the out-of-time split was cut from.
    """
    lin = version_lineage(settings, model, version)
    df = pd.read_parquet(_download(settings, lin.training_set_uri))
    if window == "all":
        return df
    w, ts_col = lin.windows, lin.event_timestamp_column
    if not ts_col:
        raise BadInputError(f"{model} version {version} lacks tag event_timestamp_column")
    ts = pd.to_datetime(df[ts_col], utc=True)
    v0, h0 = pd.Timestamp(w.validation_start), pd.Timestamp(w.holdout_start)
    mask = {"train": ts < v0, "validation": (ts >= v0) & (ts < h0), "holdout": ts >= h0}[window]
    return df[mask].reset_index(drop=True)


def load_holdout(settings: PlatformSettings, model: str, version: str | int) -> pd.DataFrame:
    """The out-of-time holdout rows of a version (features, label, early label, decision)."""
    lin = version_lineage(settings, model, version)
    return pd.read_parquet(_download(settings, lin.holdout_uri))


@dataclass
class Scorer:
    """A loaded registered version: PD and reason codes, with its identity."""

    model: str
    version: str
    run_id: str
    python_model: Any  # mlgate.training.pyfunc.CreditRiskModel

    @property
    def features(self) -> list[str]:
        return list(self.python_model.features)

    def predict_pd(self, df: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.python_model.predict_pd(df))

    def reason_codes(self, df: pd.DataFrame, top_k: int | None = None) -> list[list[ReasonCode]]:
        return list(self.python_model.reason_codes(df, top_k=top_k))


def load_scorer(settings: PlatformSettings, model: str, version_or_alias: str | int) -> Scorer:
    """Load a registered version (number or alias) through mlflow.pyfunc."""
    import mlflow.pyfunc

    client = connect(settings)
    mv = resolve_version(client, model, version_or_alias)
    os.environ.setdefault("MLFLOW_DISABLE_ENV_MANAGER_CONDA_WARNING", "true")
    try:
        loaded = mlflow.pyfunc.load_model(f"models:/{model}/{mv.version}")
    except Exception as exc:
        raise ExternalServiceError(
            f"cannot load {model} version {mv.version}: {str(exc)[:300]}"
        ) from None
    python_model = loaded.unwrap_python_model()
    python_model.model_version = str(mv.version)
    python_model.model_name = model
    return Scorer(
        model=model, version=str(mv.version), run_id=str(mv.run_id), python_model=python_model
    )
