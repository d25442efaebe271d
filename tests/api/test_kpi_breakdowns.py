"""``/api/v1/kpis/``: breakdowns (``group_by``), the "none" filter values, imported owners as
filter values, the cycles and the lead cohort, all as the queries compute them."""

from datetime import date

import pytest

from metrics import queries
from metrics.api import to_json
from metrics.kpis import KpiFilters, Period
from tests.api.conftest import fields_of
from tests.factories import SourceFactory, UserFactory
from tests.metrics.factories import (
    NEW_YORK,
    HandoffFactory,
    MetricLeadFactory,
    accepted,
    lost,
    new_york,
    sales_rep,
    utc,
    won,
)

pytestmark = pytest.mark.django_db
MARCH = {"preset": "custom", "start": "2026-03-01", "end": "2026-03-31"}
MARCH_PERIOD = Period.from_dates(date(2026, 3, 1), date(2026, 3, 31), NEW_YORK)
Q1 = {"preset": "custom", "start": "2026-01-01", "end": "2026-03-31"}


@pytest.fixture
def imported_world():
    """As after a CRM import: deals of an imported owner (an inactive user with no sales-rep
    record) without leads, one at 23:30 New York time on 31 March (1 April in UTC); a rep on
    Mia's team; a deal with neither owner nor lead."""
    mia = UserFactory(username="mia", first_name="Mia")
    rep = sales_rep("rep", manager=mia).user
    imported = UserFactory(username="agent.imported", is_active=False)
    webinar = SourceFactory(name="Webinar")
    won(owner=imported, lead=None, created_at=utc(3, 1), closed_at=utc(3, 11), amount=1000)
    won(owner=imported, lead=None, created_at=utc(3, 1), closed_at=new_york(3, 31, 23, 30))
    lost(owner=imported, lead=None, created_at=utc(2, 1), closed_at=utc(3, 5))
    won(
        owner=rep,
        lead=MetricLeadFactory(source=webinar, created_at=utc(2, 1)),
        created_at=utc(2, 21),
        closed_at=utc(3, 3),
        amount=3000,
    )
    lost(owner=None, lead=None, created_at=utc(3, 2), closed_at=utc(3, 4))
    accepted(at=utc(3, 3), assignee=imported, lead=MetricLeadFactory(source=webinar))
    HandoffFactory(assignee=None, lead=MetricLeadFactory(source=None))
    return {"mia": mia, "rep": rep, "imported": imported, "webinar": webinar}


def test_an_imported_owner_is_a_valid_filter(reader_api, imported_world):
    imported = imported_world["imported"]
    response = reader_api.get("/api/v1/kpis/opportunity_results/", {**MARCH, "owner": imported.pk})
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert (data["won"], data["lost"], data["win_rate"]) == (2, 1, 2 / 3)


@pytest.mark.parametrize("by", ["owner", "team", "source", "campaign", "tier", "month"])
@pytest.mark.parametrize(
    "name", ["opportunity_results", "lead_acceptance", "response_time", "lead_cohort"]
)
def test_group_by_equals_the_breakdown_query(reader_api, imported_world, name, by):
    response = reader_api.get(f"/api/v1/kpis/{name}/", {**MARCH, "group_by": by})
    assert response.status_code == 200, response.content
    body = response.json()
    read = getattr(queries, f"{name}_by")
    assert body["group_by"] == by
    assert body["data"] == to_json(read(MARCH_PERIOD, KpiFilters(), by=by))


def test_group_by_owner_gives_per_owner_figures(reader_api, imported_world):
    body = reader_api.get(
        "/api/v1/kpis/opportunity_results/", {**MARCH, "group_by": "owner"}
    ).json()
    rows = {row["group"]["name"]: row["results"] for row in body["data"]}
    assert list(rows) == ["agent.imported", "rep", "No owner"]
    imported = rows["agent.imported"]
    assert (imported["won"], imported["lost"], imported["average_deal_size"]) == (
        2,
        1,
        "1000.00",
    )
    # Created 1 March 12:00 UTC → closed 11 March (10 days), and → 31 March 23:30 New York,
    # 1 April 03:30 UTC (30 days 15.5 hours).
    assert imported["median_won_opportunity_cycle_days"] == pytest.approx((10 + 30 + 15.5 / 24) / 2)
    assert imported["median_cycle_days"] is None  # no lead, no lead cycle
    assert body["data"][-1]["group"] == {"by": "owner", "id": None, "name": "No owner"}


def test_group_by_month_counts_in_local_months_though_the_api_speaks_utc(
    reader_api, imported_world
):
    body = reader_api.get("/api/v1/kpis/opportunity_results/", {**Q1, "group_by": "month"}).json()
    assert [(row["group"]["id"], row["results"]["won"]) for row in body["data"]] == [
        ("2026-03-01", 3)
    ]


def test_none_selects_the_rows_without_one(reader_api, imported_world):
    response = reader_api.get(
        "/api/v1/kpis/opportunity_results/", {**MARCH, "owner": "none", "source": "none"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["filters"]["without"] == ["owner", "source"]
    assert (body["data"]["won"], body["data"]["lost"]) == (0, 1)
    no_team = reader_api.get("/api/v1/kpis/lead_acceptance/", {**MARCH, "team": "none"}).json()
    assert (no_team["data"]["accepted"], no_team["data"]["pending"]) == (1, 1)


def test_the_lead_cohort_names_its_day_definitions(reader_api, imported_world):
    index = reader_api.get("/api/v1/kpis/").json()["kpis"]
    cohort = next(kpi for kpi in index if kpi["name"] == "lead_cohort")
    assert "calendar days" in cohort["description"] and "elapsed days" in cohort["description"]
    assert cohort["group_by"] == ["owner", "team", "source", "campaign", "tier", "month"]
    data = reader_api.get("/api/v1/kpis/lead_cohort/", MARCH).json()["data"]
    assert set(data) >= {"median_elapsed_days_to_win", "median_calendar_days_to_win", "time_zone"}


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("pipeline_and_revenue", {"group_by": "owner"}, "group_by"),
        ("opportunity_results", {"group_by": "region"}, "group_by"),
        ("opportunity_results", {"owner": "nobody"}, "owner"),
        ("opportunity_results", {"team": "nobody"}, "team"),
    ],
)
def test_a_bad_breakdown_or_none_value_is_400_naming_it(reader_api, name, params, field):
    response = reader_api.get(f"/api/v1/kpis/{name}/", params)
    assert response.status_code == 400
    assert field in fields_of(response)
