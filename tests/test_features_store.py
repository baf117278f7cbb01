"""The feature repo: rendered into the workspace by default, used as is when configured."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from mlgate.config import load_settings
from mlgate.data import schema
from mlgate.features.store import ASOF_STORE, TEMPLATE_DIR, get_store, prepare_repo
from tests.fixtures.features import settings_for


def test_rendered_repo_has_workspace_paths_and_selected_store(workspace: Path) -> None:
    repo = prepare_repo(load_settings())
    cfg = yaml.safe_load((repo / "feature_store.yaml").read_text(encoding="utf-8"))
    assert repo == workspace / "feast" / "repo"
    assert cfg["registry"]["path"] == str(workspace / "feast" / "registry.db")
    assert cfg["online_store"]["path"] == str(workspace / "feast" / "online.db")
    assert cfg["offline_store"]["type"] == ASOF_STORE
    assert (repo / "features.py").read_bytes() == (TEMPLATE_DIR / "features.py").read_bytes()
    # the setting switches the offline store without touching the checkout's repo
    repo = prepare_repo(settings_for(workspace, "duckdb"))
    cfg = yaml.safe_load((repo / "feature_store.yaml").read_text(encoding="utf-8"))
    assert cfg["offline_store"]["type"] == "duckdb"


def test_configured_repo_path_is_used_as_is(workspace: Path, tmp_path: Path) -> None:
    own = tmp_path / "prod_repo"
    shutil.copytree(TEMPLATE_DIR, own)
    (own / "feature_store.yaml").write_text(
        f"project: bank\nprovider: local\nregistry: {tmp_path / 'reg.db'}\n"
        f"online_store: {{type: sqlite, path: {tmp_path / 'online.db'}}}\n"
        "offline_store: {type: duckdb}\nentity_key_serialization_version: 3\n",
        encoding="utf-8",
    )
    settings = load_settings()
    feast = settings.feast.model_copy(update={"repo_path": str(own)})
    store = get_store(settings.model_copy(update={"feast": feast}))
    assert Path(store.repo_path) == own and store.project == "bank"
    assert not (workspace / "feast" / "repo").exists()
    assert [s.name for s in store.list_feature_services()] == [schema.FEAST_FEATURE_SERVICE]
