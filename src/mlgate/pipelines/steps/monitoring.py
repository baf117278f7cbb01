"""Monitoring steps: the one monitor (`mlgate.gates.monitor_run.run_monitor`) and
the retrain trigger."""

from __future__ import annotations

import os

from mlgate.errors import BadInputError
from mlgate.pipelines.steps.common import (
    StepOutput,
    model_cfg,
    resolve,
    settings,
    write_json,
    write_text,
)


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
    data_source: str = "",
) -> StepOutput:
    """The scheduled monitor: `mlgate.gates.monitor_run.run_monitor`, the same function as
    `mlgate monitor` (same checks, same alert payload on a FAIL). `retrain` is 'yes' only when
    the monitor asks for it (a FAIL or the policy's max model age, never INCONCLUSIVE from
    immature labels) and retraining is enabled. `data_source`: where the applications are read
    (a world folder or a data file every pod reaches, as the training pipeline's); empty: the
    path the version's training run recorded."""
    from mlgate.gates.monitor import monitor_html
    from mlgate.gates.monitor_run import run_monitor

    mcfg = model_cfg(model_config)
    report = run_monitor(
        settings(),
        model=mcfg.name,
        env=env,
        version=version or None,
        window_days=int(window_days) or None,
        webhook=webhook or None,
        policy_file=resolve(policy) if policy else None,
        data_path=resolve(data_source) if data_source else None,
    )
    write_json(report_json, report.model_dump(mode="json"))
    write_text(report_html, monitor_html(report))
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
    model_config: str,
    policy: str,
    env: str,
    image_build: str,
    kfp_host: str,
    out_path: str,
    data_source: str = "",
) -> StepOutput:
    """Start the training pipeline: through the Kubeflow API in a cluster (`kfp_host`, or the
    in-cluster service when running in a pod), with the local runner otherwise. `data_source`
    goes on to the training run (a local run would otherwise default to this task's own,
    empty, workspace)."""
    params = {
        "model_config": model_config,
        "policy": policy,
        "env": env,
        "image_build": image_build,
    }
    if data_source:
        params["data_source"] = str(resolve(data_source))
    host = kfp_host or (IN_CLUSTER_KFP if os.environ.get("KUBERNETES_SERVICE_HOST") else "")
    if host:
        from mlgate.pipelines.remote import submit

        sub = submit("training", host, experiment="mlgate-retrain", params=params)
        write_json(out_path, sub.model_dump(mode="json"))
        return StepOutput(value=sub.run_id, metadata={"host": host, "run_id": sub.run_id})
    from mlgate.pipelines.local import run_local

    run = run_local("training", settings(), arguments=params)
    write_json(out_path, run.model_dump(mode="json"))
    if run.status != "SUCCESS":
        raise BadInputError(f"retraining failed locally; log: {run.log}")
    return StepOutput(value=run.status, metadata={"log": run.log})
