"""A registered version: lineage, aliases, model card, reproduction, explain (session fixture)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from mlgate.cli import app
from mlgate.config import REPO_ROOT
from mlgate.data.fingerprint import fingerprint
from mlgate.errors import BadInputError
from mlgate.training.model_card import ModelCardData, render_markdown
from mlgate.training.registry import (
    _download,
    load_holdout,
    load_scorer,
    load_training_set,
    version_lineage,
)
from mlgate.training.track import card_dir, fetch_card
from mlgate.training.train import reproduce_version
from tests.fixtures.registry import RegisteredModel


def _client(reg: RegisteredModel) -> MlflowClient:
    uri = reg.settings.mlflow_tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_version_carries_every_lineage_field(registered_model: RegisteredModel) -> None:
    reg = registered_model
    lin = version_lineage(reg.settings, reg.model, reg.version)
    assert lin.run_id == reg.run_id
    world = reg.settings.ws().data_dir / "world"
    assert lin.data_fingerprint == fingerprint(world.resolve()).sha256
    assert lin.feature_service == "credit_risk_v1"
    assert lin.feature_views == ["bureau_features", "transaction_features"]
    assert lin.dataset == "credit_world"
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout.strip()
    assert lin.git_commit.removesuffix("-dirty") == head
    # The stored training set is the content its fingerprint names.
    full = load_training_set(reg.settings, reg.model, reg.version, window="all")
    assert fingerprint(full).sha256 == lin.training_set_fingerprint
    assert lin.training_set_uri.endswith(f"{lin.training_set_fingerprint}.parquet")
    tags = _client(reg).get_model_version(reg.model, reg.version).tags
    for key in ("data_fingerprint", "feature_service", "git_commit", "training_set_fingerprint"):
        assert tags[key]
    run = _client(reg).get_run(reg.run_id)
    assert run.data.params["data_fingerprint"] == lin.data_fingerprint
    assert 0.5 < run.data.metrics["holdout_auc"] <= 1.0
    assert {"holdout_ks", "holdout_brier", "holdout_gini", "holdout_approval_rate"} <= set(
        run.data.metrics
    )


def test_alias_challenger_and_no_champion(registered_model: RegisteredModel) -> None:
    reg = registered_model
    rm = _client(reg).get_registered_model(reg.model)
    assert {k: str(v) for k, v in rm.aliases.items()} == {"challenger": reg.version}
    assert load_scorer(reg.settings, reg.model, "challenger").version == reg.version


def test_training_set_is_out_of_time_approved_and_matured(
    registered_model: RegisteredModel,
) -> None:
    reg = registered_model
    train = load_training_set(reg.settings, reg.model, reg.version)
    holdout = load_holdout(reg.settings, reg.model, reg.version)
    ts = "application_timestamp"
    assert train[ts].max() < holdout[ts].min()
    assert set(train["application_id"]).isdisjoint(holdout["application_id"])
    for part in (train, holdout):
        assert (part["bank_decision"] == "approved").all()  # declined applicants excluded
        assert part["default_12m"].notna().all()  # matured only
    assert len(holdout) == reg.result.windows.holdout_rows == reg.result.metrics.n


def test_scorer_predicts_what_was_evaluated(registered_model: RegisteredModel) -> None:
    reg = registered_model
    scorer = load_scorer(reg.settings, reg.model, reg.version)
    holdout = load_holdout(reg.settings, reg.model, reg.version)
    pd_ = scorer.predict_pd(holdout)
    stored = pd.read_parquet(
        _download(reg.settings, f"runs:/{reg.run_id}/evaluation/holdout_predictions.parquet")
    )
    np.testing.assert_array_equal(pd_, stored["pd"].to_numpy())
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(holdout["default_12m"], pd_) == reg.result.metrics.auc
    # Reason codes are consistent with the score: contributions + reference == logit.
    pm = scorer.python_model
    contrib, ref = pm.contributions(holdout.head(50))
    np.testing.assert_allclose(contrib.sum(axis=1) + ref, pm.logit(holdout.head(50)), atol=1e-9)


def test_model_card_is_logged_and_reproducible(registered_model: RegisteredModel) -> None:
    reg = registered_model
    data = ModelCardData.model_validate_json(
        _download(reg.settings, f"runs:/{reg.run_id}/model_card/model_card_data.json").read_text()
    )
    logged_md = _download(reg.settings, f"runs:/{reg.run_id}/model_card/model_card.md")
    assert render_markdown(data) == logged_md.read_text()
    html = reg.workspace / "reports" / "model_cards" / "credit_risk-v1" / "model_card.html"
    text = html.read_text()
    assert "Declined applicants are excluded" in text
    assert text.count("data:image/png;base64,") == 2  # ROC + calibration
    assert data.version == reg.version and data.fairness
    attrs = {g.attribute for g in data.fairness}
    assert attrs == {"age_band", "sex", "marital_status"}
    rates = {g.group: g.approval_rate for g in data.fairness if g.attribute == "sex"}
    assert all(0 <= r <= 1 for r in rates.values()) and len(rates) == 2


def test_a_card_only_mlflow_holds_is_fetched_into_another_workspace(
    registered_model: RegisteredModel, tmp_path
) -> None:
    """A version a pipeline task trained has its card in MLflow only (the task's workspace is
    gone): `fetch_card` copies it where the workspace's reports keep cards."""
    reg = registered_model
    there = reg.settings.model_copy(
        update={
            "workspace": str(tmp_path / "ws"),
            "mlflow": reg.settings.mlflow.model_copy(
                update={"tracking_uri": reg.settings.mlflow_tracking_uri()}
            ),
        }
    )
    html = fetch_card(there, reg.model, reg.version)
    assert html == tmp_path / "ws" / "reports" / "model_cards" / f"credit_risk-v{reg.version}" / (
        "model_card.html"
    )
    logged = _download(reg.settings, f"runs:/{reg.run_id}/model_card/model_card.html")
    assert html.read_text() == logged.read_text()
    assert fetch_card(there, reg.model, reg.version) == html  # again: replaced, not nested
    assert sorted(p.name for p in html.parent.iterdir()) == [
        "model_card.html", "model_card.md", "model_card_data.json"]  # fmt: skip
    assert [p.name for p in html.parent.parent.iterdir()] == [html.parent.name]  # no temp left


