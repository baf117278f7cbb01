"""`Gate-Policy:` is the merge's record of the policy it verified the report under: only a
sha256 is a value, and the merge sets it (a digest the PR's author wrote into the commit is
replaced, never kept)."""

from __future__ import annotations

import hashlib

import pytest

from mlgate.errors import BadInputError
from mlgate.records.trailers import commit_message, make_trailers, parse_message, with_approvals

BASE = {"model": "credit_risk", "model_version": "3", "environment": "prod", "change": "promote"}
LAX = hashlib.sha256(b"a lax policy of the author's").hexdigest()
REVIEWED = hashlib.sha256(b"the reviewed policy").hexdigest()


@pytest.mark.parametrize("value", ["", "sha256:" + LAX, LAX.upper(), LAX[:63], "../../x"])
def test_only_a_sha256_is_a_gate_policy(value: str) -> None:
    if value:  # the writer leaves an empty value out
        with pytest.raises(BadInputError, match="Gate-Policy"):
            make_trailers(**BASE, gate_policy=value)
    message = commit_message("Promote", make_trailers(**BASE)).rstrip("\n")
    with pytest.raises(BadInputError, match="Gate-Policy"):
        parse_message(f"{message}\nGate-Policy: {value}\n", "commit")
    good = parse_message(f"{message}\nGate-Policy: {REVIEWED}\n", "commit")
    assert good is not None and good.gate_policy == REVIEWED


def test_the_merge_sets_the_policy_it_verified_under() -> None:
    """An author's commit naming a lax policy: the merged message names the merge's digest,
    or none when the merge verified no report."""
    authored = commit_message("Promote", make_trailers(**BASE, gate_policy=LAX))
    merged = parse_message(with_approvals(authored, ["carol"], "pr", "--approver", REVIEWED), "m")
    assert merged is not None and merged.gate_policy == REVIEWED
    assert merged.approved_by == ("carol",)
    unverified = parse_message(with_approvals(authored, ["carol"], "pr", "--approver"), "m")
    assert unverified is not None and unverified.gate_policy is None
