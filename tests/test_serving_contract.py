"""The serving contract: bad input is refused (or referred) at the door, never scored.

Unit tests on the pure contract module and the body-size middleware, then attacks performed
against the runtime in a real MLServer process (started as `mlgate serve` starts it).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
import yaml

from mlgate.data.dataset_config import ColumnRange
from mlgate.serving.bodylimit import BodyLimit
from mlgate.serving.contract import (
    ContractError,
    FeatureRules,
    ServingSettings,
    Tensor,
    check_datatypes,
    check_rows,
    feature_rules,
    known_categories,
    read_inputs,
)
from mlgate.training.pyfunc import decide

REPO = Path(__file__).resolve().parents[1]

RULES = FeatureRules(
    numeric={
        "annual_income": ColumnRange(min=0, min_exclusive=True, max=1e8),
        "payment_score": ColumnRange(min=0, max=100),
        "txn_count_30d": ColumnRange(),
    },
    categorical={"loan_purpose": ["car", "home"]},
)


def _cols(**over: list[Any]) -> dict[str, list[Any]]:
    base: dict[str, list[Any]] = {
        "annual_income": [50_000.0],
        "payment_score": [90],
        "txn_count_30d": [12.0],
        "loan_purpose": ["car"],
    }
    base.update(over)
    return base


def _issue(**over: list[Any]) -> Any:
    return check_rows(_cols(**over), RULES, 0.25).issues[0]


# --- rows ---------------------------------------------------------------------------------
def test_a_valid_row_passes_and_is_normalised_for_scoring() -> None:
    checked = check_rows(_cols(payment_score=[90], loan_purpose=[b"car"]), RULES, 0.25)
    assert checked.issues == [None]
    assert checked.columns["payment_score"] == [90.0]
    assert checked.columns["loan_purpose"] == ["car"]


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("annual_income", math.nan, "not a finite number"),
        ("annual_income", math.inf, "not a finite number"),
        ("txn_count_30d", -math.inf, "not a finite number"),  # no declared range: still finite
        ("txn_count_30d", 10**400, "not a finite number"),  # a JSON integer beyond a float
        ("annual_income", 1e308, "outside the range (0, 1e+08]"),
        ("payment_score", 1e308, "outside the range [0, 100]"),
        ("annual_income", 0.0, "outside the range (0, 1e+08]"),
        ("payment_score", True, "a boolean is not a number"),
        ("annual_income", np.bool_(False), "a boolean is not a number"),
        ("annual_income", "inf", "str 'inf' is not a number"),
        ("annual_income", "50000", "is not a number"),
        ("loan_purpose", 3, "int is not a category"),
    ],
)
def test_a_bad_value_makes_the_row_invalid_naming_the_field(field, value, why) -> None:
    issue = _issue(**{field: [value]})
    assert issue is not None and issue.kind == "invalid"
    assert issue.field == field and why in issue.reason, issue


def test_unseen_category_is_referred_and_an_invalid_value_outranks_it() -> None:
    issue = _issue(loan_purpose=["boat"])
    assert issue.kind == "refer" and issue.field == "loan_purpose" and "never seen" in issue.reason
    both = _issue(loan_purpose=["boat"], payment_score=[101])
    assert both.kind == "invalid" and both.field == "payment_score"


def test_rows_missing_more_than_the_share_are_invalid() -> None:
    all_missing = _cols(
        annual_income=[None], payment_score=[None], txn_count_30d=[None], loan_purpose=[""]
    )
    issue = check_rows(all_missing, RULES, 0.25).issues[0]
    assert issue.kind == "invalid" and "4 of 4 features are missing" in issue.reason
    one_missing = check_rows(_cols(txn_count_30d=[None]), RULES, 0.25)
    assert one_missing.issues == [None] and one_missing.columns["txn_count_30d"] == [None]
    assert check_rows(_cols(txn_count_30d=[None]), RULES, 0.2).issues[0] is not None


def test_each_row_is_judged_on_its_own() -> None:
    cols = {
        "annual_income": [50_000.0, 1e308, 60_000.0],
        "payment_score": [90, 95, 80],
        "txn_count_30d": [1.0, 2.0, 3.0],
        "loan_purpose": ["car", "home", "boat"],
    }
    issues = check_rows(cols, RULES, 0.25).issues
    assert issues[0] is None
    assert issues[1].row == 1 and issues[1].field == "annual_income"
    assert issues[2].kind == "refer"


def test_a_pd_that_is_not_a_probability_is_never_approved() -> None:
    assert decide([0.01, 0.2, math.nan, None, math.inf, -0.1], 0.15) == [
        "approve", "decline", "refer", "refer", "refer", "refer",
    ]  # fmt: skip


# --- request shape --------------------------------------------------------------------------
def _t(name: str, data: Any, shape: list[int] | None = None, datatype: str = "FP64") -> Tensor:
    return Tensor(name, datatype, shape if shape is not None else [len(data), 1], data)


def test_inputs_are_columns_of_one_length_and_shapes_match_the_data() -> None:
    cols, n = read_inputs([_t("a", [1.0, 2.0]), _t("b", [[3.0], [4.0]], [2, 1])], 10)
    assert n == 2 and cols == {"a": [1.0, 2.0], "b": [3.0, 4.0]}
    bad = {
        "differ in length": [_t("a", [1.0, 2.0]), _t("b", [3.0])],
        "says 3 value": [_t("a", [1.0, 2.0], [3, 1])],
        "not one column": [_t("a", [1.0, 2.0], [1, 2])],
        "appears twice": [_t("a", [1.0]), _t("a", [2.0])],
        "non-negative": [_t("a", [1.0], [-1])],
        "mixes nested": [_t("a", [[1.0], 2.0], [2, 1])],
        "more than one level": [_t("a", [[[1.0]]], [1, 1])],
        "holds objects": [_t("a", [{"x": 1}])],
        "no rows": [_t("a", [])],
    }
    for why, tensors in bad.items():
        with pytest.raises(ContractError, match=why) as exc:
            read_inputs(tensors, 10)
        assert exc.value.status == 400


def test_deep_nesting_is_refused_without_recursion() -> None:
    deep: Any = [1.0]
    for _ in range(5000):  # deeper than Python's recursion limit
        deep = [deep]
    with pytest.raises(ContractError, match="more than one level"):
        read_inputs([_t("a", deep, [1, 1])], 10)


def test_more_rows_than_the_limit_answer_413_before_the_data_is_read() -> None:
    with pytest.raises(ContractError, match="200000 rows exceed the limit of 10000") as exc:
        read_inputs([_t("a", [1.0], [200_000])], 10_000)  # the declared shape alone
    assert exc.value.status == 413
    with pytest.raises(ContractError, match="exceed the limit") as exc:
        read_inputs([_t("a", [0.0] * 11, [11])], 10)
    assert exc.value.status == 413


def test_numeric_features_must_be_sent_as_numbers_and_categories_as_bytes() -> None:
    check_datatypes([_t("annual_income", [1.0], datatype="INT64")], RULES)
    for tensor in (
        _t("annual_income", ["1"], datatype="BYTES"),
        _t("payment_score", [True], datatype="BOOL"),
        _t("loan_purpose", [1.0], datatype="FP64"),
    ):
        with pytest.raises(ContractError, match=tensor.name):
            check_datatypes([tensor], RULES)


def test_settings_have_safe_defaults_and_come_from_the_environment(monkeypatch) -> None:
    s = ServingSettings()
    assert (s.max_rows, s.max_body_bytes, s.on_invalid) == (10_000, 8 * 2**20, "reject")
    monkeypatch.setenv("MLGATE_SERVING_MAX_ROWS", "50")
    monkeypatch.setenv("MLGATE_SERVING_ON_INVALID", "refer")
    assert ServingSettings().max_rows == 50 and ServingSettings().on_invalid == "refer"
    monkeypatch.setenv("MLGATE_SERVING_ON_INVALID", "approve")
    with pytest.raises(ValueError, match="on_invalid"):
        ServingSettings()


@pytest.mark.parametrize("algorithm", ["logistic_regression", "hist_gradient_boosting"])
def test_known_categories_come_from_the_fitted_encoder(algorithm: str) -> None:
    from mlgate.training.model_config import ModelConfig
    from mlgate.training.pipeline import fit_pd_model

    rng = np.random.default_rng(1)
    n = 400
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "purpose": rng.choice(np.array(["car", "home", None], dtype=object), n),
        }
    )
    y = (rng.uniform(size=n) < 0.3).astype(int)
    cfg = ModelConfig.model_validate({"name": "m", "dataset": "d.yaml", "algorithm": algorithm})
    model = fit_pd_model(cfg, ["x"], ["purpose"], df[:300], y[:300], df[300:], y[300:])
    assert known_categories(model) == {"purpose": ["car", "home"]}
    rules = feature_rules(model, {"x": ColumnRange(max=5)})
    assert rules.numeric == {"x": ColumnRange(max=5)} and rules.features == ["x", "purpose"]


# --- body size at the REST layer ---------------------------------------------------------
def _asgi(limit: int, chunks: list[bytes], headers: dict[str, str]) -> tuple[int, bytes, bytes]:
    """Run BodyLimit around an app that echoes the body it received; (status, body, seen)."""
    seen: list[bytes] = []

    async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        body = b""
        while True:
            m = await receive()
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        seen.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    incoming = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(m: dict[str, Any]) -> None:
        sent.append(m)

    scope = {"type": "http", "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(BodyLimit(app, limit)(scope, receive, send))
    status = sent[0]["status"]
    return status, b"".join(m.get("body", b"") for m in sent[1:]), b"".join(seen)


def test_body_limit_refuses_oversized_and_compressed_bodies_before_the_app_reads_them() -> None:
    assert _asgi(10, [b"12345", b"67890"], {"content-length": "10"}) == (200, b"ok", b"1234567890")
    status, body, seen = _asgi(10, [b"x" * 11], {"content-length": "11"})
    assert status == 413 and b"exceeds the limit of 10 bytes" in body and seen == b""
    status, _, seen = _asgi(10, [b"123456", b"789012"], {})  # chunked: counted while read
    assert status == 413 and seen == b""
    status, _, seen = _asgi(10, [b"x"], {"content-length": "oops"})
    assert status == 400 and seen == b""
    status, body, seen = _asgi(10**6, [gzip.compress(b"0" * 10**5)], {"content-encoding": "gzip"})
    assert status == 415 and b"uncompressed" in body and seen == b""


# --- through the real runtime in MLServer ---------------------------------------------------
def _smoke_request() -> dict[str, Any]:
    """The PostSync hook's request body, from the rendered dev overlay (not a copy)."""
    from mlgate.gitops.kubectl import kustomize

    rendered = kustomize(REPO / "manifests" / "models" / "credit_risk" / "dev")
    (cm,) = [
        d
        for d in yaml.safe_load_all(rendered)
        if d and d.get("kind") == "ConfigMap" and "smoke.py" in (d.get("data") or {})
    ]
    assert "/scripts/request.json" in cm["data"]["smoke.py"]  # what the hook sends
    return json.loads(cm["data"]["request.json"])


