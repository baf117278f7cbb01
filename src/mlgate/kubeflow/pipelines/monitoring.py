"""The monitoring pipeline (scheduled: `mlgate pipeline schedule monitoring --cron ...`).

One task runs the monitor `mlgate monitor` runs (`mlgate.gates.monitor_run.run_monitor`):
drift of recent applications against the running version's training set (alerting at the
watch level), performance and calibration on matured labels, early delinquency as the fast
proxy, fairness of its recent decisions; on a FAIL it sends the same alert payload. When the
monitor asks for a retrain (a FAIL, or the version older than `monitor.max_model_age_days`;
never INCONCLUSIVE from labels that have not matured) and `retrain_on_alert` is set, the
training pipeline starts as its own run (which still has to pass every training gate before a
PR is opened). The retrain is a separate run rather than a nested sub-pipeline: kfp 2.17 names
the tasks of a nested pipeline that reuses a component in an order that depends on Python's
hash seed, so the compiled YAML would not be reproducible.

`data_source` is where the monitor reads the applications (and the retrain its training data),
as the training pipeline's parameter: a task's pod sees neither the workspace that made the
data nor the training task's own copy, only what is reachable (a mounted volume, a path in the
image); the local runner fills it with the workspace's world.
"""

from kfp import dsl
from kfp.dsl import HTML

from mlgate.kubeflow.components.monitoring import monitor, trigger_retrain
from mlgate.pipelines.platform import on_pool, with_git, with_mlflow


@dsl.pipeline(
    name="mlgate-monitoring",
    description="The monitor of a running model (as `mlgate monitor`); retrain when it fails.",
)
def monitoring(
    model_config: str = "config/models/credit_risk.yaml",
    policy: str = "config/policies/credit_risk.yaml",
    env: str = "prod",
    version: str = "",
    window_days: int = 0,
    data_source: str = "",
    alert_webhook: str = "",
    retrain_on_alert: bool = False,
    retrain_env: str = "dev",
    image_build: str = "buildah",
    kfp_host: str = "",
) -> HTML:
    check = monitor(
        model_config=model_config,
        policy=policy,
        env=env,
        version=version,
        window_days=window_days,
        alert_webhook=alert_webhook,
        retrain_on_alert=retrain_on_alert,
        data_source=data_source,
    )
    check.set_display_name("monitor + alert").set_caching_options(False)
    on_pool(with_git(with_mlflow(check)))  # git: which version runs stable in env

    with dsl.If(check.outputs["retrain"] == "yes", name="retrain"):
        retrain = trigger_retrain(
            model_config=model_config,
            policy=policy,
            env=retrain_env,
            image_build=image_build,
            kfp_host=kfp_host,
            data_source=data_source,
        )
        retrain.set_display_name("retrain: start the training pipeline").set_caching_options(False)
        on_pool(with_mlflow(retrain))

    return check.outputs["report"]


PIPELINE = monitoring
