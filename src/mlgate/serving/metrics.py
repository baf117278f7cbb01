"""The model server's Prometheus metrics: the one home for their names, labels and port.

The runtime records, per model and version, what it decided (approve/decline/refer), the PD
distribution, the reason codes it gave, the requests it refused as bad input (and the rows
they carried) and how long it took. The manifests' rules and dashboard, the tests and the docs
read the names from here (`METRICS`), so a renamed metric cannot leave a panel querying
nothing.

Why prometheus_client's default registry and not `mlserver.register`/`mlserver.log`: in
MLServer 1.7.1 `mlserver.log` only records histograms, and its registry
(`mlserver.metrics.REGISTRY`) is not the one the metrics server serves with
`parallel_workers: 0` (it serves prometheus_client's default `REGISTRY`; with workers it merges
every process's multiprocess files; SeldonIO/MLServer#1151). Collectors are created when the
first model loads, not at import, so MLServer's switch to multiprocess values (made before
workers load models) applies to them too.

Labels follow MLServer's custom-metric convention (`model_name`, `model_version`); Prometheus
adds the target's `namespace` and `pod` when it scrapes the pod.
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

# Where MLServer's metrics server listens in the image and the pod (MLServer's own default
# port, made explicit); the container port and the scraped Service port carry this name.
METRICS_PORT = 8082
METRICS_PATH = "/metrics"
METRICS_PORT_NAME = "mlserver-metrics"

MODEL = "model_name"
VERSION = "model_version"

DECISIONS = ("approve", "decline", "refer")
Outcome = Literal["answered", "refused", "error"]
OUTCOMES: tuple[Outcome, ...] = ("answered", "refused", "error")
# Why a request was refused (HTTP 4xx, nothing scored): too many rows (413), a row breaking the
# serving contract under `on_invalid: reject`, or a malformed request (shapes, types, features).
Refusal = Literal["too_large", "invalid_row", "bad_request"]
REFUSALS: tuple[Refusal, ...] = ("too_large", "invalid_row", "bad_request")

PD_BUCKETS = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0)
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class MetricSpec:
    name: str  # the family name; a counter's samples end in _total
    kind: Literal["counter", "histogram"]
    help: str
    labels: tuple[str, ...]  # besides model_name and model_version
    buckets: tuple[float, ...] = ()

    @property
    def series(self) -> tuple[str, ...]:
        """The sample names Prometheus stores (what PromQL queries)."""
        if self.kind == "counter":
            return (f"{self.name}_total",)
        return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")


DECISIONS_METRIC = MetricSpec(
    "mlgate_decisions", "counter", "Rows answered, by decision (approve/decline/refer).",
    ("decision",),
)  # fmt: skip
PD_METRIC = MetricSpec(
    "mlgate_pd", "histogram", "Probability of default of each scored row.", (), PD_BUCKETS
)
REASON_CODES_METRIC = MetricSpec(
    "mlgate_reason_codes", "counter", "Reason codes given to scored rows (top adverse factors).",
    ("code",),
)  # fmt: skip
REQUESTS_METRIC = MetricSpec(
    "mlgate_requests", "counter",
    "Inference requests, by outcome: answered, refused (bad input, 4xx), error (5xx).",
    ("outcome",),
)  # fmt: skip
ROWS_REFUSED_METRIC = MetricSpec(
    "mlgate_rows_refused", "counter",
    "Rows of refused requests (as the request declared them), by refusal reason.", ("reason",),
)  # fmt: skip
SECONDS_METRIC = MetricSpec(
    "mlgate_inference_seconds", "histogram",
    "Time in the runtime per request (lookup, contract, scoring), every outcome.", (),
    SECONDS_BUCKETS,
)  # fmt: skip

METRICS: tuple[MetricSpec, ...] = (
    DECISIONS_METRIC,
    PD_METRIC,
    REASON_CODES_METRIC,
    REQUESTS_METRIC,
    ROWS_REFUSED_METRIC,
    SECONDS_METRIC,
)


def series_names() -> set[str]:
    """Every sample name the runtime exports."""
    return {s for m in METRICS for s in m.series}


class Collectors:
    """The prometheus_client collectors of `METRICS`, registered once on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(spec: MetricSpec) -> Counter:
            return Counter(spec.name, spec.help, (MODEL, VERSION, *spec.labels), registry=registry)

        def histogram(spec: MetricSpec) -> Histogram:
            labels = (MODEL, VERSION, *spec.labels)
            return Histogram(spec.name, spec.help, labels, registry=registry, buckets=spec.buckets)

        self.decisions = counter(DECISIONS_METRIC)
        self.pd = histogram(PD_METRIC)
        self.reason_codes = counter(REASON_CODES_METRIC)
        self.requests = counter(REQUESTS_METRIC)
        self.rows_refused = counter(ROWS_REFUSED_METRIC)
        self.seconds = histogram(SECONDS_METRIC)


