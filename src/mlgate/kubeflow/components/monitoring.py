"""Monitoring steps: collect the evidence about the model running in an environment, then
summarise the gates, alert, and say whether to retrain."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Output

from mlgate.pipelines.platform import platform_image


@dsl.component(base_image=platform_image(), install_kfp_package=False)
def monitoring_window(
    model_config: str,
    policy: str,
    env: str,
    window_days: int,
    gate_inputs: Output[Dataset],
    metrics: Output[Metrics],
) -> str:
    """The version git says runs stable in `env`, scored on recent applications (drift vs its
    training set, fairness of its decisions) and on the labels that matured since its holdout
    (performance). Returns the monitored version."""
    from mlgate.pipelines import steps

    out = steps.monitoring_window(model_config, policy, env, window_days, gate_inputs.path)
    gate_inputs.metadata.update(out.metadata)
    for key, value in out.metrics.items():
        metrics.log_metric(key, value)
    return out.value


@dsl.component(base_image=platform_image(), install_kfp_package=False)
def monitoring_summary(
    env: str,
    model_version: str,
    alert_webhook: str,
    retrain_on_alert: bool,
    drift: Input[Artifact],
    performance: Input[Artifact],
    fairness: Input[Artifact],
    report: Output[HTML],
    metrics: Output[Metrics],
) -> NamedTuple("Outputs", [("status", str), ("retrain", str)]):  # noqa: F821
    """Summarise the monitoring gates; POST an alert to `alert_webhook` (if set) unless all
    pass; `retrain` is 'yes' when something is wrong and retraining is enabled."""
    from collections import namedtuple

    from mlgate.pipelines import steps

    out = steps.monitoring_summary(
        env,
        model_version,
        alert_webhook,
        retrain_on_alert,
        {"drift": drift.path, "performance": performance.path, "fairness": fairness.path},
        report.path,
    )
    for key, value in out.metrics.items():
        metrics.log_metric(key, value)
    return namedtuple("Outputs", ["status", "retrain"])(out.value, out.metadata["retrain"])


@dsl.component(base_image=platform_image(), install_kfp_package=False)
def trigger_retrain(
    model_config: str,
    policy: str,
    env: str,
    image_build: str,
    kfp_host: str,
    run: Output[Artifact],
) -> str:
    """Start the training pipeline: in a cluster through the Kubeflow API (`kfp_host`, default
    the in-cluster ml-pipeline service), on one machine with the local runner. Returns the run
    id (cluster) or the local run's status."""
    from mlgate.pipelines import steps

    out = steps.trigger_retrain(model_config, policy, env, image_build, kfp_host, run.path)
    run.metadata.update(out.metadata)
    return out.value
