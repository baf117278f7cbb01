"""The I/O shell around the pure gates: gather what `mlgate gates run` judges.

- challenger and champion from the MLflow registry (the champion by default is the version git
  says runs stable in the environment, `mlgate.gitops.status.stable_version`);
- the challenger's out-of-time holdout (the exact rows stored with its run) plus the
  applications the bank declined in the same window (no outcome: needed for the swap set,
  fairness and the P&L), both scored by both models;
- protected attributes from their own table, joined by the entity key (never features);
- the drift reference (the challenger's exact training set) and the current window (a file, or
  the newest `drift.current_days` days of applications from the data source, features as known
  at application time), both scored by the challenger for score drift; the champion's own
  training set, scored by the champion, so population drift is told from the challenger's own;
- `recent`: the newest `fairness.recent_days` of applications (or the `--current` file),
  scored by both models with their protected attributes: the fairness of the next decisions.
Whatever cannot be read becomes a reason on the affected gates (INCONCLUSIVE), never a pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlgate.config import PlatformSettings, parse_model
from mlgate.data.dataset_config import DatasetConfig
from mlgate.data.group_coverage import group_counts
from mlgate.data.protected import load_protected, protected_groups
from mlgate.data.sources import rebind
from mlgate.data.windows import DEFAULT_DRIFT_DAYS, DEFAULT_RECENT_DAYS, days_holding
from mlgate.errors import BadInputError, ConfigError, MlgateError
from mlgate.gates.inputs import DriftData, HoldoutScores
from mlgate.gates.policy import GatePolicy, check_policy_columns
from mlgate.gitops.status import StateUnreadable, stable_version
from mlgate.records.tags import read_tags

log = logging.getLogger(__name__)
Say = Callable[[str], None]


@dataclass
class Collected:
    challenger: str
    champion: str | None
    champion_source: str
    run_id: str | None
    holdout: HoldoutScores | None
    drift: DriftData | None
    recent: HoldoutScores | None = None
    info: dict[str, Any] = field(default_factory=dict)
    why_missing: dict[str, str] = field(default_factory=dict)


def resolve_champion(
    settings: PlatformSettings, model: str, env: str, explicit: str | None
) -> tuple[str | None, str]:
    """(champion reference, where it came from). Git's stable version unless named; "none"
    (a first version, judged on the absolute floors) only when git proves nothing runs there.
    Git that cannot be read raises StateUnreadable: the caller fails closed."""
    if explicit:
        return explicit, "explicit"
    version = stable_version(settings, model, env)
    if version is None:
        return None, f"none (git has no stable version of {model} in {env})"
    return str(version), f"git stable in {env}"


def overlay_cutoff(settings: PlatformSettings, model: str, env: str) -> float | None:
    """The cut-off git's overlay serves in `env` (credit policy), or None if there is none (no
    GitOps repository or overlay yet: `read_status` is empty). Git that cannot be read raises
    StateUnreadable: the caller fails closed, never judges at the policy's value."""
    from mlgate.gitops.status import read_status

    try:
        status = read_status(settings).model(model)
    except StateUnreadable:
        raise
    except MlgateError as exc:  # an overlay git cannot read is unreadable state, not "none"
        raise StateUnreadable(f"the served cut-off of {model} in {env}: {exc}") from exc
    env_status = status.envs.get(env) if status is not None else None
    if env_status is None:
        return None
    try:
        value = float(env_status.cutoff)
    except ValueError:
        return None
    return value if 0 < value < 1 else None


def with_served_cutoff(
    settings: PlatformSettings, model: str, env: str, policy: GatePolicy
) -> tuple[GatePolicy, str]:
    """Policy with `cutoff.method: overlay` resolved to a value, and where it came from."""
    pol = policy.cutoff
    if pol.method != "overlay":
        return policy, f"policy ({pol.method})"
    served = overlay_cutoff(settings, model, env)
    if served is None:
        return policy, f"policy value {pol.value} (no overlay cut-off for {model} in {env})"
    cut = pol.model_copy(update={"value": served})
    return policy.model_copy(update={"cutoff": cut}), f"overlay {env}: {served}"


