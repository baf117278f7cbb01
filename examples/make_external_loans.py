"""Write examples/external_loans.csv: a small loan book from "another system".

It stands for data mlgate did not generate: different column names, protected attributes in
the same file (age as a number, banded by the config's `derived_attributes`), ISO timestamps
as text. `config/datasets/example_external.yaml` describes it, and
`mlgate data validate config/datasets/example_external.yaml` checks it with no code change.
Run: python examples/make_external_loans.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

N = 400


def make(seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(N)
    income = np.round(np.exp(10.8 + 0.4 * z + 0.3 * rng.standard_normal(N)), -2)
    dti = np.clip(np.exp(np.log(0.3) - 0.3 * z + 0.4 * rng.standard_normal(N)), 0.01, 2.5)
    util = 1 / (1 + np.exp(0.6 + 0.8 * z - 0.7 * rng.standard_normal(N)))
    score = np.clip(100 / (1 + np.exp(-(3.2 + 0.9 * z))), 0, 100).round(1)
    logit = -3.2 + 1.2 * np.log(dti / 0.3) + 1.5 * util - 0.5 * z
    default = (rng.random(N) < 1 / (1 + np.exp(-logit))).astype(int)
    applied = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(
        np.sort(rng.integers(0, 365 * 24 * 3600, N)), unit="s"
    )
    return pd.DataFrame(
        {
            "loan_id": [f"L{i:05d}" for i in range(N)],
            "customer_id": [f"C{i:05d}" for i in rng.permutation(N)],
            "applied_at": applied.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "loan_amount": np.round(income * rng.uniform(0.05, 0.4, N), -1),
            "annual_income": income,
            "debt_to_income_ratio": dti.round(4),
            "credit_utilization": util.round(4),
            "payment_score": score,
            "home_ownership": rng.choice(["rent", "mortgage", "own"], N, p=[0.4, 0.45, 0.15]),
            "loan_purpose": rng.choice(["car", "debt_consolidation", "personal"], N),
            "gender": rng.choice(["F", "M"], N),
            "age": rng.integers(18, 80, N),  # a number: the config derives age bands from it
            "defaulted": default,
        }
    )


if __name__ == "__main__":
    out = Path(__file__).with_name("external_loans.csv")
    make().to_csv(out, index=False)
    print(f"wrote {out}")
