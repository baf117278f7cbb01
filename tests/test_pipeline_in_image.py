"""A pipeline task runs inside the pushed platform image the way a container runner starts a
pod: the image's Python and files, its non-root user, a read-only root, and only its workspace,
the pipeline root and the volumes it is given mounted.

A planted one-task pipeline reports what it sees and tries to write where a pod cannot. The
training pipeline itself runs in the image in tests/test_pipeline_local.py.
"""

# No `from __future__ import annotations`: kfp reads the components' annotations at decoration.
import errno
import json
import sys
from pathlib import Path

import pytest
from kfp import dsl

from mlgate.config import load_settings
from mlgate.packaging.container_run import Bind, image_tasks
from mlgate.packaging.containerfile import PROJECT_DIR, UID, VENV
from mlgate.pipelines.local import log_tail, run_pipeline
from mlgate.pipelines.platform import platform_image

# The first test to use the platform image on a fresh machine also builds its cached
# environment layer (docs/pipelines.md "Test budget": ~18 min cold on a loaded 2-core box).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2700)]


@dsl.component(base_image=platform_image(), install_kfp_package=False)
def probe(data: str, host_prefix: str) -> str:
    """Where am I? Reports the interpreter, user and project files, and tries writes."""
    import json
    import os
    import sys
    from pathlib import Path

    def attempt(path: str) -> str:
        try:
            Path(path).write_text("planted")
            return "written"
        except OSError as exc:
            return f"errno {exc.errno}"

    root = os.environ.get("MLGATE_PROJECT_ROOT", "")
    seen = {
        "prefix": sys.prefix,
        "uid": os.getuid(),
        "project_root": root,
        "project_config": bool(root) and (Path(root) / "config" / "models").is_dir(),
        "host_venv_visible": Path(host_prefix).exists(),
        "data_readable": any(Path(data).iterdir()),
        "write_image": attempt(f"{root}/planted.txt"),
        "write_etc": attempt("/etc/planted"),
        "write_data": attempt(f"{data}/planted.txt"),
        "write_workspace": attempt(os.environ["MLGATE_WORKSPACE"] + "/ok.txt"),
        "write_tmp": attempt("/tmp/ok.txt"),
    }
    return json.dumps(seen)


@dsl.pipeline(name="in-image-probe")
def probe_pipeline(data: str, host_prefix: str) -> str:
    return probe(data=data, host_prefix=host_prefix).set_caching_options(False).output


def test_a_task_runs_inside_the_pushed_image_read_only_and_non_root(
    platform_image_pushed, small_world, tmp_path: Path
) -> None:
    pushed = platform_image_pushed
    settings = load_settings().model_copy(update={"workspace": str(tmp_path / "ws")})
    data = small_world[0]
    binds = [Bind(path=str(settings.ws().sub("kfp")), writable=True), Bind(path=str(data))]
    with image_tasks(pushed.settings, pushed.image, binds) as wrap:
        run = run_pipeline(
            probe_pipeline,
            "in-image-probe",
            settings,
            arguments={"data": str(data), "host_prefix": sys.prefix},
            wrap=wrap,
        )
    assert run.status == "SUCCESS", log_tail(run)
    seen = json.loads(run.outputs["Output"])
    # The image's interpreter and project files, as its non-root user; the host's venv is not
    # even visible.
    assert seen["prefix"] == VENV and seen["uid"] == UID
    assert seen["project_root"] == PROJECT_DIR and seen["project_config"]
    assert seen["host_venv_visible"] is False
    # The read-only root and the read-only data volume refuse writes; the workspace and /tmp
    # take them.
    erofs = f"errno {errno.EROFS}"
    assert seen["data_readable"]
    assert seen["write_image"] == erofs and seen["write_etc"] == erofs
    assert seen["write_data"] == erofs and not (data / "planted.txt").exists()
    assert seen["write_workspace"] == "written" and seen["write_tmp"] == "written"
