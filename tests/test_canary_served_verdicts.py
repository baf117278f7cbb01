"""The canary's verdicts on served and logged traffic, end to end on the embedded default.

One workspace for the module (the session's `registered_two_versions`, v1 stable in prod as
git says). Each scenario's canary is a version trained by `train_on_frame` on v1's own
training set, changed the way the scenario needs (a logistic regression fits in seconds; no
new world): the same data (good), a population that no longer applies (drifted: two features
shifted), labels that penalise the young (biased) or scrambled labels (lenient: it approves
nearly everyone, the riskier applicants stable declines too). The canary runs at 50 % beside
stable as git's main says (`serve_environment`: venv MLServer predictors, the router, the
local request-log sink); matured applications are replayed through the router and `canary
analyze` reads what the sink logged, joining outcomes from the data source by row key. The
shadow scenario runs the good version as a shadow first (mirrored by the router), compares it
on the router's mirrored traffic (`shadow analyze`), then starts it as the canary (which
replaces the shadow) and promotes it. The policy's phases do not start with shadow, so the
shadow report is not required evidence here (that rule: tests/test_shadow*.py). The lenient
canary's P&L waits on history (the loans only it books were declined back then: no outcome)
and is aborted once they mature, simulated from the world's oracle (`--simulate-outcomes`).

The test policy (written below, stated here): the model's policy with the floors of a small
world (min_requests 100, min_early_labels 50, the shadow's min_requests 100 and group sizes
30) and, so that a good canary can be shown no worse on a few hundred loans, an early-
delinquency ratio limit of x5 and alpha 0.2 for the sequential checks (the production values
need tens of thousands of requests: bench/canary_decision.py); the lenient scenario's mixture
spread is 10 x the P&L tolerance (stated there).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from mlgate.canary.replay import period_applications
from mlgate.canary.run import analyze
from mlgate.canary.shadow_run import analyze_shadow
from mlgate.config import PlatformSettings, load_settings
from mlgate.data.label_bias import LabelBias, relabel
from mlgate.data.protected import load_protected
from mlgate.gates.collect import run_dataset
from mlgate.gitops import canary
from mlgate.gitops import pr as prmod
from mlgate.gitops import shadow as shadowmod
from mlgate.serving.logsink import READ_TOKEN_ENV
from mlgate.serving.router import wait_mirrored
from mlgate.serving.supervisor import serve_environment
from mlgate.serving.traffic import send
from mlgate.training.registry import load_training_set
from mlgate.training.train import dataset_fingerprint, train_on_frame
from tests.fixtures.gitops import write_gate_report
from tests.gitops_helpers import cli, promote_merged
from tests.test_canary_served import BATCH, REPO, _image_records

pytestmark = pytest.mark.slow

DAYS = 60  # matured applications replayed: ~1,300, about 650 to each version at 50 %
Variant = Callable[[pd.DataFrame, Any], pd.DataFrame]


def _policy(tmp: Path, name: str = "policy.yaml", **sequential: Any) -> Path:
    data = yaml.safe_load((REPO / "config/policies/credit_risk.yaml").read_text())
    c = data["canary"]
    c.update(min_requests=100, min_early_labels=50)
    c["sequential"].update(alpha=0.2, **sequential)
    c["shadow"].update(min_requests=100, min_group_size=30)
    data["monitor"]["early_delinquency_ratio"] = 5.0
    data["fairness"]["min_group_size"] = 30
    path = tmp / name
    path.write_text(yaml.safe_dump(data))
    return path


class World:
    """The module's workspace: v1 stable everywhere; versions trained and rolled out here."""

    def __init__(self, first: Any, root: Path) -> None:
        self.root = root
        self.settings: PlatformSettings = load_settings(workspace=str(root))
        self.model = first.model
        self.config = first.config
        self.stable = first.version
        self.dataset = run_dataset(self.settings, first.run_id)
        self.training = load_training_set(self.settings, self.model, self.stable, "all")
        self.policy = _policy(root)
        self._matured: dict[int, pd.DataFrame] = {}

    def train(self, change: Variant) -> str:
        """A version trained on v1's training set as `change` makes it, pushed through dev and
        stage (its image recorded) so that it may start as the prod canary."""
        frame = change(self.training.copy(), self)
        res = train_on_frame(self.settings, self.config, self.dataset, frame,
                             data_fingerprint=dataset_fingerprint(self.dataset))  # fmt: skip
        assert res.version is not None
        _image_records(self.settings, self.model, [res.version])
        for env in ("dev", "stage"):
            promote_merged(self.settings, res.version, env, self.report(res.version, env))
        return res.version

    def report(self, version: str, env: str) -> Path:
        return write_gate_report(self.settings, self.root, version, env)

    def start_canary(self, version: str) -> None:
        pr = canary.start(self.settings, self.model, "prod", version,
                          self.report(version, "prod"), weight=50)  # fmt: skip
        prmod.merge_pr(self.settings, pr.branch, ["carol"])

    def matured(self, days: int = DAYS) -> pd.DataFrame:
        """`days` of applications whose outcomes have matured (v1's holdout months), without
        rows the serving contract refuses (too many features missing). The same for every
        scenario (every version here is trained on v1's dataset): read once."""
        if days not in self._matured:
            ts = self.dataset.event_timestamp
            start = pd.Timestamp(self.training[ts].max()) - pd.Timedelta(days=days + 5)
            frame, ds, _ = period_applications(self.settings, self.model, "prod",
                                               start.strftime("%Y-%m-%d"), days)  # fmt: skip
            keep = frame[ds.features].isna().mean(axis=1) <= 0.25
            self._matured[days] = frame[keep].reset_index(drop=True)
        return self._matured[days]

    def served_verdict(
        self, tmp: Path, served: Callable[[Any], None] | None = None, **options: Any
    ) -> Any:
        """Serve prod as main says, replay the matured period, analyse the sink's log
        (`options`: more of `analyze`'s). `served` sees the served topology first."""
        with self.serving() as srv:
            if served is not None:
                served(srv)
            # one at a time: the router's seeded draws meet the requests in the same order on
            # every run, so which version answers whom (and the verdict) is reproducible
            sent = send(srv.router_url, srv.model, self.matured(), concurrency=1, batch=BATCH)
            assert sent.errors == sent.refused == 0 and sent.answered == sent.sent
            verdict, _paths, _pr = analyze(self.settings, model=self.model, env="prod",
                                           requests=str(srv.sink_read_url),
                                           policy_file=self.policy, report_dir=tmp / "report",
                                           **options)  # fmt: skip
        return verdict

    def serving(self) -> Any:
        # a generous start-up timeout: MLServer's start on a busy 2-core machine is slow
        return _with_read_token(serve_environment(self.settings, self.model, "prod",
                                                  runtime="venv", seed=11, timeout=600))  # fmt: skip

    def end_canary(self) -> None:
        canary.abort_now(self.settings, self.model, "prod", "test: next scenario")


