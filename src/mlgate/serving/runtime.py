"""The MLServer runtime that serves a registered credit-risk model version.

Why a custom runtime: MLflow 3 saves sklearn models with skops, which MLServer's stock sklearn
runtime cannot read, and the stock MLflow runtime returns bare predictions. This one loads the
model through `mlflow.pyfunc` (the same object training evaluated) and answers, per application:

- `pd`: the calibrated probability of default (FP64);
- `decision`: `decline` when PD >= the cut-off, else `approve`;
- `reason_codes`: the top adverse factors as a JSON string per row (the training issue's codes);
- `model_version`: the registered version that produced the score.

The cut-off is credit policy, not model code: it comes from the environment variable
`MLGATE_CUTOFF`, which the environment's overlay sets. Without it the model refuses to load
(failing closed beats deciding with a guessed cut-off).

A request (V2 / Open Inference Protocol, `content_type: pd`, one input per column) carries either
the full feature vector, or the applicant key (`applicant_id`) plus the application's own fields,
in which case the runtime looks the rest up in Feast's online store (TTL-checked by
`mlgate.features.online.lookup`). Fields in the request win over looked-up values. A request
parameter `as_of` (ISO time) looks features up as of that time instead of now (replays, tests).

Speed: for logistic regression (the default) the runtime scores with the numpy fast path read
from the fitted pipeline at load (`mlgate.training.fastpath`, equal to the sklearn path to float
rounding), and reads a full feature vector straight from the request's inputs instead of
building a DataFrame; tree models take the pandas path.

Every request passes the serving contract first (`mlgate.serving.contract`): row cap (413),
shapes, types, finiteness, the dataset config's ranges, the missing share and unseen
categories, per row. A row that breaks it is never scored: the request answers 400 naming the
row and field, or (with `MLGATE_SERVING_ON_INVALID=refer`) the row is answered `refer`. A
fifth output, `refer_reason`, says why a row was referred ("" otherwise).

Each request is counted in the Prometheus metrics MLServer's metrics server serves
(`mlgate.serving.metrics`): decisions, PDs, reason codes, refusals and time, per model version.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from typing import Any

import numpy as np
import pandas as pd
from mlserver import MLModel
from mlserver.codecs import StringCodec
from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput

from mlgate.data.dataset_config import ColumnRange
from mlgate.errors import BadInputError
from mlgate.serving.contract import (
    Checked,
    ContractError,
    FeatureRules,
    ServingSettings,
    Tensor,
    check_datatypes,
    check_rows,
    feature_rules,
    read_inputs,
)
from mlgate.serving.metrics import ModelMetrics, Refusal
from mlgate.training.fastpath import LinearFastPath
from mlgate.training.pyfunc import decide

CUTOFF_ENV = "MLGATE_CUTOFF"
KEY = "applicant_id"
RANGES_KEY = "ranges"  # model-settings.json parameters.extra: the dataset config's value ranges

__all__ = ["CUTOFF_ENV", "KEY", "CreditRiskRuntime", "decide", "read_cutoff"]


class BadRequest(MLServerError):
    """A request refused as bad input (4xx); `reason` is how the metrics count it."""

    def __init__(self, msg: str, status_code: int = 400, reason: Refusal | None = None) -> None:
        super().__init__(msg, status_code=status_code)
        self.reason: Refusal = reason or ("too_large" if status_code == 413 else "bad_request")


def read_cutoff(environ: dict[str, str] | None = None) -> float:
    raw = (environ if environ is not None else os.environ).get(CUTOFF_ENV)
    if raw is None or raw.strip() == "":
        raise RuntimeError(f"{CUTOFF_ENV} is not set: the overlay must set the decision cut-off")
    try:
        value = float(raw)
    except ValueError as exc:
        raise RuntimeError(f"{CUTOFF_ENV}={raw!r} is not a number") from exc
    if not 0.0 < value < 1.0:
        raise RuntimeError(f"{CUTOFF_ENV}={value} must lie strictly between 0 and 1")
    return value


def read_ranges(extra: dict[str, Any]) -> dict[str, ColumnRange]:
    """The value ranges `model_repository` wrote; without them the model refuses to load.

    Failing closed: a server that does not know the plausible range of an income would score
    an income of 1e308.
    """
    raw = extra.get(RANGES_KEY)
    if not isinstance(raw, dict):
        raise RuntimeError(
            f"model-settings.json: parameters.extra.{RANGES_KEY} (the dataset config's value "
            "ranges, written by mlgate's model_repository) is required"
        )
    return {str(k): ColumnRange.model_validate(v) for k, v in raw.items()}


def _tensors(payload: InferenceRequest) -> list[Tensor]:
    return [Tensor(i.name, i.datatype, i.shape, i.data.root) for i in payload.inputs]


class CreditRiskRuntime(MLModel):
    """MLServer model: PD, decision, reason codes and version for each application."""

    validate_rows = True  # the benchmark's unchecked peer turns this off; production never does

    async def load(self) -> bool:
        import mlflow.pyfunc

        params = self.settings.parameters
        uri = params.uri if params and params.uri else None
        if not uri:
            raise RuntimeError("model-settings.json: parameters.uri (the MLflow model) is required")
        self._cutoff = read_cutoff()
        self._limits = ServingSettings()
        extra = (params.extra or {}) if params else {}
        ranges = read_ranges(extra)
        pyfunc = mlflow.pyfunc.load_model(uri)
        self._model: Any = pyfunc.unwrap_python_model()
        self._features: list[str] = list(self._model.features)
        self._rules: FeatureRules = feature_rules(self._model.pd_model, ranges)
        self._model_version = str(
            extra.get("model_version") or (params.version if params else None) or ""
        )
        self._top_k = int(extra.get("top_k", 4))
        self._fast: LinearFastPath | None = LinearFastPath.from_model(self._model.pd_model)
        self._feast: Any = None  # (settings, FeatureStore), opened on the first lookup
        self._warm_feast()
        self.__dict__.pop("_metrics", None)  # a reload counts under the version it loaded
        _ = self._metrics  # every outcome's series exists from load on
        return True

    @functools.cached_property
    def _metrics(self) -> ModelMetrics:
        """This version's Prometheus metrics (made at load, or on first use)."""
        return ModelMetrics(self.name, self._model_version)

    def _warm_feast(self) -> None:
        """Open the online store at load so the first keyed request is not the slow one.

        Best effort: an image without Feast, or a workspace without a feature repo, serves
        full vectors and reports the lookup problem on the first keyed request instead.
        """
        try:
            from mlgate.config import load_settings
            from mlgate.features.store import open_store

            settings = load_settings()
            self._feast = (settings, open_store(settings))
        except Exception:  # noqa: BLE001 - see docstring
            self._feast = None

    def _lookup(self, keys: list[Any], at: str | None) -> pd.DataFrame:
        """The features Feast's online store holds for these applicants (TTL-checked)."""
        try:
            from mlgate.config import load_settings
            from mlgate.features.online import lookup
            from mlgate.features.store import open_store
        except ImportError as exc:  # an image built without Feast serves full vectors only
            raise BadRequest(
                f"request lacks features and this server cannot look them up ({exc}); "
                "send the full feature vector"
            ) from exc
        if not all(isinstance(k, str | bytes) and k for k in keys):
            raise BadRequest(f"input {KEY!r}: every key must be a non-empty string")
        if self._feast is None:
            settings = load_settings()
            self._feast = (settings, open_store(settings))
        settings, store = self._feast
        ids = [k.decode("utf-8") if isinstance(k, bytes) else k for k in keys]
        return lookup(settings, ids, at, store=store).reset_index(drop=True)

    def _columns(self, payload: InferenceRequest) -> dict[str, list[Any]]:
        """The feature columns, completed from Feast when the request carries only the key.

        Looked-up values that are missing or stale (NaN) become missing (None); values the
        request itself carries are taken as sent and checked by the contract.
        """
        tensors = _tensors(payload)
        try:
            columns, _ = read_inputs(tensors, self._limits.max_rows)
            check_datatypes(tensors, self._rules)
        except ContractError as exc:
            raise BadRequest(str(exc), exc.status) from exc
        missing = [c for c in self._features if c not in columns]
        if missing and KEY in columns:
            params = payload.parameters.model_dump() if payload.parameters else {}
            online = self._lookup(columns[KEY], params.get("as_of"))
            for col in missing:
                if col in online.columns:
                    columns[col] = [
                        None if (isinstance(v, float) and math.isnan(v)) or v is pd.NA else v
                        for v in online[col].tolist()
                    ]
            missing = [c for c in self._features if c not in columns]
        if missing:
            raise BadRequest(
                f"request lacks features {missing} and carries no '{KEY}' to look them up"
            )
        return columns

    def _check(self, columns: dict[str, list[Any]]) -> Checked:
        if not self.validate_rows:  # the benchmark's baseline: the request as sent
            n = len(columns[self._features[0]])
            return Checked(columns={f: columns[f] for f in self._features}, issues=[None] * n)
        try:
            checked = check_rows(columns, self._rules, self._limits.max_missing_share)
        except ContractError as exc:
            raise BadRequest(str(exc), exc.status) from exc
        if self._limits.on_invalid == "reject":
            bad = [i for i in checked.issues if i is not None and i.kind == "invalid"]
            if bad:
                more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
                raise BadRequest(
                    "invalid input: " + "; ".join(i.text() for i in bad[:3]) + more,
                    reason="invalid_row",
                )
        return checked

    def _score(self, columns: dict[str, list[Any]]) -> tuple[np.ndarray, list]:
        if self._fast is not None:
            try:
                scored = self._fast.score(columns)
            except BadInputError as exc:
                raise BadRequest(str(exc)) from exc
            return scored.pd, self._fast.reason_codes(scored, top_k=self._top_k)
        x = pd.DataFrame(columns)[self._features]
        pd_values = np.asarray(self._model.predict_pd(x), dtype=float)
        return pd_values, self._model.reason_codes(x, top_k=self._top_k)

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        started = time.perf_counter()
        try:
            response, decisions, pds, codes = self._answer(payload)
        except BadRequest as exc:
            rows = declared_rows(payload, self._limits.max_rows)
            self._metrics.refused(exc.reason, rows, time.perf_counter() - started)
            raise
        except Exception:
            self._metrics.failed(time.perf_counter() - started)
            raise
        self._metrics.answered(decisions, pds, codes, time.perf_counter() - started)
        return response

    def _answer(
        self, payload: InferenceRequest
    ) -> tuple[InferenceResponse, list[str], list[float], list[str]]:
        """The response, and what the metrics count: decisions, scored PDs, reason codes."""
        checked = self._check(self._columns(payload))
        n = checked.n
        ok = [i for i, issue in enumerate(checked.issues) if issue is None]
        pd_out = [math.nan] * n  # no score: null on REST (orjson), NaN on gRPC
        reasons = ["[]"] * n
        given: list[str] = []
        refer = [issue.text() if issue is not None else "" for issue in checked.issues]
        if ok:
            cols = checked.columns
            if len(ok) < n:
                cols = {c: [v[i] for i in ok] for c, v in cols.items()}
            with np.errstate(all="ignore"):
                pd_values, codes = self._score(cols)
            for j, i in enumerate(ok):
                p = float(pd_values[j])
                if math.isfinite(p) and 0.0 <= p <= 1.0:
                    pd_out[i] = p
                    reasons[i] = json.dumps([rc.model_dump(mode="json") for rc in codes[j]])
                    given += [rc.code for rc in codes[j]]
                else:  # never approve on a PD that is not a probability
                    refer[i] = f"row {i}: the model returned a PD that is not finite ({p!r})"
        decisions = decide(pd_out, self._cutoff)
        outputs = [
            ResponseOutput(name="pd", datatype="FP64", shape=[n, 1], data=pd_out),
            _bytes_output("decision", decisions),
            _bytes_output("reason_codes", reasons),
            _bytes_output("model_version", [self._model_version] * n),
            _bytes_output("refer_reason", refer),
        ]
        response = InferenceResponse(
            id=payload.id,
            model_name=self.name,
            model_version=self._model_version or None,
            outputs=outputs,
        )
        return response, decisions, [p for p in pd_out if not math.isnan(p)], given


def declared_rows(payload: InferenceRequest, cap: int) -> int:
    """The rows a refused request carried, as its first input's shape declares: at least 1, at
    most `cap` + 1 (the shape is the caller's word: a declared 10**18 rows must not make the
    refused-rows counter meaningless)."""
    shape = payload.inputs[0].shape if payload.inputs else []
    rows = shape[0] if shape else 1
    return min(rows, cap + 1) if isinstance(rows, int) and rows > 0 else 1


def _bytes_output(name: str, values: list[str]) -> ResponseOutput:
    """BYTES as bytes: gRPC needs them so, and MLServer's REST encoder writes them as text."""
    return StringCodec.encode_output(name, values)
