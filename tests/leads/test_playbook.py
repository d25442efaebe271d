"""The playbook's value: the definitions in force in words, and what changed since the version
they replaced. Wording is tested without a database; the selector against published versions."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from leads.lifecycle import Lifecycle, Stage
from leads.models import IcpCriterion, IcpVersion, LifecycleVersion, SlaVersion
from leads.playbook import (
    Change,
    calendar_hours_text,
    criterion_rule,
    diff_rows,
    hours_text,
    leads_playbook,
    stage_line,
    threshold_note,
)
from leads.services import definition_create_draft, definition_publish
from leads.sla_clock import BusinessCalendarSpec
from tests.factories import UserFactory

# --- Wording (no database) ---------------------------------------------------------------------


def test_list_criteria_read_as_a_sentence_with_display_names():
    assert criterion_rule("region", ["na", "emea"]) == (
        "Account is in North America or Europe, Middle East & Africa"
    )
    assert criterion_rule("seniority", ["executive", "vp"]) == (
        "Contact’s seniority is C-level / owner or VP"
    )
    assert criterion_rule("technologies", ["salesforce", "hubspot", "segment"]) == (
        "Account uses Salesforce, HubSpot or Segment"
    )
    assert criterion_rule("signals", ["funding_round"]) == "Account shows: Recent funding round"


def test_range_criteria_read_with_their_bounds():
    assert criterion_rule("employees", minimum=Decimal(200), maximum=Decimal(5000)) == (
        "Account has 200 to 5,000 employees"
    )
    assert criterion_rule("employees", maximum=Decimal(10)) == "Account has at most 10 employees"
    assert criterion_rule("annual_revenue", minimum=20_000_000, maximum=1_000_000_000) == (
        "Account annual revenue is $20M to $1B"
    )


def test_hours_are_business_hours_in_words():
    assert hours_text(Decimal("2.00")) == "2 business hours"
    assert hours_text(Decimal("1")) == "1 business hour"
    assert hours_text(Decimal("0.5")) == "30 business minutes"


def test_calendar_hours_name_the_days_the_blocks_the_zone_and_the_next_holiday():
    spec = BusinessCalendarSpec.from_blocks(
        time_zone="America/New_York",
        blocks=[(day, time(9), time(17)) for day in range(5)],
        holidays=[date(2026, 12, 25), date(2025, 12, 25)],
    )

    text = calendar_hours_text(spec, today=date(2026, 6, 1))

    assert text == (
        "Monday to Friday, 09:00–17:00 (America/New York time); the clock also stops on "
        "1 holiday from today on (next: Dec 25, 2026)"
    )


def test_a_lunch_break_and_a_short_friday_are_told_apart():
    blocks = [(d, time(9), time(12)) for d in range(4)] + [
        (d, time(13), time(17)) for d in range(4)
    ]
    spec = BusinessCalendarSpec.from_blocks(
        time_zone="Europe/Paris", blocks=[*blocks, (4, time(9), time(13))]
    )

    assert calendar_hours_text(spec) == (
        "Monday to Thursday, 09:00–12:00 and 13:00–17:00; Friday, 09:00–13:00 (Europe/Paris time)"
    )


LIFECYCLE = Lifecycle(
    stages=(
        Stage("lead", "Lead", "Curious", order=1),
        Stage(
            "mql",
            "MQL",
            "Engaged",
            order=2,
            trigger_type="score",
            trigger_score=65,
            opens_handoff=True,
            on_reject_key="nurture",
            requalify_cooldown_days=14,
        ),
        Stage("sal", "SAL", "Interested", team="sales", order=3),
        Stage(
            "sql",
            "SQL",
            "Evaluating",
            team="sales",
            order=4,
            trigger_type="event",
            trigger_event_kind="meeting_booked",
        ),
        Stage("customer", "Customer", kind="won", team="sales", order=5),
        Stage("nurture", "Nurture", "Not now", kind="nurture", order=6),
    )
)


def test_each_stage_says_its_owner_trigger_rejection_target_and_cool_down():
    mql = stage_line(LIFECYCLE, LIFECYCLE.by_key["mql"])
    sal = stage_line(LIFECYCLE, LIFECYCLE.by_key["sal"])
    sql = stage_line(LIFECYCLE, LIFECYCLE.by_key["sql"])

    assert (mql.owner, mql.buyer_label) == ("Marketing", "Engaged")
    assert mql.trigger == "Score threshold: total score reaches 65"
    assert mql.definition.startswith("Engaged with content and fits the ICP")
    assert mql.on_reject == "Nurture"
    assert mql.cooldown == "Re-qualifies on new engagement from 14 days after the rejection"
    assert sal.owner == "Sales"
    assert sal.trigger == "Sales accepts the MQL handoff"
    assert sql.trigger == "Event: Meeting booked while at SAL"
    assert stage_line(LIFECYCLE, LIFECYCLE.by_key["nurture"]).trigger == (
        "Sales rejects the MQL handoff (with a reason)"
    )


def test_threshold_note_warns_when_fit_alone_reaches_the_handoff():
    assert "never handed to sales on fit alone" in threshold_note(LIFECYCLE, 63)
    assert "without any engagement" in threshold_note(LIFECYCLE, 70)


def test_diff_rows_lists_added_removed_and_changed_fields_in_words():
    before = {"Target industry": {"points": "+10 points"}, "Students": {"points": "poor fit"}}
    after = {"Target industry": {"points": "+15 points"}, "Big spenders": {"points": "+5 points"}}

    changes = diff_rows(before, after, noun="criterion", summary_field="points")

    assert [c.text for c in changes] == [
        "Added criterion “Big spenders”: +5 points",
        "Removed criterion “Students” (was: poor fit)",
        "Target industry: points changed from “+10 points” to “+15 points”",
    ]
    assert diff_rows(None, after, noun="criterion") == ()
    assert Change("x", "changed", "name", "a", "b").text == "x: name changed from “a” to “b”"


# --- The selector (database) -------------------------------------------------------------------


@pytest.fixture
def editor(db):
    return UserFactory(username="rita", first_name="Rita", last_name="Ops")


def _publish(model, editor, change, note=""):
    draft = definition_create_draft(
        model=model, actor=editor, copy_from=model.objects.get(number=1), note=note
    )
    change(draft)
    return definition_publish(version=draft, actor=editor)


@pytest.mark.django_db
def test_the_default_definitions_read_as_version_one_with_nothing_changed():
    book = leads_playbook()

    assert book.icp.version.number == 1
    assert book.icp.changes == ()
    assert book.icp.max_fit_points == 63
    assert [line.name for line in book.lifecycle.funnel][:3] == ["Lead", "MQL", "SAL"]
    assert "never handed to sales on fit alone" in book.lifecycle.threshold_note
    assert [(p.segment, p.respond) for p in book.sla.policies] == [
        ("Tier A leads", "2 business hours"),
        ("All other leads", "4 business hours"),
    ]
    assert book.rejected_go_to == "a rejected MQL goes to Nurture"
    assert "Other (explain in a note)" in [reason.label for reason in book.reasons]


@pytest.mark.django_db
def test_a_new_lifecycle_version_shows_its_rules_and_what_changed(editor):
    def change(draft):
        mql = draft.stages.get(key="mql")
        mql.trigger_score = 70
        mql.buyer_label = "Hand-raiser"
        mql.requalify_cooldown_days = 30
        mql.save()

    _publish(LifecycleVersion, editor, change, note="Fewer, better MQLs")

    section = leads_playbook().lifecycle

    assert section.version.number == 2
    assert section.version.previous_number == 1
    assert section.version.note == "Fewer, better MQLs"
    assert section.version.published_by == "Rita Ops"
    mql = next(line for line in section.funnel if line.key == "mql")
    assert mql.trigger == "Score threshold: total score reaches 70"
    texts = [change.text for change in section.changes]
    assert "MQL: buyer label changed from “Engaged” to “Hand-raiser”" in texts
    assert (
        "MQL: trigger changed from “Score threshold: total score reaches 65” to "
        "“Score threshold: total score reaches 70”"
    ) in texts
    assert any(text.startswith("MQL: re-qualification changed") for text in texts)


@pytest.mark.django_db
def test_a_new_icp_version_lists_added_and_changed_criteria_and_tiers(editor):
    def change(draft):
        draft.tier_a_min_points = 40
        draft.save()
        draft.criteria.filter(name="Target industry").update(points=12)
        IcpCriterion.objects.create(
            version=draft, name="Nordics", attribute="country", values=["se", "no"], points=4
        )

    _publish(IcpVersion, editor, change)

    section = leads_playbook().icp

    texts = [change.text for change in section.changes]
    assert "Added criterion “Nordics”: Account is based in SE or NO" in texts
    assert "Target industry: points changed from “+10 points” to “+12 points”" in texts
    assert "Fit tiers: Tier A changed from “35 fit points or more” to “40 fit points or more”" in (
        texts
    )
    assert section.max_fit_points == 63 + 2 + 4


@pytest.mark.django_db
def test_the_playbook_reads_the_versions_in_force_at_an_instant(editor):
    def change(draft):
        draft.policies.filter(tier="A").update(respond_within_hours=1, accept_within_hours=6)

    published = _publish(SlaVersion, editor, change)

    before = leads_playbook(at=published.effective_from - timedelta(seconds=1))
    after = leads_playbook(at=published.effective_from)

    assert before.sla.version.number == 1
    assert after.sla.policies[0].respond == "1 business hour"
    assert "Tier A leads" in after.sla.changes[0].subject
    assert leads_playbook(at=datetime(2019, 1, 1, tzinfo=UTC)).icp.version is None


@pytest.mark.django_db
def test_a_policy_escalating_to_the_reps_manager_says_so(editor):
    _publish(SlaVersion, editor, lambda draft: draft.policies.update(escalate_to_manager=True))

    book = leads_playbook()

    assert all("the rep's sales manager is told" in p.on_breach for p in book.sla.policies)
