"""Data steps: make the dataset available (the synthetic world on the embedded default) and
validate it. A validation failure raises, which fails the step and stops the run: nothing
downstream trains on data that broke the dataset config's rules."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Output

from mlgate.pipelines.platform import platform_image


@dsl.component(base_image=platform_image(), install_kfp_package=False)
def prepare_data(
    model_config: str,
    world_applications: int,
    data: Output[Dataset],
    metrics: Output[Metrics],
) -> str:
    """Generate the synthetic world if the dataset is synthetic and absent (or
    world_applications > 0 asks for a fresh one of that size), then fingerprint it.
    Returns the dataset's content fingerprint."""
    from mlgate.pipelines import steps

    out = steps.prepare_data(model_config, world_applications, data.path)
    data.metadata.update(out.metadata)
    for key, value in out.metrics.items():
        metrics.log_metric(key, value)
    return out.value


@dsl.component(base_image=platform_image(), install_kfp_package=False)
def validate_data(
    model_config: str,
    data: Input[Dataset],
    report: Output[HTML],
    metrics: Output[Metrics],
) -> str:
    """Validate the dataset against its config; fails the run with the list of problems."""
    from mlgate.pipelines import steps

    out = steps.validate_data(model_config, data.path, report.path)
    for key, value in out.metrics.items():
        metrics.log_metric(key, value)
    return out.value
