"""`mlgate shadow analyze` as a library call: git's state, the request log, the report.

The request log is the sink's (`mlgate.serving.logsink`): a running sink's URL (its /export of
the environment's SeldonDeployment since the shadow started) or a file of its export lines.
Seldon's executor logs each predictor's request and response as separate CloudEvents; the
mirrored copy a shadow answers is a request of the shadow's own executor, with its own
`ce-requestid` (Seldon-Puid). So the two answers to one request are paired by the V2
inference request's `id` (the caller's, in the body both copies carry) and the row within it;
a request without an `id` is paired by `ce-requestid` (a caller that sends `Seldon-Puid`).
Requests only one side answered are counted and left out. Each answer's `pd` output is what
that version really answered: nothing is re-scored. Protected attributes come from their own
table by the entity key when the request carried it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from mlgate.canary.shadow import ShadowPairs, judge_shadow
from mlgate.config import PlatformSettings
from mlgate.data.dataset_config import DatasetConfig
from mlgate.data.protected import load_protected, protected_groups
from mlgate.errors import BadInputError
from mlgate.gates.collect import run_dataset
from mlgate.gates.policy import GatePolicy, load_policy, policy_path_for
from mlgate.gates.result import GateReport
from mlgate.gitops.evidence import mlflow_lineage, policy_in_force
from mlgate.gitops.history import log as git_log
from mlgate.gitops.overlay import namespace, overlay_dir
from mlgate.gitops.report_store import put as store_report
from mlgate.gitops.status import main_view, read_status
from mlgate.outdir import check_replaceable
from mlgate.records.trailers import ChangeKind
from mlgate.serving.logsink import LogEvent, read_token_from_env
from mlgate.serving.logsink_client import _inputs_frame, fetch_events

SDEP_NAME = "model"  # the SeldonDeployment's name in every model namespace (manifests/base)
STABLE, SHADOW = "stable", "shadow"  # predictor names (manifests/base, components/shadow)


class ShadowState(BaseModel):
    model: str
    env: str
    stable_version: str
    shadow_version: str
    cutoff: float
    started: datetime | None = None


def shadow_state(settings: PlatformSettings, model: str, env: str) -> ShadowState:
    """What git's main runs in `env`: the shadow beside stable, and when the shadow started."""
    ms = read_status(settings).model(model)
    es = ms.envs.get(env) if ms is not None else None
    if es is None:
        raise BadInputError(f"{model} is not deployed in {env} (git main)")
    if es.shadow_version is None:
        raise BadInputError(f"no shadow of {model} runs in {env}: nothing to analyze")
    started = None
    view = main_view(settings)
    if view is not None:
        for c in git_log(view.git_dir, view.cwd, view.ref, [overlay_dir(model, env)]):
            t = c.lineage
            if t and t.change == ChangeKind.SHADOW_START and t.model_version == es.shadow_version:
                started = datetime.fromtimestamp(c.time, UTC)
                break
    return ShadowState(
        model=model,
        env=env,
        stable_version=es.stable_version,
        shadow_version=es.shadow_version,
        cutoff=float(es.cutoff),
        started=started,
    )


def read_events(source: str | Path, state: ShadowState) -> Iterable[LogEvent]:
    """The sink's events: a URL (its /export since the shadow started) or an export file."""
    if str(source).startswith(("http://", "https://")):
        since = state.started.isoformat() if state.started else None
        ns = namespace(state.model, state.env)
        return fetch_events(str(source), ns, SDEP_NAME, since, token=read_token_from_env())
    path = Path(source)
    if not path.is_file():
        raise BadInputError(f"--requests {path}: file not found")

    def lines() -> Iterable[LogEvent]:
        with path.open(encoding="utf-8") as fh:
            for no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield LogEvent.model_validate_json(line)
                except ValueError as exc:
                    raise BadInputError(
                        f"--requests {path}:{no}: not a request-log event: {str(exc)[:300]}"
                    ) from None

    return lines()


def _outputs(body: dict[str, Any], name: str) -> list[Any]:
    for out in body.get("outputs") or []:
        if out.get("name") == name:
            return list(np.ravel(np.asarray(out.get("data", []), dtype=object)))
    return []


