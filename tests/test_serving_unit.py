"""Serving pieces that need no server: cut-off policy, request encoding, input parsing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlgate.errors import BadInputError
from mlgate.serving import client
from mlgate.serving.runtime import decide, read_cutoff
from mlgate.serving.server import model_repository, parse_application


@pytest.mark.parametrize("raw", [None, "", "abc", "0", "1", "1.5", "-0.1"])
def test_cutoff_must_come_from_the_environment_and_be_a_probability(raw) -> None:
    env = {} if raw is None else {"MLGATE_CUTOFF": raw}
    with pytest.raises(RuntimeError, match="MLGATE_CUTOFF"):
        read_cutoff(env)


def test_decision_declines_at_and_above_the_cutoff() -> None:
    assert read_cutoff({"MLGATE_CUTOFF": " 0.15 "}) == 0.15
    assert decide(np.array([0.1499, 0.15, 0.9]), 0.15) == ["approve", "decline", "decline"]
    assert decide(np.array([np.nan]), 0.15) == ["refer"]  # NaN >= cut-off is False: not approve


def test_v2_request_encodes_one_typed_input_per_column() -> None:
    df = pd.DataFrame({"n": [1, 2], "x": [0.5, np.nan], "purpose": ["car", None]})
    req = client.v2_request(df, as_of="2026-01-01T00:00:00")
    assert req["parameters"] == {"content_type": "pd", "as_of": "2026-01-01T00:00:00"}
    by = {i["name"]: i for i in req["inputs"]}
    assert by["n"]["datatype"] == "INT64" and by["n"]["data"] == [1, 2]
    assert by["x"]["datatype"] == "FP64" and by["x"]["data"] == [0.5, None]
    assert by["purpose"]["datatype"] == "BYTES"
    assert by["purpose"]["parameters"] == {"content_type": "str"}
    assert all(i["shape"] == [2, 1] for i in req["inputs"])


def test_parse_response_needs_all_four_outputs() -> None:
    body = {
        "outputs": [
            {"name": "pd", "data": [0.3]},
            {"name": "decision", "data": ["decline"]},
            {"name": "reason_codes", "data": [json.dumps([{"code": "dti"}])]},
            {"name": "model_version", "data": ["3"]},
        ]
    }
    [s] = client.parse_response(body)
    assert (s.pd, s.decision, s.reason_codes, s.model_version) == (
        0.3,
        "decline",
        [{"code": "dti"}],
        "3",
    )
    body["outputs"] = body["outputs"][:2]
    with pytest.raises(Exception, match="reason_codes"):
        client.parse_response(body)


def test_application_is_a_json_object(tmp_path) -> None:
    assert parse_application('{"amount": 5000}') == {"amount": 5000}
    f = tmp_path / "app.json"
    f.write_text('{"term": 36}')
    assert parse_application(f"@{f}") == {"term": 36}
    for bad in ("[1]", "{nope", f"@{tmp_path / 'missing.json'}"):
        with pytest.raises(BadInputError):
            parse_application(bad)


def test_model_repository_without_server_settings_leaves_ports_to_the_environment(tmp_path) -> None:
    model_repository(
        tmp_path, model="credit_risk", version="7", model_uri="/opt/mlgate/model",
        ranges={"payment_score": {"min": 0.0, "max": 100.0}},
    )  # fmt: skip
    assert not (tmp_path / "settings.json").exists()
    ms = json.loads((tmp_path / "credit_risk" / "model-settings.json").read_text())
    assert ms["implementation"] == "mlgate.serving.runtime.CreditRiskRuntime"
    assert ms["parameters"]["uri"] == "/opt/mlgate/model"
    assert ms["parameters"]["extra"]["model_version"] == "7"
    # the serving contract's ranges travel with the model settings (the runtime needs them)
    assert ms["parameters"]["extra"]["ranges"] == {"payment_score": {"min": 0.0, "max": 100.0}}
