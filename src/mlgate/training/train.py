"""`mlgate train`: training set from Feast -> out-of-time split -> calibrated model -> MLflow.

The functional core is `fit_and_evaluate` (no I/O besides reading protected attributes for the
fairness table): the same function trains a new version and reproduces an old one, which is
what makes "reproduction matches" a meaningful test. `train_model` adds the training set from
Feast, lineage (fingerprints, feature service, git commit) and the MLflow run + registration.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from mlgate.config import REPO_ROOT, PlatformSettings, parse_model, policy_dir
from mlgate.data import schema
from mlgate.data.dataset_config import DatasetConfig, load_dataset_config
from mlgate.data.fingerprint import fingerprint
from mlgate.data.label_bias import LabelBias, relabel
from mlgate.data.protected import load_protected, protected_groups
from mlgate.data.sources import check_source_columns, with_workspace
from mlgate.errors import BadInputError, MlgateError
from mlgate.records.tags import VersionTags
from mlgate.training.evaluate import Evaluation, Metrics, evaluate
from mlgate.training.model_card import GroupRates, ModelCardData, fairness_table
from mlgate.training.model_config import ModelConfig, model_config_from_dict
from mlgate.training.pipeline import DEFAULT_PARAMS, fit_pd_model, prepare_frame
from mlgate.training.pyfunc import CreditRiskModel
from mlgate.training.reason_codes import attribute
from mlgate.training.split import Split, SplitWindows, out_of_time_split

Progress = Callable[[str], None]


class TrainResult(BaseModel):
    model: str
    version: str | None
    run_id: str | None
    algorithm: str
    metrics: Metrics
    data_fingerprint: str
    training_set_fingerprint: str
    feature_service: str | None
    windows: SplitWindows
    aliases: list[str] = []
    model_card: str | None = None  # path of the HTML card in the workspace
    training_set_source: str = "feast"
    reproduced_from: str | None = None
    holdout_identical: bool | None = None
    holdout_max_abs_diff: float | None = None
    seconds: dict[str, float] = {}


def git_commit() -> str:
    """The code's commit (`git rev-parse HEAD` of this repository), or "unknown"."""
    try:
        import git

        repo = git.Repo(REPO_ROOT, search_parent_directories=True)
        sha = repo.head.commit.hexsha
        return f"{sha}-dirty" if repo.is_dirty(untracked_files=False) else sha
    except Exception:
        return "unknown"


def feast_lineage(dataset: DatasetConfig) -> tuple[str, list[str]]:
    """(feature service, feature views) the dataset's training sets come from."""
    from mlgate.features import external
    from mlgate.features.training_set import feature_service_name

    if dataset.resolved_format == "synthetic":
        views = [schema.FEAST_BUREAU_VIEW, schema.FEAST_TRANSACTION_VIEW]
    else:
        views = [external.view_name(dataset)]
    return feature_service_name(dataset), views


def dataset_fingerprint(dataset: DatasetConfig) -> str:
    path = dataset.resolve_path()
    if not path.exists():
        raise BadInputError(f"dataset {dataset.name!r}: {path} not found")
    return fingerprint(path).sha256


def canonical(df: pd.DataFrame, dataset: DatasetConfig) -> pd.DataFrame:
    """A fixed row order (timestamp, row key), so training is a function of the content."""
    keys = [dataset.event_timestamp] + [dataset.row_key or dataset.entity_key]
    return df.sort_values(keys, kind="mergesort").reset_index(drop=True)


