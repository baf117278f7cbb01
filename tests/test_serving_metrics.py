"""Metrics that exist: the runtime's Prometheus metrics, the dashboard and the alert rules.

A real local MLServer (started as `mlgate serve` starts it) answers an ordinary day's requests,
then a riskier applicant mix and a refused request; its metrics server is scraped after each.
Every metric the Grafana dashboard and the PrometheusRule query must be in that scrape (or be
recorded by the rules), and `promtool test rules` runs the manifest's alert rules on input
series recorded from the two scrapes: replaying the ordinary day fires nothing, the shifted
mix fires the approval-rate, PD-distribution and refused-requests alerts.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mlgate.serving.metrics import (
    METRICS,
    METRICS_PATH,
    METRICS_PORT,
    METRICS_PORT_NAME,
    Collectors,
    ModelMetrics,
    observe_many,
    series_names,
)

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "manifests" / "base" / "monitoring.yaml"
DASHBOARD = REPO / "manifests" / "base" / "dashboard.yaml"

# --- what the manifests query ----------------------------------------------------------------

_FUNCTIONS_AND_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and",
    "or", "unless", "inf", "nan",
}  # fmt: skip
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads.

    Strings, label matchers (`{...}`), ranges (`[5m]`) and grouping lists (`by (...)`) are cut
    out first; what remains is functions (followed by `(`), keywords, numbers and metric names.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for m in _IDENT.finditer(text):
        after = text[m.end() :].lstrip()
        word = m.group()
        if after.startswith("(") or word.lower() in _FUNCTIONS_AND_KEYWORDS:
            continue
        if re.fullmatch(r"\d+[smhdwy]", word) or (m.start() > 0 and text[m.start() - 1].isdigit()):
            continue  # a duration (`offset 1h`) or a number's exponent
        names.add(word)
    return names


def rule_groups() -> list[dict[str, Any]]:
    (rule,) = [d for d in yaml.safe_load_all(RULES.read_text()) if d["kind"] == "PrometheusRule"]
    return rule["spec"]["groups"]


def rules() -> list[dict[str, Any]]:
    return [r for g in rule_groups() for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    (cm,) = yaml.safe_load_all(DASHBOARD.read_text())
    dash = json.loads(cm["data"]["mlgate-serving.json"])
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    for var in dash["templating"]["list"]:  # Grafana's label_values(metric, label)
        if var["type"] == "query":
            exprs += re.findall(r"label_values\(\s*([^,)]+)", var["query"])
    return exprs


def queried() -> dict[str, set[str]]:
    """Each metric name the dashboard and the rules query -> where it is queried."""
    where: dict[str, set[str]] = {}
    for r in rules():
        for name in metric_names(r["expr"]):
            where.setdefault(name, set()).add(r.get("record") or r["alert"])
    for expr in dashboard_exprs():
        for name in metric_names(expr):
            where.setdefault(name, set()).add("dashboard")
    return where


def recorded() -> set[str]:
    return {r["record"] for r in rules() if "record" in r}


def test_the_promql_reader_finds_metric_names_and_nothing_else() -> None:
    expr = (
        'histogram_quantile(0.9, sum by (namespace, le) (rate(mlgate_pd_bucket{a="x y"}[7d] '
        "offset 1h))) / clamp_min(mlgate:pd:rate1h, 1e-9) > 0.25 and on (namespace) up == 0 "
        'or label_replace(foo, "b", "$1", "c", "(.*)")'
    )
    assert metric_names(expr) == {"mlgate_pd_bucket", "mlgate:pd:rate1h", "up", "foo"}


def test_the_manifests_query_only_what_the_runtime_exports_or_the_rules_record() -> None:
    where = queried()
    unknown = {n: w for n, w in where.items() if n not in series_names() | recorded()}
    assert not unknown, unknown
    # every recording is computed from what exists, and the dashboard shows every metric kind
    assert {"mlgate_decisions_total", "mlgate_pd_bucket", "mlgate_reason_codes_total",
            "mlgate_rows_refused_total", "mlgate_requests_total"} <= set(where)  # fmt: skip
    alerts = {r["alert"] for r in rules() if "alert" in r}
    assert {"MlgateApprovalRateShift", "MlgatePdDistributionShift",
            "MlgateRefusedRequestsHigh", "MlgateServerErrorsHigh"} <= alerts  # fmt: skip
    for r in rules():  # promtool tests compare annotations: they may template labels only
        for text in (r.get("annotations") or {}).values():
            assert re.sub(r"\{\{ \$labels\.\w+ \}\}", "", text).count("{{") == 0, text


def test_the_scrape_reaches_the_metrics_port_through_consistent_names() -> None:
    """Container port, Service, ServiceMonitor and MLServer's settings name one port."""
    from mlgate.gitops.kubectl import kustomize

    docs = [
        d for d in yaml.safe_load_all(kustomize(REPO / "manifests/models/credit_risk/dev")) if d
    ]
    (sdep,) = [d for d in docs if d["kind"] == "SeldonDeployment"]
    (svc,) = [
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "model-metrics"
    ]
    (mon,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert svc["spec"]["selector"] == {"seldon-deployment-id": sdep["metadata"]["name"]}
    assert mon["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    (endpoint,) = mon["spec"]["endpoints"]
    assert endpoint["port"] == METRICS_PORT_NAME and endpoint["path"] == METRICS_PATH
    (port,) = svc["spec"]["ports"]
    assert port["name"] == port["targetPort"] == METRICS_PORT_NAME
    for pred in sdep["spec"]["predictors"]:
        (c,) = pred["componentSpecs"][0]["spec"]["containers"]
        env = {e["name"]: e["value"] for e in c["env"]}
        assert env["MLSERVER_METRICS_PORT"] == str(METRICS_PORT)
        assert env["MLSERVER_METRICS_ENDPOINT"] == METRICS_PATH
        assert {"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP"} in c[
            "ports"
        ]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """`(sample name, sorted labels) -> value` of the scraped families mlgate exports."""
    ours = {m.name for m in METRICS}
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name not in ours:
            continue
        for s in family.samples:
            if not s.name.endswith("_created"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_model_metrics_count_decisions_pds_codes_and_refusals() -> None:
    registry = CollectorRegistry()
    m = ModelMetrics("credit_risk", "3", Collectors(registry))
    m.answered(["approve", "decline", "refer"], [0.05, 0.4], ["DQ", "DQ", "INC"], 0.01)
    m.refused("invalid_row", 7, 0.002)
    got = _samples(generate_latest(registry).decode())
    ids = (("model_name", "credit_risk"), ("model_version", "3"))

    def value(name: str, **labels: str) -> float:
        return got[(name, tuple(sorted((*ids, *labels.items()))))]

    assert [value("mlgate_decisions_total", decision=d) for d in ("approve", "decline", "refer")] \
        == [1, 1, 1]  # fmt: skip
    assert value("mlgate_pd_count") == 2 and value("mlgate_pd_sum") == pytest.approx(0.45)
    assert value("mlgate_pd_bucket", le="0.05") == 1 and value("mlgate_pd_bucket", le="0.5") == 2
    assert value("mlgate_reason_codes_total", code="DQ") == 2
    assert value("mlgate_requests_total", outcome="answered") == 1
    assert value("mlgate_requests_total", outcome="refused") == 1
    assert value("mlgate_requests_total", outcome="error") == 0  # present before the first
    assert value("mlgate_rows_refused_total", reason="invalid_row") == 7
    assert value("mlgate_rows_refused_total", reason="too_large") == 0
    assert value("mlgate_inference_seconds_count") == 2


def test_observe_many_equals_observing_each_value() -> None:
    """The bulk histogram update writes what prometheus_client's own `observe` writes."""
    values = [0.0, 0.01, 0.0100001, 0.05, 0.3, 1.0, 2.5, 0.05, 1e-12, 0.99999]
    one, bulk = CollectorRegistry(), CollectorRegistry()
    h1 = Collectors(one).pd.labels("m", "1")
    h2 = Collectors(bulk).pd.labels("m", "1")
    for v in values:
        h1.observe(v)
    observe_many(h2, values)
    observe_many(h2, [])
    got, want = _samples(generate_latest(bulk).decode()), _samples(generate_latest(one).decode())
    assert got == pytest.approx(want)
    assert (
        got[("mlgate_pd_bucket", (("le", "0.05"), ("model_name", "m"), ("model_version", "1")))]
        == 6
    )


def test_a_refused_requests_declared_rows_are_capped() -> None:
    """Attack: a request declaring 10**18 rows (refused, 413) would otherwise add 10**18 to
    the refused-rows counter and drown every real refusal on the dashboard."""
    from mlserver.types import InferenceRequest

    from mlgate.serving.runtime import declared_rows

    def req(shape: list[int]) -> InferenceRequest:
        return InferenceRequest.model_validate(
            {"inputs": [{"name": "x", "datatype": "FP64", "shape": shape, "data": [1.0]}]}
        )

    assert declared_rows(req([10**18, 1]), 10_000) == 10_001
    assert declared_rows(req([4]), 10_000) == 4
    assert declared_rows(req([0]), 10_000) == declared_rows(req([]), 10_000) == 1
    assert declared_rows(InferenceRequest(inputs=[]), 10_000) == 1


# --- the running server, and promtool on series recorded from it ------------------------------

NAMESPACE = "credit-risk-prod"
TARGET = {"namespace": NAMESPACE, "pod": "model-stable-0"}  # what Prometheus adds on scrape
SHIFT_AT, END = 240, 360  # minutes: the ordinary day, then the shifted mix


def _series(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    body = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted({**dict(labels), **TARGET}.items()))
    return f"{name}{{{body}}}"


def input_series(day: dict[Any, float], shifted: dict[Any, float] | None) -> list[dict[str, str]]:
    """Counters that grow each minute by what one scrape recorded: the ordinary day's increase
    for the whole run, or for `SHIFT_AT` minutes followed by the shifted mix's increase."""
    out = []
    read = {n for r in rules() for n in metric_names(r["expr"])}  # what the rules read
    for key in sorted(k for k in set(day) | set(shifted or {}) if k[0] in read):
        a = day.get(key, 0.0)
        b = (shifted or {}).get(key, a) - a if shifted is not None else a
        values = [
            a * t if t <= SHIFT_AT else a * SHIFT_AT + b * (t - SHIFT_AT) for t in range(END + 1)
        ]
        out.append({"series": _series(*key), "values": " ".join(f"{v:.10g}" for v in values)})
    return out


def expected(alert: str, model: str, version: str) -> dict[str, Any]:
    (rule,) = [r for r in rules() if r.get("alert") == alert]
    labels = {"alertname": alert, **rule.get("labels", {}), "namespace": NAMESPACE,
              "model_name": model, "model_version": version}  # fmt: skip
    annotations = {
        k: re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], v)
        for k, v in (rule.get("annotations") or {}).items()
    }
    return {"exp_labels": {k: v for k, v in labels.items() if k != "alertname"},
            "exp_annotations": annotations}  # fmt: skip


WATCHED = ("MlgateApprovalRateShift", "MlgatePdDistributionShift", "MlgateRefusedRequestsHigh",
           "MlgateServerErrorsHigh", "MlgateNoTraffic")  # fmt: skip
FIRED_BY_THE_SHIFT = WATCHED[:3]


def promtool_tests(day: dict[Any, float], shifted: dict[Any, float], model: str, version: str):  # type: ignore[no-untyped-def]
    def case(series: list[dict[str, str]], firing: tuple[str, ...]) -> dict[str, Any]:
        return {
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                {
                    "eval_time": f"{END}m",
                    "alertname": a,
                    "exp_alerts": [expected(a, model, version)] if a in firing else [],
                }
                for a in WATCHED
            ],  # fmt: skip
        }

    return {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            case(input_series(day, None), ()),
            case(input_series(day, shifted), FIRED_BY_THE_SHIFT),
        ],
    }


