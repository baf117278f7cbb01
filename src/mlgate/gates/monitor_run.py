"""`mlgate monitor` as a library call: read the windows, run the checks, alert.

Windows end at `end` (default: the newest application in the data source): recent
applications (monitor.window_days) for drift and the fairness of the model's decisions, the
newest observed early-delinquency outcomes (monitor.early_days) for the fast proxy, and the
newest matured labels (monitor.matured_days) for AUC and calibration. Before serving logs
exist the model scores the applications from the data source itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import requests

from mlgate.config import PlatformSettings
from mlgate.data.sources import rebind
from mlgate.errors import BadInputError, ExternalServiceError
from mlgate.gates.collect import (
    _protected,
    holdout_scores,
    newest_application,
    run_dataset,
    with_served_cutoff,
)
from mlgate.gates.inputs import DriftData
from mlgate.gates.monitor import (
    Alert,
    MonitorReport,
    alert_payload,
    expected_from_holdout,
    monitor_checks,
    monitor_html,
    summarize,
)
from mlgate.gates.policy import load_policy, policy_path_for
from mlgate.gates.retrain import retrain_decision
from mlgate.outdir import new_folder


def run_monitor(
    settings: PlatformSettings,
    *,
    model: str,
    env: str,
    version: str | None = None,
    window_days: int | None = None,
    end: str | None = None,
    webhook: str | None = None,
    policy_file: str | Path | None = None,
    say: Callable[[str], None] | None = None,
    now: datetime | None = None,
    data_path: str | Path | None = None,
) -> MonitorReport:
    """The one monitor (`mlgate monitor` and the monitoring pipeline's step): the checks,
    the retrain decision (`gates.retrain`) and, on a FAIL, the one alert (`alert_payload`).
    `data_path`: read the applications from that copy of the version's dataset (a pipeline
    task's data source) instead of the path its run recorded, the training task's own copy
    that a monitoring pod cannot see."""
    from mlgate.features.training_set import application_features
    from mlgate.training.registry import load_holdout, load_scorer, load_training_set

    say = say or (lambda _m: None)
    policy = load_policy(policy_path_for(model, policy_file)).for_env(env)
    policy, cutoff_source = with_served_cutoff(settings, model, env, policy)
    mon = policy.monitor
    days = window_days or mon.window_days
    if version is None:
        from mlgate.gates.collect import resolve_champion

        version, _src = resolve_champion(settings, model, env, None)
        if version is None:
            raise BadInputError(f"no version of {model} runs in {env} (git): pass --version")
    scorer = load_scorer(settings, model, version)
    dataset = run_dataset(settings, scorer.run_id)
    if data_path:
        dataset = rebind(dataset, data_path)
    cutoff = policy.cutoff.value
    say("baseline: the version's out-of-time holdout")
    hold = load_holdout(settings, model, scorer.version)
    h = holdout_scores(hold, dataset, scorer.predict_pd(hold), None, None, policy, False)
    expected = expected_from_holdout(h, cutoff)

    stop = pd.Timestamp(end) if end else newest_application(settings, dataset)
    if stop.tzinfo is None:
        stop = stop.tz_localize("UTC")
    stop = stop + pd.Timedelta(microseconds=1)
    lookback = pd.Timedelta(days=max(days, mon.early_days) + mon.matured_days + 400)
    say("reading applications with their features as of application time")
    frame = application_features(settings, dataset, stop - lookback, stop)
    ts = pd.to_datetime(frame[dataset.event_timestamp], utc=True)
    scores = scorer.predict_pd(frame) if len(frame) else np.array([])

    def part(mask: pd.Series | np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
        m = np.asarray(mask, dtype=bool)
        return frame[m].reset_index(drop=True), scores[m]

    recent_df, recent_pd = part(ts >= stop - pd.Timedelta(days=days))
    label = frame[dataset.label].notna()
    matured_ts = ts[label]
    matured = None
    info: dict[str, object] = {"recent_rows": len(recent_df), "cutoff_source": cutoff_source}
    if len(matured_ts):
        newest = matured_ts.max()
        m_df, m_pd = part(label & (ts > newest - pd.Timedelta(days=mon.matured_days)))
        matured = holdout_scores(m_df, dataset, m_pd, None, None, policy, False)
        info["matured_rows"] = len(m_df)
    early_col = dataset.early_label
    early_h = None
    if early_col and early_col in frame:
        seen = frame[early_col].notna()
        if seen.any():
            newest_e = ts[seen].max()
            e_df, e_pd = part(seen & (ts > newest_e - pd.Timedelta(days=mon.early_days)))
            early_h = holdout_scores(e_df, dataset, e_pd, None, None, policy, False)
            info["early_rows"] = len(e_df)
    recent = None
    if len(recent_df):
        recent = holdout_scores(
            recent_df, dataset, recent_pd, None, _protected(dataset, recent_df), policy, False
        )
    say("drift reference: the version's training set")
    reference = load_training_set(settings, model, scorer.version)
    drift = DriftData(
        reference=reference,
        current=recent_df,
        numeric=list(dataset.numeric_features),
        categorical=list(dataset.categorical_features),
        reference_score=scorer.predict_pd(reference),
        current_score=recent_pd,
    )
    checks = monitor_checks(
        policy=policy,
        expected=expected,
        cutoff=cutoff,
        matured=matured,
        early=early_h,
        recent=recent,
        drift=drift if len(recent_df) else None,
    )
    window = [(stop - pd.Timedelta(days=days)).isoformat(), stop.isoformat()]
    report = summarize(
        model, scorer.version, env, checks, expected=expected, window=window, data=info
    )
    trained = version_created(settings, model, scorer.version)
    report.data["version_created"] = trained.isoformat() if trained else None
    report.retrain = retrain_decision(report, policy, trained, now or datetime.now(UTC))
    if webhook and report.alerts:
        say("sending the alert")
        send_webhook(webhook, alert_payload(report))
        report.data["webhook_sent"] = True
    return report


def version_created(settings: PlatformSettings, model: str, version: str) -> datetime | None:
    """When the version was registered (MLflow), the start of its age for the schedule."""
    from mlgate.training.registry import connect, resolve_version

    stamp = resolve_version(connect(settings), model, version).creation_timestamp
    return datetime.fromtimestamp(stamp / 1000, UTC) if stamp else None


def send_webhook(url: str, alert: Alert, timeout: float = 10.0) -> None:
    """POST the alert; a webhook that does not answer 2xx is an ExternalServiceError."""
    try:
        resp = requests.post(url, json=alert.model_dump(mode="json"), timeout=timeout)
    except requests.RequestException as exc:
        raise ExternalServiceError(f"webhook {url}: {exc}") from None
    if resp.status_code >= 300:
        raise ExternalServiceError(f"webhook {url}: HTTP {resp.status_code} {resp.text[:200]}")


def write_monitor_report(
    settings: PlatformSettings, report: MonitorReport, out: str | Path | None = None
) -> Path:
    """The report as files (report.json, report.html and, on an alert, alert.json: the payload
    the webhook gets), in `out` (default `<workspace>/reports/monitor/<model>-v<version>-<env>`),
    swapped in whole (`mlgate.outdir`). -> the folder."""
    target = out or (
        settings.ws().reports_dir / "monitor" / f"{report.model}-v{report.version}-{report.env}"
    )
    with new_folder(target, "mlgate monitor") as tmp:
        doc = report.model_dump(mode="json")
        (tmp / "report.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        (tmp / "report.html").write_text(monitor_html(report), encoding="utf-8")
        if report.alerts:
            alert = alert_payload(report).model_dump(mode="json")
            (tmp / "alert.json").write_text(json.dumps(alert, indent=2) + "\n", encoding="utf-8")
    return Path(target)
