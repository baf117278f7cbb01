"""Feature steps: the point-in-time correct training set from Feast."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from mlgate.pipelines.platform import platform_image


@dsl.component(base_image=platform_image(), install_kfp_package=False)
def build_training_set(
    model_config: str,
    data: Input[Dataset],
    training_set: Output[Dataset],
    metrics: Output[Metrics],
) -> int:
    """Ask Feast for a point-in-time correct training set (approved, matured applications) over
    the `data` artifact. Returns the number of rows."""
    from mlgate.pipelines.steps import features as stage

    out = stage.build_training_set(model_config, data.path, training_set.path)
    training_set.metadata.update(out.metadata)
    for key, value in out.metrics.items():
        metrics.log_metric(key, value)
    return int(out.value)
