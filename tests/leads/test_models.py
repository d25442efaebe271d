"""Model invariants: what the database and ``full_clean`` refuse."""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from leads.models import (
    BusinessCalendar,
    Handoff,
    IcpCriterion,
    IcpVersion,
    Lead,
    Opportunity,
    RejectionReason,
    StageTransition,
    WorkingHours,
    normalize_domain,
)
from leads.services import definition_create_draft
from tests.factories import AccountFactory, EventFactory, LeadFactory

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("https://WWW.Example.com/about", "example.com"),
        ("example.com", "example.com"),
        ("  Sub.Example.CO.uk ", "sub.example.co.uk"),
        ("", ""),
    ],
)
def test_normalize_domain(raw, normalized):
    assert normalize_domain(raw) == normalized


def test_account_clean_normalizes_domain_and_rejects_bad_country(db):
    account = AccountFactory.build(domain="HTTPS://www.Acme.io/", country="usa")
    with pytest.raises(ValidationError) as error:
        account.full_clean()
    assert "country" in error.value.message_dict
    assert account.domain == "acme.io"


def test_lead_email_is_unique_case_insensitively_after_clean(db):
    LeadFactory(email="ada@example.com")
    duplicate = LeadFactory.build(email="ADA@Example.com", account=None, source=None)
    with pytest.raises(ValidationError) as error:
        duplicate.full_clean()
    assert "e-mail address already exists" in str(error.value)


def test_leads_without_email_do_not_collide(db):
    LeadFactory(email="")
    LeadFactory(email="")
    assert Lead.objects.filter(email="").count() == 2