def _with(body: dict[str, Any], name: str, data: list[Any], **extra: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(body))
    for inp in out["inputs"]:
        if inp["name"] == name:
            inp["data"] = data
            inp.update(extra)
    return out


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _batch(body: dict[str, Any], n: int) -> dict[str, Any]:
    out = json.loads(json.dumps(body))
    for inp in out["inputs"]:
        inp["data"] = inp["data"] * n
        inp["shape"] = [n]
    return out


def _grpc_infer(port: int, model: str, body: dict[str, Any], override: dict[str, Any]) -> str:
    """Send `body` over gRPC (MLServer's own stubs) with some values replaced: the decision,
    or the error. gRPC carries IEEE doubles, so NaN and inf arrive as such."""
    import grpc
    from mlserver.grpc import dataplane_pb2 as pb
    from mlserver.grpc.dataplane_pb2_grpc import GRPCInferenceServiceStub

    req = pb.ModelInferRequest(model_name=model)
    req.parameters["content_type"].string_param = "pd"
    for inp in body["inputs"]:
        value = override.get(inp["name"], inp["data"][0])
        t = req.inputs.add(name=inp["name"], datatype=inp["datatype"], shape=[1, 1])
        if inp["datatype"] == "BYTES":
            t.contents.bytes_contents.append(str(value).encode())
            t.parameters["content_type"].string_param = "str"
        else:
            t.contents.fp64_contents.append(float(value))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            res = GRPCInferenceServiceStub(channel).ModelInfer(req, timeout=30)
        except grpc.RpcError as exc:
            return f"error {exc.code().name}: {exc.details()}"
    (decision,) = [o for o in res.outputs if o.name == "decision"]
    raw = decision.contents.bytes_contents or res.raw_output_contents
    return raw[0].decode() if raw else ""


