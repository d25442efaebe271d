"""KPIs of imported CSV files, read through ``/api/v1/kpis/`` and the pipeline dashboard and
compared with a plain computation from the file (issue 14): dates without a time are days of
the display time zone, deals imported without a creation date or a lead, owners known only by
name, reps put on teams by an imported file."""

import csv
import os
import re
import statistics
from collections import defaultdict
from datetime import UTC, date, datetime, time
from decimal import Decimal
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from leads.imports.engine import COMMITTED, import_file
from leads.imports.mapping import Mapping
from leads.imports.presets import PRESETS
from leads.models import Opportunity, SalesRep
from metrics.templatetags.kpi_format import count, days, money, percent

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")
REQUIRED = os.environ.get("REVOPS_REQUIRE_SERVICES") == "1" or os.environ.get("CI") == "true"
QUARTERS = {1: ("01-01", "03-31"), 2: ("04-01", "06-30"), 3: ("07-01", "09-30"),
            4: ("10-01", "12-31")}  # fmt: skip


def quarter(year: int, number: int) -> dict:
    start, end = QUARTERS[number]
    return {"preset": "custom", "start": f"{year}-{start}", "end": f"{year}-{end}"}


def by_owner(api, period: dict) -> dict[int | None, dict]:
    response = api.get("/api/v1/kpis/opportunity_results/", {**period, "group_by": "owner"})
    assert response.status_code == 200, response.content
    return {row["group"]["id"]: row["results"] for row in response.json()["data"]}


def elapsed_days(start: date, end: date) -> float:
    """Days between two local midnights in New York, as elapsed time ÷ 24 hours (in UTC: an
    aware subtraction within one zone would ignore the daylight-saving hour)."""
    begin = datetime.combine(start, time(0), NEW_YORK).astimezone(UTC)
    finish = datetime.combine(end, time(0), NEW_YORK).astimezone(UTC)
    return (finish - begin).total_seconds() / 86400


# --- A hand-computed file -------------------------------------------------------------------

HEADER = ["Deal ID", "Deal Name", "Deal Owner", "Stage", "Amount", "Create Date", "Close Date"]
ROWS = [
    # Q1: Ann wins on 31 March (a New York day: 04:00 UTC on 31 March, not 1 April's count).
    ["D1", "Acme", "Ann Archer", "Won", "1000", "2026-03-07", "2026-03-09"],  # across DST
    ["D2", "Beta", "Ann Archer", "Won", "3000", "2026-03-01", "2026-03-31"],
    ["D3", "Gamma", "Ann Archer", "Lost", "0", "2026-02-01", "2026-03-31"],
    # Q2 from 1 April: a deal without a creation date is created at its close.
    ["D4", "Delta", "Ann Archer", "Won", "500", "", "2026-04-01"],
    ["D5", "Epsilon", "Bob Baker", "Won", "2000", "2026-03-31", "2026-04-01"],
    ["D6", "Zeta", "Bob Baker", "Lost", "0", "2026-06-01", "2026-06-30"],
    ["D7", "Eta", "Bob Baker", "Discovery", "700", "2026-06-15", ""],
]


@pytest.fixture
def imported(tmp_path):
    path = tmp_path / "deals.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([HEADER, *ROWS])
    mapping = Mapping.from_json(
        {
            "kind": "opportunities",
            "fields": {
                "external_id": "Deal ID",
                "name": "Deal Name",
                "owner": "Deal Owner",
                "stage": "Stage",
                "amount": "Amount",
                "created_at": {"column": "Create Date", "format": "%Y-%m-%d"},
                "closed_at": {"column": "Close Date", "format": "%Y-%m-%d"},
            },
            "options": {"create_owners": True, "owners_become_reps": True},
        }
    )
    report = import_file(path=path, mapping=mapping)
    assert report.status == COMMITTED, (report.problems, report.errors)
    users = get_user_model().objects
    return {
        "report": report,
        "ann": users.get(first_name="Ann"),
        "bob": users.get(first_name="Bob"),
        "path": path,
        "mapping": mapping,
    }


def test_the_preview_says_how_dates_and_missing_creations_are_read(imported):
    notes = imported["report"].notes
    assert "Dates without a time are read as America/New_York days." in notes
    assert "1 opportunity has no creation date: created = closed date." in notes
    assert imported["report"].created_refs == {"owners": 2, "sales reps": 2}


def test_owners_known_by_name_become_reps_in_the_same_import(imported):
    reps = SalesRep.objects.filter(user__in=[imported["ann"], imported["bob"]])
    assert reps.count() == 2 and not imported["ann"].is_active
    deal = Opportunity.objects.get(external_id="D4")
    assert deal.created_at == deal.closed_at == datetime(2026, 4, 1, 4, tzinfo=UTC)


