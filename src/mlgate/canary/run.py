"""`mlgate canary analyze` as a library call: git's state, the request log, the verdict.

The request log is what the serving logger's sink lands (a parquet or CSV file, one row per
served request): the model's feature columns as sent, `served_by` (the version that answered)
and, when the sink has them, the dataset's row key and application timestamp (to join the
early outcomes from the data source), its entity key (protected attributes, from their own
table) or the early-outcome column itself. Every request is scored by both versions here, so
the canary's and the stable version's decisions are compared on the same applicants.

Without a request log there is no evidence: the verdict is WAIT (ABORT after the deadline).
`act=True` turns the verdict into its pull request: the next weight, the promotion (the
analysis report is its gate report) or the abort with the reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlgate.canary import oracle as simulated
from mlgate.canary.analysis import CanaryState, CanaryVerdict, Traffic, judge
from mlgate.canary.pnl import roll_rates
from mlgate.canary.record import make_record, record_verdict
from mlgate.config import PlatformSettings
from mlgate.data.dataset_config import DatasetConfig
from mlgate.errors import BadInputError
from mlgate.gates.collect import (
    _protected,
    holdout_scores,
    read_table,
    reference_groups,
    run_dataset,
)
from mlgate.gates.decisions import approve
from mlgate.gates.inputs import DriftData, HoldoutScores
from mlgate.gates.monitor import Expected, expected_from_holdout
from mlgate.gates.policy import GatePolicy, load_policy, policy_path_for
from mlgate.gates.result import CanaryRun, GateStatus
from mlgate.gitops.evidence import policy_in_force
from mlgate.gitops.report_store import put as store_report
from mlgate.gitops.status import canary_start
from mlgate.outdir import check_replaceable
from mlgate.training.registry import connect, resolve_version

SERVED_BY = "served_by"
SDEP_NAME = "model"  # the SeldonDeployment's name in every model namespace (manifests/base)
Say = Callable[[str], None]


def canary_state(
    settings: PlatformSettings, model: str, env: str, now: datetime | None = None
) -> CanaryState:
    from mlgate.gitops.status import canary_started, read_status

    status = read_status(settings).model(model)
    es = status.envs.get(env) if status is not None else None
    if es is None:
        raise BadInputError(f"{model} is not deployed in {env} (git main)")
    if es.canary_version is None or es.canary_weight is None:
        raise BadInputError(f"no canary of {model} runs in {env}: nothing to analyze")
    started = canary_started(settings, model, env, es.canary_version)
    return CanaryState(
        model=model,
        env=env,
        stable_version=es.stable_version,
        canary_version=es.canary_version,
        weight=es.canary_weight,
        cutoff=float(es.cutoff),
        started=datetime.fromtimestamp(started, UTC) if started is not None else None,
        now=now or datetime.now(UTC),
    )


def read_requests(
    path: str | Path, features: list[str], versions: set[str], state: CanaryState | None = None
) -> pd.DataFrame:
    """The request log; every feature and `served_by` must be there, naming what is not. A
    URL is a running request-log sink: the canary's SeldonDeployment's requests since the
    canary entered (`mlgate.serving.logsink`)."""
    if str(path).startswith(("http://", "https://")):
        if state is None:
            raise BadInputError("--requests URL: needs the canary's state to know what to fetch")
        from mlgate.gitops.overlay import namespace
        from mlgate.serving.logsink import read_token_from_env
        from mlgate.serving.logsink_client import (
            fetch_events,
            refused_requests,
            request_frame,
            unanswered_requests,
        )

        since = state.started.isoformat() if state.started else None
        ns = namespace(state.model, state.env)
        events = list(fetch_events(str(path), ns, SDEP_NAME, since, token=read_token_from_env()))
        df = request_frame(events)
        # Requests a predictor never answered (dead, 5xx): the canary's count is evidence.
        state.unanswered = unanswered_requests(events, state.now)
        # Requests a predictor refused as bad input (4xx): reported, never a failure.
        state.refused = refused_requests(events)
        # A shadow's mirrored copies decided nobody: not the canary's evidence (shadow_run's).
        df = df[df["predictor"] != "shadow"].reset_index(drop=True)
        # Only requests that carried every feature can be scored again by the other version;
        # key-only requests (features looked up by the runtime) are counted and left out.
        full = df["inputs_sent"].map(lambda s: set(features) <= set(str(s).split(",")))
        state.dropped_requests = int((~full).sum())
        df = df[full].reset_index(drop=True)
        if not len(df):
            df = pd.DataFrame(columns=[*features, SERVED_BY])
    else:
        df = read_table(path, [*features, SERVED_BY], "--requests")
    served = df[SERVED_BY].astype(str)
    unknown = sorted(set(served) - versions)
    if unknown:
        raise BadInputError(
            f"--requests {path}: column {SERVED_BY} has version(s) {', '.join(unknown)} that do not "
            f"run here (stable/canary: {', '.join(sorted(versions))})"
        )
    return df.assign(**{SERVED_BY: served}).reset_index(drop=True)


def early_outcomes(
    settings: PlatformSettings,
    dataset: DatasetConfig,
    log: pd.DataFrame,
    column: str | None = None,
) -> np.ndarray | None:
    """3-month outcomes (or `column`: the 12-month label) of the served applications: the
    log's own column, or joined from the data source by row key over the log's
    application-time range. None if neither is possible."""
    col = column or dataset.early_label
    if not col:
        return None
    if col in log.columns:
        return pd.to_numeric(log[col], errors="coerce").to_numpy(float)
    key, ts = dataset.row_key, dataset.event_timestamp
    if not key or key not in log.columns or ts not in log.columns or not len(log):
        return None
    from mlgate.features.training_set import application_features

    when = pd.to_datetime(log[ts], utc=True)
    known = application_features(
        settings, dataset, when.min(), when.max() + pd.Timedelta(microseconds=1)
    )
    if col not in known.columns or key not in known.columns:
        return None
    joined = log[[key]].merge(known[[key, col]].drop_duplicates(key), on=key, how="left")
    return pd.to_numeric(joined[col], errors="coerce").to_numpy(float)


def analyze(
    settings: PlatformSettings,
    *,
    model: str,
    env: str,
    requests: str | Path | None = None,
    policy_file: str | Path | None = None,
    report_dir: str | Path | None = None,
    act: bool = False,
    record: bool = False,
    now: datetime | None = None,
    say: Say | None = None,
    simulate_outcomes: str | None = None,
) -> tuple[CanaryVerdict, dict[str, Path], Any]:
    """(verdict, report files, the pull request opened with `act`, else None). `record`:
    the verdict also goes to git for Argo CD when its state changed (`canary.record`).
    `simulate_outcomes` (3m, 12m; synthetic world only): the served loans' outcomes from the
    world's oracle as if they had matured (`canary.oracle`), stated in the report."""
    from mlgate.gates.report import write_report
    from mlgate.training.registry import load_holdout, load_scorer, load_training_set

    say = say or (lambda _m: None)
    named = check_replaceable(report_dir) if report_dir else None  # exit 2 before the work
    when = simulated.horizon(simulate_outcomes) if simulate_outcomes else None
    state = canary_state(settings, model, env, now)
    # The policy the promotion will verify the analysis against (unless --policy is given,
    # whose report a promotion then refuses).
    policy: GatePolicy = (
        load_policy(policy_path_for(model, policy_file))
        if policy_file
        else policy_in_force(settings, model, state.canary_version)
    ).for_env(env)
    out = named or default_dir(settings, state)
    say(f"canary {state.canary_version} at {state.weight}% beside stable {state.stable_version}")
    canary = load_scorer(settings, model, state.canary_version)
    stable = load_scorer(settings, model, state.stable_version)
    dataset = run_dataset(settings, canary.run_id)
    truth = simulated.read_oracle(dataset) if when else None  # exit 2 without an oracle
    hold = load_holdout(settings, model, canary.version)
    base = holdout_scores(hold, dataset, canary.predict_pd(hold), None, None, policy, False)
    expected: Expected | None = expected_from_holdout(base, state.cutoff)
    # Roll rates for the P&L: the canary's holdout is matured history (both outcomes known).
    roll = roll_rates(base.early, base.y, f"v{canary.version}'s out-of-time holdout")
    traffic = drift = None
    info: dict[str, Any] = {"requests_file": str(requests) if requests else None}
    if requests is not None:
        log = read_requests(
            requests,
            dataset.features,
            {state.canary_version, state.stable_version},
            state,
        )
        say(f"scoring {len(log)} served requests with both versions")
        pd_canary = canary.predict_pd(log) if len(log) else np.array([])
        pd_stable = stable.predict_pd(log) if len(log) else np.array([])
        served = (log[SERVED_BY] == state.canary_version).to_numpy()
        if when and truth is not None:
            # The loans the serving versions booked, matured from the oracle: a simulation.
            booked = np.where(
                served, approve(pd_canary, state.cutoff), approve(pd_stable, state.cutoff)
            )
            log, matured = simulated.mature(log, truth, dataset, booked, when)
            info["outcomes_simulated"] = matured.model_dump(mode="json")
            say(
                f"outcomes simulated ({when}) from the oracle: {matured.booked} booked loans, "
                f"{matured.with_early_outcome} early and {matured.with_12m_outcome} 12-month"
            )
        label = early_outcomes(settings, dataset, log, dataset.label)
        amount_col = policy.cost_model.amount_column
        traffic = Traffic(
            scores=HoldoutScores(
                y=label if label is not None else np.full(len(log), np.nan),
                amount=(
                    pd.to_numeric(log[amount_col], errors="coerce").to_numpy(float)
                    if amount_col and amount_col in log.columns
                    else None
                ),
                pd_challenger=pd_canary,
                pd_champion=pd_stable,
                groups=_protected(dataset, log),
                early=early_outcomes(settings, dataset, log),
            ),
            canary_served=served,
            canary_errors=state.unanswered.get("canary", 0),
            stable_errors=state.unanswered.get("stable", 0),
            canary_refused=state.refused.get("canary", 0),
            stable_refused=state.refused.get("stable", 0),
        )
        if len(log):
            say("drift: the requests vs each version's training set")
            ref, champ_ref = (
                load_training_set(settings, model, v) for v in (canary.version, stable.version)
            )
            traffic.scores.reference_groups = reference_groups(dataset, ref)
            drift = DriftData(
                reference=ref,
                current=log,
                numeric=list(dataset.numeric_features),
                categorical=list(dataset.categorical_features),
                reference_score=canary.predict_pd(ref),
                current_score=pd_canary,
                champion_reference=champ_ref,
                champion_reference_score=stable.predict_pd(champ_ref),
                champion_current_score=pd_stable,
            )
        info.update(
            requests=len(log),
            canary_requests=int(served.sum()),
            requests_without_full_features=state.dropped_requests,
            requests_unanswered=state.unanswered,
            requests_refused=state.refused,
        )
    verdict = judge(state, traffic, drift, expected, policy, roll)
    verdict.report.data.update(info)
    identify(settings, verdict, policy, canary.run_id)
    paths = write_report(
        out, verdict.report, drift=drift, evidently=False, what="mlgate canary analyze"
    )
    stored = store_report(settings, out, canary.run_id)  # `canary promote` finds it by sha256
    pr = act_on(settings, verdict, out) if act else None
    if record:
        record_verdict(
            settings,
            make_record(
                model=model,
                env=env,
                decision=verdict.decision,
                stable_version=state.stable_version,
                canary_version=state.canary_version,
                weight=state.weight,
                not_passing=[g.name for g in verdict.report.gates if g.status != GateStatus.PASS],
                reasons=verdict.reasons,
                now=state.now,
                started=state.started,
                deadline_hours=policy.canary.deadline_hours,
                report_sha256=stored.sha256,
                evidence=stored.mlflow_uri or str(stored.folder),
            ),
        )
    return verdict, paths, pr


