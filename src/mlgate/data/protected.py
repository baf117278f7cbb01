"""Protected attributes: read from their table, derived where the config says, joined by key.

The one home of "which group is this applicant in". Training's fairness table, the gates
(holdout, recent applications), monitoring and the pipeline's monitoring step all call
`load_protected` / `protected_groups`, so a derived attribute (sex from a combined
personal-status code, age bands from an age) means the same groups everywhere. Protected
attributes are never model inputs: they are joined to scored rows by the entity key.

A derivation that cannot be applied to the data (a value the map does not know, an age outside
every band, a source column that is not there) is bad input naming the config field: a silent
`(missing)` group would turn a config mistake into a fairness verdict.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlgate.data.dataset_config import Bands, DatasetConfig, as_text
from mlgate.data.fingerprint import read_table
from mlgate.errors import BadInputError


def protected_table_path(dataset: DatasetConfig) -> Path:
    """Where the protected attributes live: `protected_path`, else the dataset's own file."""
    if not dataset.protected_path:
        return dataset.resolve_path()
    raw = Path(dataset.protected_path)
    if dataset.resolved_format == "synthetic" and not raw.is_absolute():
        return dataset.resolve_path() / raw
    return dataset.resolve_path(dataset.protected_path)


def _examples(values: pd.Series) -> str:
    return ", ".join(repr(v) for v in pd.unique(values)[:3].tolist())


def _mapped(values: pd.Series, mapping: dict[str, str]) -> tuple[pd.Series, pd.Series]:
    """(groups, unmapped non-missing values)."""
    present = values.notna()
    text = values[present].map(as_text)
    groups = pd.Series(pd.NA, index=values.index, dtype="object")
    groups[present] = text.map(mapping)
    unmapped = values[present & groups.isna()]
    return groups, unmapped


def _banded(values: pd.Series, bands: Bands) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(groups, non-numeric values, values outside every band)."""
    num = pd.to_numeric(values, errors="coerce")
    not_numeric = values[values.notna() & num.isna()]
    idx = np.searchsorted(np.asarray(bands.edges), num.to_numpy(float), side="right") - 1
    inside = num.notna().to_numpy() & (idx >= 0) & (idx < len(bands.labels))
    groups = pd.Series(pd.NA, index=values.index, dtype="object")
    labels = np.asarray(bands.labels, dtype=object)
    groups[inside] = labels[idx[inside]]
    outside = values[num.notna() & ~inside]
    return groups, not_numeric, outside


def derive(dataset: DatasetConfig, table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The protected attributes of `table` (entity key + one column per attribute, derived
    ones computed) and every problem found, each naming the config field and the column."""
    problems: list[str] = []
    key = dataset.entity_key
    out = (
        pd.DataFrame({key: table[key]}) if key in table.columns else pd.DataFrame(index=table.index)
    )
    for name in dataset.protected_attributes:
        rule = dataset.derived_attributes.get(name)
        if rule is None:
            if name not in table.columns:
                problems.append(f"protected_attributes: column {name!r} is missing")
                continue
            out[name] = table[name]
            continue
        field = f"derived_attributes.{name}"
        if rule.source not in table.columns:
            problems.append(f"{field}.source: column {rule.source!r} is missing")
            continue
        values = table[rule.source]
        if rule.map is not None:
            groups, unmapped = _mapped(values, rule.map)
            if len(unmapped):
                problems.append(
                    f"{field}.map: {len(unmapped)} value(s) of column {rule.source!r} are not "
                    f"mapped (e.g. {_examples(unmapped)}; mapped: {', '.join(rule.map)})"
                )
        else:
            assert rule.bands is not None  # the config allows exactly one of map/bands
            groups, not_numeric, outside = _banded(values, rule.bands)
            if len(not_numeric):
                problems.append(
                    f"{field}.source: column {rule.source!r} has {len(not_numeric)} non-numeric "
                    f"value(s) (e.g. {_examples(not_numeric)}): bands need numbers"
                )
            if len(outside):
                lo, hi = rule.bands.edges[0], rule.bands.edges[-1]
                problems.append(
                    f"{field}.bands: {len(outside)} value(s) of column {rule.source!r} lie "
                    f"outside every band [{lo:g}, {hi:g}) (e.g. {_examples(outside)})"
                )
        out[name] = groups
    return out, problems


def load_protected(dataset: DatasetConfig) -> pd.DataFrame | None:
    """Protected attributes keyed by the entity key (derived ones computed), one row per
    entity; None when the dataset has none or their table is absent."""
    if not dataset.protected_attributes:
        return None
    path = protected_table_path(dataset)
    if not path.is_file():
        return None
    table = read_table(path).to_pandas()
    if dataset.entity_key not in table.columns:
        raise BadInputError(
            f"{dataset.where}: entity_key {dataset.entity_key!r} is not a column of {path} "
            "(protected attributes are joined by it)"
        )
    groups, problems = derive(dataset, table)
    if problems:
        raise BadInputError(
            f"{dataset.where}: protected attributes cannot be read from {path}", problems=problems
        )
    return groups.drop_duplicates(dataset.entity_key, keep="last").reset_index(drop=True)


def protected_groups(
    dataset: DatasetConfig, frame: pd.DataFrame, table: pd.DataFrame | None
) -> pd.DataFrame | None:
    """The protected attributes of `frame`'s rows (row-aligned), joined by the entity key."""
    if table is None or dataset.entity_key not in frame.columns:
        return None
    joined = frame[[dataset.entity_key]].merge(table, on=dataset.entity_key, how="left")
    return joined[dataset.protected_attributes].reset_index(drop=True)