def test_date_only_values_land_on_their_local_day_month_and_quarter(reader_api, imported):
    ann, bob = imported["ann"].pk, imported["bob"].pk
    q1, q2 = by_owner(reader_api, quarter(2026, 1)), by_owner(reader_api, quarter(2026, 2))
    assert (q1[ann]["won"], q1[ann]["lost"], q1[ann]["win_rate"]) == (2, 1, pytest.approx(2 / 3))
    assert bob not in q1
    assert (q2[ann]["won"], q2[ann]["lost"]) == (1, 0)
    assert (q2[bob]["won"], q2[bob]["lost"], q2[bob]["win_rate"]) == (1, 1, 0.5)
    assert q1[ann]["average_deal_size"] == "2000.00"
    # Ann's Q1 wins: 7 → 9 March crosses the change to summer time (47 hours), 1 → 31 March
    # is 30 days less that hour.
    assert q1[ann]["median_won_opportunity_cycle_days"] == pytest.approx(
        (47 / 24 + 30 - 1 / 24) / 2
    )
    # The deal without a creation date has a cycle of 0; Bob's 31 March → 1 April is 1 day.
    assert q2[ann]["median_won_opportunity_cycle_days"] == 0
    assert q2[bob]["median_won_opportunity_cycle_days"] == pytest.approx(1)
    months = reader_api.get(
        "/api/v1/kpis/opportunity_results/", {**quarter(2026, 1), "group_by": "month"}
    ).json()["data"]
    assert [(row["group"]["id"], row["results"]["won"]) for row in months] == [("2026-03-01", 2)]


def test_reimporting_the_file_changes_nothing(reader_api, imported):
    before = by_owner(reader_api, quarter(2026, 2))
    again = import_file(path=imported["path"], mapping=imported["mapping"])
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(ROWS))
    assert again.created_refs == {}
    assert Opportunity.objects.count() == len(ROWS) and SalesRep.objects.count() == 2
    assert by_owner(reader_api, quarter(2026, 2)) == before


# --- The same figures on the pipeline dashboard -------------------------------------------


class _Table(HTMLParser):
    """One table of a page by its id: ``{row name: {column header: cell text}}``, and each
    row's drill links."""

    def __init__(self, table_id: str):
        super().__init__()
        self.table_id, self.inside, self.cell = table_id, False, None
        self.headers: list[str] = []
        self.rows: list[list[str]] = []
        self.links: list[list[str]] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "table" and attributes.get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tr":
            self.current, self.row_links = [], []
        elif self.inside and tag in ("th", "td"):
            self.cell = []
        elif self.inside and tag == "a" and attributes.get("href", "").startswith("/dashboards/"):
            self.row_links.append(attributes["href"])

    def handle_endtag(self, tag):
        if not self.inside:
            return
        if tag in ("th", "td") and self.cell is not None:
            self.current.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr":
            if not self.headers:
                self.headers = self.current
            else:
                self.rows.append(self.current)
                self.links.append(self.row_links)
        elif tag == "table":
            self.inside = False

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def breakdown_on_the_page(client, params: dict) -> dict[str, dict[str, str]]:
    """The pipeline page's breakdown table as its reader sees it; each won figure is also
    checked against the drill-down list it links to."""
    response = client.get(reverse("metrics:pipeline"), params)
    assert response.status_code == 200
    table = _Table("results-breakdown")
    table.feed(response.content.decode())
    assert table.headers, "no breakdown table on the page"
    rows = {}
    for cells, links in zip(table.rows, table.links, strict=True):
        row = dict(zip(table.headers[1:], cells[1:], strict=True))
        rows[cells[0]] = row
        won_list = client.get(next(link for link in links if "status=won" in link))
        listed = re.search(r'id="drill-count"[^>]*data-rows="(\d+)"', won_list.content.decode())
        assert listed and listed.group(1) == row["Won"].replace(",", ""), cells[0]
    return rows


def shown(won, lost, won_amounts, cycles, won_cycles) -> dict[str, str]:
    """Hand-computed figures as the page writes them (its own formats)."""
    return {
        "Won": count(won),
        "Lost": count(lost),
        "Win rate": percent(won / (won + lost)),
        "Won amount": money(sum(won_amounts)),
        "Avg deal": money(statistics.mean(won_amounts) if won_amounts else None),
        "Median lead cycle": days(None),  # imported deals without leads have no lead cycle
        "Median opp. cycle": days(statistics.median(cycles)),
        "Median opp. cycle, won": days(statistics.median(won_cycles) if won_cycles else None),
    }


TEAMS_HEADER = ["Owner", "Team"]
TEAMS_ROWS = [["Ann Archer", "Mia Manager"], ["Bob Baker", "Mia Manager"]]