@pytest.mark.parametrize(("model", "version"), [("../../escaped", "1"), ("credit_risk", "1/../..")])
def test_a_card_folder_is_never_a_path_the_names_choose(
    registered_model: RegisteredModel, model: str, version: str
) -> None:
    with pytest.raises(BadInputError, match="not a plain name"):
        card_dir(registered_model.settings, model, version)


def test_reproduction_matches(registered_model: RegisteredModel) -> None:
    reg = registered_model
    res = reproduce_version(reg.settings, f"{reg.model}/{reg.version}")
    assert res.holdout_identical is True and res.holdout_max_abs_diff == 0.0
    assert res.training_set_fingerprint == reg.result.training_set_fingerprint
    assert res.training_set_source.startswith("feast")
    assert res.version is None  # reproduction registers nothing
    aliases = _client(reg).get_registered_model(reg.model).aliases
    assert {k: str(v) for k, v in aliases.items()} == {"challenger": reg.version}


def test_explain_cli_json(registered_model: RegisteredModel, tmp_path) -> None:
    reg = registered_model
    holdout = load_holdout(reg.settings, reg.model, reg.version)
    scorer = load_scorer(reg.settings, reg.model, reg.version)
    worst = holdout.iloc[[int(np.argmax(scorer.predict_pd(holdout)))]]
    payload = json.loads(worst[scorer.features].to_json(orient="records"))[0]
    src = tmp_path / "app.json"
    src.write_text(json.dumps(payload))
    args = ["--workspace", str(reg.workspace), "explain", "--version", "challenger"]
    res = CliRunner().invoke(app, [*args, "--json-input", str(src), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["decision"] == "decline" and out["pd"] >= out["cutoff"]
    assert 1 <= len(out["reason_codes"]) <= 4
    assert all(rc["contribution"] > 0 for rc in out["reason_codes"])
    by_id = CliRunner().invoke(
        app, [*args, "--application-id", str(worst["application_id"].iloc[0]), "--json"]
    )
    assert by_id.exit_code == 0, by_id.output
    assert json.loads(by_id.stdout)["pd"] == pytest.approx(out["pd"], rel=1e-6)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({k: v for k, v in payload.items() if k != "annual_income"}))
    res = CliRunner().invoke(app, [*args, "--json-input", str(bad)])
    assert isinstance(res.exception, BadInputError) and "annual_income" in str(res.exception)
    assert res.exception.exit_code == 2
