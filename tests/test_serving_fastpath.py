"""The numpy fast path scores exactly like the sklearn pipeline it was read from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlgate.errors import BadInputError
from mlgate.training.fastpath import LinearFastPath
from mlgate.training.model_config import ModelConfig
from mlgate.training.pipeline import PDModel, fit_pd_model
from mlgate.training.reason_codes import reason_codes

NUMERIC = ["income", "debt_to_income", "utilization", "months_on_book"]
CATEGORICAL = ["loan_purpose", "housing"]


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "income": rng.lognormal(10.5, 0.4, n),
            "debt_to_income": rng.uniform(0, 0.8, n),
            "utilization": rng.uniform(0, 1, n),
            "months_on_book": rng.integers(1, 240, n).astype(float),
            "loan_purpose": rng.choice(["car", "home", "debt_consolidation", "other"], n),
            "housing": rng.choice(["rent", "own", "mortgage"], n).astype(object),
        }
    )
    logit = -2.0 + 3 * df["debt_to_income"] + 1.5 * df["utilization"]
    logit += 0.6 * (df["loan_purpose"] == "debt_consolidation") - 0.4 * (df["housing"] == "own")
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    # missing values in training too, so None is a fitted category of `housing`
    df.loc[rng.uniform(size=n) < 0.05, "housing"] = None
    df.loc[rng.uniform(size=n) < 0.05, "utilization"] = np.nan
    return df, y


def _fit(calibration: str, reference: str = "mean") -> PDModel:
    df, y = _frame(1500, seed=3)
    cfg = ModelConfig.model_validate(
        {
            "name": "fp",
            "dataset": "synthetic.yaml",
            "calibration": calibration,
            "reason_codes": {"reference": reference},
        }
    )
    return fit_pd_model(cfg, NUMERIC, CATEGORICAL, df[:1000], y[:1000], df[1000:], y[1000:])


def _scoring_rows() -> pd.DataFrame:
    """300 rows with missing numerics, missing and unseen categories."""
    df, _ = _frame(300, seed=99)
    rng = np.random.default_rng(7)
    for col in NUMERIC:
        df.loc[rng.uniform(size=len(df)) < 0.1, col] = np.nan
    df.loc[rng.uniform(size=len(df)) < 0.1, "loan_purpose"] = "boat"  # never seen in training
    df.loc[rng.uniform(size=len(df)) < 0.1, "loan_purpose"] = None
    df.loc[rng.uniform(size=len(df)) < 0.1, "housing"] = "castle"
    return df


def _columns(df: pd.DataFrame) -> dict[str, list]:
    return {c: df[c].tolist() for c in df.columns}


@pytest.mark.parametrize(
    ("calibration", "reference"), [("sigmoid", "mean"), ("isotonic", "median")]
)
def test_fast_path_matches_the_sklearn_pipeline(calibration: str, reference: str) -> None:
    model = _fit(calibration, reference)
    fast = LinearFastPath.from_model(model)
    assert fast is not None
    rows = _scoring_rows()
    scored = fast.score(_columns(rows))

    np.testing.assert_allclose(scored.pd, model.predict_pd(rows), rtol=0, atol=1e-12)
    np.testing.assert_allclose(scored.logit, model.logit(rows), rtol=0, atol=1e-12)
    assert scored.pd.std() > 0.01  # the rows really differ

    expected = reason_codes(model, rows, top_k=4)
    got = fast.reason_codes(scored, top_k=4)
    assert [[c.code for c in r] for r in got] == [[c.code for c in r] for r in expected]
    assert any(len(r) == 4 for r in got)
    for g_row, e_row in zip(got, expected, strict=True):
        for g, e in zip(g_row, e_row, strict=True):
            assert g.model_dump(exclude={"contribution"}) == e.model_dump(exclude={"contribution"})
            assert g.contribution == pytest.approx(e.contribution, abs=1e-12)
    # additivity, as for the sklearn attribution
    np.testing.assert_allclose(
        scored.contributions.sum(axis=1) + fast.reference_logit, scored.logit, atol=1e-9
    )


def test_single_rows_score_like_the_batch() -> None:
    model = _fit("sigmoid")
    fast = LinearFastPath.from_model(model)
    assert fast is not None
    rows = _scoring_rows().head(20)
    batch = fast.score(_columns(rows)).pd
    single = [fast.predict_pd(_columns(rows.iloc[[i]]))[0] for i in range(len(rows))]
    np.testing.assert_allclose(single, batch, rtol=0, atol=1e-15)


def test_bad_input_names_the_column() -> None:
    model = _fit("sigmoid")
    fast = LinearFastPath.from_model(model)
    assert fast is not None
    cols = _columns(_scoring_rows().head(2))
    with pytest.raises(BadInputError, match="income"):
        fast.score({**cols, "income": ["lots", 1.0]})
    with pytest.raises(BadInputError, match="housing"):
        fast.score({k: v for k, v in cols.items() if k != "housing"})


def test_tree_models_keep_the_sklearn_path() -> None:
    df, y = _frame(600, seed=5)
    cfg = ModelConfig.model_validate(
        {"name": "fp", "dataset": "synthetic.yaml", "algorithm": "hist_gradient_boosting"}
    )
    model = fit_pd_model(cfg, NUMERIC, CATEGORICAL, df[:400], y[:400], df[400:], y[400:])
    assert LinearFastPath.from_model(model) is None


def _runtime(model: PDModel, fast: bool):  # type: ignore[no-untyped-def]
    from mlserver.settings import ModelSettings

    from mlgate.serving.contract import ServingSettings, feature_rules
    from mlgate.serving.runtime import CreditRiskRuntime
    from mlgate.training.pyfunc import CreditRiskModel

    rt = CreditRiskRuntime(ModelSettings(name="credit_risk", implementation=CreditRiskRuntime))
    rt._model = CreditRiskModel(model, model_name="credit_risk", cutoff=0.15)
    rt._features = list(rt._model.features)
    rt._rules, rt._limits = feature_rules(model, {}), ServingSettings(max_missing_share=0.5)
    rt._model_version, rt._top_k, rt._cutoff, rt._feast = "7", 4, 0.15, None
    rt._fast = LinearFastPath.from_model(model) if fast else None
    return rt


def _outputs(response):  # type: ignore[no-untyped-def]
    """The response's outputs as lists, BYTES decoded as the REST and gRPC clients see them."""
    from mlserver.codecs import StringCodec

    return {
        o.name: StringCodec.decode_output(o) if o.datatype == "BYTES" else o.data.root
        for o in response.outputs
    }


