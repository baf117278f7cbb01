"""`review-date`: every model is re-validated on its cadence (the inventory's review dates).

Flags each model of the reviewed model configs whose last validation (newest promotion on main)
plus `governance.review_every_months` lies before the audit's day, and each model that runs
somewhere with no promotion on main at all. The dates are `mlgate.inventory` 's, so
`mlgate inventory` and `mlgate audit verify` cannot disagree about them.
"""

from __future__ import annotations

from mlgate.audit.verify import AuditContext, Gap, register_check
from mlgate.inventory.catalog import build_inventory
from mlgate.inventory.review import overdue_reviews


@register_check("review-date", scope="audit", about="no model is past its next review date")
def review_dates(ctx: AuditContext) -> list[Gap]:
    today = ctx.now.date()
    inventory = build_inventory(ctx.settings, today=today)
    return [
        ctx.gap("review-date", o.message, model=o.model)
        for o in overdue_reviews(inventory.models, today)
    ]
