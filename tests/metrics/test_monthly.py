"""The monthly review: its figures from the KPI reads (funnel trend, conversion by source and
campaign, the campaigns that create pipeline), freezing them, and its pages."""

from datetime import date, datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from leads.models import Campaign
from leads.roles import SALES_REP, VIEWER
from metrics import goals, services
from metrics.models import MonthlyReview, MonthlyReviewSnapshot
from metrics.monthly import month_period, monthly_figures
from tests.factories import SourceFactory, UserFactory
from tests.metrics.factories import NEW_YORK, MetricLeadFactory, OpportunityFactory, history, won

pytestmark = pytest.mark.django_db

MARCH = goals.month_of(date(2026, 3, 1))
NOW = datetime(2026, 4, 6, 10, tzinfo=NEW_YORK)  # the first Monday after March


def ny(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 12, tzinfo=NEW_YORK)


@pytest.fixture
def now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)


@pytest.fixture
def march_facts():
    """March: 3 webinar leads (2 from the spring campaign, one of which became an opportunity
    worth $5,000, won) and 1 ads lead; February: 2 leads, one reached MQL."""
    webinar, ads = SourceFactory(name="Webinar"), SourceFactory(name="Ads")
    spring = Campaign.objects.create(name="Spring webinar", source=webinar)
    first = MetricLeadFactory(source=webinar, campaign=spring, created_at=ny(3, 2))
    history(first, ("lead", ny(3, 2)), ("mql", ny(3, 3)), ("sql", ny(3, 5)),
            ("opportunity", ny(3, 9)), ("customer", ny(3, 20)))  # fmt: skip
    won(lead=first, amount=5000, created_at=ny(3, 9), closed_at=ny(3, 20))
    MetricLeadFactory(source=webinar, campaign=spring, created_at=ny(3, 10))
    MetricLeadFactory(source=webinar, created_at=ny(3, 11))
    MetricLeadFactory(source=ads, created_at=ny(3, 12))
    february = MetricLeadFactory(source=ads, created_at=ny(2, 10))
    history(february, ("lead", ny(2, 10)), ("mql", ny(2, 11)))
    MetricLeadFactory(source=ads, created_at=ny(2, 12))
    OpportunityFactory(lead=None, amount=100, created_at=ny(3, 15))  # no campaign
    return spring


def test_the_monthly_figures_come_from_the_kpi_reads(march_facts, now):
    figures = monthly_figures(month_period(MARCH))
    trend = {row["label"]: row for row in figures["trend"]}
    assert list(trend) == ["Oct 2025", "Nov 2025", "Dec 2025", "Jan 2026", "Feb 2026", "Mar 2026"]
    assert (trend["Mar 2026"]["leads"], trend["Mar 2026"]["mql"], trend["Mar 2026"]["won"]) == (
        4, 1, 1,
    )  # fmt: skip
    assert (trend["Feb 2026"]["leads"], trend["Feb 2026"]["mql"]) == (2, 1)
    assert trend["Mar 2026"]["maturing"] and not trend["Jan 2026"]["maturing"]
    assert figures["by_source"][0] == {
        "name": "Webinar",
        "leads": 3,
        "opportunities": 1,
        "lead_to_opportunity": pytest.approx(1 / 3),
        "opportunity_to_won": 1.0,
    }
    spring, no_campaign = figures["by_campaign"][:2]
    assert spring == {
        "name": "Spring webinar",
        "leads": 2,
        "won_leads": 1,
        "opportunities": 1,
        "pipeline_amount": "5000.00",
        "won_amount": "5000.00",
    }
    assert (no_campaign["name"], no_campaign["pipeline_amount"]) == ("No campaign", "100.00")


def test_the_review_opens_for_the_month_just_ended_and_freezes(client, march_facts, now):
    rep = UserFactory(username="rep.monthly", role=SALES_REP)
    viewer = UserFactory(username="room.monthly", role=VIEWER)
    client.force_login(viewer)
    assert (
        "No monthly review is open yet" in client.get(reverse("meeting:monthly")).content.decode()
    )

    client.force_login(rep)
    opened = client.get(reverse("meeting:monthly"))
    assert opened["Location"] == reverse("meeting:monthly_detail", kwargs={"month": "2026-03"})
    review = MonthlyReview.objects.get()
    assert review.month == date(2026, 3, 1)
    page = client.get(opened["Location"]).content.decode()
    assert "Monthly review: March 2026" in page and "Spring webinar" in page
    assert "Freeze figures" in page

    client.force_login(viewer)
    freeze = reverse("meeting:monthly_freeze", kwargs={"month": "2026-03"})
    assert client.post(freeze).status_code == 403
    assert "Freeze figures" not in client.get(opened["Location"]).content.decode()

    client.force_login(rep)
    assert client.post(freeze).status_code == 302
    snapshot = MonthlyReviewSnapshot.objects.get()
    assert (snapshot.frozen_by, snapshot.figures["month"]["key"]) == (rep, "2026-03")
    assert "scorecard" in snapshot.figures
    # The review reopens with its frozen figures; "Live figures" shows today's.
    frozen = client.get(opened["Location"]).content.decode()
    assert "Frozen at" in frozen and "Spring webinar" in frozen
    assert "Live figures · as of" in client.get(opened["Location"] + "?live=1").content.decode()


def test_a_review_is_named_by_a_month(client, now):
    client.force_login(UserFactory(username="someone", role=VIEWER))
    for month in ("2026-Q1", "2026-13", "march"):
        url = reverse("meeting:monthly_detail", kwargs={"month": month})
        assert client.get(url).status_code == 404
    assert services.monthly_review_get_or_create(month=date(2026, 3, 17))[0].month == date(
        2026, 3, 1
    )