def _scrape(url: str) -> dict[Any, float]:
    r = requests.get(url, timeout=10)
    assert r.status_code == 200, r.text
    return _samples(r.text)


@pytest.mark.slow
def test_a_real_servers_scrape_has_every_queried_metric_and_the_rules_fire_on_it(
    serving_env, tmp_path: Path
) -> None:
    from mlgate.serving import client
    from mlgate.serving.server import serving
    from mlgate.training.registry import load_scorer

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus; make debs)")
    w = serving_env
    rows = w.offline[w.features].reset_index(drop=True)
    offline = np.asarray(load_scorer(w.settings, w.model, w.version).predict_pd(rows))
    pds = np.sort(offline)
    half = len(pds) // 2
    cutoff = float((pds[half - 1] + pds[half]) / 2)  # half the applications approve
    risky = rows.iloc[[int(np.argmax(offline))] * 3]
    assert pds[-1] > 1.3 * pds.mean()  # the riskiest applicant moves the PD distribution
    with serving(w.settings, w.model, "challenger", cutoff=cutoff) as srv:
        # an ordinary day: each application alone, then all of them in one request
        answers = [
            s for i in range(len(rows)) for s in client.infer(srv.url, w.model, rows[i : i + 1])
        ]
        answers += client.infer(srv.url, w.model, rows)
        day = _scrape(srv.metrics_url)
        # a shifted mix: only the riskiest applicant, and a caller sending an impossible income
        risky_answers = [s for _ in range(2) for s in client.infer(srv.url, w.model, risky)]
        body = client.v2_request(rows[:4].assign(annual_income=[5e4, 5e4, 1e308, 5e4]))
        refused = requests.post(f"{srv.url}/v2/models/{w.model}/infer", json=body, timeout=30)
        after = _scrape(srv.metrics_url)
    assert refused.status_code == 400 and "annual_income" in refused.text

    # The scrape: every series the runtime exports, counting what the server answered.
    ids = (("model_name", w.model), ("model_version", w.version))
    names = {name for name, _ in after}
    assert series_names() <= names, series_names() - names

    def value(scrape: dict[Any, float], name: str, **labels: str) -> float:
        return scrape[(name, tuple(sorted((*ids, *labels.items()))))]

    decided = [s.decision for s in answers]
    assert decided.count("approve") == decided.count("decline") == len(rows)
    for d in ("approve", "decline", "refer"):
        assert value(day, "mlgate_decisions_total", decision=d) == decided.count(d)
    assert value(after, "mlgate_decisions_total", decision="decline") == len(rows) + len(
        risky_answers
    )
    assert value(after, "mlgate_pd_count") == len(answers) + len(risky_answers)
    assert value(day, "mlgate_pd_sum") == pytest.approx(sum(s.pd for s in answers))
    codes = [r["code"] for s in answers for r in s.reason_codes]
    for code in set(codes):
        assert value(day, "mlgate_reason_codes_total", code=code) == codes.count(code)
    assert value(after, "mlgate_requests_total", outcome="refused") == 1
    assert value(after, "mlgate_rows_refused_total", reason="invalid_row") == 4
    assert value(after, "mlgate_requests_total", outcome="answered") == len(rows) + 3
    assert value(after, "mlgate_inference_seconds_count") == len(rows) + 4

    # The manifests query nothing the scrape lacks (recording rules aside).
    missing = {n: w for n, w in queried().items() if n not in names | recorded()}
    assert not missing, missing

    # promtool runs the manifest's rules on series recorded from the two scrapes.
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups()}))
    tests = promtool_tests(day, after, w.model, w.version)
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    proc = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "tests.yaml")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    # and the check has teeth: expecting silence on the shifted series fails, naming the alerts
    silent = {
        **tests,
        "tests": [{**tests["tests"][0], "input_series": tests["tests"][1]["input_series"]}],
    }
    (tmp_path / "silent.yaml").write_text(yaml.safe_dump(silent, sort_keys=False))
    proc = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "silent.yaml")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    for alert in FIRED_BY_THE_SHIFT:
        assert f"alertname: {alert}," in proc.stdout + proc.stderr
