"""What a promotion rests on: the gate report, the image digest, and the MLflow lineage.

Read directly from the files and registry the other capabilities write (gate report
`report.json` + `report.md`, image build record `<workspace>/images/<model>/<version>.json`,
MLflow model version tags), so a promotion commit can carry all of it in its trailers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mlgate.config import REPO_ROOT, PlatformSettings
from mlgate.errors import BadInputError, ExternalServiceError
from mlgate.records.builds import pinned_image
from mlgate.records.tags import VersionTags, read_tags


class GateReport(BaseModel):
    path: str
    sha256: str
    model: str
    challenger: str
    champion: str | None
    env: str
    overall: str
    failing: list[str]
    reasons: list[str] = []  # "gate: reason" for every reason of every blocking gate short of PASS
    markdown: str


def _version_of(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        v = value.get("version")
        return None if v is None else str(v)
    return str(value)


def load_report(report: Path) -> GateReport:
    """A gate report directory (or its report.json); errors name the file and the key."""
    path = report / "report.json" if report.is_dir() else report
    if not path.is_file():
        raise BadInputError(f"{path}: gate report not found")
    raw = path.read_bytes()
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path}: not valid JSON: {exc}") from exc
    for key in ("model", "challenger", "env", "overall"):
        if key not in doc:
            raise BadInputError(f"{path}: key `{key}` is missing")
    md_path = path.parent / "report.md"
    markdown = md_path.read_text(encoding="utf-8") if md_path.is_file() else ""
    short = [
        g
        for g in doc.get("gates") or []
        if isinstance(g, dict) and g.get("status") != "PASS" and g.get("blocking", True)
    ]
    failing = [str(g.get("name")) for g in short]
    reasons = [
        f"{g.get('name')} {g.get('status')}: {r}"
        for g in short
        for r in (g.get("reasons") or [g.get("summary") or "no reason recorded"])
    ]
    return GateReport(
        path=str(path),
        sha256=hashlib.sha256(raw).hexdigest(),
        model=str(doc["model"]),
        challenger=_version_of(doc["challenger"]) or "",
        champion=_version_of(doc.get("champion")),
        env=str(doc["env"]),
        overall=str(doc["overall"]).upper(),
        failing=failing,
        reasons=reasons,
        markdown=markdown,
    )


def image_for(
    settings: PlatformSettings,
    model: str,
    version: str,
    image: str | None,
    tags: VersionTags | None = None,
) -> str:
    """The image built for this version (`records.builds.pinned_image`); `--image` must name
    that same image, any other is refused."""
    return pinned_image(settings, model, version, image, tags)


class Lineage(BaseModel):
    run_id: str | None
    data_fingerprint: str | None
    feature_service: str | None
    git_commit: str | None
    tags: VersionTags = VersionTags()


def mlflow_lineage(settings: PlatformSettings, model: str, version: str) -> Lineage:
    """The MLflow model version's run and tags; the version must exist in the registry."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = settings.mlflow_tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=settings.mlflow.registry_uri or uri)
    try:
        mv = client.get_model_version(model, version)
    except MlflowException as exc:
        raise BadInputError(
            f"MLflow ({uri}) has no version {version} of registered model {model!r}"
        ) from exc
    except Exception as exc:  # connection problems
        raise ExternalServiceError(f"MLflow ({uri}) did not answer: {exc}") from exc
    tags = read_tags(mv.tags, model, version)  # a tag that would break a trailer: exit 2
    return Lineage(
        run_id=mv.run_id,
        data_fingerprint=tags.data_fingerprint,
        feature_service=tags.feature_service or None,
        git_commit=tags.git_commit,
        tags=tags,
    )


class ReleasePolicy(BaseModel):
    """What a promotion takes from the model's gate policy: canary weight and the cut-off."""

    canary_weight: int
    cutoff: str


def release_policy(model: str, policies_dir: Path | None = None) -> ReleasePolicy:
    """`canary.initial_weight` and `cutoff.value` of `config/policies/<model>.yaml`.

    Read through the gates' own policy loader, so the cut-off a new environment starts with is
    the one its gates were judged at; without a policy file, the policy's documented defaults.
    """
    from mlgate.gates.policy import GatePolicy, load_policy

    path = (policies_dir or REPO_ROOT / "config" / "policies") / f"{model}.yaml"
    policy = load_policy(path) if path.is_file() else GatePolicy()
    return ReleasePolicy(
        canary_weight=policy.canary.initial_weight, cutoff=f"{policy.cutoff.value:g}"
    )
