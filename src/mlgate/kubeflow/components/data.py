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
    data_source: str,
    data: Output[Dataset],
    metrics: Output[Metrics],
) -> str:
    """Publish the run's data as the `data` artifact that every later step reads: a copy of
    `data_source` (default: the dataset config's path), or, for the synthetic world, a world
    generated when the source has none (or world_applications > 0 asks for another size).
    Returns the dataset's content fingerprint."""
    from mlgate.pipelines.steps import data as stage

    out = stage.prepare_data(model_config, world_applications, data_source, data.path)
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
    """Validate the `data` artifact against the dataset config; fails the run with the list of
    problems."""
    from mlgate.pipelines.steps import data as stage

    out = stage.validate_data(model_config, data.path, report.path)
    for key, value in out.metrics.items():
        metrics.log_metric(key, value)
    return out.value
