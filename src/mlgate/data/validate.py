"""Dataset validation: every problem at once, each naming its table, column and count.

A training run on bad data is worse than no run: it produces a model that looks fine. So data
is checked before anything downstream reads it, and validation never stops at the first
problem (a person fixing an extract wants the whole list). Checks:

- the file is readable and has rows;
- required columns exist (keys, event timestamp, label, features, protected attributes);
- types: numeric features are numbers, timestamps parse, labels are 0/1;
- missing values: share per column and overall, against `max_missing_share` (default 5%);
- value ranges from the config (e.g. loan_amount > 0);
- timestamps not in the future;
- duplicate keys (the row key, else entity key + event timestamp).

For the synthetic world (`format: synthetic`) each table is checked against its own contract,
plus the cross-table rules a lender's data must obey: outcomes only for approved applications,
and no more than `max_missing_share` of applications without bureau or transaction history.
Validation reads; it never writes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, Field

from mlgate.data import schema
from mlgate.data.dataset_config import ColumnRange, DatasetConfig
from mlgate.data.protected import derive
from mlgate.errors import BadInputError

Kind = Literal["key", "numeric", "timestamp", "binary", "category"]


class Problem(BaseModel):
    table: str
    column: str | None = None
    check: str  # unreadable | empty | missing_column | type | missing | range | future | duplicate | ...
    count: int = 0
    message: str

    def __str__(self) -> str:
        return self.message


class ValidationReport(BaseModel):
    dataset: str
    path: str
    ok: bool
    max_missing_share: float
    tables: dict[str, int] = Field(default_factory=dict)  # table -> rows read
    problems: list[Problem] = Field(default_factory=list)

    def raise_for_problems(self) -> None:
        """Raise BadInputError listing every problem (exit code 2) unless the data passed."""
        if not self.ok:
            raise BadInputError(
                f"{self.path}: dataset {self.dataset!r} failed validation "
                f"({len(self.problems)} problem(s))",
                problems=[p.message for p in self.problems],
            )


@dataclass
class TableContract:
    """What one table must look like."""

    name: str
    columns: dict[str, Kind]
    keys: list[str]
    nullable: set[str] = field(default_factory=set)  # exempt from the missing-value limit
    no_future: list[str] = field(default_factory=list)
    allowed: dict[str, set[str]] = field(default_factory=dict)


def _read(path: Path, table: str) -> tuple[pd.DataFrame | None, Problem | None]:
    suffix = path.suffix.lower()
    if not path.is_file():
        return None, Problem(table=table, check="unreadable", message=f"{path}: file not found")
    try:
        if suffix == ".csv":
            return pd.read_csv(path, low_memory=False), None
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path), None
    except Exception as exc:  # any parser error means the same thing to the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, Problem(
            table=table, check="unreadable", message=f"{path}: unreadable {suffix[1:]}: {reason}"
        )
    return None, Problem(
        table=table, check="unreadable", message=f"{path}: unsupported file type {suffix!r}"
    )


def _as_timestamps(s: pd.Series) -> tuple[pd.Series, int]:
    """Parse to UTC timestamps; naive values are taken as UTC. Returns (parsed, unparseable)."""
    if pd.api.types.is_datetime64_any_dtype(s):
        ts = s if getattr(s.dt, "tz", None) is not None else s.dt.tz_localize("UTC")
        return ts, 0
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]"), int(s.notna().sum())
    # ISO 8601 is fast and what most extracts use; only its failures get the slow parser.
    parsed = pd.to_datetime(s, utc=True, errors="coerce", format="ISO8601")
    retry = parsed.isna() & s.notna()
    if retry.any():
        parsed[retry] = pd.to_datetime(s[retry], utc=True, errors="coerce", format="mixed")
    return parsed, int((parsed.isna() & s.notna()).sum())


def _example(values: pd.Series) -> str:
    return ", ".join(repr(v) for v in values.drop_duplicates().head(3).tolist())


def check_frame(
    df: pd.DataFrame,
    contract: TableContract,
    ranges: dict[str, ColumnRange],
    max_missing: float,
    now: dt.datetime,
) -> list[Problem]:
    """Every problem of one table against its contract."""
    t = contract.name
    probs: list[Problem] = []
    n = len(df)
    if n == 0:
        return [Problem(table=t, check="empty", message=f"{t}: no rows")]
    absent = [c for c in contract.columns if c not in df.columns]
    for c in absent:
        probs.append(
            Problem(
                table=t,
                column=c,
                check="missing_column",
                message=f"{t}: required column {c!r} is missing",
            )
        )
    present = [c for c in contract.columns if c in df.columns]
    numeric: dict[str, pd.Series] = {}
    for c in present:
        kind = contract.columns[c]
        s = df[c]
        if kind in ("numeric", "binary"):
            if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
                num = s.astype(float)
            else:
                num = pd.to_numeric(s, errors="coerce")
                bad = int((num.isna() & s.notna()).sum())
                if bad or not pd.api.types.is_numeric_dtype(num):
                    probs.append(
                        Problem(
                            table=t,
                            column=c,
                            check="type",
                            count=bad,
                            message=f"{t}: column {c!r} must be numeric, but {bad} value(s) are "
                            f"not numbers (dtype {s.dtype}; e.g. "
                            f"{_example(s[num.isna() & s.notna()])})",
                        )
                    )
            numeric[c] = num
            if kind == "binary":
                off = int((num.notna() & ~num.isin([0, 1])).sum())
                if off:
                    probs.append(
                        Problem(
                            table=t,
                            column=c,
                            check="range",
                            count=off,
                            message=f"{t}: column {c!r} must be 0/1, {off} value(s) are not",
                        )
                    )
        elif kind == "timestamp":
            ts, bad = _as_timestamps(s)
            if bad:
                probs.append(
                    Problem(
                        table=t,
                        column=c,
                        check="type",
                        count=bad,
                        message=f"{t}: column {c!r} must hold timestamps, but {bad} value(s) do "
                        f"not parse (dtype {s.dtype}; e.g. {_example(s[ts.isna() & s.notna()])})",
                    )
                )
            if c in contract.no_future:
                future = int((ts > pd.Timestamp(now)).sum())
                if future:
                    probs.append(
                        Problem(
                            table=t,
                            column=c,
                            check="future",
                            count=future,
                            message=f"{t}: column {c!r} has {future} timestamp(s) in the future "
                            f"(after {now:%Y-%m-%d %H:%M} UTC; latest {ts.max()})",
                        )
                    )
        if c in contract.allowed:
            off = int((s.notna() & ~s.isin(list(contract.allowed[c]))).sum())
            if off:
                probs.append(
                    Problem(
                        table=t,
                        column=c,
                        check="range",
                        count=off,
                        message=f"{t}: column {c!r} has {off} value(s) outside "
                        f"{sorted(contract.allowed[c])}",
                    )
                )
    # Missing values, per column and overall (nullable-by-design columns excluded).
    counted = [c for c in present if c not in contract.nullable]
    if counted:
        miss = df[counted].isna().sum()
        for c, k in miss.items():
            share = k / n
            if share > max_missing:
                probs.append(
                    Problem(
                        table=t,
                        column=str(c),
                        check="missing",
                        count=int(k),
                        message=f"{t}: column {c!r} has {int(k)} missing value(s) "
                        f"({share:.1%} > {max_missing:.1%})",
                    )
                )
        total = int(miss.sum())
        overall = total / (n * len(counted))
        if overall > max_missing:
            probs.append(
                Problem(
                    table=t,
                    check="missing_overall",
                    count=total,
                    message=f"{t}: {total} missing value(s) overall "
                    f"({overall:.1%} of cells > {max_missing:.1%})",
                )
            )
    # Ranges from the config.
    for c, rng in ranges.items():
        if c not in df.columns:
            continue
        num = numeric.get(c)
        if num is None:
            num = pd.to_numeric(df[c], errors="coerce")
        low = pd.Series(False, index=df.index)
        if rng.min is not None:
            low = (num <= rng.min) if rng.min_exclusive else (num < rng.min)
        high = pd.Series(False, index=df.index)
        if rng.max is not None:
            high = (num >= rng.max) if rng.max_exclusive else (num > rng.max)
        off = int((low | high).sum())
        if off:
            bounds = []
            if rng.min is not None:
                bounds.append(f"{'>' if rng.min_exclusive else '>='} {rng.min:g}")
            if rng.max is not None:
                bounds.append(f"{'<' if rng.max_exclusive else '<='} {rng.max:g}")
            probs.append(
                Problem(
                    table=t,
                    column=c,
                    check="range",
                    count=off,
                    message=f"{t}: column {c!r} has {off} value(s) outside the allowed range "
                    f"({' and '.join(bounds)}; e.g. {_example(df.loc[low | high, c])})",
                )
            )
    # Duplicate keys.
    keys = [k for k in contract.keys if k in df.columns]
    if keys and len(keys) == len(contract.keys):
        dup = int(df.duplicated(subset=keys, keep="first").sum())
        if dup:
            probs.append(
                Problem(
                    table=t,
                    column="+".join(keys),
                    check="duplicate",
                    count=dup,
                    message=f"{t}: {dup} duplicate key(s) on {keys}",
                )
            )
    return probs


def derivation_problems(cfg: DatasetConfig, table: pd.DataFrame, name: str) -> list[Problem]:
    """Derived protected attributes that the data breaks (unmapped values, ages outside every
    band), each naming the config field; missing source columns are reported as columns."""
    if not cfg.derived_attributes:
        return []
    present = [a for a, r in cfg.derived_attributes.items() if r.source in table.columns]
    only = cfg.model_copy(update={"protected_attributes": present})
    _groups, problems = derive(only, table)
    return [Problem(table=name, check="derived", message=f"{name}: {p}") for p in problems]


def flat_contract(cfg: DatasetConfig, table: str, include_protected: bool) -> TableContract:
    cols: dict[str, Kind] = {cfg.entity_key: "key"}
    if cfg.row_key:
        cols[cfg.row_key] = "key"
    cols[cfg.event_timestamp] = "timestamp"
    cols[cfg.label] = "binary"
    nullable: set[str] = set()
    if cfg.early_label:
        cols[cfg.early_label] = "binary"
        nullable.add(cfg.early_label)
    if cfg.decision_column:
        cols[cfg.decision_column] = "category"
    for c in cfg.numeric_features:
        cols[c] = "numeric"
    for c in cfg.categorical_features:
        cols[c] = "category"
    if include_protected:
        for c in cfg.protected_columns():
            cols.setdefault(c, "category")
    keys = [cfg.row_key] if cfg.row_key else [cfg.entity_key, cfg.event_timestamp]
    return TableContract(
        name=table,
        columns=cols,
        keys=keys,
        nullable=nullable,
        no_future=[cfg.event_timestamp, *cfg.validation.no_future],
    )


def _protected_contract(cfg: DatasetConfig) -> TableContract:
    cols: dict[str, Kind] = {cfg.entity_key: "key"}
    cols.update({c: "category" for c in cfg.protected_columns() if c not in cols})
    return TableContract(name=schema.PROTECTED, columns=cols, keys=[cfg.entity_key])


def world_contracts(cfg: DatasetConfig) -> list[TableContract]:
    """The synthetic world's tables (see mlgate.data.schema)."""
    s = schema
    feats = set(cfg.features)

    def feature_kind(c: str) -> Kind:
        return "category" if c in cfg.categorical_features else "numeric"

    apps: dict[str, Kind] = {
        s.APPLICATION_ID: "key",
        s.APPLICANT_ID: "key",
        s.APPLICATION_TS: "timestamp",
    }
    apps.update({c: feature_kind(c) for c in s.APPLICATION_FIELDS if c in feats})
    apps[s.BANK_DECISION] = "category"
    bureau: dict[str, Kind] = {
        s.APPLICANT_ID: "key",
        s.EVENT_TS: "timestamp",
        s.CREATED_TS: "timestamp",
    }
    bureau.update({c: "numeric" for c in s.BUREAU_RAW})
    bureau.update({c: "numeric" for c in s.BUREAU_FEATURES if c in feats})
    txn: dict[str, Kind] = {
        s.APPLICANT_ID: "key",
        s.EVENT_TS: "timestamp",
        s.CREATED_TS: "timestamp",
    }
    txn.update({c: "numeric" for c in s.TRANSACTION_FEATURES if c in feats})
    outcomes: dict[str, Kind] = {
        s.APPLICATION_ID: "key",
        s.LABEL: "binary",
        s.LABEL_OBSERVED_TS: "timestamp",
        s.EARLY_LABEL: "binary",
        s.EARLY_OBSERVED_TS: "timestamp",
    }
    feature_ts = [s.EVENT_TS, s.CREATED_TS]
    return [
        TableContract(
            s.APPLICATIONS,
            apps,
            [s.APPLICATION_ID],
            no_future=[s.APPLICATION_TS],
            allowed={s.BANK_DECISION: {s.APPROVED, s.DECLINED}},
        ),
        TableContract(s.BUREAU, bureau, [s.APPLICANT_ID, s.EVENT_TS], no_future=feature_ts),
        TableContract(s.TRANSACTIONS, txn, [s.APPLICANT_ID, s.EVENT_TS], no_future=feature_ts),
        TableContract(
            s.OUTCOMES,
            outcomes,
            [s.APPLICATION_ID],
            # The 12-month label is NaN until its window closes: missing by design.
            nullable={s.LABEL, s.LABEL_OBSERVED_TS},
            no_future=[s.LABEL_OBSERVED_TS, s.EARLY_OBSERVED_TS],
        ),
        _protected_contract(cfg),
    ]


