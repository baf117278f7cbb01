"""A served tree model's reason codes score the row and its substituted copies in one call
(the served replay's throughput, bench/served_replay.py): the contributions must be exactly
what one scoring call per feature gives, in chunks too."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlgate.training import reason_codes
from mlgate.training.model_config import ModelConfig
from mlgate.training.pipeline import PDModel, fit_pd_model

NUMERIC, CATEGORICAL = ["income", "utilization"], ["purpose"]


def _per_feature(model: PDModel, df: pd.DataFrame) -> np.ndarray:
    """The definition: logit(x) - logit(x with feature j at the reference), one call each."""
    x = model.frame(df)
    full = model.logit(x)
    out = np.zeros((len(x), len(model.features)))
    for j, col in enumerate(model.features):
        swapped = x.copy()
        ref = model.reference_raw.get(col)
        swapped[col] = ref if col in model.numeric else [ref] * len(x)
        out[:, j] = full - model.logit(swapped)
    return out


def test_batched_substitution_equals_one_call_per_feature(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    n = 900
    df = pd.DataFrame({
        "income": rng.lognormal(10, 0.5, n), "utilization": rng.uniform(0, 1, n),
        "purpose": rng.choice(["car", "home", "other"], n)})  # fmt: skip
    df.loc[::17, "income"] = np.nan  # missing values take the same path
    logit = -2 + 2 * df["utilization"] + 0.7 * (df["purpose"] == "other")
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    cfg = ModelConfig(name="m", dataset="d.yaml", algorithm="hist_gradient_boosting",
                      params={"max_iter": 30})  # fmt: skip
    model = fit_pd_model(cfg, NUMERIC, CATEGORICAL, df[:600], y[:600], df[600:], y[600:])
    rows = df.tail(250).reset_index(drop=True)
    expected = _per_feature(model, rows)
    assert np.abs(expected).max() > 0  # the features matter: the comparison means something
    np.testing.assert_array_equal(reason_codes.substitution_contributions(model, rows), expected)
    np.testing.assert_array_equal(
        reason_codes.substitution_contributions(model, rows.head(1)), expected[:1]
    )
    monkeypatch.setattr(reason_codes, "SUBSTITUTION_ROWS", 37)
    np.testing.assert_array_equal(reason_codes.substitution_contributions(model, rows), expected)
