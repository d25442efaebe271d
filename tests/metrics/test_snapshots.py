"""Dashboard snapshots: served while fresh, refreshed by the beat task, equal to the raw KPIs."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.utils import timezone

from metrics import dashboards, snapshots, tasks
from metrics.kpis import KpiFilters, Period
from metrics.models import KpiSnapshot
from metrics.queries.shared import reads_shared
from tests.factories import SourceFactory
from tests.metrics.factories import MARCH, MetricLeadFactory, accepted, rejected, utc

pytestmark = pytest.mark.django_db
ZONE = ZoneInfo(settings.DISPLAY_TIME_ZONE)


@pytest.fixture
def handoffs():
    source = SourceFactory(name="Webinars")
    accepted(at=utc(3, 3), lead=MetricLeadFactory(source=source))
    rejected(at=utc(3, 3), lead=MetricLeadFactory(source=source))
    return source


def acceptance_rate(data) -> float | None:
    return data["acceptance"].rate


def test_first_view_computes_and_stores_the_raw_figures(handoffs):
    data, computed_at = snapshots.page_data("handoffs", MARCH, KpiFilters())
    assert data == dashboards.handoff_page(MARCH, KpiFilters())
    assert KpiSnapshot.objects.get().computed_at == computed_at
    assert acceptance_rate(data) == 0.5


def test_a_fresh_snapshot_is_served_then_recomputed_once_a_minute_old(handoffs, monkeypatch):
    snapshots.page_data("handoffs", MARCH, KpiFilters())
    accepted(at=utc(3, 4), lead=MetricLeadFactory(source=handoffs))

    served, _ = snapshots.page_data("handoffs", MARCH, KpiFilters())
    assert acceptance_rate(served) == 0.5  # within the minute: the stored figures

    later = timezone.now() + timedelta(seconds=snapshots.MAX_AGE_SECONDS + 1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    recomputed, computed_at = snapshots.page_data("handoffs", MARCH, KpiFilters())
    assert acceptance_rate(recomputed) == pytest.approx(2 / 3)
    assert computed_at == later


def test_filters_and_periods_are_separate_snapshots(handoffs):
    snapshots.page_data("handoffs", MARCH, KpiFilters())
    snapshots.page_data("handoffs", MARCH, KpiFilters(source_ids=[handoffs.pk]))
    snapshots.page_data("overview", MARCH, KpiFilters())
    assert KpiSnapshot.objects.count() == 3


def test_the_beat_task_refreshes_hot_snapshots_and_drops_cold_ones(handoffs):
    snapshots.page_data("handoffs", MARCH, KpiFilters())
    snapshots.page_data("funnel", MARCH, KpiFilters())
    long_ago = timezone.now() - timedelta(seconds=snapshots.COLD_SECONDS + 60)
    KpiSnapshot.objects.filter(params__page="funnel").update(
        requested_at=long_ago, computed_at=long_ago
    )
    stale = timezone.now() - timedelta(seconds=snapshots.REFRESH_SECONDS + 5)
    KpiSnapshot.objects.filter(params__page="handoffs").update(computed_at=stale)
    accepted(at=utc(3, 4), lead=MetricLeadFactory(source=handoffs))

    result = tasks.refresh_snapshots()

    assert result["refreshed"] == 1 and result["dropped"] == 1
    snapshot = KpiSnapshot.objects.get()
    assert snapshot.computed_at > stale
    served, _ = snapshots.page_data("handoffs", MARCH, KpiFilters())
    assert served == dashboards.handoff_page(MARCH, KpiFilters())  # equal to the raw KPIs
    assert acceptance_rate(served) == pytest.approx(2 / 3)


def test_refresh_is_idempotent(handoffs):
    snapshots.page_data("handoffs", MARCH, KpiFilters())
    KpiSnapshot.objects.update(computed_at=timezone.now() - timedelta(minutes=5))
    assert snapshots.snapshots_refresh()["refreshed"] == 1
    assert snapshots.snapshots_refresh()["refreshed"] == 0  # fresh now: nothing to do


def test_a_refresh_round_reads_a_kpi_once_for_the_pages_that_share_it(handoffs):
    # The overview's tiles repeat the handoffs page's acceptance, response time, SLA and
    # feedback reads for the same period and filters: one round computes each once, and both
    # snapshots still hold exactly what each page computes on its own.
    for page in ("handoffs", "overview"):
        snapshots.page_data(page, MARCH, KpiFilters())
    started = timezone.now()
    KpiSnapshot.objects.update(computed_at=started - timedelta(minutes=5))
    accepted(at=utc(3, 4), lead=MetricLeadFactory(source=handoffs))

    result = snapshots.snapshots_refresh()

    assert result["refreshed"] == 2
    assert result["reads_shared"] >= 4
    for page, build in (("handoffs", dashboards.handoff_page), ("overview", dashboards.overview)):
        served, computed_at = snapshots.page_data(page, MARCH, KpiFilters())
        assert served == build(MARCH, KpiFilters())
        assert started <= computed_at <= timezone.now()
    # Outside a round nothing is shared: a new fact shows in the next computation at once.
    rejected(at=utc(3, 5), lead=MetricLeadFactory(source=handoffs))
    assert dashboards.handoff_page(MARCH, KpiFilters())["acceptance"].rate == 0.5


def test_the_snapshots_one_request_computes_share_their_reads_and_are_dated_by_the_first(handoffs):
    with reads_shared() as reads:
        overview, overview_at = snapshots.page_data("overview", MARCH, KpiFilters())
        page, page_at = snapshots.page_data("handoffs", MARCH, KpiFilters())
    assert reads.shared >= 4  # acceptance, response time, SLA, feedback: read once
    assert page == dashboards.handoff_page(MARCH, KpiFilters())
    assert overview == dashboards.overview(MARCH, KpiFilters())
    assert overview_at == page_at == reads.since


def test_periods_running_today_share_one_trends_snapshot(handoffs):
    # The weekly trends end before today for any period still running: this week, the last
    # four weeks and this quarter show the same weeks, so they are one snapshot.
    today = timezone.localdate(timezone.now(), ZONE)
    periods = [
        Period.from_dates(today - timedelta(days=today.weekday()), today, ZONE),
        Period.from_dates(today - timedelta(days=27), today, ZONE),
        Period.from_dates(today - timedelta(days=80), today + timedelta(days=10), ZONE),
    ]
    served = [snapshots.page_data("trends", period, KpiFilters())[0] for period in periods]
    assert KpiSnapshot.objects.count() == 1
    assert served[0] == served[1] == served[2] == dashboards.trends_page(periods[1], KpiFilters())
    # A period that ended earlier has its own weeks.
    ended = Period.from_dates(today - timedelta(days=60), today - timedelta(days=30), ZONE)
    assert snapshots.page_data("trends", ended, KpiFilters())[0].as_of != served[0].as_of
    assert KpiSnapshot.objects.count() == 2
