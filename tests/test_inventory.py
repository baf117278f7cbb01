"""The model inventory, risk-tier rules on policies, and the review-date check of audit verify.

Real files and a real GitOps remote (bare git repository) with promotion commits at chosen
times; the CLI as a user runs it."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from mlgate.config import DEFAULT_POLICY_DIR
from mlgate.errors import ConfigError
from mlgate.gates.policy import load_policy
from mlgate.gates.tiers import TIER_MINIMA, tier_problems
from mlgate.governance import DEFAULT_MODEL_CONFIG_DIR
from mlgate.inventory.catalog import load_model_configs
from mlgate.inventory.review import add_months
from tests.inventory_helpers import gitops_remote, promote, run_cli

SHIPPED = yaml.safe_load((DEFAULT_MODEL_CONFIG_DIR / "credit_risk.yaml").read_text())


def _config(folder: Path, name: str, **changes: object) -> Path:
    doc = {**SHIPPED, "name": name, "dataset": "../datasets/credit_world.yaml", **changes}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


NO_MLFLOW = "http://127.0.0.1:9"  # refused at once: the registry column says so


@pytest.fixture
def configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv("MLGATE_MODEL_CONFIG_DIR", str(folder))
    # Only the test about the registry column creates one (a fresh SQLite registry costs
    # seconds of migrations per command).
    monkeypatch.setenv("MLGATE_MLFLOW__TRACKING_URI", NO_MLFLOW)
    return folder


# --- governance in model configs -----------------------------------------------------------
def test_every_shipped_model_config_carries_governance() -> None:
    found = load_model_configs(DEFAULT_MODEL_CONFIG_DIR)
    assert [cfg.name for _, cfg in found] == ["credit_risk"]
    gov = found[0][1].governance
    assert gov is not None and gov.risk_tier == 1 and gov.owner


@pytest.mark.parametrize(
    ("governance", "field"),
    [
        (None, "governance: missing"),
        ({"owner": "risk", "risk_tier": 4, "review_every_months": 12}, "governance.risk_tier"),
        ({"owner": "risk", "risk_tier": 1}, "governance.review_every_months"),
        (
            {"owner": "risk", "risk_tier": 1, "review_every_months": 12, "tier": 2},
            "governance.tier",
        ),
        ({"owner": "", "risk_tier": "1", "review_every_months": 12}, "governance.owner"),
    ],
)
def test_incomplete_governance_is_refused_naming_file_and_field(
    configs: Path, governance: dict | None, field: str
) -> None:
    doc = {k: v for k, v in SHIPPED.items() if k != "governance"}
    if governance is not None:
        doc["governance"] = governance
    path = _config(configs, "m1", **{k: v for k, v in doc.items() if k != "name"})
    if governance is None:
        yaml_doc = yaml.safe_load(path.read_text())
        yaml_doc.pop("governance", None)
        path.write_text(yaml.safe_dump(yaml_doc))
    code, output = run_cli("inventory", "--json")
    assert code == 2
    assert str(path) in output and field in output.replace("\n", " ")


def test_intended_use_must_be_stated(configs: Path) -> None:
    path = _config(configs, "m1")
    doc = yaml.safe_load(path.read_text())
    del doc["intended_use"]
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as err:
        load_model_configs(configs)
    assert f"{path}: intended_use: missing" in str(err.value)


# --- tier rules -----------------------------------------------------------------------------
def test_shipped_policy_meets_its_tier() -> None:
    policy = load_policy(DEFAULT_POLICY_DIR / "credit_risk.yaml")  # the hook runs: no error
    assert tier_problems(policy, 1, ("stage", "prod")) == []


def _lax_policy(folder: Path, name: str, four_fifths: float = 0.7) -> Path:
    doc = yaml.safe_load((DEFAULT_POLICY_DIR / "credit_risk.yaml").read_text())
    doc["drift"]["psi_act"] = 0.40
    doc["environments"]["dev"]["gates"] = ["performance", "calibration", "drift", "swap"]
    doc["environments"]["prod"]["overrides"]["fairness"] = {"four_fifths": four_fifths}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_tier_1_model_with_a_lax_policy_is_refused_at_load(configs: Path, tmp_path: Path) -> None:
    model_cfg = _config(configs, "lax_model")  # risk tier 1, as shipped
    policy = _lax_policy(tmp_path / "policies", "lax_model")
    with pytest.raises(ConfigError) as err:
        load_policy(policy)
    text = str(err.value)
    assert str(policy) in text and "risk tier 1" in text and str(model_cfg) in text
    assert "drift.psi_act: 0.4 in stage; tier 1 requires at most 0.25" in text
    assert (
        "environments.prod.overrides.fairness.four_fifths: 0.7 in prod; tier 1 requires "
        "at least 0.8" in text
    )
    assert "environments.dev.gates: leaves out fairness, pnl" in text
    # The same file through the CLI: exit 2, naming it.
    code, output = run_cli("gates", "run", "--model", "lax_model", "--env", "dev", "--policy",
                        str(policy))  # fmt: skip
    assert code == 2 and "psi_act" in output


def test_a_lower_tier_may_use_the_policy_a_higher_tier_may_not(
    configs: Path, tmp_path: Path
) -> None:
    gov = {**SHIPPED["governance"], "risk_tier": 3}
    _config(configs, "lax_model", governance=gov)
    policy = load_policy(_lax_policy(tmp_path / "policies", "lax_model", four_fifths=0.8))
    assert policy.drift.psi_act == 0.40 and policy.environments["dev"].gates == [
        "performance", "calibration", "drift", "swap"]  # fmt: skip
    # ... but not laxer than tier 3's own minimum (the four-fifths rule is a legal floor).
    assert TIER_MINIMA[3].bounds and any(
        b.field == "fairness.four_fifths" for b in TIER_MINIMA[3].bounds
    )
    doc = yaml.safe_load(Path(policy.source_file or "").read_text())
    doc["fairness"]["four_fifths"] = 0.5
    Path(policy.source_file or "").write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="fairness.four_fifths: 0.5 in stage; tier 3"):
        load_policy(policy.source_file or "")


def test_the_tier_is_found_by_the_policy_the_config_names(configs: Path, tmp_path: Path) -> None:
    _config(configs, "other", policy="shared_lax.yaml")
    with pytest.raises(ConfigError, match="risk tier 1"):
        load_policy(_lax_policy(tmp_path / "policies", "shared_lax"))


# --- the inventory from git -----------------------------------------------------------------
@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    bare, work = gitops_remote(tmp_path / "git")
    monkeypatch.setenv("MLGATE_GITOPS__REMOTE", str(bare))
    return bare, work


def test_inventory_lists_owner_tier_versions_and_last_validation(
    configs: Path,
    remote: tuple[Path, Path],
    tmp_path: Path,
    gitops_ws: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """gitops_ws: the workspace's MLflow registry holds credit_risk versions 1-5."""
    monkeypatch.delenv("MLGATE_MLFLOW__TRACKING_URI")  # the workspace's registry
    _config(configs, "credit_risk")
    _config(configs, "fraud", governance={"owner": "fraud-team", "risk_tier": 2,
                                          "review_every_months": 6})  # fmt: skip
    _, work = remote
    now = datetime.now(UTC).replace(microsecond=0)
    promote(work, model="credit_risk", env="dev", version="2", when=now - timedelta(days=40))
    last = promote(work, model="credit_risk", env="prod", version="2",
                   when=now - timedelta(days=10), approvers=("alice", "mrisk"),
                   report="cd" * 32)  # fmt: skip
    code, output = run_cli("inventory", "--json")
    assert code == 0, output
    inv = json.loads(output)
    by = {m["model"]: m for m in inv["models"]}
    cr = by["credit_risk"]
    assert (cr["owner"], cr["risk_tier"]) == ("retail-credit-risk-models", 1)
    assert cr["intended_use"].startswith("Decline applications")
    assert [(e["env"], e["stable_version"], e["cutoff"]) for e in cr["environments"]] == [
        ("dev", "2", "0.15"),
        ("prod", "2", "0.15"),
    ]
    v = cr["last_validation"]
    assert v["commit"] == last and v["approved_by"] == ["alice", "mrisk"]
    assert v["gate_report"] == "cd" * 32 and v["env"] == "prod"
    validated = (now - timedelta(days=10)).date()
    assert v["date"] == validated.isoformat()
    assert cr["next_review"] == add_months(validated, 12).isoformat()
    assert cr["review_status"] == "current"
    assert cr["registered"]["versions"] == 5 and cr["registered"]["latest"] == "5"
    assert by["fraud"]["registered"] == {**cr["registered"], "versions": 0, "latest": None,
                                         "latest_created": None, "aliases": {}}  # fmt: skip
    # A model that runs nowhere and was never promoted has no review due.
    assert by["fraud"]["environments"] == [] and by["fraud"]["review_status"] == "not deployed"
    assert by["fraud"]["last_validation"] is None

    html = tmp_path / "inventory.html"
    code, output = run_cli("inventory", "--html", str(html))
    assert code == 0, output
    page = html.read_text()
    assert "<table>" in page and "retail-credit-risk-models" in page and "cd" * 32 in page
    # Self-contained: no request leaves the file (no URL, no script, no external resource).
    for needle in ("http://", "https://", "<script", "src=", "<link", "@import"):
        assert needle not in page