def _validate_world(
    cfg: DatasetConfig, folder: Path, max_missing: float, now: dt.datetime
) -> tuple[dict[str, int], list[Problem]]:
    s = schema
    if not folder.is_dir():
        return {}, [
            Problem(table="world", check="unreadable", message=f"{folder}: world folder not found")
        ]
    frames: dict[str, pd.DataFrame] = {}
    probs: list[Problem] = []
    contracts = world_contracts(cfg)
    for contract in contracts:
        df, err = _read(folder / f"{contract.name}.parquet", contract.name)
        if err is not None or df is None:
            probs.append(err or Problem(table=contract.name, check="unreadable", message="?"))
            continue
        frames[contract.name] = df
        probs += check_frame(df, contract, cfg.validation.ranges, max_missing, now)
    # Every configured feature must come from some table.
    found = {c for df in frames.values() for c in df.columns}
    if len(frames) == len(contracts):
        for c in cfg.features:
            if c not in found:
                probs.append(
                    Problem(
                        table="world",
                        column=c,
                        check="missing_column",
                        message=f"world: feature {c!r} is in no table",
                    )
                )
    apps = frames.get(s.APPLICATIONS)
    if apps is not None and s.APPLICANT_ID in apps.columns:
        # Applications without any feature history become rows of missing features.
        for table in (s.BUREAU, s.TRANSACTIONS):
            feats = frames.get(table)
            if feats is None or s.APPLICANT_ID not in feats.columns:
                continue
            lacking = int((~apps[s.APPLICANT_ID].isin(feats[s.APPLICANT_ID])).sum())
            share = lacking / max(len(apps), 1)
            if share > max_missing:
                probs.append(
                    Problem(
                        table=table,
                        column=s.APPLICANT_ID,
                        check="missing",
                        count=lacking,
                        message=f"{table}: {lacking} application(s) have no history here "
                        f"({share:.1%} > {max_missing:.1%}): their features would be missing",
                    )
                )
        outcomes = frames.get(s.OUTCOMES)
        if (
            outcomes is not None
            and s.APPLICATION_ID in outcomes.columns
            and s.BANK_DECISION in apps.columns
        ):
            approved = apps.loc[apps[s.BANK_DECISION] == cfg.approved_value, s.APPLICATION_ID]
            stray = int((~outcomes[s.APPLICATION_ID].isin(approved)).sum())
            if stray:
                probs.append(
                    Problem(
                        table=s.OUTCOMES,
                        column=s.APPLICATION_ID,
                        check="reference",
                        count=stray,
                        message=f"{s.OUTCOMES}: {stray} outcome(s) for applications that are "
                        "unknown or were not approved (a lender only observes approved loans)",
                    )
                )
    return {k: len(v) for k, v in frames.items()}, probs


