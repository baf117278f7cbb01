"""The serving contract: what a request must look like before any row of it is scored.

A credit decision service must never approve garbage, so the model server checks each request
at the door and each row before scoring it. Pure functions of the request's inputs, the model's
feature rules and the serving settings; the runtime calls them and turns the result into HTTP
answers (`mlgate.serving.runtime`).

Request level (the whole request is refused, HTTP 4xx naming the input):
- more than `max_rows` rows: 413 (the body-size cap in `mlgate.serving.bodylimit` refuses
  larger bodies before they are parsed);
- inputs of different lengths, a `shape` that disagrees with the data, a shape that is not one
  column (`[n]` or `[n, 1]`): 400;
- a numeric feature sent with a non-numeric datatype (BYTES, BOOL), or a categorical feature
  sent as numbers: 400.

Row level (`check_rows`): a value that is not a number (a JSON `true` is not a number, nor is
the string "inf"), not finite, or outside the dataset config's range; a category that is not a
string; a row missing more than `max_missing_share` of the features. By default such a row
makes the request answer 400 naming the row and field (`on_invalid: reject`); with
`on_invalid: refer` the row is answered `refer` (no PD) and the others are scored.

Unseen categories: a category the model never saw in training is answered `refer` (no PD):
the model has no evidence about it, and scoring it as "no category" would decide on an
assumption. Missing values are JSON `null` (or "" for a categorical); the model imputes them
as in training, within the missing-share limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlgate.data.dataset_config import ColumnRange

NUMERIC_DATATYPES = frozenset(
    {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32",
     "UINT64"}
)  # fmt: skip
TEXT_DATATYPES = frozenset({"BYTES"})


class ServingSettings(BaseSettings):
    """Limits and the invalid-row policy, from `MLGATE_SERVING_*` (the manifest sets them).

    The defaults are safe for the pod's 1 GiB: a 10,000-row request of the credit features is
    ~2 MB of JSON and scores in bounded memory; 8 MiB leaves room for verbose clients.
    """

    model_config = SettingsConfigDict(env_prefix="MLGATE_SERVING_", extra="ignore")

    max_rows: int = Field(10_000, ge=1, description="rows per request; more answers 413")
    max_body_bytes: int = Field(8 * 2**20, ge=1024, description="request body; more answers 413")
    max_missing_share: float = Field(
        0.25, ge=0, lt=1, description="a row missing more than this share of features is invalid"
    )
    on_invalid: Literal["reject", "refer"] = "reject"


class FeatureRules(BaseModel):
    """What the model and its dataset config say each feature may hold."""

    numeric: dict[str, ColumnRange]  # every numeric feature; an empty range: finite only
    categorical: dict[str, list[str] | None]  # known categories (None: any string)

    @property
    def features(self) -> list[str]:
        return list(self.numeric) + list(self.categorical)


class ContractError(Exception):
    """The request as a whole breaks the contract: answered with `status` and this message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RowIssue:
    row: int
    field: str
    reason: str
    kind: Literal["invalid", "refer"]  # invalid: per on_invalid; refer: always refer

    def text(self) -> str:
        return f"row {self.row}: {self.field}: {self.reason}"


@dataclass(frozen=True)
class Checked:
    """Rows normalised for scoring (floats or None, strings or None) and each row's issue."""

    columns: dict[str, list[Any]]
    issues: list[RowIssue | None]

    @property
    def n(self) -> int:
        return len(self.issues)


@dataclass(frozen=True)
class Tensor:
    """One V2 input as the contract sees it (the runtime adapts MLServer's RequestInput)."""

    name: str
    datatype: str
    shape: Sequence[int]
    data: Any


def _flatten(data: Any, name: str) -> list[Any]:
    """A column's values: flat, or one level of nesting (`[[v], [v]]`); deeper is refused
    (an attacker's thousand-deep nesting must not reach Python's recursion limit)."""
    if not isinstance(data, list):
        raise ContractError(f"input {name!r}: data must be a list")
    nested = [isinstance(v, list) for v in data]
    if not any(nested):
        if any(isinstance(v, dict) for v in data):
            raise ContractError(f"input {name!r}: data holds objects, not values")
        return data
    if not all(nested):
        raise ContractError(f"input {name!r}: data mixes nested and flat values")
    out: list[Any] = []
    for row in data:
        if any(isinstance(v, list | dict) for v in row):
            raise ContractError(f"input {name!r}: data is nested more than one level")
        out.extend(row)
    return out


