"""Every drill-down link of every dashboard page lists exactly the rows its figure counts.

The pages are rendered with several sets of filters over a world where, as after a CRM import,
rows lack a source, a campaign, an owner or a lead, and owners are inactive users without a
sales-rep record. Every link to a drill-down is collected from the HTML (its figure: the
``data-rows`` attribute, else the link's text) and from the charts' JSON (the URL in
``customdata``, the figure in ``meta``), then followed: the list must hold that many rows.
(The pipeline review page has no drill-down links.)
"""

import json
from datetime import date
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from leads.choices import HandoffOutcome
from metrics.queries import GroupBy
from tests.factories import CampaignFactory, SourceFactory, UserFactory
from tests.metrics.factories import (
    ContentAssetFactory,
    HandoffFactory,
    MetricLeadFactory,
    OpportunityFactory,
    accepted,
    history,
    lost,
    new_york,
    rejected,
    sales_rep,
    shared,
    utc,
    won,
)

pytestmark = pytest.mark.django_db

MARCH = {"preset": "custom", "start": "2026-02-15", "end": "2026-03-31"}
PAGES = ("overview", "funnel", "handoffs", "pipeline", "content")
DRILL_PREFIX = "/dashboards/drill/"


@pytest.fixture
def world():
    """Two sources (one lead without), a campaign (most leads without), reps Ada and Bob on
    Mia's team, an imported owner (inactive, no rep record), and rows without an owner."""
    mia = UserFactory(username="mia", first_name="Mia")
    ada = sales_rep("ada", manager=mia).user
    bob = sales_rep("bob", manager=mia).user
    imported = UserFactory(username="imported.owner", is_active=False)
    webinar = SourceFactory(name="Webinar", origin="marketing")
    referral = SourceFactory(name="Referral", origin="sales")
    spring = CampaignFactory(
        name="Spring", source=webinar, cost=3000, starts_on=date(2026, 3, 1),
        ends_on=date(2026, 3, 30),
    )  # fmt: skip
    asset = ContentAssetFactory(title="ROI calculator", funnel_stage="bofu")

    leads = [
        MetricLeadFactory(source=webinar, campaign=spring, tier="A", owner=ada,
                          created_at=utc(3, 2)),
        MetricLeadFactory(source=webinar, tier="B", owner=bob, created_at=utc(3, 3)),
        MetricLeadFactory(source=referral, tier="B", owner=imported, created_at=utc(3, 4)),
        MetricLeadFactory(source=None, tier="C", owner=None, created_at=utc(3, 5)),
        MetricLeadFactory(source=None, campaign=None, tier="A", owner=imported,
                          created_at=new_york(3, 31, 23, 30)),
        MetricLeadFactory(source=referral, tier="D", owner=None, created_at=utc(2, 20)),
    ]  # fmt: skip
    for lead in leads[:4]:
        history(
            lead,
            ("lead", lead.created_at),
            ("mql", utc(3, 6)),
            ("sal", utc(3, 8)),
            ("opportunity", utc(3, 12)),
        )
    history(leads[5], ("lead", utc(2, 20)), ("mql", utc(2, 25)))

    due = {"response_due_at": utc(3, 10), "accept_due_at": utc(3, 12)}
    for lead, assignee in zip(leads, (ada, bob, imported, None, ada, None), strict=True):
        accepted(
            at=utc(3, 9),
            lead=lead,
            assignee=assignee,
            assigned_at=utc(3, 7),
            first_response_at=utc(3, 8),
            response_business_seconds=3600,
            **due,
        )
    rejected(at=utc(3, 11), lead=leads[3], assignee=None, assigned_at=utc(3, 7), **due)
    rejected(
        at=utc(3, 13),
        lead=leads[2],
        assignee=imported,
        assigned_at=utc(3, 8),
        first_response_at=utc(3, 11),
        response_business_seconds=7200,
        **due,
    )
    HandoffFactory(lead=leads[1], assignee=bob, assigned_at=new_york(2, 28, 23, 30),
                   outcome=HandoffOutcome.PENDING, **due)  # fmt: skip

    won(lead=leads[0], owner=ada, created_at=utc(3, 12), closed_at=utc(3, 20), amount=5000)
    lost(lead=leads[1], owner=bob, created_at=utc(3, 12), closed_at=utc(3, 22), amount=800)
    won(lead=leads[2], owner=imported, created_at=utc(3, 12), closed_at=new_york(3, 31, 23, 30))
    lost(lead=leads[3], owner=None, created_at=utc(3, 12), closed_at=utc(3, 25))
    won(lead=None, owner=imported, created_at=utc(1, 10), closed_at=utc(3, 2), amount=4000)
    lost(lead=None, owner=None, created_at=utc(2, 1), closed_at=new_york(2, 28, 23, 30))
    OpportunityFactory(lead=None, owner=None, created_at=utc(2, 10), amount=700)
    OpportunityFactory(lead=leads[5], owner=bob, created_at=utc(3, 1), amount=300)

    for lead, actor in ((leads[0], ada), (leads[3], None), (leads[2], imported)):
        shared(lead, asset, at=utc(3, 14), actor=actor)
    return {
        "mia": mia, "ada": ada, "bob": bob, "imported": imported,
        "webinar": webinar, "referral": referral, "spring": spring,
    }  # fmt: skip