def test_runtime_fast_path_answers_like_the_sklearn_path() -> None:
    import asyncio
    import json

    from mlserver.types import InferenceRequest

    from mlgate.serving import client
    from mlgate.serving.runtime import BadRequest

    model = _fit("sigmoid")
    fast, slow = _runtime(model, fast=True), _runtime(model, fast=False)
    assert fast._fast is not None
    rows = _scoring_rows().head(40)
    requests = [rows.iloc[[i]] for i in range(len(rows))] + [rows]  # singles and a batch
    loop = asyncio.new_event_loop()
    try:
        for df in requests:
            req = InferenceRequest.model_validate(client.v2_request(df))
            a, b = (_outputs(loop.run_until_complete(rt.predict(req))) for rt in (fast, slow))
            # unseen categories ("boat", "castle") are referred by both paths: no PD
            assert [np.isnan(p) for p in a["pd"]] == [np.isnan(p) for p in b["pd"]]
            np.testing.assert_allclose(
                [p for p in a["pd"] if not np.isnan(p)], [p for p in b["pd"] if not np.isnan(p)],
                rtol=0, atol=1e-12,
            )  # fmt: skip
            assert a["decision"] == b["decision"] and a["model_version"] == ["7"] * len(df)
            codes = [
                [[c["code"] for c in json.loads(r)] for r in out["reason_codes"]] for out in (a, b)
            ]
            assert codes[0] == codes[1]
        referred = sum(np.isnan(p) for p in a["pd"])
        assert 0 < referred < len(rows)  # the batch held unseen categories and scored the rest
        bad = client.v2_request(rows.head(1).assign(income="lots"))
        with pytest.raises(BadRequest, match="income"):
            loop.run_until_complete(fast.predict(InferenceRequest.model_validate(bad)))
    finally:
        loop.close()


def test_runtime_keyed_requests_are_completed_from_the_store_and_score_the_same() -> None:
    """A request completed from the online store (here: a stand-in lookup) scores the same;
    values the store lacks (NaN) count as missing, not as non-finite input."""
    import asyncio

    from mlserver.types import InferenceRequest

    from mlgate.serving import client

    model = _fit("sigmoid")
    rt = _runtime(model, fast=True)
    rows = _scoring_rows().head(5).reset_index(drop=True)
    rows["loan_purpose"] = "car"  # known categories: every row is scored
    rows.loc[rows["housing"].isin(["castle"]), "housing"] = "own"
    rows.loc[0, "income"] = np.nan  # the store has no income for this applicant
    stored = rows[["income", "housing"]]
    rt._lookup = lambda keys, at: stored.assign(  # type: ignore[method-assign]
        housing=stored["housing"].astype("string")
    )
    keyed = rows.drop(columns=["income", "housing"]).assign(
        applicant_id=[f"A{i}" for i in range(5)]
    )
    req = InferenceRequest.model_validate(client.v2_request(keyed))
    loop = asyncio.new_event_loop()
    try:
        out = _outputs(loop.run_until_complete(rt.predict(req)))
    finally:
        loop.close()
    np.testing.assert_allclose(out["pd"], model.predict_pd(rows), rtol=0, atol=1e-12)


@pytest.mark.slow
def test_the_registered_default_model_is_served_by_the_fast_path(serving_env) -> None:
    """The trained + registered default model (real world, through MLflow) takes the fast path."""
    from mlgate.training.registry import load_scorer

    w = serving_env
    scorer = load_scorer(w.settings, w.model, w.version)
    model = scorer.python_model.pd_model
    fast = LinearFastPath.from_model(model)
    assert fast is not None and fast.features == w.features
    rows = w.offline[w.features].reset_index(drop=True)
    scored = fast.score(_columns(rows))
    np.testing.assert_allclose(scored.pd, scorer.predict_pd(rows), rtol=0, atol=1e-12)
    expected = scorer.python_model.reason_codes(rows, top_k=4)
    got = fast.reason_codes(scored, top_k=4)
    assert [[c.code for c in r] for r in got] == [[c.code for c in r] for r in expected]
