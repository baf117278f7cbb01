"""The functions the pipeline components call: artifacts (files) in, library calls, files out.

A Kubeflow component only sees paths and plain parameters, and runs in its own process (a pod
in the cluster, a subprocess locally), so each step here loads the platform settings from the
environment, reads its inputs from artifact paths, calls the capability's library (data,
features, training, gates, packaging, gitops) and writes its outputs to artifact paths. Keeping
this glue here rather than in the component bodies keeps the components one call long and
makes every step testable without Kubeflow.

Each step returns a StepOutput: the component's return value, the metrics it logs (shown on
the step in the Kubeflow UI) and metadata attached to its output artifact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mlgate.config import PlatformSettings, load_settings
from mlgate.errors import BadInputError, install_log_redaction


class StepOutput(BaseModel):
    value: str = ""
    metrics: dict[str, float] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


# --- helpers ---------------------------------------------------------------------------
def settings() -> PlatformSettings:
    """Settings from the environment the runner gives the step (MLGATE_* variables); the
    step's log lines are redacted like the CLI's (no credential in a URL or token printed)."""
    install_log_redaction()
    return load_settings()


def resolve(path: str) -> Path:
    """A config path from a pipeline parameter: absolute, or relative to the project root."""
    from mlgate.pipelines.catalog import project_root

    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    cwd = Path.cwd() / p
    if cwd.exists():
        return cwd.resolve()
    return (project_root() / p).resolve()


def _write_text(path: str | Path, text: str) -> None:
    """Write an output file atomically (a crashed step leaves no half-written artifact)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, target)