def validate_dataset(
    cfg: DatasetConfig,
    df: pd.DataFrame | None = None,
    *,
    max_missing: float | None = None,
    now: dt.datetime | None = None,
) -> ValidationReport:
    """Validate the dataset `cfg` describes (or `df`, a frame already in memory, e.g. a
    training set built from it). Returns a report listing every problem; never raises for
    bad data (call `report.raise_for_problems()` for that)."""
    limit = cfg.validation.max_missing_share if max_missing is None else max_missing
    when = now or dt.datetime.now(dt.UTC)
    path = cfg.resolve_path()
    tables: dict[str, int] = {}
    probs: list[Problem] = []
    if df is not None:
        probs = check_frame(
            df, flat_contract(cfg, cfg.name, False), cfg.validation.ranges, limit, when
        )
        tables[cfg.name] = len(df)
        where = "(in memory)"
    elif cfg.resolved_format == "synthetic":
        tables, probs = _validate_world(cfg, path, limit, when)
        where = str(path)
    else:
        where = str(path)
        data, err = _read(path, cfg.name)
        if err is not None or data is None:
            probs.append(err or Problem(table=cfg.name, check="unreadable", message=where))
        else:
            tables[cfg.name] = len(data)
            contract = flat_contract(cfg, cfg.name, include_protected=not cfg.protected_path)
            probs += check_frame(data, contract, cfg.validation.ranges, limit, when)
            if not cfg.protected_path:
                probs += derivation_problems(cfg, data, cfg.name)
        if cfg.protected_path:
            ppath = cfg.resolve_path(cfg.protected_path)
            pdata, perr = _read(ppath, schema.PROTECTED)
            if perr is not None or pdata is None:
                probs.append(
                    perr or Problem(table=schema.PROTECTED, check="unreadable", message="")
                )
            else:
                tables[schema.PROTECTED] = len(pdata)
                probs += check_frame(pdata, _protected_contract(cfg), {}, limit, when)
                probs += derivation_problems(cfg, pdata, schema.PROTECTED)
    return ValidationReport(
        dataset=cfg.name,
        path=where,
        ok=not probs,
        max_missing_share=limit,
        tables=tables,
        problems=probs,
    )
