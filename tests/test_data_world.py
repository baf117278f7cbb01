"""The synthetic credit world: deterministic, realistic by measurement, scenarios that bite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlgate.data import schema as S
from mlgate.data.world import WorldManifest, WorldSpec, generate_world, load_world_spec
from mlgate.errors import BadInputError, ConfigError


def psi(ref: np.ndarray, cur: np.ndarray, bins: int = 10) -> float:
    """Population stability index on reference-decile bins (unique values if few)."""
    ref = ref[~np.isnan(ref)]
    cur = cur[~np.isnan(cur)]
    uniq = np.unique(ref)
    if uniq.size <= bins:
        edges = np.concatenate([[-np.inf], (uniq[:-1] + uniq[1:]) / 2, [np.inf]])
    else:
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
    p = np.clip(np.histogram(ref, edges)[0] / ref.size, 1e-4, None)
    q = np.clip(np.histogram(cur, edges)[0] / cur.size, 1e-4, None)
    return float(np.sum((q - p) * np.log(q / p)))


def load(world: Path, table: str) -> pd.DataFrame:
    return pd.read_parquet(world / f"{table}.parquet")


def asof_features(world: Path) -> pd.DataFrame:
    """Applications with the features they saw: point-in-time join with the schema's TTLs."""
    frame = load(world, S.APPLICATIONS).sort_values(S.APPLICATION_TS)
    for table, feats, ttl in (
        (S.BUREAU, S.BUREAU_FEATURES, S.BUREAU_TTL_DAYS),
        (S.TRANSACTIONS, S.TRANSACTION_FEATURES, S.TRANSACTION_TTL_DAYS),
    ):
        right = load(world, table).sort_values(S.EVENT_TS)[[S.APPLICANT_ID, S.EVENT_TS, *feats]]
        frame = pd.merge_asof(
            frame,
            right,
            left_on=S.APPLICATION_TS,
            right_on=S.EVENT_TS,
            by=S.APPLICANT_ID,
            direction="backward",
            tolerance=pd.Timedelta(days=ttl),
        ).drop(columns=[S.EVENT_TS])
    return frame


def month(ts: pd.Series) -> pd.Series:
    return ts.dt.strftime("%Y-%m")


def test_same_seed_same_world_other_seed_differs(tmp_path: Path) -> None:
    spec = WorldSpec(n_applications=3000, months=12, start="2024-01-01", seed=5)
    a = generate_world(spec, tmp_path / "a")
    b = generate_world(spec, tmp_path / "b")
    c = generate_world(spec.model_copy(update={"seed": 6}), tmp_path / "c")
    fps = {name: info.fingerprint for name, info in a.tables.items()}
    assert fps == {name: info.fingerprint for name, info in b.tables.items()}
    assert all(c.tables[name].fingerprint != fp for name, fp in fps.items())
    assert WorldManifest.model_validate_json((tmp_path / "a" / "manifest.json").read_text()) == a


def test_tables_follow_the_schema(small_world: tuple[Path, WorldManifest]) -> None:
    world, manifest = small_world
    for table in S.TABLES:
        assert (world / f"{table}.parquet").is_file()
        assert manifest.tables[table].rows == len(load(world, table))
    apps = load(world, S.APPLICATIONS)
    assert str(apps[S.APPLICATION_TS].dtype) == "datetime64[us, UTC]"
    assert apps[S.APPLICATION_ID].is_unique
    assert set(apps[S.BANK_DECISION]) == {S.APPROVED, S.DECLINED}
    for table, feats in ((S.BUREAU, S.BUREAU_FEATURES), (S.TRANSACTIONS, S.TRANSACTION_FEATURES)):
        df = load(world, table)
        for col in (S.EVENT_TS, S.CREATED_TS):
            assert str(df[col].dtype) == "datetime64[us, UTC]"
        assert (df[S.CREATED_TS] >= df[S.EVENT_TS]).all()
        assert not df.duplicated([S.APPLICANT_ID, S.EVENT_TS]).any()
        assert set(feats) <= set(df.columns)
    bureau = load(world, S.BUREAU)
    np.testing.assert_allclose(
        bureau["debt_to_income_ratio"], bureau["total_debt"] / bureau["annual_income"]
    )
    np.testing.assert_allclose(
        bureau["credit_utilization"], bureau["credit_card_balance"] / bureau["credit_limit"]
    )
    np.testing.assert_allclose(
        bureau["payment_score"], bureau["on_time_payments"] / bureau["total_payments"] * 100
    )


def test_protected_attributes_are_never_features(small_world: tuple[Path, WorldManifest]) -> None:
    world, _ = small_world
    for table in (S.APPLICATIONS, S.BUREAU, S.TRANSACTIONS, S.OUTCOMES):
        assert not set(S.PROTECTED_ATTRIBUTES) & set(load(world, table).columns), table
    prot = load(world, S.PROTECTED)
    assert list(prot.columns) == [S.APPLICANT_ID, *S.PROTECTED_ATTRIBUTES]
    assert prot[S.APPLICANT_ID].is_unique
    assert set(prot["sex"]) == {"F", "M"}
    assert prot["age_band"].nunique() == 5


