"""The dashboard pages: filters in the URL, the numbers they show, drill-downs and exports."""

import csv
import io
import re
from datetime import date

import pytest
from django.urls import reverse

from metrics.filters import DashboardFilterForm, Preset, preset_days
from tests.factories import SourceFactory
from tests.metrics.factories import (
    HandoffFactory,
    MetricLeadFactory,
    accepted,
    history,
    rejected,
    utc,
    won,
)

MARCH = {"preset": "custom", "start": "2026-03-01", "end": "2026-03-31"}


@pytest.fixture
def march(db):
    """Webinars: 2 accepted, 1 rejected; Ads: 1 rejected, 1 pending. One won deal."""
    webinars = SourceFactory(name="Webinars")
    ads = SourceFactory(name="<b>Ads</b>")
    for _ in range(2):
        accepted(at=utc(3, 3), lead=MetricLeadFactory(source=webinars))
    rejected(at=utc(3, 3), lead=MetricLeadFactory(source=webinars))
    rejected(at=utc(3, 4), lead=MetricLeadFactory(source=ads), reason_key="no_budget")
    HandoffFactory(lead=MetricLeadFactory(source=ads))
    deal_lead = MetricLeadFactory(source=webinars)
    history(deal_lead, ("lead", utc(3, 2)), ("mql", utc(3, 2)), ("opportunity", utc(3, 5)))
    won(closed_at=utc(3, 20), lead=deal_lead, amount=12_000)
    return {"webinars": webinars, "ads": ads}