def test_event_external_id_is_unique_per_source_system(db):
    event = EventFactory(source_system="hubspot", external_id="e-1")
    EventFactory(lead=event.lead, source_system="marketo", external_id="e-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        EventFactory(lead=event.lead, source_system="hubspot", external_id="e-1")


def test_stage_transitions_are_append_only(db):
    lead = LeadFactory()
    transition = StageTransition.objects.create(
        lead=lead, from_stage="lead", to_stage="mql", actor_type="scoring"
    )
    transition.reason = "rewritten"
    with pytest.raises(TypeError, match="append-only"):
        transition.save()
    with pytest.raises(TypeError, match="append-only"):
        StageTransition.objects.filter(pk=transition.pk).update(reason="rewritten")
    assert StageTransition.objects.get(pk=transition.pk).reason == ""


def test_lead_activities_are_append_only(db):
    from leads.models import LeadActivity

    activity = LeadActivity.objects.create(
        lead=LeadFactory(), action="touched", actor_type="user", note="called"
    )
    activity.note = "rewritten"
    with pytest.raises(TypeError, match="LeadActivity rows are append-only"):
        activity.save()
    with pytest.raises(TypeError, match="append-only"):
        LeadActivity.objects.filter(pk=activity.pk).update(note="rewritten")
    assert LeadActivity.objects.get(pk=activity.pk).note == "called"


def test_transition_must_change_stage(db):
    lead = LeadFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        StageTransition.objects.create(
            lead=lead, from_stage="mql", to_stage="mql", actor_type="user"
        )


def test_rejected_handoff_needs_a_reason_in_clean_and_in_the_database(db):
    lead = LeadFactory()
    handoff = Handoff(lead=lead, stage="mql", assigned_at=T0, outcome="rejected", rejected_at=T0)
    with pytest.raises(ValidationError) as error:
        handoff.full_clean()
    assert "reject_reason" in error.value.message_dict
    with pytest.raises(IntegrityError), transaction.atomic():
        handoff.save()


def test_reason_requiring_a_note_refuses_an_empty_note(db):
    other = RejectionReason.objects.get(key="other")
    handoff = Handoff(
        lead=LeadFactory(),
        stage="mql",
        assigned_at=T0,
        outcome="rejected",
        rejected_at=T0,
        reject_reason=other,
    )
    with pytest.raises(ValidationError) as error:
        handoff.full_clean()
    assert "reject_note" in error.value.message_dict


def test_handoff_cannot_be_both_accepted_and_rejected(db):
    reason = RejectionReason.objects.get(key="no_budget")
    with pytest.raises(IntegrityError), transaction.atomic():
        Handoff.objects.create(
            lead=LeadFactory(),
            stage="mql",
            assigned_at=T0,
            outcome="accepted",
            accepted_at=T0,
            rejected_at=T0,
            reject_reason=reason,
        )


def test_first_response_cannot_precede_assignment(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        Handoff.objects.create(
            lead=LeadFactory(), stage="mql", assigned_at=T0, first_response_at=T0 - timedelta(1)
        )


def test_closed_opportunity_needs_close_date_after_creation(db):
    opportunity = Opportunity(name="Deal", amount=Decimal("100"), status="won", created_at=T0)
    with pytest.raises(ValidationError) as error:
        opportunity.full_clean()
    assert "closed_at" in error.value.message_dict
    opportunity.closed_at = T0 - timedelta(days=1)
    with pytest.raises(ValidationError):
        opportunity.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        opportunity.save()


def test_won_opportunity_clean_sets_the_closed_won_stage(db):
    opportunity = Opportunity(
        name="Deal", amount=Decimal("100"), status="won", created_at=T0, closed_at=T0
    )
    opportunity.full_clean()
    assert opportunity.stage == "closed_won"


def test_negative_amount_is_refused_by_the_database(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        Opportunity.objects.create(name="Deal", amount=Decimal("-1"), created_at=T0)


@pytest.fixture
def icp_draft(db):
    return definition_create_draft(model=IcpVersion, actor=None)


@pytest.mark.parametrize(
    ("fields", "field_in_error"),
    [
        ({"attribute": "employees", "min_value": 500, "max_value": 100, "points": 5}, "max_value"),
        ({"attribute": "employees", "points": 5}, "min_value"),
        ({"attribute": "employees", "values": ["a"], "min_value": 1, "points": 5}, "values"),
        ({"attribute": "industry", "values": [], "points": 5}, "values"),
        (
            {"attribute": "industry", "values": ["software"], "min_value": 1, "points": 5},
            "min_value",
        ),
        ({"attribute": "industry", "values": ["software"], "points": 0}, "points"),
        ({"attribute": "industry", "values": ["x"], "points": 5, "is_exclusion": True}, "points"),
        ({"attribute": "industry", "values": ["software"], "points": 250}, "points"),
    ],
)
def test_icp_criterion_validation_names_the_field(icp_draft, fields, field_in_error):
    criterion = IcpCriterion(version=icp_draft, name="Criterion", **fields)
    with pytest.raises(ValidationError) as error:
        criterion.full_clean()
    assert field_in_error in error.value.message_dict


def test_icp_criterion_values_are_normalized(icp_draft):
    criterion = IcpCriterion(
        version=icp_draft,
        name="Industry",
        attribute="industry",
        values=[" Software", "software"],
        points=5,
    )
    criterion.full_clean()
    assert criterion.values == ["software"]


def test_icp_min_greater_than_max_is_refused_by_the_database(icp_draft):
    with pytest.raises(IntegrityError), transaction.atomic():
        IcpCriterion.objects.create(
            version=icp_draft,
            name="Size",
            attribute="employees",
            min_value=9,
            max_value=1,
            points=3,
        )


def test_icp_tiers_must_descend(icp_draft):
    icp_draft.tier_b_min_points = icp_draft.tier_a_min_points
    with pytest.raises(ValidationError) as error:
        icp_draft.full_clean()
    assert "tier_b_min_points" in error.value.message_dict


@pytest.mark.parametrize(
    ("points", "excluded", "tier"),
    [
        (80, False, "A"),
        (35, False, "A"),
        (34, False, "B"),
        (20, False, "B"),
        (19, False, "C"),
        (10, False, "C"),
        (9, False, "D"),
        (99, True, "D"),
    ],
)
def test_icp_tier_for_points(db, points, excluded, tier):
    icp = IcpVersion.objects.get(number=1)
    assert icp.tier_for(points, excluded=excluded) == tier


def test_working_hours_must_open_before_closing(db):
    calendar = BusinessCalendar.objects.create(name="Paris", time_zone="Europe/Paris")
    hours = WorkingHours(calendar=calendar, weekday=0, opens_at=time(18), closes_at=time(9))
    with pytest.raises(ValidationError):
        hours.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        hours.save()


def test_calendar_time_zone_must_exist(db):
    with pytest.raises(ValidationError) as error:
        BusinessCalendar(name="Mars", time_zone="Mars/Olympus").full_clean()
    assert "time_zone" in error.value.message_dict


def test_account_lists_are_stored_lower_cased_and_deduplicated(db):
    account = AccountFactory(
        technologies=["HubSpot", " hubspot", "Snowflake"], signals=["Funding_Round"]
    )
    account.refresh_from_db()
    assert account.technologies == ["hubspot", "snowflake"]
    assert account.signals == ["funding_round"]