def recorded_policy(settings: PlatformSettings, model: str, version: str) -> str | None:
    """The gate policy the version's model config named (`policy:`, recorded at training as the
    tag `gate_policy`), or None: then config/policies/<model>.yaml or `--policy` applies."""
    from mlgate.training.registry import connect, resolve_version

    try:
        mv = resolve_version(connect(settings), model, version)
    except MlgateError:
        return None  # an unknown version or server is reported by the run itself (exit 2)
    return read_tags(mv.tags, model, str(mv.version)).gate_policy or None


def run_dataset(settings: PlatformSettings, run_id: str) -> DatasetConfig:
    """The dataset config the version was trained on (stored with its run)."""
    from mlgate.training.registry import read_artifact_json

    data = read_artifact_json(settings, run_id, "config/dataset_config.json")
    source = data.pop("source_file", None)
    cfg = parse_model(DatasetConfig, data, f"run {run_id}: config/dataset_config.json")
    return cfg.model_copy(update={"source_file": source})


def read_table(path: str | Path, columns: list[str], option: str) -> pd.DataFrame:
    """A parquet or CSV file named by a command-line option; every listed column must be there
    (bad input otherwise, naming the option, the file and the missing columns)."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"{option} {p}: file not found")
    try:
        df = pd.read_csv(p) if p.suffix.lower() == ".csv" else pd.read_parquet(p)
    except Exception as exc:  # noqa: BLE001 - any reader error is bad input
        raise BadInputError(f"{option} {p}: cannot read: {exc}") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise BadInputError(f"{option} {p}: missing column(s) {', '.join(missing)}")
    return df


def read_current(path: str | Path, features: list[str]) -> pd.DataFrame:
    """A current window given as a file; every model feature must be there."""
    return read_table(path, features, "--current")


def _holdout_frame(
    settings: PlatformSettings, model: str, version: str, dataset: DatasetConfig, say: Say
) -> tuple[pd.DataFrame, bool, dict[str, Any]]:
    """Stored holdout + the declined applications of its window. (frame, has_declined, info)."""
    from mlgate.training.registry import load_holdout, version_lineage

    stored = load_holdout(settings, model, version)
    info: dict[str, Any] = {"holdout_labelled_rows": int(len(stored))}
    w = version_lineage(settings, model, version).windows
    try:
        from mlgate.features.training_set import application_features

        end = pd.Timestamp(w.data_end) + pd.Timedelta(microseconds=1)
        say("reading the declined applications of the holdout window")
        window = application_features(settings, dataset, w.holdout_start, end)
        key = dataset.row_key
        if key and key in window.columns and key in stored.columns:
            extra = window[~window[key].isin(stored[key])]
        else:
            extra = window.iloc[0:0]
        if dataset.decision_column and dataset.decision_column in extra.columns:
            extra = extra[extra[dataset.decision_column] != dataset.approved_value]
        extra = extra.copy()
        extra[dataset.label] = np.nan  # declined: no outcome, whatever the file says
        info.update(
            holdout_window=[w.holdout_start, w.data_end], holdout_declined_rows=int(len(extra))
        )
        frame = pd.concat([stored, extra[[c for c in stored.columns if c in extra.columns]]])
        return frame.reset_index(drop=True), True, info
    except MlgateError as exc:
        info["holdout_declined_rows"] = f"unavailable: {exc}"
        return stored, False, info


def _protected(dataset: DatasetConfig, frame: pd.DataFrame) -> pd.DataFrame | None:
    """`frame`'s protected attributes (derived ones computed in the data layer)."""
    return protected_groups(dataset, frame, load_protected(dataset))


