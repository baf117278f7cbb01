"""A numpy scorer for the logistic-regression PD model: same numbers, no pandas per request.

Scoring one row through the sklearn pipeline costs milliseconds (ColumnTransformer, pandas
validation, CalibratedClassifierCV plumbing), and the reason codes transform the row again.
The fitted model is small: median imputation values, scaler mean/scale, one-hot categories,
the coefficients and intercept, and a monotone calibration map (Platt sigmoid or isotonic).
`LinearFastPath.from_model` reads them once at load; `score` then computes the PD and the
per-feature contributions with a few numpy operations on plain column lists.

It replicates the pipeline operation by operation (same imputation, the same `(x - mean) /
scale`, the same contribution grouping as `reason_codes.linear_contributions`, the calibration
map averaged over the calibrated classifiers the way CalibratedClassifierCV does), so PDs match
the sklearn path to float rounding and reason codes rank identically; the serving tests check
both. Anything it does not recognise (tree models, other calibration methods, a numeric feature
the imputer dropped) makes `from_model` return None and callers keep the sklearn path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

from mlgate.errors import BadInputError
from mlgate.training.pipeline import PDModel
from mlgate.training.reason_codes import ReasonCode, adverse_reason

Columns = Mapping[str, Sequence[Any]]


@dataclass(frozen=True)
class _Calibration:
    """One calibrated classifier's monotone map from the logit to the PD."""

    method: str  # "sigmoid" | "isotonic"
    a: float = 0.0
    b: float = 0.0
    x_min: float = 0.0
    x_max: float = 0.0
    x: np.ndarray | None = None
    y: np.ndarray | None = None

    def __call__(self, t: np.ndarray) -> np.ndarray:
        if self.method == "sigmoid":
            p = np.asarray(expit(-(self.a * t + self.b)), dtype="float64")
        else:
            assert self.x is not None and self.y is not None
            if len(self.y) == 1:
                p = np.repeat(self.y, t.shape)
            else:
                p = np.interp(np.clip(t, self.x_min, self.x_max), self.x, self.y)
        p = p.copy()
        p[(1.0 < p) & (p <= 1.0 + 1e-5)] = 1.0  # as CalibratedClassifierCV clips
        return p


def _calibrations(model: PDModel) -> list[_Calibration] | None:
    out: list[_Calibration] = []
    for cc in getattr(model.calibrator, "calibrated_classifiers_", []):
        if getattr(cc, "method", None) not in ("sigmoid", "isotonic") or len(cc.calibrators) != 1:
            return None
        cal = cc.calibrators[0]
        if cc.method == "sigmoid":
            out.append(_Calibration("sigmoid", a=float(cal.a_), b=float(cal.b_)))
        elif getattr(cal, "out_of_bounds", "clip") == "clip":
            out.append(
                _Calibration(
                    "isotonic",
                    x_min=float(cal.X_min_),
                    x_max=float(cal.X_max_),
                    x=np.asarray(cal.X_thresholds_, dtype="float64"),
                    y=np.asarray(cal.y_thresholds_, dtype="float64"),
                )
            )
        else:
            return None
    return out or None