@pytest.mark.slow
def test_the_runtime_refuses_bad_input_and_answers_the_smoke_test(serving_env) -> None:
    from mlgate.serving.server import serving

    w = serving_env
    smoke = _smoke_request()
    assert {i["name"] for i in smoke["inputs"]} == set(w.features)
    with serving(w.settings, w.model, "challenger", cutoff=0.15) as srv:
        url = f"{srv.url}/v2/models/{w.model}/infer"

        def post(body: Any, **kw: Any) -> requests.Response:
            return requests.post(url, json=body, timeout=60, **kw)

        ok = post(smoke)
        attacks = {
            "income 1e308": post(_with(smoke, "annual_income", [1e308])),
            "payment score 1e308": post(_with(smoke, "payment_score", [1e308])),
            "boolean": post(_with(smoke, "num_open_accounts", [True])),
            "string inf": post(_with(smoke, "annual_income", ["inf"], datatype="BYTES")),
            "string NaN as FP64": post(_with(smoke, "txn_count_30d", ["NaN"])),
            "different lengths": post(_with(smoke, "loan_amount", [1000.0, 2000.0], shape=[2])),
            "shape disagrees": post(_with(smoke, "loan_amount", [1000.0], shape=[3])),
            "all missing": post(
                {**smoke, "inputs": [{**i, "data": [None]} for i in smoke["inputs"]]}
            ),
        }
        # A JSON number beyond a double (inf): MLServer's parser refuses it before the runtime.
        inf_body = json.dumps(smoke).replace('"data": [58000.0]', '"data": [1e999]')
        assert "1e999" in inf_body
        inf = requests.post(url, data=inf_body, timeout=10,
                            headers={"Content-Type": "application/json"})  # fmt: skip
        unseen = post(_with(smoke, "loan_purpose", ["boat"]))
        zipped = requests.post(url, data=gzip.compress(json.dumps(smoke).encode()), timeout=10,
                               headers={"Content-Type": "application/json",
                                        "Content-Encoding": "gzip"})  # fmt: skip
        grpc_port = json.loads((Path(srv.repository) / "settings.json").read_text())["grpc_port"]
        over_grpc = {
            name: _grpc_infer(grpc_port, w.model, smoke, value)
            for name, value in (("valid", {}), ("nan", {"annual_income": math.nan}),
                                ("inf", {"payment_score": math.inf}),
                                ("unseen", {"loan_purpose": "boat"}))
        }  # fmt: skip
        rss_before = _rss_mb(srv.pid)
        big = _batch(smoke, 200_000)
        huge = post(big)
        rss_after_huge = _rss_mb(srv.pid)
        over_rows = post(_batch(smoke, 10_001))  # under the body cap, over the row cap
        capped = post(_batch(smoke, 10_000))
        rss_after_capped = _rss_mb(srv.pid)
    assert ok.status_code == 200, ok.text
    answer = {o["name"]: o["data"] for o in ok.json()["outputs"]}
    assert answer["decision"][0] in ("approve", "decline") and 0 < answer["pd"][0] < 1
    assert answer["refer_reason"] == [""]
    fields = {
        "income 1e308": "annual_income",
        "payment score 1e308": "payment_score",
        "boolean": "num_open_accounts",
        "string inf": "annual_income",
        "string NaN as FP64": "txn_count_30d",
        "different lengths": "loan_amount",
        "shape disagrees": "loan_amount",
        "all missing": "features are missing",
    }
    for name, r in attacks.items():
        assert r.status_code == 400, (name, r.status_code, r.text)
        assert fields[name] in r.text, (name, r.text)
        assert '"pd"' not in r.text
    assert 400 <= inf.status_code < 500, inf.text
    assert '"outputs"' not in inf.text  # never scored
    assert unseen.status_code == 200
    u = {o["name"]: o["data"] for o in unseen.json()["outputs"]}
    assert u["decision"] == ["refer"] and u["pd"] == [None]
    assert "loan_purpose" in u["refer_reason"][0] and "never seen" in u["refer_reason"][0]
    assert zipped.status_code == 415
    # gRPC carries IEEE doubles, so NaN and inf really arrive: refused, naming the field.
    assert over_grpc["valid"] in ("approve", "decline"), over_grpc
    assert over_grpc["nan"].startswith("error INVALID_ARGUMENT"), over_grpc
    assert "annual_income" in over_grpc["nan"] and "not a finite number" in over_grpc["nan"]
    assert "payment_score" in over_grpc["inf"] and "not a finite number" in over_grpc["inf"]
    assert over_grpc["unseen"] == "refer"  # a referred row (PD NaN) travels over gRPC too
    # 200k rows (~40 MB) are refused at the door from Content-Length: no parse, no growth.
    assert len(json.dumps(big)) > 8 * 2**20
    assert huge.status_code == 413 and "MLGATE_SERVING_MAX_BODY_BYTES" in huge.text
    assert rss_after_huge - rss_before < 50, (rss_before, rss_after_huge)
    assert over_rows.status_code == 413 and "10001 rows exceed" in over_rows.text
    assert capped.status_code == 200
    c = {o["name"]: o["data"] for o in capped.json()["outputs"]}
    assert len(c["decision"]) == 10_000 and set(c["decision"]) == {answer["decision"][0]}
    assert rss_after_capped < 1024, rss_after_capped  # the pod's memory limit