def _filter_sets(world) -> dict[str, dict]:
    return {
        "period only": {},
        "a source or none": {"source": [world["webinar"].pk, "none"]},
        "owners, imported and none": {"owner": [world["ada"].pk, world["imported"].pk, "none"]},
        "no campaign, or Spring": {"campaign": ["none", world["spring"].pk]},
        "Mia's team": {"team": world["mia"].pk},
        "on no team, some tiers": {"team": "none", "tier": ["A", "C", "none"]},
    }


class _DrillLinks(HTMLParser):
    """The drill-down links of a page with their figures, and the charts' JSON."""

    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, str | None, list[str]]] = []
        self.charts: list[str] = []
        self._link: list | None = None
        self._script: list | None = None
        self.drill_count: int | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "a" and (attributes.get("href") or "").startswith(DRILL_PREFIX):
            self._link = [attributes["href"], attributes.get("data-rows"), []]
        elif tag == "script" and attributes.get("type") == "application/json":
            self._script = []
        elif attributes.get("id") == "drill-count":
            self.drill_count = int(attributes["data-rows"])

    def handle_endtag(self, tag):
        if tag == "a" and self._link is not None:
            self.links.append((self._link[0], self._link[1], self._link[2]))
            self._link = None
        elif tag == "script" and self._script is not None:
            self.charts.append("".join(self._script))
            self._script = None

    def handle_data(self, data):
        if self._link is not None:
            self._link[2].append(data)
        if self._script is not None:
            self._script.append(data)


def _figures(html: str) -> list[tuple[str, int]]:
    parser = _DrillLinks()
    parser.feed(html)
    found = []
    for url, rows, text in parser.links:
        figure = rows if rows not in (None, "") else "".join(text).strip().replace(",", "")
        assert figure.isdigit(), f"drill link without a row count: {url} ({figure!r})"
        found.append((url, int(figure)))
    for chart in parser.charts:
        for trace in json.loads(chart).get("data", []):
            urls, counts = trace.get("customdata") or [], trace.get("meta")
            for index, url in enumerate(urls):
                if url:
                    assert counts is not None, f"chart link without a row count: {url}"
                    found.append((url, counts[index]))
    return found


def _rows_listed(client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, url
    parser = _DrillLinks()
    parser.feed(response.content.decode())
    assert parser.drill_count is not None, url
    return parser.drill_count


def _walk(client, params: dict, seen: dict) -> list[str]:
    problems = []
    for page in PAGES:
        response = client.get(reverse(f"metrics:{page}"), params)
        assert response.status_code == 200, (page, params)
        links = _figures(response.content.decode())
        assert links or page == "overview", f"no drill link on {page}"
        for url, figure in links:
            if url not in seen:
                seen[url] = _rows_listed(client, url)
            if seen[url] != figure:
                problems.append(f"{page} {params}: {url} shows {figure}, lists {seen[url]}")
    return problems


@pytest.mark.parametrize(
    "name",
    [
        "period only",
        "a source or none",
        "owners, imported and none",
        "no campaign, or Spring",
        "Mia's team",
        "on no team, some tiers",
    ],
)
def test_every_drill_link_lists_the_rows_of_its_figure(admin_client, world, name):
    params = {**MARCH, **_filter_sets(world)[name]}
    problems = _walk(admin_client, params, {})
    assert not problems, "\n".join(problems)


def test_every_breakdown_row_drills_to_its_rows(admin_client, world):
    seen: dict = {}
    problems = []
    for by in GroupBy.VALUES:
        for filters in ({}, {"owner": [world["imported"].pk, "none"]}):
            params = {**MARCH, **filters, "group_by": by}
            for page in ("pipeline", "handoffs"):
                response = admin_client.get(reverse(f"metrics:{page}"), params)
                table = "results-breakdown" if page == "pipeline" else "handoff-breakdown"
                body = response.content.decode()
                assert f'id="{table}"' in body, (page, by)
                for url, figure in _figures(body):
                    if url not in seen:
                        seen[url] = _rows_listed(admin_client, url)
                    if seen[url] != figure:
                        problems.append(f"{page} by {by} {filters}: {url} {figure} ≠ {seen[url]}")
    assert not problems, "\n".join(problems)


def test_the_no_source_row_links_to_the_rows_without_a_source(admin_client, world):
    body = admin_client.get(reverse("metrics:pipeline"), MARCH).content.decode()
    no_source = [
        url
        for url, _ in _figures(body)
        if "status=won" in url and parse_qs(urlsplit(url).query).get("source") == ["none"]
    ]
    assert no_source, "the No source row has no drill link"
    query = parse_qs(urlsplit(no_source[0]).query)
    assert query["source"] == ["none"] and query["start"] == ["2026-02-15"]
    # Its won deals: the imported owner's win without a lead.
    assert _rows_listed(admin_client, no_source[0]) == 1


def test_a_month_row_narrows_the_period_to_that_month(admin_client, world):
    body = admin_client.get(
        reverse("metrics:pipeline"), {**MARCH, "group_by": "month"}
    ).content.decode()
    months = {
        parse_qs(urlsplit(url).query)["start"][0]: parse_qs(urlsplit(url).query)["end"][0]
        for url, _ in _figures(body)
        if "status=lost" in url and "/closed/" in url
    }
    # February is cut at the period's first day; March at its last.
    assert months == {"2026-02-15": "2026-02-28", "2026-03-01": "2026-03-31"}
