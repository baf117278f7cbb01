"""The sink's manifests agree with each other and with the sink: ports, token files, labels.

A port or a label that drifts between the Deployment, its NetworkPolicy, the SeldonDeployment's
logger URL and the jobs would silently lose every event or every read in the cluster, so each
pairing is checked here, and the Deployment's own arguments start the real sink."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import yaml

from mlgate.serving.logsink import READ_TOKEN_ENV
from tests.logsink_helpers import READ, tokens

ROOT = Path(__file__).resolve().parents[1]


def docs(path: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((ROOT / path).read_text()) if d]


def kind(path: str, name: str) -> dict[str, Any]:
    return next(d for d in docs(path) if d["kind"] == name)


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def sink_container() -> tuple[dict[str, Any], dict[str, Any]]:
    pod = kind("manifests/platform/logsink.yaml", "Deployment")["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


def mounted_secret(pod: dict[str, Any], container: dict[str, Any], file: str) -> str:
    """The Secret whose volume is mounted at the folder of `file`."""
    mount = next(m for m in container["volumeMounts"] if file.startswith(m["mountPath"] + "/"))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    return str(volume["secret"]["secretName"])


def job_pods() -> dict[str, dict[str, Any]]:
    cron = kind("manifests/components/canary/canary-analysis-cronjob.yaml", "CronJob")
    smoke = kind("manifests/base/smoke-test-hook.yaml", "Job")
    return {
        "canary-analysis": cron["spec"]["jobTemplate"]["spec"]["template"],
        "smoke-test": smoke["spec"]["template"],
    }


def test_ports_labels_and_token_files_line_up() -> None:
    pod, container = sink_container()
    args = container["args"]
    write_port, read_port = int(flag(args, "--port")), int(flag(args, "--read-port"))
    assert "--writes-by-network-policy" in args and "--write-token-file" not in args
    assert mounted_secret(pod, container, flag(args, "--read-token-file")) == "mlgate-logsink"
    service = kind("manifests/platform/logsink.yaml", "Service")
    assert {p["port"] for p in service["spec"]["ports"]} == {write_port, read_port}

    policies = {p["metadata"]["name"]: p for p in docs("manifests/platform/networkpolicy.yaml")}
    write_rule = policies["logsink-write"]["spec"]["ingress"][0]
    read_rule = policies["logsink-read"]["spec"]["ingress"][0]
    assert [p["port"] for p in write_rule["ports"]] == [write_port]
    assert [p["port"] for p in read_rule["ports"]] == [read_port]
    assert write_rule["from"][0]["podSelector"]["matchExpressions"][0]["key"] == (
        "seldon-deployment-id"
    )
    readers = set(read_rule["from"][0]["podSelector"]["matchExpressions"][0]["values"])

    # The model namespaces carry the label both rules select on.
    appset = docs("argocd/applicationset.yaml")[0]
    ns_labels = appset["spec"]["template"]["spec"]["syncPolicy"]["managedNamespaceMetadata"]
    for rule in (write_rule, read_rule):
        wanted = rule["from"][0]["namespaceSelector"]["matchLabels"]
        assert wanted.items() <= ns_labels["labels"].items()

    # The predictors' logger posts to the write port.
    sdep = kind("manifests/base/seldondeployment.yaml", "SeldonDeployment")
    for predictor in sdep["spec"]["predictors"]:
        assert urlsplit(predictor["graph"]["logger"]["url"]).port == write_port

    # Each job reads through the read port, with the token file the client looks for, from
    # the Secret the docs say to create, and carries the label the read rule admits.
    for component, template in job_pods().items():
        assert template["metadata"]["labels"]["app.kubernetes.io/component"] == component
        assert component in readers
        spec = template["spec"]
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert urlsplit(env["LOGSINK_URL"]).port == read_port
        token_file = env[READ_TOKEN_ENV]
        assert mounted_secret(spec, spec["containers"][0], token_file) == "mlgate-logsink-read"


def test_the_deployments_arguments_start_the_real_sink(tmp_path: Path) -> None:
    """The Deployment's args, with only the paths and ports moved to this machine."""
    _, container = sink_container()
    args = list(container["args"])
    read, _ = tokens(tmp_path / "tokens")
    for name, value in (
        ("--port", "0"),
        ("--read-port", "0"),
        ("--host", "127.0.0.1"),
        ("--folder", str(tmp_path / "log")),
        ("--read-token-file", str(read)),
    ):
        args[args.index(name) + 1] = value
    log = tmp_path / "sink.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from mlgate.cli import main; main()", *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        for _ in range(600):
            if "read http://" in log.read_text() or proc.poll() is not None:
                break
            time.sleep(0.05)
        text = log.read_text()
        assert "network policy only" in text, text
        read_url = text.split("read http://")[1].split()[0]
        r = requests.get(f"http://{read_url}/requests/x", headers=READ, timeout=30)
        assert r.status_code == 404  # up, and the read token from the file is the one it wants
        assert requests.get(f"http://{read_url}/requests/x", timeout=30).status_code == 401
    finally:
        proc.terminate()
        proc.wait()
