"""Monitoring steps: the one monitor (the same function as `mlgate monitor`), then, when it
asks for it, the retrain."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Metrics, Output

from mlgate.pipelines.platform import platform_image


@dsl.component(base_image=platform_image(), install_kfp_package=False)
def monitor(
    model_config: str,
    policy: str,
    env: str,
    version: str,
    window_days: int,
    alert_webhook: str,
    retrain_on_alert: bool,
    data_source: str,
    monitor_report: Output[Artifact],
    report: Output[HTML],
    metrics: Output[Metrics],
) -> NamedTuple("Outputs", [("status", str), ("retrain", str)]):  # type: ignore[valid-type]  # noqa: F821 - kfp's output form
    """The monitor `mlgate monitor` runs (mlgate.gates.monitor_run.run_monitor) on the version
    git says runs stable in `env` (or `version`): drift, matured-label performance and
    calibration, early delinquency, fairness; the same alert to `alert_webhook` on a FAIL.
    `retrain` is 'yes' on a FAIL or past the policy's max model age (never on INCONCLUSIVE)
    when `retrain_on_alert` is set. The applications come from `data_source` (as the training
    pipeline's: a path or mount every pod reaches), else from the path the version's run
    recorded."""
    from collections import namedtuple

    from mlgate.pipelines.steps import monitoring as stage

    out = stage.monitor(
        model_config,
        policy,
        env,
        version,
        window_days,
        alert_webhook,
        retrain_on_alert,
        monitor_report.path,
        report.path,
        data_source,
    )
    monitor_report.metadata.update(out.metadata)
    for key, value in out.metrics.items():
        metrics.log_metric(key, value)
    return namedtuple("Outputs", ["status", "retrain"])(out.value, out.metadata["retrain"])  # type: ignore[call-arg]


@dsl.component(base_image=platform_image(), install_kfp_package=False)
def trigger_retrain(
    model_config: str,
    policy: str,
    env: str,
    image_build: str,
    kfp_host: str,
    data_source: str,
    run: Output[Artifact],
) -> str:
    """Start the training pipeline: in a cluster through the Kubeflow API (`kfp_host`, default
    the in-cluster ml-pipeline service), on one machine with the local runner. Returns the run
    id (cluster) or the local run's status."""
    from mlgate.pipelines.steps import monitoring as stage

    out = stage.trigger_retrain(
        model_config, policy, env, image_build, kfp_host, run.path, data_source
    )
    run.metadata.update(out.metadata)
    return out.value