@dataclass
class Fitted:
    """A fitted, evaluated model and everything logging and the model card need."""

    model_cfg: ModelConfig
    dataset: DatasetConfig
    training_set: pd.DataFrame
    training_set_fp: str
    holdout_fp: str
    data_fingerprint: str
    feature_service: str | None
    feature_views: list[str]
    git_commit: str
    split: Split
    python_model: CreditRiskModel
    evaluation: Evaluation
    holdout_pd: np.ndarray
    train_auc: float
    validation_auc: float
    fairness: list[GroupRates]
    fairness_note: str
    reason_code_method: str
    seconds: dict[str, float] = field(default_factory=dict)
    label_bias: LabelBias | None = None  # labels relabelled on purpose (data.label_bias)

    @property
    def label_bias_text(self) -> str | None:
        """The label bias as its one line (run parameter, MLflow tag, model card)."""
        return self.label_bias.text() if self.label_bias is not None else None

    @property
    def key_columns(self) -> list[str]:
        ds = self.dataset
        # row_key may equal entity_key (a table with no customer id): each column once.
        return list(dict.fromkeys(c for c in (ds.row_key, ds.entity_key, ds.event_timestamp) if c))

    def params_to_log(self) -> dict[str, Any]:
        cfg = self.model_cfg
        params = {**DEFAULT_PARAMS[cfg.algorithm], **cfg.params}
        out: dict[str, Any] = {f"param.{k}": v for k, v in params.items()}
        out.update(
            {
                "algorithm": cfg.algorithm,
                "calibration": cfg.calibration,
                "seed": cfg.seed,
                "cutoff": cfg.cutoff,
                "holdout_months": self.split.windows.holdout_months,
                "validation_months": self.split.windows.validation_months,
                "reason_code_reference": cfg.reason_codes.reference,
                "dataset": self.dataset.name,
                "data_fingerprint": self.data_fingerprint,
                "training_set_fingerprint": self.training_set_fp,
                "holdout_fingerprint": self.holdout_fp,
                "feature_service": self.feature_service or "",
                "feature_views": ",".join(self.feature_views),
                "git_commit": self.git_commit,
                "n_features": len(self.python_model.features),
                **{f"rows.{k}": v for k, v in self._rows().items()},
            }
        )
        if self.label_bias_text is not None:
            out["label_bias"] = self.label_bias_text
        return out

    def _rows(self) -> dict[str, int]:
        w = self.split.windows
        return {"train": w.train_rows, "validation": w.validation_rows, "holdout": w.holdout_rows}

    def metrics_to_log(self) -> dict[str, float]:
        m = self.evaluation.metrics.model_dump()
        out = {f"holdout_{k}": float(v) for k, v in m.items() if isinstance(v, int | float)}
        out = {k: v for k, v in out.items() if not np.isnan(v)}
        out["train_auc"] = self.train_auc
        out["validation_auc"] = self.validation_auc
        return out

    def input_example(self) -> pd.DataFrame:
        x = prepare_frame(
            self.split.holdout,
            self.python_model.numeric_features,
            self.python_model.categorical_features,
        )
        complete = x.dropna()
        return (complete if len(complete) >= 3 else x).head(5).reset_index(drop=True)

    def version_tags(self, run_id: str) -> dict[str, str]:
        """The version's lineage tags, through their one writer (`records.tags`)."""
        base = f"runs:/{run_id}/data"
        p = self.model_cfg.policy_path()
        return VersionTags(
            data_fingerprint=self.data_fingerprint,
            feature_service=self.feature_service or "",
            feature_views=",".join(self.feature_views),
            git_commit=self.git_commit,
            training_set_fingerprint=self.training_set_fp,
            holdout_fingerprint=self.holdout_fp,
            dataset=self.dataset.name,
            training_set_uri=f"{base}/training_set/{self.training_set_fp}.parquet",
            holdout_uri=f"{base}/holdout/{self.holdout_fp}.parquet",
            windows=self.split.windows.model_dump_json(),
            event_timestamp_column=self.dataset.event_timestamp,
            algorithm=self.model_cfg.algorithm,
            label_bias=self.label_bias_text,
            # a policy of the reviewed directory is recorded by name (the only form the gates
            # and promote accept); any other path is recorded as is and refused there
            gate_policy=(p.name if p.parent.resolve() == policy_dir().resolve() else str(p))
            if p
            else None,
        ).to_tags()

    def card_data(self, version: str | None = None, run_id: str | None = None) -> ModelCardData:
        cfg, ds = self.model_cfg, self.dataset
        policy = cfg.policy_path() or policy_dir() / f"{cfg.name}.yaml"
        shown = (
            str(policy.relative_to(REPO_ROOT)) if policy.is_relative_to(REPO_ROOT) else str(policy)
        )
        return ModelCardData(
            model=cfg.name,
            version=version,
            run_id=run_id,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            description=cfg.description,
            intended_use=cfg.intended_use,
            algorithm=cfg.algorithm,
            params={**DEFAULT_PARAMS[cfg.algorithm], **cfg.params},
            calibration=cfg.calibration,
            seed=cfg.seed,
            cutoff=cfg.cutoff,
            dataset=ds.name,
            dataset_source=f"{ds.resolved_format}: {ds.path}",
            data_fingerprint=self.data_fingerprint,
            training_set_fingerprint=self.training_set_fp,
            label_bias=self.label_bias_text,
            feature_service=self.feature_service,
            feature_views=self.feature_views,
            git_commit=self.git_commit,
            windows=self.split.windows,
            population_rows=len(self.training_set),
            numeric_features=list(ds.numeric_features),
            categorical_features=list(ds.categorical_features),
            protected_attributes=list(ds.protected_attributes),
            evaluation=self.evaluation,
            train_auc=self.train_auc,
            validation_auc=self.validation_auc,
            fairness=self.fairness,
            fairness_note=self.fairness_note,
            reason_code_method=self.reason_code_method,
            monitoring_policy_path=shown if policy.is_file() else None,
            monitoring_policy_yaml=policy.read_text() if policy.is_file() else None,
        )