def holdout_scores(
    frame: pd.DataFrame,
    dataset: DatasetConfig,
    chal_pd: np.ndarray,
    champ_pd: np.ndarray | None,
    groups: pd.DataFrame | None,
    policy: GatePolicy,
    has_declined: bool,
) -> HoldoutScores:
    dec = dataset.decision_column
    bank = None
    if has_declined and dec and dec in frame.columns:
        bank = (frame[dec] == dataset.approved_value).to_numpy()
    amount_col = policy.cost_model.amount_column
    if amount_col and amount_col not in frame:
        # Never a silent constant: the P&L would value every loan at default_amount.
        raise ConfigError(
            f"{policy.source_file or 'policy'}: cost_model.amount_column {amount_col!r} is not "
            f"a column of dataset {dataset.name!r}'s rows"
        )
    amount = frame[amount_col].to_numpy(float) if amount_col else None
    early = dataset.early_label
    return HoldoutScores(
        y=pd.to_numeric(frame[dataset.label], errors="coerce").to_numpy(float),
        pd_challenger=chal_pd,
        pd_champion=champ_pd,
        bank_approved=bank,
        amount=amount,
        order=pd.to_datetime(frame[dataset.event_timestamp], utc=True).to_numpy(),
        groups=groups,
        early=frame[early].to_numpy(float) if early and early in frame else None,
    )


def collect(
    settings: PlatformSettings,
    *,
    model: str,
    challenger: str,
    champion: str | None,
    env: str,
    policy: GatePolicy,
    current: str | Path | None = None,
    say: Say | None = None,
    data_path: str | Path | None = None,
) -> Collected:
    """The evidence for the gates. `data_path`: read the applications from that copy of the
    version's dataset (a pipeline step's `data` artifact) instead of the path its run recorded,
    which was the training step's own copy."""
    from mlgate.training.registry import connect, load_scorer, load_training_set, resolve_version

    say = say or (lambda _m: None)
    eff = policy.for_env(env)
    say(f"loading challenger {model} {challenger}")
    chal = load_scorer(settings, model, challenger)  # unknown version: bad input (exit 2)
    tags = resolve_version(connect(settings), model, chal.version).tags or {}
    dataset = run_dataset(settings, chal.run_id)
    if data_path is not None:
        dataset = rebind(dataset, data_path)
    check_dataset_columns(policy, dataset)  # a column the policy names must exist: exit 2
    protected = load_protected(dataset)  # a derivation the data breaks: exit 2, named
    features = dataset.features
    if current is not None:
        current_df: pd.DataFrame | None = read_current(current, features)
    else:
        current_df = None
    out = Collected(
        challenger=chal.version,
        champion=None,
        champion_source="",
        run_id=chal.run_id,
        holdout=None,
        drift=None,
    )
    champ_scorer = None
    try:
        champ_ref, out.champion_source = resolve_champion(settings, model, env, champion)
        if champ_ref is not None:
            say(f"loading champion {model} {champ_ref}")
            champ_scorer = load_scorer(settings, model, champ_ref)
            out.champion = champ_scorer.version
    except StateUnreadable as exc:  # git cannot say what runs there: never a first version
        out.why_missing["holdout"] = f"champion unreadable: {exc}"
        out.champion_source = "unreadable"
    except BadInputError as exc:
        if champion:
            raise  # a champion the user named that does not exist is a typo: exit 2
        out.why_missing["holdout"] = f"champion unreadable: {exc}"
        out.champion_source = "unreadable"
    except Exception as exc:  # noqa: BLE001 - champion unreadable: fail closed
        out.why_missing["holdout"] = f"champion unreadable: {exc}"
        out.champion_source = "unreadable"
        out.champion = champion
    out.info["champion_source"] = out.champion_source
    # The report records the data the version was trained on; a promotion checks it.
    out.info["data_fingerprint"] = tags.get("data_fingerprint")

    if "holdout" not in out.why_missing:
        try:
            say("loading the out-of-time holdout")
            frame, has_declined, info = _holdout_frame(settings, model, chal.version, dataset, say)
            out.info.update(info)
            say(f"scoring {len(frame)} holdout applications")
            chal_pd = chal.predict_pd(frame)
            champ_pd = champ_scorer.predict_pd(frame) if champ_scorer is not None else None
            out.holdout = holdout_scores(
                frame,
                dataset,
                chal_pd,
                champ_pd,
                protected_groups(dataset, frame, protected),
                eff,
                has_declined,
            )
            out.holdout.window = _holdout_window(out.info)
        except Exception as exc:  # noqa: BLE001
            out.why_missing["holdout"] = f"holdout unreadable: {type(exc).__name__}: {exc}"
    try:
        say("loading the drift reference (the exact training set)")
        reference = load_training_set(settings, model, chal.version)
        if current_df is None:
            days, why = gate_window(
                settings, dataset, eff, "drift", not_before=training_end(settings, model, chal)
            )
            current_df, window = recent_applications(settings, dataset, days)
            out.info["current_window"] = window
            current_name = f"current window (last {days} days, {why})"
        else:
            out.info["current_window"] = str(current)
            current_name = f"current window (--current {current})"
        say(f"scoring drift windows: reference {len(reference)}, current {len(current_df)}")
        out.drift = DriftData(
            reference=reference,
            current=current_df,
            numeric=list(dataset.numeric_features),
            categorical=list(dataset.categorical_features),
            reference_score=chal.predict_pd(reference) if len(reference) else None,
            current_score=chal.predict_pd(current_df) if len(current_df) else None,
            window=current_name,
        )
        out.info.update(reference_rows=len(reference), current_rows=len(current_df))
    except Exception as exc:  # noqa: BLE001
        out.why_missing["drift"] = f"drift data unreadable: {type(exc).__name__}: {exc}"
    if champ_scorer is not None and out.drift is not None:
        _champion_drift(settings, model, champ_scorer, out.drift, out.info, say)
    try:
        say("scoring the recent applications (fairness of the next decisions)")
        given = current_df if current is not None else None
        out.recent = _recent_decisions(
            settings, dataset, eff, chal, champ_scorer, given, out.info, protected
        )
    except Exception as exc:  # noqa: BLE001 - the holdout's fairness verdict still stands
        out.info["recent_applications"] = f"unavailable: {type(exc).__name__}: {exc}"
    ref_groups = reference_groups(dataset, out.drift.reference if out.drift else None)
    for judged in (out.holdout, out.recent):
        if judged is not None:
            judged.reference_groups = ref_groups
    return out