def read_inputs(tensors: Sequence[Tensor], max_rows: int) -> tuple[dict[str, list[Any]], int]:
    """The request's inputs as flat columns of one common length, or ContractError.

    One input is one column: its shape is `[n]` or `[n, 1]` and its data holds exactly n
    values (flat, or nested one value per row). The row cap is checked on the declared and the
    actual lengths before anything is copied, so an oversized request is refused cheaply.
    """
    if not tensors:
        raise ContractError("request has no inputs")
    columns: dict[str, list[Any]] = {}
    n: int | None = None
    first = ""
    for t in tensors:
        if t.name in columns:
            raise ContractError(f"input {t.name!r} appears twice")
        shape = list(t.shape)
        if any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape):
            raise ContractError(f"input {t.name!r}: shape {shape} must be non-negative integers")
        rows = shape[0] if shape else None
        if rows is not None and rows > max_rows:
            raise ContractError(
                f"input {t.name!r}: {rows} rows exceed the limit of {max_rows} per request", 413
            )
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
            raise ContractError(
                f"input {t.name!r}: shape {shape} is not one column ([n] or [n, 1])"
            )
        data = t.data if isinstance(t.data, list) else None
        if data is not None and len(data) > max_rows:
            raise ContractError(
                f"input {t.name!r}: {len(data)} rows exceed the limit of {max_rows} per request",
                413,
            )
        flat = _flatten(t.data, t.name)
        if len(flat) != shape[0]:
            raise ContractError(
                f"input {t.name!r}: shape {shape} says {shape[0]} value(s), data has {len(flat)}"
            )
        if n is None:
            n, first = len(flat), t.name
        elif len(flat) != n:
            raise ContractError(
                f"inputs differ in length: {first!r} has {n} row(s), {t.name!r} {len(flat)}"
            )
        columns[t.name] = flat
    assert n is not None
    if n == 0:
        raise ContractError("request has no rows")
    return columns, n


def check_datatypes(tensors: Sequence[Tensor], rules: FeatureRules) -> None:
    """A numeric feature must be sent as a number type, a categorical one as BYTES."""
    for t in tensors:
        if t.name in rules.numeric and t.datatype not in NUMERIC_DATATYPES:
            raise ContractError(
                f"input {t.name!r}: numeric feature sent as {t.datatype}; use FP64 or INT64"
            )
        if t.name in rules.categorical and t.datatype not in TEXT_DATATYPES:
            raise ContractError(
                f"input {t.name!r}: categorical feature sent as {t.datatype}; use BYTES"
            )


def _bounds(r: ColumnRange) -> str:
    lo = "(" if r.min_exclusive else "["
    hi = ")" if r.max_exclusive else "]"
    return f"{lo}{'-inf' if r.min is None else f'{r.min:g}'}, {'inf' if r.max is None else f'{r.max:g}'}{hi}"  # noqa: E501


def _numeric(
    col: str, values: Sequence[Any], rng: ColumnRange, issues: list[RowIssue | None]
) -> tuple[list[float | None], np.ndarray]:
    """Values as floats (None for missing), and which rows are missing."""
    out: list[float | None] = []
    missing = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        t = type(v)
        if v is None:
            out.append(None)
            missing[i] = True
            continue
        if t is bool or t is np.bool_:
            reason = "a boolean is not a number"
        elif isinstance(v, int | float | np.integer | np.floating):
            try:
                f = float(v)
            except OverflowError:
                f = math.inf
            if math.isfinite(f):
                out.append(f)
                continue
            reason = f"{v!r} is not a finite number"
        else:
            reason = f"{type(v).__name__} {str(v)[:40]!r} is not a number"
        out.append(None)
        if issues[i] is None:
            issues[i] = RowIssue(i, col, reason, "invalid")
    if rng.min is not None or rng.max is not None:
        arr = np.array([math.nan if v is None else v for v in out], dtype="float64")
        with np.errstate(invalid="ignore"):
            off = np.zeros(len(arr), dtype=bool)
            if rng.min is not None:
                off |= (arr <= rng.min) if rng.min_exclusive else (arr < rng.min)
            if rng.max is not None:
                off |= (arr >= rng.max) if rng.max_exclusive else (arr > rng.max)
        for i in np.flatnonzero(off).tolist():
            if issues[i] is None:
                issues[i] = RowIssue(
                    int(i), col, f"{out[i]:g} is outside the range {_bounds(rng)}", "invalid"
                )
    return out, missing


