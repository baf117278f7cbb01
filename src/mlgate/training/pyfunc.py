"""The registered model: an MLflow pyfunc that returns PD and can explain it.

`mlflow.pyfunc.load_model(uri)` gives a generic scorer (`predict` -> DataFrame with `pd`);
`.unwrap_python_model()` gives this class, whose `predict_pd` and `reason_codes` the model
server and `mlgate explain` call directly. Everything needed to explain a score (the reference
applicant, the feature lists) travels inside the model, so an explanation never depends on the
training data being reachable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from mlgate.training.pipeline import PDModel
from mlgate.training.reason_codes import ReasonCode, attribute, reason_codes


def decide(pd_values: Sequence[float | None] | np.ndarray, cutoff: float) -> list[str]:
    """`decline` at or above the cut-off, `approve` below it, `refer` for anything else.

    The one decision rule for the server, `mlgate explain` and anything that turns a PD into a
    decision: a missing or non-finite PD is never `approve` (`NaN >= cutoff` is false, so the
    naive rule would approve it).
    """
    out = []
    for p in pd_values:
        if p is None or not math.isfinite(p) or not 0.0 <= p <= 1.0:
            out.append("refer")
        else:
            out.append("decline" if p >= cutoff else "approve")
    return out


class CreditRiskModel(PythonModel):  # type: ignore[misc]
    """A calibrated PD model with reason codes, as logged and registered in MLflow."""

    def __init__(
        self,
        pd_model: PDModel,
        *,
        model_name: str,
        cutoff: float,
        top_k: int = 4,
        model_version: str | None = None,
    ) -> None:
        self.pd_model = pd_model
        self.model_name = model_name
        self.model_version = model_version  # filled by whoever loads a registered version
        self.cutoff = cutoff  # the evaluation default; serving takes its cut-off from git
        self.top_k = top_k

    # --- what callers read -----------------------------------------------------------
    @property
    def features(self) -> list[str]:
        return self.pd_model.features

    @property
    def numeric_features(self) -> list[str]:
        return list(self.pd_model.numeric)

    @property
    def categorical_features(self) -> list[str]:
        return list(self.pd_model.categorical)

    @property
    def algorithm(self) -> str:
        return self.pd_model.algorithm

    # --- scoring ---------------------------------------------------------------------
    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return pd.DataFrame({"pd": self.predict_pd(model_input)}, index=model_input.index)

    def predict_pd(self, df: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of default per row."""
        return self.pd_model.predict_pd(df)

    def logit(self, df: pd.DataFrame) -> np.ndarray:
        """The uncalibrated score the reason codes decompose."""
        return self.pd_model.logit(df)

    def decisions(self, pd_: np.ndarray, cutoff: float | None = None) -> list[str]:
        return decide(pd_, self.cutoff if cutoff is None else cutoff)

    def reason_codes(self, df: pd.DataFrame, top_k: int | None = None) -> list[list[ReasonCode]]:
        """Top adverse factors per row (largest contributions that raise the PD)."""
        return reason_codes(self.pd_model, df, top_k=top_k or self.top_k)

    def contributions(self, df: pd.DataFrame) -> tuple[np.ndarray, float | None]:
        """(rows x features) contributions and the reference logit (None if not additive)."""
        att = attribute(self.pd_model, df)
        return np.asarray(att.contributions, dtype="float64"), att.reference_logit