def _labels(df: pd.DataFrame, label: str, where: str) -> np.ndarray:
    y = pd.to_numeric(df[label], errors="coerce")
    if y.isna().any() or not y.isin([0, 1]).all():
        raise BadInputError(f"{where}: label {label!r} must be 0/1 for every matured row")
    return y.to_numpy(dtype="int64")


def fit_and_evaluate(
    model_cfg: ModelConfig,
    dataset: DatasetConfig,
    training_set: pd.DataFrame,
    *,
    data_fingerprint: str,
    feature_service: str | None,
    feature_views: list[str],
    commit: str,
    protected: pd.DataFrame | None = None,
    label_bias: LabelBias | None = None,
    progress: Progress | None = None,
) -> Fitted:
    """Split out of time, fit, calibrate and evaluate. Deterministic given config and content."""
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    missing = [c for c in dataset.features + [dataset.label] if c not in training_set.columns]
    if missing:
        raise BadInputError(f"training set of {dataset.name!r}: missing column(s) {missing}")
    df = canonical(training_set, dataset)
    ts_fp = fingerprint(df).sha256
    split = out_of_time_split(
        df, dataset.event_timestamp, dataset.label, model_cfg.split, sizes=dataset.windows
    )
    say(
        f"out-of-time split: train {split.windows.train_rows}, calibration "
        f"{split.windows.validation_rows}, holdout {split.windows.holdout_rows} rows"
    )
    y_train = _labels(split.train, dataset.label, "training window")
    y_val = _labels(split.validation, dataset.label, "calibration window")
    y_hold = _labels(split.holdout, dataset.label, "holdout window")
    say(f"fitting {model_cfg.algorithm} + {model_cfg.calibration} calibration")
    pd_model = fit_pd_model(
        model_cfg,
        dataset.numeric_features,
        dataset.categorical_features,
        split.train,
        y_train,
        split.validation,
        y_val,
    )
    t_fit = time.perf_counter()
    python_model = CreditRiskModel(
        pd_model,
        model_name=model_cfg.name,
        cutoff=model_cfg.cutoff,
        top_k=model_cfg.reason_codes.top_k,
    )
    say("evaluating on the out-of-time holdout")
    holdout_pd = python_model.predict_pd(split.holdout)
    ev = evaluate(y_hold, holdout_pd, model_cfg.cutoff)
    from sklearn.metrics import roc_auc_score

    train_auc = float(roc_auc_score(y_train, python_model.logit(split.train)))
    val_auc = float(roc_auc_score(y_val, python_model.logit(split.validation)))
    fairness: list[GroupRates] = []
    note = ""
    groups = protected_groups(dataset, split.holdout, protected)
    if groups is not None:
        fairness = fairness_table(
            y_hold,
            holdout_pd,
            model_cfg.cutoff,
            groups,
            reference=protected_groups(dataset, split.train, protected),  # groups it must hold
        )
    else:
        note = "Protected attributes are not available for this dataset: no group rates."
    method = attribute(pd_model, split.holdout.head(1)).method
    t_eval = time.perf_counter()
    return Fitted(
        model_cfg=model_cfg,
        dataset=dataset,
        training_set=df,
        training_set_fp=ts_fp,
        holdout_fp=fingerprint(split.holdout).sha256,
        data_fingerprint=data_fingerprint,
        feature_service=feature_service,
        feature_views=feature_views,
        git_commit=commit,
        split=split,
        python_model=python_model,
        evaluation=ev,
        holdout_pd=holdout_pd,
        train_auc=train_auc,
        validation_auc=val_auc,
        fairness=fairness,
        fairness_note=note,
        reason_code_method=method,
        seconds={"fit": t_fit - t0, "evaluate": t_eval - t_fit},
        label_bias=label_bias,
    )