def test_html_escapes_what_people_wrote(
    configs: Path, remote: tuple[Path, Path], tmp_path: Path
) -> None:
    _config(configs, "credit_risk", governance={
        "owner": "<script>alert(1)</script>", "risk_tier": 1, "review_every_months": 12},
        description='<img src=x onerror="fetch(\'https://evil.example\')">')  # fmt: skip
    html = tmp_path / "inventory.html"
    code, output = run_cli("inventory", "--html", str(html))
    assert code == 0, output
    page = html.read_text()
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # MLflow does not answer: said on the entry, the git facts are still listed.
    assert "MLflow unreadable" in page and NO_MLFLOW in page


def test_add_months_clamps_to_the_month_end() -> None:
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2024, 11, 30), 15) == date(2026, 2, 28)
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)


# --- review dates in audit verify -----------------------------------------------------------
def test_audit_verify_flags_a_model_past_its_review_date(
    configs: Path, remote: tuple[Path, Path]
) -> None:
    _config(configs, "credit_risk")  # review every 12 months
    _, work = remote
    promote(work, model="credit_risk", env="prod", version="1",
            when=datetime(2024, 3, 1, 12, tzinfo=UTC))  # fmt: skip
    code, output = run_cli("audit", "verify", "--check", "review-date", "--json")
    assert code == 1, output
    gaps = json.loads(output)["gaps"]
    assert [g["check"] for g in gaps] == ["review-date"] and gaps[0]["model"] == "credit_risk"
    assert "review was due 2025-03-01" in gaps[0]["message"]


