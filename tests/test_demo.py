"""`mlgate demo --fast`: the whole lifecycle on the embedded default, as a user runs it.

One end-to-end run through the real console script; the assertions read the state each
capability leaves behind (world, registry, gate report, image record, git), not the console text,
so the test fails when a step stops doing its job even if it still prints.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlgate.gates.verdict import CANARY_CHECKS
from mlgate.serving.server import free_port

# The demo's own registry address: the embedded default (127.0.0.1:5555) may be served by
# another workspace's registry (a parallel test, a user's demo), which `registry up` would
# reuse and its owner stop under this demo.
REGISTRY = f"127.0.0.1:{free_port()}"

# The fast demo runs in the module fixture: its own budget, not the global 900 s per test.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    ws = tmp_path_factory.mktemp("demo") / "ws"
    env = {**os.environ, "MLGATE_WORKSPACE": str(ws), "MLGATE_REGISTRY__ADDRESS": REGISTRY,
           "COLUMNS": "160"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "mlgate.cli", "demo", "--fast"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1500,
        check=False,
    )
    return ws, proc


def _mlgate(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLGATE_WORKSPACE": str(ws), "MLGATE_REGISTRY__ADDRESS": REGISTRY}
    return subprocess.run(
        [sys.executable, "-m", "mlgate.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_demo_completes(demo_run) -> None:
    ws, proc = demo_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "demo complete" in proc.stderr + proc.stdout


def test_demo_leaves_a_valid_world(demo_run) -> None:
    ws, _ = demo_run
    manifest = json.loads((ws / "data" / "world" / "manifest.json").read_text())
    assert manifest["tables"]["applications"]["rows"] > 0
    proc = _mlgate(ws, "data", "validate", "--json")
    assert proc.returncode == 0, proc.stderr


def test_demo_registers_versions_with_lineage(demo_run, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlgate.config import load_settings
    from mlgate.training.registry import version_lineage

    ws, _ = demo_run
    monkeypatch.setenv("MLGATE_WORKSPACE", str(ws))
    lineage = version_lineage(load_settings(), "credit_risk", "1")
    assert lineage.run_id and lineage.data_fingerprint and lineage.feature_service


def test_demo_writes_a_gate_report(demo_run) -> None:
    ws, _ = demo_run
    reports = sorted((ws / "reports" / "gates").glob("*/report.json"))
    assert reports, "no gate report in the workspace"
    report = json.loads(reports[0].read_text())
    assert report["model"] == "credit_risk"
    assert report["overall"] in {"PASS", "FAIL", "INCONCLUSIVE"}
    assert {g["name"] for g in report["gates"]} >= {"performance", "calibration", "fairness"}
    assert (reports[0].parent / "report.html").is_file()


def test_demo_git_says_what_runs_where(demo_run) -> None:
    ws, _ = demo_run
    proc = _mlgate(ws, "status", "--json")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    (model,) = [m for m in status["models"] if m["model"] == "credit_risk"]
    assert set(model["envs"]) == {"dev", "stage", "prod"}
    prod = model["envs"]["prod"]
    assert prod["stable_version"] and prod["stable_image"].count("@sha256:") == 1
    # The demo rolls a canary back: that version is quarantined and not what prod runs.
    quarantined = {q["version"] for q in model["quarantined"]}
    assert quarantined and prod["stable_version"] not in quarantined


def test_demo_builds_the_image_of_every_version_it_promotes(demo_run) -> None:
    """Each version git pins anywhere is pinned by its own model-server image: a build record
    with an SBOM, as `mlgate image build` writes (not a placeholder pushed to fill the pin)."""
    ws, _ = demo_run
    status = json.loads(_mlgate(ws, "status", "--json").stdout)
    (model,) = [m for m in status["models"] if m["model"] == "credit_risk"]
    records = {p.stem: json.loads(p.read_text()) for p in (ws / "images" / "credit_risk").glob("*.json")}  # fmt: skip
    pinned = {e["stable_version"] for e in model["envs"].values() if e.get("stable_version")}
    assert len(records) >= 3 and pinned <= set(records)  # v1, the retrain, the biased candidate
    for version, rec in records.items():
        assert rec["sbom_digest"].startswith("sha256:"), (version, rec)
        assert rec["labels"]["io.mlgate.model.version"] == version, rec["labels"]


def test_demo_manifests_validate(demo_run) -> None:
    ws, _ = demo_run
    # the demo's own GitOps repository: seeded with the embedded default's values, no
    # placeholder left (the project's tree is the template: `--template`)
    proc = _mlgate(ws, "manifests", "validate", "--gitops", "--json")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_demo_canary_analysis_judged_served_traffic(demo_run) -> None:
    """Chapter 4 served prod as git declared it (stable + canary servers, router, sink),
    replayed applications through the router in two looks and analysed what the sink logged
    after each: the second look read more requests than the first, both versions answered."""
    ws, _ = demo_run
    looks = sorted((ws / "reports" / "canary").glob("credit_risk-prod-look*/report.json"))
    assert len(looks) == 2, looks
    first, last = (json.loads(p.read_text()) for p in looks)
    checks = {g["name"]: g for g in last["gates"]}
    assert set(checks) == set(CANARY_CHECKS)  # every check the canary phase holds
    assert last["champion"] != last["challenger"]
    assert 0 < first["data"]["requests"] < last["data"]["requests"]
    assert 0 < last["data"]["canary_requests"] < last["data"]["requests"]
    assert last["data"]["requests_file"].startswith("http://127.0.0.1:")  # the sink, not a file
    assert last["data"]["requests_without_full_features"] == 0
    # Early outcomes were joined from the data source by row key (the log has none).
    early = checks["early_delinquency"]
    assert early["metrics"]["n"] > 0 and early["metrics"]["n_stable"] > 0, early
    assert not early["summary"].startswith("no early outcomes"), early
    # what the router logged is in the sink's store, kept in the workspace
    assert any((ws / "serve" / "credit_risk-prod" / "requests").rglob("*.jsonl*"))
    # The demo ends with the canary aborted: analysing now is bad input, exit 2.
    proc = _mlgate(ws, "canary", "analyze", "--model", "credit_risk",
                   "--requests", str(looks[-1]))  # fmt: skip
    assert proc.returncode == 2 and "no canary" in proc.stderr + proc.stdout


def test_demo_leaves_no_process_behind(demo_run) -> None:
    """Every process the demo started (model servers, router, sink, registry) is gone: none
    alive still carries the demo's workspace in its environment."""
    ws, _ = demo_run
    mine = f"MLGATE_WORKSPACE={ws}".encode()
    alive = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if mine in env and b"pytest" not in cmd:
            alive.append(f"{proc.name}: {cmd.decode(errors='replace')[:200]}")
    assert alive == []


