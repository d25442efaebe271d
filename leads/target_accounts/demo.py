"""The demo data's target-account list: the 25 accounts with the most pipeline since the start
of the quarter before ``as_of``, in three tiers, published from that quarter's start so the
scorecard's target-account figures are not zero on a first run.

Run by ``seed_demo`` after the facts are loaded (``leads.demo.hooks``). A list in force that
still has accounts is left alone (definitions survive ``--reset``; the accounts do not, so a
reset's seed publishes a new list of the new accounts).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum

from leads.models import Account, TargetAccountListVersion
from leads.selectors import latest_published_effective_from
from leads.services.definitions import definition_create_draft
from leads.target_accounts.selectors import list_in_force
from leads.target_accounts.services import target_accounts_import, target_list_publish

DEMO_SIZE = 25
TIERS = ((5, "1"), (10, "2"), (10, "3"))  # the first 5 are tier 1, the next 10 tier 2, …
NOTE = "Demo target accounts (seed_demo): the accounts with the most recent pipeline."


def _quarter_start(as_of: datetime) -> datetime:
    day = as_of.astimezone(ZoneInfo(settings.DISPLAY_TIME_ZONE)).date()
    first_month = (day.month - 1) // 3 * 3 + 1
    start = day.replace(month=first_month, day=1)
    previous = (start - timedelta(days=1)).replace(day=1)
    previous = previous.replace(month=(previous.month - 1) // 3 * 3 + 1)
    return datetime.combine(previous, time.min, tzinfo=ZoneInfo(settings.DISPLAY_TIME_ZONE))


@transaction.atomic
def demo_target_accounts(*, as_of: datetime) -> str:
    in_force = list_in_force(at=as_of)
    if in_force is not None and in_force.accounts.exists():
        return ""
    start = _quarter_start(as_of)
    recent = Q(opportunities__created_at__gte=start, opportunities__created_at__lt=as_of)
    top = (
        Account.objects.exclude(domain="")
        .annotate(pipeline=Sum("opportunities__amount", filter=recent))
        .filter(pipeline__gt=0)
        .order_by("-pipeline", "pk")
        .values_list("domain", flat=True)[:DEMO_SIZE]
    )
    domains = list(top)
    if not domains:
        return ""
    tiers = [tier for size, tier in TIERS for _ in range(size)]
    text = "\n".join(f"{domain}, {tier}" for domain, tier in zip(domains, tiers, strict=False))
    draft = definition_create_draft(model=TargetAccountListVersion, actor=None, note=NOTE)
    target_accounts_import(draft=draft, text=text)
    latest = latest_published_effective_from(TargetAccountListVersion)
    effective_from = start if latest is None else max(start, latest + timedelta(minutes=1))
    target_list_publish(draft=draft, actor=None, effective_from=effective_from)
    return f"Demo target accounts: list v{draft.number} with {len(domains)} accounts."
