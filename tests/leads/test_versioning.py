"""Definitions are versioned: drafts, publishing, immutability, and the version in force."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from leads.defaults import DEFAULT_EFFECTIVE_FROM
from leads.models import IcpCriterion, IcpVersion, LifecycleVersion, SlaVersion
from leads.selectors import icp_in_force, sla_policy_for, stages_in_force, version_in_force
from leads.services import definition_create_draft, definition_publish, lead_move_to_stage
from tests.factories import LeadFactory


@pytest.fixture
def icp_v1(db):
    return IcpVersion.objects.get(number=1)


@pytest.mark.parametrize("model", [IcpVersion, LifecycleVersion, SlaVersion])
def test_defaults_are_published_as_v1_and_in_force(db, model):
    version = version_in_force(model)
    assert version.number == 1
    assert version.is_published
    assert version.effective_from == DEFAULT_EFFECTIVE_FROM


def test_default_lifecycle_has_the_agreed_stages_in_order(db):
    assert [s.key for s in stages_in_force()] == [
        "lead",
        "mql",
        "sal",
        "sql",
        "opportunity",
        "customer",
        "nurture",
        "disqualified",
        "closed_lost",
    ]


def test_draft_copies_the_criteria_of_its_source(icp_v1):
    draft = definition_create_draft(model=IcpVersion, actor=None, copy_from=icp_v1)
    assert draft.number == 2
    assert not draft.is_published
    assert draft.tier_a_min_points == icp_v1.tier_a_min_points
    assert sorted(draft.criteria.values_list("name", flat=True)) == sorted(
        icp_v1.criteria.values_list("name", flat=True)
    )
    # The copies are new rows: editing the draft leaves v1 untouched.
    draft.criteria.filter(name="Target industry").update(points=1)
    assert icp_v1.criteria.get(name="Target industry").points == 10


def test_published_version_rows_cannot_be_edited_or_deleted(icp_v1):
    criterion = icp_v1.criteria.get(name="Target industry")
    criterion.points = 99
    with pytest.raises(ValidationError, match="published and cannot be edited"):
        criterion.save()
    with pytest.raises(ValidationError, match="published"):
        criterion.delete()
    with pytest.raises(ValidationError, match="published"):
        IcpCriterion(
            version=icp_v1, name="New", attribute="industry", values=["x"], points=1
        ).save()
    assert icp_v1.criteria.get(name="Target industry").points == 10


def test_publishing_supersedes_but_keeps_history_readable(icp_v1, admin_user):
    draft = definition_create_draft(model=IcpVersion, actor=admin_user, copy_from=icp_v1)
    draft.criteria.filter(name="Target industry").update(points=30)
    before_publish = timezone.now()
    published = definition_publish(version=draft, actor=admin_user)
    assert published.is_published
    assert published.published_by == admin_user
    assert icp_in_force() == published
    # Under the rules in force last year, v1 still answers.
    assert icp_in_force(at=before_publish - timedelta(days=365)) == icp_v1
    assert icp_v1.criteria.get(name="Target industry").points == 10


def test_scheduled_version_takes_force_at_its_effective_from(icp_v1):
    draft = definition_create_draft(model=IcpVersion, actor=None, copy_from=icp_v1)
    start = timezone.now() + timedelta(days=7)
    definition_publish(version=draft, actor=None, effective_from=start)
    assert icp_in_force() == icp_v1
    assert icp_in_force(at=start).pk == draft.pk


def test_publishing_before_the_latest_published_version_is_refused(icp_v1):
    draft = definition_create_draft(model=IcpVersion, actor=None, copy_from=icp_v1)
    with pytest.raises(ValidationError) as error:
        definition_publish(
            version=draft, actor=None, effective_from=datetime(2019, 1, 1, tzinfo=UTC)
        )
    assert "history cannot be rewritten" in str(error.value)
    draft.refresh_from_db()
    assert not draft.is_published


def test_publishing_twice_is_refused(icp_v1):
    with pytest.raises(ValidationError, match="already published"):
        definition_publish(version=icp_v1, actor=None)


def test_icp_whose_tier_a_is_unreachable_is_not_published(icp_v1):
    draft = definition_create_draft(model=IcpVersion, actor=None, copy_from=icp_v1)
    draft.tier_a_min_points = 500
    draft.save()
    with pytest.raises(ValidationError, match="no lead could ever be tier A"):
        definition_publish(version=draft, actor=None)
    draft.refresh_from_db()
    assert not draft.is_published
    assert icp_in_force() == icp_v1


def test_lifecycle_with_falling_thresholds_is_not_published(db):
    v1 = LifecycleVersion.objects.get(number=1)
    draft = definition_create_draft(model=LifecycleVersion, actor=None, copy_from=v1)
    draft.stages.filter(key="sal").update(trigger_type="score", trigger_score=40)
    with pytest.raises(ValidationError, match="Score thresholds must rise with stage order"):
        definition_publish(version=draft, actor=None)
    draft.refresh_from_db()
    assert not draft.is_published


def test_lifecycle_reject_target_must_be_nurture_or_disqualified(db):
    v1 = LifecycleVersion.objects.get(number=1)
    draft = definition_create_draft(model=LifecycleVersion, actor=None, copy_from=v1)
    draft.stages.filter(key="mql").update(on_reject_key="sal")
    with pytest.raises(ValidationError, match="nurture or disqualified"):
        definition_publish(version=draft, actor=None)


def test_sla_policy_with_a_calendar_without_working_hours_is_not_published(db):
    v1 = SlaVersion.objects.get(number=1)
    draft = definition_create_draft(model=SlaVersion, actor=None, copy_from=v1)
    calendar = draft.policies.first().calendar
    calendar.working_hours.all().delete()
    with pytest.raises(ValidationError, match="no working hours"):
        definition_publish(version=draft, actor=None)


def test_tier_specific_sla_policy_beats_the_fallback(db):
    assert sla_policy_for(stage_key="mql", tier="A").name == "Tier A MQLs"
    assert sla_policy_for(stage_key="mql", tier="C").name == "All other MQLs"
    assert sla_policy_for(stage_key="sql", tier="A") is None


def test_moving_a_lead_writes_history_and_the_nurture_flag(db, admin_user):
    lead = LeadFactory(stage="mql")
    transition = lead_move_to_stage(lead=lead, to_stage="sal", actor=admin_user, reason="accepted")
    lead.refresh_from_db()
    assert lead.stage == "sal"
    assert lead.in_marketing_nurture is False
    assert (transition.from_stage, transition.to_stage, transition.actor) == (
        "mql",
        "sal",
        admin_user,
    )
    lead_move_to_stage(lead=lead, to_stage="nurture", actor=admin_user, reason="not now")
    lead.refresh_from_db()
    assert lead.in_marketing_nurture is True
    assert list(lead.transitions.values_list("to_stage", flat=True)) == ["sal", "nurture"]


def test_moving_to_an_unknown_stage_changes_nothing(db):
    lead = LeadFactory(stage="lead")
    with pytest.raises(ValidationError, match="Unknown stage"):
        lead_move_to_stage(lead=lead, to_stage="hot", actor=None)
    lead.refresh_from_db()
    assert lead.stage == "lead"
    assert not lead.transitions.exists()
