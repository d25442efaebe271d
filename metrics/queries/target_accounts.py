"""Pipeline and revenue from target accounts (account-based marketing, docs/kpis.md).

An opportunity's account is its own, else its lead's. It is *from a target account* when that
account is on the target-account list the period is counted under: the list in force at the
period's end, or now while it runs (``leads.target_accounts.selectors.period_instant``). A past
period keeps the list it closed with; publishing a new list changes the running period only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from leads.choices import OpportunityStatus
from leads.models import Lead, Opportunity
from leads.target_accounts.selectors import on_list_q, period_instant
from metrics import kpis
from metrics.kpis import NO_FILTERS, KpiFilters, Period
from metrics.queries.common import ZERO, _in, _opportunities
from metrics.queries.revenue import open_opportunities


@dataclass(frozen=True)
class TargetAccountFigures:
    """Opportunities created in the period (pipeline) and won in it (revenue): those from
    target accounts, and all of them, so each figure has its share."""

    pipeline_count: int
    pipeline_amount: Decimal
    won_count: int
    won_amount: Decimal
    all_pipeline_amount: Decimal
    all_won_amount: Decimal

    @property
    def pipeline_share(self) -> float | None:
        return kpis.rate(float(self.pipeline_amount), float(self.all_pipeline_amount))

    @property
    def won_share(self) -> float | None:
        return kpis.rate(float(self.won_amount), float(self.all_won_amount))


def _targeted(period: Period, now: datetime | None) -> Q:
    """On an opportunity: its account (its own, else its lead's) is on the period's list.

    The lead's account is read only for the deals without one of their own, through the
    leads of the listed accounts (a few hundred): a ``COALESCE`` of the two would join every
    deal to its lead, a probe of the lead table per deal (~15,000 per quarter at 1M leads)."""
    at = period_instant(period.end, now=now)
    listed_leads = Lead.objects.filter(on_list_q("account_id", at=at)).values("pk")
    return on_list_q("account_id", at=at) | Q(account_id__isnull=True, lead_id__in=listed_leads)


def _won_in(period: Period) -> Q:
    return Q(status=OpportunityStatus.WON) & _in("closed_at", period)


def target_account_figures(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> TargetAccountFigures:
    """One aggregate over the opportunities created or won in the period (the list's accounts
    are a subquery of it)."""
    created, won, targeted = _in("created_at", period), _won_in(period), _targeted(period, now)
    row = (
        _opportunities(filters)
        .filter(created | won)
        .order_by()
        .aggregate(
            pipeline_count=Count("pk", filter=created & targeted),
            pipeline_amount=Sum("amount", filter=created & targeted),
            won_count=Count("pk", filter=won & targeted),
            won_amount=Sum("amount", filter=won & targeted),
            all_pipeline_amount=Sum("amount", filter=created),
            all_won_amount=Sum("amount", filter=won),
        )
    )
    return TargetAccountFigures(
        pipeline_count=row["pipeline_count"],
        pipeline_amount=kpis.money(row["pipeline_amount"]) or ZERO,
        won_count=row["won_count"],
        won_amount=kpis.money(row["won_amount"]) or ZERO,
        all_pipeline_amount=kpis.money(row["all_pipeline_amount"]) or ZERO,
        all_won_amount=kpis.money(row["all_won_amount"]) or ZERO,
    )


def target_pipeline_opportunities(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> QuerySet[Opportunity]:
    """Drill-down: opportunities created in the period on an account of the period's list."""
    return (
        _opportunities(filters)
        .filter(_in("created_at", period), _targeted(period, now))
        .select_related("lead__source", "owner")
        .order_by("-created_at", "-pk")
    )


def target_won_opportunities(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> QuerySet[Opportunity]:
    """Drill-down: opportunities won in the period on an account of the period's list."""
    return (
        _opportunities(filters)
        .filter(_won_in(period), _targeted(period, now))
        .select_related("lead__source", "owner")
        .order_by("-closed_at", "-pk")
    )


def target_open_opportunities(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> QuerySet[Opportunity]:
    """The open pipeline of target accounts: opportunities open at the period's end (or now)
    on an account of the period's list; what the target-account revenue goal forecasts from."""
    return open_opportunities(period, filters, now=now).filter(_targeted(period, now))
