"""Training works on an external dataset (a CSV + a dataset config) with no code change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlgate.config import load_settings
from mlgate.training.model_config import load_model_config
from mlgate.training.registry import load_scorer, version_lineage
from mlgate.training.train import train_model


def _write_dataset(root: Path, n: int = 2400) -> Path:
    rng = np.random.default_rng(5)
    ts = pd.Timestamp("2023-01-01", tz="UTC") + pd.to_timedelta(
        np.sort(rng.integers(0, 540 * 24 * 3600, n)), unit="s"
    )
    df = pd.DataFrame(
        {
            "loan_id": [f"L{i:05d}" for i in range(n)],
            "customer": [f"C{i:05d}" for i in range(n)],  # one loan per customer
            "applied_at": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "income": rng.lognormal(10.4, 0.5, n).round(2),
            "dti": rng.uniform(0, 0.9, n).round(4),
            "region": rng.choice(["north", "south", "east"], n),
            "gender": rng.choice(["F", "M"], n),
        }
    )
    logit = -3 + 3.5 * df["dti"] - 0.6 * (np.log(df["income"]) - 10.4) + (df["region"] == "south")
    df["bad"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    df.to_csv(root / "loans.csv", index=False)
    (root / "loans.yaml").write_text(
        "name: loans\npath: loans.csv\nentity_key: customer\nrow_key: loan_id\n"
        "event_timestamp: applied_at\nlabel: bad\nnumeric_features: [income, dti]\n"
        "categorical_features: [region]\nprotected_attributes: [gender]\n"
        "protected_path: loans.csv\n"
    )
    model = root / "loans_model.yaml"
    model.write_text(
        "name: loans_pd\ndataset: loans.yaml\nalgorithm: logistic_regression\n"
        "split: {holdout_months: 3, validation_months: 2, min_rows: 100}\ncutoff: 0.2\n"
    )
    return model


def test_external_csv_dataset_trains_and_registers(tmp_path: Path) -> None:
    model_path = _write_dataset(tmp_path)
    settings = load_settings(workspace=str(tmp_path / "ws"))
    result = train_model(settings, load_model_config(model_path))
    assert result.model == "loans_pd" and result.version == "1"
    assert result.metrics.auc > 0.6  # the signal is real, the pipeline learns it
    lin = version_lineage(settings, "loans_pd", "1")
    assert lin.feature_service == "loans_features" and lin.feature_views == ["loans_view"]
    scorer = load_scorer(settings, "loans_pd", "1")
    assert scorer.features == ["income", "dti", "region"]  # gender: fairness only, never input
    row = pd.DataFrame([{"income": 20000.0, "dti": 0.85, "region": "south"}])
    codes = scorer.reason_codes(row)[0]
    assert {c.code for c in codes} >= {"dti:higher", "region=south"}
