"""A known bias in a training set's labels, injected on purpose and recorded with the version.

Outcomes are not neutral facts. A collections process that wrote off one group's arrears
sooner than everyone else's leaves labels that call that group's good loans defaults. A
model trained on them never sees the protected attribute (it is never an input), yet it
learns the group's proxies (a short credit history, few years employed) and declines the
group. On its own holdout, cut from the same biased labels, such a version even looks
better than the champion: its AUC and P&L are measured against the very bias it learned.
Only the fairness gate, which judges decisions by group, can stop it.

`relabel` makes such a training set: a `share` of the group's non-defaults become defaults,
chosen by a seeded draw, so the same spec gives the same labels. Rehearsals of the fairness
gate use it: chapter 5 of the demo (`mlgate demo`) and the served canary tests. The spec is
recorded with the version (`records.tags` `label_bias`, the model card), and the training
set's fingerprint differs from the unbiased one's. Lineage therefore says what the version
learned from.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlgate.data.dataset_config import DatasetConfig
from mlgate.data.protected import protected_groups
from mlgate.errors import BadInputError


class LabelBias(BaseModel):
    """Which group's labels are biased, how much, and why (the story a reviewer reads)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attribute: str = Field(min_length=1)  # a protected attribute of the dataset
    group: str = Field(min_length=1)
    share: float = Field(gt=0, le=1, description="of the group's non-defaults, made defaults")
    seed: int = 0
    why: str = Field(min_length=1, max_length=300)

    def text(self) -> str:
        """One line for a tag, a log line or a model card."""
        return (
            f"{self.share:.0%} of {self.attribute}={self.group}'s non-defaults relabelled as "
            f"defaults (seed {self.seed}): {self.why}"
        )


def relabel(
    frame: pd.DataFrame,
    dataset: DatasetConfig,
    bias: LabelBias,
    protected: pd.DataFrame | None,
) -> tuple[pd.DataFrame, int]:
    """A copy of `frame` with the bias applied, and how many labels it changed.

    Bad input names what is wrong: an attribute the dataset does not protect, a group no row
    belongs to (a typo would otherwise train an unbiased model and call it biased), a frame
    without the label or the entity key."""
    where = f"label bias of dataset {dataset.name!r}"
    if bias.attribute not in dataset.protected_attributes:
        raise BadInputError(
            f"{where}: attribute {bias.attribute!r} is not a protected attribute "
            f"(the dataset's: {list(dataset.protected_attributes)})"
        )
    if dataset.label not in frame.columns:
        raise BadInputError(f"{where}: the training set has no label column {dataset.label!r}")
    groups = protected_groups(dataset, frame, protected)
    if groups is None:
        raise BadInputError(
            f"{where}: the protected attributes cannot be joined (no table, or no "
            f"{dataset.entity_key!r} column in the training set)"
        )
    member = (groups[bias.attribute].astype(str) == bias.group).to_numpy()
    if not member.any():
        seen = sorted(groups[bias.attribute].dropna().astype(str).unique())
        raise BadInputError(f"{where}: no row has {bias.attribute}={bias.group!r} (groups: {seen})")
    labels = pd.to_numeric(frame[dataset.label], errors="coerce").to_numpy()
    good = member & (labels == 0)
    draw = _draws(frame, dataset, bias.seed)
    flip = good & (draw < bias.share)
    out = frame.copy()
    out.loc[flip, dataset.label] = 1
    return out, int(flip.sum())


def _draws(frame: pd.DataFrame, dataset: DatasetConfig, seed: int) -> np.ndarray:
    """A uniform draw per row from its key and the seed, not from its position: the same row
    draws the same number however the frame is ordered, so a reproduction that rebuilds the
    training set (`training.train.reproduce_version`) relabels the very same loans."""
    row = dataset.row_key
    key = row if row and row in frame.columns else dataset.entity_key
    salt = hashlib.blake2b(str(seed).encode(), digest_size=8).hexdigest()  # 16 characters
    hashed = pd.util.hash_pandas_object(frame[key].astype(str), index=False, hash_key=salt)
    return hashed.to_numpy(dtype=np.uint64) / float(2**64)
