"""Release steps: the model-server image, then the promotion pull request."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Output

from mlgate.pipelines.platform import platform_image


@dsl.component(base_image=platform_image(), install_kfp_package=False)
def build_image(
    model_name: str,
    model_version: str,
    image_build: str,
    image: Output[Artifact],
) -> str:
    """Build and push the model-server image with buildah (image_build='buildah'), or skip
    the build (image_build='skip': images are built elsewhere; the version's existing build
    record is used if there is one). Returns the reference pinned by digest ('' if none).
    A Python component that dispatches by configuration, because Kubeflow's local runner
    cannot run container components."""
    from mlgate.pipelines.steps import release as stage

    out = stage.build_image(model_name, model_version, image_build, image.path)
    image.metadata.update(out.metadata)
    return out.value


@dsl.component(base_image=platform_image(), install_kfp_package=False)
def open_promotion(
    model_name: str,
    model_version: str,
    env: str,
    image_ref: str,
    report_files: Input[Artifact],
    pull_request: Output[Artifact],
) -> str:
    """Write the promotion as one commit on branch promote/<model>-<version>-<env> and open a
    pull request whose body is the gate report. Returns the branch."""
    from mlgate.pipelines.steps import release as stage

    out = stage.open_promotion(
        model_name, model_version, env, image_ref, report_files.path, pull_request.path
    )
    pull_request.metadata.update(out.metadata)
    return out.value
