"""The scorecard's "target accounts" figures: pipeline and revenue (won) from the accounts on
the shared target-account list, over the scorecard's period.

Read through a snapshot (``metrics.snapshots``, at most a minute old) like every goal's reading;
publishing a list forgets them (``forget_snapshots``), so the card follows a publish at once.
Which list counts: the one in force at the period's end, or now while it runs
(``metrics.queries.target_accounts``); the card names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.urls import reverse

from leads.target_accounts.selectors import list_for_period
from metrics import queries, snapshots
from metrics.filters import Preset
from metrics.goals import GoalPeriod
from metrics.kpis import NO_FILTERS, KpiFilters, Period
from metrics.models import KpiSnapshot

PAGE = "scorecard:target_accounts"


@dataclass(frozen=True)
class TargetCard:
    """What the snapshot keeps: the figures and the list they were counted under."""

    figures: queries.TargetAccountFigures
    version_number: int | None
    version_since: datetime | None


def _card(period: Period, filters: KpiFilters) -> TargetCard:
    version = list_for_period(period.end)
    return TargetCard(
        figures=queries.target_account_figures(period, filters),
        version_number=version.number if version else None,
        version_since=version.effective_from if version else None,
    )


snapshots.register(PAGE, _card)


def forget_snapshots(**_) -> None:
    """Publish hook of the target-account list: the figures are recomputed on the next view."""
    KpiSnapshot.objects.filter(params__page=PAGE).delete()


def _drill_url(kind: str, period: GoalPeriod) -> str:
    query = urlencode(
        {
            "preset": Preset.CUSTOM,
            "start": period.first_day.isoformat(),
            "end": period.last_day.isoformat(),
        }
    )
    return f"{reverse('metrics:drill', args=[kind])}?{query}"


def target_accounts_card(period: GoalPeriod) -> dict:
    """The figures of ``period`` so far, the list version they are counted under (None: no list
    published then, and the figures are zero), and the drill-downs behind each figure."""
    kpi_period = Period.from_dates(
        period.first_day, period.last_day, ZoneInfo(settings.DISPLAY_TIME_ZONE)
    )
    card, computed_at = snapshots.page_data(PAGE, kpi_period, NO_FILTERS)
    return {
        "figures": card.figures,
        "computed_at": computed_at,
        "version_number": card.version_number,
        "version_since": card.version_since,
        "pipeline_url": _drill_url("target_pipeline", period),
        "won_url": _drill_url("target_won", period),
    }
