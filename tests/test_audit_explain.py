"""`mlgate audit explain` on decisions a real model server made and a real request-log sink
stored: recomputed from the registered model and shown to match; a tampered record (PD or
features) refused; an unknown application exit 2; the adverse-action notice lists a declined
applicant's principal reasons and none for an approved one.

Set-up (once per module): the session's registered model in the model server's runtime
(`serving.runtime`, what Seldon runs; in process) at cut-off 0.15, a GitOps remote whose main
runs that version in prod at cut-off 0.15, two applications (one the model declines, one it
approves) sent with their row key and point-in-time features, and one sent with only its
applicant key and own fields (the runtime looks the rest up in Feast); each request and
response stored as the sink stores Seldon's CloudEvents.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlserver.settings import ModelParameters, ModelSettings
from mlserver.types import InferenceRequest

from mlgate.audit.explain import TOLERANCE, NotReproduced, explain_application
from mlgate.audit.notice import principal_reasons
from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError, ConfigError
from mlgate.features.training_set import application_features
from mlgate.packaging.model_artifact import export_model
from mlgate.serving import client
from mlgate.serving.logsink import LogStore, parse_event
from mlgate.serving.runtime import CUTOFF_ENV, CreditRiskRuntime
from mlgate.serving.server import serving_ranges
from mlgate.training.explain import recorded_dataset
from mlgate.training.model_config import DEFAULT_MODEL_CONFIG, load_model_config
from mlgate.training.reason_codes import ReasonCode
from mlgate.training.registry import load_scorer
from tests.inventory_helpers import gitops_remote, promote, run_cli
from tests.logsink_helpers import headers

CUTOFF = 0.15


@dataclass(frozen=True)
class Logged:
    settings: PlatformSettings
    log: Path
    model: str
    version: str
    declined: str  # application ids
    approved: str
    keyed: str  # logged with only its applicant key and own fields
    rows: pd.DataFrame  # the two applications with their point-in-time features
    env: dict[str, str]


def _runtime(settings: PlatformSettings, model: str, version: str) -> Any:
    """The model server's runtime (what Seldon runs), in process: the same load and predict
    as behind MLServer's HTTP front, without starting the server (about 35 s here)."""
    artifact = export_model(settings, model, version, settings.ws().root.parent / "explain-model")
    runtime = CreditRiskRuntime(
        ModelSettings(
            name=model,
            implementation=CreditRiskRuntime,
            parameters=ModelParameters(
                uri=str(artifact),
                version=version,
                extra={"ranges": serving_ranges(settings, model, version)},
            ),
        )
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CUTOFF_ENV, str(CUTOFF))  # as the overlay sets it
        asyncio.run(runtime.load())
    return runtime


def _rest_json(answer: Any) -> dict[str, Any]:
    """The response body as MLServer's REST front writes it (BYTES outputs as text)."""
    return json.loads(answer.model_dump_json(exclude_none=True))


@pytest.fixture(scope="module")
def logged(serving_world: Any, tmp_path_factory: pytest.TempPathFactory) -> Logged:
    w = serving_world
    root = tmp_path_factory.mktemp("explain")
    bare, work = gitops_remote(root / "git")
    promote(work, model=w.model, env="prod", version=w.version, cutoff=str(CUTOFF),
            when=datetime.now(UTC) - timedelta(hours=1))  # fmt: skip
    settings = w.settings.model_copy(
        update={"gitops": w.settings.gitops.model_copy(update={"remote": str(bare)})}
    )
    ds = recorded_dataset(settings, w.run_id)
    apps = application_features(settings, ds).tail(400).reset_index(drop=True)
    scorer = load_scorer(settings, w.model, w.version)
    pds = scorer.predict_pd(apps)
    declined = apps[pds >= CUTOFF + 0.02].head(1)
    approved = apps[pds < CUTOFF - 0.05].head(1)
    assert len(declined) == 1 and len(approved) == 1
    keyed = apps[~apps[ds.row_key].isin([*declined[ds.row_key], *approved[ds.row_key]])].tail(1)
    rows = pd.concat([declined, approved], ignore_index=True)
    env = {
        "MLGATE_WORKSPACE": str(settings.ws().root),
        "MLGATE_MLFLOW__TRACKING_URI": settings.mlflow_tracking_uri(),
        "MLGATE_GITOPS__REMOTE": str(bare),
    }
    bodies = [
        client.v2_request(row.to_frame().T[[ds.row_key, *w.features]].infer_objects())
        for _, row in rows.iterrows()
    ]
    # The applicant key and the application's own fields only: the runtime looks the rest up
    # in Feast's online store (as of the serving world's `at`, as a replay would).
    own = keyed[[ds.row_key, ds.entity_key, *w.own_fields]].reset_index(drop=True)
    bodies.append(client.v2_request(own, as_of=w.at.isoformat()))
    store = LogStore(root / "request-log")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():  # the runtime reads the platform settings from its environment
            mp.setenv(k, v)
        runtime = _runtime(settings, w.model, w.version)
        for i, body in enumerate(bodies):
            answer = asyncio.run(runtime.predict(InferenceRequest.model_validate(body)))
            for kind, payload in (("request", body), ("response", _rest_json(answer))):
                ev = parse_event(headers(kind, f"req-{i}"), json.dumps(payload).encode())
                assert store.append(ev)
    store.close()
    return Logged(settings, root / "request-log", w.model, w.version,
                  str(declined[ds.row_key].iloc[0]), str(approved[ds.row_key].iloc[0]),
                  str(keyed[ds.row_key].iloc[0]), rows, env)  # fmt: skip


