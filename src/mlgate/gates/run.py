"""`gates run` as a library call: policy -> data -> gates -> report files (+ MLflow).

The CLI command, the demo step and the pipeline component all call `run_gates_for_model`; it
returns the GateReport (whose `exit_code` is the command's) and the report file paths.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlgate.config import PlatformSettings
from mlgate.gates.collect import collect, log_to_mlflow, recorded_policy, with_served_cutoff
from mlgate.gates.evaluate import run_gates
from mlgate.gates.policy import load_policy, policy_path_for
from mlgate.gates.report import write_report
from mlgate.gates.result import GateReport
from mlgate.gitops.report_store import put as store_report
from mlgate.gitops.status import StateUnreadable
from mlgate.outdir import check_replaceable


def default_report_dir(settings: PlatformSettings, model: str, challenger: str, env: str) -> Path:
    return settings.ws().reports_dir / "gates" / f"{model}-v{challenger}-{env}"


def run_gates_for_model(
    settings: PlatformSettings,
    *,
    model: str,
    challenger: str,
    env: str,
    champion: str | None = None,
    current: str | Path | None = None,
    policy_file: str | Path | None = None,
    report_dir: str | Path | None = None,
    evidently: bool = True,
    log_mlflow: bool = True,
    say: Callable[[str], None] | None = None,
) -> tuple[GateReport, dict[str, Path]]:
    say = say or (lambda _m: None)
    named = None if policy_file else recorded_policy(settings, model, challenger)
    named_by = f"MLflow tag gate_policy of {model} version {challenger}"
    policy = load_policy(policy_path_for(model, policy_file, named, named_by))  # bad: exit 2
    policy.for_env(env)  # unknown environment: exit 2 before any work
    if report_dir:
        check_replaceable(report_dir)  # a folder it may not replace: exit 2 before any work
    unread = None
    try:
        policy, cutoff_source = with_served_cutoff(settings, model, env, policy)
    except StateUnreadable as exc:  # never judge at a cut-off that may not be the served one
        unread, cutoff_source = f"served cut-off unreadable: {exc}", "unreadable"
    data = collect(
        settings,
        model=model,
        challenger=challenger,
        champion=champion,
        env=env,
        policy=policy,
        current=current,
        say=say,
    )
    data.info["cutoff_source"] = cutoff_source
    if unread:
        data.why_missing["holdout"] = unread
    report = run_gates(
        model=model,
        challenger=data.challenger,
        champion=data.champion,
        env=env,
        policy=policy,
        holdout=data.holdout,
        drift=data.drift,
        data_info=data.info,
        why_missing=data.why_missing,
        on_gate=lambda name: say(f"gate {name}"),
        recent=data.recent,
    )
    out = (
        Path(report_dir)
        if report_dir
        else default_report_dir(settings, model, data.challenger, env)
    )
    say("writing the report")
    paths = write_report(out, report, holdout=data.holdout, drift=data.drift, evidently=evidently)
    # Content-addressed, where a promotion finds it again by the sha256 its commit names.
    store_report(settings, out, data.run_id if log_mlflow else None)
    if log_mlflow and data.run_id:
        uri = log_to_mlflow(settings, data.run_id, paths["report.json"].parent, env)
        if uri:
            report.data["mlflow_artifacts"] = uri
    return report, paths
