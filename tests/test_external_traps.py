"""A public-style credit table (1,000 loans, ~30% defaults, no customer id, sex hidden in a
personal-status code, age as a number) through validate -> train -> gates, trap by trap.

Each test performs the trap a new user met: row_key == entity_key, a model with no policy of
its own, a policy naming a column the data lacks, a misspelt label, protected attributes that
must be derived, windows made for 100k applications judging 1,000.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlgate.config import DEFAULT_POLICY_DIR, load_settings
from mlgate.data.dataset_config import load_dataset_config
from mlgate.data.protected import load_protected
from mlgate.data.windows import days_holding, split_months
from mlgate.errors import BadInputError, ConfigError
from mlgate.gates.collect import holdout_scores
from mlgate.gates.evaluate import run_gates
from mlgate.gates.inputs import HoldoutScores
from mlgate.gates.policy import GatePolicy, check_policy_columns, load_policy
from mlgate.training.registry import connect, resolve_version
from tests.gates_data import drift_data
from tests.gates_data import holdout as gates_holdout
from tests.test_gates_cli import _invoke

SEX = {"A91": "male", "A92": "female", "A93": "male", "A94": "male", "A95": "female"}


def test_the_table_looks_like_public_credit_data() -> None:
    df = german_frame()
    assert len(df) == 1000 and 0.25 < df["bad"].mean() < 0.38 and df["id"].is_unique


def german_frame(n: int = 1000, seed: int = 3) -> pd.DataFrame:
    """German-credit-like: coded categoricals, `personal_status` mixing sex and marital status,
    numeric age, one row per applicant keyed by `id`, applications over two years."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    months = rng.integers(4, 72, n)
    amount = np.round(np.exp(7.8 + 0.7 * rng.standard_normal(n)), 0)
    checking = rng.choice(["A11", "A12", "A13", "A14"], n)
    logit = (
        -1.5
        + 0.025 * (months - 20)
        + 0.3 * np.log(amount / 2500)
        - 0.8 * z
        + 0.6 * (checking == "A11")
    )
    ts = pd.Timestamp("2023-07-01", tz="UTC") + pd.to_timedelta(
        np.sort(rng.integers(0, 730 * 86400, n)), unit="s"
    )
    return pd.DataFrame(
        {
            "id": [f"R{i:04d}" for i in range(n)],
            "applied": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration_months": months,
            "credit_amount": amount,
            "installment_rate": rng.integers(1, 5, n),
            "checking_status": checking,
            "purpose": rng.choice(["A40", "A41", "A42", "A43"], n),
            "personal_status": rng.choice(
                ["A91", "A92", "A93", "A94"], n, p=[0.05, 0.31, 0.55, 0.09]
            ),
            "age": rng.integers(19, 76, n),
            "bad": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int),
        }
    )


def dataset_doc(**over: object) -> dict:
    doc = {
        "name": "german",
        "path": "german.csv",
        "entity_key": "id",
        "row_key": "id",  # no customer id: the row is the applicant
        "event_timestamp": "applied",
        "label": "bad",
        "numeric_features": ["duration_months", "credit_amount", "installment_rate"],
        "categorical_features": ["checking_status", "purpose"],
        "derived_attributes": {
            "sex": {"source": "personal_status", "map": SEX},
            "age_band": {
                "source": "age",
                "bands": {
                    "edges": [18, 26, 36, 51, float("inf")],
                    "labels": ["18-25", "26-35", "36-50", "51+"],
                },
            },
        },
    }
    doc.update(over)
    return doc


def policy_doc() -> dict:
    """A policy for this model: its amount column, floors left at their defaults except the
    drift/recent ones, windows left to be sized from the data."""
    return {
        "samples": {"min_current": 100, "min_recent": 100},
        "cost_model": {"amount_column": "credit_amount"},
        "fairness": {"min_group_size": 30},
    }


def write(root: Path, name: str, doc: dict) -> Path:
    path = root / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@dataclass(frozen=True)
class German:
    root: Path
    ws: Path
    dataset: Path
    policy: Path
    train_json: dict