def pair_events(
    events: Iterable[LogEvent], state: ShadowState
) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per request row answered by both: stable's request inputs, `pd_stable`,
    `pd_shadow`; and the counts of what could not be paired. An answer from a version other
    than the one git runs in that role is bad input (a log of another rollout)."""
    reqs: dict[tuple[str, str], LogEvent] = {}
    resps: dict[tuple[str, str], LogEvent] = {}
    for ev in events:
        if ev.predictor in (STABLE, SHADOW):
            (reqs if ev.kind == "request" else resps)[(ev.predictor, ev.request_id)] = ev
    want = {STABLE: state.stable_version, SHADOW: state.shadow_version}
    answers: dict[str, dict[tuple[str, int], tuple[float, dict[str, Any]]]] = {
        STABLE: {},
        SHADOW: {},
    }
    for (pred, rid), req in reqs.items():
        resp = resps.get((pred, rid))
        if resp is None:
            continue
        pds = _outputs(resp.body, "pd")
        versions = {str(v) for v in _outputs(resp.body, "model_version")}
        versions |= {str(resp.body["model_version"])} if resp.body.get("model_version") else set()
        if versions and versions != {want[pred]}:
            raise BadInputError(
                f"request {rid}: predictor {pred} answered as version(s) "
                f"{', '.join(sorted(versions))}, but git runs {want[pred]} there"
            )
        key = str(req.body.get("id") or rid)
        for i, value in enumerate(pds):
            answers[pred][(key, i)] = (
                np.nan if value is None else float(value),
                {"request": req, "row": i},
            )
    both = [k for k in answers[STABLE] if k in answers[SHADOW]]
    counts = {
        "stable_answers": len(answers[STABLE]),
        "shadow_answers": len(answers[SHADOW]),
        "paired": len(both),
    }
    rows: list[pd.DataFrame] = []
    pd_st, pd_sh = [], []
    frames: dict[str, pd.DataFrame] = {}
    for pair in both:
        st, ctx = answers[STABLE][pair]
        sh, _ = answers[SHADOW][pair]
        if not (np.isfinite(st) and np.isfinite(sh)):
            counts["referred"] = counts.get("referred", 0) + 1  # no PD: referred, not scored
            continue
        asked: LogEvent = ctx["request"]
        if asked.request_id not in frames:
            frames[asked.request_id] = _inputs_frame(asked.body)
        frame = frames[asked.request_id]
        rows.append(frame.iloc[[ctx["row"]]] if ctx["row"] < len(frame) else pd.DataFrame([{}]))
        pd_st.append(st)
        pd_sh.append(sh)
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    out["pd_stable"] = np.asarray(pd_st, dtype=float)
    out["pd_shadow"] = np.asarray(pd_sh, dtype=float)
    return out, counts


def analyze_shadow(
    settings: PlatformSettings,
    *,
    model: str,
    env: str,
    requests: str | Path,
    policy_file: str | Path | None = None,
    report_dir: str | Path | None = None,
    dataset: DatasetConfig | None = None,
    now: datetime | None = None,
) -> tuple[GateReport, dict[str, Path]]:
    """(the shadow-analysis report, its files). Stored by sha256 like every gate report: it is
    the `--shadow-report` `canary start` verifies when the policy's phases begin with shadow."""
    from mlgate.gates.report import write_report

    named = check_replaceable(report_dir) if report_dir else None  # exit 2 before the work
    state = shadow_state(settings, model, env)
    policy: GatePolicy = (
        load_policy(policy_path_for(model, policy_file))
        if policy_file
        else policy_in_force(settings, model, state.shadow_version)
    ).for_env(env)
    lineage = mlflow_lineage(settings, model, state.shadow_version)
    frame, counts = pair_events(read_events(requests, state), state)
    ds = dataset if dataset is not None else run_dataset(settings, lineage.run_id or "")
    groups = protected_groups(ds, frame, load_protected(ds)) if len(frame) else None
    if groups is not None and policy.fairness.attributes:
        groups = groups[[a for a in policy.fairness.attributes if a in groups.columns]]
    amount_col = policy.cost_model.amount_column
    amount = (
        pd.to_numeric(frame[amount_col], errors="coerce").to_numpy(float)
        if amount_col and amount_col in frame.columns
        else None
    )
    pairs = ShadowPairs(
        pd_stable=frame["pd_stable"].to_numpy(float),
        pd_shadow=frame["pd_shadow"].to_numpy(float),
        groups=groups,
        amount=amount,
    )
    report = judge_shadow(
        model=model,
        env=env,
        stable_version=state.stable_version,
        shadow_version=state.shadow_version,
        cutoff=state.cutoff,
        pairs=pairs,
        policy=policy,
        data_info={
            **counts,
            "requests": str(requests),
            "shadow_started": state.started.isoformat() if state.started else None,
            "data_fingerprint": lineage.data_fingerprint,
            "mlflow_run": lineage.run_id,
        },
    )
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    out = named or (
        settings.ws().reports_dir / "shadow" / f"{model}-v{state.shadow_version}-{env}-{stamp}"
    )
    paths = write_report(out, report, evidently=False, what="mlgate shadow analyze")
    store_report(settings, out, lineage.run_id)
    return report, paths


def events_file(events: Iterable[LogEvent], path: Path) -> Path:
    """Write events as the sink's export lines (what `--requests FILE` reads)."""
    with path.open("w", encoding="utf-8") as fh:
        for ev in events:
            fh.write(json.dumps(ev.model_dump(mode="json")) + "\n")
    return path
