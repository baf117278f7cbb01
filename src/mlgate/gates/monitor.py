"""Monitoring: the daily checks, done right, with the same gate code as promotion.

What a running model is checked on (mlgate monitor):
- performance and calibration on the newest window of matured labels, against what the model
  showed on its out-of-time holdout (AUC may not fall below expected - monitor.auc_drop);
- the early-delinquency rate (30+ dpd within 3 months) of recent approvals as the fast proxy
  for defaults that take 12 months to mature: observed vs expected for the PD mix approved
  (expected = the holdout's early-delinquency/PD ratio x the recent mean PD), alert when the
  ratio exceeds monitor.early_delinquency_ratio and is significant (one-sided binomial test);
- drift of recent applications against the training set (PSI effect sizes, not p-values;
  monitoring alerts already at the "watch" level, where promotion blocks only at "act");
- fairness of the model's recent decisions.
An alert (a FAIL) goes to a Slack-compatible webhook as the one `Alert` payload (`alert_payload`):
{"text": ..., "blocks": [...], "mlgate": {model, version, env, status, checks, retrain}}.
`mlgate monitor` and the scheduled monitoring pipeline both run `monitor_run.run_monitor`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from scipy import stats

from mlgate.gates.calibration import calibration_gate
from mlgate.gates.decisions import Cutoffs
from mlgate.gates.drift import drift_gate
from mlgate.gates.fairness import fairness_gate
from mlgate.gates.inputs import DriftData, HoldoutScores
from mlgate.gates.performance import performance_gate
from mlgate.gates.policy import GatePolicy
from mlgate.gates.registry import guarded
from mlgate.gates.result import GateResult, GateStatus, worst


class Expected(BaseModel):
    """What the model showed on its out-of-time holdout: the monitoring baseline."""

    auc: float
    early_per_pd: float | None = None  # early-delinquency rate / mean PD among approvals


class MonitorReport(BaseModel):
    model: str
    version: str
    env: str
    window: list[str] = Field(default_factory=list)
    overall: GateStatus
    alerts: list[str] = Field(default_factory=list)
    checks: list[GateResult] = Field(default_factory=list)
    expected: Expected | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    retrain: RetrainDecision | None = None

    @property
    def exit_code(self) -> int:
        return {GateStatus.PASS: 0, GateStatus.FAIL: 1, GateStatus.INCONCLUSIVE: 3}[self.overall]


class RetrainDecision(BaseModel):
    """Whether the monitored version should be retrained, and why (`gates.retrain`)."""

    retrain: bool
    reason: str


MonitorReport.model_rebuild()


def expected_from_holdout(h: HoldoutScores, cutoff: float) -> Expected:
    lab = h.labelled
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(h.y[lab].astype(int), h.pd_challenger[lab]))
    ratio = None
    if h.early is not None:
        ok = np.isfinite(h.early) & (h.pd_challenger < cutoff)
        if ok.sum() and h.pd_challenger[ok].mean() > 0:
            ratio = float(h.early[ok].mean() / h.pd_challenger[ok].mean())
    return Expected(auc=auc, early_per_pd=ratio)


def early_delinquency_gate(
    early: np.ndarray,
    pd_values: np.ndarray,
    cutoff: float,
    expected: Expected,
    policy: GatePolicy,
    min_n: int | None = None,
) -> GateResult:
    """Observed vs expected early delinquency among recent approvals (the fast proxy).
    `min_n`: approvals with an outcome needed for a verdict (default samples.min_labelled; the
    canary analysis uses canary.min_early_labels)."""
    name = "early_delinquency"
    if expected.early_per_pd is None:
        return GateResult.inconclusive(name, "no early-delinquency baseline on the holdout")
    ok = np.isfinite(early) & np.isfinite(pd_values) & (pd_values < cutoff)
    n = int(ok.sum())
    need = max(policy.samples.min_labelled if min_n is None else min_n, 1)
    if n < need:
        return GateResult.inconclusive(
            name, f"too few approvals with an early outcome: {n} (min {need})"
        )
    k = int(early[ok].sum())
    exp_rate = min(float(expected.early_per_pd * pd_values[ok].mean()), 1.0)
    obs_rate = k / n
    p_value = float(stats.binomtest(k, n, exp_rate, alternative="greater").pvalue)
    ratio = obs_rate / exp_rate if exp_rate > 0 else float("inf")
    limit = policy.monitor.early_delinquency_ratio
    fails = ratio > limit and p_value < 0.01
    metrics = {
        "n": n,
        "observed_rate": obs_rate,
        "expected_rate": exp_rate,
        "ratio": ratio,
        "p_value": p_value,
        "limit": limit,
    }
    summary = f"early delinquency {obs_rate:.2%} vs expected {exp_rate:.2%} (x{ratio:.2f})"
    return GateResult(
        name=name,
        status=GateStatus.FAIL if fails else GateStatus.PASS,
        summary=summary,
        reasons=[f"{summary} > x{limit}, p={p_value:.2g}"] if fails else [],
        metrics=metrics,
    )


def plausible_watch(drift: GateResult, policy: GatePolicy) -> list[str]:
    """Features whose PSI's one-sided upper confidence bound reaches `psi_watch`.

    A daily window is small: a shift of exactly watch size is estimated below the threshold on
    about half of all days. The monitor alerts when a watch-size shift is plausible given the
    window's sampling error (the promotion gate judges the estimate itself). With no drift the
    PSI's error is close to zero, so this costs no false alarms on a stable population."""
    z = float(stats.norm.ppf(policy.monitor.watch_confidence))
    out = []
    for row in drift.details.get("features") or []:
        upper = row["psi"] + z * row.get("psi_se", 0.0)
        row["psi_upper"] = upper
        if not np.isfinite(upper) or upper >= policy.drift.psi_watch:
            out.append(row["feature"])
    return out