def test_outcomes_only_for_approved_and_closed_windows(
    small_world: tuple[Path, WorldManifest],
) -> None:
    world, manifest = small_world
    as_of = pd.Timestamp(manifest.as_of, tz="UTC")
    apps = load(world, S.APPLICATIONS)
    out = load(world, S.OUTCOMES).merge(apps, on=S.APPLICATION_ID, how="left")
    assert (out[S.BANK_DECISION] == S.APPROVED).all()
    assert (out[S.EARLY_OBSERVED_TS] <= as_of).all()
    matured = out[S.LABEL].notna()
    assert (out.loc[matured, S.LABEL_OBSERVED_TS] <= as_of).all()
    assert out.loc[~matured, S.LABEL_OBSERVED_TS].isna().all()
    window = out[S.APPLICATION_TS] + pd.DateOffset(months=12)
    # every approved application whose 12-month window closed has its label, and only those
    assert (matured == (window <= as_of)).all()
    assert (out.loc[matured, S.LABEL_OBSERVED_TS] == window[matured]).all()
    due = apps[
        (apps[S.BANK_DECISION] == S.APPROVED)
        & (apps[S.APPLICATION_TS] + pd.DateOffset(months=3) <= as_of)
    ]
    assert due[S.APPLICATION_ID].isin(out[S.APPLICATION_ID]).all()


def test_realistic_rates_and_early_delinquency(small_world: tuple[Path, WorldManifest]) -> None:
    world, manifest = small_world
    out = load(world, S.OUTCOMES)
    matured = out[out[S.LABEL].notna()]
    assert 0.02 <= matured[S.LABEL].mean() <= 0.10
    assert 0.60 <= manifest.approval_rate_observed <= 0.75
    # early delinquency is observed sooner and flags defaulters far more often
    early_bad = matured.loc[matured[S.LABEL] == 1, S.EARLY_LABEL].mean()
    early_good = matured.loc[matured[S.LABEL] == 0, S.EARLY_LABEL].mean()
    assert early_bad > 5 * early_good
    # the bank's decision selected lower-risk applicants: declined ones default more (oracle)
    oracle = load(world, S.ORACLE).merge(load(world, S.APPLICATIONS), on=S.APPLICATION_ID)
    by = oracle.groupby(S.BANK_DECISION)["true_pd"].mean()
    assert by[S.DECLINED] > 1.5 * by[S.APPROVED]


def test_logistic_regression_out_of_time_auc(small_world: tuple[Path, WorldManifest]) -> None:
    world, _ = small_world
    frame = asof_features(world)
    missing = frame[S.MODEL_NUMERIC_FEATURES].isna().mean()
    assert missing.max() <= 0.05 and missing.max() > 0  # some thin files, within the limit
    data = frame.merge(load(world, S.OUTCOMES), on=S.APPLICATION_ID)
    data = data[data[S.LABEL].notna()]
    months = sorted(month(data[S.APPLICATION_TS]).unique())
    train = data[month(data[S.APPLICATION_TS]) < months[12]]
    test = data[month(data[S.APPLICATION_TS]) >= months[12]]
    feats = S.MODEL_NUMERIC_FEATURES
    model = make_pipeline(
        SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=500)
    ).fit(train[feats], train[S.LABEL])
    auc = roc_auc_score(test[S.LABEL], model.predict_proba(test[feats])[:, 1])
    assert 0.70 <= auc <= 0.85, auc


def latest_features(world: Path) -> pd.DataFrame:
    """Each application with its newest bureau and transaction rows (all precede it)."""
    apps = load(world, S.APPLICATIONS)
    for table in (S.BUREAU, S.TRANSACTIONS):
        df = load(world, table).sort_values(S.EVENT_TS).groupby(S.APPLICANT_ID).tail(1)
        apps = apps.merge(
            df.drop(columns=[S.EVENT_TS, S.CREATED_TS]), on=S.APPLICANT_ID, how="left"
        )
    return apps


@pytest.fixture(scope="module")
def psi_worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    root = tmp_path_factory.mktemp("psi")
    out = {}
    for name in ("baseline", "covariate_drift", "concept_drift", "bias"):
        spec = load_world_spec([name], n_applications=60_000, months=30, seed=21)
        generate_world(spec, root / name)
        frame = latest_features(root / name)
        frame = frame.merge(load(root / name, S.ORACLE), on=S.APPLICATION_ID)
        out[name] = frame.merge(load(root / name, S.PROTECTED), on=S.APPLICANT_ID)
    return out


def test_baseline_is_stable_month_to_month(psi_worlds: dict[str, pd.DataFrame]) -> None:
    frame = psi_worlds["baseline"]
    m = month(frame[S.APPLICATION_TS])
    months = sorted(m.unique())
    worst = {
        f: max(
            psi(frame.loc[m == a, f].to_numpy(float), frame.loc[m == b, f].to_numpy(float))
            for a, b in zip(months, months[1:], strict=False)
        )
        for f in S.MODEL_NUMERIC_FEATURES
    }
    assert max(worst.values()) < 0.1, worst


