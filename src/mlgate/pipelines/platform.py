"""What the pipelines need from the cluster: the platform image, secrets and node placement.

Every component runs in the platform image (mlgate and its pinned environment with kfp baked
in, so components use `install_kfp_package=False` and work on an air-gapped cluster; the
pipeline definitions, their compiled YAML, `config/` and `feature_repo/` ship inside it as
package data). The committed compiled YAML pins the production reference by digest, written by
`mlgate pipeline compile --image REPOSITORY@sha256:...` (the same reference the manifests pin);
the components are declared with `platform_image()` (`MLGATE_PLATFORM_IMAGE`, default the
embedded default's loopback tag), which only matters for a compile without a committed YAML.

Secrets and node placement are applied in the pipeline definitions with `kfp.kubernetes`, so
the compiled YAML's platform spec shows exactly which step sees which secret: only the steps
that talk to MLflow get the MLflow credentials, only the image step the registry login, only
the steps that read or write git (evaluate: the champion; monitoring window; promotion)
the git remote, branch and token. The local runner ignores all of this (and `base_image`).
"""

from __future__ import annotations

import os
import re
from typing import Any

from mlgate import __version__
from mlgate.config import RegistrySettings
from mlgate.errors import ConfigError

IMAGE_ENV = "MLGATE_PLATFORM_IMAGE"
# mlgate.packaging.build.build_platform_image pushes <registry>/mlgate-platform:<version>-<content hash>.
DEFAULT_PLATFORM_IMAGE = f"{RegistrySettings().address}/mlgate-platform:{__version__}"

# Kubernetes Secrets the platform expects in the Kubeflow profile namespace. Keys -> env vars.
MLFLOW_SECRET = "mlgate-mlflow"
MLFLOW_ENV = {
    "tracking_uri": "MLGATE_MLFLOW__TRACKING_URI",
    "username": "MLFLOW_TRACKING_USERNAME",
    "password": "MLFLOW_TRACKING_PASSWORD",
}
REGISTRY_SECRET = "mlgate-registry"
REGISTRY_ENV = {
    "address": "MLGATE_REGISTRY__ADDRESS",
    "username": "REGISTRY_AUTH_USERNAME",
    "password": "REGISTRY_AUTH_PASSWORD",
}
GIT_SECRET = "mlgate-git"
# The evaluate step reads the champion from git exactly as the CLI does (same remote, branch
# and credentials); without them it could only judge every challenger as a first version.
GIT_ENV = {
    "remote": "MLGATE_GITOPS__REMOTE",
    "branch": "MLGATE_GITOPS__BRANCH",
    "github_repo": "MLGATE_GITOPS__GITHUB_REPO",
    "github_api": "MLGATE_GITOPS__GITHUB_API",
    "token": "GITHUB_TOKEN",
}

# Node pools: training-heavy steps on the compute pool, the rest anywhere.
POOL_LABEL = "mlgate.io/pool"
COMPUTE_POOL = "ml-compute"
BUILD_POOL = "ml-build"  # image builds need a node that allows buildah (fuse / vfs)


# An image reference as the OCI distribution spec writes it: [host[:port]/]path[:tag][@digest].
_REFERENCE = re.compile(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
PINNED = re.compile(r"@sha256:[0-9a-f]{64}$")


def check_image_reference(image: str, *, pinned: bool = False) -> str:
    """An image reference, checked: it lands in YAML that clusters run (no spaces, newlines or
    YAML syntax can ride along), and a production reference must be pinned by digest."""
    if not _REFERENCE.match(image):
        raise ConfigError(f"{image!r} is not an image reference (REGISTRY/PATH[:TAG][@sha256:...])")
    if pinned and not PINNED.search(image):
        raise ConfigError(f"{image!r} is not pinned by digest (want REPOSITORY@sha256:<64 hex>)")
    return image


def platform_image() -> str:
    return check_image_reference(os.environ.get(IMAGE_ENV) or DEFAULT_PLATFORM_IMAGE)


def with_mlflow(task: Any) -> Any:
    from kfp import kubernetes

    return kubernetes.use_secret_as_env(task, MLFLOW_SECRET, MLFLOW_ENV, optional=True)


def with_registry(task: Any) -> Any:
    from kfp import kubernetes

    return kubernetes.use_secret_as_env(task, REGISTRY_SECRET, REGISTRY_ENV, optional=True)


def with_git(task: Any) -> Any:
    from kfp import kubernetes

    return kubernetes.use_secret_as_env(task, GIT_SECRET, GIT_ENV, optional=True)


def on_pool(task: Any, pool: str = COMPUTE_POOL) -> Any:
    from kfp import kubernetes

    return kubernetes.add_node_selector(task, POOL_LABEL, pool)
