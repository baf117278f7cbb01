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
building a DataFrame; tree models, and requests that need a Feast lookup, take the pandas path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from mlserver import MLModel
from mlserver.codecs import PandasCodec
from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput

from mlgate.errors import BadInputError
from mlgate.training.fastpath import LinearFastPath

CUTOFF_ENV = "MLGATE_CUTOFF"
KEY = "applicant_id"


class BadRequest(MLServerError):
    def __init__(self, msg: str) -> None:
        super().__init__(msg, status_code=400)


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


def decide(pd_values: np.ndarray, cutoff: float) -> list[str]:
    return ["decline" if p >= cutoff else "approve" for p in pd_values]


def _text(df: pd.DataFrame) -> pd.DataFrame:
    """BYTES inputs arrive as bytes unless the client said `content_type: str`; accept both."""
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = [
                v.decode("utf-8") if isinstance(v, bytes | bytearray) else v for v in df[col]
            ]
    return df


def _flat_columns(
    payload: InferenceRequest, features: list[str]
) -> dict[str, Sequence[Any]] | None:
    """The request's feature columns as plain lists, or None when it needs the pandas decoder.

    Only the common shape is read directly: one flat input per feature, all of one length.
    Anything else (missing features to look up, nested data, parameters other than a string
    content type) returns None and goes through PandasCodec as before.
    """
    by_name = {inp.name: inp for inp in payload.inputs}
    out: dict[str, Sequence[Any]] = {}
    n: int | None = None
    for col in features:
        inp = by_name.get(col)
        if inp is None:
            return None
        if inp.parameters is not None and inp.parameters.content_type not in (None, "str"):
            return None
        data = inp.data.root
        if not isinstance(data, list) or (data and isinstance(data[0], list | dict)):
            return None
        if n is None:
            n = len(data)
        if len(data) != n or (inp.shape and inp.shape[0] != n):
            return None
        out[col] = [v.decode("utf-8") if isinstance(v, bytes | bytearray) else v for v in data]
    return out if n else None


class CreditRiskRuntime(MLModel):
    """MLServer model: PD, decision, reason codes and version for each application."""

    async def load(self) -> bool:
        import mlflow.pyfunc

        params = self.settings.parameters
        uri = params.uri if params and params.uri else None
        if not uri:
            raise RuntimeError("model-settings.json: parameters.uri (the MLflow model) is required")
        self._cutoff = read_cutoff()
        pyfunc = mlflow.pyfunc.load_model(uri)
        self._model: Any = pyfunc.unwrap_python_model()
        self._features: list[str] = list(self._model.features)
        extra = (params.extra or {}) if params else {}
        self._model_version = str(
            extra.get("model_version") or (params.version if params else None) or ""
        )
        self._top_k = int(extra.get("top_k", 4))
        self._fast: LinearFastPath | None = LinearFastPath.from_model(self._model.pd_model)
        self._feast: Any = None  # (settings, FeatureStore), opened on the first lookup
        self._warm_feast()
        return True

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

    def _lookup(self, df: pd.DataFrame, at: str | None) -> pd.DataFrame:
        """Fill the features the request lacks from Feast's online store (TTL-checked)."""
        try:
            from mlgate.config import load_settings
            from mlgate.features.online import lookup
            from mlgate.features.store import open_store
        except ImportError as exc:  # an image built without Feast serves full vectors only
            raise BadRequest(
                f"request lacks features and this server cannot look them up ({exc}); "
                "send the full feature vector"
            ) from exc
        if self._feast is None:
            settings = load_settings()
            self._feast = (settings, open_store(settings))
        settings, store = self._feast
        online = lookup(settings, [str(v) for v in df[KEY]], at, store=store)
        online = online.reset_index(drop=True)
        merged = df.reset_index(drop=True).copy()
        for col in self._features:
            if col not in merged.columns and col in online.columns:
                merged[col] = online[col].to_numpy()
        return merged

    def _frame(self, payload: InferenceRequest) -> pd.DataFrame:
        try:
            df = _text(PandasCodec.decode_request(payload))
        except Exception as exc:  # noqa: BLE001 - a malformed request is the caller's problem
            raise BadRequest(f"cannot decode the request as a table: {exc}") from exc
        missing = [c for c in self._features if c not in df.columns]
        if missing and KEY in df.columns:
            params = payload.parameters.model_dump() if payload.parameters else {}
            df = self._lookup(df, params.get("as_of"))
            missing = [c for c in self._features if c not in df.columns]
        if missing:
            raise BadRequest(
                f"request lacks features {missing} and carries no '{KEY}' to look them up"
            )
        return df

    def _score_fast(self, fast: LinearFastPath, payload: InferenceRequest) -> tuple[Any, list]:
        columns: dict[str, Sequence[Any]] | None = _flat_columns(payload, self._features)
        if columns is None:  # e.g. a keyed request completed from Feast: pandas as before
            try:
                x = self._model.pd_model.frame(self._frame(payload))
            except BadInputError as exc:
                raise BadRequest(str(exc)) from exc
            columns = {c: x[c].tolist() for c in self._features}
        try:
            scored = fast.score(columns)
        except BadInputError as exc:
            raise BadRequest(str(exc)) from exc
        return scored.pd, fast.reason_codes(scored, top_k=self._top_k)

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        if self._fast is not None:
            pd_values, codes = self._score_fast(self._fast, payload)
        else:
            x = self._frame(payload)[self._features]
            pd_values = np.asarray(self._model.predict_pd(x), dtype=float)
            codes = self._model.reason_codes(x, top_k=self._top_k)
        reasons = [json.dumps([rc.model_dump(mode="json") for rc in row]) for row in codes]
        n = len(pd_values)
        outputs = [
            ResponseOutput(name="pd", datatype="FP64", shape=[n, 1], data=pd_values.tolist()),
            _bytes_output("decision", decide(pd_values, self._cutoff)),
            _bytes_output("reason_codes", reasons),
            _bytes_output("model_version", [self._model_version] * n),
        ]
        return InferenceResponse(
            id=payload.id,
            model_name=self.name,
            model_version=self._model_version or None,
            outputs=outputs,
        )


def _bytes_output(name: str, values: list[str]) -> ResponseOutput:
    return ResponseOutput(
        name=name,
        datatype="BYTES",
        shape=[len(values), 1],
        data=values,
        parameters={"content_type": "str"},
    )