@pytest.fixture(scope="module")
def german(tmp_path_factory: pytest.TempPathFactory) -> German:
    root = tmp_path_factory.mktemp("german")
    german_frame().to_csv(root / "german.csv", index=False)
    dataset = write(root, "german.yaml", dataset_doc())
    policy = write(root, "german_policy.yaml", policy_doc())
    ws = root / "ws"
    # v1: no policy named anywhere; v2: the model config names one.
    write(root, "model.yaml", {"name": "german_pd", "dataset": "german.yaml"})
    code, out, err = _invoke(
        ["--workspace", str(ws), "train", "-m", str(root / "model.yaml"), "--json"]
    )
    assert code == 0, err
    write(
        root,
        "model_with_policy.yaml",
        {"name": "german_pd", "dataset": "german.yaml", "policy": "german_policy.yaml"},
    )
    code2, _, err2 = _invoke(
        ["--workspace", str(ws), "train", "-m", str(root / "model_with_policy.yaml")]
    )
    assert code2 == 0, err2
    return German(root, ws, dataset, policy, json.loads(out))


def test_row_key_equal_to_entity_key_trains_and_registers(german: German) -> None:
    result = german.train_json
    assert result["model"] == "german_pd" and result["version"] == "1"
    assert (
        result["windows"]["train_rows"]
        + result["windows"]["validation_rows"]
        + result["windows"]["holdout_rows"]
        == 1000
    )  # every loan matured and approved: none lost to the key clash
    settings = load_settings(workspace=str(german.ws))
    assert resolve_version(connect(settings), "german_pd", "1").tags["dataset"] == "german"


def test_split_windows_are_sized_for_a_small_table(german: German) -> None:
    # 1,000 loans over two years: the 3-month holdout made for a bank's flow would hold ~125;
    # unset windows grow by whole months until each window holds split.min_rows (200).
    w = german.train_json["windows"]
    assert w["holdout_months"] > 3 and w["holdout_rows"] >= 200
    assert w["validation_rows"] >= 200 and w["train_rows"] >= 200


def test_model_without_its_own_policy_is_refused(german: German) -> None:
    assert not (DEFAULT_POLICY_DIR / "german_pd.yaml").exists()
    report = german.root / "no_policy_report"
    code, _, err = _invoke(
        ["--workspace", str(german.ws), "gates", "run", "--model", "german_pd",
         "--challenger", "1", "--env", "stage", "--report", str(report)]
    )  # fmt: skip
    assert code == 2
    assert "german_pd.yaml" in err and "--policy" in err and "credit_risk" not in err
    assert not report.exists()


def test_policy_naming_a_missing_column_is_bad_input(german: German) -> None:
    bad = write(
        german.root,
        "bad_policy.yaml",
        {**policy_doc(), "cost_model": {"amount_column": "loan_amount"}},
    )
    code, _, err = _invoke(
        ["--workspace", str(german.ws), "gates", "run", "--model", "german_pd",
         "--challenger", "2", "--env", "stage", "--policy", str(bad)]
    )  # fmt: skip
    assert code == 2
    assert str(bad) in err and "cost_model.amount_column" in err and "'loan_amount'" in err
    # The default amount column is a column too: a policy that leaves it unset is checked.
    unset = write(german.root, "unset_policy.yaml", {"fairness": {"attributes": ["gender"]}})
    code2, _, err2 = _invoke(
        ["--workspace", str(german.ws), "gates", "run", "--model", "german_pd",
         "--challenger", "2", "--env", "stage", "--policy", str(unset)]
    )  # fmt: skip
    assert code2 == 2 and "fairness.attributes" in err2 and "'gender'" in err2
    assert "'loan_amount'" in err2


def test_gates_use_the_named_policy_derived_groups_and_sized_windows(german: German) -> None:
    report_dir = german.root / "report"
    run = ["--workspace", str(german.ws), "gates", "run", "--model", "german_pd",
           "--challenger", "2", "--env", "stage", "--report", str(report_dir), "--json"]  # fmt: skip
    # The model config names a policy outside the reviewed config/policies: the gates do not
    # take the author's path as the policy in force (exit 2, naming the tag); --policy does.
    code, _, err = _invoke(run)
    assert code == 2 and "gate_policy of german_pd version 2" in " ".join(err.split()), err
    assert "--policy" in err and not report_dir.exists()
    code, out, err = _invoke([*run, "--policy", str(german.policy)])
    assert code in (1, 3), err  # a verdict (the holdout is below the 500-row floor)
    rep = json.loads((report_dir / "report.json").read_text())
    assert Path(rep["policy_file"]).resolve() == german.policy.resolve()
    gates = {g["name"]: g for g in rep["gates"]}
    # The floor reason names the window (its dates), its rows and the floor.
    perf = gates["performance"]["reasons"][0]
    assert perf.startswith("performance: holdout window (") and "floor 500" in perf
    holdout_rows = rep["data"]["holdout_labelled_rows"]
    assert f"has {holdout_rows} labelled rows" in perf
    # Drift's current window was sized from the data: 30 days hold ~40 of these loans.
    assert rep["data"]["current_rows"] >= 100
    start, end = (pd.Timestamp(t) for t in rep["data"]["current_window"])
    assert (end - start).days > 30
    assert start >= pd.Timestamp(german.train_json["windows"]["validation_start"])
    # The fairness gate sees the derived groups, not the raw codes.
    text = json.dumps(gates["fairness"])
    assert "female" in text and "26-35" in text and "A92" not in text


