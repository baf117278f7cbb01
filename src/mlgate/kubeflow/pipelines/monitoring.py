"""The monitoring pipeline (scheduled: `mlgate pipeline schedule monitoring --cron ...`).

Drift of recent applications against the running version's training set, performance on the
labels that have matured since, and fairness of its recent decisions, each as its own gate
step; then one summary that alerts a webhook when anything is short of PASS and, if
`retrain_on_alert` is set, starts the training pipeline as its own run (which still has to
pass every training gate before a PR is opened). The retrain is a separate run rather than a
nested sub-pipeline: kfp 2.17 names the tasks of a nested pipeline that reuses a component in
an order that depends on Python's hash seed, so the compiled YAML would not be reproducible.
"""

from kfp import dsl
from kfp.dsl import HTML

from components.gates import run_gate
from components.monitoring import monitoring_summary, monitoring_window, trigger_retrain
from mlgate.pipelines.platform import on_pool, with_git, with_mlflow

MONITORED_GATES = ("drift", "performance", "fairness")


@dsl.pipeline(
    name="mlgate-monitoring",
    description="Drift, matured-label performance and decision fairness of a running model.",
)
def monitoring(
    model_config: str = "config/models/credit_risk.yaml",
    policy: str = "config/policies/credit_risk.yaml",
    env: str = "prod",
    window_days: int = 30,
    alert_webhook: str = "",
    retrain_on_alert: bool = False,
    retrain_env: str = "dev",
    image_build: str = "buildah",
    kfp_host: str = "",
) -> HTML:
    window = monitoring_window(
        model_config=model_config, policy=policy, env=env, window_days=window_days
    )
    window.set_display_name("monitoring window").set_caching_options(False)
    on_pool(with_git(with_mlflow(window)))  # git: which version runs stable in env

    results = {}
    for gate in MONITORED_GATES:
        task = run_gate(
            gate=gate, policy=policy, env=env, gate_inputs=window.outputs["gate_inputs"]
        )
        task.set_display_name(f"monitor: {gate}").set_caching_options(False)
        results[gate] = task.outputs["result"]

    summary = monitoring_summary(
        env=env,
        model_version=window.outputs["Output"],
        alert_webhook=alert_webhook,
        retrain_on_alert=retrain_on_alert,
        **results,
    )
    summary.set_display_name("summary + alert").set_caching_options(False)

    with dsl.If(summary.outputs["retrain"] == "yes", name="retrain"):
        retrain = trigger_retrain(
            model_config=model_config,
            policy=policy,
            env=retrain_env,
            image_build=image_build,
            kfp_host=kfp_host,
        )
        retrain.set_display_name("retrain: start the training pipeline").set_caching_options(False)
        on_pool(with_mlflow(retrain))

    return summary.outputs["report"]


PIPELINE = monitoring