def test_dashboards_need_a_login(client):
    response = client.get(reverse("metrics:overview"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_overview_shows_the_headlines_with_their_definitions(admin_client, march):
    response = admin_client.get(reverse("metrics:overview"), MARCH)
    tiles = {h.key: h for h in response.context["data"]}
    body = response.content.decode()
    assert tiles["acceptance"].change.current == pytest.approx(2 / 4)
    assert tiles["acceptance"].change.previous is None  # February had no handoffs
    assert tiles["win_rate"].change.current == 1.0
    assert "50.0 %" in body and "$12,000" in body
    assert "Accepted ÷ (accepted + rejected)" in body  # how it is computed
    assert not response.context["empty"]


def test_a_source_filter_in_the_url_changes_the_numbers(admin_client, march):
    response = admin_client.get(reverse("metrics:overview"), {**MARCH, "source": march["ads"].pk})
    tiles = {h.key: h for h in response.context["data"]}
    assert tiles["acceptance"].change.current == 0.0
    assert f"source={march['ads'].pk}" in response.context["query"]
    # The tabs keep the filters, so a link shows the same view on every page.
    assert "/dashboards/funnel/?preset=custom" in response.content.decode()


def test_source_names_are_escaped(admin_client, march):
    body = admin_client.get(reverse("metrics:handoffs"), MARCH).content.decode()
    assert "<b>Ads</b>" not in body and "&lt;b&gt;Ads&lt;/b&gt;" in body


def test_handoff_page_drills_down_to_the_rejected_handoffs(admin_client, march):
    page = admin_client.get(reverse("metrics:handoffs"), MARCH)
    url = reverse("metrics:drill", args=["acceptance"])
    filters = "preset=custom&amp;start=2026-03-01&amp;end=2026-03-31"
    link = f"{url}?{filters}&amp;source={march['ads'].pk}&amp;outcome=rejected"
    assert link in page.content.decode()

    rows = admin_client.get(
        url, {**MARCH, "source": march["ads"].pk, "outcome": "rejected"}
    ).context["rows"]
    assert len(rows) == 1
    assert rows[0][1][4] == "Rejected" and str(rows[0][1][6]) == "No budget"


def test_handoff_page_shows_requalified_handoffs_and_drills_down_to_them(admin_client, march):
    # The Ads lead rejected on 4 March is handed over again on 20 March.
    bounced = march["ads"].leads.get(handoffs__outcome="rejected")
    HandoffFactory(lead=bounced, assigned_at=utc(3, 20))
    page = admin_client.get(reverse("metrics:handoffs"), MARCH)
    assert page.context["data"]["requalification"].requalified == 1
    url = reverse("metrics:drill", args=["requalified"])
    assert f"{url}?preset=custom&amp;start=2026-03-01&amp;end=2026-03-31" in page.content.decode()
    assert "1 of 6 handoffs re-qualified" in page.content.decode()

    rows = admin_client.get(url, MARCH).context["rows"]
    assert [row[1][0] for row in rows] == [bounced]


def test_drill_down_exports_csv(admin_client, march):
    response = admin_client.get(
        reverse("metrics:drill", args=["closed"]), {**MARCH, "format": "csv"}
    )
    rows = list(
        csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")))
    )
    assert [row["amount"] for row in rows] == ["12000.00"]
    assert rows[0]["status"] == "Won"


def test_dashboard_table_exports_csv(admin_client, march):
    response = admin_client.get(reverse("metrics:handoffs"), {**MARCH, "format": "csv"})
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = {
        row["name"]: row for row in csv.DictReader(io.StringIO(text)) if row["group"] == "source"
    }
    assert rows["Webinars"]["accepted"] == "2" and rows["Webinars"]["rejected"] == "1"


def test_funnel_counts_the_cohort_by_source(admin_client, march):
    response = admin_client.get(reverse("metrics:funnel"), MARCH)
    conversion = response.context["data"]["conversion"]
    by_source = {row.source.name: row for row in conversion.by_source}
    assert by_source["Webinars"].funnel.cohort == 4
    assert by_source["Webinars"].lead_to_opportunity_rate == pytest.approx(1 / 4)


def test_empty_period_says_what_to_do(admin_client, march):
    response = admin_client.get(
        reverse("metrics:pipeline"),
        {"preset": "custom", "start": "2025-01-01", "end": "2025-01-31"},
    )
    assert response.context["empty"]
    assert "try a longer period" in response.content.decode()


def test_bad_dates_are_reported_and_the_default_period_is_shown(admin_client, march):
    response = admin_client.get(
        reverse("metrics:overview"),
        {"preset": "custom", "start": "2026-03-31", "end": "2026-03-01"},
    )
    assert response.status_code == 200
    assert "The end date is before the start date." in response.content.decode()
    assert response.context["period"].days == 28


def test_unknown_filter_values_are_rejected_not_trusted(admin_client, march):
    response = admin_client.get(
        reverse("metrics:overview"), {**MARCH, "source": "1 OR 1=1", "tier": "Z"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors
    tiles = {h.key: h for h in response.context["data"]}
    assert tiles["acceptance"].change.current is not None  # unfiltered, not an error page


def test_unknown_drill_is_404(admin_client):
    assert admin_client.get(reverse("metrics:drill", args=["nope"])).status_code == 404


@pytest.mark.parametrize(
    ("preset", "first", "last"),
    [
        (Preset.THIS_WEEK, date(2026, 11, 23), date(2026, 11, 25)),
        (Preset.LAST_4_WEEKS, date(2026, 10, 29), date(2026, 11, 25)),
        (Preset.THIS_QUARTER, date(2026, 10, 1), date(2026, 11, 25)),
        (Preset.LAST_QUARTER, date(2026, 7, 1), date(2026, 9, 30)),
    ],
)
def test_presets(preset, first, last):
    assert preset_days(preset, date(2026, 11, 25)) == (first, last)


def test_filter_form_builds_the_period_in_the_display_time_zone(db):
    form = DashboardFilterForm(MARCH, today=date(2026, 11, 25))
    period = form.period()
    assert period.start.isoformat() == "2026-03-01T00:00:00-05:00"
    assert period.last_day == date(2026, 3, 31)


def test_charts_link_each_bar_to_its_rows(admin_client, march):
    response = admin_client.get(reverse("metrics:handoffs"), MARCH)
    figure = response.context["charts"]["acceptance"]
    links = [url for trace in figure["data"] for url in trace["customdata"] if url]
    drill = reverse("metrics:drill", args=["acceptance"])
    assert links and all(url.startswith(drill) for url in links)
    assert any(
        f"source={march['webinars'].pk}" in url and "outcome=rejected" in url for url in links
    )
    body = response.content.decode()
    assert 'data-chart="chart-acceptance"' in body and 'id="chart-acceptance"' in body
    assert "/static/vendor/plotly.min.js" in body


def test_an_imported_owner_and_none_are_valid_owner_filters(db):
    """Imported owners are often inactive users without a sales-rep record: still owners."""
    from tests.factories import UserFactory

    imported = UserFactory(username="imported", is_active=False)
    won(closed_at=utc(3, 20), owner=imported, lead=None)
    UserFactory(username="bystander")  # owns nothing: not offered
    from urllib.parse import urlencode

    from django.http import QueryDict

    query = urlencode({**MARCH, "owner": [imported.pk, "none"], "team": "none"}, doseq=True)
    form = DashboardFilterForm(QueryDict(query))
    assert form.is_valid(), form.errors
    filters = form.kpi_filters()
    assert (filters.owner_ids, filters.without) == ((imported.pk,), ("owner", "team"))
    offered = [value for value, _, _ in form.options()["owner"]]
    assert offered == ["none", str(imported.pk)]
    assert "No owner" in form.describe()


def test_exports_round_like_the_screen_and_name_their_period_and_filters(admin_client, march):
    params = {**MARCH, "source": march["webinars"].pk, "format": "csv"}

    response = admin_client.get(reverse("metrics:handoffs"), params)

    assert response["Content-Disposition"] == (
        'attachment; filename="handoffs_2026-03-01_2026-03-31_webinars.csv"'
    )
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert not re.search(r"\d\.\d{5,}", text)  # no 0.6666666666666666
    rows = {row["name"]: row for row in csv.DictReader(io.StringIO(text))}
    assert rows["Webinars"]["acceptance rate %"] == "66.7"  # the screen: 66.7 %


def test_the_overview_export_shows_rates_in_percent_and_money_in_whole_units(admin_client, march):
    response = admin_client.get(reverse("metrics:overview"), {**MARCH, "format": "csv"})

    assert "overview_2026-03-01_2026-03-31.csv" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = {row["kpi"]: row for row in csv.DictReader(io.StringIO(text))}
    acceptance = next(row for kpi, row in rows.items() if kpi.startswith("Lead acceptance"))
    assert (acceptance["unit"], acceptance["value"]) == ("%", "50.0")
    assert not re.search(r"\d\.\d{5,}", text)


def test_definition_marks_are_buttons_described_by_their_text_outside_any_link(admin_client, march):
    body = admin_client.get(reverse("metrics:handoffs"), MARCH).content.decode()

    marks = re.findall(r'<button type="button" class="info"[^>]*aria-describedby="([^"]+)"', body)
    assert len(marks) >= 6 and len(set(marks)) == len(marks)  # one id each
    tooltip = re.search(rf'<span class="tooltip" role="tooltip" id="{marks[0]}">([^<]+)<', body)
    assert "Accepted ÷ (accepted + rejected)" in tooltip.group(1)
    assert 'class="info" title=' not in body
    # A button inside a link is nested interaction: the figure is the link instead.
    assert not re.search(r"<a\s(?:(?!</a>).)*<button", body, re.S)


def test_the_funnel_totals_row_names_the_filters_on_the_page_and_in_the_export(admin_client, march):
    picked = {**MARCH, "source": [march["webinars"].pk, march["ads"].pk]}
    label = "Total (filtered: <b>Ads</b>, Webinars)"  # sources by name

    page = admin_client.get(reverse("metrics:funnel"), picked)
    export = admin_client.get(reverse("metrics:funnel"), {**picked, "format": "csv"})

    assert page.context["totals_label"] == label
    assert '<th scope="row">Total (filtered: &lt;b&gt;Ads&lt;/b&gt;, Webinars)' in (
        page.content.decode()
    )
    text = b"".join(export.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[-1]["source"] == label
    assert rows[-1]["leads"] == str(sum(int(row["leads"]) for row in rows[:-1]))
    assert "All sources" not in text


def test_an_unfiltered_funnel_export_totals_all_sources(admin_client, march):
    export = admin_client.get(reverse("metrics:funnel"), {**MARCH, "format": "csv"})

    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))
    assert rows[-1]["source"] == "All sources"


def test_stages_and_funnel_stages_are_shown_by_name_not_key(admin_client, march):
    from leads.models import ContentAsset

    ContentAsset.objects.create(title="ROI guide", asset_type="ebook", funnel_stage="mofu")
    exits = admin_client.get(reverse("metrics:drill", args=["stage_exits"]), MARCH)
    pipeline = admin_client.get(reverse("metrics:pipeline"), MARCH).content.decode()
    content = admin_client.get(reverse("metrics:content"), MARCH).content.decode()

    assert ["MQL", "Opportunity"] in [cells[2:4] for _, cells in exits.context["rows"]]
    assert '<th scope="row">MQL</th>' in pipeline and '<th scope="row">mql</th>' not in pipeline
    assert 'ROI guide <span class="muted">(Middle of funnel)</span>' in content


def test_a_breakdown_by_owner_is_shown_a_page_at_a_time(admin_client, db):
    """Hundreds of reps make hundreds of rows, each with four drill links: 25 a page, the
    next ones on the next page, every owner once."""
    for n in range(30):
        HandoffFactory(assignee__username=f"rep{n:02}")
    url = reverse("metrics:handoffs")
    first = admin_client.get(url, {**MARCH, "group_by": "owner"}).content.decode()
    second = admin_client.get(url, {**MARCH, "group_by": "owner", "page": 2}).content.decode()
    names = re.compile(r'<th scope="row">(rep\d\d)</th>')
    on_first, on_second = names.findall(first), names.findall(second)
    assert (len(on_first), len(on_second)) == (25, 5)
    assert sorted(on_first + on_second) == [f"rep{n:02}" for n in range(30)]
    assert "Page 1 of 2" in first and "page=2" in first
