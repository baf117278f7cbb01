"""Out-of-time split: train on older applications, test on the newest matured window.

Credit portfolios drift, so a random split overstates performance: validation practice is to
train on older vintages and test on the most recent matured ones. Three windows, oldest first:

    train  |  calibration (validation)  |  holdout (out of time)

The calibration window sits between training and holdout so the monotone PD map is fitted on
data the classifier never saw, and the holdout is touched by nothing but evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from pydantic import BaseModel

from mlgate.data.dataset_config import Windows
from mlgate.data.windows import split_months
from mlgate.errors import BadInputError
from mlgate.training.model_config import SplitConfig


class SplitWindows(BaseModel):
    """Boundaries (UTC ISO timestamps); a row belongs to [start, end)."""

    data_start: str
    validation_start: str
    holdout_start: str
    data_end: str  # the newest timestamp (inclusive)
    train_rows: int
    validation_rows: int
    holdout_rows: int
    holdout_months: int | None = None  # as used (given, or sized from the data)
    validation_months: int | None = None


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame
    windows: SplitWindows


def out_of_time_split(
    df: pd.DataFrame,
    ts_col: str,
    label_col: str,
    cfg: SplitConfig,
    *,
    source: str = "training set",
    sizes: Windows | None = None,
) -> Split:
    """Split `df` by `ts_col` into train / calibration / holdout windows (months back from the end).

    Window lengths: the model config's, else the dataset config's `windows`, else sized from
    the data (`split_months`). Raises BadInputError when a window is too small or has only one
    class, naming the window.
    """
    if ts_col not in df.columns:
        raise BadInputError(f"{source}: timestamp column {ts_col!r} missing")
    if df.empty:
        raise BadInputError(f"{source}: no matured, approved applications to train on")
    ts = pd.to_datetime(df[ts_col], utc=True)
    given = sizes or Windows()
    holdout_months, validation_months = split_months(
        ts,
        cfg.min_rows,
        cfg.holdout_months or given.holdout_months,
        cfg.validation_months or given.calibration_months,
    )
    end = ts.max()
    # Whole calendar months (vintages): the holdout is the newest `holdout_months` months,
    # the month of the newest application included.
    month_start = end.tz_convert("UTC").normalize().replace(day=1)
    holdout_start = month_start - pd.DateOffset(months=holdout_months - 1)
    validation_start = holdout_start - pd.DateOffset(months=validation_months)
    in_train = ts < validation_start
    in_val = (ts >= validation_start) & (ts < holdout_start)
    in_hold = ts >= holdout_start
    parts = {"train": df[in_train], "validation": df[in_val], "holdout": df[in_hold]}
    problems = []
    for name, part in parts.items():
        if len(part) < cfg.min_rows:
            problems.append(f"{name} window has {len(part)} rows (< split.min_rows={cfg.min_rows})")
        elif part[label_col].nunique() < 2:
            problems.append(f"{name} window has a single label value: cannot fit or evaluate")
    if problems:
        raise BadInputError(
            f"{source}: out-of-time split impossible "
            f"(data {ts.min():%Y-%m-%d}..{end:%Y-%m-%d}, holdout {holdout_months} months, "
            f"calibration {validation_months} months)",
            problems=problems,
        )
    windows = SplitWindows(
        data_start=ts.min().isoformat(),
        validation_start=validation_start.isoformat(),
        holdout_start=holdout_start.isoformat(),
        data_end=end.isoformat(),
        train_rows=int(in_train.sum()),
        validation_rows=int(in_val.sum()),
        holdout_rows=int(in_hold.sum()),
        holdout_months=holdout_months,
        validation_months=validation_months,
    )
    return Split(
        train=parts["train"].reset_index(drop=True),
        validation=parts["validation"].reset_index(drop=True),
        holdout=parts["holdout"].reset_index(drop=True),
        windows=windows,
    )