def _result(fitted: Fitted, **kw: Any) -> TrainResult:
    return TrainResult(
        model=fitted.model_cfg.name,
        algorithm=fitted.model_cfg.algorithm,
        metrics=fitted.evaluation.metrics,
        data_fingerprint=fitted.data_fingerprint,
        training_set_fingerprint=fitted.training_set_fp,
        feature_service=fitted.feature_service,
        windows=fitted.split.windows,
        **kw,
    )


def train_on_frame(
    settings: PlatformSettings,
    model_cfg: ModelConfig,
    dataset: DatasetConfig,
    training_set: pd.DataFrame,
    *,
    data_fingerprint: str,
    label_bias: LabelBias | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Fit, evaluate, log and register a version from an already built training set;
    `label_bias` relabels it first, on purpose (`data.label_bias`: a rehearsal of the fairness
    gate), and is recorded with the version."""
    from mlgate.training.registry import CHALLENGER, connect
    from mlgate.training.track import card_dir, log_and_register, publish_card

    t0 = time.perf_counter()
    client = connect(settings)  # before any work: a broken server fails fast, nothing written
    t_connect = time.perf_counter() - t0
    service, views = feast_lineage(dataset)
    protected = load_protected(dataset)
    if label_bias is not None:
        training_set, changed = relabel(training_set, dataset, label_bias, protected)
        if progress is not None:
            progress(f"label bias: {changed} labels changed")
    fitted = fit_and_evaluate(
        model_cfg,
        dataset,
        training_set,
        data_fingerprint=data_fingerprint,
        feature_service=service,
        feature_views=views,
        commit=git_commit(),
        protected=protected,
        label_bias=label_bias,
        progress=progress,
    )
    t0 = time.perf_counter()
    version, run_id, card = log_and_register(settings, client, fitted, progress=progress)
    t_log = time.perf_counter() - t0
    t0 = time.perf_counter()
    out_dir = card_dir(settings, model_cfg.name, str(version))
    card_path = publish_card(card, out_dir)
    t_card = time.perf_counter() - t0
    return _result(
        fitted,
        version=version,
        run_id=run_id,
        aliases=[CHALLENGER],
        model_card=str(card_path),
        seconds={
            "connect": t_connect,
            **fitted.seconds,
            "log_register": t_log,
            "model_card": t_card,
        },
    )


def train_model(
    settings: PlatformSettings,
    model_cfg: ModelConfig,
    *,
    reproduce: str | None = None,
    label_bias: LabelBias | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train and register a new version, or (`reproduce="model/version"`) retrain an old one.
    `label_bias`: the training set's labels biased on purpose (see `train_on_frame`)."""
    if reproduce and label_bias is not None:
        raise BadInputError("a reproduced version is trained as it was: no label bias")
    if reproduce:
        return reproduce_version(settings, reproduce, progress=progress)
    from mlgate.features.training_set import build_training_set
    from mlgate.training.registry import connect

    connect(settings)
    say = progress or (lambda _msg: None)
    dataset = with_workspace(load_dataset_config(model_cfg.dataset_path()), settings)
    policy = model_cfg.policy_path()
    if policy is not None and not policy.is_file():
        raise BadInputError(
            f"{model_cfg.source_file or model_cfg.name}: policy: {policy} not found"
        )
    check_source_columns(dataset)  # a misspelt label: exit 2 naming it, not an empty set
    say(f"building the training set of {dataset.name!r} through Feast")
    t0 = time.perf_counter()
    data_fp = dataset_fingerprint(dataset)
    training_set = build_training_set(settings, dataset, approved_only=True, matured_only=True)
    t_build = time.perf_counter() - t0
    result = train_on_frame(
        settings,
        model_cfg,
        dataset,
        training_set,
        data_fingerprint=data_fp,
        label_bias=label_bias,
        progress=progress,
    )
    result.seconds = {"training_set": t_build, **result.seconds}
    return result


def parse_ref(ref: str) -> tuple[str, str]:
    name, sep, version = ref.partition("/")
    if not sep or not name or not version:
        raise BadInputError(f"--reproduce {ref!r}: expected MODEL/VERSION, e.g. credit_risk/3")
    return name, version


def reproduce_version(
    settings: PlatformSettings, ref: str, *, progress: Progress | None = None
) -> TrainResult:
    """Retrain a registered version from its recorded lineage and compare holdout predictions.

    The training set is rebuilt through Feast over the recorded window, with the recorded label
    bias applied again if the version was trained on one; when its fingerprint
    differs from the recorded one (the source data changed) the content-addressed copy kept
    with the run is used instead. Nothing is registered.
    """
    from mlgate.features.training_set import build_training_set
    from mlgate.training.registry import (
        connect,
        load_holdout,
        load_scorer,
        read_artifact_json,
        recorded_label_bias,
        resolve_version,
        version_lineage,
    )

    say = progress or (lambda _msg: None)
    name, ref_version = parse_ref(ref)
    client = connect(settings)
    mv = resolve_version(client, name, ref_version)
    version = str(mv.version)
    lineage = version_lineage(settings, name, version)
    cfg_data = read_artifact_json(settings, lineage.run_id, "config/model_config.json")
    model_cfg = model_config_from_dict(cfg_data, f"{ref}: config/model_config.json")
    ds_data = read_artifact_json(settings, lineage.run_id, "config/dataset_config.json")
    source_file = ds_data.pop("source_file", None)
    dataset = parse_model(DatasetConfig, ds_data, f"{ref}: config/dataset_config.json")
    dataset = dataset.model_copy(update={"source_file": source_file})
    windows = lineage.windows
    source = "stored"
    training_set: pd.DataFrame | None = None
    data_fp = lineage.data_fingerprint
    bias = None
    try:
        bias = recorded_label_bias(settings, lineage)  # its labels were biased on purpose
        say("rebuilding the training set through Feast over the recorded window")
        end = pd.Timestamp(windows.data_end) + pd.Timedelta(microseconds=1)
        rebuilt = build_training_set(settings, dataset, start=windows.data_start, end=end)
        how = "feast (fingerprint matches the recorded one)"
        if bias is not None:
            rebuilt, _ = relabel(rebuilt, dataset, bias, load_protected(dataset))
            how = "feast, labels biased again as recorded (fingerprint matches the recorded one)"
        if fingerprint(canonical(rebuilt, dataset)).sha256 == lineage.training_set_fingerprint:
            training_set, source = rebuilt, how
        else:
            source = "stored copy (the source data changed: rebuilt fingerprint differs)"
    except MlgateError as exc:
        source = f"stored copy (cannot rebuild from source: {str(exc).splitlines()[0]})"
    if training_set is None:
        from mlgate.training.registry import _download

        training_set = pd.read_parquet(_download(settings, lineage.training_set_uri))
        if fingerprint(training_set).sha256 != lineage.training_set_fingerprint:
            raise BadInputError(
                f"{ref}: the stored training set does not match its recorded fingerprint"
            )
    say(f"training set: {source}")
    fitted = fit_and_evaluate(
        model_cfg,
        dataset,
        training_set,
        data_fingerprint=data_fp,
        feature_service=lineage.feature_service,
        feature_views=lineage.feature_views,
        commit=git_commit(),
        protected=None,
        label_bias=bias,
        progress=progress,
    )
    holdout = load_holdout(settings, name, version)
    registered = load_scorer(settings, name, version).predict_pd(holdout)
    again = fitted.python_model.predict_pd(holdout)
    diff = float(np.max(np.abs(registered - again))) if len(again) else 0.0
    return _result(
        fitted,
        version=None,
        run_id=None,
        training_set_source=source,
        reproduced_from=f"{name}/{version}",
        holdout_identical=bool(np.array_equal(registered, again)),
        holdout_max_abs_diff=diff,
        seconds=fitted.seconds,
    )