def _write_json(path: str | Path, data: Any) -> None:
    _write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _numbers(data: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The scalar numbers of a dict (what KFP Metrics can show)."""
    out: dict[str, float] = {}
    for key, value in data.items():
        if isinstance(value, bool):
            out[prefix + key] = float(value)
        elif isinstance(value, int | float) and value == value:  # skip NaN
            out[prefix + key] = float(value)
    return out


def _model_cfg(model_config: str) -> Any:
    from mlgate.training.model_config import load_model_config

    return load_model_config(resolve(model_config))


def _dataset_cfg(model_cfg: Any, st: PlatformSettings) -> Any:
    from mlgate.data.dataset_config import load_dataset_config
    from mlgate.data.sources import with_workspace

    return with_workspace(load_dataset_config(model_cfg.dataset_path()), st)


# --- data ------------------------------------------------------------------------------
def prepare_data(model_config: str, world_applications: int, out_path: str) -> StepOutput:
    """Make the model's dataset available and fingerprint it.

    For the synthetic world: generate it when it is absent, or when `world_applications` > 0
    and the existing world has a different size. Other datasets must already exist.
    """
    from mlgate.data.fingerprint import fingerprint
    from mlgate.data.world import WorldManifest, generate_world, load_world_spec

    st = settings()
    cfg = _dataset_cfg(_model_cfg(model_config), st)
    path = cfg.resolve_path()
    generated = False
    if cfg.resolved_format == "synthetic":
        manifest = path / "manifest.json"
        current = (
            WorldManifest.model_validate_json(manifest.read_text()) if manifest.is_file() else None
        )
        wanted = int(world_applications) if world_applications else None
        if current is None or (wanted and current.spec.n_applications != wanted):
            spec = load_world_spec(n_applications=wanted, seed=st.seed)
            generate_world(spec, path)
            generated = True
    if not path.exists():
        raise BadInputError(f"dataset {cfg.name!r}: {path} does not exist")
    fp = fingerprint(path)
    info = {
        "dataset": cfg.name,
        "path": str(path),
        "fingerprint": fp.sha256,
        "rows": fp.rows,
        "generated": generated,
    }
    _write_json(out_path, info)
    return StepOutput(
        value=fp.sha256,
        metrics={"rows": float(fp.rows), "generated": float(generated)},
        metadata=info,
    )


def validate_data(model_config: str, data_path: str, report_path: str) -> StepOutput:
    """Validate the dataset; raise BadInputError listing every problem (fails the step)."""
    from mlgate.data.validate import validate_dataset

    st = settings()
    cfg = _dataset_cfg(_model_cfg(model_config), st)
    report = validate_dataset(cfg)
    _write_text(report_path, _validation_html(report))
    _write_json(Path(report_path).with_suffix(".json"), report.model_dump(mode="json"))
    report.raise_for_problems()
    metrics = {f"rows_{k}": float(v) for k, v in report.tables.items()}
    metrics["problems"] = float(len(report.problems))
    return StepOutput(value="PASS", metrics=metrics)


def _validation_html(report: Any) -> str:
    from html import escape

    rows = "".join(
        f"<tr><td>{escape(t)}</td><td>{n}</td></tr>" for t, n in sorted(report.tables.items())
    )
    probs = "".join(f"<li>{escape(p.message)}</li>" for p in report.problems) or "<li>none</li>"
    verdict = "passed" if report.ok else "FAILED"
    return (
        f"<html><body><h2>Dataset {escape(report.dataset)}: validation {verdict}</h2>"
        f"<p>{escape(report.path)} (max missing share {report.max_missing_share})</p>"
        f"<table border=1><tr><th>table</th><th>rows</th></tr>{rows}</table>"
        f"<h3>Problems</h3><ul>{probs}</ul></body></html>"
    )


# --- features --------------------------------------------------------------------------
def build_training_set(model_config: str, out_path: str) -> StepOutput:
    """The point-in-time correct training set through Feast, as parquet."""
    from mlgate.features.training_set import build_training_set as build

    st = settings()
    cfg = _dataset_cfg(_model_cfg(model_config), st)
    df = build(st, cfg, approved_only=True, matured_only=True)
    target = Path(out_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, target)
    label = df[cfg.label] if cfg.label in df.columns else None
    metrics = {"rows": float(len(df)), "columns": float(len(df.columns))}
    if label is not None and len(df):
        metrics["default_rate"] = float(label.mean())
    meta = {
        "dataset": cfg.name,
        "feature_service": str(df.attrs.get("feature_service", "")),
        "rows": len(df),
    }
    return StepOutput(value=str(len(df)), metrics=metrics, metadata=meta)


# --- training --------------------------------------------------------------------------
def train_model(
    model_config: str, data_fingerprint: str, training_set_path: str, model_path: str
) -> StepOutput:
    """Fit, evaluate, log to MLflow and register a version from the step's training set."""
    import pandas as pd

    from mlgate.training.train import train_on_frame

    st = settings()
    mcfg = _model_cfg(model_config)
    dataset = _dataset_cfg(mcfg, st)
    frame = pd.read_parquet(training_set_path)
    result = train_on_frame(st, mcfg, dataset, frame, data_fingerprint=data_fingerprint)
    if not result.version:
        raise BadInputError(f"training {mcfg.name}: no version was registered")
    info = {
        "model_name": result.model,
        "model_version": result.version,
        "run_id": result.run_id,
        "model_uri": f"models:/{result.model}/{result.version}",
        "mlflow_tracking_uri": st.mlflow_tracking_uri(),
        "model_card": result.model_card,
    }
    _write_json(model_path, info)
    return StepOutput(
        value=str(result.version),
        metrics=_numbers(result.metrics.model_dump(mode="json"), "holdout_"),
        metadata=info,
    )


def _policy(policy: str, model: str) -> Any:
    from mlgate.gates.policy import load_policy, policy_path_for

    return load_policy(policy_path_for(model, resolve(policy) if policy else None))


def evaluate_model(
    model_config: str,
    policy: str,
    model_version: str,
    env: str,
    model_path: str,
    evidence_path: str,
    card_path: str,
) -> StepOutput:
    """Score challenger and champion (git's stable version in `env`) on the same holdout and
    take the drift windows, once, for every gate step (mlgate.gates.collect), at the cut-off
    the environment serves (git), resolved by the same `gates.run.gather` as `mlgate gates
    run`."""
    from mlgate.gates.run import gather
    from mlgate.pipelines import evidence

    st = settings()
    mcfg = _model_cfg(model_config)
    pol = _policy(policy, mcfg.name)
    pol.for_env(env)  # unknown environment: bad input before any work
    _pol, data = gather(st, model=mcfg.name, challenger=model_version, env=env, policy=pol)
    info = {
        "model": mcfg.name,
        "challenger": data.challenger,
        "champion": data.champion,
        "champion_source": data.champion_source,
        "run_id": data.run_id,
        "info": data.info,
        "why_missing": data.why_missing,
    }
    evidence.save(
        evidence_path, holdout=data.holdout, drift=data.drift, meta=info, recent=data.recent
    )
    card = json.loads(Path(model_path).read_text()).get("model_card")
    if card and Path(card).is_file():
        _write_text(card_path, Path(card).read_text(encoding="utf-8"))
    else:
        _write_text(card_path, f"<html><body>No model card for {mcfg.name} {model_version}.")
    metrics = {"champion_present": float(data.champion is not None)}
    if data.holdout is not None:
        metrics["holdout_rows"] = float(len(data.holdout))
        metrics["holdout_labelled"] = float(data.holdout.labelled.sum())
    if data.drift is not None:
        metrics["drift_reference_rows"] = float(len(data.drift.reference))
        metrics["drift_current_rows"] = float(len(data.drift.current))
    return StepOutput(
        value=data.champion or "",
        metrics=metrics,
        metadata={k: v for k, v in info.items() if k != "info"},
    )


def _judging(policy: str, env: str, evidence_path: str) -> tuple[Any, dict[str, str], Any]:
    """(the policy in `env` at the cut-off the evaluation resolved, why inputs are missing,
    the evidence's meta): every gate task and the decision judge at the same cut-off."""
    from mlgate.gates.run import at_recorded_cutoff
    from mlgate.pipelines import evidence

    info = evidence.meta(evidence_path)
    eff = _policy(policy, info["model"]).for_env(env)
    eff, why = at_recorded_cutoff(eff, info.get("info") or {}, info.get("why_missing") or {})
    return eff, why, info


def run_gate(gate: str, policy: str, env: str, evidence_path: str, result_path: str) -> StepOutput:
    """One registered gate on the evidence folder (mlgate.gates.registry), at the cut-off the
    evaluation resolved; the result JSON says whether the policy applies it in `env`."""
    from mlgate.gates.evaluate import evaluate_gates, gate_inputs
    from mlgate.gates.registry import spec
    from mlgate.pipelines import evidence

    spec(gate)  # an unknown gate is bad input naming the registered ones
    eff, why, _info = _judging(policy, env, evidence_path)

    def inputs() -> Any:
        return gate_inputs(
            evidence.holdout(evidence_path, gate),
            evidence.drift(evidence_path),
            eff,
            why,
            evidence.recent(evidence_path),
        )

    (result,) = evaluate_gates([gate], inputs, eff)
    applied = gate in eff.gates_for(env)
    _write_json(result_path, {"applied": applied, "result": result.model_dump(mode="json")})
    metrics = _numbers(result.metrics)
    metrics["pass"] = float(result.status == "PASS")
    return StepOutput(value=result.status.value if applied else "NOT_APPLIED", metrics=metrics)


def decide(
    policy: str,
    env: str,
    model_version: str,
    evidence_path: str,
    result_paths: list[str],
    report_html: str,
    report_dir: str,
) -> StepOutput:
    """The gate tasks' results -> one GateReport by the one assembler
    (`mlgate.gates.verdict.assemble`, as `gates run` and the canary analysis), written
    (json, md, html) and stored by sha256. A gate the policy requires with no result is
    INCONCLUSIVE.

    The pipeline proceeds only when every gate the policy applies in `env` says PASS (the
    report's `verdict`): automation proposes only what passed everything, also in a warn-only
    environment (a person can still promote with warnings by hand, `mlgate promote`).
    """
    from mlgate.gates.report import write_report
    from mlgate.gates.result import GateResult, GateStatus
    from mlgate.gates.run import default_report_dir
    from mlgate.gates.verdict import assemble
    from mlgate.gitops.report_store import put as store_report
    from mlgate.pipelines import evidence

    eff, _why, info = _judging(policy, env, evidence_path)
    results = []
    for path in result_paths:
        doc = json.loads(Path(path).read_text())
        if doc["applied"]:
            results.append(GateResult.model_validate(doc["result"]))
    report = assemble(
        model=info["model"],
        challenger=model_version,
        champion=info.get("champion"),
        env=env,
        policy=eff,
        results=results,
        data_info=info.get("info") or {},
    )
    if not report.gates:
        raise BadInputError(f"policy {eff.source_file}: no gate applies in {env!r}")
    st = settings()
    local_copy = default_report_dir(st, info["model"], model_version, env)
    paths = write_report(
        local_copy,
        report,
        holdout=evidence.holdout(evidence_path),
        drift=evidence.drift(evidence_path),
        evidently=False,
    )
    store_report(st, local_copy, info.get("run_id"))  # where a promotion finds it by sha256
    shutil.copytree(local_copy, report_dir, dirs_exist_ok=True)
    _write_text(report_html, paths["report.html"].read_text(encoding="utf-8"))
    verdict = report.verdict
    decision = "PASS" if verdict == GateStatus.PASS else verdict.value
    metrics = {f"gate_{r.name}_pass": float(r.status == "PASS") for r in report.gates}
    metrics["all_pass"] = float(decision == "PASS")
    return StepOutput(
        value=decision,
        metrics=metrics,
        metadata={
            "overall": report.overall.value,
            "verdict": verdict.value,
            "report": str(local_copy),
        },
    )


# --- release -----------------------------------------------------------------------------
IMAGE_MODES = ("buildah", "skip")


def build_image(model: str, version: str, mode: str, out_path: str) -> StepOutput:
    """Build + push the model-server image with buildah, or skip when configured to.

    `skip` is for set-ups where images are built outside this run (a separate CI job, or
    `mlgate image build` on a build machine): the step then reports the version's existing
    build record, if there is one, and the promotion pins that; without a record the
    promotion step fails saying so.
    """
    from mlgate.packaging.build import read_record

    if mode not in IMAGE_MODES:
        raise BadInputError(f"image_build {mode!r}: expected one of {', '.join(IMAGE_MODES)}")
    st = settings()
    if mode == "skip":
        found = read_record(st, model, version)
        ref = f"{found.repository}@{found.digest}" if found else ""
        _write_json(
            out_path, {"skipped": True, "build_record": found and found.model_dump(mode="json")}
        )
        return StepOutput(value=ref, metadata={"skipped": True, "image": ref})
    from mlgate.packaging.build import build_model_image

    rec = build_model_image(st, model, version)
    ref = f"{rec.repository}@{rec.digest}"
    _write_json(out_path, rec.model_dump(mode="json"))
    return StepOutput(value=ref, metadata={"image": ref, "reused": rec.reused})


def open_promotion(
    model: str, version: str, env: str, image_ref: str, report_dir: str, out_path: str
) -> StepOutput:
    """The promotion PR (branch promote/<model>-<version>-<env>) carrying the gate report.

    The image is the one the image step built, else this version's build record. With the
    build skipped and no record anywhere, nothing is proposed: the step says so in its output
    (value '') instead of pinning an image that does not exist.
    """
    from mlgate.gitops.promote import promote
    from mlgate.packaging.build import read_record

    st = settings()
    if not image_ref and read_record(st, model, version) is None:
        reason = (
            f"no image for {model} {version}: the image build was skipped and there is no "
            "build record (run `mlgate image build`), so no promotion was proposed"
        )
        _write_json(out_path, {"opened": False, "reason": reason})
        return StepOutput(value="", metadata={"opened": False, "reason": reason})
    pr = promote(st, model, version, env, Path(report_dir), image=image_ref or None)
    _write_json(out_path, {"opened": True, **pr.model_dump(mode="json")})
    return StepOutput(value=pr.branch, metadata={"opened": True, "branch": pr.branch})


# --- monitoring --------------------------------------------------------------------------
def monitor(
    model_config: str,
    policy: str,
    env: str,
    version: str,
    window_days: int,
    webhook: str,
    retrain_enabled: bool,
    report_json: str,
    report_html: str,
) -> StepOutput:
    """The scheduled monitor: `mlgate.gates.monitor_run.run_monitor`, the same function as
    `mlgate monitor` (same checks, same alert payload on a FAIL). `retrain` is 'yes' only when
    the monitor asks for it (a FAIL or the policy's max model age, never INCONCLUSIVE from
    immature labels) and retraining is enabled."""
    from mlgate.gates.monitor import monitor_html
    from mlgate.gates.monitor_run import run_monitor

    mcfg = _model_cfg(model_config)
    report = run_monitor(
        settings(),
        model=mcfg.name,
        env=env,
        version=version or None,
        window_days=int(window_days) or None,
        webhook=webhook or None,
        policy_file=resolve(policy) if policy else None,
    )
    _write_json(report_json, report.model_dump(mode="json"))
    _write_text(report_html, monitor_html(report))
    wanted = report.retrain is not None and report.retrain.retrain
    metrics = {f"{c.name}_pass": float(c.status == "PASS") for c in report.checks}
    metrics["alerted"] = float(bool(report.data.get("webhook_sent")))
    return StepOutput(
        value=report.overall.value,
        metrics=metrics,
        metadata={
            "version": report.version,
            "retrain": "yes" if wanted and retrain_enabled else "no",
            "retrain_reason": report.retrain.reason if report.retrain else "",
        },
    )


IN_CLUSTER_KFP = "http://ml-pipeline.kubeflow.svc.cluster.local:8888"


def trigger_retrain(
    model_config: str, policy: str, env: str, image_build: str, kfp_host: str, out_path: str
) -> StepOutput:
    """Start the training pipeline: through the Kubeflow API in a cluster (`kfp_host`, or the
    in-cluster service when running in a pod), with the local runner otherwise."""
    params = {
        "model_config": model_config,
        "policy": policy,
        "env": env,
        "image_build": image_build,
    }
    host = kfp_host or (IN_CLUSTER_KFP if os.environ.get("KUBERNETES_SERVICE_HOST") else "")
    if host:
        from mlgate.pipelines.remote import submit

        sub = submit("training", host, experiment="mlgate-retrain", params=params)
        _write_json(out_path, sub.model_dump(mode="json"))
        return StepOutput(value=sub.run_id, metadata={"host": host, "run_id": sub.run_id})
    from mlgate.pipelines.local import run_local

    run = run_local("training", settings(), arguments=params)
    _write_json(out_path, run.model_dump(mode="json"))
    if run.status != "SUCCESS":
        raise BadInputError(f"retraining failed locally; log: {run.log}")
    return StepOutput(value=run.status, metadata={"log": run.log})
