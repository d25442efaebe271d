"""Reads of the target-account list, and the one rule of which list applied when.

"From a target account" means: the account is on the list version in force at the instant
asked, read as ``leads.selectors.version_in_force`` reads every definition. A lead's badge and
the lead list's filter ask about now; a KPI period asks about its end (now, while it runs), so
a past period keeps the list it closed with whatever is published later, and the running one
follows the list agreed for it (docs/adr/0011-target-accounts.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet, Subquery
from django.utils import timezone

from leads.choices import DefinitionStatus
from leads.models import Account, TargetAccount, TargetAccountListVersion
from leads.selectors import version_in_force


def list_in_force(*, at: datetime | None = None) -> TargetAccountListVersion | None:
    return version_in_force(TargetAccountListVersion, at=at)


def list_draft() -> TargetAccountListVersion | None:
    """The newest draft (the one the edit page works on), if any."""
    return (
        TargetAccountListVersion.objects.filter(status=DefinitionStatus.DRAFT)
        .order_by("-number")
        .first()
    )


def period_instant(end: datetime, *, now: datetime | None = None) -> datetime:
    """The instant whose list counts for a period ending (exclusive) at ``end``: its last
    instant, or now while it runs (or has not begun: nothing is counted in it yet)."""
    return min(now or timezone.now(), end - timedelta(microseconds=1))


def list_for_period(
    end: datetime, *, now: datetime | None = None
) -> TargetAccountListVersion | None:
    """The list a KPI period ending at ``end`` is counted under (``period_instant``)."""
    return list_in_force(at=period_instant(end, now=now))


def list_rows(version: TargetAccountListVersion | None, *, query: str = "") -> QuerySet:
    """A version's accounts for the list pages, by tier then name, searched by name or domain;
    the caller paginates. No version: no rows."""
    if version is None:
        return TargetAccount.objects.none()
    rows = TargetAccount.objects.filter(version=version).select_related("account")
    if query:
        rows = rows.filter(Q(account__name__icontains=query) | Q(account__domain__icontains=query))
    return rows.order_by("tier", "account__name", "pk")


def _version_at(at: datetime) -> Subquery:
    """The id of the published list in force at ``at``, as a subquery."""
    return Subquery(
        TargetAccountListVersion.objects.filter(
            status=DefinitionStatus.PUBLISHED, effective_from__lte=at
        )
        .order_by("-effective_from")
        .values("pk")[:1]
    )


def on_list_q(account: str, *, at: datetime) -> Q:
    """A filter on a queryset whose field (or alias) ``account`` is an account id: the account
    is on the list in force at ``at``. Subqueries only: it adds no query of its own."""
    accounts = TargetAccount.objects.filter(version_id=_version_at(at)).values("account_id")
    return Q(**{f"{account}__in": accounts})


@dataclass(frozen=True)
class TargetBadge:
    """What the lead page says about the lead's account on the list in force."""

    version_number: int
    tier: str
    tier_label: str
    note: str


def account_badge(account: Account | None) -> TargetBadge | None:
    """The account's row on the list in force now, as a badge; None when it is not on it."""
    if account is None:
        return None
    row = (
        TargetAccount.objects.filter(account=account, version_id=_version_at(timezone.now()))
        .select_related("version")
        .first()
    )
    if row is None:
        return None
    return TargetBadge(row.version.number, row.tier, row.get_tier_display(), row.note)


def lead_target_badge(lead) -> TargetBadge | None:
    """The lead page's panel: its account's badge (``account_badge``)."""
    return account_badge(lead.account) if lead.account_id else None
