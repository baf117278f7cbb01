"""The model: an sklearn pipeline plus a monotone calibration map fitted after it.

Two algorithms, chosen in the model config:
- `logistic_regression`: median-imputed, standardised numeric features and one-hot categoricals
  into an L2-regularised logistic regression (a scorecard in all but the points scale). Its
  logit is linear in the encoded features, which is what makes reason codes exact.
- `hist_gradient_boosting`: sklearn's HistGradientBoosting with native categorical support
  (categories ordinal-encoded, unknown/missing -> NaN, which the trees route as missing).

Calibration is a separate, monotone map (Platt/sigmoid or isotonic, via sklearn's
CalibratedClassifierCV over the frozen fitted pipeline) fitted on the calibration window that
precedes the out-of-time holdout. Because the map is monotone, the ranking of applicants and of
reasons is decided by the uncalibrated logit; the map only turns it into a PD.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from mlgate.errors import BadInputError
from mlgate.training.model_config import ModelConfig

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"C": 1.0, "max_iter": 500},
    "hist_gradient_boosting": {
        "learning_rate": 0.05,
        "max_iter": 200,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 50,
        "l2_regularization": 1.0,
        "early_stopping": False,  # no internal random validation split: fully deterministic
    },
}


THREADS_ENV = "MLGATE_TRAIN_THREADS"


@contextmanager
def native_threads() -> Iterator[None]:
    """Limit OpenMP/BLAS threads (default 1, `MLGATE_TRAIN_THREADS` to raise).

    HistGradientBoosting's OpenMP workers spin-wait: on a shared 2-core machine they made a
    0.5 s fit take 9 s. Scoring is row-by-row in serving, where threads only add overhead.
    """
    with threadpool_limits(limits=max(1, int(os.environ.get(THREADS_ENV, "1")))):
        yield


def prepare_frame(
    df: pd.DataFrame, numeric: list[str], categorical: list[str], *, source: str = "input"
) -> pd.DataFrame:
    """The model's input columns with stable dtypes (float64 numerics, object categoricals).

    A missing column is bad input naming the column; extra columns are ignored.
    """
    missing = [c for c in numeric + categorical if c not in df.columns]
    if missing:
        raise BadInputError(f"{source}: missing feature column(s) {missing}")
    out = pd.DataFrame(index=df.index)
    for col in numeric:
        try:
            out[col] = pd.to_numeric(df[col], errors="raise").astype("float64")
        except (ValueError, TypeError) as exc:
            raise BadInputError(f"{source}: column {col!r} must be numeric: {exc}") from exc
    for col in categorical:
        values = df[col].astype("object")
        out[col] = values.where(values.notna(), None).map(lambda v: v if v is None else str(v))
    return out


def _preprocessor(
    cfg: ModelConfig, numeric: list[str], categorical: list[str]
) -> ColumnTransformer:
    if cfg.algorithm == "logistic_regression":
        num = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        cat = Pipeline(
            [
                ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
    else:
        num = "passthrough"  # type: ignore[assignment]
        cat = OrdinalEncoder(  # type: ignore[assignment]
            handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
        )
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        transformers.append(("num", num, numeric))
    if categorical:
        transformers.append(("cat", cat, categorical))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)


def build_pipeline(cfg: ModelConfig, numeric: list[str], categorical: list[str]) -> Pipeline:
    """The uncalibrated classifier pipeline for the configured algorithm."""
    params = {**DEFAULT_PARAMS[cfg.algorithm], **cfg.params}
    clf: Any
    if cfg.algorithm == "logistic_regression":
        clf = LogisticRegression(random_state=cfg.seed, **params)
    else:
        cat_idx = list(range(len(numeric), len(numeric) + len(categorical)))
        clf = HistGradientBoostingClassifier(
            random_state=cfg.seed, categorical_features=cat_idx or None, **params
        )
    return Pipeline([("pre", _preprocessor(cfg, numeric, categorical)), ("clf", clf)])


@dataclass
class PDModel:
    """A fitted, calibrated PD model and what reason codes need to explain it."""

    algorithm: str
    numeric: list[str]
    categorical: list[str]
    base: Pipeline
    calibrator: CalibratedClassifierCV
    # Reference applicant: raw values (for display and tree attributions) and, for logistic
    # regression, the encoded reference vector the contributions are measured against.
    reference_raw: dict[str, Any] = field(default_factory=dict)
    reference_encoded: np.ndarray | None = None
    reference_kind: str = "mean"

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        return prepare_frame(df, self.numeric, self.categorical)

    def logit(self, df: pd.DataFrame) -> np.ndarray:
        """The uncalibrated score (log-odds of the classifier before the calibration map)."""
        x = self.frame(df)
        with native_threads():
            return np.asarray(self.base.decision_function(x), dtype="float64")

    def predict_pd(self, df: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of default."""
        x = self.frame(df)
        with native_threads():
            return np.asarray(self.calibrator.predict_proba(x)[:, 1], dtype="float64")


def _reference_raw(x: pd.DataFrame, numeric: list[str], categorical: list[str], kind: str) -> dict:
    ref: dict[str, Any] = {}
    for col in numeric:
        s = x[col].dropna()
        ref[col] = float(s.mean() if kind == "mean" else s.median()) if len(s) else 0.0
    for col in categorical:
        s = x[col].dropna()
        ref[col] = str(s.mode().iloc[0]) if len(s) else None
    return ref


def fit_pd_model(
    cfg: ModelConfig,
    numeric: list[str],
    categorical: list[str],
    train: pd.DataFrame,
    y_train: np.ndarray,
    calib: pd.DataFrame,
    y_calib: np.ndarray,
) -> PDModel:
    """Fit the classifier on the training window, then the monotone map on the calibration one."""
    x_train = prepare_frame(train, numeric, categorical, source="training window")
    x_calib = prepare_frame(calib, numeric, categorical, source="calibration window")
    base = build_pipeline(cfg, numeric, categorical)
    with native_threads():
        base.fit(x_train, y_train)
        calibrator = CalibratedClassifierCV(FrozenEstimator(base), method=cfg.calibration)
        calibrator.fit(x_calib, y_calib)
    kind = cfg.reason_codes.reference
    ref_raw = _reference_raw(x_train, numeric, categorical, kind)
    ref_enc: np.ndarray | None = None
    if cfg.algorithm == "logistic_regression":
        pre = base.named_steps["pre"]
        if kind == "mean":  # the average applicant, in the encoded space the model is linear in
            ref_enc = np.asarray(pre.transform(x_train), dtype="float64").mean(axis=0)
        else:
            ref_enc = np.asarray(pre.transform(pd.DataFrame([ref_raw])), dtype="float64")[0]
    return PDModel(
        algorithm=cfg.algorithm,
        numeric=list(numeric),
        categorical=list(categorical),
        base=base,
        calibrator=calibrator,
        reference_raw=ref_raw,
        reference_encoded=ref_enc,
        reference_kind=kind,
    )