def _cli(logged: Logged, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    for k, v in logged.env.items():
        monkeypatch.setenv(k, v)
    return run_cli("audit", "explain", *args)


def _tampered(logged: Logged, tmp_path: Path, kind: str, edit: Any) -> Path:
    """A copy of the log whose `kind` line of the declined application's request is edited."""
    copy = tmp_path / "log"
    shutil.copytree(logged.log, copy)
    (path,) = copy.glob("*/*/*.jsonl")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    for ev in lines:
        if ev["kind"] == kind and ev["request_id"] == "req-0":
            edit(ev["body"])
    path.write_text("".join(json.dumps(ev) + "\n" for ev in lines))
    return copy


@pytest.mark.slow
def test_explain_reproduces_a_logged_decline_and_gives_the_notice(logged: Logged) -> None:
    res = explain_application(logged.settings, logged.declined, log=logged.log)
    assert res.source == "request-log" and res.reproduced is True
    assert (res.model, res.version, res.env, res.decision) == (
        logged.model, logged.version, "prod", "decline")  # fmt: skip
    assert res.cutoff == CUTOFF and "release.yaml of credit_risk/prod" in res.cutoff_from
    assert res.logged is not None and res.logged.request_id == "req-0"
    assert res.logged.decision == "decline" and res.logged.pd is not None
    assert res.pd_difference is not None and res.pd_difference <= TOLERANCE
    # The recomputation is the registered model's, on the features the server was sent.
    offline = load_scorer(logged.settings, logged.model, logged.version)
    assert abs(float(offline.predict_pd(logged.rows.head(1))[0]) - res.logged.pd) <= 1e-12
    assert res.features_from.startswith("the request log")
    assert res.features["annual_income"] == pytest.approx(logged.rows["annual_income"].iloc[0])
    # Principal reasons: the reason codes, in plain words from the model config, in order.
    wording = load_model_config(DEFAULT_MODEL_CONFIG).reason_codes.plain_language
    assert res.reason_codes and res.principal_reasons == list(
        dict.fromkeys(wording[c.feature] for c in res.reason_codes)
    )
    assert res.notice is not None and logged.declined in res.notice
    for reason in res.principal_reasons:
        assert reason in res.notice
    assert "_" not in "".join(res.principal_reasons)  # no column names in a customer letter


@pytest.mark.slow
def test_an_approved_applicant_gets_no_notice(
    logged: Logged, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = _cli(logged, monkeypatch, "--application-id", logged.approved, "--log",
                        str(logged.log), "--json")  # fmt: skip
    assert code == 0, output
    res = json.loads(output)
    assert res["decision"] == "approve" and res["reproduced"] is True
    assert res["logged"]["decision"] == "approve"
    assert res["principal_reasons"] == [] and res["notice"] is None
    # The text form says it matched, with the tolerance.
    code, text = _cli(logged, monkeypatch, "--application-id", logged.declined, "--log",
                      str(logged.log))  # fmt: skip
    assert code == 0 and "reproduced: logged PD" in text and "NOTICE OF ACTION TAKEN" in text


@pytest.mark.slow
def test_features_the_server_looked_up_are_rebuilt_as_of_the_lookup(logged: Logged) -> None:
    res = explain_application(logged.settings, logged.keyed, log=logged.log)
    assert res.reproduced is True and res.pd_difference is not None
    assert res.pd_difference <= TOLERANCE
    assert res.logged is not None and "annual_income" not in res.logged.features_sent
    assert "Feast point-in-time as of" in res.features_from
    assert res.features["annual_income"] is not None


@pytest.mark.slow
def test_a_record_with_a_changed_pd_is_refused(
    logged: Logged, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def lower_pd(body: dict[str, Any]) -> None:
        out = next(o for o in body["outputs"] if o["name"] == "pd")
        out["data"] = [out["data"][0] - 0.01]

    log = _tampered(logged, tmp_path, "response", lower_pd)
    original = explain_application(logged.settings, logged.declined, log=logged.log)
    code, output = _cli(logged, monkeypatch, "--application-id", logged.declined, "--log",
                        str(log))  # fmt: skip
    assert code == 1, output
    assert f"application {logged.declined}" in output and "does not reproduce" in output
    assert repr(original.pd) in output  # the recomputed PD
    assert repr(original.pd - 0.01) in output  # the logged (tampered) PD


@pytest.mark.slow
def test_a_record_with_changed_features_is_refused(logged: Logged, tmp_path: Path) -> None:
    def richer(body: dict[str, Any]) -> None:
        inp = next(i for i in body["inputs"] if i["name"] == "annual_income")
        inp["data"] = [inp["data"][0] * 3]

    log = _tampered(logged, tmp_path, "request", richer)
    with pytest.raises(NotReproduced) as err:
        explain_application(logged.settings, logged.declined, log=log)
    text = str(err.value)
    assert logged.declined in text and "logged PD" in text and "recomputed PD" in text
    assert err.value.exit_code == 1


@pytest.mark.slow
def test_an_unknown_application_is_exit_2_naming_it(
    logged: Logged, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = _cli(logged, monkeypatch, "--application-id", "no-such-application",
                        "--log", str(logged.log))  # fmt: skip
    assert code == 2, output
    assert "'no-such-application'" in output and "not in the data source" in output


@pytest.mark.slow
def test_an_application_only_in_the_data_source_is_explained(
    logged: Logged, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not logged: its point-in-time features from the data source, scored by the version and
    at the cut-off named (git's main ran nothing in prod at the application's time)."""
    for k, v in logged.env.items():  # the dataset's {workspace} is the user's workspace
        monkeypatch.setenv(k, v)
    empty = tmp_path / "empty-log"
    empty.mkdir()
    app_id = logged.declined
    res = explain_application(
        logged.settings, app_id, log=empty, version=logged.version, cutoff=CUTOFF
    )
    assert res.source == "data-source" and res.logged is None and res.reproduced is None
    assert res.features_from.startswith("Feast point-in-time")
    from_log = explain_application(logged.settings, app_id, log=logged.log)
    assert res.pd == pytest.approx(from_log.pd, abs=1e-12)
    assert res.decision == "decline" and res.principal_reasons == from_log.principal_reasons
    with pytest.raises(BadInputError, match="ran no credit_risk in prod"):
        explain_application(logged.settings, app_id, log=empty)


def _code(feature: str, code: str) -> ReasonCode:
    return ReasonCode(feature=feature, value=1.0, reference=0.0, contribution=0.5, code=code,
                      description="")  # fmt: skip


def test_the_notice_wording_is_the_configs_and_a_missing_one_is_named() -> None:
    wording = {"payment_score": "Payment history", "loan_purpose=cash": "Purpose: cash"}
    codes = [
        _code("loan_purpose", "loan_purpose=cash"),
        _code("payment_score", "payment_score:lower"),
    ]
    assert principal_reasons("decline", codes, wording, "m.yaml") == [
        "Purpose: cash", "Payment history"]  # fmt: skip
    assert principal_reasons("approve", codes, wording, "m.yaml") == []
    assert principal_reasons("refer", codes, wording, "m.yaml") == []
    with pytest.raises(ConfigError, match=r"m.yaml: reason_codes.plain_language: .*'dti:higher'"):
        principal_reasons("decline", [_code("dti", "dti:higher")], wording, "m.yaml")


def test_an_application_id_that_would_change_a_record_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, output = run_cli("audit", "explain", "--application-id", "a-1\nModel: other")
    assert code == 2 and "--application-id" in output
