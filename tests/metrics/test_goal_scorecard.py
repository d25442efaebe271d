"""Shared goals with a database: the goal set's rules, drafting and publishing (audited), each
goal's reading from the KPI queries, and the scorecard page, the goals editor and who may use
them."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from leads.roles import MARKETING, REVOPS_ADMIN, SALES_REP, VIEWER
from leads.target_accounts import services as target_services
from metrics import goal_selectors, goal_services, goals, snapshots
from metrics.kpis import Period
from metrics.models import Goal, GoalSet, KpiSnapshot
from tests.factories import AccountFactory, SourceFactory, UserFactory
from tests.metrics.factories import (
    NEW_YORK,
    MetricLeadFactory,
    OpportunityFactory,
    accepted,
    history,
    rejected,
    won,
)

pytestmark = pytest.mark.django_db

Q1 = goals.quarter_of(date(2026, 1, 1))
# Half way through Q1 2026 in New York: 45 of its 90 local days.
NOW = datetime(2026, 2, 15, tzinfo=NEW_YORK)


def ny(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 12, tzinfo=NEW_YORK)


@pytest.fixture
def now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


@pytest.fixture
def admin(db):
    return UserFactory(username="ops.admin", first_name="Olga", last_name="Ops", role=REVOPS_ADMIN)


def publish(period, rows: list[dict], *, actor=None, at=None) -> GoalSet:
    draft = goal_services.goal_set_create_draft(period=period, actor=actor)
    goal_services.goal_set_replace_goals(draft=draft, goals=[Goal(**row) for row in rows])
    return goal_services.goal_set_publish(draft=draft, actor=actor, effective_from=at)


# --- The rules of a goal set -----------------------------------------------------------------


def test_a_goal_names_what_its_scope_needs_and_keeps_its_thresholds_in_order(admin):
    draft = goal_services.goal_set_create_draft(period=Q1, actor=admin)
    with pytest.raises(ValidationError) as refused:
        Goal(version=draft, metric="mqls", target=400, scope=Goal.Scope.SOURCE).full_clean()
    assert refused.value.message_dict == {"source": ["Pick the source."]}
    with pytest.raises(ValidationError) as refused:
        Goal(version=draft, metric="mqls", target=400, amber_at=300, red_at=350).full_clean()
    assert "red_at" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        Goal(version=draft, metric="acceptance_rate", target=130).full_clean()
    assert refused.value.message_dict["target"] == ["A rate target is at most 100 %."]
    with pytest.raises(ValidationError) as refused:
        goal_services.goal_set_replace_goals(
            draft=draft,
            goals=[
                Goal(metric="mqls", target=400),
                Goal(metric="response_time", target=4, floor=3),
            ],
        )
    assert refused.value.messages == ["Goal 2: floor: The ceiling must not be below the target."]
    assert not draft.goals.exists()


def test_goals_are_set_per_calendar_period():
    wrong = GoalSet(
        number=1, period_kind=goals.QUARTER, first_day=date(2026, 2, 1), last_day=date(2026, 4, 30)
    )
    with pytest.raises(ValidationError) as refused:
        wrong.full_clean()
    assert "2026-01-01 to 2026-03-31" in refused.value.message_dict["first_day"][0]


def test_publishing_puts_goals_in_force_freezes_them_and_is_audited(admin, now):
    first = publish(
        Q1, [{"metric": "mqls", "target": 400}], actor=admin, at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert goal_selectors.goal_set_in_force(Q1) == first
    with pytest.raises(ValidationError, match="published and cannot be edited"):
        goal_services.goal_set_replace_goals(draft=first, goals=[Goal(metric="mqls", target=1)])
    # A change is a new draft copied from it; published, it supersedes the first from then on.
    draft = goal_services.goal_set_create_draft(period=Q1, actor=admin, copy_from=first)
    assert [(g.metric, g.target) for g in draft.goals.all()] == [("mqls", Decimal("400.00"))]
    goal_services.goal_set_replace_goals(
        draft=draft, goals=[Goal(metric="mqls", target=450)], note="Webinar season"
    )
    second = goal_services.goal_set_publish(draft=draft, actor=admin)
    assert goal_selectors.goal_set_in_force(Q1) == second
    assert goal_selectors.goal_set_in_force(Q1, at=datetime(2026, 1, 2, tzinfo=UTC)) == first
    assert goal_selectors.goal_set_in_force(Q1.next()) is None
    entries = LogEntry.objects.filter(additional_data__definition="goals")
    summaries = set(entries.values_list("additional_data__summary", flat=True))
    assert f"Draft v{second.number} created from v{first.number} (1 row copied)" in summaries
    assert any(s and s.startswith(f"Published v{second.number}") for s in summaries)
    assert entries.filter(actor=admin).exists()


def test_a_published_set_needs_a_goal_and_no_duplicate():
    draft = goal_services.goal_set_create_draft(period=Q1, actor=None)
    with pytest.raises(ValidationError, match="at least one goal"):
        goal_services.goal_set_publish(draft=draft, actor=None)
    goal_services.goal_set_replace_goals(
        draft=draft, goals=[Goal(metric="mqls", target=1), Goal(metric="mqls", target=2)]
    )
    with pytest.raises(ValidationError, match="Two goals for MQLs"):
        goal_services.goal_set_publish(draft=draft, actor=None)


# --- The scorecard's figures -----------------------------------------------------------------


@pytest.fixture
def quarter_facts():
    """Q1 2026 half way: 3 MQLs (2 from events sources); 9 of 12 handoffs accepted; $6,000
    won; $20,000 open: $16,000 at the opportunity stage, $4,000 a customer's new deal. History
    (the 6 months before): 2 leads reached opportunity and 1 of them won, its deal closing in
    30 days."""
    webinar = SourceFactory(name="Webinar", channel_group="events")
    ads = SourceFactory(name="Ads", channel_group="paid_search")
    for source in (webinar, webinar, ads):
        lead = MetricLeadFactory(source=source, created_at=ny(2026, 1, 10))
        history(lead, ("lead", ny(2026, 1, 10)), ("mql", ny(2026, 1, 12)))
    for index in range(12):
        decide = accepted if index < 9 else rejected
        decide(at=ny(2026, 1, 20), assigned_at=ny(2026, 1, 19), lead__created_at=ny(2025, 5, 1))
    won(closed_at=ny(2026, 1, 20), created_at=ny(2026, 1, 5), amount=6000, lead=None)
    open_lead = MetricLeadFactory(created_at=ny(2025, 5, 1), stage="opportunity")
    OpportunityFactory(lead=open_lead, amount=16000, created_at=ny(2026, 1, 10))
    customer = MetricLeadFactory(created_at=ny(2025, 5, 1), stage="customer")
    OpportunityFactory(lead=customer, amount=4000, created_at=ny(2026, 1, 10))  # an upsell
    winner = MetricLeadFactory(created_at=ny(2025, 10, 1))
    history(winner, ("lead", ny(2025, 10, 1)), ("opportunity", ny(2025, 10, 10)),
            ("customer", ny(2025, 11, 9)))  # fmt: skip
    loser = MetricLeadFactory(created_at=ny(2025, 10, 2))
    history(loser, ("lead", ny(2025, 10, 2)), ("opportunity", ny(2025, 10, 12)))
    won(closed_at=ny(2025, 11, 9), created_at=ny(2025, 10, 10), amount=1, lead=winner)
    return {"webinar": webinar}


def _rows(card) -> dict[str, dict]:
    return {(row["metric"], row["scope"]): row for group in card["groups"] for row in group["rows"]}


def test_the_scorecard_reads_each_goal_from_the_kpis_and_judges_it(quarter_facts, now):
    publish(
        Q1,
        [
            {"metric": "mqls", "target": 10},
            {"metric": "mqls", "target": 4, "scope": "channel_group", "channel_group": "events"},
            {"metric": "acceptance_rate", "target": 30, "floor": 20},
            {"metric": "response_time", "target": 4},
            {"metric": "bookings", "target": 16000},
        ],
        at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    card = goal_selectors.scorecard(Q1)
    rows = _rows(card)
    assert card["period"]["elapsed_days"] == 45.0

    mqls = rows[("mqls", "Whole revenue team")]
    assert (mqls["actual"], mqls["pace"]) == (3, 6)
    assert (mqls["status"]["colour"], mqls["status"]["word"]) == ("red", "Off track")
    events = rows[("mqls", "Events & webinars (source group)")]
    assert events["actual"] == 2

    acceptance = rows[("acceptance_rate", "Whole revenue team")]
    assert (acceptance["actual"], acceptance["sample"]) == (0.75, 12)
    assert (acceptance["target"], acceptance["floor"]) == (0.30, 0.20)
    assert acceptance["status"]["word"] == "On track"

    response = rows[("response_time", "Whole revenue team")]
    assert response["higher_is_better"] is False
    assert (response["actual"], response["status"]["colour"]) == (None, "grey")

    # Pace alone (6,000 → 12,000) would be red; the open $20,000 (the customer's deal weighted
    # as an opportunity's, not as already won) at a 50 % opportunity → won rate, all of it able
    # to close in the 45 days left of a 30-day cycle, adds $10,000.
    bookings = rows[("bookings", "Whole revenue team")]
    assert bookings["actual"] == 6000
    assert bookings["pace"] == 12000
    assert bookings["forecast"] == pytest.approx(16000)
    assert bookings["status"]["word"] == "On track"

    assert card["counts"] == {"green": 3, "amber": 0, "red": 1, "grey": 1}
    sides = {group["side"]: [row["metric"] for row in group["rows"]] for group in card["groups"]}
    assert sides == {
        "shared": ["bookings"],
        "marketing": ["mqls", "mqls", "acceptance_rate"],
        "sales": ["response_time"],
    }


@pytest.fixture
def target_facts(quarter_facts):
    """On top of ``quarter_facts`` (none of whose deals has an account): Acme on the target
    list from 1 December 2025. Acme's deals: $3,000 created and won in Q1; $8,000 created in Q1,
    open, its lead at the opportunity stage; $2,000 created in December, open, without a lead.
    So Q1 half way: target pipeline $11,000, target revenue $3,000, open target pipeline $10,000
    at the opportunity stage (the other $20,000 open is on no account)."""
    acme = AccountFactory(name="Acme", domain="acme.com")
    draft = target_services.target_list_draft(actor=None)
    target_services.target_accounts_import(draft=draft, text="acme.com")
    target_services.target_list_publish(draft=draft, actor=None, effective_from=ny(2025, 12, 1))
    won(account=acme, lead=None, amount=3000, created_at=ny(2026, 1, 15), closed_at=ny(2026, 1, 25))
    at_opportunity = MetricLeadFactory(created_at=ny(2025, 5, 1), stage="opportunity")
    OpportunityFactory(account=acme, lead=at_opportunity, amount=8000, created_at=ny(2026, 1, 20))
    OpportunityFactory(account=acme, lead=None, amount=2000, created_at=ny(2025, 12, 10))
    return acme


def test_target_account_goals_read_the_target_account_figures(target_facts, now):
    publish(
        Q1,
        [
            {"metric": "target_pipeline", "target": 20000},
            {"metric": "target_revenue", "target": 8500},
        ],
        at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    rows = _rows(goal_selectors.scorecard(Q1))

    pipeline = rows[("target_pipeline", "Whole revenue team")]
    assert (pipeline["unit"], pipeline["side"], pipeline["forecastable"]) == (
        "money",
        "shared",
        False,
    )
    # $11,000 in 45 of 90 days → $22,000 by the end, past the $20,000 target.
    assert (pipeline["actual"], pipeline["pace"]) == (11000, 22000)
    assert pipeline["status"]["word"] == "On track"

    revenue = rows[("target_revenue", "Whole revenue team")]
    assert (revenue["side"], revenue["forecastable"]) == ("shared", True)
    assert (revenue["actual"], revenue["pace"]) == (3000, 6000)
    # Won $3,000 + Acme's open $10,000 × the 50 % opportunity → won rate, all able to close in
    # the 45 days left of a 30-day cycle: $8,000 (the $20,000 open elsewhere is not Acme's).
    # Pace alone would be red; the forecast is short of $8,500 but above its red line $7,650.
    assert revenue["forecast"] == pytest.approx(8000)
    assert (revenue["status"]["colour"], revenue["status"]["word"]) == ("amber", "At risk")


def test_publishing_a_target_list_recounts_the_target_account_goals_at_once(target_facts, now):
    publish(
        Q1, [{"metric": "target_pipeline", "target": 20000}], at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert (
        _rows(goal_selectors.scorecard(Q1))[("target_pipeline", "Whole revenue team")]["actual"]
        == 11000
    )  # and kept in its snapshot
    # A list of an account without deals takes force now: the running quarter counts nothing.
    AccountFactory(name="Initech", domain="initech.com")
    draft = target_services.target_list_draft(actor=None)
    target_services.target_accounts_remove(draft=draft, account_ids=[target_facts.pk])
    target_services.target_accounts_import(draft=draft, text="initech.com")
    target_services.target_list_publish(draft=draft, actor=None)
    row = _rows(goal_selectors.scorecard(Q1))[("target_pipeline", "Whole revenue team")]
    assert row["actual"] == 0


def test_a_period_without_goals_has_an_empty_card(now):
    card = goal_selectors.scorecard(Q1)
    assert card["goal_set"] is None and card["groups"] == []
    assert goal_selectors.scorecard_period(date(2026, 2, 15)) == Q1
    february = goals.month_of(date(2026, 2, 1))
    publish(february, [{"metric": "mqls", "target": 100}], at=datetime(2026, 2, 1, tzinfo=UTC))
    assert goal_selectors.scorecard_period(date(2026, 2, 15)) == february


# --- Pages and who may use them --------------------------------------------------------------


@pytest.fixture
def q1_goals(quarter_facts, now, admin):
    return publish(
        Q1,
        [{"metric": "mqls", "target": 10}, {"metric": "acceptance_rate", "target": 30}],
        actor=admin,
        at=datetime(2026, 1, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize("role", [VIEWER, MARKETING, SALES_REP])
def test_every_role_sees_the_same_card_and_only_admins_may_edit(client, q1_goals, role):
    client.force_login(UserFactory(username=f"someone-{role}", role=role))
    page = client.get(reverse("metrics:scorecard"), {"period": "2026-Q1"})
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-goal="mqls" data-status="red"' in html and "Off track" in html
    assert 'data-goal="acceptance_rate" data-status="green"' in html
    assert "n = 12 decided handoffs" in html
    assert "Edit goals" not in html
    assert client.get(reverse("metrics:goals_edit"), {"period": "2026-Q1"}).status_code == 403
    overview = client.get(reverse("metrics:overview")).content.decode()
    # The overview shows this quarter's goals (none here: it is February 2026 in the test).
    assert 'id="scorecard"' in overview


def test_an_unknown_period_is_not_a_page(client, admin):
    client.force_login(admin)
    assert client.get(reverse("metrics:scorecard"), {"period": "2026-Q9"}).status_code == 404


def _formset(rows: list[dict], **extra) -> dict:
    data = {
        "goals-TOTAL_FORMS": str(len(rows)),
        "goals-INITIAL_FORMS": "0",
        "goals-MIN_NUM_FORMS": "0",
        "goals-MAX_NUM_FORMS": "40",
        "note": "Agreed in the QBR",
        **extra,
    }
    for index, row in enumerate(rows):
        defaults = {"metric": "", "side": "", "scope": "all", "target": ""}
        for name, value in {**defaults, **row}.items():
            data[f"goals-{index}-{name}"] = value
    return data


def test_an_admin_drafts_then_publishes_a_quarter_from_the_editor(client, admin, now):
    client.force_login(admin)
    url = f"{reverse('metrics:goals_edit')}?period=2026-Q2"
    assert client.get(url).status_code == 200

    bad = _formset([{"metric": "mqls", "target": "400", "amber_at": "300", "red_at": "350"}])
    refused = client.post(url, {**bad, "publish": "1"})
    assert refused.status_code == 400
    assert "The red threshold must be below the amber one" in refused.content.decode()
    assert not GoalSet.objects.exists()

    rows = [
        {"metric": "mqls", "target": "400"},
        {"metric": "acceptance_rate", "target": "30", "floor": "20"},
        {"metric": "", "target": ""},  # a blank extra row is left out
    ]
    saved = client.post(url, {**_formset(rows), "save": "1"})
    assert saved.status_code == 302
    draft = GoalSet.objects.get()
    assert (draft.status, draft.note, draft.goals.count()) == ("draft", "Agreed in the QBR", 2)
    q2 = goals.parse_period_key("2026-Q2")
    assert goal_selectors.scorecard(q2)["goal_set"] is None  # nobody sees a draft

    published = client.post(url, {**_formset(rows), "publish": "1"})
    assert published.status_code == 302
    assert published["Location"] == f"{reverse('metrics:scorecard')}?period=2026-Q2"
    draft.refresh_from_db()
    assert (draft.status, draft.published_by) == ("published", admin)
    assert GoalSet.objects.count() == 1
    card = client.get(published["Location"]).content.decode()
    assert "Q2 2026" in card and "Not started" in card


def test_the_editor_takes_a_target_account_goal_and_the_card_shows_it(
    client, admin, target_facts, now
):
    client.force_login(admin)
    url = f"{reverse('metrics:goals_edit')}?period=2026-Q1"
    assert "Pipeline from target accounts" in client.get(url).content.decode()
    rows = [{"metric": "target_pipeline", "target": "20000"}]
    published = client.post(url, {**_formset(rows), "publish": "1"})
    assert published.status_code == 302
    [goal] = GoalSet.objects.get(status="published").goals.all()
    assert (goal.metric, goal.target) == ("target_pipeline", Decimal("20000.00"))

    client.force_login(UserFactory(username="someone", role=VIEWER))
    html = client.get(published["Location"]).content.decode()
    row = html[html.index('data-goal="target_pipeline"') :].split("</tr>")[0]
    assert 'data-status="green"' in row and "Pipeline from target accounts" in row
    assert "$11,000" in row and "$22,000" in row and "On track" in row


def test_the_meeting_opens_on_the_scorecard_and_freezes_it(client, q1_goals, admin):
    from metrics import services
    from metrics.models import Meeting

    meeting = Meeting.objects.create(held_on=date(2026, 2, 16), created_by=admin)
    client.force_login(UserFactory(username="room", role=VIEWER))
    html = client.get(reverse("meeting:detail", kwargs={"held_on": meeting.held_on})).content
    html = html.decode()
    assert html.index('id="slide-scorecard"') < html.index('id="slide-agenda"')
    assert "Are we on track? Q1 2026" in html and "Off track" in html

    snapshot = services.meeting_freeze(meeting=meeting, user=admin)
    frozen = snapshot.figures["scorecard"]
    assert frozen["goal_set"]["number"] == q1_goals.number
    assert [row["status"]["word"] for row in frozen["groups"][1]["rows"]] == [
        "Off track",
        "On track",
    ]


# Session and user, the period's goals in force and their goals, one snapshot read for all the
# goals' readings, the periods for the menu, the target-account figures' snapshot, and the top
# bar's permission lookups: however much data the goals read, and however many goals.
SCORECARD_PAGE_QUERIES = 9


def test_the_scorecard_is_served_from_snapshots_in_few_queries(
    client, q1_goals, django_assert_num_queries
):
    client.force_login(UserFactory(username="room", role=VIEWER))
    url = f"{reverse('metrics:scorecard')}?period=2026-Q1"
    client.get(url)  # computes and stores each goal's reading
    with django_assert_num_queries(SCORECARD_PAGE_QUERIES):
        assert client.get(url).status_code == 200


def test_quarterly_planning_sets_next_quarters_goals_beside_the_last_ones(client, q1_goals, admin):
    q2 = Q1.next()
    draft = goal_services.goal_set_create_draft(period=q2, actor=admin, copy_from=q1_goals)
    plan = goal_selectors.planning(q2)
    assert plan["review"]["period"]["key"] == "2026-Q1" and plan["in_force"] is None
    assert (plan["draft"]["number"], plan["draft"]["by"]) == (draft.number, "Olga Ops")
    mqls, acceptance = plan["rows"]
    assert (mqls["label"], mqls["target"], mqls["previous_actual"]) == ("MQLs", 10.0, 3)
    assert mqls["previous_status"]["word"] == "Off track"
    assert (acceptance["target"], acceptance["previous_actual"]) == (0.30, 0.75)

    client.force_login(UserFactory(username="planner", role=MARKETING))
    page = client.get(reverse("metrics:planning"), {"quarter": "2026-Q2"}).content.decode()
    assert "Quarterly planning: Q2 2026" in page and f"Draft v{draft.number}" in page
    assert "Draft the Q2 2026 goals" not in page and "Edit the Q2 2026 goals" not in page
    assert client.get(reverse("metrics:planning"), {"quarter": "2026-05"}).status_code == 404
    client.force_login(admin)
    page = client.get(reverse("metrics:planning"), {"quarter": "2026-Q2"}).content.decode()
    assert "Edit the Q2 2026 goals" in page


def test_a_scorecards_readings_are_computed_once_and_stored_in_one_statement(q1_goals):
    kpi_period = Period.from_dates(Q1.first_day, Q1.last_day, settings.DISPLAY_TIME_ZONE)
    requests = [
        (goal_selectors.reading_page(goal.metric), kpi_period, goal_selectors.scope_filters(goal))
        for goal in q1_goals.goals.all()
    ]
    requests.append(requests[0])  # two goals reading the same page and scope

    with CaptureQueriesContext(connection) as first:
        computed = snapshots.pages_data(requests)
    writes = [
        query["sql"]
        for query in first.captured_queries
        if "metrics_kpisnapshot" in query["sql"]
        and not query["sql"].lstrip().upper().startswith("SELECT")
    ]
    # One INSERT … ON CONFLICT for both readings: no look-up, savepoint, UPDATE and INSERT each.
    assert len(writes) == 1 and writes[0].startswith('INSERT INTO "metrics_kpisnapshot"')
    assert KpiSnapshot.objects.count() == 2
    assert computed[2] == computed[0]

    with CaptureQueriesContext(connection) as second:
        served = snapshots.pages_data(requests)
    assert len(second.captured_queries) == 1  # the snapshots, read together
    assert [data for data, _ in served] == [data for data, _ in computed]
    assert [data for data, _ in served] == [
        snapshots.page_data(page, period, filters)[0] for page, period, filters in requests
    ]