def test_the_pipeline_page_shows_the_hand_computed_figures_per_owner_and_team(
    client, reader, imported, tmp_path
):
    teams_path = tmp_path / "teams.csv"
    with teams_path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([TEAMS_HEADER, *TEAMS_ROWS])
    teams = Mapping.from_json(
        {"kind": "sales_reps", "fields": {"rep": "Owner", "manager": "Team"},
         "options": {"create_owners": True}}
    )  # fmt: skip
    report = import_file(path=teams_path, mapping=teams)
    assert (report.status, report.updated, report.created_refs) == (COMMITTED, 2, {"users": 1})
    # Re-importing both files changes nothing the page shows.
    assert import_file(path=imported["path"], mapping=imported["mapping"]).unchanged == len(ROWS)
    assert import_file(path=teams_path, mapping=teams).unchanged == 2
    client.force_login(reader)

    d1 = elapsed_days(date(2026, 3, 7), date(2026, 3, 9))  # 47 hours: across DST
    d2 = elapsed_days(date(2026, 3, 1), date(2026, 3, 31))
    d3 = elapsed_days(date(2026, 2, 1), date(2026, 3, 31))
    d4, d5, d6 = 0.0, 1.0, elapsed_days(date(2026, 6, 1), date(2026, 6, 30))
    ann_q1 = shown(2, 1, [1000, 3000], [d1, d2, d3], [d1, d2])
    ann_q2 = shown(1, 0, [500], [d4], [d4])
    bob_q2 = shown(1, 1, [2000], [d5, d6], [d5])
    assert ann_q1["Median opp. cycle, won"] == "16.0 d" and ann_q1["Win rate"] == "66.7 %"

    by_owner_q1 = breakdown_on_the_page(client, {**quarter(2026, 1), "group_by": "owner"})
    assert by_owner_q1 == {"Ann Archer": ann_q1}
    by_owner_q2 = breakdown_on_the_page(client, {**quarter(2026, 2), "group_by": "owner"})
    assert by_owner_q2 == {"Ann Archer": ann_q2, "Bob Baker": bob_q2}

    # Mia's team over the half year: both reps' deals together.
    half = {"preset": "custom", "start": "2026-01-01", "end": "2026-06-30"}
    mia_team = shown(4, 2, [1000, 3000, 500, 2000], [d1, d2, d3, d4, d5, d6], [d1, d2, d4, d5])
    assert breakdown_on_the_page(client, {**half, "group_by": "team"}) == {"Mia Manager": mia_team}
    mia = get_user_model().objects.get(first_name="Mia")
    assert breakdown_on_the_page(client, {**quarter(2026, 2), "group_by": "owner",
                                          "team": mia.pk}) == by_owner_q2  # fmt: skip


# --- The Maven data set ---------------------------------------------------------------------


def maven(name: str):
    preset = PRESETS[name]
    path = preset.dataset_path()
    if not path.is_file():
        message = f"The shared data set {path} is missing (set REVOPS_DATASETS_DIR)."
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    report = import_file(path=path, mapping=preset.to_mapping())
    assert report.status == COMMITTED and report.error_count == 0, report.errors[:5]
    return path, report


def expected_from_the_file(path) -> dict[tuple[str, int], dict]:
    """Per (agent, quarter of the close date): won, lost, win rate, average deal size and
    median created → closed days of the won deals, computed from the CSV alone."""
    deals: dict[tuple[str, int], list[dict]] = defaultdict(list)
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["deal_stage"] in ("Won", "Lost"):
                closed = date.fromisoformat(row["close_date"])
                deals[(row["sales_agent"], (closed.month - 1) // 3 + 1)].append(row)
    expected = {}
    for key, rows in deals.items():
        won = [r for r in rows if r["deal_stage"] == "Won"]
        values = [Decimal(r["close_value"]) for r in won]
        cycles = [
            elapsed_days(date.fromisoformat(r["engage_date"]), date.fromisoformat(r["close_date"]))
            for r in won
        ]
        expected[key] = {
            "won": len(won),
            "lost": len(rows) - len(won),
            "win_rate": len(won) / len(rows),
            "average_deal_size": float(sum(values) / len(values)) if won else None,
            "median_won_opportunity_cycle_days": statistics.median(cycles) if won else None,
        }
    return expected


def test_maven_per_agent_quarters_equal_a_plain_computation_and_survive_a_reimport(reader_api):
    maven("maven-accounts")
    path, _ = maven("maven-opportunities")
    expected = expected_from_the_file(path)
    names = {u.pk: u.get_full_name() for u in get_user_model().objects.all()}

    def read() -> dict[tuple[str, int], dict]:
        found = {}
        for number in QUARTERS:
            for owner_id, results in by_owner(reader_api, quarter(2017, number)).items():
                if results["won"] + results["lost"]:
                    found[(names[owner_id], number)] = results
        return found

    found = read()
    assert set(found) == set(expected)
    assert len(expected) >= 100  # 30 agents × 4 quarters, less the quarters without closes
    for key, figures in expected.items():
        got = found[key]
        assert (got["won"], got["lost"]) == (figures["won"], figures["lost"]), key
        assert got["win_rate"] == pytest.approx(figures["win_rate"]), key
        if figures["average_deal_size"] is None:
            assert got["average_deal_size"] is None, key
        else:
            assert float(got["average_deal_size"]) == pytest.approx(
                figures["average_deal_size"], abs=0.005
            ), key
        assert got["median_won_opportunity_cycle_days"] == pytest.approx(
            figures["median_won_opportunity_cycle_days"]
        ), key
    counts = Opportunity.objects.count()
    _, again = maven("maven-opportunities")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 8800)
    assert Opportunity.objects.count() == counts == 8800
    assert read() == found