def _category(
    col: str, values: Sequence[Any], known: list[str] | None, issues: list[RowIssue | None]
) -> tuple[list[str | None], np.ndarray]:
    allowed = set(known) if known is not None else None
    out: list[str | None] = []
    missing = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if isinstance(v, bytes | bytearray):
            try:
                v = v.decode("utf-8")
            except UnicodeDecodeError:
                v = 0  # falls through to "not a string"
        if v is None or v == "":
            out.append(None)
            missing[i] = True
            continue
        if not isinstance(v, str):
            out.append(None)
            if issues[i] is None:
                issues[i] = RowIssue(i, col, f"{type(v).__name__} is not a category", "invalid")
            continue
        out.append(v)
        if allowed is not None and v not in allowed and issues[i] is None:
            issues[i] = RowIssue(i, col, f"category {v[:40]!r} was never seen in training", "refer")
    return out, missing


def check_rows(
    columns: Mapping[str, Sequence[Any]], rules: FeatureRules, max_missing_share: float
) -> Checked:
    """Each row's values against the feature rules; the first issue per row is kept.

    Invalid values outrank the unseen-category referral, so a row that is both is invalid.
    """
    absent = [f for f in rules.features if f not in columns]
    if absent:
        raise ContractError(f"request lacks features {absent}")
    n = len(columns[rules.features[0]])
    invalid: list[RowIssue | None] = [None] * n
    unseen: list[RowIssue | None] = [None] * n
    out: dict[str, list[Any]] = {}
    n_missing = np.zeros(n, dtype=int)
    for col, rng in rules.numeric.items():
        out[col], miss = _numeric(col, columns[col], rng, invalid)
        n_missing += miss
    for col, known in rules.categorical.items():
        out[col], miss = _category(col, columns[col], known, unseen)
        n_missing += miss
    # a non-string category is invalid, not unseen
    for i, u in enumerate(unseen):
        if u is not None and u.kind == "invalid" and invalid[i] is None:
            invalid[i] = u
    n_feat = len(rules.features)
    for i in np.flatnonzero(n_missing > max_missing_share * n_feat).tolist():
        if invalid[i] is None:
            invalid[i] = RowIssue(
                int(i),
                "(row)",
                f"{n_missing[i]} of {n_feat} features are missing "
                f"(more than {max_missing_share:.0%})",
                "invalid",
            )
    issues = [inv if inv is not None else u for inv, u in zip(invalid, unseen, strict=True)]
    return Checked(columns=out, issues=issues)


def known_categories(pd_model: Any) -> dict[str, list[str] | None]:
    """The categories each categorical feature had in training, read from the fitted encoder.

    Works for both algorithms' encoders (one-hot and ordinal); the imputer's fill value and
    missing markers are not categories a client may send. None when the encoder is not found
    (any string is then accepted and encoded as the model does).
    """
    if not pd_model.categorical:
        return {}
    try:
        enc = pd_model.base.named_steps["pre"].named_transformers_["cat"]
        enc = enc.steps[-1][1] if hasattr(enc, "steps") else enc
        cats = enc.categories_
    except (AttributeError, KeyError):
        return {c: None for c in pd_model.categorical}
    out: dict[str, list[str] | None] = {}
    for col, values in zip(pd_model.categorical, cats, strict=True):
        out[col] = sorted(
            str(v)
            for v in values
            if v is not None and not (isinstance(v, float) and math.isnan(v)) and v != "missing"
        )
    return out


def feature_rules(pd_model: Any, ranges: Mapping[str, ColumnRange]) -> FeatureRules:
    """The model's features with the dataset config's ranges and the training categories."""
    return FeatureRules(
        numeric={c: ranges.get(c, ColumnRange()) for c in pd_model.numeric},
        categorical=known_categories(pd_model),
    )
