"""Helpers for bench/gate_decisions.py: one synthetic world as a flat frame, and the oracle.

Owned by the gate-decisions benchmark. Pure pandas/numpy/sklearn, no Feast: the benchmark
trains many champion/challenger pairs, so it joins the world's tables directly (newest bureau
snapshot and newest daily transaction row at or before each application, the same
point-in-time rule the Feast training sets follow) and fits sklearn pipelines.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from mlgate.data import schema
from mlgate.data.world import WorldSpec, generate_world
from mlgate.gates.policy import CostModel

NUMERIC = list(schema.MODEL_NUMERIC_FEATURES)
CATEGORICAL = list(schema.MODEL_CATEGORICAL_FEATURES)
# "The old scorecard": no payment history, no delinquencies, no transaction data.
OLD_SCORECARD = ["loan_amount", "loan_term_months", "employment_years", "annual_income"] + [
    "debt_to_income_ratio",
    "credit_utilization",
    "num_open_accounts",
    "credit_history_months",
]
# Heavy-tailed features the logistic models see on a log scale.
LOG_FEATURES = {
    "loan_amount",
    "annual_income",
    "debt_to_income_ratio",
    "avg_txn_amount_30d",
    "balance_volatility_30d",
    "num_delinquencies_24m",
    "credit_history_months",
    "txn_count_30d",
    "employment_years",
}


def world_frame(spec: WorldSpec, folder: str) -> pd.DataFrame:
    """Generate the world and return one row per application: features as known at
    application time, bank decision, outcomes, protected attributes and the oracle."""
    generate_world(spec, folder)

    def read(name: str) -> pd.DataFrame:
        return pd.read_parquet(f"{folder}/{name}.parquet")

    apps = read("applications").sort_values("application_timestamp")
    ts = "application_timestamp"
    for table, cols in (
        ("bureau_snapshots", schema.BUREAU_FEATURES),
        ("transactions_daily", schema.TRANSACTION_FEATURES),
    ):
        feats = read(table)[["applicant_id", "event_timestamp", *cols]]
        feats = feats.sort_values("event_timestamp")
        apps = pd.merge_asof(
            apps,
            feats,
            left_on=ts,
            right_on="event_timestamp",
            by="applicant_id",
            direction="backward",
        ).drop(columns="event_timestamp")
    outcomes = read("outcomes")[["application_id", schema.LABEL, schema.EARLY_LABEL]]
    frame = (
        apps.merge(outcomes, on="application_id", how="left")
        .merge(read("protected_attributes"), on="applicant_id", how="left")
        .merge(read("oracle"), on="application_id", how="left")
    )
    start = pd.Timestamp(spec.start, tz="UTC")
    frame["month"] = (frame[ts].dt.year - start.year) * 12 + frame[ts].dt.month - start.month
    frame["bank_approved"] = frame[schema.BANK_DECISION] == schema.APPROVED
    return frame.reset_index(drop=True)


def _log(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.clip(x, 0, None))


def make_model(kind: str, features: list[str]) -> Pipeline:
    """`lr`: imputed, log-scaled, standardised logistic regression with one-hot categoricals."""
    numeric = [f for f in features if f in NUMERIC]
    logged = [f for f in numeric if f in LOG_FEATURES]
    plain = [f for f in numeric if f not in LOG_FEATURES]
    cats = [f for f in features if f in CATEGORICAL]
    onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    if kind == "lr":
        pre = ColumnTransformer(
            [
                (
                    "log",
                    make_pipeline(
                        SimpleImputer(strategy="median"),
                        FunctionTransformer(_log),
                        StandardScaler(),
                    ),
                    logged,
                ),
                ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), plain),
                ("cat", onehot, cats),
            ]
        )
        return make_pipeline(pre, LogisticRegression(C=1.0, max_iter=500))
    raise ValueError(f"unknown model kind {kind!r}")


def fit_pd(frame: pd.DataFrame, kind: str, features: list[str]) -> Pipeline:
    """Fit on the bank's approvals with a matured label (the only rows with an outcome)."""
    rows = frame[frame["bank_approved"] & frame[schema.LABEL].notna()]
    model = make_model(kind, features)
    model.fit(rows[features], rows[schema.LABEL].astype(int))
    return model


def predict_pd(model: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    features = list(model[0].feature_names_in_)
    return np.asarray(model.predict_proba(frame[features])[:, 1], dtype=float)


# --- the oracle: what no lender can see --------------------------------------------------


def expected_profit(pd_model: np.ndarray, cutoff: float, frame: pd.DataFrame, cost: CostModel):
    """True expected profit per application: approved at the model's cut-off, each application
    valued with its TRUE PD under the policy's cost model; a declined good applicant costs the
    forgone margin (weighted as in the policy). Declined applicants count too."""
    p = frame["true_pd"].to_numpy()
    amount = frame["loan_amount"].to_numpy(float)
    good = amount * (cost.interest_margin - cost.funding_cost) - cost.operating_cost
    bad = -amount * (cost.lgd * cost.ead_share + cost.funding_cost) - cost.operating_cost
    forgone = -cost.forgone_margin_weight * amount * (cost.interest_margin - cost.funding_cost)
    approved = pd_model < cutoff
    value = np.where(approved, (1 - p) * good + p * bad, (1 - p) * forgone)
    return float(value.mean())


def expected_auc(pd_model: np.ndarray, true_pd: np.ndarray) -> float:
    """AUC against the true PD: each application is a default with weight true_pd and a
    non-default with weight 1 - true_pd (the expectation over outcome draws, no label noise)."""
    n = len(pd_model)
    y = np.r_[np.ones(n), np.zeros(n)]
    return float(
        roc_auc_score(y, np.r_[pd_model, pd_model], sample_weight=np.r_[true_pd, 1 - true_pd])
    )


def calibration_gap(pd_model: np.ndarray, true_pd: np.ndarray, cutoff: float, rel: float) -> float:
    """Worst excess miscalibration over PD deciles of the model's approvals (where the PD
    prices loans and sets provisions): max over bands of |mean predicted - mean true PD| minus
    max(0.02, rel x mean true PD). Positive = some band is materially off; NaN if < 100
    approvals."""
    approved = pd_model < cutoff
    pred, true = pd_model[approved], true_pd[approved]
    if len(pred) < 100:
        return float("nan")
    edges = np.quantile(pred, np.linspace(0, 1, 11)[1:-1])
    band = np.searchsorted(edges, pred, side="right")
    excess = []
    for b in np.unique(band):
        p, t = pred[band == b].mean(), true[band == b].mean()
        excess.append(abs(p - t) - max(0.02, rel * t))
    return float(max(excess))


def impact_ratios(pd_model: np.ndarray, cutoff: float, frame: pd.DataFrame) -> dict[str, float]:
    """Adverse impact ratio (lowest / highest group approval rate) per protected attribute,
    over every application (no selection: approval decisions exist for everyone)."""
    approved = pd_model < cutoff
    out = {}
    for attr in schema.PROTECTED_ATTRIBUTES:
        rates = pd.Series(approved).groupby(frame[attr].to_numpy()).agg(["mean", "size"])
        rates = rates[rates["size"] >= 100]["mean"]
        out[attr] = float(rates.min() / rates.max()) if rates.max() > 0 else float("nan")
    return out