_lock = threading.Lock()
_default: Collectors | None = None


def default_collectors() -> Collectors:
    """The collectors on prometheus_client's default registry (what MLServer serves)."""
    global _default
    with _lock:
        if _default is None:
            _default = Collectors(REGISTRY)
        return _default


def observe_many(child: Histogram, values: Sequence[float]) -> None:
    """`child.observe(v)` for each value, in one pass: the same buckets, count and sum.

    Why: a 10,000-row request would otherwise spend ~50 ms in 10,000 `observe` calls (each
    takes a lock and walks the buckets); this bins them with numpy and adds each bucket's count
    once. It writes the fields `Histogram.observe` writes (`_sum`, `_buckets`, non-cumulative,
    value `v` in the first bucket with `v <= le`); a test compares it with `observe` on the
    pinned prometheus_client, so a change of those internals fails there, not in production.
    """
    if not len(values):
        return
    arr = np.asarray(values, dtype="float64")
    bounds = np.asarray(child._upper_bounds, dtype="float64")  # ends with +Inf
    counts = np.bincount(np.searchsorted(bounds, arr, side="left"), minlength=len(bounds))
    child._sum.inc(float(arr.sum()))
    for bucket, n in zip(child._buckets, counts.tolist(), strict=True):
        if n:
            bucket.inc(n)


class ModelMetrics:
    """One model version's metrics: what the runtime calls after each request.

    The labelled children are looked up once (a `labels()` call takes a lock), so a single-row
    request costs a few counter increments.
    """

    def __init__(self, model: str, version: str, collectors: Collectors | None = None) -> None:
        c = collectors or default_collectors()
        ids = (model, version)
        # Every outcome's series exists from load on (at 0), so ratios and `rate()` have both
        # sides before the first refusal or the first referral.
        self._decisions = {d: c.decisions.labels(*ids, d) for d in DECISIONS}
        self._requests = {o: c.requests.labels(*ids, o) for o in OUTCOMES}
        self._rows_refused = {r: c.rows_refused.labels(*ids, r) for r in REFUSALS}
        self._pd = c.pd.labels(*ids)
        self._seconds = c.seconds.labels(*ids)
        self._codes: dict[str, Counter] = {}
        self._code_family = c.reason_codes
        self._ids = ids

    def answered(
        self, decisions: Sequence[str], pds: Sequence[float], codes: Sequence[str], seconds: float
    ) -> None:
        """A request answered: each row's decision, the PDs scored, the reason codes given."""
        for decision, n in Tally(decisions).items():
            self._decisions[decision].inc(n)
        observe_many(self._pd, pds)
        for code, n in Tally(codes).items():
            child = self._codes.get(code)
            if child is None:
                child = self._codes[code] = self._code_family.labels(*self._ids, code)
            child.inc(n)
        self._requests["answered"].inc()
        self._seconds.observe(seconds)

    def refused(self, reason: Refusal, rows: int, seconds: float) -> None:
        self._requests["refused"].inc()
        self._rows_refused[reason].inc(rows)
        self._seconds.observe(seconds)

    def failed(self, seconds: float) -> None:
        self._requests["error"].inc()
        self._seconds.observe(seconds)
