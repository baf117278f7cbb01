"""Content fingerprints of datasets: which data a model was trained on, reproducibly.

Definition (v1). The fingerprint is a sha256 over
1. a header: the format version and the sorted list of (column name, logical type), and
2. the sorted list of 64-bit row hashes.

Each column is normalised to a logical type before hashing, so the same data hashes the same
whether it was read from CSV or parquet, with any compression or row-group layout:
- `number`: every integer and float column, hashed as float64 (NaN and -0.0 normalised);
- `bool`; `string` (also dictionary/categorical columns, hashed by value);
- `timestamp`: any unit, hashed as UTC microseconds (naive timestamps are taken as UTC).
Anything else is hashed as its string form. Nulls hash to a fixed per-type value. A pandas
index saved into parquet (`__index_level_N__` columns) is row labels, not data, and is ignored.

A row hash mixes the column hashes in column-name order, so the fingerprint does NOT depend on
row order or column order, and DOES change when any value, column name or logical type changes.
Rows are a multiset: a duplicated row changes the fingerprint. Per-value hashes come from
`pandas.util.hash_array` (SipHash with pandas' fixed key) on numpy/Arrow buffers, never text
rendering, so 1M rows take well under a second per column.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from mlgate.errors import BadInputError

VERSION = "mlgate-fp-v1"
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")
_MULT = np.uint64(0x100000001B3)
_NULL = {"number": 0x6E756C6C6E756D, "bool": 2, "string": 0x6E756C6C737472, "timestamp": 0x7473}


class Fingerprint(BaseModel):
    """A dataset's content hash with what it covers."""

    sha256: str
    rows: int
    columns: list[str]
    column_types: dict[str, str]  # the schema as stored (Arrow types)
    logical_types: dict[str, str]
    source: str = "dataframe"
    format: str = "dataframe"
    tables: dict[str, Fingerprint] = Field(default_factory=dict)

    @property
    def short(self) -> str:
        return self.sha256[:12]


def _logical(t: pa.DataType) -> str:
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "number"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "timestamp"
    if pa.types.is_dictionary(t):
        return _logical(t.value_type)
    return "string"


def _hash_strings(col: pa.ChunkedArray) -> np.ndarray:
    """Per-value SipHash of a string column: each distinct value of a chunk is hashed once."""
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = col.cast(pa.string())
    parts = [np.zeros(0, dtype=np.uint64)]
    for chunk in col.chunks:  # per chunk: no costly unification of chunk dictionaries
        enc = pc.dictionary_encode(chunk)
        values = enc.dictionary.to_numpy(zero_copy_only=False).astype(object)
        # Dictionary values are unique: skip hash_array's own factorisation.
        vh = pd.util.hash_array(values, categorize=False) if values.size else np.zeros(1, np.uint64)
        if enc.indices.null_count == 0:
            parts.append(vh[enc.indices.to_numpy()])
            continue
        idx = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        parts.append(np.where(idx >= 0, vh[np.maximum(idx, 0)], np.uint64(_NULL["string"])))
    return np.concatenate(parts).astype(np.uint64)


def _column_hash(col: pa.ChunkedArray, logical: str) -> np.ndarray:
    if logical == "string":
        return _hash_strings(col)
    if logical == "number":
        arr = col.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
        null = np.isnan(arr)
        arr = np.where(null, 0.0, arr) + 0.0  # -0.0 -> 0.0
        h = pd.util.hash_array(arr)
    elif logical == "bool":
        arr = col.cast(pa.int8()).fill_null(2).to_numpy(zero_copy_only=False)
        return pd.util.hash_array(arr.astype(np.int64))
    else:  # timestamp
        t = col.type
        if pa.types.is_date(t):
            col = col.cast(pa.timestamp("us"))
        elif t.tz is None:
            col = col.cast(pa.timestamp(t.unit))
        col = col.cast(pa.timestamp("us", tz="UTC") if col.type.tz else pa.timestamp("us"))
        ints = col.cast(pa.int64())
        if ints.null_count == 0:
            return pd.util.hash_array(ints.to_numpy().astype(np.int64, copy=False))
        null = ints.is_null().to_numpy(zero_copy_only=False)
        arr = ints.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        h = pd.util.hash_array(arr)
    return np.where(null, np.uint64(_NULL[logical]), h).astype(np.uint64)


def fingerprint_table(table: pa.Table, *, source: str = "table", fmt: str = "arrow") -> Fingerprint:
    # A pandas index written to parquet (`__index_level_0__`) is row labels, not data.
    table = table.drop_columns([c for c in table.column_names if _PANDAS_INDEX.fullmatch(c)])
    names = sorted(table.column_names)
    logical = {c: _logical(table.schema.field(c).type) for c in names}
    rows = np.zeros(table.num_rows, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in names:
            seed = np.uint64(int.from_bytes(hashlib.sha256(c.encode()).digest()[:8], "little"))
            rows = (rows * _MULT) ^ seed ^ _column_hash(table.column(c), logical[c])
    rows.sort()
    header = json.dumps({"v": VERSION, "columns": [[c, logical[c]] for c in names]})
    digest = hashlib.sha256(header.encode())
    digest.update(rows.astype("<u8").tobytes())
    return Fingerprint(
        sha256=digest.hexdigest(),
        rows=table.num_rows,
        columns=list(table.column_names),
        column_types={f.name: str(f.type) for f in table.schema},
        logical_types=logical,
        source=source,
        format=fmt,
    )


def read_table(path: Path) -> pa.Table:
    """Read a CSV or parquet file into Arrow; an unreadable file is a BadInputError."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pacsv.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise BadInputError(f"{path}: unreadable {suffix[1:]} file: {exc}") from exc
    raise BadInputError(f"{path}: unsupported file type {suffix!r} (use .csv or .parquet)")


def fingerprint(data: Any) -> Fingerprint:
    """Fingerprint a DataFrame, an Arrow table, a CSV/parquet file or a folder of them.

    A folder (e.g. a generated world) hashes each table and combines the table fingerprints
    by file stem; `manifest.json` and other non-data files are ignored.
    """
    if isinstance(data, pa.Table):
        return fingerprint_table(data)
    if isinstance(data, pd.DataFrame):
        return fingerprint_table(
            pa.Table.from_pandas(data, preserve_index=False), source="dataframe", fmt="dataframe"
        )
    path = Path(os.fspath(data))
    if not path.exists():
        raise BadInputError(f"{path}: not found")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".csv", ".parquet", ".pq"))
        if not files:
            raise BadInputError(f"{path}: no .csv or .parquet files to fingerprint")
        parts = {p.stem: fingerprint(p) for p in files}
        digest = hashlib.sha256(VERSION.encode())
        for name in sorted(parts):
            digest.update(f"\n{name}:{parts[name].sha256}".encode())
        return Fingerprint(
            sha256=digest.hexdigest(),
            rows=sum(p.rows for p in parts.values()),
            columns=[],
            column_types={},
            logical_types={},
            source=str(path),
            format="folder",
            tables=parts,
        )
    table = read_table(path)
    return fingerprint_table(table, source=str(path), fmt=path.suffix.lower().lstrip("."))
