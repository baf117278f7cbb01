"""The policy a merged report is re-verified under is the one in force at its merge.

`pr merge` writes `Gate-Policy:` (the digest of the policy it verified the report under) and
stores that policy by digest (`gitops.policy_store`). On the shared audit world
(tests/fixtures/audit.py: a real bare remote, MLflow, report store and registry):
- the reviewed policy changing after the merges turns no merged promotion into a gap (while
  `pr merge` now would refuse the same report: the change is real, not a no-op);
- a commit whose report was judged under another policy than the one its merge names is a gap,
  and so is a merge naming a policy the store does not hold or holds edited.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mlgate.audit.verify import verify_history
from mlgate.config import DEFAULT_POLICY_DIR, POLICY_DIR_ENV
from mlgate.errors import MlgateError
from mlgate.gates.policy import load_policy
from mlgate.gitops import policy_store
from mlgate.gitops.evidence import verify_evidence
from mlgate.records.trailers import parse_message
from tests.fixtures.audit import AuditWorld

pytestmark = pytest.mark.slow  # a real remote, MLflow and docker-registry (one per session)

MODEL = "credit_risk"


def _message(world: AuditWorld, sha: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(world.workspace / "gitops.git"), "log", "-1", "--format=%B", sha],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def _changed_policy_dir(tmp: Path) -> Path:
    """The reviewed policies with one threshold made stricter (a new digest)."""
    out = tmp / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, out)
    path = out / f"{MODEL}.yaml"
    text = path.read_text()
    edited = text.replace("min_ks: 0.20", "min_ks: 0.21", 1)
    assert edited != text
    path.write_text(edited)
    return out


@contextmanager
def _main_restored(world: AuditWorld) -> Iterator[None]:
    bare = str(world.workspace / "gitops.git")
    before = world.main()
    try:
        yield
    finally:
        subprocess.run(
            ["git", "--git-dir", bare, "update-ref", "refs/heads/main", before], check=True
        )


def test_merges_record_the_policy_they_verified_under(audit_env: AuditWorld) -> None:
    w = audit_env
    settings = w.settings()
    t = parse_message(_message(w, w.commits["v1-prod"]), "v1-prod")
    assert t is not None and t.gate_policy is not None and t.gate_report is not None
    report = (w.workspace / "reports" / "by-hash" / t.gate_report / "report.json").read_text()
    assert f'"policy_sha256": "{t.gate_policy}"' in report.replace('":"', '": "')
    stored = policy_store.get(settings, t.gate_policy, None)
    assert stored.digest == t.gate_policy
    # A change with no report (a weight step) records no policy.
    step = parse_message(_message(w, w.commits["v2-weight-50"]), "v2-weight-50")
    assert step is not None and step.gate_policy is None


def test_a_policy_changed_after_the_merges_leaves_them_verified(
    audit_env: AuditWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = audit_env
    settings = w.settings()
    t = parse_message(_message(w, w.commits["v1-prod"]), "v1-prod")
    assert t is not None and t.gate_report and t.gate_policy
    changed = _changed_policy_dir(tmp_path)
    monkeypatch.setenv(POLICY_DIR_ENV, str(changed))
    assert load_policy(changed / f"{MODEL}.yaml").digest != t.gate_policy
    # Today's policy refuses the old report (what `pr merge` would say now) ...
    with pytest.raises(MlgateError, match="policy_sha256"):
        verify_evidence(
            settings, t.gate_report, model=MODEL, version="1", env="prod", champion=lambda: None
        )
    # ... but the audit verifies each merge under the policy in force then: no gap.
    result = verify_history(settings, only=["gate-report"])
    assert result.gaps == [], [g.message for g in result.gaps]
    assert result.changes_checked == len(w.commits)


def _rewrite_head_policy(world: AuditWorld, work: Path, digest: str) -> str:
    """Push main's head again with its Gate-Policy trailer replaced (a forged merge record)."""
    bare = str(world.workspace / "gitops.git")
    git = ["git", "-C", str(work)]
    subprocess.run(["git", "clone", "-q", bare, str(work)], check=True)
    msg = subprocess.run(
        [*git, "log", "-1", "--format=%B"], capture_output=True, text=True, check=True
    ).stdout
    t = parse_message(msg, "head")
    assert t is not None and t.gate_policy
    forged = msg.replace(f"Gate-Policy: {t.gate_policy}", f"Gate-Policy: {digest}")
    assert forged != msg
    subprocess.run([*git, "commit", "-q", "--amend", "-m", forged], check=True)
    subprocess.run([*git, "push", "-q", "-f", "origin", "HEAD:refs/heads/forged"], check=True)
    sha = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(["git", "--git-dir", bare, "update-ref", "refs/heads/main", sha], check=True)
    subprocess.run(["git", "--git-dir", bare, "branch", "-D", "forged"], check=True)
    return sha


def test_a_report_judged_under_another_policy_than_its_merges_is_a_gap(
    audit_env: AuditWorld, tmp_path: Path
) -> None:
    """Main's last merge (v5 into stage) rewritten to name a policy that is stored but is not
    the one its report was judged under."""
    w = audit_env
    settings = w.settings()
    other = load_policy(_changed_policy_dir(tmp_path) / f"{MODEL}.yaml")
    digest = policy_store.put(settings, other, None)
    with _main_restored(w):
        sha = _rewrite_head_policy(w, tmp_path / "forger", digest)
        gaps = verify_history(settings, only=["gate-report"]).gaps
    assert [(g.check, g.commit) for g in gaps] == [("gate-report", sha)]
    text = gaps[0].message + " ".join(gaps[0].problems)
    assert "policy_sha256" in text and digest[:12] in text


def test_a_merge_naming_a_policy_the_store_lacks_or_holds_edited_is_a_gap(
    audit_env: AuditWorld, tmp_path: Path
) -> None:
    w = audit_env
    settings = w.settings()
    t = parse_message(_message(w, w.main()), "head")
    assert t is not None and t.gate_policy
    unknown = hashlib.sha256(b"a policy nobody stored").hexdigest()
    with _main_restored(w):
        sha = _rewrite_head_policy(w, tmp_path / "forger", unknown)
        gaps = verify_history(settings, only=["gate-report"]).gaps
    assert [(g.check, g.commit) for g in gaps] == [("gate-report", sha)]
    assert "not in the policy store" in gaps[0].message
    # The stored copy of the head's real policy edited (a lax threshold): refused as edited.
    stored = policy_store.local_file(settings, t.gate_policy)
    original = stored.read_bytes()
    stored.write_bytes(original.replace(b'"min_ks":0.2', b'"min_ks":0.0', 1))
    assert stored.read_bytes() != original
    try:
        gaps = verify_history(settings, only=["gate-report"]).gaps
    finally:
        stored.write_bytes(original)
    # Every merge that names that policy is reported, and nothing else.
    naming = set()
    for sha_ in w.commits.values():
        tr = parse_message(_message(w, sha_), sha_)
        if tr is not None and tr.gate_policy == t.gate_policy:
            naming.add(sha_)
    assert w.main() in naming
    assert {(g.check, g.commit) for g in gaps} == {("gate-report", c) for c in naming}
    assert all("hash" in g.message for g in gaps)
