"""`mlgate audit explain`: why was this applicant declined, shown to be what actually happened.

For a logged decision (the request-log sink's events, `mlgate.serving.logsink`): the request
that carried the application (its row key among the inputs, or its request id), the response
the runtime gave (PD, decision, reason codes, `model_version`), the environment (the
namespace) and the time. The decision is then RECOMPUTED from the registered version that
answered: the features it saw (the logged inputs; features a request did not carry were
looked up in Feast's online store by the applicant key, so they are rebuilt point-in-time as
of that lookup from the offline store), its
PD, its reason codes, and the decision at the cut-off git's main had in force for that
environment at that time (`audit.mainline`). Logged and recomputed must agree: PD within
`TOLERANCE`, the same decision and the same reason codes. Otherwise the record is refused
(`NotReproduced`, exit 1): a log that the model cannot reproduce (edited, or scored by
something else) is not evidence of why anyone was declined.

For an application that is only in the data source (no logged decision): the version git says
ran stable in the environment at the application's time, the application's point-in-time
features, the PD, decision and reasons, with nothing logged to compare.

Both end with the principal reasons in plain words and the adverse-action notice
(`audit.notice`). Read-only: nothing is written to the log, git or MLflow.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from mlgate.audit.mainline import Mainline
from mlgate.audit.notice import notice_text, principal_reasons
from mlgate.config import PlatformSettings
from mlgate.data.dataset_config import DatasetConfig, load_dataset_config
from mlgate.errors import EXIT_FAIL, BadInputError, ConfigError, MlgateError
from mlgate.features.training_set import build_training_set
from mlgate.gitops.overlay import ENVS, namespace
from mlgate.governance import model_config_files
from mlgate.records.values import check_text
from mlgate.serving.client import KEY
from mlgate.serving.logsink import LogEvent
from mlgate.serving.logsink_client import logged_decision
from mlgate.training.explain import application_row, recorded_dataset
from mlgate.training.model_config import ModelConfig, load_model_config
from mlgate.training.pipeline import prepare_frame
from mlgate.training.pyfunc import decide
from mlgate.training.reason_codes import ReasonCode
from mlgate.training.registry import Scorer, load_scorer

# |logged PD - recomputed PD|. The runtime scores logistic regression with the numpy fast path
# (`training.fastpath`), equal to the pyfunc's sklearn path to float rounding (~1e-15; the
# serving tests hold them to 1e-12); JSON carries a float exactly. Anything above 1e-9 is a
# different model or different features, not rounding.
TOLERANCE = 1e-9


class NotReproduced(MlgateError):
    """The registered model does not reproduce a logged decision: refuse it as evidence."""

    exit_code = EXIT_FAIL


class LoggedDecision(BaseModel):
    """What the request log says happened."""

    request_id: str
    time: str
    namespace: str
    predictor: str
    version: str
    pd: float | None  # None: referred, no score
    decision: str
    reason_codes: list[str]  # codes, in the order answered
    refer_reason: str = ""
    features_sent: list[str]
    file: str
    times_logged: int = 1  # requests carrying this application; the newest is explained


class AuditExplanation(BaseModel):
    application_id: str
    source: Literal["request-log", "data-source"]
    model: str
    version: str
    env: str | None
    decided_at: str | None
    features_from: str
    features: dict[str, Any]
    cutoff: float
    cutoff_from: str
    pd: float | None
    decision: str
    reason_codes: list[ReasonCode] = Field(default_factory=list)
    logged: LoggedDecision | None = None
    pd_difference: float | None = None
    tolerance: float = TOLERANCE
    reproduced: bool | None = None  # None: nothing logged to compare
    warnings: list[str] = Field(default_factory=list)
    principal_reasons: list[str] = Field(default_factory=list)
    notice: str | None = None


# --- the reviewed model configs: names, datasets' row keys, notice wording ------------------
def _reviewed_configs() -> list[ModelConfig]:
    return [load_model_config(p) for p in model_config_files()]


def _config_for(model: str, configs: list[ModelConfig]) -> ModelConfig:
    for cfg in configs:
        if cfg.name == model:
            return cfg
    raise ConfigError(
        f"model {model!r}: no model config of the reviewed directory names it (its notice "
        "wording, reason_codes.plain_language, lives there)"
    )


def _row_keys(configs: list[ModelConfig]) -> set[str]:
    keys = set()
    for cfg in configs:
        ds = load_dataset_config(cfg.dataset_path())
        if ds.row_key:
            keys.add(ds.row_key)
    return keys


# --- reading the request log (read-only: never through LogStore, which sweeps and repairs) ---
def _log_files(log: Path) -> list[Path]:
    if log.is_file():
        return [log]
    if log.is_dir():
        return sorted(p for p in log.glob("*/*/*.jsonl") if p.is_file())
    raise BadInputError(f"--log {log}: no such request-log folder or export file")


def _events(files: list[Path], needle: str) -> Iterator[tuple[LogEvent, Path]]:
    """Events whose stored line contains `needle` (a cheap filter before parsing)."""
    raw = needle.encode()
    for path in files:
        with path.open("rb") as f:
            for line in f:
                if raw not in line:
                    continue
                try:
                    yield LogEvent.model_validate_json(line), path
                except ValueError:
                    continue  # a torn tail the sink repairs at its next start


def _carries(ev: LogEvent, application_id: str, keys: set[str]) -> bool:
    if ev.request_id == application_id:
        return True
    for inp in ev.body.get("inputs") or []:
        values = np.ravel(np.asarray(inp.get("data", []), dtype=object))
        if str(inp.get("name")) in keys and application_id in {str(v) for v in values}:
            return True
    return False


def _find_logged(
    log: Path, application_id: str, keys: set[str]
) -> tuple[pd.Series, LogEvent, Path, int] | None:
    """The newest logged decision on this application: (its row, the request, file, count)."""
    files = _log_files(log)
    requests_ = {
        ev.request_id: (ev, path)
        for ev, path in _events(files, application_id)
        if ev.kind == "request" and _carries(ev, application_id, keys)
    }
    if not requests_:
        return None
    answered: list[tuple[pd.Series, LogEvent, Path]] = []
    for rid, (req, path) in requests_.items():
        for ev, _ in _events(files, rid):
            if ev.kind != "response" or ev.request_id != rid:
                continue
            rows = logged_decision(req, ev)
            mask = pd.Series(rid == application_id and len(rows) == 1, index=rows.index)
            for col in keys & set(rows.columns):
                mask |= rows[col].astype(str) == application_id
            hit = rows[mask]
            if len(hit) != 1:
                raise BadInputError(
                    f"application {application_id!r}: request {rid} carries it {len(hit)} times"
                )
            answered.append((hit.iloc[0], req, path))
            break
    if not answered:
        raise BadInputError(
            f"application {application_id!r}: request(s) {', '.join(sorted(requests_))} in "
            f"{log} have no logged response (nobody knows what was decided)"
        )
    answered.sort(key=lambda a: a[1].time)
    row, req, path = answered[-1]
    return row, req, path, len(answered)


def _model_env(ns: str, model_hint: str | None, names: list[str]) -> tuple[str, str]:
    for name in names:
        for env in ENVS:
            if namespace(name, env) == ns and (model_hint in (None, name)):
                return name, env
    raise BadInputError(
        f"request-log namespace {ns!r}: not the namespace of any reviewed model's environment"
    )


def _when(time: str) -> datetime:
    stamp = pd.Timestamp(time)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(UTC)
    return stamp.to_pydatetime()


def _looked_up_as_of(req: LogEvent) -> str:
    """When the runtime looked the features up: the request's `as_of` parameter (replays), else
    the time the request arrived (the online store answers as of now)."""
    params = req.body.get("parameters") or {}
    as_of = params.get("as_of") if isinstance(params, dict) else None
    return str(as_of) if as_of else req.time


def _features_as_of(
    settings: PlatformSettings, dataset: DatasetConfig, row: pd.Series, as_of: str
) -> pd.DataFrame:
    """The features Feast held for the request's applicant at `as_of`: the offline store's
    point-in-time join, which equals the online lookup the runtime made then (TTL included)."""
    if KEY not in row.index or not str(row[KEY]):
        raise BadInputError(
            f"request carries neither the model's features nor {KEY!r}: its features cannot "
            "be rebuilt"
        )
    sent = {f: [row[f]] for f in dataset.features if f in row.index}  # the application's own
    entity = pd.DataFrame(
        {
            dataset.entity_key: [str(row[KEY])],
            dataset.event_timestamp: [pd.Timestamp(as_of)],
            **sent,
        }
    )
    return build_training_set(
        settings, dataset, approved_only=False, matured_only=False, entity_df=entity
    )


# --- recomputing --------------------------------------------------------------------------
def _recompute(
    scorer: Scorer, row: pd.DataFrame, source: str
) -> tuple[float, list[ReasonCode], dict[str, Any]]:
    pm = scorer.python_model
    x = prepare_frame(row, pm.numeric_features, pm.categorical_features, source=source)
    pd_ = float(scorer.predict_pd(x)[0])
    codes = scorer.reason_codes(x)[0]
    features = {
        c: (None if isinstance(v, float) and math.isnan(v) else v)
        for c, v in x.iloc[0].to_dict().items()
    }
    return pd_, codes, json.loads(json.dumps(features, default=str))


def _cutoff_at(
    mainline: Mainline, model: str, env: str, when: datetime
) -> tuple[float, str, str | None, str | None]:
    """(served cut-off, where it came from, stable version, canary version) as of `when`."""
    commit = mainline.in_force_at(when)
    release = mainline.release_at(commit.sha if commit else None, model, env)
    if release is None or commit is None:
        raise BadInputError(
            f"git's main ran no {model} in {env} at {when.isoformat()}: the served cut-off "
            "of that decision cannot be read"
        )
    try:
        cutoff = float(release.cutoff)
    except ValueError:
        raise BadInputError(
            f"{commit.short}: {model}/{env} release.yaml cutoff {release.cutoff!r} is not a number"
        ) from None
    where = f"release.yaml of {model}/{env} at main {commit.short} ({commit.when.isoformat()})"
    return cutoff, where, release.stable_version, release.canary_version


def _explain_logged(
    settings: PlatformSettings,
    application_id: str,
    found: tuple[pd.Series, LogEvent, Path, int],
    configs: list[ModelConfig],
    model_hint: str | None,
) -> AuditExplanation:
    row, req, path, count = found
    model, env = _model_env(req.namespace, model_hint, [c.name for c in configs])
    version = str(row["served_by"])
    if not version:
        raise BadInputError(f"request {req.request_id}: the response names no model_version")
    scorer = load_scorer(settings, model, version)
    sent = str(row["inputs_sent"]).split(",")
    inputs = pd.DataFrame([row.drop(labels=[c for c in row.index if c not in sent])])
    missing = [f for f in scorer.features if f not in sent]
    features_from = "the request log (the features the model was sent)"
    if missing:  # the runtime looked them up in Feast's online store: rebuild them
        as_of = _looked_up_as_of(req)
        pit = _features_as_of(settings, recorded_dataset(settings, scorer.run_id), row, as_of)
        for col in missing:
            inputs[col] = pit[col].to_numpy()
        features_from = (
            f"the request log ({', '.join(f for f in scorer.features if f in sent) or 'none'}) "
            f"and Feast point-in-time as of {as_of}, when the server looked them up "
            f"({', '.join(missing)})"
        )
    logged = LoggedDecision(
        request_id=req.request_id,
        time=req.time,
        namespace=req.namespace,
        predictor=req.predictor,
        version=version,
        pd=None if math.isnan(row["logged_pd"]) else float(row["logged_pd"]),
        decision=str(row["logged_decision"]),
        reason_codes=[str(rc.get("code")) for rc in row["logged_reason_codes"]],
        refer_reason=str(row["logged_refer_reason"]),
        features_sent=[f for f in sent if f in scorer.features],
        file=str(path),
        times_logged=count,
    )
    when = _when(req.time)
    cutoff, cutoff_from, stable, canary = _cutoff_at(Mainline(settings), model, env, when)
    warnings = []
    if version not in (stable, canary):
        warnings.append(
            f"git's main ran v{stable}{f' and canary v{canary}' if canary else ''} in {env} "
            f"at that time, not the v{version} the log says answered"
        )
    what = AuditExplanation(
        application_id=application_id,
        source="request-log",
        model=model,
        version=version,
        env=env,
        decided_at=req.time,
        features_from=features_from,
        features={},
        cutoff=cutoff,
        cutoff_from=cutoff_from,
        pd=None,
        decision="refer",
        logged=logged,
        warnings=warnings,
    )
    if logged.decision == "refer":  # no score was given: nothing to reproduce or explain
        return what
    source = f"application {application_id} (request {req.request_id})"
    pd_, codes, features = _recompute(scorer, inputs, source)
    decision = decide([pd_], cutoff)[0]
    diff = abs(pd_ - logged.pd) if logged.pd is not None else math.inf
    problems = []
    if not diff <= TOLERANCE:
        problems.append(
            f"PD: logged {logged.pd!r}, recomputed {pd_!r} (|difference| {diff:.3g} > "
            f"tolerance {TOLERANCE:g})"
        )
    if decision != logged.decision:
        problems.append(
            f"decision: logged {logged.decision!r}, recomputed {decision!r} at the served "
            f"cut-off {cutoff:g} ({cutoff_from})"
        )
    recomputed_codes = [c.code for c in codes]
    if recomputed_codes != logged.reason_codes:
        problems.append(
            f"reason codes: logged {logged.reason_codes}, recomputed {recomputed_codes}"
        )
    if problems:
        raise NotReproduced(
            f"application {application_id}: {model} v{version} does not reproduce the logged "
            f"decision (request {req.request_id}, {req.time}, {path}): logged PD "
            f"{logged.pd!r}, recomputed PD {pd_!r}",
            problems=problems,
        )
    return what.model_copy(
        update={
            "features": features,
            "pd": pd_,
            "decision": decision,
            "reason_codes": codes,
            "pd_difference": diff,
            "reproduced": True,
        }
    )


def _explain_from_data(
    settings: PlatformSettings,
    application_id: str,
    cfg: ModelConfig,
    env: str,
    version: str | None,
    cutoff: float | None,
    log: Path | None,
) -> AuditExplanation:
    dataset = load_dataset_config(cfg.dataset_path())
    try:
        row = application_row(settings, dataset, application_id)
    except BadInputError as exc:
        if not exc.message.startswith(f"application {application_id!r} not found"):
            raise
        raise BadInputError(
            f"application {application_id!r}: no logged decision ({log or 'no request log'}) "
            f"and not in the data source of {cfg.name} (dataset {dataset.name})"
        ) from None
    when = _when(str(row[dataset.event_timestamp].iloc[0]))
    cutoff_from = "--cutoff"
    if version is None or cutoff is None:
        served, where, stable, _ = _cutoff_at(Mainline(settings), cfg.name, env, when)
        version = version or stable
        if cutoff is None:
            cutoff, cutoff_from = served, where
    assert version is not None and cutoff is not None
    if not 0 < cutoff < 1:
        raise BadInputError(f"--cutoff {cutoff}: must lie strictly between 0 and 1")
    scorer = load_scorer(settings, cfg.name, version)
    pd_, codes, features = _recompute(scorer, row, f"application {application_id}")
    return AuditExplanation(
        application_id=application_id,
        source="data-source",
        model=cfg.name,
        version=scorer.version,
        env=env,
        decided_at=when.isoformat(),
        features_from=f"Feast point-in-time as of the application ({dataset.name})",
        features=features,
        cutoff=cutoff,
        cutoff_from=cutoff_from,
        pd=pd_,
        decision=decide([pd_], cutoff)[0],
        reason_codes=codes,
    )


def explain_application(
    settings: PlatformSettings,
    application_id: str,
    *,
    log: Path | None = None,
    model: str | None = None,
    env: str = "prod",
    version: str | None = None,
    cutoff: float | None = None,
) -> AuditExplanation:
    """Explain one application: its logged decision if the request log holds one (recomputed
    and checked), else the application in the data source as `env` decided it then."""
    application_id = check_text(application_id, "--application-id")
    if not application_id.strip():
        raise BadInputError("--application-id: empty")
    if env not in ENVS:
        raise BadInputError(f"--env {env!r}: unknown (known: {', '.join(ENVS)})")
    configs = _reviewed_configs()
    if model is not None:
        configs = [_config_for(model, configs)]
    default_log = settings.ws().root / "request-log"  # `mlgate logsink`'s default folder
    if log is None and default_log.is_dir():
        log = default_log
    found = _find_logged(log, application_id, _row_keys(configs)) if log else None
    if found is not None:
        out = _explain_logged(settings, application_id, found, configs, model)
    else:
        if len(configs) != 1:
            raise BadInputError(
                f"application {application_id!r} is not in the request log: name its model "
                f"with --model (one of {', '.join(c.name for c in configs)})"
            )
        out = _explain_from_data(settings, application_id, configs[0], env, version, cutoff, log)
    cfg = _config_for(out.model, configs)
    wording = cfg.reason_codes.plain_language
    reasons = principal_reasons(out.decision, out.reason_codes, wording, cfg.source_file or "")
    notice = None
    if reasons or out.decision == "decline":
        notice = notice_text(
            application_id=application_id,
            decided_at=out.decided_at,
            model=out.model,
            version=out.version,
            reasons=reasons,
        )
    return out.model_copy(update={"principal_reasons": reasons, "notice": notice})
