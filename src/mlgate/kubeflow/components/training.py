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
    data: Input[Dataset],
    training_set: Input[Dataset],
    model: Output[Model],
    card: Output[HTML],
    metrics: Output[Metrics],
) -> NamedTuple("Outputs", [("model_name", str), ("model_version", str)]):  # type: ignore[valid-type]  # noqa: F821, E501 - kfp's output form
    """Fit the calibrated model, log it to MLflow and register a version (alias challenger);
    its model card is the `card` output. Returns the registered model's name and version."""
    from collections import namedtuple

    from mlgate.pipelines.steps import training as stage

    out = stage.train_model(
        model_config, data_fingerprint, data.path, training_set.path, model.path, card.path
    )
    model.metadata.update(out.metadata)
    for key, value in out.metrics.items():
        metrics.log_metric(key, value)
    Outputs = namedtuple("Outputs", ["model_name", "model_version"])  # noqa: N806
    return Outputs(out.metadata["model_name"], out.value)


@dsl.component(base_image=platform_image(), install_kfp_package=False)
def evaluate_model(
    model_config: str,
    policy: str,
    model_version: str,
    env: str,
    data: Input[Dataset],
    model: Input[Model],
    gate_inputs: Output[Dataset],
    metrics: Output[Metrics],
) -> str:
    """Score challenger and champion (the version git says runs in `env`) on the holdout and
    take the drift windows from the `data` artifact. Returns the champion version ('' for a
    first version)."""
    from mlgate.pipelines.steps import training as stage

    out = stage.evaluate_model(
        model_config, policy, model_version, env, data.path, model.path, gate_inputs.path
    )
    gate_inputs.metadata.update(out.metadata)
    for key, value in out.metrics.items():
        metrics.log_metric(key, value)
    return out.value
