"""Simulated maturity: the synthetic world's true outcomes for the loans served versions booked.

A canary is judged on P&L once its loans' outcomes mature. In production they mature in the
data source: the loans the served versions booked get their 3-month and 12-month outcomes
there, and the analysis joins them by row key (`canary.run.early_outcomes`). A rehearsal
replays *history* instead, whose outcomes are those of the loans the bank booked back then:
a canary that approves applicants the bank (and stable) declined has no outcome for exactly
the loans that decide its P&L, so its P&L waits until the deadline, in a rehearsal only.

Only the synthetic world knows what would have become of any applicant: its oracle table
(`data.schema.ORACLE`, written by `data.world`, "benchmarks only") holds the true outcomes
of every application, declined ones included. `mature` plays the future forward on a served
request log: a request the version that served it approved is a booked loan and gets the
oracle's outcome; a request it declined books nothing and stays NaN, as it would in
production (nobody sees the outcome of a loan never made). `3m` matures the early outcome
only (a canary's first months), `12m` both.

This is a simulation that only the synthetic world can do: a data source without an oracle
table (every real one) is refused, and the analysis report says its outcomes were simulated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast, get_args

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pydantic import BaseModel

from mlgate.data import schema
from mlgate.data.dataset_config import DatasetConfig
from mlgate.errors import BadInputError

Horizon = Literal["3m", "12m"]
OPTION = "--simulate-outcomes"
# The oracle's true outcomes (data.schema), each standing for a dataset label.
TRUE_EARLY = schema.ORACLE_TRUE_EARLY
TRUE_DEFAULT = schema.ORACLE_TRUE_DEFAULT


class Matured(BaseModel):
    """What a simulated maturity did, for the analysis report."""

    horizon: Horizon
    oracle: str  # the oracle table read
    requests: int
    booked: int  # requests the serving version approved
    with_early_outcome: int
    with_12m_outcome: int
    note: str = "simulated: outcomes from the synthetic world's oracle, not the data source"


def horizon(value: str) -> Horizon:
    """The horizon named on the command line; bad input otherwise."""
    if value not in get_args(Horizon):
        raise BadInputError(
            f"{OPTION} {value!r}: 3m (early outcomes matured) or 12m (early and 12-month)"
        )
    return cast(Horizon, value)


def oracle_path(dataset: DatasetConfig) -> Path:
    """The data source's oracle table; bad input when it has none (any real data source)."""
    if dataset.resolved_format != "synthetic":
        raise BadInputError(
            f"{OPTION}: dataset {dataset.name!r} ({dataset.where}) is a {dataset.resolved_format} "
            "file, not the synthetic world: only the synthetic world's oracle table knows the "
            "outcome of a loan nobody booked. A real data source's outcomes mature in it; "
            "analyse without this option"
        )
    path = dataset.resolve_path() / f"{schema.ORACLE}.parquet"
    if not path.is_file():
        raise BadInputError(
            f"{OPTION}: {path}: the synthetic world of dataset {dataset.name!r} has no oracle "
            "table: nothing to simulate outcomes from (mlgate data generate writes it)"
        )
    return path


@dataclass(frozen=True)
class Oracle:
    """The oracle table read: where from, and its row key with the true outcomes."""

    path: Path
    truth: pd.DataFrame


def read_oracle(dataset: DatasetConfig) -> Oracle:
    """The oracle's row key and true outcomes; bad input naming the file and what is missing."""
    path = oracle_path(dataset)
    key = dataset.row_key
    if not key:
        raise BadInputError(
            f"{OPTION}: dataset {dataset.name!r} ({dataset.where}) has no row_key: requests "
            "cannot be matched with the oracle's applications"
        )
    cols = [key, TRUE_EARLY, TRUE_DEFAULT]
    try:
        names = set(pq.read_schema(path).names)
    except Exception as exc:  # noqa: BLE001 - any reader error is bad input
        raise BadInputError(f"{OPTION}: {path}: cannot read: {exc}") from None
    missing = [c for c in cols if c not in names]
    if missing:
        raise BadInputError(f"{OPTION}: {path}: missing column(s) {', '.join(missing)}")
    frame = pd.read_parquet(path, columns=cols)
    frame[key] = frame[key].astype(str)
    return Oracle(path, frame.drop_duplicates(key).set_index(key))


def mature(
    log: pd.DataFrame,
    oracle: Oracle,
    dataset: DatasetConfig,
    booked: np.ndarray,
    when: Horizon,
) -> tuple[pd.DataFrame, Matured]:
    """The request log with the dataset's outcome columns as if its loans had matured: the
    oracle's outcome where `booked` (the serving version approved the request), NaN where it
    declined, where the oracle does not know the application and, at `3m`, for the 12-month
    label. Outcome columns the log already had are replaced: in the simulated future only the
    loans served versions booked have outcomes, whatever the bank booked back then."""
    key = dataset.row_key
    if not key or key not in log.columns:
        raise BadInputError(
            f"{OPTION}: the request log has no {key or 'row key'} column: its requests cannot "
            "be matched with the oracle's applications (the replay sends it beside the features)"
        )
    yes = np.asarray(booked, dtype=bool)
    if len(yes) != len(log):
        raise ValueError(f"booked: {len(yes)} values for {len(log)} requests")
    keys = log[key].astype(str)
    out = log.copy()
    pairs = [(dataset.early_label, TRUE_EARLY)]
    if when == "12m":
        pairs.append((dataset.label, TRUE_DEFAULT))
    else:
        out[dataset.label] = np.nan  # 3 months on: no 12-month outcome yet
    seen: dict[str, int] = {}
    for column, true in pairs:
        if column:
            values = pd.to_numeric(keys.map(oracle.truth[true]), errors="coerce").to_numpy(float)
            out[column] = np.where(yes, values, np.nan)
            seen[true] = int(np.isfinite(out[column].to_numpy(float)).sum())
    return out, Matured(
        horizon=when,
        oracle=str(oracle.path),
        requests=len(out),
        booked=int(yes.sum()),
        with_early_outcome=seen.get(TRUE_EARLY, 0),
        with_12m_outcome=seen.get(TRUE_DEFAULT, 0),
    )