def test_demo_tells_chapters_and_keeps_the_full_log(demo_run) -> None:
    ws, proc = demo_run
    out = proc.stdout + proc.stderr
    positions = [out.index(f"Chapter {n}.") for n in range(1, 6)]
    assert positions == sorted(positions)
    log = ws / "demo" / "demo.log"
    assert f"full log: {log}" in out.replace("\n", "")
    text = log.read_text()
    # the log has the details the terminal leaves out: every gate of every report
    assert "performance" in text and "early_delinquency" in text and "Chapter 5." in text
    assert "\x1b[" not in text  # no terminal control characters


def test_demo_page_renders_in_chromium_valid_and_self_contained(demo_run, tmp_path: Path) -> None:
    """The story's page: HTML Tidy finds nothing, nothing is fetched from elsewhere, and
    headless Chromium (Debian's package) shows the timeline and one table per gate report."""
    from PIL import Image

    from tests.test_demo_page import external_references, tidy_errors

    ws, proc = demo_run
    page = ws / "demo" / "index.html"
    assert f"{page}" in (proc.stdout + proc.stderr).replace("\n", "")
    html = page.read_text()
    assert tidy_errors(page) == ""
    assert external_references(html) == []
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed: `make debs` (Debian package chromium)"
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    dom = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout  # fmt: skip
    reports = list((ws / "reports" / "gates").glob("*/report.json"))
    assert dom.count('class="gate-table"') == len(reports) > 0
    assert 'id="timeline-plot"' in dom and dom.count('class="timeline-table"') == 3
    assert dom.count("<circle") >= 9  # v1 x 3 envs, v2 x 3 + weight + promote, rollback, abort
    shot = tmp_path / "page.png"
    subprocess.run([*base, "--window-size=1280,2400", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    rgb = np.asarray(Image.open(shot).convert("RGB"))

    def count(color: tuple[int, int, int]) -> int:
        return int((rgb == np.array(color)).all(axis=-1).sum())

    # promotion markers of the timeline (#0969da) and the gate tables' header cells (#f6f8fa)
    assert count((9, 105, 218)) > 500
    assert count((246, 248, 250)) > 2000


def test_demo_ends_with_prod_lineage_and_a_clean_audit(demo_run) -> None:
    """Step 80 prints the lineage of prod and `audit verify`; re-run on what the demo left
    (git, MLflow, report and policy stores, and the registry every promoted image was pushed
    to), verify finds no gap and lineage names prod's stable version with verified evidence."""
    ws, proc = demo_run
    out = proc.stdout + proc.stderr
    assert "mlgate audit lineage --model credit_risk --env prod" in out
    assert "mlgate audit verify" in out
    status = json.loads(_mlgate(ws, "status", "--json").stdout)
    (model,) = [m for m in status["models"] if m["model"] == "credit_risk"]
    lineage = _mlgate(ws, "audit", "lineage", "--model", "credit_risk", "--env", "prod", "--json")
    assert lineage.returncode == 0, lineage.stdout[-2000:] + lineage.stderr[-2000:]
    stable = json.loads(lineage.stdout)["stable"]
    assert stable["version"] == model["envs"]["prod"]["stable_version"]
    assert stable["image"] == model["envs"]["prod"]["stable_image"]
    report = stable["entered"]["gate_report"]
    assert report is None or report["verified"], report
    # The fast demo stops its registry after each step: up for the image check, then down.
    up = _mlgate(ws, "registry", "up")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        verify = _mlgate(ws, "audit", "verify", "--json")
    finally:
        _mlgate(ws, "registry", "down")
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-2000:]
    result = json.loads(verify.stdout)
    assert result["gaps"] == [] and result["changes_checked"] > 0


def test_demo_runs_again_on_the_workspace_it_left(demo_run) -> None:
    """Safe to re-run (last in this module: it moves the state the tests above read). The
    second run's v1 enters a prod that runs the first run's version: it is promoted over it at
    once as a recorded override, so chapter 4 can start its own shadow and canary; the audit of
    the whole history is clean and nothing is left running."""
    ws, first = demo_run
    assert first.returncode == 0
    before = json.loads(_mlgate(ws, "status", "--json").stdout)
    env = {**os.environ, "MLGATE_WORKSPACE": str(ws), "MLGATE_REGISTRY__ADDRESS": REGISTRY,
           "COLUMNS": "160"}  # fmt: skip
    again = subprocess.run([sys.executable, "-m", "mlgate.cli", "demo", "--fast"],
                           capture_output=True, text=True, env=env, timeout=1500, check=False)  # fmt: skip
    out = " ".join((again.stdout + again.stderr).split())
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-5000:]
    prior = before["models"][0]["envs"]["prod"]["stable_version"]
    assert f"prod ran v{prior} of an earlier run" in out and "recorded override" in out
    after = json.loads(_mlgate(ws, "status", "--json").stdout)
    prod = after["models"][0]["envs"]["prod"]
    assert prod["stable_version"] != prior and not prod.get("canary_version")
    assert "mlgate audit verify" in out and "demo complete" in out
    test_demo_leaves_no_process_behind((ws, again))