def reference_groups(
    dataset: DatasetConfig, training_set: pd.DataFrame | None
) -> dict[str, dict[str, int]] | None:
    """Group sizes of the training population: the groups every judged window must show."""
    return group_counts(_protected(dataset, training_set)) if training_set is not None else None


def _recent_decisions(
    settings: PlatformSettings,
    dataset: DatasetConfig,
    policy: GatePolicy,
    chal: Any,
    champ: Any,
    given: pd.DataFrame | None,
    info: dict[str, Any],
    protected: pd.DataFrame | None,
) -> HoldoutScores | None:
    """The applications both models would decide next, with protected attributes: the
    `--current` file when given, else the newest `fairness.recent_days` days."""
    if given is not None:
        frame = given
        info["recent_window"] = "--current"
        name = "recent window (--current file)"
    else:
        days, why = gate_window(settings, dataset, policy, "recent")
        frame, window = recent_applications(settings, dataset, days)
        info["recent_window"] = window
        name = f"recent window (last {days} days, {why})"
    info["recent_rows"] = len(frame)
    if not len(frame):
        return None
    return HoldoutScores(
        y=np.full(len(frame), np.nan),
        pd_challenger=chal.predict_pd(frame),
        pd_champion=champ.predict_pd(frame) if champ is not None else None,
        groups=protected_groups(dataset, frame, protected),
        window=name,
    )


def check_dataset_columns(policy: GatePolicy, dataset: DatasetConfig) -> None:
    """The policy's column fields against the columns the dataset carries (exit 2 if absent)."""
    from mlgate.features.training_set import output_columns

    check_policy_columns(
        policy, output_columns(dataset), dataset.protected_attributes, dataset.name
    )


def _holdout_window(info: dict[str, Any]) -> str:
    span = info.get("holdout_window")
    if isinstance(span, list) and len(span) == 2:
        return f"holdout window ({str(span[0])[:10]}..{str(span[1])[:10]})"
    return "holdout window (stored with the run)"


# Which policy field, dataset-config field, default and floor size each gate window.
_WINDOWS = {
    "drift": ("drift.current_days", "drift_days", DEFAULT_DRIFT_DAYS, "min_current"),
    "recent": ("fairness.recent_days", "recent_days", DEFAULT_RECENT_DAYS, "min_recent"),
}