def _category_key(v: Any) -> str | None:
    """prepare_frame's categorical value: None for missing, else the string."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, bytes | bytearray):
        return v.decode("utf-8")
    return str(v)


@dataclass(frozen=True)
class Scored:
    """PD, logit and (rows x features) contributions for a batch, plus the raw values."""

    pd: np.ndarray
    logit: np.ndarray
    contributions: np.ndarray
    numeric: np.ndarray  # rows x numeric features, NaN for missing (display values)
    categorical: list[list[str | None]]  # per categorical feature, per row


@dataclass(frozen=True)
class LinearFastPath:
    """The fitted LR pipeline's parameters, scored with numpy (see the module docstring)."""

    numeric: list[str]
    categorical: list[str]
    medians: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    category_index: list[dict[str | None, int]]  # per categorical feature: value -> column
    category_offset: list[int]  # first encoded column of each categorical feature
    coef: np.ndarray
    intercept: float
    reference: np.ndarray
    reference_logit: float
    masks: list[np.ndarray]  # per feature: which encoded columns belong to it
    calibrations: list[_Calibration]
    reference_raw: dict[str, Any]

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical

    @classmethod
    def from_model(cls, model: PDModel) -> LinearFastPath | None:
        """The fast path for a logistic-regression PDModel, or None if it does not apply."""
        if model.algorithm != "logistic_regression" or model.reference_encoded is None:
            return None
        calibrations = _calibrations(model)
        if calibrations is None:
            return None
        pre = model.base.named_steps["pre"]
        clf = model.base.named_steps["clf"]
        n_num = len(model.numeric)
        medians = mean = scale = np.zeros(0)
        if n_num:
            num = pre.named_transformers_["num"]
            imputer, scaler = num.named_steps["impute"], num.named_steps["scale"]
            medians = np.asarray(imputer.statistics_, dtype="float64")
            if len(medians) != n_num or np.isnan(medians).any():
                return None  # the imputer dropped an all-missing column: keep sklearn
            mean = np.asarray(scaler.mean_, dtype="float64")
            scale = np.asarray(scaler.scale_, dtype="float64")
        index: list[dict[str | None, int]] = []
        offsets: list[int] = []
        col = n_num
        if model.categorical:
            onehot = pre.named_transformers_["cat"].named_steps["onehot"]
            for cats in onehot.categories_:
                offsets.append(col)
                index.append({_category_key(c): k for k, c in enumerate(cats)})
                col += len(cats)
        coef = np.asarray(clf.coef_[0], dtype="float64")
        if len(coef) != col:
            return None
        groups = list(range(n_num))
        for i, cats in enumerate(index):
            groups.extend([n_num + i] * len(cats))
        garr = np.asarray(groups)
        ref = np.asarray(model.reference_encoded, dtype="float64")
        intercept = float(clf.intercept_[0])
        return cls(
            numeric=list(model.numeric),
            categorical=list(model.categorical),
            medians=medians,
            mean=mean,
            scale=scale,
            category_index=index,
            category_offset=offsets,
            coef=coef,
            intercept=intercept,
            reference=ref,
            reference_logit=float(ref @ coef + intercept),
            masks=[garr == j for j in range(n_num + len(index))],
            calibrations=calibrations,
            reference_raw=dict(model.reference_raw),
        )

    # --- scoring -----------------------------------------------------------------------
    def _rows(self, columns: Columns) -> int:
        missing = [c for c in self.features if c not in columns]
        if missing:
            raise BadInputError(f"input: missing feature column(s) {missing}")
        lengths = {len(columns[c]) for c in self.features}
        if len(lengths) != 1:
            raise BadInputError(f"input: feature columns differ in length {sorted(lengths)}")
        return lengths.pop()

    def score(self, columns: Columns) -> Scored:
        """PD, logit and contributions for columns of raw feature values (lists, arrays)."""
        n = self._rows(columns)
        z = np.zeros((n, len(self.coef)))
        raw = np.empty((n, len(self.numeric)))
        for j, col in enumerate(self.numeric):
            try:
                raw[:, j] = np.asarray(columns[col], dtype="float64")
            except (ValueError, TypeError) as exc:
                raise BadInputError(f"input: column {col!r} must be numeric: {exc}") from exc
        if self.numeric:
            x = np.where(np.isnan(raw), self.medians, raw)
            x -= self.mean
            x /= self.scale
            z[:, : len(self.numeric)] = x
        cats: list[list[str | None]] = []
        for i, col in enumerate(self.categorical):
            values = [_category_key(v) for v in columns[col]]
            cats.append(values)
            lookup, offset = self.category_index[i], self.category_offset[i]
            for r, v in enumerate(values):
                k = lookup.get(v)
                if k is not None:  # unseen categories encode as all zeros (handle_unknown)
                    z[r, offset + k] = 1.0
        logit = z @ self.coef + self.intercept
        per_col = (z - self.reference) * self.coef
        contrib = np.empty((n, len(self.masks)))
        for j, mask in enumerate(self.masks):
            contrib[:, j] = per_col[:, mask].sum(axis=1)
        pd_ = np.zeros(n)
        for cal in self.calibrations:
            pd_ += cal(logit)
        pd_ /= len(self.calibrations)
        return Scored(pd=pd_, logit=logit, contributions=contrib, numeric=raw, categorical=cats)

    def predict_pd(self, columns: Columns) -> np.ndarray:
        return self.score(columns).pd

    def reason_codes(self, scored: Scored, top_k: int = 4) -> list[list[ReasonCode]]:
        """The top adverse factors per row, exactly as `reason_codes.reason_codes` ranks them."""
        features = self.features
        n_num = len(self.numeric)
        out: list[list[ReasonCode]] = []
        for i in range(len(scored.pd)):
            row = scored.contributions[i]
            order = np.argsort(-row, kind="stable")
            codes: list[ReasonCode] = []
            for j in order[:top_k]:
                c = float(row[j])
                if c <= 0:
                    break
                feature = features[j]
                categorical = j >= n_num
                value = scored.categorical[j - n_num][i] if categorical else scored.numeric[i, j]
                codes.append(
                    adverse_reason(
                        feature, value, self.reference_raw.get(feature), c, categorical=categorical
                    )
                )
            out.append(codes)
        return out
