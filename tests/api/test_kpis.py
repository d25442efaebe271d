"""Every dashboard KPI as JSON, with the dashboards' filters: the numbers are those of
``metrics.queries`` for the same period and filters."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from metrics import queries
from metrics.api import KPIS, to_json
from metrics.kpis import KpiFilters, Period
from metrics.tasks import refresh_snapshots
from tests.api.conftest import errors_of, fields_of
from tests.factories import SourceFactory
from tests.metrics.factories import (
    NEW_YORK,
    HandoffFactory,
    MetricLeadFactory,
    accepted,
    history,
    rejected,
    utc,
    won,
)

pytestmark = pytest.mark.django_db
MARCH = {"preset": "custom", "start": "2026-03-01", "end": "2026-03-31"}
MARCH_PERIOD = Period.from_dates(date(2026, 3, 1), date(2026, 3, 31), NEW_YORK)


@pytest.fixture
def march(db):
    """Webinars: 2 accepted, 1 rejected; Ads: 1 rejected, 1 pending. One won deal of 12,000."""
    webinars = SourceFactory(name="Webinars")
    ads = SourceFactory(name="Ads")
    for _ in range(2):
        accepted(at=utc(3, 3), lead=MetricLeadFactory(source=webinars))
    rejected(at=utc(3, 3), lead=MetricLeadFactory(source=webinars))
    rejected(at=utc(3, 4), lead=MetricLeadFactory(source=ads), reason_key="no_budget")
    HandoffFactory(lead=MetricLeadFactory(source=ads))
    deal_lead = MetricLeadFactory(source=webinars)
    history(deal_lead, ("lead", utc(3, 2)), ("mql", utc(3, 2)), ("opportunity", utc(3, 5)))
    won(closed_at=utc(3, 20), lead=deal_lead, amount=12_000)
    return {"webinars": webinars, "ads": ads}


def test_the_index_lists_every_kpi(reader_api):
    body = reader_api.get("/api/v1/kpis/").json()
    assert [row["name"] for row in body["kpis"]] == list(KPIS)
    assert body["kpis"][1]["url"].endswith("/api/v1/kpis/lead_acceptance")


@pytest.mark.parametrize("name", [name for name in KPIS if name != "overview"])
def test_every_kpi_equals_the_query_for_the_same_period_and_filters(reader_api, march, name):
    response = reader_api.get(f"/api/v1/kpis/{name}/", {**MARCH, "source": march["webinars"].pk})
    assert response.status_code == 200, response.content
    body = response.json()
    filters = KpiFilters(source_ids=[march["webinars"].pk])
    read = getattr(queries, name)
    assert body["data"] == to_json(read(MARCH_PERIOD, filters))
    assert body["kpi"] == name
    assert body["period"] == {
        "start": "2026-03-01T00:00:00-05:00",
        "end": "2026-04-01T00:00:00-04:00",
        "first_day": "2026-03-01",
        "last_day": "2026-03-31",
        "time_zone": "America/New_York",
    }
    assert body["filters"]["source_ids"] == [march["webinars"].pk]


def test_a_kpi_is_answered_from_a_snapshot_the_beat_keeps_fresh(reader_api, march, monkeypatch):
    first = reader_api.get("/api/v1/kpis/lead_acceptance/", MARCH).json()
    assert first["data"]["accepted"] == 2
    accepted(at=utc(3, 6), lead=MetricLeadFactory(source=march["ads"]))

    # Within the minute: the same stored figures, and when they were computed.
    again = reader_api.get("/api/v1/kpis/lead_acceptance/", MARCH).json()
    assert (again["data"], again["computed_at"]) == (first["data"], first["computed_at"])

    # The beat's refresh recomputes the keys being read once they are 30 s old.
    later = timezone.now() + timedelta(seconds=45)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    assert refresh_snapshots.delay().get()["refreshed"] == 1
    fresh = reader_api.get("/api/v1/kpis/lead_acceptance/", MARCH).json()
    assert fresh["data"]["accepted"] == 3
    assert fresh["computed_at"] > first["computed_at"]


def test_values_are_the_figures_people_read(reader_api, march):
    acceptance = reader_api.get("/api/v1/kpis/lead_acceptance/", MARCH).json()["data"]
    assert acceptance == {"accepted": 2, "rejected": 2, "pending": 1, "rate": 0.5}
    ads = reader_api.get(
        "/api/v1/kpis/lead_acceptance/", {**MARCH, "source": march["ads"].pk}
    ).json()["data"]
    assert ads["rate"] == 0.0
    results = reader_api.get("/api/v1/kpis/opportunity_results/", MARCH).json()["data"]
    # Money is an exact decimal string, never a float.
    assert (results["won"], results["won_amount"], results["average_deal_size"]) == (
        1,
        "12000.00",
        "12000.00",
    )
    pipeline = reader_api.get("/api/v1/kpis/pipeline_and_revenue/", MARCH).json()["data"]
    assert pipeline["as_of"].startswith("2026-04-01T")
    assert pipeline["total"]["won_amount"] == "12000.00"


def test_the_overview_has_each_tile_now_and_before(reader_api, march):
    body = reader_api.get("/api/v1/kpis/overview/", MARCH).json()
    tiles = {tile["key"]: tile for tile in body["data"]}
    assert tiles["acceptance"]["change"]["current"] == 0.5
    assert tiles["acceptance"]["change"]["previous"] is None
    assert tiles["deal_size"]["change"]["current"] == "12000.00"


def test_the_default_period_is_the_dashboards_default(reader_api):
    body = reader_api.get("/api/v1/kpis/lead_acceptance/").json()
    first, last = date.fromisoformat(body["period"]["first_day"]), body["period"]["last_day"]
    assert (date.fromisoformat(last) - first).days == 27  # last 4 weeks


@pytest.mark.parametrize(
    "params, field",
    [
        ({"preset": "forever"}, "preset"),
        ({"preset": "custom", "start": "2026-02-30", "end": "2026-03-31"}, "start"),
        ({"preset": "custom", "start": "2026-03-31", "end": "2026-03-01"}, "end"),
        ({"preset": "custom", "start": "2026-03-01"}, None),
        ({"preset": "custom", "start": "0001-01-01", "end": "0001-01-02"}, "start"),
        ({"preset": "custom", "start": "9999-12-30", "end": "9999-12-31"}, "start"),
        ({"source": "abc"}, "source"),
        ({"source": "999999"}, "source"),
        ({"channel": "tv"}, "channel"),
        ({"tier": "Z"}, "tier"),
        ({"team": "999999"}, "team"),
    ],
)
def test_a_bad_parameter_is_400_naming_it(reader_api, params, field):
    response = reader_api.get("/api/v1/kpis/lead_acceptance/", params)
    assert response.status_code == 400
    assert field in fields_of(response)


def test_an_unknown_kpi_is_404(reader_api):
    response = reader_api.get("/api/v1/kpis/happiness/")
    assert response.status_code == 404
    assert "lead_acceptance" in errors_of(response)[0]["message"]