class _with_read_token:  # noqa: N801 - used as a context manager
    """serve_environment, with the reader pointed at its sink's read token."""

    def __init__(self, cm: Any) -> None:
        self.cm = cm
        self.old = os.environ.get(READ_TOKEN_ENV)

    def __enter__(self) -> Any:
        srv = self.cm.__enter__()
        os.environ[READ_TOKEN_ENV] = str(srv.sink_read_token_file)
        return srv

    def __exit__(self, *exc: Any) -> None:
        try:
            self.cm.__exit__(*exc)
        finally:
            if self.old is None:
                os.environ.pop(READ_TOKEN_ENV, None)
            else:
                os.environ[READ_TOKEN_ENV] = self.old


@pytest.fixture(scope="module")
def world(registered_two_versions: Any, tmp_path_factory: pytest.TempPathFactory) -> World:
    first, _second = registered_two_versions
    root = tmp_path_factory.mktemp("verdicts") / "ws"
    shutil.copytree(first.workspace, root, symlinks=True)
    w = World(first, root)
    _image_records(w.settings, w.model, [w.stable])
    for env in ("dev", "stage", "prod"):
        promote_merged(w.settings, w.stable, env, w.report(w.stable, env))
    return w


# --- the scenarios' canaries: v1's training set, changed --------------------------------------


def same(frame: pd.DataFrame, w: World) -> pd.DataFrame:
    return frame


DRIFTED = ["annual_income", "credit_utilization"]


def drifted(frame: pd.DataFrame, w: World) -> pd.DataFrame:
    """Trained on a population that no longer applies: two features 1.5 sd higher."""
    for col in DRIFTED:
        frame[col] = frame[col] + 1.5 * frame[col].std()
    return frame


def biased(frame: pd.DataFrame, w: World) -> pd.DataFrame:
    """Every young applicant labelled a defaulter: it learns to decline their proxies."""
    bias = LabelBias(attribute="age_band", group="18-25", share=1.0, why="test: every one")
    return relabel(frame, w.dataset, bias, load_protected(w.dataset))[0]


def lenient(frame: pd.DataFrame, w: World) -> pd.DataFrame:
    """Trained on scrambled labels: every applicant scored near the base rate, so it approves
    nearly everyone, the riskier applicants stable declines included."""
    label = w.dataset.label
    frame[label] = np.random.default_rng(5).permutation(frame[label].to_numpy())
    return frame


def _checks(verdict: Any) -> dict[str, Any]:
    return {g.name: g for g in verdict.report.gates}


# --- the tests -----------------------------------------------------------------------------------


@pytest.fixture
def rollout(world: World) -> Iterator[World]:
    """Each scenario leaves prod as it found it: stable alone."""
    yield world
    from mlgate.canary.run import canary_state

    try:
        canary_state(world.settings, world.model, "prod")
    except Exception:  # noqa: BLE001 - no canary left: nothing to end
        return
    world.end_canary()


