"""What the gates read: plain arrays and frames, so every gate is a pure function.

The runner (`evaluate.py`) builds these from the registry, the feature store and the data
source; tests and benchmarks build them directly. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class HoldoutScores:
    """The out-of-time holdout scored by both models.

    `y` is the matured label (1 = default) and NaN where no outcome exists: declined
    applications (selection bias) and applications whose window has not closed.
    """

    y: np.ndarray
    pd_challenger: np.ndarray
    pd_champion: np.ndarray | None = None
    bank_approved: np.ndarray | None = None  # the bank's historical decision (bool)
    amount: np.ndarray | None = None  # loan amount, for the P&L
    order: np.ndarray | None = None  # application time (sortable), for the validation window
    groups: pd.DataFrame | None = None  # protected attributes, row-aligned; never features
    early: np.ndarray | None = None  # early-delinquency proxy label
    window: str | None = None  # which window these rows are, for reasons ("recent window ...")
    # group sizes per protected attribute in the reference (training) population: a group
    # it holds must show up, at the floor, in this window (fairness fails closed otherwise)
    reference_groups: dict[str, dict[str, int]] | None = None

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=float)
        self.pd_challenger = np.asarray(self.pd_challenger, dtype=float)
        if self.pd_champion is not None:
            self.pd_champion = np.asarray(self.pd_champion, dtype=float)
        n = len(self.y)
        for name in ("pd_challenger", "pd_champion", "bank_approved", "amount", "order", "early"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != n:
                raise ValueError(f"{name}: {len(arr)} rows, labels have {n}")
        if self.groups is not None and len(self.groups) != n:
            raise ValueError(f"groups: {len(self.groups)} rows, labels have {n}")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def labelled(self) -> np.ndarray:
        return np.isfinite(self.y)


@dataclass
class DriftData:
    """Reference (the training set) and current (recent applications) feature frames.

    The champion's own training set and its scores, when given, let the promotion gate tell
    drift of the population (the champion is just as far from today's applications) from drift
    the challenger would bring (its training data is further away than the champion's).
    """

    reference: pd.DataFrame
    current: pd.DataFrame
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    reference_score: np.ndarray | None = None
    current_score: np.ndarray | None = None
    champion_reference: pd.DataFrame | None = None
    champion_reference_score: np.ndarray | None = None
    champion_current_score: np.ndarray | None = None
    window: str | None = None  # the current window, for reasons ("current window (last 30 days)")
