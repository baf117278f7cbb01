"""The credit-risk runtime in a real local MLServer process, against offline scoring."""

from __future__ import annotations

import json

import numpy as np
import pytest
import requests
from typer.testing import CliRunner

from mlgate.cli import app
from mlgate.serving import client
from mlgate.serving.server import serving

pytestmark = pytest.mark.slow


def _offline_scorer(world):  # type: ignore[no-untyped-def]
    from mlgate.training.registry import load_scorer

    return load_scorer(world.settings, world.model, world.version)


def test_server_scores_equal_offline_and_serving_equals_training(serving_env) -> None:
    w = serving_env
    scorer = _offline_scorer(w)
    offline_pd = scorer.predict_pd(w.offline)
    offline_codes = scorer.reason_codes(w.offline, top_k=4)
    key = "applicant_id"
    at = w.at.isoformat()
    with serving(w.settings, w.model, "challenger", cutoff=0.2) as srv:
        assert srv.version == w.version
        full = client.infer(srv.url, w.model, w.offline[w.features])
        # key + the application's own fields: the server looks the rest up online as of `at`.
        keyed = client.infer(
            srv.url, w.model, w.offline[[key, *w.own_fields]], as_of=at, timeout=120
        )
        bad = requests.post(
            f"{srv.url}/v2/models/{w.model}/infer",
            json=client.v2_request(w.offline[w.own_fields]),
            timeout=10,
        )
        # `mlgate score`: lookup in the caller + infer.
        row = w.offline.iloc[0]
        fields = {f: (row[f].item() if hasattr(row[f], "item") else row[f]) for f in w.own_fields}
        res = CliRunner().invoke(
            app,
            ["score", "--model", w.model, "--applicant-id", str(row[key]), "--url", srv.url,
             "--application", json.dumps(fields), "--at", at, "--json"],
        )  # fmt: skip
    assert np.allclose([s.pd for s in full], offline_pd, rtol=0, atol=1e-12)
    # Training/serving consistency: online lookup + server == offline training-set row + model.
    assert np.allclose([s.pd for s in keyed], offline_pd, rtol=0, atol=1e-12)
    assert [s.decision for s in full] == ["decline" if p >= 0.2 else "approve" for p in offline_pd]
    assert {s.model_version for s in full} == {w.version}
    assert [[r["code"] for r in s.reason_codes] for s in keyed] == [
        [r.code for r in row] for row in offline_codes
    ]
    assert all(len(s.reason_codes) == 4 for s in full)
    assert bad.status_code == 400 and "lacks features" in bad.text
    assert res.exit_code == 0, res.output
    scored = json.loads(res.stdout)
    assert scored["pd"] == pytest.approx(offline_pd[0], abs=1e-12)
    assert scored["model_version"] == w.version