@pytest.mark.slow
def test_refer_policy_refers_bad_rows_and_scores_the_rest(serving_env) -> None:
    from mlgate.serving import client
    from mlgate.serving.server import serving

    w = serving_env
    rows = w.offline[w.features].head(3).reset_index(drop=True).copy()
    rows["annual_income"] = rows["annual_income"].astype(float)
    rows.loc[1, "annual_income"] = 1e308
    with serving(
        w.settings, w.model, "challenger", cutoff=0.15,
        env={"MLGATE_SERVING_ON_INVALID": "refer"},
    ) as srv:  # fmt: skip
        scores = client.infer(srv.url, w.model, rows)
    assert [s.decision == "refer" for s in scores] == [False, True, False]
    assert math.isnan(scores[1].pd) and "annual_income" in scores[1].refer_reason
    assert scores[1].reason_codes == []
    assert all(0 < s.pd < 1 for s in (scores[0], scores[2]))


@pytest.mark.slow
def test_a_non_finite_pd_is_referred_never_approved(serving_env, monkeypatch) -> None:
    """The runtime in process, its scorer made to return NaN/inf: the guard after scoring."""
    from mlserver.codecs import StringCodec
    from mlserver.settings import ModelParameters, ModelSettings
    from mlserver.types import InferenceRequest

    from mlgate.packaging.model_artifact import export_model, resolve_version
    from mlgate.serving.runtime import CreditRiskRuntime
    from mlgate.serving.server import serving_ranges

    w = serving_env
    number = resolve_version(w.settings, w.model, "challenger")
    artifact = export_model(
        w.settings, w.model, number, w.settings.ws().sub("serving", "artifacts") / "nan-test"
    )
    runtime = CreditRiskRuntime(
        ModelSettings(
            name=w.model,
            implementation=CreditRiskRuntime,
            parameters=ModelParameters(
                uri=str(artifact),
                extra={"ranges": serving_ranges(w.settings, w.model, number)},
            ),
        )
    )
    asyncio.run(runtime.load())
    real = runtime._score

    def broken(columns):  # type: ignore[no-untyped-def]
        pd_values, codes = real(columns)
        pd_values = pd_values.copy()
        pd_values[:2] = [math.nan, math.inf]
        return pd_values, codes

    monkeypatch.setattr(runtime, "_score", broken)
    from mlgate.serving import client

    body = client.v2_request(w.offline[w.features].head(3))
    out = asyncio.run(runtime.predict(InferenceRequest.model_validate(body)))
    got = {
        o.name: StringCodec.decode_output(o) if o.datatype == "BYTES" else o.data.root
        for o in out.outputs
    }
    assert got["decision"][:2] == ["refer", "refer"]
    assert all(map(math.isnan, got["pd"][:2])) and "not finite" in got["refer_reason"][0]
    assert got["decision"][2] in ("approve", "decline") and 0 < got["pd"][2] < 1


