"""The gate evidence as files: what the evaluate step hands to each gate step.

In Kubeflow each gate runs in its own pod, so the holdout scores and drift windows the gates
read (`HoldoutScores`, `DriftData`) travel as a Dataset artifact: a folder of parquet files
plus `meta.json` (challenger, champion, row counts, why data is missing). The evaluation is
done once; each gate step only reads.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlgate.gates.inputs import DriftData, HoldoutScores

_GROUP = "group__"
_HOLDOUT_ARRAYS = ("y", "pd_challenger", "pd_champion", "bank_approved", "amount", "order", "early")


def _holdout_frame(h: HoldoutScores) -> pd.DataFrame:
    cols: dict[str, Any] = {}
    for name in _HOLDOUT_ARRAYS:
        value = getattr(h, name)
        if value is not None:
            cols[name] = np.asarray(value)
    df = pd.DataFrame(cols)
    if h.groups is not None:
        for col in h.groups.columns:
            df[_GROUP + col] = h.groups[col].to_numpy()
    df.attrs["reference_groups"] = h.reference_groups  # parquet keeps attrs (pandas >= 2.1)
    return df


def _holdout_from(df: pd.DataFrame) -> HoldoutScores:
    kw: dict[str, Any] = {n: df[n].to_numpy() for n in _HOLDOUT_ARRAYS if n in df.columns}
    groups = [c for c in df.columns if c.startswith(_GROUP)]
    if groups:
        kw["groups"] = df[groups].rename(columns=lambda c: c[len(_GROUP) :]).reset_index(drop=True)
    return HoldoutScores(**kw, reference_groups=df.attrs.get("reference_groups"))


def save(
    folder: str | Path,
    *,
    holdout: HoldoutScores | None,
    drift: DriftData | None,
    meta: dict[str, Any],
    extra_holdouts: dict[str, HoldoutScores] | None = None,
    recent: HoldoutScores | None = None,
) -> None:
    """Write the evidence folder atomically (temp folder, then rename)."""
    out = Path(folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if holdout is not None:
            _holdout_frame(holdout).to_parquet(tmp / "holdout.parquet", index=False)
        if recent is not None:
            _holdout_frame(recent).to_parquet(tmp / "recent.parquet", index=False)
        for name, h in (extra_holdouts or {}).items():
            _holdout_frame(h).to_parquet(tmp / f"holdout_{name}.parquet", index=False)
        drift_meta = None
        if drift is not None:
            drift.reference.to_parquet(tmp / "drift_reference.parquet", index=False)
            drift.current.to_parquet(tmp / "drift_current.parquet", index=False)
            if drift.champion_reference is not None:
                drift.champion_reference.to_parquet(
                    tmp / "drift_champion_reference.parquet", index=False
                )
            scores = {
                "reference_score": drift.reference_score,
                "current_score": drift.current_score,
                "champion_reference_score": drift.champion_reference_score,
                "champion_current_score": drift.champion_current_score,
            }
            for name, arr in scores.items():
                if arr is not None:
                    pd.DataFrame({"score": np.asarray(arr)}).to_parquet(tmp / f"{name}.parquet")
            drift_meta = {"numeric": drift.numeric, "categorical": drift.categorical}
        (tmp / "meta.json").write_text(
            json.dumps({**meta, "drift": drift_meta}, indent=2, sort_keys=True, default=str)
        )
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def meta(folder: str | Path) -> dict[str, Any]:
    return dict(json.loads((Path(folder) / "meta.json").read_text()))


def holdout(folder: str | Path, name: str | None = None) -> HoldoutScores | None:
    """The holdout scores (or a named extra holdout, falling back to the main one)."""
    base = Path(folder)
    if name and (base / f"holdout_{name}.parquet").is_file():
        return _holdout_from(pd.read_parquet(base / f"holdout_{name}.parquet"))
    path = base / "holdout.parquet"
    return _holdout_from(pd.read_parquet(path)) if path.is_file() else None


def drift(folder: str | Path) -> DriftData | None:
    base = Path(folder)
    info = meta(base).get("drift")
    if not info:
        return None

    def score(name: str) -> np.ndarray | None:
        p = base / f"{name}.parquet"
        return pd.read_parquet(p)["score"].to_numpy() if p.is_file() else None

    champ = base / "drift_champion_reference.parquet"
    return DriftData(
        reference=pd.read_parquet(base / "drift_reference.parquet"),
        current=pd.read_parquet(base / "drift_current.parquet"),
        numeric=list(info["numeric"]),
        categorical=list(info["categorical"]),
        reference_score=score("reference_score"),
        current_score=score("current_score"),
        champion_reference=pd.read_parquet(champ) if champ.is_file() else None,
        champion_reference_score=score("champion_reference_score"),
        champion_current_score=score("champion_current_score"),
    )


def recent(folder: str | Path) -> HoldoutScores | None:
    """The recent applications scored by both models (fairness of the next decisions)."""
    path = Path(folder) / "recent.parquet"
    return _holdout_from(pd.read_parquet(path)) if path.is_file() else None