def test_misspelt_label_is_bad_input_naming_column_and_config(tmp_path: Path) -> None:
    german_frame(n=300).to_csv(tmp_path / "german.csv", index=False)
    ds = write(tmp_path, "german.yaml", dataset_doc(label="defaulted"))
    model = write(tmp_path, "model.yaml", {"name": "g", "dataset": "german.yaml"})
    ws = str(tmp_path / "ws")
    code, _, err = _invoke(["--workspace", ws, "train", "-m", str(model)])
    assert code == 2 and "label" in err and "'defaulted'" in err and str(ds) in err
    code2, out2, err2 = _invoke(["--workspace", ws, "features", "training-set", "-d", str(ds)])
    assert code2 == 2 and "'defaulted'" in err2
    assert not (tmp_path / "ws" / "features" / "german_training_set.parquet").exists()


def test_derived_attributes_map_and_band(tmp_path: Path) -> None:
    df = german_frame(n=200)
    df.to_csv(tmp_path / "german.csv", index=False)
    cfg = load_dataset_config(write(tmp_path, "german.yaml", dataset_doc()))
    assert cfg.protected_attributes == ["sex", "age_band"]
    groups = load_protected(cfg).set_index("id")
    expected_sex = df.set_index("id")["personal_status"].map(SEX)
    assert (groups["sex"] == expected_sex).all()
    ages = df.set_index("id")["age"]
    assert set(groups.loc[ages[ages == 25].index, "age_band"]) <= {"18-25"}
    assert set(groups.loc[ages[ages == 26].index, "age_band"]) <= {"26-35"}  # [26, 36)
    assert set(groups.loc[ages[ages >= 51].index, "age_band"]) == {"51+"}


@pytest.mark.parametrize(
    ("change", "field", "shown"),
    [
        ({"sex": {"source": "personal_status", "map": {"A91": "male", "A92": "female"}}},
         "derived_attributes.sex.map", "'A93'"),
        ({"age_band": {"source": "age", "bands": {"edges": [30, 90], "labels": ["30+"]}}},
         "derived_attributes.age_band.bands", "outside every band"),
        ({"sex": {"source": "status_code", "map": SEX}},
         "derived_attributes.sex.source", "'status_code'"),
    ],
)  # fmt: skip
def test_derivation_the_data_breaks_is_named(
    tmp_path: Path, change: dict, field: str, shown: str
) -> None:
    german_frame(n=200).to_csv(tmp_path / "german.csv", index=False)
    doc = dataset_doc()
    doc["derived_attributes"] = {**doc["derived_attributes"], **change}
    path = write(tmp_path, "german.yaml", doc)
    with pytest.raises(BadInputError) as err:
        load_protected(load_dataset_config(path))
    assert field in str(err.value) and shown in str(err.value) and str(path) in str(err.value)
    code, _, out_err = _invoke(["--workspace", str(tmp_path / "ws"), "data", "validate", str(path)])
    assert code == 2 and shown in out_err


@pytest.mark.parametrize(
    ("rule", "field", "shown"),
    [
        ({"source": "age", "bands": {"edges": [18, 36, 26], "labels": ["a", "b"]}},
         "derived_attributes.age_band.bands", "strictly increasing"),
        ({"source": "age", "bands": {"edges": [18, 26, 36], "labels": ["a"]}},
         "derived_attributes.age_band.bands", "1 label(s) for 2 band(s)"),
        ({"source": "age"}, "derived_attributes.age_band", "exactly one of map"),
        ({"source": "duration_months", "map": {"1": "x"}},
         "derived_attributes", "is a feature"),
    ],
)  # fmt: skip
def test_bad_derivation_config_names_the_field(
    tmp_path: Path, rule: dict, field: str, shown: str
) -> None:
    path = write(tmp_path, "german.yaml", dataset_doc(derived_attributes={"age_band": rule}))
    with pytest.raises(ConfigError) as err:
        load_dataset_config(path)
    text = str(err.value) + " ".join(err.value.problems)
    assert str(path) in text and field in text and shown in text


