"""The generated Containerfile, the wheel lock, the SBOM and the registry's life cycle."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgate.cli import app
from mlgate.packaging.base_image import base_key, debian_mirror
from mlgate.packaging.build import platform_requirements
from mlgate.packaging.containerfile import ContainerfileSpec, render, render_env
from mlgate.packaging.sbom import make_sbom
from mlgate.packaging.wheelhouse import LockedWheel, ensure_wheelhouse


def _spec(kind: str) -> ContainerfileSpec:
    return ContainerfileSpec(
        kind=kind,  # type: ignore[arg-type]
        base="localhost/mlgate-base:abc",
        pip_wheel="pip-24.3.1-py3-none-any.whl",
        labels={"io.mlgate.model.name": "credit_risk", "io.mlgate.git.commit": 'a"b'},
        model="credit_risk" if kind == "model-server" else None,
    )


def test_model_server_containerfile_installs_locked_wheels_only_and_runs_non_root() -> None:
    text = render(_spec("model-server"))
    assert text == render(_spec("model-server"))  # deterministic: created is a build argument
    assert text.splitlines()[2] == "FROM localhost/mlgate-base:abc"  # the environment layer
    assert "RUN --mount=type=bind,source=wheelhouse,target=/wheelhouse" in text
    # On the cached environment layer, the image's own layer installs mlgate only, hashed.
    assert "venv --without-pip" not in text and "requirements.txt" not in text
    assert text.count("--no-index") == 1 and text.count("--require-hashes") == 1
    assert "--no-deps -r /wheelhouse/mlgate.txt" in text
    env = render_env("localhost/mlgate-base:abc", "pip-24.3.1-py3-none-any.whl", "model-server")
    assert "venv --without-pip /opt/mlgate/venv" in env and "mlgate.txt" not in env
    assert "--require-hashes --find-links /wheelhouse -r /wheelhouse/requirements.txt" in env
    assert "rm -rf /usr/share/python-wheels" in env and "useradd --system --uid 10001" in env
    assert "COPY wheelhouse" not in text + env  # wheels never land in a layer
    assert "COPY model /opt/mlgate/model" in text
    assert "USER 10001:10001" in text and 'VOLUME ["/tmp"]' in text
    assert 'io.mlgate.git.commit="a\\"b"' in text  # label values are quoted
    assert 'org.opencontainers.image.created="${CREATED}"' in text
    assert text.rstrip().endswith(
        'ENTRYPOINT ["/opt/mlgate/venv/bin/python", "-m", "mlgate.serving.launch", "start", '
        '"/opt/mlgate/mlserver"]'
    )


def test_another_builders_containerfile_is_the_environment_stage_then_the_same_image() -> None:
    """docker buildx has no cached environment layer: the file builds it as its first stage,
    and the image stage is byte for byte what a local build renders, FROM that stage."""
    local = render(_spec("model-server"))
    spec = _spec("model-server").model_copy(update={"env_base": "docker.io/library/python:3"})
    text = render(spec)
    assert text == render(spec)
    env, image = text.split("\n\n# Image kind: model-server\n")
    assert env.splitlines()[2] == "FROM docker.io/library/python:3 AS env"
    alone = render_env("docker.io/library/python:3", spec.pip_wheel, "model-server")
    assert env.replace(" AS env\n", "\n", 1) + "\n" == alone
    assert image.splitlines()[0] == "FROM env"
    assert image.splitlines()[1:] == local.splitlines()[3:]


def test_platform_containerfile_and_its_pins_include_kfp() -> None:
    text = render(_spec("platform"))
    assert "COPY model" not in text and "mlserver start" not in text
    assert 'ENTRYPOINT ["/opt/mlgate/venv/bin/mlgate"]' in text
    reqs = platform_requirements()
    assert "kfp==2.17.0" in reqs and "mlserver==1.7.1" in reqs
    assert not any(r.lower().startswith("mlgate==") for r in reqs)


def test_debian_mirror_comes_from_apt_sources(tmp_path: Path) -> None:
    d = tmp_path / "apt" / "sources.list.d"
    d.mkdir(parents=True)
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\n"
    )
    assert debian_mirror(tmp_path / "apt") == "http://mirror.example/debian"
    assert base_key("http://a/debian") != base_key("http://b/debian")


def test_wheelhouse_lock_hashes_match_the_wheels() -> None:
    wh = ensure_wheelhouse()
    lines = (Path(wh.path) / "requirements.txt").read_text().splitlines()
    assert lines and all(" --hash=sha256:" in line for line in lines)
    names = {w.name for w in wh.wheels}
    assert {"mlserver", "mlflow-skinny", "scikit-learn", "uvloop"} <= names
    assert not {"pip", "feast", "mlflow", "kfp"} & names  # the server's environment stays small
    for w in wh.wheels[:5]:
        data = (Path(wh.path) / w.filename).read_bytes()
        assert hashlib.sha256(data).hexdigest() == w.sha256


def test_sbom_is_deterministic_cyclonedx() -> None:
    wheels = [LockedWheel(name="numpy", version="2.4.6", filename="x.whl", sha256="0" * 64)]
    a = make_sbom(image_name="r/m", image_version="1", wheels=wheels, debian=[("python3", "3.11")])
    b = make_sbom(image_name="r/m", image_version="1", wheels=wheels, debian=[("python3", "3.11")])
    assert a == b and a["bomFormat"] == "CycloneDX" and a["specVersion"] == "1.5"
    purls = [c["purl"] for c in a["components"]]
    assert purls == ["pkg:pypi/numpy@2.4.6", "pkg:deb/debian/python3@3.11"]
    assert json.loads(json.dumps(a))["serialNumber"].startswith("urn:uuid:")


def test_registry_up_status_down(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import shutil

    from mlgate.serving.server import free_port

    if not shutil.which("docker-registry"):
        pytest.skip("docker-registry is not installed (make debs installs it)")
    addr = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLGATE_REGISTRY__ADDRESS", addr)
    runner = CliRunner()
    up = runner.invoke(app, ["registry", "up", "--json"])
    try:
        assert up.exit_code == 0, up.output
        st = json.loads(up.stdout)
        assert st["answering"] and st["pid"] and st["address"] == addr
        again = json.loads(runner.invoke(app, ["registry", "up", "--json"]).stdout)
        assert again["pid"] == st["pid"]  # a no-op when it already answers
        # Another workspace on the same address reuses it, is told so, and cannot stop it.
        with monkeypatch.context() as other:
            other.setenv("MLGATE_WORKSPACE", str(tmp_path / "other"))
            theirs = runner.invoke(app, ["registry", "up"])
            assert theirs.exit_code == 0, theirs.output
            assert "not started by this workspace" in " ".join(theirs.output.split())
            down_there = json.loads(runner.invoke(app, ["registry", "down", "--json"]).stdout)
            assert down_there["answering"] and down_there["pid"] is None
        assert (
            json.loads(runner.invoke(app, ["registry", "status", "--json"]).stdout)["pid"]
            == (st["pid"])
        )
    finally:
        down = runner.invoke(app, ["registry", "down", "--json"])
    assert down.exit_code == 0
    assert json.loads(down.stdout) | {"storage": ""} == {
        "address": addr,
        "answering": False,
        "pid": None,
        "storage": "",
        "readonly": False,
    }
