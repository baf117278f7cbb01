"""Where datasets are: the workspace's world and the dataset config that describes a path.

Commands accept a world folder, a dataset config or a data file; this module turns any of
them into one `DatasetConfig`, so validation and training read only configs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from mlgate.config import REPO_ROOT, PlatformSettings
from mlgate.data import schema
from mlgate.data.dataset_config import DatasetConfig, load_dataset_config
from mlgate.errors import BadInputError
from mlgate.workspace import Workspace

CREDIT_WORLD_CONFIG = REPO_ROOT / "config" / "datasets" / "credit_world.yaml"
WORLD_NAME = "world"


def world_dir(settings: PlatformSettings) -> Path:
    """The workspace's world folder: <workspace>/data/world (not created: readers write nothing)."""
    return Workspace.resolve(settings.workspace).root / "data" / WORLD_NAME


def bind_world(cfg: DatasetConfig, folder: str | Path) -> DatasetConfig:
    """Point a synthetic config at a world folder; its protected table lives in that folder."""
    root = Path(folder).resolve()
    protected = cfg.protected_path
    if protected and not Path(protected).is_absolute():
        protected = str(root / protected)
    return cfg.model_copy(
        update={"path": str(root), "format": "synthetic", "protected_path": protected}
    )


def credit_world_config(folder: str | Path) -> DatasetConfig:
    """The credit world's dataset config (config/datasets/credit_world.yaml) for `folder`."""
    return bind_world(load_dataset_config(CREDIT_WORLD_CONFIG), folder)


def rebind(cfg: DatasetConfig, path: str | Path) -> DatasetConfig:
    """The same dataset read from another copy: a world folder (synthetic), or a folder
    holding the config's data file under its own name, or that file itself. How a pipeline
    step reads the `data` artifact it was handed instead of the configured source."""
    p = Path(path)
    if cfg.resolved_format == "synthetic":
        old = Path(cfg.path)
        protected = cfg.protected_path
        if protected and Path(protected).is_absolute() and Path(protected).is_relative_to(old):
            # the protected table of the world it was bound to: the same table in this copy
            cfg = cfg.model_copy(update={"protected_path": str(Path(protected).relative_to(old))})
        return bind_world(cfg, p)
    if p.is_dir():
        p = p / Path(cfg.path).name
    return cfg.model_copy(update={"path": str(p.resolve())})


def with_workspace(cfg: DatasetConfig, settings: PlatformSettings) -> DatasetConfig:
    """Expand `{workspace}` in the config's paths with the settings' workspace."""
    root = str(Workspace.resolve(settings.workspace).root)
    update = {"path": cfg.path.replace("{workspace}", root)}
    if cfg.protected_path:
        update["protected_path"] = cfg.protected_path.replace("{workspace}", root)
    cfg = cfg.model_copy(update=update)
    if cfg.resolved_format == "synthetic":
        return bind_world(cfg, cfg.resolve_path())
    return cfg


def dataset_for(
    settings: PlatformSettings, path: Path | None, dataset: Path | None
) -> DatasetConfig:
    """The dataset config for a command's PATH and --dataset arguments.

    --dataset CONFIG [PATH]: the config, reading PATH instead of its `path` if given;
    PATH.yaml: that config; PATH/ (a folder): a generated world; nothing: the workspace's world.
    """
    if dataset is not None:
        cfg = with_workspace(load_dataset_config(dataset), settings)
        if path is None:
            return cfg
        if path.is_dir():
            return bind_world(cfg, path)
        return cfg.model_copy(update={"path": str(path.resolve()), "format": None})
    if path is None:
        return credit_world_config(world_dir(settings))
    if path.suffix.lower() in (".yaml", ".yml"):
        return with_workspace(load_dataset_config(path), settings)
    if path.is_dir():
        return credit_world_config(path)
    if path.suffix.lower() in (".csv", ".parquet", ".pq"):
        raise BadInputError(
            f"{path}: a data file needs --dataset CONFIG.yaml naming its entity key, event "
            "timestamp, label and features (see config/datasets/example_external.yaml)"
        )
    raise BadInputError(f"{path}: not found, or not a world folder, dataset config or data file")


def _columns_of(path: Path) -> list[str]:
    try:
        if path.suffix.lower() == ".csv":
            return [str(c) for c in pd.read_csv(path, nrows=0).columns]
        return list(pq.read_schema(path).names)
    except Exception as exc:  # any reader error: the file is not what the config says
        raise BadInputError(f"{path}: cannot read its columns: {exc}") from None


def check_source_columns(cfg: DatasetConfig) -> None:
    """Every column the config names for rows (keys, timestamp, labels, decision; features of
    a flat file) must be in the source, else bad input naming the config file, the field and
    the column. Without this a misspelt label became an all-missing column: no row "matured",
    an empty training set and exit 0."""
    root = cfg.resolve_path()
    if cfg.resolved_format == "synthetic":
        tables = [root / f"{t}.parquet" for t in (schema.APPLICATIONS, schema.OUTCOMES)]
        present = [t for t in tables if t.is_file()]
        fields: dict[str, str] = {}
    else:
        present = [root] if root.is_file() else []
        fields = {
            **{c: "numeric_features" for c in cfg.numeric_features},
            **{c: "categorical_features" for c in cfg.categorical_features},
        }
    if not present:
        return  # a missing file is reported by whoever reads it, with how to make it
    columns = {c for t in present for c in _columns_of(t)}
    named = {
        "entity_key": cfg.entity_key,
        "row_key": cfg.row_key,
        "event_timestamp": cfg.event_timestamp,
        "label": cfg.label,
        "early_label": cfg.early_label,
        "decision_column": cfg.decision_column,
    }
    wanted = [(f, c) for f, c in named.items() if c] + [(f, c) for c, f in fields.items()]
    missing = [(f, c) for f, c in wanted if c not in columns]
    if missing:
        where = ", ".join(str(t) for t in present)
        raise BadInputError(
            f"{cfg.where}: missing column(s) {', '.join(repr(c) for _f, c in missing)} in "
            f"{where} (dataset {cfg.name!r}; its columns: {', '.join(sorted(columns))})",
            problems=[f"{f}: column {c!r} is missing" for f, c in missing],
        )
