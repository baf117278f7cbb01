"""The manifests and the model-server runtime agree on how the cut-off reaches the server.

The runtime refuses to load without its cut-off variable (credit policy is not baked into the
image); every predictor the overlays render must therefore set it, to the overlay's value.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlgate.gitops.kubectl import kustomize
from mlgate.serving.runtime import CUTOFF_ENV

REPO = Path(__file__).resolve().parents[1]
OVERLAYS = sorted((REPO / "manifests" / "models").glob("*/*/kustomization.yaml"))


@pytest.mark.parametrize(
    "overlay", [p.parent for p in OVERLAYS], ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_every_predictor_gets_the_overlays_cutoff(overlay: Path) -> None:
    release = yaml.safe_load((overlay / "release.yaml").read_text())
    cutoff = release["data"]["cutoff"]
    rendered = kustomize(overlay)
    sdeps = [d for d in yaml.safe_load_all(rendered) if d and d.get("kind") == "SeldonDeployment"]
    assert len(sdeps) == 1
    predictors = sdeps[0]["spec"]["predictors"]
    assert predictors
    for pred in predictors:
        graph_name = pred["graph"]["name"]
        (container,) = [
            c for c in pred["componentSpecs"][0]["spec"]["containers"] if c["name"] == graph_name
        ]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert env.get(CUTOFF_ENV) == cutoff, (pred["name"], env)
