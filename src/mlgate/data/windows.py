"""Windows sized from the data: how far back a window must reach to hold enough rows.

The defaults (a 3-month holdout, 2 calibration months, 30 days of drift, 90 days of recent
applications) were made for a bank's flow of applications: thousands a month. A public table
of 1,000 loans over two years has 40 a month, so the same windows would hold too few rows to
judge anything. Windows a config leaves unset therefore start at the default and grow, a month
or a doubling of days at a time, until they hold the floor; big data keeps the defaults.
Precedence (highest first): the model config's `split` / the policy's window, the dataset
config's `windows`, then this sizing.
"""

from __future__ import annotations

import pandas as pd

DEFAULT_HOLDOUT_MONTHS = 3
DEFAULT_CALIBRATION_MONTHS = 2
DEFAULT_DRIFT_DAYS = 30
DEFAULT_RECENT_DAYS = 90


def month_starts(ts: pd.Series) -> pd.Series:
    """Each timestamp's calendar month (UTC), as the month's first instant."""
    utc = pd.to_datetime(ts, utc=True)
    return utc.dt.tz_localize(None).dt.to_period("M").dt.to_timestamp().dt.tz_localize("UTC")


def split_months(
    ts: pd.Series, min_rows: int, holdout: int | None, calibration: int | None
) -> tuple[int, int]:
    """(holdout months, calibration months) for a split counted back from the newest month.

    Given values are kept; unset ones start at the defaults and grow by whole months until
    the holdout and calibration windows each hold `min_rows` and the training window still
    does. When no sizing achieves that, the defaults (the split then reports every window
    that is too small).
    """
    if holdout is not None and calibration is not None:
        return holdout, calibration
    months = month_starts(ts).value_counts().sort_index(ascending=False)
    newest = months.index.max() if len(months) else None
    per_month: list[int] = []
    if newest is not None:
        oldest = months.index.min()
        span = (newest.year - oldest.year) * 12 + newest.month - oldest.month
        per_month = [int(months.get(newest - pd.DateOffset(months=k), 0)) for k in range(span + 1)]
    total = sum(per_month)

    def rows(start: int, count: int) -> int:
        return sum(per_month[start : start + count])

    fallback = (holdout or DEFAULT_HOLDOUT_MONTHS, calibration or DEFAULT_CALIBRATION_MONTHS)
    h = holdout or DEFAULT_HOLDOUT_MONTHS
    if holdout is None:
        while rows(0, h) < min_rows and h < len(per_month):
            h += 1
    c = calibration or DEFAULT_CALIBRATION_MONTHS
    if calibration is None:
        while rows(h, c) < min_rows and h + c < len(per_month):
            c += 1
    ok = rows(0, h) >= min_rows and rows(h, c) >= min_rows and total - rows(0, h + c) >= min_rows
    return (h, c) if ok else fallback


def days_holding(
    ts: pd.Series,
    end: pd.Timestamp,
    floor: int,
    default: int,
    not_before: pd.Timestamp | None = None,
) -> int:
    """The shortest window of `default` x 2^k days ending at `end` with at least `floor` rows;
    the whole history (from `not_before`, e.g. the end of a model's training data, which a
    drift window must not reach into) when even that is short of the floor."""
    utc = pd.to_datetime(ts, utc=True)
    utc = utc[utc < end]
    if not len(utc):
        return default
    start = utc.min() if not_before is None else max(utc.min(), not_before)
    span_days = max(int((end - start) / pd.Timedelta(days=1)), 1)
    days = default
    while days < span_days and int((utc >= end - pd.Timedelta(days=days)).sum()) < floor:
        days *= 2
    return default if span_days <= default else min(days, span_days)