def test_a_shadow_is_compared_on_mirrored_traffic_then_started_as_a_canary_and_promoted(
    rollout: World, tmp_path: Path
) -> None:
    w = rollout
    good = w.train(same)
    pr = shadowmod.start(w.settings, w.model, "prod", good, w.report(good, "prod"))
    prmod.merge_pr(w.settings, pr.branch, ["carol"])
    with w.serving() as srv:
        assert srv.predictor("shadow").version == good
        sent = send(srv.router_url, srv.model, w.matured(), concurrency=4, batch=BATCH)
        assert sent.answered == sent.sent and set(sent.by_version) == {w.stable}  # never answers
        wait_mirrored(srv.router_url)  # the mirrors run in the background
        report, _paths = analyze_shadow(w.settings, model=w.model, env="prod",
                                       requests=str(srv.sink_read_url), policy_file=w.policy,
                                       report_dir=tmp_path / "shadow")  # fmt: skip
    checks = {g.name: g for g in report.gates}
    assert report.data["paired"] == sum(sent.by_version.values())  # every row, both answers
    assert checks["decision_flips"].metrics["flip_rate"] == 0.0  # the same model: no flip
    assert report.overall.value == "PASS", [g.summary for g in report.gates]
    w.start_canary(good)  # shadow -> canary: the shadow is replaced by the same version

    def replaced(srv: Any) -> None:
        assert srv.predictor("canary").version == good
        assert not any(p.shadow for p in srv.predictors)

    v = w.served_verdict(tmp_path, replaced)
    assert v.decision == "promote", v.reasons
    assert v.report.data["canary_requests"] > 100 and v.report.data["requests_refused"] == {}


def _aborted_on(w: World, change: Variant, check: str, tmp: Path) -> Any:
    """Roll `change`'s version out as the canary: ABORT, with `check` failing (returned)."""
    w.start_canary(w.train(change))
    v = w.served_verdict(tmp)
    assert v.decision == "abort" and v.exit_code == 1, v.reasons
    result = _checks(v)[check]
    assert result.status.value == "FAIL", result.summary
    return result


def test_a_drifted_canary_is_aborted_naming_the_features(rollout: World, tmp_path: Path) -> None:
    drift = _aborted_on(rollout, drifted, "drift", tmp_path)
    assert all(col in " ".join(drift.reasons) for col in DRIFTED), drift.reasons


def test_a_biased_canary_is_aborted_on_fairness(rollout: World, tmp_path: Path) -> None:
    fairness = _aborted_on(rollout, biased, "fairness", tmp_path)
    assert "age_band" in " ".join(fairness.reasons), fairness.reasons


def test_a_lenient_canary_is_aborted_on_pnl_once_its_loans_outcomes_mature(
    rollout: World, tmp_path: Path
) -> None:
    """History has outcomes only for the loans the bank booked back then, not for the riskier
    ones only the canary books: P&L waits. Once they mature (simulated from the synthetic
    world's oracle, `canary analyze --simulate-outcomes`), the canary is aborted on P&L."""
    w = rollout
    # The mixture's spread tuned to what ~650 canary requests can resolve: effects of ~100 per
    # request (the model's policy tunes it to its 10/request tolerance, for tens of thousands).
    policy = _policy(tmp_path, "lenient-policy.yaml", mixture_scale=10.0)
    w.start_canary(w.train(lenient))
    with w.serving() as srv:
        sent = send(srv.router_url, srv.model, w.matured(), concurrency=1, batch=BATCH)
        assert sent.answered == sent.sent
        url = str(srv.sink_read_url)
        history, _paths, _pr = analyze(w.settings, model=w.model, env="prod", requests=url,
                                       policy_file=policy, report_dir=tmp_path / "history")  # fmt: skip
        # the CLI, as the scheduled analysis passes the sink: its URL as --requests
        code, out, err = cli("--workspace", str(w.root), "canary", "analyze", "--model", w.model,
                             "--env", "prod", "--requests", url, "--policy", str(policy),
                             "--report", str(tmp_path / "matured"), "--simulate-outcomes", "12m",
                             "--json")  # fmt: skip
    pnl = _checks(history)["pnl"]
    assert history.decision == "wait" and pnl.status.value == "INCONCLUSIVE", history.reasons
    assert pnl.metrics["share_canary_only"] > 0.05  # it books applicants stable declines...
    assert pnl.metrics["matured_canary_only"] < 30  # ... whose outcomes history does not have
    assert out, err[-2000:]
    matured = json.loads(out)
    assert code == 1, matured["reasons"]
    gates = {g["name"]: g for g in matured["report"]["gates"]}
    assert matured["decision"] == "abort", matured["reasons"]
    assert gates["pnl"]["status"] == "FAIL", gates["pnl"]["summary"]
    assert any(r.startswith("pnl:") for r in matured["reasons"])
    assert gates["pnl"]["metrics"]["matured_canary_only"] >= 30
    metrics = gates["pnl"]["metrics"]
    assert metrics["uplift_per_request"] < -metrics["pnl_tolerance"]
    sim = matured["report"]["data"]["outcomes_simulated"]
    assert sim["horizon"] == "12m" and sim["with_12m_outcome"] > 0
    assert sim["booked"] >= sim["with_12m_outcome"]  # declined requests have no outcome
