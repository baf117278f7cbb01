"""Cron expressions for Kubeflow recurring runs.

KFP's scheduler parses cron with robfig/cron in seconds-first mode: SIX fields,
`second minute hour day-of-month month day-of-week`. People (and crontab, Kubernetes CronJobs,
GitHub Actions) write FIVE. A five-field expression handed to KFP unchanged is read shifted by
one field ("0 6 * * 1" would mean second 0, minute 6, every hour, ...), so we convert it by
prepending second 0, and reject what we cannot convert faithfully with a message saying why.
"""

from __future__ import annotations

import re

from mlgate.errors import BadInputError

_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
_DAYS = "SUN MON TUE WED THU FRI SAT".split()

# (name, min, max, names allowed, '?' allowed)
_FIELDS_6 = [
    ("second", 0, 59, None, False),
    ("minute", 0, 59, None, False),
    ("hour", 0, 23, None, False),
    ("day-of-month", 1, 31, None, True),
    ("month", 1, 12, _MONTHS, False),
    ("day-of-week", 0, 6, _DAYS, True),
]

# Descriptors robfig/cron understands, written out so the result is always plain six fields.
_DESCRIPTORS = {
    "@yearly": "0 0 0 1 1 *",
    "@annually": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0",
    "@daily": "0 0 0 * * *",
    "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}

_ITEM = re.compile(r"^(?P<range>\*|\?|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(?P<step>\d+))?$")


def _value(token: str, field: tuple[str, int, int, list[str] | None, bool], expr: str) -> int:
    name, lo, hi, names, _ = field
    if names and token.upper() in names:
        return names.index(token.upper()) + (1 if name == "month" else 0)
    if not token.isdigit():
        raise BadInputError(f"cron {expr!r}: {name} value {token!r} is not a number")
    value = int(token)
    if name == "day-of-week" and value == 7:
        raise BadInputError(
            f"cron {expr!r}: day-of-week 7 is not accepted by Kubeflow's scheduler; use 0 for Sunday"
        )
    if not lo <= value <= hi:
        raise BadInputError(f"cron {expr!r}: {name} {value} out of range {lo}-{hi}")
    return value


def _check_field(text: str, field: tuple[str, int, int, list[str] | None, bool], expr: str) -> None:
    name, _, _, _, question_ok = field
    for item in text.split(","):
        m = _ITEM.match(item)
        if not m:
            raise BadInputError(f"cron {expr!r}: {name} field {text!r} is not valid cron syntax")
        rng, step = m.group("range"), m.group("step")
        if rng == "?" and not question_ok:
            raise BadInputError(f"cron {expr!r}: '?' is only allowed in day-of-month/day-of-week")
        if step is not None and int(step) == 0:
            raise BadInputError(f"cron {expr!r}: {name} step must be at least 1")
        if rng in ("*", "?"):
            continue
        parts = rng.split("-")
        values = [_value(p, field, expr) for p in parts]
        if len(values) == 2 and values[0] > values[1]:
            raise BadInputError(f"cron {expr!r}: {name} range {rng!r} runs backwards")


def to_kfp_cron(expr: str) -> str:
    """A six-field, seconds-first cron expression for KFP from a 5- or 6-field one.

    Five fields (crontab) get second 0 prepended; six fields are taken as KFP's form; the
    `@daily`-style descriptors are written out. Anything else raises BadInputError.
    """
    text = " ".join(expr.split())
    if not text:
        raise BadInputError("cron expression is empty")
    if text.startswith("@"):
        if text.lower() in _DESCRIPTORS:
            return _DESCRIPTORS[text.lower()]
        raise BadInputError(
            f"cron {expr!r}: unsupported descriptor (use one of {', '.join(sorted(_DESCRIPTORS))} "
            "or a 5-field expression)"
        )
    fields = text.split(" ")
    if len(fields) == 5:
        fields = ["0", *fields]
    elif len(fields) != 6:
        raise BadInputError(
            f"cron {expr!r}: expected 5 fields (minute hour day-of-month month day-of-week) or "
            f"Kubeflow's 6 (second first), got {len(fields)}"
        )
    for value, field in zip(fields, _FIELDS_6, strict=True):
        _check_field(value, field, expr)
    return " ".join(fields)
