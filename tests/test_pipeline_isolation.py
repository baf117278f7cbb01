"""Pipeline tasks are isolated as pods are: a step that reads what another step left on disk
fails the run, locally as in a cluster.

Planted steps (small KFP components defined here): one writes a file into its workspace and the
same content into its output artifact; the readers then try the artifact (allowed: that is how
pods exchange data), their own workspace (where the file would be if tasks shared one), and the
writer's workspace by the absolute path it reported. Only the artifact works. A control run
without the isolation (kfp's runner as it comes, one shared workspace) lets the planted reader
succeed: what the isolation catches is a real leak, and the test fails if the hook into kfp's
runner (`mlgate.pipelines.local.isolated_tasks`) ever stops taking effect.
"""

# No `from __future__ import annotations`: kfp reads the components' annotations at decoration.
import warnings
from pathlib import Path

import pytest
from kfp import dsl, local
from kfp.dsl import Dataset, Input, Output

from mlgate.config import load_settings
from mlgate.pipelines.local import LocalRunResult, log_tail, run_pipeline
from mlgate.pipelines.platform import platform_image

IMAGE = platform_image()


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def leave_file(note: Output[Dataset]) -> str:
    """Writes world.txt into its workspace and the same text into its artifact."""
    from mlgate.config import load_settings

    root = load_settings().ws().root
    (root / "world.txt").write_text("made by leave_file")
    with open(note.path, "w") as fh:
        fh.write("made by leave_file")
    return str(root)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def read_artifact(note: Input[Dataset]) -> str:
    with open(note.path) as fh:
        return fh.read()


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def read_own_workspace(note: Input[Dataset]) -> str:
    """The planted leak: expects the sibling's file in "the" workspace."""
    from mlgate.config import load_settings

    return (load_settings().ws().root / "world.txt").read_text()


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def read_sibling_path(where: str) -> str:
    """The other leak: reads the sibling's workspace by the path it reported."""
    from pathlib import Path

    return (Path(where) / "world.txt").read_text()


@dsl.pipeline(name="through-artifact")
def through_artifact() -> str:
    made = leave_file().set_caching_options(False)
    return read_artifact(note=made.outputs["note"]).set_caching_options(False).output


@dsl.pipeline(name="through-workspace")
def through_workspace() -> str:
    made = leave_file().set_caching_options(False)
    return read_own_workspace(note=made.outputs["note"]).set_caching_options(False).output


@dsl.pipeline(name="through-path")
def through_path() -> str:
    made = leave_file().set_caching_options(False)
    return read_sibling_path(where=made.outputs["Output"]).set_caching_options(False).output


def _run(pipeline, workspace: Path) -> LocalRunResult:
    return run_pipeline(pipeline, pipeline.name, load_settings(workspace=str(workspace)))


def test_steps_exchange_data_through_artifacts(workspace: Path) -> None:
    run = _run(through_artifact, workspace)
    assert run.status == "SUCCESS", log_tail(run)
    assert run.outputs["Output"] == "made by leave_file"
    # Each task's workspace went with it.
    assert not any((workspace / "kfp" / "tasks").iterdir())


@pytest.mark.parametrize("pipeline", [through_workspace, through_path], ids=["own", "sibling"])
def test_a_step_reading_another_steps_files_fails_the_run(pipeline, workspace: Path) -> None:
    run = _run(pipeline, workspace)
    assert run.status == "FAILURE"
    status = {t.name: t.status for t in run.tasks}
    assert status["leave-file"] == "SUCCESS"
    assert status[next(t for t in status if t.startswith("read-"))] == "FAILURE"
    assert "world.txt" in log_tail(run, 80)
    assert "FileNotFoundError" in log_tail(run, 80)


def test_without_the_isolation_the_planted_leak_goes_unnoticed(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: kfp's runner as it comes shares the caller's workspace between tasks."""
    monkeypatch.setenv("MLGATE_WORKSPACE", str(workspace))
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(workspace / "kfp-plain"),
        raise_on_error=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = through_workspace()
    assert task.output == "made by leave_file"


def test_the_workspace_world_is_handed_to_the_data_step_explicitly(workspace: Path) -> None:
    """Tasks cannot see the CLI's workspace: its world reaches the pipeline as `data_source`
    (when there is one and the pipeline takes it), never through a shared disk."""
    from mlgate.pipelines import catalog
    from mlgate.pipelines.local import workspace_data

    settings = load_settings(workspace=str(workspace))
    training = catalog.load("training")
    assert workspace_data(training, settings) == {}  # no world: the data step decides
    world = workspace / "data" / "world"
    world.mkdir(parents=True)
    assert workspace_data(training, settings) == {"data_source": str(world)}
    assert workspace_data(through_artifact, settings) == {}  # takes no data_source