def test_covariate_drift_moves_only_named_features(psi_worlds: dict[str, pd.DataFrame]) -> None:
    frame = psi_worlds["covariate_drift"]
    spec = load_world_spec(["covariate_drift"])
    named = set(spec.scenarios[0].feature_shift)
    after = frame["scenario"] != "baseline"
    assert 0.1 < after.mean() < 0.3  # the last 6 of 30 months
    for f in S.MODEL_NUMERIC_FEATURES:
        value = psi(frame.loc[~after, f].to_numpy(float), frame.loc[after, f].to_numpy(float))
        if f in named:
            assert value > 0.25, (f, value)
        else:
            assert value < 0.1, (f, value)


def test_concept_drift_changes_the_relationship_not_the_features(
    psi_worlds: dict[str, pd.DataFrame],
) -> None:
    frame = psi_worlds["concept_drift"]
    after = frame["scenario"] != "baseline"

    def slope_ratio(frame: pd.DataFrame, after: pd.Series) -> float:
        """How much more log-odds of default one unit of log(DTI) brings after vs before."""
        logit = np.log(frame["true_pd"] / (1 - frame["true_pd"]))
        x = np.log(frame["debt_to_income_ratio"])
        ok = x.notna()
        before_slope = np.polyfit(x[ok & ~after], logit[ok & ~after], 1)[0]
        return float(np.polyfit(x[ok & after], logit[ok & after], 1)[0] / before_slope)

    assert slope_ratio(frame, after) > 1.4
    base = psi_worlds["baseline"]
    assert abs(slope_ratio(base, base[S.APPLICATION_TS] >= "2024-11-01") - 1) < 0.15
    for f in S.MODEL_NUMERIC_FEATURES:
        value = psi(frame.loc[~after, f].to_numpy(float), frame.loc[after, f].to_numpy(float))
        assert value < 0.1, (f, value)


def test_bias_shifts_one_group(psi_worlds: dict[str, pd.DataFrame]) -> None:
    frame = psi_worlds["bias"]
    young = frame["age_band"] == "18-25"
    after = frame["scenario"] != "baseline"
    assert after.sum() == (young & (frame[S.APPLICATION_TS] >= "2025-01-01")).sum()

    def approval(mask: pd.Series) -> float:
        return float((frame.loc[mask, S.BANK_DECISION] == S.APPROVED).mean())

    assert approval(young & after) < approval(young & ~after) - 0.1
    assert (
        abs(approval(~young & (frame[S.APPLICATION_TS] >= "2025-01-01")) - approval(~young)) < 0.05
    )
    income = frame["annual_income"]
    assert income[young & after].median() < 0.85 * income[young & ~after].median()


def test_bad_scenarios_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "scenarios:\n  - {name: x, kind: covariate_drift, feature_shift: {shoe_size: 1.0}}\n"
    )
    with pytest.raises(ConfigError, match="shoe_size"):
        load_world_spec([str(bad)])
    with pytest.raises(BadInputError, match="unknown scenario 'nope'"):
        load_world_spec(["nope"])
    with pytest.raises(ConfigError, match="n_applications"):
        load_world_spec([], n_applications=-5)


def test_regeneration_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "world"
    first = generate_world(WorldSpec(n_applications=500, months=6, seed=1), out)
    # a world ending in the future is refused, and the existing world stays as it was
    with pytest.raises(BadInputError, match="future"):
        generate_world(WorldSpec(n_applications=500, start="2100-01-01", months=6), out)
    assert WorldManifest.model_validate_json((out / "manifest.json").read_text()) == first
    second = generate_world(WorldSpec(n_applications=700, months=6, seed=2), out)
    assert second.tables[S.APPLICATIONS].rows == 700
    assert sorted(p.name for p in tmp_path.iterdir()) == ["world"]  # no temp folders left


def test_cli_generate_into_workspace(workspace: Path) -> None:
    from typer.testing import CliRunner

    from mlgate.cli import app

    args = ["data", "generate", "--n", "2000", "--months", "18", "--seed", "4", "--json"]
    result = CliRunner().invoke(app, [*args, "--scenario", "bias"])
    assert result.exit_code == 0, result.output
    doc = WorldManifest.model_validate_json(result.stdout)
    assert Path(doc.out_dir) == (workspace / "data" / "world").resolve()
    assert doc.spec.name == "bias" and doc.spec.scenarios[0].kind == "bias"
    assert doc.tables[S.APPLICATIONS].rows == 2000
    oracle = load(Path(doc.out_dir), S.ORACLE)
    assert (oracle["scenario"] == "young_applicants_shift").any()
    bad = CliRunner().invoke(app, ["data", "generate", "--scenario", "no_such_scenario"])
    assert isinstance(bad.exception, BadInputError)
    assert "no_such_scenario" in str(bad.exception)
    late = CliRunner().invoke(app, ["data", "generate", "--scenario", "bias", "--months", "12"])
    assert isinstance(late.exception, BadInputError)
    assert "'young_applicants_shift' starts 2025-01-01, but the world ends" in str(late.exception)
