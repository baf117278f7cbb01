"""Image builds fail clearly and leave nothing behind: no record, no staging, no stray tags."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlgate.config import MlflowSettings, RegistrySettings
from mlgate.errors import ExternalServiceError
from mlgate.packaging import registry, tools
from mlgate.packaging.build import build_model_image, read_record
from mlgate.serving.server import free_port

pytestmark = pytest.mark.slow


def _mlgate(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "mlgate"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=600,
    )


def _left_behind(ws: Path) -> list[Path]:
    return list((ws / "images").rglob("*")) if (ws / "images").exists() else []


def _local_names() -> set[str]:
    out = tools.buildah(["images", "--format", "{{.Name}}:{{.Tag}}"]).stdout
    return set(out.split())


def test_registry_down_and_missing_version_fail_before_building(serving_world, workspace) -> None:
    env = {
        "MLGATE_MLFLOW__TRACKING_URI": serving_world.settings.mlflow_tracking_uri(),
        "MLGATE_REGISTRY__ADDRESS": f"127.0.0.1:{free_port()}",  # nothing listens there
    }
    down = _mlgate(["image", "build", "--model", serving_world.model, "--version", "1"], env)
    assert down.returncode == 2
    assert "not answering" in down.stderr and "mlgate registry up" in down.stderr
    missing = _mlgate(["image", "build", "--model", serving_world.model, "--version", "99"], env)
    assert missing.returncode == 2
    assert "version '99' is not in the MLflow registry" in missing.stderr
    assert _left_behind(workspace) == []


def test_push_rejected_by_a_read_only_registry(pushed_image, workspace) -> None:
    ro = pushed_image.settings.model_copy(
        update={
            "workspace": str(workspace),
            "registry": RegistrySettings(address=f"127.0.0.1:{free_port()}"),
        }
    )
    registry.up(ro, readonly=True)
    try:
        with pytest.raises(ExternalServiceError, match="rejected by the registry"):
            build_model_image(ro, pushed_image.world.model, pushed_image.world.version)
    finally:
        registry.down(ro)
    assert read_record(ro, pushed_image.world.model, pushed_image.world.version) is None
    assert not any(n.startswith(ro.registry.address) for n in _local_names())
    assert not list((workspace / "images" / ".build").glob("*"))


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tiny tmpfs needs root")
def test_disk_full_while_staging_keeps_nothing(pushed_image, workspace, tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    # Another registered model (same artifact, new name) so nothing is cached for it.
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("credit_risk_diskfull")
    artifact = pushed_image.settings.ws().root / "serving" / "artifacts"
    source = next(p for p in artifact.iterdir() if (p / "MLmodel").is_file())
    # A run holding the dataset config: the image's serving contract reads its value ranges.
    from mlgate.training.registry import read_artifact_json

    world = pushed_image.world
    dataset = read_artifact_json(world.settings, world.run_id, "config/dataset_config.json")
    exp = client.create_experiment("diskfull", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(exp)
    client.log_dict(run.info.run_id, dataset, "config/dataset_config.json")
    client.create_model_version("credit_risk_diskfull", str(source), run_id=run.info.run_id)
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small)], check=True)
    try:
        s = pushed_image.settings.model_copy(
            update={
                "workspace": str(workspace),
                "mlflow": MlflowSettings(tracking_uri=uri),
                "image": pushed_image.settings.image.model_copy(update={"build_dir": str(small)}),
            }
        )
        with pytest.raises(ExternalServiceError, match="disk full"):
            build_model_image(s, "credit_risk_diskfull", "1")
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=False)
    assert read_record(s, "credit_risk_diskfull", "1") is None
    assert not any("credit_risk_diskfull" in n for n in _local_names())
