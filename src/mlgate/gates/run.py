"""`gates run` as a library call: policy -> data -> gates -> report files (+ MLflow).

The CLI command, the demo step and the pipeline component all call `run_gates_for_model`; it
returns the GateReport (whose `exit_code` is the command's) and the report file paths.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError
from mlgate.gates.collect import (
    Collected,
    collect,
    log_to_mlflow,
    recorded_policy,
    with_served_cutoff,
)
from mlgate.gates.evaluate import run_gates
from mlgate.gates.policy import CutoffPolicy, GatePolicy, load_policy, policy_path_for
from mlgate.gates.report import write_report
from mlgate.gates.result import GateReport
from mlgate.gitops.overlay import check_env, check_model
from mlgate.gitops.report_store import put as store_report
from mlgate.gitops.status import StateUnreadable
from mlgate.outdir import check_replaceable
from mlgate.records.values import canonical_version


def gate_reports(settings: PlatformSettings) -> Path:
    return settings.ws().reports_dir / "gates"


def default_report_dir(settings: PlatformSettings, model: str, challenger: str, env: str) -> Path:
    return gate_reports(settings) / f"{model}-v{challenger}-{env}"


def file_report(settings: PlatformSettings, report_dir: Path) -> Path:
    """Keep a gate report another runner wrote (a pipeline run's `report_files` artifact) where
    this workspace keeps its own (`default_report_dir`), so what lists the workspace's reports
    (the demo page) shows it too. Replaces that folder whole. -> the folder."""
    src = Path(report_dir) / "report.json"
    try:
        doc = GateReport.model_validate_json(src.read_bytes())
    except (OSError, ValueError) as exc:
        raise BadInputError(f"{src}: not a gate report: {exc}") from exc
    # the names come from the file: checked as every other input naming them, never a path
    try:
        model, env = check_model(doc.model), check_env(doc.env)
        version = canonical_version(doc.challenger, "challenger")
    except BadInputError as exc:
        raise BadInputError(f"{src}: {exc}") from exc
    out = default_report_dir(settings, model, version, env)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src.parent, tmp)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def gather(
    settings: PlatformSettings,
    *,
    model: str,
    challenger: str,
    env: str,
    policy: GatePolicy,
    champion: str | None = None,
    current: str | Path | None = None,
    say: Callable[[str], None] | None = None,
    **collect_args: Any,
) -> tuple[GatePolicy, Collected]:
    """What a challenger is judged on, the one path for `gates run` and the training
    pipeline's evaluate step: the policy with the environment's served cut-off resolved from
    git (`cutoff.method: overlay`, `collect.with_served_cutoff`) and the data (`collect`).

    The resolved cut-off is recorded in `info` (`cutoff`, `cutoff_source`); git that cannot
    be read leaves no cut-off (`why_missing["cutoff"]`): the gates that decide at the cut-off
    are INCONCLUSIVE, never judged at the policy's fallback value. `collect_args` go to
    `collect` as they are (e.g. the pipeline's data artifact)."""
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
        **collect_args,
    )
    data.info["cutoff_source"] = cutoff_source
    if unread:
        data.why_missing["cutoff"] = unread
    else:
        data.info["cutoff"] = policy.cutoff.model_dump(mode="json")
    return policy, data


def at_recorded_cutoff(
    policy: GatePolicy, info: dict[str, Any], why_missing: dict[str, str]
) -> tuple[GatePolicy, dict[str, str]]:
    """The policy at the cut-off `gather` resolved and recorded with the evidence, for a step
    in another pod (a gate task, the decision) that must judge at the same cut-off without
    reading git again. Evidence without one, under `cutoff.method: overlay`, leaves the gates
    that decide at the cut-off INCONCLUSIVE (fail closed), never at the policy's value."""
    recorded = info.get("cutoff")
    if recorded is not None:
        cut = CutoffPolicy.model_validate(recorded)
        return policy.model_copy(update={"cutoff": cut}), why_missing
    if policy.cutoff.method == "overlay" and "cutoff" not in why_missing:
        why_missing = {**why_missing, "cutoff": "the evidence carries no resolved served cut-off"}
    return policy, why_missing


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
    policy, data = gather(
        settings,
        model=model,
        challenger=challenger,
        env=env,
        policy=policy,
        champion=champion,
        current=current,
        say=say,
    )
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