def test_audit_verify_passes_a_model_within_its_review_date(
    configs: Path, remote: tuple[Path, Path]
) -> None:
    _config(configs, "credit_risk")
    _, work = remote
    promote(work, model="credit_risk", env="prod", version="1",
            when=datetime.now(UTC) - timedelta(days=30))  # fmt: skip
    code, output = run_cli("audit", "verify", "--check", "review-date", "--json")
    assert code == 0, output
    assert json.loads(output)["gaps"] == []


def test_a_running_model_without_any_promotion_record_is_overdue(
    configs: Path, remote: tuple[Path, Path]
) -> None:
    """A release.yaml put on main by hand (no mlgate trailers): nobody can say when it was
    last validated."""
    from mlgate.gitops.overlay import Release, write_release
    from tests.inventory_helpers import IMAGE, _git

    _config(configs, "credit_risk")
    _, work = remote
    write_release(work, Release(model="credit_risk", env="prod", stable_version="1",
                                stable_image=IMAGE))  # fmt: skip
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "hand-made release")
    _git(work, "push", "-q", "origin", "HEAD:main")
    code, output = run_cli("audit", "verify", "--check", "review-date", "--json")
    assert code == 1, output
    assert "no promotion record on main" in json.loads(output)["gaps"][0]["message"]
    shutil.rmtree(work)
