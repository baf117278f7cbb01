"""`mlgate aliases sync`: MLflow aliases mirror git, never the other way round.

After a merge, the registered model's aliases `dev`, `stage`, `prod` point at the stable
version git says runs in that environment, and `champion` at prod's stable version. An alias
for an environment where nothing runs is removed. Idempotent: a second run fixes nothing.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from mlgate.config import PlatformSettings
from mlgate.errors import ExternalServiceError
from mlgate.gitops.overlay import ENVS
from mlgate.gitops.status import read_status

ALIASES = (*ENVS, "champion")


class AliasFix(BaseModel):
    model: str
    alias: str
    before: str | None
    after: str | None


class AliasSync(BaseModel):
    checked: int = 0
    fixed: list[AliasFix] = Field(default_factory=list)
    missing_models: list[str] = Field(default_factory=list)


def sync_aliases(settings: PlatformSettings, models: list[str] | None = None) -> AliasSync:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = settings.mlflow_tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=settings.mlflow.registry_uri or uri)
    status = read_status(settings)
    result = AliasSync()
    for ms in status.models:
        if models and ms.model not in models:
            continue
        try:
            current = dict(client.get_registered_model(ms.model).aliases or {})
        except MlflowException:
            result.missing_models.append(ms.model)
            continue
        except Exception as exc:
            raise ExternalServiceError(f"MLflow ({uri}) did not answer: {exc}") from exc
        wanted: dict[str, str | None] = {
            e: (ms.envs[e].stable_version if e in ms.envs else None) for e in ENVS
        }
        wanted["champion"] = wanted["prod"]
        for alias in ALIASES:
            result.checked += 1
            before = str(current[alias]) if alias in current else None
            after = wanted[alias]
            if before == after:
                continue
            if after is None:
                client.delete_registered_model_alias(ms.model, alias)
            else:
                client.set_registered_model_alias(ms.model, alias, after)
            result.fixed.append(AliasFix(model=ms.model, alias=alias, before=before, after=after))
    return result