def test_runtime_refuses_to_load_without_the_value_ranges() -> None:
    from mlgate.serving.runtime import read_ranges

    with pytest.raises(RuntimeError, match="extra.ranges"):
        read_ranges({})
    assert read_ranges({"ranges": {"x": {"max": 5}}}) == {"x": ColumnRange(max=5)}


def test_every_predictor_sets_valid_serving_limits() -> None:
    """The manifests set the contract's limits; each value must parse as the runtime reads it."""
    from mlgate.gitops.kubectl import kustomize

    rendered = kustomize(REPO / "manifests" / "models" / "credit_risk" / "dev")
    (sdep,) = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "SeldonDeployment"]
    for pred in sdep["spec"]["predictors"]:
        (container,) = pred["componentSpecs"][0]["spec"]["containers"]
        env = {
            e["name"]: e["value"]
            for e in container["env"]
            if e["name"].startswith("MLGATE_SERVING_")
        }
        assert set(env) == {f"MLGATE_SERVING_{k.upper()}" for k in ServingSettings.model_fields}
        limits = ServingSettings.model_validate(
            {k.removeprefix("MLGATE_SERVING_").lower(): v for k, v in env.items()}
        )
        assert limits.on_invalid == "reject" and limits.max_rows <= 10_000
        mem = container["resources"]["limits"]["memory"]
        assert mem == "1Gi" and limits.max_body_bytes <= 16 * 2**20


def test_the_client_sends_booleans_as_bool_and_numbers_with_gaps_as_numbers() -> None:
    """The client does not launder a boolean into 1.0, nor a number with a gap into text."""
    from mlgate.serving import client

    req = client.v2_request(pd.DataFrame([{"flag": True, "income": None, "n": 3}]))
    by = {i["name"]: i for i in req["inputs"]}
    assert by["flag"]["datatype"] == "BOOL" and by["flag"]["data"] == [True]
    gappy = client.v2_request(pd.DataFrame({"income": [50_000, None]}, dtype=object))
    assert gappy["inputs"][0]["datatype"] == "FP64"
    assert gappy["inputs"][0]["data"] == [50_000.0, None]
    rules = FeatureRules(numeric={"flag": ColumnRange()}, categorical={})
    with pytest.raises(ContractError, match="flag"):
        check_datatypes([Tensor("flag", "BOOL", [1, 1], [True])], rules)
