"""Gate policies stored by content: the exact policy a report was verified under, by digest.

Policies are reviewed in `config/policies` and change over time; the GitOps history names,
on each merged promotion, the digest of the policy `pr merge` verified its report under
(`Gate-Policy:`). To re-verify that report later (`audit verify`, `audit lineage`) the audit
needs that policy's values, not today's: every verification that passes stores the policy it
used here, under `policy_digest` (sha256 of its validated values as sorted JSON), so the bytes
themselves prove which policy they are. Two places, like the report store: the workspace
(`<workspace>/reports/policies/<digest>.json`) and the judged version's MLflow run
(`gate-policies/<digest>.json`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from pathlib import Path

from mlgate.config import PlatformSettings, parse_model
from mlgate.errors import GateFailed
from mlgate.gates.policy import GatePolicy, check_enforced, policy_digest
from mlgate.gitops.report_store import check_sha
from mlgate.training.registry import connect

log = logging.getLogger(__name__)

MLFLOW_DIR = "gate-policies"


def canonical(policy: GatePolicy) -> bytes:
    """The bytes stored: exactly what `policy_digest` hashes."""
    text = json.dumps(policy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return text.encode("utf-8")


def local_file(settings: PlatformSettings, digest: str) -> Path:
    return settings.ws().reports_dir / "policies" / f"{check_sha(digest, 'Gate-Policy')}.json"


def put(settings: PlatformSettings, policy: GatePolicy, run_id: str | None) -> str:
    """Store `policy` under its digest (workspace always, MLflow when the run is known);
    storing it again is a no-op. Returns the digest."""
    raw = canonical(policy)
    digest = hashlib.sha256(raw).hexdigest()
    dest = local_file(settings, digest)
    if not (dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() == digest):
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        tmp.write_bytes(raw)
        tmp.replace(dest)
    if run_id:
        try:
            connect(settings).log_artifact(run_id, str(dest), artifact_path=MLFLOW_DIR)
        except Exception as exc:  # noqa: BLE001 - the workspace copy still serves this machine
            log.warning("gate policy %s not stored in MLflow run %s: %s", digest, run_id, exc)
    return digest


def get(settings: PlatformSettings, digest: str, run_id: str | None) -> GatePolicy:
    """The stored policy named `digest`, validated (stage/prod still enforced): refused when no
    copy exists or a copy's bytes do not hash to `digest`."""
    path = local_file(settings, digest)
    where = str(path)
    if not path.is_file() and run_id:
        where = f"runs:/{run_id}/{MLFLOW_DIR}/{digest}.json"
        try:
            tmp = tempfile.mkdtemp(prefix="mlgate-policy-")
            path = Path(
                connect(settings).download_artifacts(run_id, f"{MLFLOW_DIR}/{digest}.json", tmp)
            )
        except Exception as exc:  # noqa: BLE001 - not there, or MLflow down: not found
            log.warning("gate policy %s not found in MLflow run %s: %s", digest, run_id, exc)
    if not path.is_file():
        raise GateFailed(
            f"gate policy {digest}: not in the policy store ({local_file(settings, digest)}"
            + (f", runs:/{run_id}/{MLFLOW_DIR}/{digest}.json" if run_id else "")
            + "): the policy a report was verified under cannot be read"
        )
    raw = path.read_bytes()
    got = hashlib.sha256(raw).hexdigest()
    if got != digest:
        raise GateFailed(f"gate policy {where}: its bytes hash to {got}, not {digest} (edited)")
    policy = parse_model(GatePolicy, json.loads(raw), where)
    if policy_digest(policy) != digest:
        raise GateFailed(f"gate policy {where}: its values do not hash to {digest}")
    check_enforced(policy)
    return policy.model_copy(update={"source_file": where, "digest": digest})
