"""Typed platform configuration.

Switching between the embedded default and production is configuration, never code: every
setting comes from `mlgate.yaml` (searched in the current directory, or `MLGATE_CONFIG`) and
can be overridden by `MLGATE_*` environment variables (nested with `__`, e.g.
`MLGATE_GITOPS__REMOTE`). Capability-specific configs (datasets, models, gate policies) live
next to the code that reads them and are re-exported here.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlgate.errors import ConfigError, register_secret
from mlgate.workspace import Workspace

# The project files mlgate reads by relative path (config/, feature_repo/, manifests/): the
# checkout this package runs from, or `MLGATE_PROJECT_ROOT` where they were installed without
# one (the platform image sets it to the copy it carries, /opt/mlgate/project).
PROJECT_ROOT_ENV = "MLGATE_PROJECT_ROOT"
REPO_ROOT = Path(os.environ.get(PROJECT_ROOT_ENV) or Path(__file__).resolve().parents[2])
DEFAULT_POLICY_DIR = REPO_ROOT / "config" / "policies"
POLICY_DIR_ENV = "MLGATE_POLICY_DIR"


def policy_dir() -> Path:
    """The reviewed gate-policy directory: `MLGATE_POLICY_DIR` where the platform sets it (the
    platform image's config, a test's own policies), else the installation's config/policies.
    Platform configuration like the MLflow URI, not a model author's choice: a version's
    `gate_policy` tag only picks a file inside it (`gates.policy.reviewed_policy`)."""
    return Path(os.environ.get(POLICY_DIR_ENV) or DEFAULT_POLICY_DIR)


# Credentials the platform reads from the environment (never from mlgate.yaml in git): their
# values are masked in every error and log line (mlgate.errors.redact).
SECRET_ENV_VARS = (
    "GITHUB_TOKEN",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "REGISTRY_AUTH_PASSWORD",
    "MLGATE_KFP_TOKEN",
)
# A setting whose name contains one of these holds a secret.
_SECRET_NAMES = ("token", "password", "secret")
T = TypeVar("T", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MlflowSettings(_Strict):
    # None -> sqlite:///<workspace>/mlflow/mlflow.db with artifacts beside it.
    tracking_uri: str | None = None
    registry_uri: str | None = None


class FeastSettings(_Strict):
    # None -> the repository's feature_repo/ rendered into the workspace (local default).
    repo_path: str | None = None
    # None -> what feature_store.yaml says; "duckdb" = Feast's built-in DuckDB offline store.
    offline_store: str | None = None


class RegistrySettings(_Strict):
    address: str = "127.0.0.1:5555"
    insecure: bool = True


class ImageSettings(_Strict):
    # None -> a Debian bookworm base built with debootstrap once and cached (mlgate.packaging).
    base_image: str | None = None
    debian_mirror: str | None = None  # None -> the mirror in /etc/apt sources
    build_dir: str | None = None  # None -> <workspace>/images/.build


class GitopsSettings(_Strict):
    # None -> a bare repository in the workspace (.mlgate/gitops.git), seeded from manifests/.
    remote: str | None = None
    branch: str = "main"
    github_api: str = "https://api.github.com"
    github_repo: str | None = None  # owner/name when the remote is on GitHub


class PlatformSettings(BaseSettings):
    """The platform's settings; the defaults are the embedded default."""

    model_config = SettingsConfigDict(
        env_prefix="MLGATE_", env_nested_delimiter="__", extra="forbid"
    )

    workspace: str | None = None
    seed: int = 7
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    feast: FeastSettings = Field(default_factory=FeastSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    image: ImageSettings = Field(default_factory=ImageSettings)
    gitops: GitopsSettings = Field(default_factory=GitopsSettings)
    crd_schemas: str | None = None

    def ws(self) -> Workspace:
        return Workspace.resolve(self.workspace).ensure()

    def mlflow_tracking_uri(self) -> str:
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        return f"sqlite:///{self.ws().mlflow_dir / 'mlflow.db'}"

    def crd_schema_dir(self) -> Path:
        """Where the upstream CRD schemas live: the `crd_schemas` setting (MLGATE_CRD_SCHEMAS)
        when set, else the copies vendored in the package (mlgate/gitops/crds, listed with
        their upstream and sha256 in SOURCES.txt), so an installed mlgate validates offline."""
        if self.crd_schemas:
            return Path(self.crd_schemas)
        return Path(str(resources.files("mlgate.gitops") / "crds"))


def load_yaml(path: str | os.PathLike[str]) -> Any:
    """Read YAML with an error that names the file."""
    p = Path(path)
    try:
        with p.open("r", encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{p}: file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc}") from exc


def validation_problems(exc: ValidationError) -> list[str]:
    """Pydantic errors as `field.path: message` lines."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(root)"
        out.append(f"{loc}: {err['msg']}")
    return out


def parse_model(cls: type[T], data: Any, source: str) -> T:
    """Validate `data` into `cls`; a failure names the source file and each bad field."""
    try:
        return cls.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise ConfigError(
            f"{source}: invalid {cls.__name__}", problems=validation_problems(exc)
        ) from exc


def merge_sections(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` laid over `base` key by key, section by section: MLGATE_GITOPS__BRANCH
    changes gitops.branch and keeps the file's gitops.remote (a plain dict update would drop
    the whole section)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_sections(out[key], value)
        else:
            out[key] = value
    return out


def register_settings_secrets(data: Any, name: str = "") -> None:
    """Mask, from now on, the secret values these settings hold: fields named like a token or
    password, the password or token in a URL's user info, and the SECRET_ENV_VARS."""
    if isinstance(data, dict):
        for key, value in data.items():
            register_settings_secrets(value, str(key))
        return
    if not isinstance(data, str):
        return
    if any(word in name.lower() for word in _SECRET_NAMES):
        register_secret(data)
    if "://" in data and "@" in data:
        try:
            parts = urlsplit(data)
        except ValueError:
            return
        register_secret(parts.password or parts.username)


def load_settings(config_path: str | None = None, workspace: str | None = None) -> PlatformSettings:
    """Platform settings from mlgate.yaml (if any) overlaid by MLGATE_* environment variables,
    section by section."""
    for var in SECRET_ENV_VARS:
        register_secret(os.environ.get(var))
    path = config_path or os.environ.get("MLGATE_CONFIG")
    data: dict[str, Any] = {}
    if path:
        data = load_yaml(path) or {}
    elif Path("mlgate.yaml").is_file():
        data = load_yaml("mlgate.yaml") or {}
        path = "mlgate.yaml"
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: want a mapping of settings, got {type(data).__name__}")
    try:
        # Environment variables win over the file (pydantic-settings: init kwargs win, so merge).
        env_settings = PlatformSettings()
        merged = merge_sections(data, env_settings.model_dump(exclude_unset=True))
        register_settings_secrets(merged)
        settings = PlatformSettings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(
            f"{path or 'environment'}: invalid platform settings", problems=validation_problems(exc)
        ) from exc
    if workspace:
        settings = settings.model_copy(update={"workspace": workspace})
    return settings
