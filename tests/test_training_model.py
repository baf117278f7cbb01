"""The training core without MLflow: config validation, out-of-time split, reason codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgate.errors import BadInputError, ConfigError
from mlgate.training.model_config import ModelConfig, load_model_config
from mlgate.training.pipeline import fit_pd_model
from mlgate.training.reason_codes import reason_codes, substitution_contributions
from mlgate.training.split import out_of_time_split

NUMERIC = ["income", "dti", "utilization"]
CATEGORICAL = ["purpose"]


def frame(n: int = 3000, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "ts": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 540, n), unit="D"),
            "income": rng.lognormal(10.5, 0.4, n),
            "dti": rng.uniform(0, 0.8, n),
            "utilization": rng.uniform(0, 1, n),
            "purpose": rng.choice(["car", "home", "debt_consolidation"], n),
        }
    )
    df.loc[rng.random(n) < 0.03, "utilization"] = np.nan  # missing values must be handled
    logit = (
        -2.5
        + 3 * df["dti"]
        + 1.5 * df["utilization"].fillna(0.5)
        - 0.5 * (np.log(df["income"]) - 10.5)
        + (df["purpose"] == "debt_consolidation") * 0.7
    )
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    df["label"] = y
    return df, y


def test_model_config_errors_name_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "m.yaml"
    bad.write_text("name: x\ndataset: d.yaml\nalgorithm: random_forest\n")
    with pytest.raises(ConfigError) as err:
        load_model_config(bad)
    assert str(bad) in str(err.value) and "algorithm" in str(err.value)
    bad.write_text("name: x\ndataset: d.yaml\nparams: {C: 1, learnin_rate: 0.1}\n")
    with pytest.raises(ConfigError) as err:
        load_model_config(bad)
    assert "learnin_rate" in str(err.value)


def test_out_of_time_split_is_by_time_and_whole_months() -> None:
    df, _ = frame()
    cfg = ModelConfig(name="m", dataset="d.yaml").split
    s = out_of_time_split(df, "ts", "label", cfg)
    assert s.train["ts"].max() < s.validation["ts"].min()
    assert s.validation["ts"].max() < s.holdout["ts"].min()
    hold_start = pd.Timestamp(s.windows.holdout_start)
    assert (hold_start.day, hold_start.hour) == (1, 0)  # a vintage boundary
    # The holdout is exactly the newest 3 calendar months.
    months = s.holdout["ts"].dt.tz_localize(None).dt.to_period("M").unique()
    assert len(months) == 3 and months.max() == df["ts"].max().tz_localize(None).to_period("M")
    assert len(s.train) + len(s.validation) + len(s.holdout) == len(df)


def test_split_too_small_is_bad_input() -> None:
    df, _ = frame(n=300)
    cfg = ModelConfig(name="m", dataset="d.yaml", split={"min_rows": 200}).split
    with pytest.raises(BadInputError, match="holdout window has"):
        out_of_time_split(df, "ts", "label", cfg)


def _fit(algorithm: str, reference: str = "mean"):
    df, y = frame()
    cfg = ModelConfig(
        name="m",
        dataset="d.yaml",
        algorithm=algorithm,
        reason_codes={"reference": reference},
    )
    return fit_pd_model(cfg, NUMERIC, CATEGORICAL, df[:2000], y[:2000], df[2000:], y[2000:]), df


@pytest.mark.parametrize("reference", ["mean", "median"])
def test_lr_reason_codes_add_up_to_the_logit(reference: str) -> None:
    from mlgate.training.reason_codes import linear_contributions

    model, df = _fit("logistic_regression", reference)
    rows = df[2000:2500]
    contrib, ref_logit = linear_contributions(model, rows)
    np.testing.assert_allclose(contrib.sum(axis=1) + ref_logit, model.logit(rows), atol=1e-9)
    # Calibration is monotone: PD ranks exactly as the logit does.
    order_pd = np.argsort(model.predict_pd(rows), kind="stable")
    order_logit = np.argsort(model.logit(rows), kind="stable")
    assert (order_pd == order_logit).all()


def test_reason_codes_are_the_largest_adverse_contributions() -> None:
    from mlgate.training.reason_codes import linear_contributions

    model, df = _fit("logistic_regression")
    rows = df[2000:2200].reset_index(drop=True)
    contrib, _ = linear_contributions(model, rows)
    codes = reason_codes(model, rows, top_k=2)
    for i, rc in enumerate(codes):
        expected = [model.features[j] for j in np.argsort(-contrib[i])[:2] if contrib[i, j] > 0]
        assert [c.feature for c in rc] == expected
        for c in rc:
            if c.feature == "purpose":  # categorical: the code names the category
                assert c.code == f"purpose={rows.loc[i, 'purpose']}"
    # The riskiest purpose shows up as a reason for someone.
    assert any(c.code == "purpose=debt_consolidation" for rc in codes for c in rc)


def test_tree_reason_codes_are_one_at_a_time_substitutions() -> None:
    model, df = _fit("hist_gradient_boosting")
    rows = df[2000:2050].reset_index(drop=True)
    contrib = substitution_contributions(model, rows)
    j = model.features.index("dti")
    swapped = rows.copy()
    swapped["dti"] = model.reference_raw["dti"]
    np.testing.assert_allclose(contrib[:, j], model.logit(rows) - model.logit(swapped), atol=1e-12)
    assert any(rc for rc in reason_codes(model, rows))


def test_missing_feature_column_is_bad_input() -> None:
    model, df = _fit("logistic_regression")
    with pytest.raises(BadInputError, match="dti"):
        model.predict_pd(df.drop(columns=["dti"]))
