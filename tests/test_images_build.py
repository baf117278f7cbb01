"""Model-server images: built by `mlgate image build`, pushed to a real registry, run read-only."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from mlgate.packaging import tools
from mlgate.packaging.build import read_record

pytestmark = pytest.mark.slow


def _mlgate(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "mlgate"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=900,
    )


def test_pushed_digest_and_labels_equal_registry_and_mlflow_lineage(pushed_image) -> None:
    from mlflow.tracking import MlflowClient

    rec, w, s = pushed_image.record, pushed_image.world, pushed_image.settings
    ref = rec["reference"]
    assert ref.startswith(f"{s.registry.address}/{w.model}:{w.version}-")
    assert len(ref.rsplit("-", 1)[1]) == 12
    # The digest as the registry reports it, by skopeo and by the distribution API itself.
    seen = json.loads(tools.skopeo(["inspect", "--tls-verify=false", f"docker://{ref}"]).stdout)
    assert seen["Digest"] == rec["digest"]
    repo, tag = ref.split("/", 1)[1].split(":")
    head = requests.head(
        f"http://{s.registry.address}/v2/{repo}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=5,
    )
    assert head.headers["Docker-Content-Digest"] == rec["digest"]
    # Labels == MLflow lineage of the version.
    uri = w.settings.mlflow_tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mv = client.get_model_version(w.model, w.version)
    labels = seen["Labels"]
    assert labels["io.mlgate.model.name"] == w.model
    assert labels["io.mlgate.model.version"] == w.version
    assert labels["io.mlgate.mlflow.run_id"] == mv.run_id == w.run_id
    for tag_name, label in [
        ("data_fingerprint", "io.mlgate.data.fingerprint"),
        ("git_commit", "io.mlgate.git.commit"),
        ("feature_service", "io.mlgate.feature_service"),
    ]:
        expected = mv.tags.get(tag_name) or client.get_run(mv.run_id).data.tags.get(tag_name)
        assert expected and labels[label] == expected, tag_name
    assert labels["org.opencontainers.image.created"] == rec["created"]
    assert labels["io.mlgate.sbom.digest"] == rec["sbom_digest"]
    # The build record the gitops step reads.
    stored = read_record(s, w.model, w.version)
    assert stored is not None
    on_disk = json.loads(Path(s.ws().root, "images", w.model, f"{w.version}.json").read_text())
    assert {"repository", "reference", "digest", "labels", "sbom_digest", "created"} <= set(on_disk)
    assert on_disk["repository"] == f"{s.registry.address}/{w.model}"
    assert on_disk["digest"] == rec["digest"]
    # the MLflow version names the same image: what a promotion of it may pin
    assert mv.tags["image_digest"] == rec["digest"]
    assert mv.tags["image_repository"] == on_disk["repository"]
    assert not list((Path(s.ws().root) / "images" / ".build").glob("*"))


def test_rebuilding_an_unchanged_version_is_a_no_op(pushed_image) -> None:
    from mlgate.packaging.wheelhouse import source_hash

    if source_hash() != pushed_image.source_hash:
        pytest.skip("mlgate's source was edited during the session: a rebuild is then correct")
    t0 = time.monotonic()
    proc = _mlgate(
        [
            "image",
            "build",
            "--model",
            pushed_image.world.model,
            "--version",
            "challenger",
            "--json",
        ],
        pushed_image.env(),
    )
    assert proc.returncode == 0, proc.stderr
    again = json.loads(proc.stdout)
    assert again["reference"] == pushed_image.record["reference"]
    assert again["digest"] == pushed_image.record["digest"]
    assert again["reused"] is True
    assert time.monotonic() - t0 < pushed_image.build_seconds


def _image_rootfs(image: str):  # type: ignore[no-untyped-def]
    args = ["from", "--tls-verify=false", f"docker://{image}"]
    ctr = tools.buildah(args).stdout.strip().splitlines()[-1]
    return ctr, Path(tools.buildah(["mount", ctr]).stdout.strip())


def test_final_image_has_no_pip_no_compiler_and_its_sbom(pushed_image) -> None:
    rec = pushed_image.record
    ctr, root = _image_rootfs(f"{rec['repository']}@{rec['digest']}")
    try:
        venv = root / "opt/mlgate/venv"
        site = next(venv.glob("lib/python3*/site-packages"))
        assert (site / "mlserver").is_dir() and (site / "mlgate").is_dir()
        pips = [p for p in root.rglob("pip") if "site-packages" in str(p) or p.parent.name == "bin"]
        assert not pips, pips
        assert not list(root.glob("usr/share/python-wheels/pip-*"))
        assert not list(venv.glob("bin/pip*"))
        for cc in ("gcc", "cc", "g++", "c++", "clang", "tcc", "x86_64-linux-gnu-gcc-12"):
            assert not (root / "usr/bin" / cc).exists(), cc
        # The SBOM in the image is the one whose digest the label carries, and it lists the
        # exact wheels installed, with their hashes.
        sbom_bytes = (root / "opt/mlgate/sbom.cdx.json").read_bytes()
        assert "sha256:" + hashlib.sha256(sbom_bytes).hexdigest() == rec["sbom_digest"]
        sbom = json.loads(sbom_bytes)
        assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.5"
        comps = {c["name"]: c for c in sbom["components"]}
        for name in ("mlserver", "scikit-learn", "mlflow-skinny", "mlgate", "python3.11"):
            assert name in comps, name
        dist = next(site.glob("mlserver-*.dist-info"))
        assert dist.name.removesuffix(".dist-info").split("-")[1] == comps["mlserver"]["version"]
        assert comps["mlserver"]["hashes"][0]["alg"] == "SHA-256"
        # Non-root user declared; /tmp the only volume.
        cfg = json.loads(tools.buildah(["inspect", "--type", "container", ctr]).stdout)
        config = cfg["OCIv1"]["config"]
        assert config["User"] == "10001:10001"
        assert set(config["Volumes"]) == {"/tmp"}
    finally:
        tools.buildah(["umount", ctr], check=False)
        tools.buildah(["rm", ctr], check=False)
        tools.buildah(["rmi", f"{rec['repository']}@{rec['digest']}"], check=False)


def test_pushed_image_serves_read_only_as_non_root_matching_offline(pushed_image) -> None:
    import tritonclient.http as httpclient

    from mlgate.packaging.container_run import run_image
    from mlgate.serving import client
    from mlgate.serving.server import free_port, wait_ready

    w, rec = pushed_image.world, pushed_image.record
    from mlgate.training.registry import load_scorer

    scorer = load_scorer(w.settings, w.model, w.version)
    offline = scorer.predict_pd(w.offline)
    port, metrics_port = free_port(), free_port()
    env = {
        "MLGATE_CUTOFF": "0.2",
        "MLSERVER_HTTP_PORT": str(port),
        "MLSERVER_GRPC_PORT": str(free_port()),
        "MLSERVER_METRICS_PORT": str(metrics_port),
        "MLSERVER_HOST": "127.0.0.1",
    }
    image = f"{rec['repository']}@{rec['digest']}"
    with run_image(pushed_image.settings, image, env=env) as ctr:
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, w.model, None, 120)
        except Exception:
            pytest.fail(Path(ctr.log).read_text()[-3000:])
        status = Path(f"/proc/{ctr.pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        mountinfo = Path(f"/proc/{ctr.pid}/mountinfo").read_text().splitlines()
        plain = client.infer(url, w.model, w.offline[w.features])
        triton = httpclient.InferenceServerClient(url=f"127.0.0.1:{port}")
        x = w.offline[w.features]
        inputs = []
        for col in w.features:
            if x[col].dtype.kind in "fiu":
                t = httpclient.InferInput(col, [len(x), 1], "FP64")
                t.set_data_from_numpy(
                    x[col].to_numpy(dtype="float64").reshape(-1, 1), binary_data=False
                )
            else:
                t = httpclient.InferInput(col, [len(x), 1], "BYTES")
                t.set_data_from_numpy(
                    x[col].astype(str).to_numpy(dtype=object).reshape(-1, 1), binary_data=False
                )
            inputs.append(t)
        outputs = [
            httpclient.InferRequestedOutput(n, binary_data=False) for n in ("pd", "decision")
        ]
        res = triton.infer(w.model, inputs, outputs=outputs, parameters={"content_type": "pd"})
        triton_pd = res.as_numpy("pd").reshape(-1)
        triton_decision = [
            d.decode() if isinstance(d, bytes) else d for d in res.as_numpy("decision").reshape(-1)
        ]
        # the image's metrics server (on, read-only root, non-root) counts both requests' rows
        scrape = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    assert uid_line.split()[1:3] == ["10001", "10001"], uid_line
    root_mount = next(m for m in mountinfo if m.split()[4] == "/")
    assert " ro," in root_mount or root_mount.split()[5].startswith("ro"), root_mount
    tmp_mount = next(m for m in mountinfo if m.split()[4] == "/tmp")
    assert "tmpfs" in tmp_mount
    assert np.allclose([s.pd for s in plain], offline, rtol=0, atol=1e-12)
    assert np.allclose(triton_pd, offline, rtol=0, atol=1e-12)
    assert triton_decision == ["decline" if p >= 0.2 else "approve" for p in offline]
    assert {s.model_version for s in plain} == {w.version}
    from prometheus_client.parser import text_string_to_metric_families

    decided = [
        smp.value
        for fam in text_string_to_metric_families(scrape)
        for smp in fam.samples
        if smp.name == "mlgate_decisions_total"
        and smp.labels["model_name"] == w.model
        and smp.labels["model_version"] == w.version
    ]
    assert sum(decided) == 2 * len(offline), scrape[-3000:]


def test_build_context_for_docker_buildx_is_the_same_containerfile(serving_world, tmp_path) -> None:
    env = {
        **serving_world.env(),
        "MLGATE_IMAGE__BASE_IMAGE": "docker.io/library/python:3.11-slim-bookworm",
    }
    out = tmp_path / "ctx"
    proc = _mlgate(
        ["image", "context", "--model", serving_world.model, "--version", "1", "--out", str(out)],
        env,
    )
    assert proc.returncode == 0, proc.stderr
    text = (out / "Containerfile").read_text()
    # No cached environment layer there: the file builds it as its first stage, from the
    # wheels in the context, and the image stage is FROM that stage.
    assert "FROM docker.io/library/python:3.11-slim-bookworm AS env" in text
    assert "\nFROM env\n" in text and "localhost/" not in text
    locked = (out / "wheelhouse" / "requirements.txt").read_text()
    assert "mlserver==" in locked and list((out / "wheelhouse").glob("mlserver-*.whl"))
    sbom = "sha256:" + hashlib.sha256((out / "sbom.cdx.json").read_bytes()).hexdigest()
    assert f'io.mlgate.sbom.digest="{sbom}"' in text
    assert (out / "model" / "MLmodel").is_file()
    assert (out / "mlserver" / serving_world.model / "model-settings.json").is_file()
    assert " --hash=sha256:" in (out / "wheelhouse" / "mlgate.txt").read_text()
    assert list((out / "wheelhouse" / ".pip").glob("pip-*.whl"))
    again = _mlgate(
        ["image", "context", "--model", serving_world.model, "--version", "1", "--out", str(out)],
        env,
    )
    assert again.returncode == 2 and "not empty" in again.stderr
