"""The adverse-action notice: a declined applicant's principal reasons in plain words.

The wording is the model config's `reason_codes.plain_language` (one home: a reason code such
as `loan_purpose=debt_consolidation` or `payment_score:missing`, else its feature, -> the
sentence a customer reads). A reason without wording stops the notice (exit 2, naming the file
and the field to add) rather than putting a column name in a letter to a customer. Approved
and referred applications get no notice: no adverse action was taken on a score.
"""

from __future__ import annotations

from mlgate.errors import ConfigError
from mlgate.training.reason_codes import ReasonCode


def plain_reason(code: ReasonCode, wording: dict[str, str], source: str) -> str:
    for key in (code.code, code.feature):
        if key in wording:
            return wording[key]
    raise ConfigError(
        f"{source}: reason_codes.plain_language: no wording for reason {code.code!r} "
        f"(add `{code.feature}: <the principal reason in plain words>`)"
    )


def principal_reasons(
    decision: str, codes: list[ReasonCode], wording: dict[str, str], source: str
) -> list[str]:
    """The declined applicant's reasons in plain words, most important first; none otherwise."""
    if decision != "decline":
        return []
    return list(dict.fromkeys(plain_reason(c, wording, source) for c in codes))


def notice_text(
    *,
    application_id: str,
    decided_at: str | None,
    model: str,
    version: str,
    reasons: list[str],
) -> str:
    """The text of the notice; the bank's letterhead and legal boilerplate wrap it."""
    lines = [
        "NOTICE OF ACTION TAKEN",
        "",
        f"Application: {application_id}",
        f"Date of decision: {decided_at or 'not recorded'}",
        "",
        "We are unable to approve your application for credit.",
        "The principal reason(s) for our decision:",
        *(f"  {i}. {r}" for i, r in enumerate(reasons, start=1)),
        "",
        f"The decision was made with a credit scoring model ({model}, version {version}).",
        "You may request a copy of the information the decision was based on and ask for it",
        "to be reviewed by a person.",
    ]
    return "\n".join(lines)
