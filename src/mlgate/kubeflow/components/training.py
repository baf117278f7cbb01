"""Training steps: fit + register in MLflow, then score challenger and champion on the same
out-of-time holdout (the evidence every gate reads)."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from mlgate.pipelines.platform import platform_image


@dsl.component(base_image=platform_image(), install_kfp_package=False)
def train_model(
    model_config: str,
    data_fingerprint: str,
    training_set: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
) -> NamedTuple("Outputs", [("model_name", str), ("model_version", str)]):  # noqa: F821
    """Fit the calibrated model, log it to MLflow and register a version (alias challenger).
    Returns the registered model's name and version."""
    from collections import namedtuple

    from mlgate.pipelines import steps

    out = steps.train_model(model_config, data_fingerprint, training_set.path, model.path)
    model.metadata.update(out.metadata)
    for key, value in out.metrics.items():
        metrics.log_metric(key, value)
    return namedtuple("Outputs", ["model_name", "model_version"])(
        out.metadata["model_name"], out.value
    )


@dsl.component(base_image=platform_image(), install_kfp_package=False)
def evaluate_model(
    model_config: str,
    policy: str,
    model_version: str,
    env: str,
    model: Input[Model],
    gate_inputs: Output[Dataset],
    card: Output[HTML],
    metrics: Output[Metrics],
) -> str:
    """Score challenger and champion (the version git says runs in `env`) on the holdout and
    take the drift windows. Returns the champion version ('' for a first version)."""
    from mlgate.pipelines import steps

    out = steps.evaluate_model(
        model_config, policy, model_version, env, model.path, gate_inputs.path, card.path
    )
    gate_inputs.metadata.update(out.metadata)
    for key, value in out.metrics.items():
        metrics.log_metric(key, value)
    return out.value