def training_end(settings: PlatformSettings, model: str, scorer: Any) -> pd.Timestamp | None:
    """Where the version's training window ends (its calibration window starts), or None."""
    from mlgate.training.registry import version_lineage

    try:
        return pd.Timestamp(
            version_lineage(settings, model, scorer.version).windows.validation_start
        )
    except MlgateError:
        return None


def gate_window(
    settings: PlatformSettings,
    dataset: DatasetConfig,
    policy: GatePolicy,
    which: str,
    not_before: pd.Timestamp | None = None,
) -> tuple[int, str]:
    """(days, where the length came from) of the drift or recent-applications window: the
    policy's value, else the dataset config's `windows`, else the default grown until the
    window holds the policy's floor (a small table is not judged on 30 days of 40 rows), never
    back past `not_before` (drift: a current window reaching into the training rows would
    compare the reference with itself)."""
    policy_field, dataset_field, default, floor_field = _WINDOWS[which]
    section, _, name = policy_field.partition(".")
    given = getattr(getattr(policy, section), name)
    if given:
        return int(given), f"policy {policy_field}"
    configured = getattr(dataset.windows, dataset_field)
    if configured:
        return int(configured), f"dataset windows.{dataset_field}"
    from mlgate.features.training_set import _entity_rows

    ts = pd.to_datetime(_entity_rows(settings, dataset)[dataset.event_timestamp], utc=True)
    if ts.empty:
        return default, "default"
    floor = getattr(policy.samples, floor_field)
    end = ts.max() + pd.Timedelta(microseconds=1)
    days = days_holding(ts, end, floor, default, not_before)
    return days, "default" if days == default else f"sized to reach samples.{floor_field}"


def _champion_drift(
    settings: PlatformSettings,
    model: str,
    scorer: Any,
    drift: DriftData,
    info: dict[str, Any],
    say: Say,
) -> None:
    """Add the champion's training set and scores; unreadable -> absolute drift levels apply
    (stricter, so failing to read it can never help a challenger)."""
    from mlgate.training.registry import load_training_set

    try:
        say(f"loading the champion's training set (version {scorer.version})")
        ref = load_training_set(settings, model, scorer.version)
        drift.champion_reference = ref
        drift.champion_reference_score = scorer.predict_pd(ref) if len(ref) else None
        drift.champion_current_score = (
            scorer.predict_pd(drift.current) if len(drift.current) else None
        )
        info["champion_reference_rows"] = len(ref)
    except Exception as exc:  # noqa: BLE001
        drift.champion_reference = None
        drift.champion_reference_score = drift.champion_current_score = None
        info["champion_reference_rows"] = f"unavailable: {type(exc).__name__}: {exc}"


def recent_applications(
    settings: PlatformSettings, dataset: DatasetConfig, days: int, end: Any = None
) -> tuple[pd.DataFrame, list[str]]:
    """The newest `days` days of applications (all of them, declined too) with features as
    known at application time, from the data source through Feast."""
    from mlgate.features.training_set import application_features

    if end is None:
        end = newest_application(settings, dataset) + pd.Timedelta(microseconds=1)
    end = pd.Timestamp(end)
    start = end - pd.Timedelta(days=days)
    df = application_features(settings, dataset, start, end)
    return df, [start.isoformat(), end.isoformat()]


def newest_application(settings: PlatformSettings, dataset: DatasetConfig) -> pd.Timestamp:
    from mlgate.features.training_set import _entity_rows

    rows = _entity_rows(settings, dataset)
    if rows.empty:
        raise BadInputError(f"dataset {dataset.name!r}: no applications")
    return pd.Timestamp(pd.to_datetime(rows[dataset.event_timestamp], utc=True).max())


def log_to_mlflow(settings: PlatformSettings, run_id: str, folder: Path, env: str) -> str | None:
    """Attach the report files to the challenger's MLflow run (gates/<env>/). None on failure."""
    try:
        from mlgate.training.registry import connect

        client = connect(settings)
        client.log_artifacts(run_id, str(folder), artifact_path=f"gates/{env}")
        return f"runs:/{run_id}/gates/{env}"
    except Exception as exc:  # noqa: BLE001 - the report on disk is the record
        log.warning("gate report not logged to MLflow run %s: %s", run_id, exc)
        return None