def monitor_checks(
    *,
    policy: GatePolicy,
    expected: Expected,
    cutoff: float,
    matured: HoldoutScores | None,
    early: HoldoutScores | None,
    recent: HoldoutScores | None,
    drift: DriftData | None,
) -> list[GateResult]:
    """The monitoring checks; each guarded like the promotion gates (a crash is INCONCLUSIVE).

    `matured`: newest matured labels; `early`: newest early outcomes (y unused, `early` set);
    `recent`: recent applications scored, with protected groups (fairness)."""
    floors = policy.floors.model_copy(
        update={"min_auc": max(expected.auc - policy.monitor.auc_drop, 0.5 + 1e-9)}
    )
    mpol = policy.model_copy(update={"floors": floors})
    out: list[GateResult] = []

    def need(name: str, data: object, fn: Any) -> None:
        if data is None:
            out.append(GateResult.inconclusive(name, "no data in the window"))
        else:
            out.append(guarded(name, fn))

    need("performance", matured, lambda: performance_gate(matured, mpol))  # type: ignore[arg-type]
    perf = out[-1]
    if "auc_challenger" in perf.metrics:
        perf.summary = (
            f"AUC {perf.metrics['auc_challenger']:.3f} on matured labels vs expected "
            f"{expected.auc:.3f} (alert below {floors.min_auc:.3f}), "
            f"KS {perf.metrics['ks_challenger']:.3f}"
        )
    need("calibration", matured, lambda: calibration_gate(matured, mpol))  # type: ignore[arg-type]
    if early is not None and early.early is not None:
        flags, pds = early.early, early.pd_challenger
        out.append(
            guarded(
                "early_delinquency",
                lambda: early_delinquency_gate(flags, pds, cutoff, expected, policy),
            )
        )
    else:
        out.append(GateResult.inconclusive("early_delinquency", "no early outcomes in the window"))
    need("drift", drift, lambda: drift_gate(drift, policy))  # type: ignore[arg-type]
    watched = plausible_watch(out[-1], policy)
    if policy.monitor.alert_on_watch and out[-1].status == GateStatus.PASS and watched:
        # Monitoring asks "investigate?", not "block?": a feature at watch level is an alert.
        out[-1].status = GateStatus.FAIL
        out[-1].reasons.append(
            f"PSI >= {policy.drift.psi_watch} (watch) plausible in {', '.join(watched)} "
            f"({policy.monitor.watch_confidence:.0%} upper bound): investigate"
        )
        out[-1].summary = f"watch-level drift in {', '.join(watched)}"
    cut = Cutoffs("fixed", cutoff, None, np.ones(len(recent) if recent else 0, dtype=bool))
    need("fairness", recent, lambda: fairness_gate(recent, policy, cut))  # type: ignore[arg-type]
    return out


def summarize(
    model: str,
    version: str,
    env: str,
    checks: list[GateResult],
    *,
    expected: Expected | None = None,
    window: list[str] | None = None,
    data: dict[str, Any] | None = None,
) -> MonitorReport:
    alerts = [f"{c.name}: {c.summary}" for c in checks if c.status == GateStatus.FAIL]
    return MonitorReport(
        model=model,
        version=version,
        env=env,
        window=window or [],
        overall=worst([c.status for c in checks]),
        alerts=alerts,
        checks=checks,
        expected=expected,
        data=data or {},
    )


class AlertCheck(BaseModel):
    name: str
    status: GateStatus
    summary: str


class Alert(BaseModel):
    """The monitoring alert: the one payload `mlgate monitor` and the monitoring pipeline send.

    Slack-compatible (`text`, `blocks`: Slack, Mattermost, Teams' Slack mode render it) with
    the machine-readable verdict beside it (`mlgate`), so a receiver that acts on it (a
    retraining trigger, a ticket) does not parse prose."""

    text: str
    blocks: list[dict[str, Any]]
    mlgate: dict[str, Any]


def alert_payload(report: MonitorReport) -> Alert:
    """The one writer of the alert: built from the MonitorReport only."""
    head = (
        f":rotating_light: mlgate monitor: {report.model} v{report.version} in {report.env}: "
        f"{len(report.alerts)} alert(s)"
    )
    lines = "\n".join(f"• {a}" for a in report.alerts) or "no alerts"
    facts = {
        "model": report.model,
        "version": report.version,
        "env": report.env,
        "status": report.overall.value,
        "window": report.window,
        "alerts": report.alerts,
        "checks": [
            AlertCheck(name=c.name, status=c.status, summary=c.summary).model_dump(mode="json")
            for c in report.checks
        ],
        "retrain": report.retrain.model_dump(mode="json") if report.retrain else None,
    }
    return Alert(
        text=f"{head}\n{lines}",
        blocks=[
            {"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": lines[:2900]}},
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"window {' - '.join(report.window)}"},
                ],
            },
        ],
        mlgate=facts,
    )


def monitor_html(report: MonitorReport) -> str:
    """The monitoring result as a page (the pipeline's HTML output)."""
    from html import escape

    rows = "".join(
        f"<tr><td>{escape(c.name)}</td><td>{c.status.value}</td><td>{escape(c.summary)}</td></tr>"
        for c in report.checks
    )
    retrain = escape(report.retrain.reason) if report.retrain else ""
    return (
        f"<html><body><h2>Monitoring {escape(report.model)} v{escape(report.version)} in "
        f"{escape(report.env)}: {report.overall.value}</h2><p>{retrain}</p>"
        f"<table border=1><tr><th>check</th><th>result</th><th>summary</th></tr>{rows}</table>"
        "</body></html>"
    )
