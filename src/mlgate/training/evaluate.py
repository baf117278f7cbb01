"""Out-of-time evaluation: the numbers a model validator asks for first.

AUC and Gini (= 2 AUC - 1) for ranking, KS (largest gap between the score distributions of
goods and bads), Brier score for the accuracy of the PD itself, a calibration table (predicted
vs observed default rate by PD decile), and the approval rate and default rate among the
approved at the evaluation cut-off (decline when PD >= cut-off).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel
from scipy.stats import ks_2samp
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve


class CalibrationBin(BaseModel):
    decile: int
    n: int
    pd_min: float
    pd_max: float
    mean_pd: float
    observed_default_rate: float


class Metrics(BaseModel):
    n: int
    defaults: int
    default_rate: float
    auc: float
    gini: float
    ks: float
    brier: float
    cutoff: float
    approval_rate: float
    approved_default_rate: float  # observed default rate among those approved at the cut-off
    mean_pd: float


class Evaluation(BaseModel):
    metrics: Metrics
    calibration: list[CalibrationBin]
    roc_fpr: list[float]
    roc_tpr: list[float]


def calibration_table(y: np.ndarray, pd_: np.ndarray, bins: int = 10) -> list[CalibrationBin]:
    """Predicted vs observed default rate by PD decile (ties kept together by rank)."""
    frame = pd.DataFrame({"y": y, "pd": pd_})
    ranks = frame["pd"].rank(method="first")
    frame["bin"] = pd.qcut(ranks, q=min(bins, len(frame)), labels=False)
    out = []
    for b, g in frame.groupby("bin", sort=True):
        out.append(
            CalibrationBin(
                decile=int(b) + 1,  # type: ignore[call-overload]
                n=len(g),
                pd_min=float(g["pd"].min()),
                pd_max=float(g["pd"].max()),
                mean_pd=float(g["pd"].mean()),
                observed_default_rate=float(g["y"].mean()),
            )
        )
    return out


def evaluate(y_true: np.ndarray, pd_: np.ndarray, cutoff: float) -> Evaluation:
    """All holdout metrics for one model at one cut-off."""
    y = np.asarray(y_true, dtype="int64")
    p = np.asarray(pd_, dtype="float64")
    auc = float(roc_auc_score(y, p))
    ks = float(ks_2samp(p[y == 1], p[y == 0]).statistic)
    approved = p < cutoff
    fpr, tpr, _ = roc_curve(y, p)
    # Thin the curve for storage (the plot does not need every threshold).
    keep = np.unique(np.linspace(0, len(fpr) - 1, num=min(len(fpr), 400)).astype(int))
    metrics = Metrics(
        n=len(y),
        defaults=int(y.sum()),
        default_rate=float(y.mean()),
        auc=auc,
        gini=2 * auc - 1,
        ks=ks,
        brier=float(brier_score_loss(y, p)),
        cutoff=cutoff,
        approval_rate=float(approved.mean()),
        approved_default_rate=float(y[approved].mean()) if approved.any() else float("nan"),
        mean_pd=float(p.mean()),
    )
    return Evaluation(
        metrics=metrics,
        calibration=calibration_table(y, p),
        roc_fpr=[float(v) for v in fpr[keep]],
        roc_tpr=[float(v) for v in tpr[keep]],
    )
