"""`mlgate monitor`: the same gate code on a running model's windows, alerts to a webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from mlgate.errors import ExternalServiceError
from mlgate.gates.inputs import DriftData
from mlgate.gates.monitor import (
    Expected,
    alert_payload,
    early_delinquency_gate,
    monitor_checks,
    summarize,
)
from mlgate.gates.monitor_run import run_monitor, send_webhook
from mlgate.gates.policy import GatePolicy
from mlgate.gates.result import GateResult, GateStatus


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            status = 500 if self.path == "/broken" else 200
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_a: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()


def test_early_delinquency_proxy_detects_a_rise() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    pds = rng.uniform(0.01, 0.14, n)
    expected = Expected(auc=0.8, early_per_pd=0.5)
    same = (rng.random(n) < 0.5 * pds).astype(float)
    worse = (rng.random(n) < 0.5 * pds * 1.8).astype(float)
    pol = GatePolicy()
    assert early_delinquency_gate(same, pds, 0.15, expected, pol).status == GateStatus.PASS
    res = early_delinquency_gate(worse, pds, 0.15, expected, pol)
    assert res.status == GateStatus.FAIL and res.metrics["ratio"] > 1.3
    none = Expected(auc=0.8)
    assert early_delinquency_gate(same, pds, 0.15, none, pol).status == GateStatus.INCONCLUSIVE


def test_a_watch_size_shift_alerts_on_its_first_day_and_a_stable_day_does_not() -> None:
    """One day of 5,000 applications; one feature shifted by the mean whose true PSI on the
    reference deciles is exactly psi_watch (0.10): the point estimate is below the threshold on
    about half of all days, the upper bound the monitor alerts on almost never."""
    pol = GatePolicy()
    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"x": rng.normal(size=100_000), "z": rng.normal(size=100_000)})
    edges = stats.norm.ppf(np.linspace(0, 1, 11))

    def true_psi(shift: float) -> float:
        r, c = np.diff(stats.norm.cdf(edges)), np.diff(stats.norm.cdf(edges - shift))
        return float(np.sum((c - r) * np.log(c / r)))

    shift = optimize.brentq(lambda m: true_psi(m) - pol.drift.psi_watch, 0, 2)
    point_only = pol.model_copy(
        update={"monitor": pol.monitor.model_copy(update={"watch_confidence": 0.5})}
    )
    alerts = {"shifted": 0, "shifted_point_estimate": 0, "stable": 0}
    for _ in range(30):
        day = pd.DataFrame({"x": rng.normal(shift, 1, 5000), "z": rng.normal(size=5000)})
        calm = pd.DataFrame({"x": rng.normal(size=5000), "z": rng.normal(size=5000)})
        for key, cur, p in (
            ("shifted", day, pol),
            ("shifted_point_estimate", day, point_only),
            ("stable", calm, pol),
        ):
            checks = monitor_checks(
                policy=p,
                expected=Expected(auc=0.8),
                cutoff=0.15,
                matured=None,
                early=None,
                recent=None,
                drift=DriftData(ref, cur, ["x", "z"], []),
            )
            drift = next(c for c in checks if c.name == "drift")
            alerts[key] += drift.status == GateStatus.FAIL
    assert alerts["shifted"] >= 28, alerts
    assert alerts["shifted_point_estimate"] <= 25, alerts  # what the upper bound adds
    assert alerts["stable"] == 0, alerts


def test_webhook_payload_is_slack_compatible(webhook: tuple[str, list[dict]]) -> None:
    url, received = webhook
    check = GateResult(name="drift", status=GateStatus.FAIL, summary="significant drift in x")
    report = summarize("m", "3", "prod", [check], window=["a", "b"])
    send_webhook(url + "/hook", alert_payload(report))
    assert received[0]["text"].count("significant drift in x") == 1
    assert received[0]["blocks"][0]["type"] == "header"
    with pytest.raises(ExternalServiceError, match="HTTP 500"):
        send_webhook(url + "/broken", alert_payload(report))


@pytest.mark.slow
def test_monitor_on_registered_model_alerts_on_drift(
    registered_model,  # type: ignore[no-untyped-def]
    webhook: tuple[str, list[dict]],
    tmp_path: Path,
) -> None:
    reg = registered_model
    url, received = webhook
    quiet = run_monitor(
        reg.settings, model=reg.model, env="prod", version=reg.version, window_days=90
    )
    names = [c.name for c in quiet.checks]
    assert names == ["performance", "calibration", "early_delinquency", "drift", "fairness"]
    assert quiet.expected is not None and quiet.expected.auc > 0.6
    assert quiet.checks[0].metrics["auc_challenger"] > 0.6
    # A policy whose drift thresholds any real window crosses: the alert must go out.
    strict = tmp_path / "strict.yaml"
    strict.write_text("drift: {psi_watch: 0.0001, psi_act: 0.0002, score_psi_act: 0.0002}\n")
    loud = run_monitor(
        reg.settings,
        model=reg.model,
        env="prod",
        version=reg.version,
        window_days=90,
        webhook=url,
        policy_file=strict,
    )
    assert loud.overall == GateStatus.FAIL and loud.exit_code == 1
    assert any(a.startswith("drift:") for a in loud.alerts)
    assert len(received) == 1 and "drift" in received[0]["text"]
