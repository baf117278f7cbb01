"""Reason codes: "why was I declined?", consistent with the score.

Each feature's contribution is measured in logit units (the uncalibrated score) against a
reference applicant (the training population's average by default, see the model config's
`reason_codes.reference`). A positive contribution raises the PD. The top adverse factors are
the largest positive contributions (adverse-action notices usually give four).

- Logistic regression: contribution_j = sum over the encoded columns c of feature j of
  coef_c * (x_c - reference_c). The logit is linear in the encoded columns, so
  reference logit + sum of contributions == logit exactly (to float rounding, tested at 1e-9).
  A categorical feature's contribution is its category's coefficient against the reference mix,
  and its code names the category (e.g. `loan_purpose=debt_consolidation`). The calibration map
  is monotone and applied after, so the ranking of reasons is exact.
- Gradient boosting: one-at-a-time substitution. contribution_j = logit(x) - logit(x with
  feature j set to the reference applicant's value). It is exact per feature (what the score
  would be had this one characteristic been the reference's) but not additive when features
  interact; the card and docs say so. sklearn only, no extra attribution library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

if TYPE_CHECKING:  # annotations only: the registry (and every git command) needs ReasonCode
    from mlgate.training.pipeline import PDModel  # without importing sklearn


class ReasonCode(BaseModel):
    feature: str
    value: float | str | None
    reference: float | str | None
    contribution: float  # logit units; > 0 raises the PD
    code: str
    description: str


class Attribution(BaseModel):
    """Per-feature contributions for a batch (rows x features) and the reference logit."""

    features: list[str]
    contributions: list[list[float]]
    reference_logit: float | None  # None for non-additive methods
    method: str


def _encoded_groups(model: PDModel) -> np.ndarray:
    """For each encoded column of the LR design, the index of the feature it came from."""
    pre = model.base.named_steps["pre"]
    groups: list[int] = list(range(len(model.numeric)))
    if model.categorical:
        onehot = pre.named_transformers_["cat"].named_steps["onehot"]
        for i, cats in enumerate(onehot.categories_):
            groups.extend([len(model.numeric) + i] * len(cats))
    return np.asarray(groups)


def linear_contributions(model: PDModel, df: pd.DataFrame) -> tuple[np.ndarray, float]:
    """LR: (n x features) contributions and the reference logit; they add up to the logit."""
    assert model.reference_encoded is not None
    pre = model.base.named_steps["pre"]
    clf = model.base.named_steps["clf"]
    z = np.asarray(pre.transform(model.frame(df)), dtype="float64")
    coef = np.asarray(clf.coef_[0], dtype="float64")
    ref = model.reference_encoded
    per_col = (z - ref) * coef
    groups = _encoded_groups(model)
    out = np.zeros((len(z), len(model.features)))
    for j in range(len(model.features)):
        out[:, j] = per_col[:, groups == j].sum(axis=1)
    ref_logit = float(ref @ coef + float(clf.intercept_[0]))
    return out, ref_logit


SUBSTITUTION_ROWS = 4096  # rows scored per call: bounded memory for a holdout's worth


def substitution_contributions(model: PDModel, df: pd.DataFrame) -> np.ndarray:
    """Trees: logit(x) - logit(x with one feature set to the reference), per feature.

    The rows and their 1 + features substituted copies are scored in ONE call per chunk: a
    pipeline call costs milliseconds of fixed overhead whatever its rows, so one call per
    feature made a single-row request to a served tree model ~20 calls (the served replay's
    requests/s, bench/served_replay.py). Each row's score depends on that row only."""
    x = model.frame(df).reset_index(drop=True)
    feats = model.features
    out = np.zeros((len(x), len(feats)))
    step = max(SUBSTITUTION_ROWS // (len(feats) + 1), 1)
    for start in range(0, len(x), step):
        part = x.iloc[start : start + step]
        copies = [part]
        for col in feats:
            swapped = part.copy()
            ref = model.reference_raw.get(col)
            swapped[col] = ref if col in model.numeric else [ref] * len(part)
            copies.append(swapped)
        logits = model.logit(pd.concat(copies, ignore_index=True)).reshape(len(feats) + 1, -1)
        out[start : start + len(part)] = (logits[0] - logits[1:]).T
    return out


def attribute(model: PDModel, df: pd.DataFrame) -> Attribution:
    if model.algorithm == "logistic_regression":
        contrib, ref_logit = linear_contributions(model, df)
        method = "linear: coef x (value - reference) in the encoded space (additive, exact)"
        return Attribution(
            features=model.features,
            contributions=contrib.tolist(),
            reference_logit=ref_logit,
            method=method,
        )
    contrib = substitution_contributions(model, df)
    return Attribution(
        features=model.features,
        contributions=contrib.tolist(),
        reference_logit=None,
        method="one-at-a-time substitution of the reference applicant's value (not additive)",
    )


def _jsonable(v: Any) -> float | str | None:
    if v is None:
        return None
    if isinstance(v, float | int | np.floating | np.integer):
        f = float(v)
        return None if np.isnan(f) else f
    return str(v)


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def _describe(feature: str, value: Any, ref: Any, categorical: bool) -> tuple[str, str]:
    if categorical:
        shown = "missing" if value is None else str(value)
        return f"{feature}={shown}", f"{feature} is {shown} (reference applicant: {ref})"
    if value is None:
        return f"{feature}:missing", f"{feature} is missing (reference applicant: {_num(ref)})"
    direction = "higher" if value > ref else "lower"
    return (
        f"{feature}:{direction}",
        f"{feature} = {_num(value)} is {direction} than the reference applicant's {_num(ref)}",
    )


def adverse_reason(
    feature: str, value: Any, reference: Any, contribution: float, *, categorical: bool
) -> ReasonCode:
    """One adverse-action reason: the applicant's value against the reference, with its cost."""
    value, reference = _jsonable(value), _jsonable(reference)
    code, text = _describe(feature, value, reference, categorical)
    return ReasonCode(
        feature=feature,
        value=value,
        reference=reference,
        contribution=contribution,
        code=code,
        description=text,
    )


def reason_codes(model: PDModel, df: pd.DataFrame, top_k: int = 4) -> list[list[ReasonCode]]:
    """The top adverse factors (largest positive contributions) for each row of `df`."""
    x = model.frame(df)
    contrib = np.asarray(attribute(model, df).contributions, dtype="float64").reshape(
        len(x), len(model.features)
    )
    out: list[list[ReasonCode]] = []
    for i in range(len(x)):
        order = np.argsort(-contrib[i], kind="stable")
        codes: list[ReasonCode] = []
        for j in order[:top_k]:
            c = float(contrib[i, j])
            if c <= 0:
                break
            feature = model.features[j]
            codes.append(
                adverse_reason(
                    feature,
                    x.iloc[i][feature],
                    model.reference_raw.get(feature),
                    c,
                    categorical=feature in model.categorical,
                )
            )
        out.append(codes)
    return out
