"""Cron conversion for Kubeflow recurring runs (6 fields, seconds first)."""

from __future__ import annotations

import pytest

from mlgate.errors import BadInputError
from mlgate.pipelines.cron import to_kfp_cron


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("0 6 * * *", "0 0 6 * * *"),  # crontab: 06:00 daily -> second 0 prepended
        ("*/15 * * * 1-5", "0 */15 * * * 1-5"),
        ("30  2 1 JAN,jul MON", "0 30 2 1 JAN,jul MON"),  # whitespace normalised, names kept
        ("0 0 9 ? * 2-6", "0 0 9 ? * 2-6"),  # already KFP's 6 fields: unchanged
        ("@daily", "0 0 0 * * *"),
        ("@Hourly", "0 0 * * * *"),
    ],
)
def test_converts_to_six_fields(given: str, expected: str) -> None:
    assert to_kfp_cron(given) == expected
    assert len(to_kfp_cron(given).split()) == 6


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", "empty"),
        ("0 6 * *", "got 4"),
        ("0 0 6 * * * 2026", "got 7"),
        ("61 * * * *", "minute 61 out of range"),
        ("0 24 * * *", "hour 24 out of range"),
        ("0 6 * * 7", "use 0 for Sunday"),
        ("0 ? * * *", "only allowed in day-of-month/day-of-week"),  # '?' as the hour
        ("0 6 * * 5-1", "runs backwards"),
        ("*/0 * * * *", "step must be at least 1"),
        ("@every 1h", "unsupported descriptor"),
        ("0 6 * * FOO", "not a number"),
    ],
)
def test_rejects_bad_forms_clearly(given: str, message: str) -> None:
    with pytest.raises(BadInputError) as err:
        to_kfp_cron(given)
    assert message in str(err.value)
    assert repr(given) in str(err.value) or message == "empty"