def test_window_sizing_keeps_big_data_defaults_and_grows_for_small() -> None:
    end = pd.Timestamp("2025-07-01", tz="UTC")
    dense = pd.Series(end - pd.to_timedelta(np.arange(0, 720 * 24, 1), unit="h"))  # 24 a day
    sparse = pd.Series(end - pd.to_timedelta(np.arange(0, 720, 0.7), unit="D"))  # ~1.4 a day
    assert days_holding(dense, end, 200, 30) == 30
    assert days_holding(sparse, end, 200, 30) == 240  # 30 -> 60 -> 120 -> 240 days
    assert days_holding(sparse, end, 10_000, 30) >= 700  # never enough: the whole history
    # ... but never back into a model's training rows (drift would compare them with themselves)
    assert days_holding(sparse, end, 10_000, 30, end - pd.Timedelta(days=100)) == 100
    assert split_months(dense, 200, None, None) == (3, 2)
    h, c = split_months(sparse, 200, None, None)
    assert h > 3 and c > 2
    assert split_months(sparse, 200, 4, None)[0] == 4  # a given value is kept


def test_policy_columns_are_checked_in_every_environment(tmp_path: Path) -> None:
    doc = {
        "cost_model": {"amount_column": "credit_amount"},
        "environments": {
            "dev": {"enforce": False},
            "prod": {"overrides": {"cost_model": {"amount_column": "loan_amount"}}},
        },
    }
    path = write(tmp_path, "policy.yaml", doc)
    policy = load_policy(path)
    with pytest.raises(ConfigError) as err:
        check_policy_columns(policy, ["id", "credit_amount"], ["sex"], "german")
    problems = err.value.problems
    assert str(path) in str(err.value)
    assert problems == [
        "environments.prod.overrides.cost_model.amount_column: column 'loan_amount' is not in "
        "dataset 'german' (its columns: id, credit_amount)"
    ]  # the base value exists; dev inherits it and is not repeated
    check_policy_columns(policy.model_copy(update={"environments": {}}), ["credit_amount"], [], "g")


def test_holdout_without_the_amount_column_is_never_valued_at_a_constant(tmp_path: Path) -> None:
    cfg = load_dataset_config(write(tmp_path, "german.yaml", dataset_doc()))
    (tmp_path / "german.csv").write_text("id\n")
    frame = german_frame(n=50).drop(columns=["credit_amount"])
    policy = load_policy(write(tmp_path, "policy.yaml", policy_doc()))
    with pytest.raises(ConfigError, match="cost_model.amount_column 'credit_amount'"):
        holdout_scores(frame, cfg, np.full(50, 0.2), None, None, policy, False)


def _rows(h: HoldoutScores, n: int, window: str) -> HoldoutScores:
    """The first n applications of `h`, unlabelled (recent applications have no outcome)."""
    assert h.groups is not None and h.pd_champion is not None
    return HoldoutScores(
        y=np.full(n, np.nan),
        pd_challenger=h.pd_challenger[:n],
        pd_champion=h.pd_champion[:n],
        groups=h.groups.iloc[:n].reset_index(drop=True),
        window=window,
    )


def test_a_window_below_its_floor_is_named_with_rows_and_floor() -> None:
    h = gates_holdout(challenger="true", champion="true")
    small_drift = drift_data(n_cur=50)
    small_drift.window = "current window (last 30 days)"
    report = run_gates(
        model="m", challenger="2", champion="1", env="prod", policy=GatePolicy(),
        holdout=h, drift=small_drift, recent=_rows(h, 37, "recent window (last 90 days)"),
    )  # fmt: skip
    fairness, drift = report.gate("fairness"), report.gate("drift")
    assert fairness.status == "INCONCLUSIVE"
    assert fairness.reasons[0] == (
        "fairness: recent window (last 90 days) has 37 rows, floor 200 (samples.min_recent)"
    )
    assert drift.status == "INCONCLUSIVE"
    assert drift.reasons[0] == (
        "drift: current window (last 30 days) has 50 rows, floor 1000 (samples.min_current)"
    )
    # Enough rows: no floor reason, the gate's own verdict stands.
    big = run_gates(
        model="m", challenger="2", champion="1", env="prod", policy=GatePolicy(),
        holdout=h, drift=drift_data(), recent=_rows(h, 5000, "recent window (last 90 days)"),
    )  # fmt: skip
    assert not any("(samples." in r for g in big.gates for r in g.reasons)
    assert big.gate("drift").status == "PASS"
