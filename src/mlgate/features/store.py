"""The Feast feature store of a workspace: prepare the repo, apply its definitions, open it.

The embedded default keeps the repository's `feature_repo/` as the source of the definitions
and renders it into `<workspace>/feast/repo/` with absolute paths (Feast's DuckDB store needs
absolute parquet paths, and the registry and online store belong to the workspace, not the
checkout). Production points `feast.repo_path` at a repo whose feature_store.yaml names the
warehouse, Redis and the SQL registry; nothing is rendered then.

Definitions are loaded the way `feast apply` loads them (every .py file of the repo) and applied
programmatically, so `mlgate features apply` and `feast apply` register the same objects.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from mlgate.config import REPO_ROOT, PlatformSettings
from mlgate.errors import ConfigError

TEMPLATE_DIR = REPO_ROOT / "feature_repo"
ASOF_STORE = "mlgate.features.duckdb_asof_store.DuckDBAsofOfflineStore"
# Short names accepted for the setting `feast.offline_store`.
OFFLINE_STORE_ALIASES = {"asof": ASOF_STORE, "duckdb-asof": ASOF_STORE, "duckdb": "duckdb"}
DATA_DIR_ENV = "MLGATE_FEAST_DATA_DIR"


def default_world_dir(settings: PlatformSettings) -> Path:
    return settings.ws().data_dir / "world"


def repo_dir(settings: PlatformSettings) -> Path:
    if settings.feast.repo_path:
        return Path(settings.feast.repo_path).expanduser().resolve()
    return settings.ws().feast_dir / "repo"


def _render_yaml(template: Path, settings: PlatformSettings) -> str:
    """The template's feature_store.yaml with workspace paths made absolute."""
    try:
        cfg: dict[str, Any] = yaml.safe_load(template.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{template}: cannot read Feast settings: {exc}") from exc
    feast_dir = settings.ws().feast_dir
    registry = cfg.get("registry")
    if isinstance(registry, dict):
        registry["path"] = str(feast_dir / "registry.db")
    else:
        cfg["registry"] = str(feast_dir / "registry.db")
    online = cfg.setdefault("online_store", {"type": "sqlite"})
    if online.get("type", "sqlite") == "sqlite":
        online["path"] = str(feast_dir / "online.db")
    choice = settings.feast.offline_store
    if choice:
        cfg["offline_store"] = {"type": OFFLINE_STORE_ALIASES.get(choice, choice)}
    return yaml.safe_dump(cfg, sort_keys=False)


def prepare_repo(settings: PlatformSettings) -> Path:
    """Render `feature_repo/` into the workspace (embedded default) and return the repo folder.

    Written to a temporary folder and swapped in, so a half-rendered repo is never left behind.
    """
    if settings.feast.repo_path:
        repo = repo_dir(settings)
        if not (repo / "feature_store.yaml").is_file():
            raise ConfigError(f"feast.repo_path: {repo} has no feature_store.yaml")
        return repo
    if not (TEMPLATE_DIR / "feature_store.yaml").is_file():
        raise ConfigError(f"{TEMPLATE_DIR}: the feature repo template is missing")
    target = repo_dir(settings)
    rendered = _render_yaml(TEMPLATE_DIR / "feature_store.yaml", settings)
    if target.is_dir() and _same_content(target, rendered):
        return target
    tmp = Path(tempfile.mkdtemp(prefix=".repo-", dir=target.parent))
    for src in sorted(TEMPLATE_DIR.glob("*.py")):
        shutil.copy2(src, tmp / src.name)
    (tmp / "feature_store.yaml").write_text(rendered, encoding="utf-8")
    old = target.with_name(target.name + ".old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def _same_content(target: Path, rendered: str) -> bool:
    fs_yaml = target / "feature_store.yaml"
    if not fs_yaml.is_file() or fs_yaml.read_text(encoding="utf-8") != rendered:
        return False
    for src in TEMPLATE_DIR.glob("*.py"):
        dst = target / src.name
        if not dst.is_file() or dst.read_bytes() != src.read_bytes():
            return False
    return True


@contextlib.contextmanager
def _env(name: str, value: str | None) -> Iterator[None]:
    old = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def load_definitions(repo: Path, data_dir: Path | None = None) -> list[Any]:
    """The Feast objects defined in the repo's .py files (as `feast apply` collects them)."""
    from feast import Entity, FeatureService, FeatureView

    found: dict[tuple[str, str], Any] = {}
    sys.path.insert(0, str(repo))
    try:
        with _env(DATA_DIR_ENV, str(data_dir) if data_dir else None):
            for py in sorted(repo.glob("*.py")):
                if py.name.startswith("_"):
                    continue
                namespace = runpy.run_path(str(py), run_name=f"mlgate_feature_repo_{py.stem}")
                for obj in namespace.values():
                    if isinstance(obj, Entity | FeatureView | FeatureService):
                        found[(type(obj).__name__, obj.name)] = obj
    except Exception as exc:
        raise ConfigError(f"{repo}: cannot load the feature definitions: {exc}") from exc
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(repo))
    return list(found.values())


def open_store(settings: PlatformSettings) -> Any:
    """The FeatureStore of the prepared repo, without applying anything."""
    from feast import FeatureStore

    repo = prepare_repo(settings)
    try:
        return FeatureStore(repo_path=str(repo))
    except Exception as exc:
        raise ConfigError(f"{repo / 'feature_store.yaml'}: {exc}") from exc


def get_store(
    settings: PlatformSettings,
    *,
    data_dir: Path | None = None,
    extra: Sequence[Any] = (),
    apply: bool = True,
) -> Any:
    """Prepare the workspace repo, apply its definitions (+ `extra` objects), return the store.

    `data_dir` is the folder of the world's parquet files (default `<workspace>/data/world`).
    Applying is idempotent and cheap, so every entry point applies: the registry can never
    describe other definitions than the repo's.
    """
    store = open_store(settings)
    if apply:
        repo = repo_dir(settings)
        if data_dir is None and not settings.feast.repo_path:
            data_dir = default_world_dir(settings)
        objects = load_definitions(repo, data_dir) + list(extra)
        store.apply(objects)
    return store


class FeatureViewInfo(BaseModel):
    name: str
    ttl_seconds: float | None
    features: list[str]
    source: str


class FeatureRepoInfo(BaseModel):
    """What `mlgate features apply` registered, and where."""

    repo: str
    project: str
    offline_store: str
    online_store: str
    entities: list[str]
    feature_views: list[FeatureViewInfo]
    feature_services: list[str]


def describe(store: Any) -> FeatureRepoInfo:
    views = []
    for fv in sorted(store.list_feature_views(), key=lambda v: v.name):
        src = fv.batch_source
        where = getattr(src, "path", None) or getattr(src, "table", None) or src.name
        ttl = fv.ttl.total_seconds() if fv.ttl else None
        views.append(
            FeatureViewInfo(
                name=fv.name,
                ttl_seconds=ttl or None,
                features=[f.name for f in fv.features],
                source=str(where),
            )
        )
    return FeatureRepoInfo(
        repo=str(store.repo_path),
        project=store.project,
        offline_store=store.config.offline_store.type,
        online_store=store.config.online_store.type,
        entities=sorted(e.name for e in store.list_entities()),
        feature_views=views,
        feature_services=sorted(s.name for s in store.list_feature_services()),
    )
