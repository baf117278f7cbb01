"""Review dates: when a model must be re-validated, and which models are past that date.

A model's last validation is its newest promotion on main (a commit whose `Change:` makes a
version run somewhere, `records.trailers.ENTERING`): the gate evidence, approvals and time are
that commit's. The next review is that date plus the model config's
`governance.review_every_months` (calendar months; the 31st becomes the month's last day).
A model that runs somewhere without any promotion record on main is overdue: nobody can say
when it was last validated. A model that runs nowhere and was never promoted has no review due.

Pure: `overdue_reviews` is a function of the inventory and the day; `mlgate audit verify`
registers it as a check (`mlgate.audit.checks.review_dates`).
"""

from __future__ import annotations

import calendar
from datetime import date
from typing import Literal

from pydantic import BaseModel

from mlgate.inventory.entry import InventoryEntry

ReviewStatus = Literal["current", "overdue", "not deployed"]


def add_months(day: date, months: int) -> date:
    """`day` plus whole calendar months, clamped to the month's last day (Jan 31 + 1 = Feb 28)."""
    years, month0 = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month0 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def next_review(last_validated: date | None, every_months: int) -> date | None:
    return add_months(last_validated, every_months) if last_validated else None


def review_status(next_due: date | None, deployed: bool, today: date) -> ReviewStatus:
    """Overdue once the review date is past, or when a running model has no validation."""
    if next_due is None:
        return "overdue" if deployed else "not deployed"
    return "overdue" if next_due < today else "current"


class OverdueReview(BaseModel):
    model: str
    owner: str
    risk_tier: int
    last_validated: date | None
    next_review: date | None
    message: str


def overdue_reviews(entries: list[InventoryEntry], today: date) -> list[OverdueReview]:
    """The models past their review date (or running without a validation record) on `today`."""
    found = []
    for e in entries:
        if review_status(e.next_review, e.deployed, today) != "overdue":
            continue
        if e.next_review is None:
            why = "runs with no promotion record on main: last validation unknown"
        else:
            why = (
                f"review was due {e.next_review.isoformat()} (last validation "
                f"{e.last_validated.isoformat() if e.last_validated else '?'}, "
                f"{(today - e.next_review).days} days overdue)"
            )
        found.append(
            OverdueReview(
                model=e.model,
                owner=e.owner,
                risk_tier=e.risk_tier,
                last_validated=e.last_validated,
                next_review=e.next_review,
                message=f"model {e.model} (tier {e.risk_tier}, owner {e.owner}): {why}",
            )
        )
    return found