def identify(
    settings: PlatformSettings, verdict: CanaryVerdict, policy: GatePolicy, run_id: str
) -> None:
    """What `canary promote` verifies the analysis by: its kind, the canary it judged (the
    commit that started it on main), the policy and the canary version's data."""
    rep = verdict.report
    start = canary_start(settings, rep.model, rep.env, rep.challenger)
    tags = resolve_version(connect(settings), rep.model, rep.challenger).tags or {}
    rep.kind = "canary-analysis"
    rep.policy_sha256 = policy.digest
    rep.data_fingerprint = tags.get("data_fingerprint")
    if start is not None:
        rep.canary = CanaryRun(
            start_commit=start.sha,
            started=datetime.fromtimestamp(start.time, UTC).isoformat(),
            weight=int(rep.data.get("canary_weight", 0)),
            decision=verdict.decision,
        )
    rep.data["mlflow_run"] = run_id


def default_dir(settings: PlatformSettings, state: CanaryState) -> Path:
    stamp = state.now.strftime("%Y%m%dT%H%M%SZ")
    name = f"{state.model}-v{state.canary_version}-{state.env}-{stamp}"
    return settings.ws().reports_dir / "canary" / name


def act_on(settings: PlatformSettings, verdict: CanaryVerdict, report: Path) -> Any:
    """The verdict acted on: advance and promote as their pull request (a reviewer merges
    them; `report` is the verdict's report folder, the evidence a promotion carries), abort as
    break-glass straight onto main (`gitops.canary.abort_now`: canary removed, version
    quarantined, no approval awaited), None for WAIT."""
    from mlgate.gitops import canary

    model, env = verdict.report.model, verdict.report.env
    if verdict.decision == "advance":
        assert verdict.next_weight is not None
        return canary.set_weight(settings, model, env, verdict.next_weight)
    if verdict.decision == "promote":
        return canary.promote_canary(settings, model, env, report)
    if verdict.decision == "abort":
        reason = "canary analysis: " + "; ".join(verdict.reasons)
        return canary.abort_now(settings, model, env, reason[:500])
    return None
