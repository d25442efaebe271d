"""Names people type (leads, accounts, sources, reps) are data, never markup: pages, tables and
the Plotly figures embedded in pages show them escaped, whatever they contain."""

import json
import re
from html import unescape

import pytest
from django.urls import reverse

from leads.models import Account
from tests.factories import AccountFactory, SourceFactory, UserFactory
from tests.metrics.factories import (
    HandoffFactory,
    MetricLeadFactory,
    accepted,
    history,
    rejected,
    utc,
    won,
)

SCRIPT = "<script>alert(1)</script>"
IMAGE = '"><img src=x onerror=alert(2)>'
MARCH = {"preset": "custom", "start": "2026-03-01", "end": "2026-03-31"}
JSON_SCRIPT = re.compile(r'<script id="([^"]+)" type="application/json">(.*?)</script>', re.S)


@pytest.fixture
def hostile(db, admin_user):
    """Markup in every name a page or chart shows: source, account, lead, rep."""
    source = SourceFactory(name=f"Ads {SCRIPT}")
    other_source = SourceFactory(name=f"Events {IMAGE}")
    account = AccountFactory(name=f"Acme {IMAGE}")
    rep = UserFactory(username="rep", first_name=SCRIPT, last_name=IMAGE)
    leads = []
    for index, (first, last) in enumerate([(SCRIPT, IMAGE), (IMAGE, SCRIPT)]):
        lead = MetricLeadFactory(
            first_name=first, last_name=last, account=account, source=source, created_at=utc(3, 2)
        )
        leads.append(lead)
        history(lead, ("lead", utc(3, 2)), ("mql", utc(3, 2, 13 + index)))
    accepted(at=utc(3, 3), lead=leads[0], assignee=rep)
    rejected(at=utc(3, 4), lead=leads[1], assignee=rep)
    for _ in range(2):
        accepted(at=utc(3, 5), lead=MetricLeadFactory(source=other_source), assignee=rep)
    won(closed_at=utc(3, 20), lead=leads[0], account=account, amount=5000)
    pending = HandoffFactory(lead=leads[0], assignee=admin_user, assigned_at=utc(3, 6))
    return {"lead": leads[0], "account": account, "handoff": pending, "source": source}


def assert_escaped(body: str) -> None:
    """No payload reaches the page as markup, and the names were really shown (escaped)."""
    assert SCRIPT not in body
    assert "<img src=x" not in body
    assert "onerror=alert(2)>" not in body.replace("onerror=alert(2)&gt;", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body or "\\u003Cscript\\u003E" in body


def embedded_figures(body: str) -> dict[str, dict]:
    return {
        name: json.loads(text)
        for name, text in JSON_SCRIPT.findall(body)
        if name.startswith("chart-")
    }


@pytest.mark.parametrize(
    "page",
    ["leads:list", "lead", "leads:queue", "handoff", "leads:handoff_outcomes"],
)
def test_lead_pages_escape_names(admin_client, hostile, page):
    urls = {
        "lead": reverse("leads:detail", args=[hostile["lead"].pk]),
        "handoff": reverse("leads:handoff", args=[hostile["handoff"].pk]),
    }
    url = urls.get(page) or reverse(page)

    response = admin_client.get(url, {"scope": "all"} if page == "leads:queue" else {})

    assert response.status_code == 200
    assert_escaped(response.content.decode())


@pytest.mark.parametrize(
    ("page", "args"),
    [
        ("metrics:overview", []),
        ("metrics:funnel", []),
        ("metrics:handoffs", []),
        ("metrics:pipeline", []),
        ("metrics:drill", ["acceptance"]),
        ("metrics:drill", ["closed"]),
    ],
)
def test_dashboards_and_drill_tables_escape_names(admin_client, hostile, page, args):
    response = admin_client.get(reverse(page, args=args), MARCH)

    body = response.content.decode()
    assert response.status_code == 200
    assert_escaped(body)


def test_chart_figures_cannot_break_out_of_their_json_block(admin_client, hostile):
    body = admin_client.get(reverse("metrics:handoffs"), MARCH).content.decode()

    figures = embedded_figures(body)

    assert figures, "the page embeds its charts as json_script blocks"
    # The names are in the figures as text Plotly shows literally (it reads a little HTML in
    # labels, so the builders escape them)...
    as_text = json.dumps(figures, ensure_ascii=False)
    assert "Ads &lt;script&gt;alert(1)&lt;/script&gt;" in as_text
    assert SCRIPT not in as_text and "<img" not in as_text
    # ...but the page text of each block has no "<" or ">" a browser could read as a tag.
    for _name, raw in JSON_SCRIPT.findall(body):
        assert "<" not in raw and ">" not in raw
    assert "</script><script>" not in body


def test_account_names_render_escaped_on_the_lead_page(admin_client, hostile):
    body = admin_client.get(reverse("leads:detail", args=[hostile["lead"].pk])).content.decode()

    assert "Acme &quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in body
    assert unescape("Acme &quot;&gt;&lt;img") == Account.objects.get().name[:11]


def test_the_meeting_page_escapes_names(admin_client, hostile):
    response = admin_client.get("/meeting/", follow=True)

    assert response.status_code == 200
    body = response.content.decode()
    assert_escaped(body)
    for _name, raw in JSON_SCRIPT.findall(body):
        assert "<" not in raw and ">" not in raw
