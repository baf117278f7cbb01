"""Replayed traffic: the request log a canary would have served, made from the data source.

Without a cluster (the embedded default, a rehearsal, the README's walk-through) no request
logger has written anything, yet `mlgate canary analyze` needs a log. The newest applications
of the canary's own dataset stand in for it: their features as known at application time
(through Feast, as the serving path looks them up), the row key, application time and entity
key, each routed to stable or canary the way a weighted split would (a stable hash of the
row key against the canary weight, so a replay is reproducible). Outcome columns are left out:
the analysis joins early outcomes from the data source by row key, as it does in production.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from pydantic import BaseModel

from mlgate.canary.run import SERVED_BY, canary_state
from mlgate.config import PlatformSettings
from mlgate.data.dataset_config import DatasetConfig
from mlgate.errors import BadInputError
from mlgate.features.training_set import application_features
from mlgate.gates.collect import recent_applications, run_dataset
from mlgate.gitops.status import read_status
from mlgate.training.registry import load_scorer


class Replay(BaseModel):
    path: str
    requests: int
    canary_requests: int
    canary_version: str
    stable_version: str
    weight: int
    window: list[str]


def default_replay_path(settings: PlatformSettings, model: str, env: str) -> Path:
    return settings.ws().reports_dir / "canary" / f"requests-{model}-{env}-replayed.parquet"


def _bucket(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100


def replay_requests(
    settings: PlatformSettings,
    model: str,
    env: str = "prod",
    days: int = 365,
    out: Path | None = None,
) -> Replay:
    """Write the newest `days` of applications as the request log of ENV's running canary."""
    if days < 1:
        raise BadInputError(f"--days {days}: must be at least 1")
    state = canary_state(settings, model, env)
    dataset = run_dataset(settings, load_scorer(settings, model, state.canary_version).run_id)
    frame, window = recent_applications(settings, dataset, days)
    keep = [c for c in frame.columns if c not in {dataset.label, dataset.early_label}]
    log = frame[keep].copy()
    key = dataset.row_key or dataset.entity_key
    canary = log[key].astype(str).map(_bucket) < state.weight
    log[SERVED_BY] = canary.map({True: state.canary_version, False: state.stable_version})
    path = out or default_replay_path(settings, model, env)
    if path.suffix.lower() not in (".parquet", ".pq", ".csv"):
        raise BadInputError(f"--out {path}: a request log is a .parquet or .csv file")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix.lower() == ".csv":
        log.to_csv(tmp, index=False)
    else:
        log.to_parquet(tmp, index=False)
    tmp.replace(path)  # a crash leaves no half-written log under the real name
    return Replay(
        path=str(path),
        requests=len(log),
        canary_requests=int(canary.sum()),
        canary_version=state.canary_version,
        stable_version=state.stable_version,
        weight=state.weight,
        window=window,
    )


def parse_day(text: str, option: str = "--from") -> pd.Timestamp:
    """A calendar day (YYYY-MM-DD) as midnight UTC; anything else is bad input naming `option`."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise BadInputError(f"{option} {text!r}: not a date (YYYY-MM-DD)") from None
    return pd.Timestamp(datetime(day.year, day.month, day.day), tz="UTC")


def period_applications(
    settings: PlatformSettings, model: str, env: str, start: str, days: int
) -> tuple[pd.DataFrame, DatasetConfig, list[str]]:
    """The data source's applications with application time in [start, start + days), in
    that order, as the environment's traffic would carry them: the features known at
    application time (Feast, point in time), row key, entity key and application time; the
    outcome columns left out (the analysis joins them from the source, as in production).
    The dataset is the one the newest version running in ENV (its canary, else stable) was
    trained on."""
    begin = parse_day(start)
    if days < 1:
        raise BadInputError(f"--days {days}: must be at least 1")
    status = read_status(settings).model(model)
    es = status.envs.get(env) if status is not None else None
    if es is None:
        raise BadInputError(f"{model} is not deployed in {env} (git main): nothing serves it")
    version = es.canary_version or es.stable_version
    dataset = run_dataset(settings, load_scorer(settings, model, version).run_id)
    end = begin + pd.Timedelta(days=days)
    window = [begin.isoformat(), end.isoformat()]
    frame = application_features(settings, dataset, begin, end)
    if not len(frame):
        raise BadInputError(
            f"--from {start} --days {days}: no applications of dataset {dataset.name!r} "
            f"in [{window[0]}, {window[1]})"
        )
    ts = dataset.event_timestamp
    frame = frame.sort_values(ts, kind="stable").reset_index(drop=True)
    keep = [c for c in frame.columns if c not in {dataset.label, dataset.early_label}]
    return frame[keep], dataset, window
